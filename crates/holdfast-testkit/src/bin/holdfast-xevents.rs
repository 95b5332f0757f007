//! `holdfast-xevents`: prints one JSON line per input event the X server
//! processes (XInput 2 raw events on the root window: key presses, button
//! presses, pointer motion, from any device, XTEST included), with the wall
//! clock in Unix milliseconds: `{"kind":"key","t_ms":..}`. It prints
//! `{"ready":true}` once it listens. Tests use it to say exactly when the
//! last injected event landed (after a revoke, say).

use std::time::{SystemTime, UNIX_EPOCH};

use x11rb::connection::Connection;
use x11rb::protocol::xinput::{ConnectionExt as _, EventMask, XIEventMask};
use x11rb::protocol::Event;

fn main() -> anyhow::Result<()> {
    let (conn, screen) = x11rb::connect(None)?;
    let root = conn.setup().roots[screen].root;
    conn.xinput_xi_query_version(2, 2)?.reply()?;
    let mask = XIEventMask::RAW_KEY_PRESS | XIEventMask::RAW_BUTTON_PRESS | XIEventMask::RAW_MOTION;
    // Device 0: all devices (XIAllDevices), so XTEST's slave devices count.
    conn.xinput_xi_select_events(
        root,
        &[EventMask {
            deviceid: 0,
            mask: vec![mask],
        }],
    )?
    .check()?;
    println!("{{\"ready\":true}}");
    loop {
        let kind = match conn.wait_for_event()? {
            Event::XinputRawKeyPress(_) => "key",
            Event::XinputRawButtonPress(_) => "button",
            Event::XinputRawMotion(_) => "motion",
            _ => continue,
        };
        let t_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
        println!("{{\"kind\":\"{kind}\",\"t_ms\":{t_ms}}}");
    }
}
