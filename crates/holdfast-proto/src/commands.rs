//! The `commands` data channel: keepalive probes and control messages.
//!
//! Keepalive, byte for byte as the seeds specify: the host sends `\x00PING`
//! (`00 50 49 4E 47`) and the viewer answers `\x00PONG` (`00 50 4F 4E 47`).
//! A leading NUL can never start a JSON text, so the two kinds never collide.
//!
//! Everything else is a JSON object tagged by `type`, at most
//! [`MAX_COMMAND_BYTES`], with a format version `v` (currently 1).

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const PING: &[u8; 5] = b"\x00PING";
pub const PONG: &[u8; 5] = b"\x00PONG";
/// Largest commands-channel message accepted.
pub const MAX_COMMAND_BYTES: usize = 4096;
/// Current control-message format version.
pub const COMMANDS_VERSION: u8 = 1;

/// A control message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Control {
    /// Viewer to host: the decoder needs a keyframe (after a loss or an error).
    KeyframeRequest {
        #[serde(default = "version")]
        v: u8,
    },
}

fn version() -> u8 {
    COMMANDS_VERSION
}

/// Any message on the `commands` channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Ping,
    Pong,
    Control(Control),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    #[error("command of {0} bytes exceeds the {MAX_COMMAND_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("unknown binary command")]
    UnknownBinary,
    #[error("invalid control message: {0}")]
    Invalid(String),
    #[error("unsupported commands version {0}")]
    Version(u8),
}

impl Command {
    pub fn parse(bytes: &[u8]) -> Result<Command, CommandError> {
        if bytes.len() > MAX_COMMAND_BYTES {
            return Err(CommandError::TooLarge(bytes.len()));
        }
        match bytes {
            b if b == PING => return Ok(Command::Ping),
            b if b == PONG => return Ok(Command::Pong),
            [0, ..] => return Err(CommandError::UnknownBinary),
            _ => {}
        }
        let control: Control = serde_json::from_slice(bytes).map_err(|e| CommandError::Invalid(e.to_string()))?;
        let v = match &control {
            Control::KeyframeRequest { v } => *v,
        };
        if v != COMMANDS_VERSION {
            return Err(CommandError::Version(v));
        }
        Ok(Command::Control(control))
    }

    /// The wire bytes; control messages are JSON text.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Command::Ping => PING.to_vec(),
            Command::Pong => PONG.to_vec(),
            Command::Control(c) => serde_json::to_vec(c).expect("Control always serialises"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_bytes_match_the_seed() {
        assert_eq!(PING, &[0x00, 0x50, 0x49, 0x4E, 0x47]);
        assert_eq!(PONG, &[0x00, 0x50, 0x4F, 0x4E, 0x47]);
        assert_eq!(Command::parse(PING).unwrap(), Command::Ping);
        assert_eq!(Command::parse(PONG).unwrap(), Command::Pong);
    }

    #[test]
    fn control_round_trips() {
        let c = Command::Control(Control::KeyframeRequest { v: 1 });
        assert_eq!(Command::parse(&c.encode()).unwrap(), c);
        assert_eq!(
            Command::parse(br#"{"type":"keyframe-request"}"#).unwrap(),
            Command::Control(Control::KeyframeRequest { v: 1 })
        );
    }

    #[test]
    fn rejects_bad_commands() {
        assert_eq!(Command::parse(b"\x00PANG"), Err(CommandError::UnknownBinary));
        assert!(matches!(Command::parse(b"{"), Err(CommandError::Invalid(_))));
        assert!(matches!(
            Command::parse(br#"{"type":"format-disk"}"#),
            Err(CommandError::Invalid(_))
        ));
        assert_eq!(
            Command::parse(br#"{"type":"keyframe-request","v":9}"#),
            Err(CommandError::Version(9))
        );
        assert!(matches!(
            Command::parse(&vec![b' '; 5000]),
            Err(CommandError::TooLarge(5000))
        ));
    }
}
