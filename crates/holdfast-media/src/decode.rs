//! H.264 decoding with OpenH264, for the Rust viewer and for tests that
//! compare what arrived with what was captured.

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use openh264::OpenH264API;

use crate::MediaError;

/// A decoded picture as RGBA, tightly packed.
#[derive(Debug, Clone)]
pub struct DecodedPicture {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

impl DecodedPicture {
    /// The `[r, g, b]` at `(x, y)`.
    pub fn rgb_at(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 4;
        [self.rgba[i], self.rgba[i + 1], self.rgba[i + 2]]
    }
}

pub struct H264Decoder {
    decoder: Decoder,
}

impl H264Decoder {
    pub fn new() -> Result<Self, MediaError> {
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), Default::default())
            .map_err(|e| MediaError::Decode(e.to_string()))?;
        Ok(H264Decoder { decoder })
    }

    /// Decodes one access unit (Annex B); `None` if no picture came out yet.
    pub fn decode(&mut self, data: &[u8]) -> Result<Option<DecodedPicture>, MediaError> {
        let Some(yuv) = self
            .decoder
            .decode(data)
            .map_err(|e| MediaError::Decode(e.to_string()))?
        else {
            return Ok(None);
        };
        let (w, h) = yuv.dimensions();
        let mut rgba = vec![0u8; w * h * 4];
        yuv.write_rgba8(&mut rgba);
        Ok(Some(DecodedPicture {
            width: w as u32,
            height: h as u32,
            rgba,
        }))
    }
}
