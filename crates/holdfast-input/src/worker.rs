//! Owns the injector on a thread of its own: OS input calls block (X11
//! round trips, enigo's key delays), and some injectors may not leave the
//! thread that opened them. The async host sends jobs and never waits.
//!
//! The queue is bounded ([`MAX_QUEUED_JOBS`], and [`MAX_QUEUED_TEXT_CHARS`]
//! characters of text, which types at up to ~40 ms a character): a viewer
//! flooding input gets [`InputError::Busy`] instead of growing the host's
//! memory or its backlog. Releases are never dropped: when the queue is full
//! they are handed to a short-lived thread that waits for room, so they
//! still run after everything queued before.
//!
//! **Revoking means now.** Every job carries its viewer's epoch from when it
//! was queued; [`InputWorker::revoke`] and [`InputWorker::forget`] bump the
//! epoch at once, from the caller's thread, and the worker skips any job of
//! an older epoch (and stops typing a text between two characters). So
//! nothing a viewer queued before its control was switched off, before it
//! was kicked or left, or before sharing stopped is injected afterwards.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
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
/// Characters of text queued before more text is refused (two full `text`
/// messages; outside the base layout each costs a keymap change, ~40 ms).
pub const MAX_QUEUED_TEXT_CHARS: usize = 512;

/// Each viewer's revocation epoch, shared by the caller and the worker.
#[derive(Debug, Default, Clone)]
struct Epochs(Arc<Mutex<HashMap<String, u64>>>);

impl Epochs {
    fn current(&self, viewer: &str) -> u64 {
        self.0.lock().expect("epochs lock").get(viewer).copied().unwrap_or(0)
    }

    fn bump(&self, viewer: &str) {
        *self
            .0
            .lock()
            .expect("epochs lock")
            .entry(viewer.to_owned())
            .or_default() += 1;
    }
}

enum Job {
    Apply {
        viewer: String,
        event: InputEvent,
        epoch: u64,
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
    jobs: mpsc::SyncSender<Job>,
    epochs: Epochs,
    /// Characters of text queued and not yet typed (or skipped).
    queued_chars: Arc<AtomicUsize>,
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
        let epochs = Epochs::default();
        let queued_chars = Arc::new(AtomicUsize::new(0));
        let (worker_epochs, worker_chars) = (epochs.clone(), queued_chars.clone());
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
                let mut skipped = 0u64;
                while let Ok(job) = rx.recv() {
                    match job {
                        Job::Apply { viewer, event, epoch } => {
                            let chars = text_chars(&event);
                            let live = || worker_epochs.current(&viewer) == epoch;
                            if !live() {
                                skipped += 1;
                                debug!(viewer = %viewer, skipped, "input from before a revocation skipped");
                            } else if let Err(e) = controller.apply_ordered_while(&viewer, event, &live) {
                                warn!(viewer = %viewer, "input: {e}");
                            }
                            worker_chars.fetch_sub(chars, Ordering::Relaxed);
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
        Ok(InputWorker {
            jobs,
            epochs,
            queued_chars,
        })
    }

    /// Queues one event, already in the viewer's order (see
    /// [`InputSequencer`](crate::InputSequencer)); [`InputError::Busy`] when the
    /// queue is full (the caller should then [`release`](Self::release) the
    /// viewer, since a dropped key-up would otherwise leave a key down).
    pub fn apply(&self, viewer: &str, event: InputEvent) -> Result<(), InputError> {
        let chars = text_chars(&event);
        let before = self.queued_chars.fetch_add(chars, Ordering::Relaxed);
        if chars > 0 && before + chars > MAX_QUEUED_TEXT_CHARS {
            self.queued_chars.fetch_sub(chars, Ordering::Relaxed);
            return Err(InputError::Busy);
        }
        let job = Job::Apply {
            viewer: viewer.to_owned(),
            event,
            epoch: self.epochs.current(viewer),
        };
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.queued_chars.fetch_sub(chars, Ordering::Relaxed);
                Err(match e {
                    mpsc::TrySendError::Full(_) => InputError::Busy,
                    mpsc::TrySendError::Disconnected(_) => InputError::WorkerGone,
                })
            }
        }
    }

    /// `viewer`'s control ends now (switched off, view only, kicked): nothing
    /// it queued is injected any more, and what it holds is released.
    pub fn revoke(&self, viewer: &str) -> Result<(), InputError> {
        self.epochs.bump(viewer);
        self.release(viewer)
    }

    /// Releases what `viewer` holds (focus lost, silence, a connection in
    /// doubt); what it queued before still runs, as its control goes on.
    pub fn release(&self, viewer: &str) -> Result<(), InputError> {
        self.send(Job::Release {
            viewer: viewer.to_owned(),
        })
    }

    /// Revokes `viewer` and forgets it (it left, was kicked, or sharing stopped).
    pub fn forget(&self, viewer: &str) -> Result<(), InputError> {
        self.epochs.bump(viewer);
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

/// Characters an event would type (the text budget's unit).
fn text_chars(event: &InputEvent) -> usize {
    match event {
        InputEvent::Text { text } => text.chars().count(),
        _ => 0,
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

#[cfg(test)]
mod revocation_tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::injector::{Injected, RecordingInjector};

    fn slow_worker() -> (InputWorker, RecordingInjector) {
        // 2 ms a call, so a backlog builds as it does with a real keymap.
        let recorder = RecordingInjector {
            move_delay: Duration::from_millis(2),
            ..Default::default()
        };
        let r = recorder.clone();
        (InputWorker::spawn(move || Ok(r), None).unwrap(), recorder)
    }

    fn settle(recorder: &RecordingInjector) -> usize {
        let mut n = recorder.calls().len();
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let m = recorder.calls().len();
            if m == n {
                return n;
            }
            n = m;
        }
    }

    #[test]
    fn nothing_queued_before_a_revoke_is_injected_after_it() {
        let (w, recorder) = slow_worker();
        for i in 0..500 {
            let x = (i % 100) as f32 / 100.0;
            w.apply("v", InputEvent::PointerMove { x, y: 0.5 }).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        let t0 = Instant::now();
        w.revoke("v").unwrap();
        let at_revoke = recorder.calls().len();
        let total = settle(&recorder);
        eprintln!(
            "{at_revoke} calls before the revoke, {} after ({:?})",
            total - at_revoke,
            t0.elapsed()
        );
        assert!(at_revoke < 500, "the backlog was still there");
        // At most the one event in progress finishes.
        assert!(
            total - at_revoke <= 1,
            "{} events ran after the revoke",
            total - at_revoke
        );
        // The viewer's new input (control back on) runs again.
        w.apply("v", InputEvent::PointerMove { x: 0.1, y: 0.1 }).unwrap();
        assert_eq!(settle(&recorder), total + 1);
        // Other viewers are untouched.
        w.apply("other", InputEvent::PointerMove { x: 0.2, y: 0.2 }).unwrap();
        assert_eq!(settle(&recorder), total + 2);
    }

    #[test]
    fn a_forgotten_viewers_queue_is_dropped_and_text_is_bounded_in_characters() {
        let (w, recorder) = slow_worker();
        let text = |n: usize| InputEvent::Text { text: "é".repeat(n) };
        w.apply("v", text(256)).unwrap();
        w.apply("v", text(256)).unwrap();
        assert!(
            matches!(w.apply("v", text(1)), Err(InputError::Busy)),
            "512 characters at most"
        );
        // Pointer moves are not text and still queue.
        w.apply("v", InputEvent::PointerMove { x: 0.5, y: 0.5 }).unwrap();
        w.forget("v").unwrap();
        let total = settle(&recorder);
        let typed = recorder
            .calls()
            .iter()
            .filter(|c| matches!(c, Injected::Text(_)))
            .count();
        assert!(typed < 512, "typing stopped at the revoke: {typed} characters typed");
        assert!(total < 520);
        // The budget is free again once the skipped text left the queue.
        w.apply("v2", text(256)).unwrap();
    }
}
