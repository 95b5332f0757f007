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
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode, UsageType,
    VuiConfig,
};
use openh264::OpenH264API;

use crate::{I420Image, MediaError};

/// Default frame rate: smooth pointer motion without saturating two cores.
pub const DEFAULT_FPS: u32 = 30;
/// Default bitrate: crisp 1080p desktop text at 30 fps.
pub const DEFAULT_BITRATE_KBPS: u32 = 4_000;

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
