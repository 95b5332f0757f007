//! Owns the injector on a thread of its own: OS input calls block (X11
//! round trips, enigo's key delays), and some injectors may not leave the
//! thread that opened them. The async host sends jobs and never waits.
//!
//! The queue is bounded ([`MAX_QUEUED_JOBS`]): a viewer flooding input gets
//! [`InputError::Busy`] instead of growing the host's memory. Releases are
//! never dropped: when the queue is full they are handed to a short-lived
//! thread that waits for room, so they still run after everything queued before.

use std::sync::mpsc;
use std::thread;

use holdfast_proto::commands::InputEvent;
use tracing::{debug, warn};

use crate::controller::InputController;
use crate::geometry::DisplayGeometry;
use crate::injector::Injector;
use crate::InputError;

/// Input jobs queued for the injector before new input is refused (about a
/// second of work at enigo's ~1 ms per event).
pub const MAX_QUEUED_JOBS: usize = 1024;

enum Job {
    Apply { viewer: String, event: InputEvent },
    Release { viewer: String },
    Forget { viewer: String },
    Geometry(DisplayGeometry),
}

/// Handle to the input thread; dropping it stops the thread (and the
/// injector's own drop releases anything still held).
pub struct InputWorker {
    jobs: mpsc::SyncSender<Job>,
}

impl InputWorker {
    /// Starts the thread; `open` runs on it to create the injector.
    /// `geometry` is the shared display's rectangle (None: the injector's main display).
    pub fn spawn<I, F>(open: F, geometry: Option<DisplayGeometry>) -> Result<Self, InputError>
    where
        I: Injector + 'static,
        F: FnOnce() -> Result<I, InputError> + Send + 'static,
    {
        let (jobs, rx) = mpsc::sync_channel::<Job>(MAX_QUEUED_JOBS);
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::Builder::new()
            .name("holdfast-input".into())
            .spawn(move || {
                let injector = match open() {
                    Ok(i) => i,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let geometry = match geometry {
                    Some(g) => g,
                    None => match injector.main_display() {
                        Ok((w, h)) => DisplayGeometry::new(0, 0, w, h),
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    },
                };
                let _ = ready_tx.send(Ok(()));
                let mut controller = InputController::new(injector, geometry);
                while let Ok(job) = rx.recv() {
                    match job {
                        Job::Apply { viewer, event } => {
                            if let Err(e) = controller.apply_ordered(&viewer, event) {
                                warn!(viewer = %viewer, "input: {e}");
                            }
                        }
                        Job::Release { viewer } => {
                            let n = controller.release_held(&viewer);
                            if n > 0 {
                                debug!(viewer = %viewer, released = n, "released held keys and buttons");
                            }
                        }
                        Job::Forget { viewer } => {
                            let n = controller.forget(&viewer);
                            if n > 0 {
                                debug!(viewer = %viewer, released = n, "released held keys and buttons");
                            }
                        }
                        Job::Geometry(g) => controller.set_geometry(g),
                    }
                }
            })
            .map_err(|e| InputError::Open(format!("cannot start input thread: {e}")))?;
        ready_rx.recv().map_err(|_| InputError::WorkerGone)??;
        Ok(InputWorker { jobs })
    }

    /// Queues one event, already in the viewer's order (see
    /// [`InputSequencer`](crate::InputSequencer)); [`InputError::Busy`] when the
    /// queue is full (the caller should then [`release`](Self::release) the
    /// viewer, since a dropped key-up would otherwise leave a key down).
    pub fn apply(&self, viewer: &str, event: InputEvent) -> Result<(), InputError> {
        let job = Job::Apply {
            viewer: viewer.to_owned(),
            event,
        };
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(mpsc::TrySendError::Full(_)) => Err(InputError::Busy),
            Err(mpsc::TrySendError::Disconnected(_)) => Err(InputError::WorkerGone),
        }
    }

    /// Releases what `viewer` holds (control switched off, focus lost, silence).
    pub fn release(&self, viewer: &str) -> Result<(), InputError> {
        self.send(Job::Release {
            viewer: viewer.to_owned(),
        })
    }

    /// Releases what `viewer` holds and forgets it (it left).
    pub fn forget(&self, viewer: &str) -> Result<(), InputError> {
        self.send(Job::Forget {
            viewer: viewer.to_owned(),
        })
    }

    pub fn set_geometry(&self, g: DisplayGeometry) -> Result<(), InputError> {
        self.send(Job::Geometry(g))
    }

    /// Queues a job that must not be lost, without blocking the caller.
    fn send(&self, job: Job) -> Result<(), InputError> {
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(mpsc::TrySendError::Full(job)) => {
                let jobs = self.jobs.clone();
                thread::Builder::new()
                    .name("holdfast-input-release".into())
                    .spawn(move || drop(jobs.send(job)))
                    .map(drop)
                    .map_err(|e| InputError::Inject(format!("cannot queue a release: {e}")))
            }
            Err(mpsc::TrySendError::Disconnected(_)) => Err(InputError::WorkerGone),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use enigo::Key;

    use super::*;
    use crate::injector::{Injected, RecordingInjector};

    #[test]
    fn a_flood_is_refused_and_held_keys_are_still_released() {
        // As slow as a real injector, so a flood outruns it.
        let recorder = RecordingInjector {
            move_delay: Duration::from_micros(200),
            ..Default::default()
        };
        let r = recorder.clone();
        let w = InputWorker::spawn(move || Ok(r), None).unwrap();
        let key = |down| InputEvent::Key {
            code: "ShiftLeft".into(),
            key: "Shift".into(),
            down,
        };
        w.apply("v", key(true)).unwrap();
        let mut busy = 0;
        for _ in 1..20_000u32 {
            if let Err(InputError::Busy) = w.apply("v", InputEvent::PointerMove { x: 0.5, y: 0.5 }) {
                busy += 1;
            }
        }
        assert!(busy > 0, "a flood must hit the bound");
        w.release("v").unwrap();
        let t0 = Instant::now();
        loop {
            let last = recorder.calls().last().cloned();
            if last == Some(Injected::Key(Key::Shift, false)) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the held key was never released"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // Every accepted move was applied before the release, and only those.
        let moves = recorder
            .calls()
            .iter()
            .filter(|c| matches!(c, Injected::Move(..)))
            .count();
        assert_eq!(moves, 19_999 - busy);
    }
}
