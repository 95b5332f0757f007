//! Several nodes serving one set of rooms (docs/cluster-design.md). Being
//! built: [`store`] keeps room ownership, room state and the shared token
//! key in Redis; the forwarding between nodes comes next.

pub mod store;
