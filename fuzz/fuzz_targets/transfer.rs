//! Fuzzes the `transfer` channel decoder: any bytes give a message or an
//! error, never a panic, and whatever is accepted re-encodes to the same thing.
#![no_main]

use holdfast_proto::transfer::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        let again = Message::parse(&m.encode()).expect("an accepted message re-encodes to a valid one");
        assert_eq!(again, m);
    }
});
