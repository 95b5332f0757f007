//! Runs a [`MediaPipeline`] on a dedicated thread. Capturers belong to the
//! thread that opened them, and encoding must not stall an async runtime, so
//! the async side sends requests and gets each outcome through a callback.
//! A worker made with [`MediaWorker::spawn_switchable`] can also change the
//! display it captures.

use std::sync::mpsc;
use std::thread;

use crate::encode::EncoderSettings;
use crate::pipeline::{FrameOutcome, FrameRequest, LanesOutcome, MediaPipeline};
use crate::{FrameSource, MediaError};

type Reply = Box<dyn FnOnce(Result<FrameOutcome, MediaError>) + Send>;
type LanesReply = Box<dyn FnOnce(Result<LanesOutcome, MediaError>) + Send>;
type SwitchReply = Box<dyn FnOnce(Result<(u32, u32), MediaError>) + Send>;
/// Opens display `index` on the media thread.
type Opener = Box<dyn FnMut(usize) -> Result<Box<dyn FrameSource>, MediaError> + Send>;

enum Job {
    Frame(FrameRequest, Reply),
    Lanes(Vec<(usize, FrameRequest)>, LanesReply),
    Release(usize),
    Switch(usize, SwitchReply),
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
        let mut once = Some(open);
        let opener: Opener = Box::new(move |_| match once.take() {
            Some(open) => open().map(|s| Box::new(s) as Box<dyn FrameSource>),
            None => Err(MediaError::Capture("this source cannot switch displays".into())),
        });
        Self::start(opener, 0, settings)
    }

    /// Starts the thread on display `initial`; [`MediaWorker::switch`] later
    /// opens another one with the same `open`, on the media thread.
    pub fn spawn_switchable<S, F>(mut open: F, initial: usize, settings: EncoderSettings) -> Result<Self, MediaError>
    where
        S: FrameSource + 'static,
        F: FnMut(usize) -> Result<S, MediaError> + Send + 'static,
    {
        Self::start(
            Box::new(move |i| open(i).map(|s| Box::new(s) as Box<dyn FrameSource>)),
            initial,
            settings,
        )
    }

    fn start(mut open: Opener, initial: usize, settings: EncoderSettings) -> Result<Self, MediaError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::Builder::new()
            .name("holdfast-media".into())
            .spawn(move || {
                let mut pipeline = match open(initial).and_then(|s| MediaPipeline::new(s, settings)) {
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
                        Job::Lanes(reqs, reply) => reply(pipeline.step_lanes(&reqs)),
                        Job::Release(lane) => pipeline.release_lane(lane),
                        Job::Switch(index, reply) => reply(open(index).map(|source| {
                            pipeline.replace_source(source);
                            pipeline.source_dimensions()
                        })),
                    }
                }
            })
            .map_err(|e| MediaError::Capture(format!("cannot start media thread: {e}")))?;
        let dimensions = ready_rx.recv().map_err(|_| MediaError::WorkerGone)??;
        Ok(MediaWorker { jobs, dimensions })
    }

    /// Captures display `index` from now on; `reply` gets its size, or the
    /// error (the old display stays).
    pub fn switch(
        &self,
        index: usize,
        reply: impl FnOnce(Result<(u32, u32), MediaError>) + Send + 'static,
    ) -> Result<(), MediaError> {
        self.jobs
            .send(Job::Switch(index, Box::new(reply)))
            .map_err(|_| MediaError::WorkerGone)
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

    /// Queues one capture for several lanes ([`MediaPipeline::step_lanes`]).
    pub fn request_lanes(
        &self,
        reqs: Vec<(usize, FrameRequest)>,
        reply: impl FnOnce(Result<LanesOutcome, MediaError>) + Send + 'static,
    ) -> Result<(), MediaError> {
        self.jobs
            .send(Job::Lanes(reqs, Box::new(reply)))
            .map_err(|_| MediaError::WorkerGone)
    }

    /// Frees a lane's encoder once no viewer is on it.
    pub fn release_lane(&self, lane: usize) -> Result<(), MediaError> {
        self.jobs.send(Job::Release(lane)).map_err(|_| MediaError::WorkerGone)
    }
}
