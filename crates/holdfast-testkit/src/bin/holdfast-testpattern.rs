//! A full-screen X11 window with a known picture, for end-to-end tests:
//! four coloured quadrants and a small square that moves ten times a second
//! (so frames keep flowing). Commands on stdin, one per line:
//!   `tl RRGGBB`  repaint the top-left quadrant in that colour
//!   `still`      stop the moving square;  `move` starts it again
//!   `speed MS`   repaint every MS milliseconds (default 100)
//! Prints `ready` on stdout once the window is mapped and painted.

use std::io::BufRead;
use std::sync::mpsc;
use std::time::Duration;

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ChangeGCAux, ConnectionExt, Rectangle};
use x11rb::wrapper::ConnectionExt as _;

pub const TOP_LEFT: u32 = 0xE02020;
pub const TOP_RIGHT: u32 = 0x20C040;
pub const BOTTOM_LEFT: u32 = 0x2040E0;
pub const BOTTOM_RIGHT: u32 = 0xF0D020;
const SQUARE: u32 = 0x101010;

fn main() -> anyhow::Result<()> {
    let (conn, screen_num) = x11rb::connect(None)?;
    let screen = &conn.setup().roots[screen_num];
    let (w, h) = (screen.width_in_pixels, screen.height_in_pixels);
    let (win, gc) = holdfast_testkit::fullscreen_window(&conn, screen_num)?;

    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let (hw, hh) = (w as i16 / 2, h as i16 / 2);
    let mut top_left = TOP_LEFT;
    let mut moving = true;
    let mut period = Duration::from_millis(100);
    let mut tick: i16 = 0;
    let fill = |color: u32, x: i16, y: i16, rw: u16, rh: u16| -> anyhow::Result<()> {
        conn.change_gc(gc, &ChangeGCAux::new().foreground(color))?;
        conn.poly_fill_rectangle(
            win,
            gc,
            &[Rectangle {
                x,
                y,
                width: rw,
                height: rh,
            }],
        )?;
        Ok(())
    };
    let mut announced = false;
    loop {
        while let Some(ev) = conn.poll_for_event()? {
            let _ = ev; // Every event (exposure) triggers the repaint below.
        }
        loop {
            match rx.try_recv() {
                Ok(cmd) => {
                    let cmd = cmd.trim().to_string();
                    if let Some(hex) = cmd.strip_prefix("tl ") {
                        top_left = u32::from_str_radix(hex.trim(), 16)?;
                    } else if cmd == "still" {
                        moving = false;
                    } else if cmd == "move" {
                        moving = true;
                    } else if let Some(ms) = cmd.strip_prefix("speed ") {
                        period = Duration::from_millis(ms.trim().parse()?);
                    }
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return Ok(()),
            }
        }
        fill(top_left, 0, 0, hw as u16, hh as u16)?;
        fill(TOP_RIGHT, hw, 0, w - hw as u16, hh as u16)?;
        fill(BOTTOM_LEFT, 0, hh, hw as u16, h - hh as u16)?;
        fill(BOTTOM_RIGHT, hw, hh, w - hw as u16, h - hh as u16)?;
        // The moving square stays in the bottom strip of the bottom-right quadrant.
        let x = hw + (tick.wrapping_mul(20) & 0x7fff) % (hw - 100).max(1);
        fill(SQUARE, x, h as i16 - 110, 100, 100)?;
        conn.flush()?;
        if !announced {
            conn.sync()?;
            println!("ready");
            announced = true;
        }
        if moving {
            tick = tick.wrapping_add(1);
        }
        std::thread::sleep(period);
    }
}
