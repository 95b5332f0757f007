//! Fuzzes the `commands` channel decoder: any bytes give a command or an
//! error, never a panic, and whatever is accepted re-encodes to the same thing.
#![no_main]

use holdfast_proto::commands::Command;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cmd) = Command::parse(data) {
        let again = Command::parse(&cmd.encode()).expect("an accepted command re-encodes to a valid one");
        assert_eq!(again, cmd);
    }
});
