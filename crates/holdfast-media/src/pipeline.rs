//! One frame's trip through the host: grab, compare with the last frame
//! encoded, scale down if asked, convert, encode. Every stage is timed, for the stats and the
//! benchmarks.

use std::time::{Duration, Instant};

use holdfast_proto::video::EncodedFrame;

use crate::change::ChangeDetector;
use crate::encode::{EncoderSettings, H264Encoder, Tuning};
use crate::scale::{Downscaler, Scale};
use crate::{unix_micros, FrameSource, I420Image, MediaError};

/// What the caller wants from the next frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FrameRequest {
    /// Encode an IDR frame even if the screen did not change.
    pub force_keyframe: bool,
    /// Aim the encoder at this bitrate from this frame on (rate control);
    /// `None` keeps the current one.
    pub bitrate_kbps: Option<u32>,
    /// Encode the screen at this scale (a new scale is a new size: the
    /// frame is a keyframe, made even if the screen did not change).
    pub scale: Scale,
    /// Code the frame as a keyframe when at least this share of the screen
    /// changed since the lane's last frame: OpenH264's motion search over a
    /// changed page costs 3-5x a keyframe's encode (a 1080p page switch:
    /// 160-215 ms as a P-frame, 35-65 ms as a keyframe), for ~1.3x the bytes
    /// at 1080p and fewer at 960x540.
    pub keyframe_above_change: Option<f64>,
    /// Code with this tuning from this frame on (a new tuning is a new
    /// encoder: the frame is a keyframe); `None` keeps the current one.
    pub tuning: Option<Tuning>,
}

/// Which pixels are compared to tell how much of the screen changed: one in
/// this many along each side (8,160 of a 1080p screen).
const CHANGE_SAMPLE_STEP: usize = 16;

/// A sparse sample of a frame's pixels into `out`, to tell what share of the
/// screen changed.
fn change_samples(frame: &crate::BgraFrame<'_>, out: &mut Vec<u32>) {
    let (w, h, stride) = (frame.width as usize, frame.height as usize, frame.stride as usize);
    out.clear();
    out.reserve(w.div_ceil(CHANGE_SAMPLE_STEP) * h.div_ceil(CHANGE_SAMPLE_STEP));
    for y in (0..h).step_by(CHANGE_SAMPLE_STEP) {
        for x in (0..w).step_by(CHANGE_SAMPLE_STEP) {
            let i = y * stride + x * 4;
            if let Some(px) = frame.data.get(i..i + 4) {
                out.push(u32::from_le_bytes([px[0], px[1], px[2], px[3]]));
            }
        }
    }
}

/// The share of samples that differ (all of them when the sizes differ).
fn changed_share(now: &[u32], before: &[u32]) -> f64 {
    if now.len() != before.len() || now.is_empty() {
        return 1.0;
    }
    now.iter().zip(before).filter(|(a, b)| a != b).count() as f64 / now.len() as f64
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

/// How many encoders ("lanes") one capture can feed. Each lane has its own
/// bitrate, size and references, so viewers on very different links do not
/// share one rate (docs/rate-control.md, "Several viewers"). Two: a second
/// encoder at a slow viewer's small size costs little, a third would be one
/// more 1080p encoder on a machine that has two cores.
pub const MAX_LANES: usize = 2;

/// What one capture gave the lanes that asked.
#[derive(Debug, Clone, Default)]
pub struct LanesOutcome {
    /// The lanes that encoded something, with their frames, in request order.
    pub frames: Vec<(usize, EncodedFrame)>,
    /// Convert and encode are summed over the lanes (they run one after another).
    pub timings: StageTimings,
    /// False when the source had no frame ready (nothing was done).
    pub ready: bool,
}

/// One encoder with what it last encoded: its own size, picture buffer and
/// change detector (a lane not asked for a frame has not seen the changes).
struct LaneCoder {
    encoder: H264Encoder,
    detector: ChangeDetector,
    downscaler: Downscaler,
    image: I420Image,
    /// [`change_samples`] of the last frame this lane encoded.
    samples: Vec<u32>,
    /// The size of the last picture this lane encoded.
    coded: (u32, u32),
}

pub struct MediaPipeline<S: FrameSource> {
    source: S,
    settings: EncoderSettings,
    lanes: [Option<LaneCoder>; MAX_LANES],
    /// [`change_samples`] of the frame being coded (kept to reuse its memory).
    samples: Vec<u32>,
}

impl<S: FrameSource> MediaPipeline<S> {
    pub fn new(source: S, settings: EncoderSettings) -> Result<Self, MediaError> {
        let mut p = MediaPipeline {
            source,
            settings,
            lanes: Default::default(),
            samples: Vec::new(),
        };
        // The first lane is made now, so bad settings fail here.
        p.lane(0)?;
        Ok(p)
    }

    fn lane(&mut self, lane: usize) -> Result<&mut LaneCoder, MediaError> {
        let settings = self.settings;
        let slot = self
            .lanes
            .get_mut(lane)
            .ok_or_else(|| MediaError::Encode(format!("no lane {lane} (at most {MAX_LANES})")))?;
        if slot.is_none() {
            *slot = Some(LaneCoder {
                encoder: H264Encoder::new(settings)?,
                detector: ChangeDetector::default(),
                downscaler: Downscaler::default(),
                image: I420Image::default(),
                samples: Vec::new(),
                coded: (0, 0),
            });
        }
        Ok(slot.as_mut().expect("just filled"))
    }

    /// Frees `lane`'s encoder (no viewer is on it); asking for it again
    /// starts a new one with a keyframe.
    pub fn release_lane(&mut self, lane: usize) {
        if let Some(slot) = self.lanes.get_mut(lane) {
            *slot = None;
        }
    }

    /// How many lanes have an encoder.
    pub fn lanes_open(&self) -> usize {
        self.lanes.iter().filter(|l| l.is_some()).count()
    }

    pub fn source_dimensions(&self) -> (u32, u32) {
        self.source.dimensions()
    }

    /// Captures from `source` from now on; its first frame is encoded (as a
    /// keyframe if the size changed) even if it looks like the last one.
    pub fn replace_source(&mut self, source: S) {
        self.source = source;
        for lane in self.lanes.iter_mut().flatten() {
            lane.detector.reset();
            lane.encoder.request_keyframe();
        }
    }

    /// One capture encoded for lane 0.
    pub fn step(&mut self, req: FrameRequest) -> Result<FrameOutcome, MediaError> {
        let out = self.step_lanes(&[(0, req)])?;
        Ok(match out.frames.into_iter().next() {
            _ if !out.ready => FrameOutcome::NotReady,
            Some((_, frame)) => FrameOutcome::Encoded(frame, out.timings),
            None => FrameOutcome::Unchanged(out.timings),
        })
    }

    /// One capture, encoded for each lane in `reqs` whose last frame differs
    /// from it (or that asks for a keyframe).
    pub fn step_lanes(&mut self, reqs: &[(usize, FrameRequest)]) -> Result<LanesOutcome, MediaError> {
        let mut out = LanesOutcome::default();
        for &(lane, _) in reqs {
            self.lane(lane)?;
        }
        let start = Instant::now();
        let capture_us = unix_micros();
        let Some(frame) = self.source.grab()? else {
            return Ok(out);
        };
        out.ready = true;
        out.timings.capture = start.elapsed();

        let mark = Instant::now();
        let hash = match frame.serial {
            // The source numbers its pictures: no need to look at pixels.
            Some(serial) => ChangeDetector::from_serial(serial),
            None => ChangeDetector::hash(&frame),
        };
        out.timings.detect = mark.elapsed();

        let display = Scale::FULL.apply(frame.width, frame.height);
        // Sampled once per capture, and only once a lane is to encode (an
        // unchanged screen costs nothing more).
        let wants_samples = reqs.iter().any(|(_, r)| r.keyframe_above_change.is_some());
        let mut sampled = false;
        for &(lane, req) in reqs {
            let Some(l) = self.lanes[lane].as_mut() else { continue };
            let coded = req.scale.apply(frame.width, frame.height);
            // A new size is encoded even if the screen did not change: on a
            // still screen the viewer would otherwise keep the old size
            // until something moved.
            let resized = l.coded != coded;
            if !req.force_keyframe && !resized && !l.detector.changed(hash) {
                continue;
            }
            if wants_samples && !sampled {
                change_samples(&frame, &mut self.samples);
                sampled = true;
            }
            let mark = Instant::now();
            if coded == display {
                l.image.convert_from(&frame)?;
            } else {
                let small = l.downscaler.resize(&frame, coded.0, coded.1)?;
                l.image.convert_from(&small)?;
            }
            out.timings.convert += mark.elapsed();

            let mark = Instant::now();
            if let Some(kbps) = req.bitrate_kbps {
                // A bitrate OpenH264 refuses costs the adaptation, not the frame.
                if let Err(e) = l.encoder.set_bitrate(kbps) {
                    tracing::warn!("{e}");
                }
            }
            if let Some(tuning) = req.tuning {
                l.encoder.set_tuning(tuning)?;
            }
            let big_change = match req.keyframe_above_change {
                Some(share) if sampled => changed_share(&self.samples, &l.samples) >= share,
                _ => false,
            };
            if req.force_keyframe || big_change {
                l.encoder.request_keyframe();
            }
            let encoded = l.encoder.encode(&l.image)?;
            out.timings.encode += mark.elapsed();
            // What the lane last *encoded* is what later frames compare with:
            // a frame the encoder skipped changed nothing the viewer has.
            let Some(pic) = encoded else { continue };
            l.detector.record(hash);
            l.coded = coded;
            if sampled {
                l.samples.clone_from(&self.samples);
            }
            out.frames.push((
                lane,
                EncodedFrame {
                    frame_id: 0,
                    keyframe: pic.keyframe,
                    capture_us,
                    width: l.image.width as u16,
                    height: l.image.height as u16,
                    display_width: display.0 as u16,
                    display_height: display.1 as u16,
                    data: pic.data,
                },
            ));
        }
        Ok(out)
    }

    /// The I420 picture lane 0 last converted (for tests).
    pub fn last_image(&self) -> Option<&I420Image> {
        self.lanes[0].as_ref().map(|l| &l.image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::SyntheticSource;
    use crate::H264Decoder;

    /// A screen that never changes, `w` x `h` of mid grey.
    struct Still(Vec<u8>, u32, u32);
    impl Still {
        fn new(w: u32, h: u32) -> Self {
            Still(vec![128; (w * h * 4) as usize], w, h)
        }
    }
    impl FrameSource for Still {
        fn grab(&mut self) -> Result<Option<crate::BgraFrame<'_>>, MediaError> {
            Ok(Some(crate::BgraFrame {
                data: &self.0,
                width: self.1,
                height: self.2,
                stride: self.1 * 4,
                serial: None,
            }))
        }
        fn dimensions(&self) -> (u32, u32) {
            (self.1, self.2)
        }
    }

    #[test]
    fn first_frame_is_a_keyframe_and_an_unchanged_screen_is_not_reencoded() {
        let mut p = MediaPipeline::new(Still::new(64, 48), EncoderSettings::default()).unwrap();
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

    /// A screen whose top `rows` rows change on each grab.
    struct Partly {
        data: Vec<u8>,
        rows: usize,
        n: u8,
    }
    impl FrameSource for Partly {
        fn grab(&mut self) -> Result<Option<crate::BgraFrame<'_>>, MediaError> {
            self.n = self.n.wrapping_add(40);
            let n = self.n;
            for (i, b) in self.data[..self.rows * 256 * 4].iter_mut().enumerate() {
                *b = n.wrapping_add((i / 4 % 256) as u8);
            }
            Ok(Some(crate::BgraFrame {
                data: &self.data,
                width: 256,
                height: 192,
                stride: 1024,
                serial: None,
            }))
        }
        fn dimensions(&self) -> (u32, u32) {
            (256, 192)
        }
    }

    #[test]
    fn a_big_change_is_a_keyframe_when_asked_and_a_small_one_is_not() {
        let frames = |rows: usize, above: Option<f64>| {
            let src = Partly {
                data: vec![90; 256 * 192 * 4],
                rows,
                n: 0,
            };
            let mut p = MediaPipeline::new(src, EncoderSettings::default()).unwrap();
            let req = FrameRequest {
                keyframe_above_change: above,
                ..Default::default()
            };
            (0..4)
                .map(|_| match p.step(req).unwrap() {
                    FrameOutcome::Encoded(f, _) => f.keyframe,
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>()
        };
        // A third of the screen changes on each frame.
        assert_eq!(frames(64, Some(0.2)), [true, true, true, true]);
        assert_eq!(frames(64, None), [true, false, false, false], "not asked");
        assert_eq!(frames(64, Some(0.5)), [true, false, false, false], "under the share");
        // A tenth.
        assert_eq!(frames(19, Some(0.2)), [true, false, false, false]);
        assert_eq!(changed_share(&[1, 2, 3, 4], &[1, 2, 0, 0]), 0.5);
        assert_eq!(changed_share(&[1, 2], &[]), 1.0, "nothing to compare with");
    }

    #[test]
    fn a_new_size_of_a_still_screen_is_encoded() {
        let mut p = MediaPipeline::new(Still::new(256, 192), EncoderSettings::default()).unwrap();
        let at = |scale| FrameRequest {
            scale,
            ..Default::default()
        };
        let mut sizes = Vec::new();
        for scale in [Scale::step(2), Scale::step(2), Scale::FULL, Scale::FULL] {
            match p.step(at(scale)).unwrap() {
                FrameOutcome::Encoded(f, _) => sizes.push(Some((f.width, f.height, f.keyframe))),
                FrameOutcome::Unchanged(_) => sizes.push(None),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(sizes, [Some((128, 96, true)), None, Some((256, 192, true)), None]);
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
                let want = p.last_image().expect("lane 0").to_rgba().unwrap();
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

    /// Two encoders on one capture: each lane's stream decodes on its own,
    /// a lane asked only now and then still gets every change since its last
    /// frame, and a keyframe on one lane is not one on the other.
    #[test]
    fn lanes_keep_their_own_size_references_and_keyframes() {
        let mut p = MediaPipeline::new(SyntheticSource::new(640, 360), EncoderSettings::default()).unwrap();
        let (mut fast, mut slow) = (H264Decoder::new().unwrap(), H264Decoder::new().unwrap());
        let small = FrameRequest {
            scale: Scale::step(2),
            bitrate_kbps: Some(300),
            ..Default::default()
        };
        let (mut fast_frames, mut slow_frames) = (Vec::new(), Vec::new());
        for i in 0..12 {
            let mut reqs = vec![(0, FrameRequest::default())];
            if i % 3 == 0 {
                let keyframe = i == 6;
                reqs.push((
                    1,
                    FrameRequest {
                        force_keyframe: keyframe,
                        ..small
                    },
                ));
            }
            let out = p.step_lanes(&reqs).unwrap();
            assert!(out.ready);
            for (lane, f) in out.frames {
                let dec = if lane == 0 { &mut fast } else { &mut slow };
                let pic = dec.decode(&f.data).unwrap().expect("every frame decodes");
                assert_eq!((pic.width, pic.height), (f.width as u32, f.height as u32));
                assert_eq!((f.display_width, f.display_height), (640, 360));
                if lane == 0 { &mut fast_frames } else { &mut slow_frames }.push((f.width, f.keyframe));
            }
        }
        assert_eq!(p.lanes_open(), 2);
        assert_eq!(fast_frames.len(), 12);
        assert!(fast_frames.iter().all(|&(w, _)| w == 640));
        assert_eq!(
            fast_frames.iter().map(|f| f.1).collect::<Vec<_>>(),
            [true, false, false, false, false, false, false, false, false, false, false, false],
            "lane 1's keyframes are not lane 0's"
        );
        assert_eq!(
            slow_frames,
            [(320, true), (320, false), (320, true), (320, false)],
            "lane 1: its own size, a keyframe only when asked"
        );
        p.release_lane(1);
        assert_eq!(p.lanes_open(), 1);
        let out = p.step_lanes(&[(1, small)]).unwrap();
        assert!(out.frames[0].1.keyframe, "a lane opened again starts with a keyframe");
        assert!(p.step_lanes(&[(2, small)]).is_err(), "there are two lanes");
    }

    #[test]
    fn a_lane_asked_for_another_tuning_starts_it_with_a_keyframe() {
        let mut p = MediaPipeline::new(SyntheticSource::new(640, 360), EncoderSettings::default()).unwrap();
        let mut dec = H264Decoder::new().unwrap();
        let mut keyframes = Vec::new();
        for i in 0..8 {
            let tuning = match i {
                0..=2 => None,
                3 => Some(crate::encode::Tuning::Screen),
                _ => Some(crate::encode::Tuning::Motion),
            };
            let req = FrameRequest {
                tuning,
                ..Default::default()
            };
            let FrameOutcome::Encoded(f, _) = p.step(req).unwrap() else {
                panic!("the synthetic screen changes every frame");
            };
            dec.decode(&f.data).unwrap().expect("every frame decodes");
            keyframes.push(f.keyframe);
        }
        assert_eq!(
            keyframes,
            [true, false, false, false, true, false, false, false],
            "the same tuning is no new encoder; Motion from the fifth frame is"
        );
    }
}
