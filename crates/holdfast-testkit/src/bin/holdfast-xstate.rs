//! `holdfast-xstate`: prints the X server's input state as one JSON line,
//! `{"pointer":[x,y],"keys":[keycodes held down]}`, for tests that check
//! injected input landed (or was released). Reads `$DISPLAY`.

use x11rb::connection::Connection;
use x11rb::protocol::xproto::ConnectionExt;

fn main() -> anyhow::Result<()> {
    let (conn, screen) = x11rb::connect(None)?;
    let root = conn.setup().roots[screen].root;
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
