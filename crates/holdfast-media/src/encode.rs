//! H.264 encoding with OpenH264, tuned for interactive screen sharing:
//! real-time mode, bitrate rate control, no encoder-side frame skipping (the
//! host drops frames itself, before encoding, so it knows which frames the
//! viewer lacks), and keyframes only on request.
//!
//! [`Tuning::Screen`] (the default) is OpenH264's screen-content mode: the
//! smallest frames for text and UI, but its content analysis costs about
//! 23 ms per 1080p frame on this project's 2-core reference machine, capping
//! the frame rate near 30. [`Tuning::Motion`] (OpenH264's camera mode) encodes
//! busy 1080p content in about 18 ms there, at 2-3x the bytes for small
//! changes. See docs/benchmarks.md.

use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, QpRange, RateControlMode,
    UsageType, VuiConfig,
};
use openh264::OpenH264API;
use openh264_sys2::{
    SBitrateInfo, ENCODER_OPTION, ENCODER_OPTION_BITRATE, ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_0,
    SPATIAL_LAYER_ALL,
};

use crate::{I420Image, MediaError};

/// Default frame rate: smooth pointer motion without saturating two cores.
pub const DEFAULT_FPS: u32 = 30;
/// Default bitrate: crisp 1080p desktop text at 30 fps.
pub const DEFAULT_BITRATE_KBPS: u32 = 4_000;
/// The quantiser range. OpenH264 replaces a minimum of 0 (the crate's
/// default) with its screen-content limits [26, 35], and a maximum of 35
/// cannot honour a low bitrate on a big change: a page of text at 500 kbit/s
/// came out several times the budget. The full range up to 51 lets rate
/// control meet the target; the minimum keeps it from spending bits on
/// invisible refinement of static text.
pub const QP_RANGE: (u8, u8) = (12, 51);

/// What the encoder optimises for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tuning {
    /// Text and UI: OpenH264's screen-content mode.
    #[default]
    Screen,
    /// Speed and motion: OpenH264's camera mode.
    Motion,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderSettings {
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// OpenH264 worker threads; 0 lets it choose.
    pub threads: u16,
    pub tuning: Tuning,
}

impl Default for EncoderSettings {
    fn default() -> Self {
        EncoderSettings {
            fps: DEFAULT_FPS,
            bitrate_kbps: DEFAULT_BITRATE_KBPS,
            threads: 0,
            tuning: Tuning::Screen,
        }
    }
}

/// One encoded access unit (Annex B).
#[derive(Debug, Clone)]
pub struct EncodedPicture {
    pub data: Vec<u8>,
    pub keyframe: bool,
}

pub struct H264Encoder {
    encoder: Encoder,
    settings: EncoderSettings,
    dimensions: (u32, u32),
    force_keyframe: bool,
}

impl H264Encoder {
    pub fn new(settings: EncoderSettings) -> Result<Self, MediaError> {
        Ok(H264Encoder {
            encoder: Self::make(settings)?,
            settings,
            dimensions: (0, 0),
            force_keyframe: true,
        })
    }

    fn make(s: EncoderSettings) -> Result<Encoder, MediaError> {
        let config = EncoderConfig::new()
            .usage_type(match s.tuning {
                Tuning::Screen => UsageType::ScreenContentRealTime,
                Tuning::Motion => UsageType::CameraVideoRealTime,
            })
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(s.bitrate_kbps.saturating_mul(1000)))
            .max_frame_rate(FrameRate::from_hz(s.fps as f32))
            .skip_frames(false)
            .complexity(Complexity::Low)
            .intra_frame_period(IntraFramePeriod::from_num_frames(0))
            .qp(QpRange::new(QP_RANGE.0, QP_RANGE.1))
            .num_threads(s.threads)
            // Say how the pixels were converted (convert.rs: BT.601, limited
            // range). Without it each decoder guesses: Chromium picks BT.601,
            // WebKitGTK's GStreamer decoder BT.709 for HD, which shifted the
            // desktop app's greens by 27 levels.
            .vui(VuiConfig::bt601());
        Encoder::with_api_config(OpenH264API::from_source(), config).map_err(|e| MediaError::Encode(e.to_string()))
    }

    pub fn settings(&self) -> EncoderSettings {
        self.settings
    }

    /// Aims at `kbps` from the next frame on: no new encoder, no keyframe.
    pub fn set_bitrate(&mut self, kbps: u32) -> Result<(), MediaError> {
        let kbps = kbps.max(1);
        let was = self.settings.bitrate_kbps;
        if kbps == was {
            return Ok(());
        }
        self.settings.bitrate_kbps = kbps;
        if self.dimensions == (0, 0) {
            // Not initialised yet (that happens at the first frame): start there.
            self.encoder = Self::make(self.settings)?;
            return Ok(());
        }
        // OpenH264 refuses a layer's target above the layer's maximum, and
        // the crate set the maximum equal to the target: raise the maximums
        // (the stream's and the one layer's) first when going up, lower the
        // target first when going down. The target is set for the whole
        // stream, which OpenH264 hands on to the layer.
        const MAX_ALL: (ENCODER_OPTION, i32) = (ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_ALL);
        const MAX_LAYER: (ENCODER_OPTION, i32) = (ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_0);
        const TARGET: (ENCODER_OPTION, i32) = (ENCODER_OPTION_BITRATE, SPATIAL_LAYER_ALL);
        let order = if kbps > was {
            [MAX_ALL, MAX_LAYER, TARGET]
        } else {
            [TARGET, MAX_LAYER, MAX_ALL]
        };
        for (option, layer) in order {
            let mut info = SBitrateInfo {
                iLayer: layer,
                iBitrate: kbps.saturating_mul(1000).min(i32::MAX as u32) as i32,
            };
            // SAFETY: the encoder is initialised (a frame was encoded), and
            // both options take an SBitrateInfo that lives across the call.
            let rc = unsafe { self.encoder.raw_api().set_option(option, (&raw mut info).cast()) };
            if rc != 0 {
                return Err(MediaError::Encode(format!(
                    "setting the bitrate to {kbps} kbit/s: error {rc}"
                )));
            }
        }
        Ok(())
    }

    /// Makes the next frame an IDR frame.
    pub fn request_keyframe(&mut self) {
        self.force_keyframe = true;
    }

    /// Encodes one picture; `None` if the encoder produced nothing.
    pub fn encode(&mut self, image: &I420Image) -> Result<Option<EncodedPicture>, MediaError> {
        if self.dimensions != (image.width, image.height) {
            // OpenH264 adapts to a new size, but a fresh encoder guarantees the
            // first frame at the new size is a clean IDR with new SPS/PPS.
            if self.dimensions != (0, 0) {
                self.encoder = Self::make(self.settings)?;
            }
            self.dimensions = (image.width, image.height);
            self.force_keyframe = true;
        }
        if self.force_keyframe {
            self.encoder.force_intra_frame();
        }
        let stream = self
            .encoder
            .encode(image)
            .map_err(|e| MediaError::Encode(e.to_string()))?;
        let keyframe = match stream.frame_type() {
            FrameType::IDR | FrameType::I => true,
            FrameType::P | FrameType::IPMixed => false,
            FrameType::Skip | FrameType::Invalid => return Ok(None),
        };
        let data = stream.to_vec();
        if data.is_empty() {
            return Ok(None);
        }
        if keyframe {
            self.force_keyframe = false;
        }
        Ok(Some(EncodedPicture { data, keyframe }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::SyntheticSource;
    use crate::{FrameSource, H264Decoder, I420Image};

    /// Bytes of `n` frames of the busy synthetic desktop, all decoded, and
    /// whether any of them was a keyframe.
    fn encode_n(enc: &mut H264Encoder, src: &mut SyntheticSource, dec: &mut H264Decoder, n: usize) -> (usize, bool) {
        let mut image = I420Image::default();
        let (mut bytes, mut keyframe) = (0, false);
        for _ in 0..n {
            let frame = src.grab().unwrap().unwrap();
            image.convert_from(&frame).unwrap();
            let pic = enc.encode(&image).unwrap().expect("a changing screen gives a frame");
            bytes += pic.data.len();
            keyframe |= pic.keyframe;
            dec.decode(&pic.data).unwrap().expect("every frame decodes");
        }
        (bytes, keyframe)
    }

    #[test]
    fn the_bitrate_changes_mid_stream_without_a_keyframe() {
        // Started at 1 Mbit/s: above and below where it began.
        let mut enc = H264Encoder::new(EncoderSettings {
            bitrate_kbps: 1_000,
            ..Default::default()
        })
        .unwrap();
        let mut src = SyntheticSource::noisy(640, 360);
        let mut dec = H264Decoder::new().unwrap();
        encode_n(&mut enc, &mut src, &mut dec, 10);
        enc.set_bitrate(4_000).unwrap();
        encode_n(&mut enc, &mut src, &mut dec, 10);
        let (high, keyframe) = encode_n(&mut enc, &mut src, &mut dec, 30);
        assert!(!keyframe);
        enc.set_bitrate(300).unwrap();
        encode_n(&mut enc, &mut src, &mut dec, 10);
        let (low, keyframe) = encode_n(&mut enc, &mut src, &mut dec, 30);
        eprintln!("30 frames at 4000 kbit/s: {high} B; at 300 kbit/s: {low} B");
        assert!(!keyframe, "a new bitrate is not a new stream");
        // 300 kbit/s at 30 fps is 37.5 KB a second: allow the encoder its slack.
        assert!(low < 60_000, "300 kbit/s honoured: {low} B in a second");
        assert!(low * 4 < high, "{low} B is not far under {high} B");
        enc.set_bitrate(4_000).unwrap();
        encode_n(&mut enc, &mut src, &mut dec, 10);
        let (again, keyframe) = encode_n(&mut enc, &mut src, &mut dec, 30);
        assert!(!keyframe);
        assert!(again > low * 3, "back up: {again} B");
    }

    #[test]
    fn a_bitrate_set_before_the_first_frame_is_used_from_it() {
        let mut enc = H264Encoder::new(EncoderSettings::default()).unwrap();
        enc.set_bitrate(250).unwrap();
        assert_eq!(enc.settings().bitrate_kbps, 250);
        let mut src = SyntheticSource::noisy(640, 360);
        let mut dec = H264Decoder::new().unwrap();
        let (bytes, keyframe) = encode_n(&mut enc, &mut src, &mut dec, 30);
        assert!(keyframe, "the first frame is a keyframe");
        assert!(bytes < 120_000, "{bytes} B for a second at 250 kbit/s");
    }
}
