//! BGRA to I420 (YUV 4:2:0 planar), the encoder's input format.
//!
//! Uses the `yuv` crate: maintained, pure Rust, with AVX2/SSE4.1/NEON paths
//! picked at run time, and a direct BGRA->I420 kernel (no RGB detour). Its
//! `Fast` mode is the libyuv-equivalent precision, which is what a screen
//! codec needs. BT.601 limited range is what H.264 decoders assume when the
//! stream carries no colour description.

use openh264::formats::YUVSource;
use yuv::{YuvChromaSubsampling, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

use crate::{BgraFrame, MediaError};

/// An owned I420 picture with tightly packed planes. Width and height are
/// even (odd edges are cropped), as 4:2:0 requires.
#[derive(Debug, Clone, Default)]
pub struct I420Image {
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl I420Image {
    /// Converts `frame` into `self`, reusing the allocation when sizes match.
    pub fn convert_from(&mut self, frame: &BgraFrame<'_>) -> Result<(), MediaError> {
        frame.check()?;
        let (w, h) = (frame.width & !1, frame.height & !1);
        if w == 0 || h == 0 {
            return Err(MediaError::Convert(format!(
                "frame too small: {}x{}",
                frame.width, frame.height
            )));
        }
        let (cw, ch) = (w as usize / 2, h as usize / 2);
        self.width = w;
        self.height = h;
        self.y.resize(w as usize * h as usize, 0);
        self.u.resize(cw * ch, 0);
        self.v.resize(cw * ch, 0);
        let mut planar = YuvPlanarImageMut {
            y_plane: yuv::BufferStoreMut::Borrowed(&mut self.y),
            y_stride: w,
            u_plane: yuv::BufferStoreMut::Borrowed(&mut self.u),
            u_stride: cw as u32,
            v_plane: yuv::BufferStoreMut::Borrowed(&mut self.v),
            v_stride: cw as u32,
            width: w,
            height: h,
        };
        debug_assert!(planar.check_constraints(YuvChromaSubsampling::Yuv420).is_ok());
        yuv::bgra_to_yuv420(
            &mut planar,
            frame.data,
            frame.stride,
            YuvRange::Limited,
            YuvStandardMatrix::Bt601,
            YuvConversionMode::Fast,
        )
        .map_err(|e| MediaError::Convert(e.to_string()))
    }

    /// Back to RGBA, for tests and the Rust viewer.
    pub fn to_rgba(&self) -> Result<Vec<u8>, MediaError> {
        let mut out = vec![0u8; self.width as usize * self.height as usize * 4];
        let img = yuv::YuvPlanarImage {
            y_plane: &self.y,
            y_stride: self.width,
            u_plane: &self.u,
            u_stride: self.width / 2,
            v_plane: &self.v,
            v_stride: self.width / 2,
            width: self.width,
            height: self.height,
        };
        yuv::yuv420_to_rgba(
            &img,
            &mut out,
            self.width * 4,
            YuvRange::Limited,
            YuvStandardMatrix::Bt601,
        )
        .map_err(|e| MediaError::Convert(e.to_string()))?;
        Ok(out)
    }
}

impl YUVSource for I420Image {
    fn dimensions(&self) -> (usize, usize) {
        (self.width as usize, self.height as usize)
    }
    fn strides(&self) -> (usize, usize, usize) {
        (self.width as usize, self.width as usize / 2, self.width as usize / 2)
    }
    fn y(&self) -> &[u8] {
        &self.y
    }
    fn u(&self) -> &[u8] {
        &self.u
    }
    fn v(&self) -> &[u8] {
        &self.v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solid_colours_survive_the_round_trip() {
        // Pure primaries and greys, as BGRA.
        for (b, g, r) in [
            (0u8, 0u8, 255u8),
            (0, 255, 0),
            (255, 0, 0),
            (128, 128, 128),
            (255, 255, 255),
            (0, 0, 0),
        ] {
            let (w, h) = (64u32, 34u32);
            let data: Vec<u8> = (0..w * h).flat_map(|_| [b, g, r, 255]).collect();
            let frame = BgraFrame {
                data: &data,
                width: w,
                height: h,
                stride: w * 4,
                serial: None,
            };
            let mut img = I420Image::default();
            img.convert_from(&frame).unwrap();
            let rgba = img.to_rgba().unwrap();
            for px in rgba.chunks(4) {
                for (got, want) in px[..3].iter().zip([r, g, b]) {
                    assert!(
                        (*got as i32 - want as i32).abs() <= 4,
                        "got {px:?} want {:?}",
                        (r, g, b)
                    );
                }
            }
        }
    }

    #[test]
    fn odd_sizes_are_cropped_and_padded_strides_honoured() {
        let (w, h, stride) = (33u32, 21u32, 33 * 4 + 12);
        let data = vec![90u8; (stride * h) as usize];
        let frame = BgraFrame {
            data: &data,
            width: w,
            height: h,
            stride,
            serial: None,
        };
        let mut img = I420Image::default();
        img.convert_from(&frame).unwrap();
        assert_eq!((img.width, img.height), (32, 20));
        assert_eq!(img.u.len(), 16 * 10);
    }

    #[test]
    fn short_buffers_are_an_error_not_a_panic() {
        let data = vec![0u8; 100];
        let frame = BgraFrame {
            data: &data,
            width: 64,
            height: 64,
            stride: 256,
            serial: None,
        };
        assert!(I420Image::default().convert_from(&frame).is_err());
    }
}
