//! What support staff move during a session besides the picture and input:
//! files both ways, the clipboard and chat, all on the `transfer` data
//! channel (format: [`holdfast_proto::transfer`]).
//!
//! - [`engine`]: one side of the channel as a pure state machine (offers,
//!   chunks, SHA-256, flow window, resume after a cut, chat history).
//! - [`inbox`]: the receiving folder, the only code that writes files.
//! - [`pacer`]: how much file data may be outstanding (delay-based, so
//!   files never queue in front of the session's video and input).

pub mod engine;
pub mod inbox;
pub mod pacer;

pub use engine::{ChatLine, ChunkJob, Direction, Engine, Event, Failure, Phase, Poll, Side, TransferView};
pub use inbox::{Collision, Inbox, InboxError, Partial};
pub use pacer::Pacer;
