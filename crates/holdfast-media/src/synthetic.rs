//! A synthetic desktop for benchmarks and tests without a display: a static
//! "window" layout with text-like stripes, plus a block that moves every frame
//! and a scrolling region, so each frame differs the way real desktop work does.
//! [`SyntheticSource::noisy`] adds a band of fresh noise every frame: content
//! no encoder can compress, for filling a link on purpose.

use crate::{BgraFrame, FrameSource, MediaError};

pub struct SyntheticSource {
    width: u32,
    height: u32,
    buf: Vec<u8>,
    base: Vec<u8>,
    tick: u32,
    noise: Option<u64>,
}

impl SyntheticSource {
    pub fn new(width: u32, height: u32) -> Self {
        let mut base = vec![0u8; (width * height * 4) as usize];
        for y in 0..height {
            for x in 0..width {
                let i = ((y * width + x) * 4) as usize;
                // Title bars, window bodies and "text" rows.
                let (b, g, r) = if y % 270 < 24 {
                    (90, 60, 40)
                } else if (y % 18) < 9 && (x % 11) < 7 && x % 480 > 40 && x % 480 < 440 {
                    (30, 30, 30)
                } else {
                    (240, 240, 236)
                };
                base[i..i + 4].copy_from_slice(&[b, g, r, 255]);
            }
        }
        SyntheticSource {
            width,
            height,
            buf: base.clone(),
            base,
            tick: 0,
            noise: None,
        }
    }

    /// Like [`new`](Self::new), plus a band (an eighth of the height) of new
    /// random pixels every frame.
    pub fn noisy(width: u32, height: u32) -> Self {
        SyntheticSource {
            noise: Some(0x9E37_79B9_7F4A_7C15),
            ..Self::new(width, height)
        }
    }

    fn render(&mut self) {
        let (w, h) = (self.width as usize, self.height as usize);
        self.buf.copy_from_slice(&self.base);
        // A scrolling text region in the middle third.
        let shift = (self.tick as usize * 3) % 18;
        let (top, bottom) = (h / 3, 2 * h / 3);
        for y in top..bottom {
            let src = top + (y - top + shift) % (bottom - top);
            let (d, s) = (y * w * 4, src * w * 4);
            let (a, b) = (d..d + w * 2, s..s + w * 2);
            self.buf[a].copy_from_slice(&self.base[b]);
        }
        // A moving "cursor" block.
        let bx = (self.tick as usize * 17) % (w.saturating_sub(64)).max(1);
        let by = (self.tick as usize * 7) % (h.saturating_sub(64)).max(1);
        for y in by..by + 64.min(h) {
            for x in bx..bx + 64.min(w) {
                let i = (y * w + x) * 4;
                self.buf[i..i + 4].copy_from_slice(&[40, 160, (self.tick * 9) as u8, 255]);
            }
        }
        if let Some(state) = self.noise.as_mut() {
            let band = &mut self.buf[(h / 3) * w * 4..(h / 3 + h / 8) * w * 4];
            for px in band.chunks_exact_mut(8) {
                // xorshift64: cheap, and random enough to defeat prediction.
                *state ^= *state << 13;
                *state ^= *state >> 7;
                *state ^= *state << 17;
                px.copy_from_slice(&(*state | 0xFF00_0000_FF00_0000).to_le_bytes());
            }
        }
        self.tick = self.tick.wrapping_add(1);
    }
}

impl FrameSource for SyntheticSource {
    fn grab(&mut self) -> Result<Option<BgraFrame<'_>>, MediaError> {
        self.render();
        Ok(Some(BgraFrame {
            data: &self.buf,
            width: self.width,
            height: self.height,
            stride: self.width * 4,
            serial: None,
        }))
    }
    fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }
}
