//! Several nodes serving one set of rooms (docs/cluster-design.md):
//! [`store`] keeps room ownership, room state and the shared token key in
//! Redis; [`node`] is the shell that routes clients to the node holding
//! their room, writes rooms through and watches the other nodes.

pub mod node;
pub mod store;

pub use node::ClusterConfig;
