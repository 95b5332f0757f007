//! Runs a [`MediaPipeline`] on a dedicated thread. Capturers belong to the
//! thread that opened them, and encoding must not stall an async runtime, so
//! the async side sends requests and gets each outcome through a callback.

use std::sync::mpsc;
use std::thread;

use crate::encode::EncoderSettings;
use crate::pipeline::{FrameOutcome, FrameRequest, MediaPipeline};
use crate::{FrameSource, MediaError};

type Reply = Box<dyn FnOnce(Result<FrameOutcome, MediaError>) + Send>;

enum Job {
    Frame(FrameRequest, Reply),
}

/// Handle to the media thread; dropping it stops the thread.
pub struct MediaWorker {
    jobs: mpsc::Sender<Job>,
    dimensions: (u32, u32),
}

impl MediaWorker {
    /// Starts the thread; `open` runs on it to create the frame source.
    pub fn spawn<S, F>(open: F, settings: EncoderSettings) -> Result<Self, MediaError>
    where
        S: FrameSource + 'static,
        F: FnOnce() -> Result<S, MediaError> + Send + 'static,
    {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::Builder::new()
            .name("holdfast-media".into())
            .spawn(move || {
                let mut pipeline = match open().and_then(|s| MediaPipeline::new(s, settings)) {
                    Ok(p) => {
                        let _ = ready_tx.send(Ok(p.source_dimensions()));
                        p
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = rx.recv() {
                    match job {
                        Job::Frame(req, reply) => reply(pipeline.step(req)),
                    }
                }
            })
            .map_err(|e| MediaError::Capture(format!("cannot start media thread: {e}")))?;
        let dimensions = ready_rx.recv().map_err(|_| MediaError::WorkerGone)??;
        Ok(MediaWorker { jobs, dimensions })
    }

    /// Size of the captured screen.
    pub fn dimensions(&self) -> (u32, u32) {
        self.dimensions
    }

    /// Queues one frame; `reply` runs on the media thread with the outcome.
    pub fn request(
        &self,
        req: FrameRequest,
        reply: impl FnOnce(Result<FrameOutcome, MediaError>) + Send + 'static,
    ) -> Result<(), MediaError> {
        self.jobs
            .send(Job::Frame(req, Box::new(reply)))
            .map_err(|_| MediaError::WorkerGone)
    }
}
