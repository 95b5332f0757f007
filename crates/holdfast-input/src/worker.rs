//! Owns the injector on a thread of its own: OS input calls block (X11
//! round trips, enigo's key delays), and some injectors may not leave the
//! thread that opened them. The async host sends jobs and never waits.

use std::sync::mpsc;
use std::thread;

use holdfast_proto::commands::InputEvent;
use tracing::{debug, warn};

use crate::controller::InputController;
use crate::geometry::DisplayGeometry;
use crate::injector::Injector;
use crate::InputError;

enum Job {
    Apply {
        viewer: String,
        seq: u32,
        event: InputEvent,
    },
    Release {
        viewer: String,
    },
    Forget {
        viewer: String,
    },
    Geometry(DisplayGeometry),
}

/// Handle to the input thread; dropping it stops the thread (and the
/// injector's own drop releases anything still held).
pub struct InputWorker {
    jobs: mpsc::Sender<Job>,
}

impl InputWorker {
    /// Starts the thread; `open` runs on it to create the injector.
    /// `geometry` is the shared display's rectangle (None: the injector's main display).
    pub fn spawn<I, F>(open: F, geometry: Option<DisplayGeometry>) -> Result<Self, InputError>
    where
        I: Injector + 'static,
        F: FnOnce() -> Result<I, InputError> + Send + 'static,
    {
        let (jobs, rx) = mpsc::channel::<Job>();
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
                        Job::Apply { viewer, seq, event } => {
                            if let Err(e) = controller.apply(&viewer, seq, event) {
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

    pub fn apply(&self, viewer: &str, seq: u32, event: InputEvent) -> Result<(), InputError> {
        self.send(Job::Apply {
            viewer: viewer.to_owned(),
            seq,
            event,
        })
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

    fn send(&self, job: Job) -> Result<(), InputError> {
        self.jobs.send(job).map_err(|_| InputError::WorkerGone)
    }
}
