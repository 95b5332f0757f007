//! Scaling the screen down before it is encoded, for links too slow to carry
//! its full size: a 1080p page of text is a 300-400 KB keyframe, seconds on a
//! 1 Mbit/s link; at half size it is a quarter of that. The viewer draws the
//! smaller picture stretched to the screen's size (the `video` format carries
//! both sizes), so coordinates and layout stay those of the screen.
//!
//! Resizing uses `fast_image_resize`: maintained, SIMD (AVX2/SSE4.1/NEON)
//! picked at run time, with convolution filters whose support widens with the
//! ratio, so text shrinks by averaging rather than by dropping pixels. The
//! filter is a box (each output pixel the average of the pixels it covers):
//! as sharp on text as a wider bilinear kernel is soft, and faster (criterion
//! `downscale_to_half`, 1080p: 4.8-7.6 ms bilinear, 3.4-3.6 ms box).

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::{BgraFrame, MediaError};

/// A scale factor `num/den`, from the fixed [`Scale::LADDER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scale {
    num: u8,
    den: u8,
}

impl Default for Scale {
    fn default() -> Self {
        Scale::FULL
    }
}

impl Scale {
    pub const FULL: Scale = Scale { num: 1, den: 1 };
    /// The sizes the host picks from, largest first. Steps of about 1.5x in
    /// area at the top, 2x below: each step down roughly halves a keyframe.
    pub const LADDER: [Scale; 5] = [
        Scale::FULL,
        Scale { num: 3, den: 4 },
        Scale { num: 1, den: 2 },
        Scale { num: 1, den: 3 },
        Scale { num: 1, den: 4 },
    ];
    /// No picture is made smaller than this on either side.
    pub const MIN_SIDE: u32 = 64;

    /// The ladder's step `i` (clamped to the smallest).
    pub fn step(i: usize) -> Scale {
        Scale::LADDER[i.min(Scale::LADDER.len() - 1)]
    }

    /// Where this scale is on the ladder.
    pub fn index(self) -> usize {
        Scale::LADDER.iter().position(|s| *s == self).unwrap_or(0)
    }

    /// The share of the full picture's pixels.
    pub fn area(self) -> f64 {
        let f = self.num as f64 / self.den as f64;
        f * f
    }

    /// The coded size for a screen of `width` x `height`: even (4:2:0), at
    /// least [`Scale::MIN_SIDE`] where the screen is, never above the screen's even size.
    pub fn apply(self, width: u32, height: u32) -> (u32, u32) {
        let side = |v: u32| {
            let even = v & !1;
            let scaled = (v as u64 * self.num as u64 / self.den as u64) as u32 & !1;
            scaled.max(Scale::MIN_SIDE.min(even)).min(even)
        };
        (side(width), side(height))
    }
}

impl std::fmt::Display for Scale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

/// Resizes BGRA frames, keeping its buffers between frames.
#[derive(Default)]
pub struct Downscaler {
    resizer: Resizer,
    /// The source repacked without row padding (only when it has some).
    packed: Vec<u8>,
    out: Vec<u8>,
}

impl std::fmt::Debug for Downscaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downscaler").finish_non_exhaustive()
    }
}

impl Downscaler {
    /// `frame` resized to `width` x `height` (a picture borrowed from `self`).
    pub fn resize<'a>(
        &'a mut self,
        frame: &BgraFrame<'_>,
        width: u32,
        height: u32,
    ) -> Result<BgraFrame<'a>, MediaError> {
        frame.check()?;
        if width == 0 || height == 0 {
            return Err(MediaError::Convert(format!(
                "cannot resize {}x{} to {width}x{height}",
                frame.width, frame.height
            )));
        }
        let (row, rows) = (frame.width as usize * 4, frame.height as usize);
        let src = if frame.stride as usize == row {
            &frame.data[..row * rows]
        } else {
            self.packed.clear();
            for r in frame.data.chunks(frame.stride as usize).take(rows) {
                self.packed.extend_from_slice(&r[..row]);
            }
            &self.packed[..]
        };
        let src = ImageRef::new(frame.width, frame.height, src, PixelType::U8x4)
            .map_err(|e| MediaError::Convert(format!("resize source: {e}")))?;
        self.out.resize(width as usize * height as usize * 4, 0);
        let mut dst = Image::from_slice_u8(width, height, &mut self.out, PixelType::U8x4)
            .map_err(|e| MediaError::Convert(format!("resize target: {e}")))?;
        // Alpha is not premultiplied here (the screen is opaque), so no
        // alpha handling: it would only cost time.
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::Box))
            .use_alpha(false);
        self.resizer
            .resize(&src, &mut dst, &options)
            .map_err(|e| MediaError::Convert(format!("resize: {e}")))?;
        Ok(BgraFrame {
            data: &self.out,
            width,
            height,
            stride: width * 4,
            serial: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_even_bounded_and_never_above_the_screen() {
        assert_eq!(Scale::FULL.apply(1920, 1080), (1920, 1080));
        assert_eq!(Scale::step(1).apply(1920, 1080), (1440, 810));
        assert_eq!(Scale::step(2).apply(1920, 1080), (960, 540));
        assert_eq!(Scale::step(3).apply(1920, 1080), (640, 360));
        assert_eq!(Scale::step(4).apply(1366, 768), (340, 192));
        assert_eq!(Scale::step(9), Scale::step(4));
        assert_eq!(Scale::FULL.apply(33, 21), (32, 20));
        // Small screens stop at the minimum side, or their own size.
        assert_eq!(Scale::step(4).apply(200, 100), (64, 64));
        assert_eq!(Scale::step(4).apply(40, 30), (40, 30));
        for s in Scale::LADDER {
            assert_eq!(Scale::step(s.index()), s);
        }
        assert!(Scale::step(2).area() == 0.25);
    }

    /// A frame of vertical stripes: left half `a`, right half `b`.
    fn halves(w: u32, h: u32, stride: u32, a: [u8; 4], b: [u8; 4]) -> Vec<u8> {
        let mut data = vec![0u8; (stride * h) as usize];
        for y in 0..h {
            for x in 0..w {
                let i = (y * stride + x * 4) as usize;
                data[i..i + 4].copy_from_slice(if x < w / 2 { &a } else { &b });
            }
        }
        data
    }

    #[test]
    fn a_resized_picture_keeps_what_is_where() {
        let (w, h) = (320u32, 180u32);
        for stride in [w * 4, w * 4 + 64] {
            let data = halves(w, h, stride, [0, 0, 255, 255], [255, 0, 0, 255]);
            let frame = BgraFrame {
                data: &data,
                width: w,
                height: h,
                stride,
                serial: None,
            };
            let mut d = Downscaler::default();
            let small = d.resize(&frame, 160, 90).unwrap();
            assert_eq!((small.width, small.height, small.stride), (160, 90, 640));
            let px = |x: usize, y: usize| &small.data[(y * 160 + x) * 4..][..3];
            assert_eq!(px(10, 45), [0, 0, 255], "left stays red (stride {stride})");
            assert_eq!(px(150, 45), [255, 0, 0], "right stays blue (stride {stride})");
        }
    }

    #[test]
    fn bad_geometry_is_an_error_not_a_panic() {
        let mut d = Downscaler::default();
        let short = vec![0u8; 100];
        assert!(d
            .resize(
                &BgraFrame {
                    data: &short,
                    width: 64,
                    height: 64,
                    stride: 256,
                    serial: None,
                },
                32,
                32
            )
            .is_err());
        let ok = vec![0u8; 64 * 64 * 4];
        let frame = BgraFrame {
            data: &ok,
            width: 64,
            height: 64,
            stride: 256,
            serial: None,
        };
        assert!(d.resize(&frame, 0, 32).is_err());
    }
}
