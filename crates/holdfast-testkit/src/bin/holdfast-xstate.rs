//! `holdfast-xstate`: the X server's input state for tests, on `$DISPLAY`.
//!
//! - no arguments: prints `{"pointer":[x,y],"keys":[keycodes held down],"buttons":mask}`;
//! - `monitors WxH+X+Y...`: splits the screen into RandR monitors (as
//!   `xrandr --setmonitor` does; the first is primary), to test multi-monitor
//!   hosts on one Xvfb screen, and prints the monitor list.

use x11rb::connection::Connection;
use x11rb::protocol::randr::{ConnectionExt as _, MonitorInfo};
use x11rb::protocol::xproto::ConnectionExt as _;

fn parse_geometry(s: &str) -> anyhow::Result<(u16, u16, i16, i16)> {
    let (size, pos) = s
        .split_once('+')
        .ok_or_else(|| anyhow::anyhow!("WxH+X+Y expected: {s}"))?;
    let (w, h) = size
        .split_once('x')
        .ok_or_else(|| anyhow::anyhow!("WxH+X+Y expected: {s}"))?;
    let (x, y) = pos
        .split_once('+')
        .ok_or_else(|| anyhow::anyhow!("WxH+X+Y expected: {s}"))?;
    Ok((w.parse()?, h.parse()?, x.parse()?, y.parse()?))
}

fn main() -> anyhow::Result<()> {
    let (conn, screen) = x11rb::connect(None)?;
    let root = conn.setup().roots[screen].root;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("monitors") {
        // Monitors die with the client that made them unless it says otherwise.
        conn.set_close_down_mode(x11rb::protocol::xproto::CloseDown::RETAIN_PERMANENT)?;
        for (i, g) in args[1..].iter().enumerate() {
            let (width, height, x, y) = parse_geometry(g)?;
            let name = conn.intern_atom(false, format!("HF-{i}").as_bytes())?.reply()?.atom;
            conn.randr_set_monitor(
                root,
                MonitorInfo {
                    name,
                    primary: i == 0,
                    automatic: false,
                    x,
                    y,
                    width,
                    height,
                    width_in_millimeters: u32::from(width) / 4,
                    height_in_millimeters: u32::from(height) / 4,
                    outputs: Vec::new(),
                },
            )?
            .check()?;
        }
        let monitors = conn.randr_get_monitors(root, true)?.reply()?;
        let list: Vec<_> = monitors
            .monitors
            .iter()
            .map(|m| serde_json::json!([m.x, m.y, m.width, m.height, m.primary]))
            .collect();
        println!("{}", serde_json::json!({ "monitors": list }));
        return Ok(());
    }
    let p = conn.query_pointer(root)?.reply()?;
    let map = conn.query_keymap()?.reply()?;
    let keys: Vec<u32> = (0u32..256)
        .filter(|&k| map.keys[(k / 8) as usize] & (1 << (k % 8)) != 0)
        .collect();
    println!(
        "{}",
        serde_json::json!({"pointer": [p.root_x, p.root_y], "keys": keys, "buttons": u16::from(p.mask) & 0x1f00})
    );
    Ok(())
}
