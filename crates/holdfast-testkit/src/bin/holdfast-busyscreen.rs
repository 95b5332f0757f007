//! A busy desktop for the rate-control bench and tests (issue 14): "pages"
//! of a photo banner over two columns of dense text that switch every 2 s,
//! over a terminal printing 25 lines a second. A page switch is a *change*:
//! its number is drawn as a code of 16 cells (12 bits of counter, 4 of
//! check) in the top-left corner, drawn last, and once the X server has it
//! the program prints `{"change":N,"at_us":UNIX_MICROS}` on stdout. A viewer
//! that reads the code off its canvas knows which change it shows.
//!
//! Arguments: `--page-ms MS` (2000), `--lines-per-sec N` (25), `--seed S`.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use x11rb::connection::Connection;
use x11rb::connection::RequestConnection;
use x11rb::protocol::xproto::{ConnectionExt, ImageFormat};
use x11rb::wrapper::ConnectionExt as _;

use holdfast_testkit::changecode::{self, CELL, CELLS};

const LINE_H: u16 = 14;
const GLYPH_W: u16 = 8;
/// Distinct glyph shapes, about a font's printable ASCII.
const GLYPHS: u64 = 94;

fn hash(mut x: u64) -> u64 {
    // splitmix64: cheap, well spread.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A BGRA buffer of `w`x`h`.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize, bgra: [u8; 4]) -> Self {
        Canvas {
            w,
            h,
            px: bgra.repeat(w * h),
        }
    }

    fn set(&mut self, x: usize, y: usize, rgb: u32) {
        if x < self.w && y < self.h {
            let i = (y * self.w + x) * 4;
            self.px[i..i + 4].copy_from_slice(&[rgb as u8, (rgb >> 8) as u8, (rgb >> 16) as u8, 0xFF]);
        }
    }

    /// A line of text: glyphs (5x9) from an alphabet of [`GLYPHS`] shapes, as
    /// a font has, in words with spaces between them.
    fn text_line(&mut self, x0: usize, x1: usize, y: usize, seed: u64, ink: u32) {
        let mut x = x0;
        let mut g = 0u64;
        while x + GLYPH_W as usize <= x1 {
            let h = hash(seed ^ g.wrapping_mul(0x100_0193));
            g += 1;
            if h % 11 >= 2 {
                // Not a space: glyph number h % GLYPHS, its shape a fixed hash.
                let shape = hash(0x61_7068 ^ (h % GLYPHS));
                for bit in 0..45 {
                    if shape >> bit & 1 == 1 {
                        self.set(x + 1 + (bit % 5) as usize, y + 2 + (bit / 5) as usize, ink);
                    }
                }
            }
            x += GLYPH_W as usize;
        }
    }
}

/// Page `p`: a photo-like banner over two columns of dense text, `w`x`h`.
fn page(w: usize, h: usize, p: u64) -> Canvas {
    let mut c = Canvas::new(w, h, [0xFF, 0xFF, 0xFF, 0xFF]);
    let banner = h * 2 / 5;
    let (fx, fy) = (0.004 + (p % 7) as f64 * 0.001, 0.006 + (p % 5) as f64 * 0.001);
    for y in 0..banner {
        for x in 0..w {
            // Smooth shapes with a little grain, as a photograph has.
            let n = (hash(p << 40 ^ (y as u64) << 20 ^ x as u64) & 0x7) as f64;
            let a = ((x as f64 * fx + p as f64).sin() + (y as f64 * fy).cos()) * 60.0;
            let b = ((x as f64 * fy * 1.7).cos() * (y as f64 * fx * 2.3 + p as f64).sin()) * 70.0;
            let r = (120.0 + a + n).clamp(0.0, 255.0) as u32;
            let g = (110.0 + b + n).clamp(0.0, 255.0) as u32;
            let bl = (100.0 - a * 0.5 + b * 0.5 + n).clamp(0.0, 255.0) as u32;
            c.set(x, y, r << 16 | g << 8 | bl);
        }
    }
    let mid = w / 2;
    let mut y = banner + 16;
    let mut line = 0u64;
    while y + LINE_H as usize <= h {
        c.text_line(24, mid - 16, y, p << 32 ^ line, 0x202020);
        c.text_line(mid + 16, w - 24, y, p << 32 ^ line ^ 0xABCD_0000, 0x202020);
        y += LINE_H as usize;
        line += 1;
    }
    c
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let page_every = Duration::from_millis(arg(&args, "--page-ms", 2000));
    let line_every = Duration::from_secs_f64(1.0 / arg(&args, "--lines-per-sec", 25).max(1) as f64);
    let seed = arg(&args, "--seed", 1);

    let (conn, screen_num) = x11rb::connect(None)?;
    let screen = &conn.setup().roots[screen_num];
    let (w, h) = (screen.width_in_pixels, screen.height_in_pixels);
    let depth = screen.root_depth;
    let (win, gc) = holdfast_testkit::fullscreen_window(&conn, screen_num)?;
    conn.sync()?;

    // Requests must stay under the server's limit: send images in strips.
    let max_bytes = conn.maximum_request_bytes().saturating_sub(1024).max(64 * 1024);
    let put = |c: &Canvas, x: i16, y: i16| -> anyhow::Result<()> {
        let row = c.w * 4;
        let rows = (max_bytes / row).max(1);
        let mut top = 0;
        while top < c.h {
            let n = rows.min(c.h - top);
            conn.put_image(
                ImageFormat::Z_PIXMAP,
                win,
                gc,
                c.w as u16,
                n as u16,
                x,
                y + top as i16,
                0,
                depth,
                &c.px[top * row..(top + n) * row],
            )?;
            top += n;
        }
        Ok(())
    };

    let page_top = CELL as usize;
    let term_top = (h as usize * 2 / 3) & !1;
    let (page_w, page_h) = (w as usize, term_top - page_top);
    let term_h = h as usize - term_top;
    put(
        &Canvas::new(w as usize, term_h, [0x10, 0x10, 0x10, 0xFF]),
        0,
        term_top as i16,
    )?;

    let mut stdout = std::io::stdout().lock();
    let start = Instant::now();
    let mut change: u32 = 0;
    let mut next_page = start;
    let mut next_line = start;
    let mut line: u64 = 0;
    loop {
        let now = Instant::now();
        if now >= next_page {
            change += 1;
            put(&page(page_w, page_h, seed << 16 ^ change as u64), 0, page_top as i16)?;
            // The code last, so a frame that shows it shows the whole page.
            let mut code = Canvas::new((CELL * CELLS) as usize, CELL as usize, [0; 4]);
            for (i, on) in changecode::bits(change).into_iter().enumerate() {
                let rgb = if on { 0xFFFFFF } else { 0x000000 };
                for y in 0..CELL as usize {
                    for x in 0..CELL as usize {
                        code.set(i * CELL as usize + x, y, rgb);
                    }
                }
            }
            put(&code, 0, 0)?;
            conn.sync()?;
            writeln!(stdout, r#"{{"change":{change},"at_us":{}}}"#, unix_micros())?;
            stdout.flush()?;
            next_page += page_every;
        }
        if now >= next_line {
            // Scroll the terminal a line up, print a new one at the bottom.
            let lh = LINE_H as usize;
            conn.copy_area(
                win,
                win,
                gc,
                0,
                (term_top + lh) as i16,
                0,
                term_top as i16,
                w,
                (term_h - lh) as u16,
            )?;
            let mut l = Canvas::new(w as usize, lh, [0x10, 0x10, 0x10, 0xFF]);
            let len = 200 + (hash(line ^ seed << 48) % (w as u64 - 260)) as usize;
            l.text_line(8, len, 0, line ^ 0x5EED_0000 ^ seed << 40, 0xC8C8C8);
            put(&l, 0, (h as usize - lh) as i16)?;
            conn.flush()?;
            line += 1;
            next_line += line_every;
            if next_line < now {
                next_line = now + line_every; // fell behind: no burst to catch up
            }
        }
        while conn.poll_for_event()?.is_some() {}
        let wake = next_page.min(next_line);
        std::thread::sleep(
            wake.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(20)),
        );
    }
}
