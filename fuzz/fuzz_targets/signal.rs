//! Fuzzes the signalling message parser: any text gives a message or a
//! typed error, never a panic.
#![no_main]

use holdfast_proto::signal::ClientMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(msg) = ClientMessage::parse(text) {
            ClientMessage::parse(&msg.to_json()).expect("an accepted message re-encodes to a valid one");
        }
    }
});
