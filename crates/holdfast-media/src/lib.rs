//! Holdfast's media path on the host (and the decoder the Rust viewer uses).
//!
//! `capture` grabs BGRA frames (scrap), `convert` turns them into I420 with
//! SIMD (the `yuv` crate), `scale` shrinks them for slow links, `change` skips frames identical to the last one
//! encoded, `encode` and `decode` wrap OpenH264, and `pipeline` chains them
//! with per-stage timings. `worker` runs a pipeline on its own thread, since
//! capturers are tied to the thread that made them.
//!
//! Nothing here knows about networks or async runtimes.

pub mod capture;
pub mod change;
pub mod convert;
pub mod decode;
pub mod encode;
pub mod pipeline;
pub mod scale;
pub mod synthetic;
pub mod worker;

pub use capture::{BgraFrame, FrameSource, ScreenSource};
pub use convert::I420Image;
pub use decode::{DecodedPicture, H264Decoder};
pub use encode::{EncoderSettings, H264Encoder};
pub use pipeline::{FrameOutcome, FrameRequest, LanesOutcome, MediaPipeline, StageTimings, MAX_LANES};
pub use scale::{Downscaler, Scale};

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("screen capture failed: {0}")]
    Capture(String),
    #[error("no display {0} (found {1})")]
    NoSuchDisplay(usize, usize),
    #[error("colour conversion failed: {0}")]
    Convert(String),
    #[error("H.264 encoder: {0}")]
    Encode(String),
    #[error("H.264 decoder: {0}")]
    Decode(String),
    #[error("media worker stopped")]
    WorkerGone,
}

/// Microseconds since the Unix epoch: the capture timestamp the viewer
/// compares with its own clock to measure latency.
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
