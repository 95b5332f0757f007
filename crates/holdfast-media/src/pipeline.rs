//! One frame's trip through the host: grab, compare with the last frame
//! encoded, scale down if asked, convert, encode. Every stage is timed, for the stats and the
//! benchmarks.

use std::time::{Duration, Instant};

use holdfast_proto::video::EncodedFrame;

use crate::change::ChangeDetector;
use crate::encode::{EncoderSettings, H264Encoder};
use crate::scale::{Downscaler, Scale};
use crate::{unix_micros, FrameSource, I420Image, MediaError};

/// What the caller wants from the next frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameRequest {
    /// Encode an IDR frame even if the screen did not change.
    pub force_keyframe: bool,
    /// Aim the encoder at this bitrate from this frame on (rate control);
    /// `None` keeps the current one.
    pub bitrate_kbps: Option<u32>,
    /// Encode the screen at this scale (a new scale is a new size: the
    /// frame is a keyframe). Applies from the next change of the screen.
    pub scale: Scale,
}

/// Time spent in each stage of one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimings {
    pub capture: Duration,
    pub detect: Duration,
    /// Scaling (when asked) and conversion to I420.
    pub convert: Duration,
    pub encode: Duration,
}

#[derive(Debug, Clone)]
pub enum FrameOutcome {
    /// A new encoded frame. `frame_id` is 0: the sender numbers frames per viewer.
    Encoded(EncodedFrame, StageTimings),
    /// The screen is identical to the last frame encoded.
    Unchanged(StageTimings),
    /// The source had no frame ready.
    NotReady,
}

pub struct MediaPipeline<S: FrameSource> {
    source: S,
    detector: ChangeDetector,
    downscaler: Downscaler,
    image: I420Image,
    encoder: H264Encoder,
}

impl<S: FrameSource> MediaPipeline<S> {
    pub fn new(source: S, settings: EncoderSettings) -> Result<Self, MediaError> {
        Ok(MediaPipeline {
            source,
            detector: ChangeDetector::default(),
            downscaler: Downscaler::default(),
            image: I420Image::default(),
            encoder: H264Encoder::new(settings)?,
        })
    }

    pub fn source_dimensions(&self) -> (u32, u32) {
        self.source.dimensions()
    }

    /// Captures from `source` from now on; its first frame is encoded (as a
    /// keyframe if the size changed) even if it looks like the last one.
    pub fn replace_source(&mut self, source: S) {
        self.source = source;
        self.detector = ChangeDetector::default();
        self.encoder.request_keyframe();
    }

    pub fn step(&mut self, req: FrameRequest) -> Result<FrameOutcome, MediaError> {
        let mut t = StageTimings::default();
        let start = Instant::now();
        let capture_us = unix_micros();
        let Some(frame) = self.source.grab()? else {
            return Ok(FrameOutcome::NotReady);
        };
        t.capture = start.elapsed();

        let mark = Instant::now();
        let hash = ChangeDetector::hash(&frame);
        t.detect = mark.elapsed();
        if !req.force_keyframe && !self.detector.changed(hash) {
            return Ok(FrameOutcome::Unchanged(t));
        }

        let mark = Instant::now();
        let display = Scale::FULL.apply(frame.width, frame.height);
        let coded = req.scale.apply(frame.width, frame.height);
        if coded == display {
            self.image.convert_from(&frame)?;
        } else {
            let small = self.downscaler.resize(&frame, coded.0, coded.1)?;
            self.image.convert_from(&small)?;
        }
        t.convert = mark.elapsed();

        let mark = Instant::now();
        if let Some(kbps) = req.bitrate_kbps {
            // A bitrate OpenH264 refuses costs the adaptation, not the frame.
            if let Err(e) = self.encoder.set_bitrate(kbps) {
                tracing::warn!("{e}");
            }
        }
        if req.force_keyframe {
            self.encoder.request_keyframe();
        }
        let encoded = self.encoder.encode(&self.image)?;
        t.encode = mark.elapsed();
        let Some(pic) = encoded else {
            return Ok(FrameOutcome::Unchanged(t));
        };
        self.detector.record(hash);
        Ok(FrameOutcome::Encoded(
            EncodedFrame {
                frame_id: 0,
                keyframe: pic.keyframe,
                capture_us,
                width: self.image.width as u16,
                height: self.image.height as u16,
                display_width: display.0 as u16,
                display_height: display.1 as u16,
                data: pic.data,
            },
            t,
        ))
    }

    /// The I420 picture of the last frame converted (for tests).
    pub fn last_image(&self) -> &I420Image {
        &self.image
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::SyntheticSource;
    use crate::H264Decoder;

    struct Still(Vec<u8>);
    impl FrameSource for Still {
        fn grab(&mut self) -> Result<Option<crate::BgraFrame<'_>>, MediaError> {
            Ok(Some(crate::BgraFrame {
                data: &self.0,
                width: 64,
                height: 48,
                stride: 256,
            }))
        }
        fn dimensions(&self) -> (u32, u32) {
            (64, 48)
        }
    }

    #[test]
    fn first_frame_is_a_keyframe_and_an_unchanged_screen_is_not_reencoded() {
        let mut p = MediaPipeline::new(Still(vec![128; 256 * 48]), EncoderSettings::default()).unwrap();
        match p.step(FrameRequest::default()).unwrap() {
            FrameOutcome::Encoded(f, _) => assert!(f.keyframe),
            other => panic!("expected a frame, got {other:?}"),
        }
        assert!(matches!(
            p.step(FrameRequest::default()).unwrap(),
            FrameOutcome::Unchanged(_)
        ));
        match p
            .step(FrameRequest {
                force_keyframe: true,
                ..Default::default()
            })
            .unwrap()
        {
            FrameOutcome::Encoded(f, _) => assert!(f.keyframe),
            other => panic!("expected a forced keyframe, got {other:?}"),
        }
    }

    #[test]
    fn a_scaled_frame_is_a_smaller_keyframe_of_the_same_screen() {
        let mut p = MediaPipeline::new(SyntheticSource::new(640, 360), EncoderSettings::default()).unwrap();
        let mut dec = H264Decoder::new().unwrap();
        let mut sizes = Vec::new();
        for (i, scale) in [Scale::FULL, Scale::FULL, Scale::step(2), Scale::step(2), Scale::FULL]
            .into_iter()
            .enumerate()
        {
            let req = FrameRequest {
                scale,
                ..Default::default()
            };
            let FrameOutcome::Encoded(f, _) = p.step(req).unwrap() else {
                panic!("frame {i}: the synthetic screen changes every frame");
            };
            assert_eq!((f.display_width, f.display_height), (640, 360));
            let pic = dec.decode(&f.data).unwrap().expect("every frame decodes");
            assert_eq!((pic.width, pic.height), (f.width as u32, f.height as u32));
            sizes.push((f.width, f.height, f.keyframe));
        }
        assert_eq!(
            sizes,
            [
                (640, 360, true),
                (640, 360, false),
                (320, 180, true),
                (320, 180, false),
                (640, 360, true)
            ],
            "a new size starts with a keyframe, and only then"
        );
    }

    #[test]
    fn encoded_frames_decode_to_what_was_captured() {
        let mut p = MediaPipeline::new(SyntheticSource::new(320, 240), EncoderSettings::default()).unwrap();
        let mut dec = H264Decoder::new().unwrap();
        let mut decoded = 0;
        for i in 0..10 {
            let FrameOutcome::Encoded(f, _) = p.step(FrameRequest::default()).unwrap() else {
                continue;
            };
            assert_eq!(f.keyframe, i == 0, "only the first frame is a keyframe");
            if let Some(pic) = dec.decode(&f.data).unwrap() {
                decoded += 1;
                assert_eq!((pic.width, pic.height), (320, 240));
                let want = p.last_image().to_rgba().unwrap();
                let mean_err: f64 = pic
                    .rgba
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (*a as f64 - *b as f64).abs())
                    .sum::<f64>()
                    / want.len() as f64;
                assert!(mean_err < 6.0, "frame {i}: mean abs error {mean_err}");
            }
        }
        assert!(decoded >= 9);
    }
}
