//! The host's clipboard: text a viewer shares is put on it, and text copied
//! on the host is noticed and handed out. A thread owns the platform
//! clipboard (`arboard`: X11 and Wayland's data-control on Linux, native on
//! Windows and macOS), because on X11 the clipboard's owner must keep
//! answering requests for as long as its text is the selection.
//!
//! The thread polls for changes (X11 has no portable change notification
//! without XFixes), and never reports back text it set itself, so a
//! clipboard shared both ways does not echo.

use std::fmt;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tracing::{debug, warn};

use crate::InputError;

/// How often the clipboard is looked at for a change.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// A platform clipboard (text).
pub trait Clipboard {
    fn get_text(&mut self) -> Option<String>;
    fn set_text(&mut self, text: &str) -> Result<(), String>;
}

impl Clipboard for Box<dyn Clipboard> {
    fn get_text(&mut self) -> Option<String> {
        (**self).get_text()
    }

    fn set_text(&mut self, text: &str) -> Result<(), String> {
        (**self).set_text(text)
    }
}

type Opener = dyn Fn() -> Result<Box<dyn Clipboard>, InputError> + Send + Sync;

/// Which clipboard a host shares: opened on the clipboard thread by
/// [`ClipboardWorker::spawn`]. The desktop session decides (holdfast-screen:
/// arboard's on X11, Mutter's own on GNOME Wayland, which has no
/// wlr-data-control).
#[derive(Clone)]
pub struct ClipboardSource {
    name: &'static str,
    open: Arc<Opener>,
}

impl ClipboardSource {
    /// The system clipboard through `arboard`.
    pub fn system() -> Self {
        Self::new("system", || Ok(Box::new(SystemClipboard::open()?)))
    }

    pub fn new(
        name: &'static str,
        open: impl Fn() -> Result<Box<dyn Clipboard>, InputError> + Send + Sync + 'static,
    ) -> Self {
        ClipboardSource {
            name,
            open: Arc::new(open),
        }
    }

    pub fn open(&self) -> Result<Box<dyn Clipboard>, InputError> {
        (self.open)()
    }
}

impl fmt::Debug for ClipboardSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClipboardSource({})", self.name)
    }
}

/// The system clipboard through `arboard`.
pub struct SystemClipboard(arboard::Clipboard);

impl SystemClipboard {
    pub fn open() -> Result<Self, InputError> {
        arboard::Clipboard::new()
            .map(SystemClipboard)
            .map_err(|e| InputError::Open(format!("cannot open the clipboard: {e}")))
    }
}

impl Clipboard for SystemClipboard {
    fn get_text(&mut self) -> Option<String> {
        self.0.get_text().ok()
    }

    fn set_text(&mut self, text: &str) -> Result<(), String> {
        self.0.set_text(text).map_err(|e| e.to_string())
    }
}

/// Remembers what this side put on the clipboard and what it last saw, to
/// report only changes made by someone else. Pure.
#[derive(Debug, Default)]
pub struct ChangeFilter {
    last_seen: Option<String>,
}

impl ChangeFilter {
    /// This side set `text` (it will be seen next, and is no news).
    pub fn set(&mut self, text: &str) {
        self.last_seen = Some(text.to_owned());
    }

    /// The clipboard reads `now`: returns it if it changed since last seen.
    pub fn seen(&mut self, now: Option<String>) -> Option<String> {
        let now = now?;
        if self.last_seen.as_deref() == Some(now.as_str()) {
            return None;
        }
        self.last_seen = Some(now.clone());
        (!now.is_empty()).then_some(now)
    }
}

/// Handle to the clipboard thread; dropping it stops the thread.
pub struct ClipboardWorker {
    jobs: std_mpsc::Sender<String>,
}

impl ClipboardWorker {
    /// Starts the thread; `open` runs on it. Changes made on this machine go
    /// to `changed` (the text already there at start is not a change).
    pub fn spawn<C, F>(open: F, changed: tokio::sync::mpsc::UnboundedSender<String>) -> Result<Self, InputError>
    where
        C: Clipboard + 'static,
        F: FnOnce() -> Result<C, InputError> + Send + 'static,
    {
        let (jobs, rx) = std_mpsc::channel::<String>();
        let (ready_tx, ready_rx) = std_mpsc::channel();
        thread::Builder::new()
            .name("holdfast-clipboard".into())
            .spawn(move || {
                let mut clipboard = match open() {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let mut filter = ChangeFilter::default();
                let _ = filter.seen(clipboard.get_text());
                loop {
                    match rx.recv_timeout(POLL_EVERY) {
                        Ok(text) => {
                            filter.set(&text);
                            match clipboard.set_text(&text) {
                                Ok(()) => debug!(chars = text.chars().count(), "clipboard set"),
                                Err(e) => warn!("cannot set the clipboard: {e}"),
                            }
                        }
                        Err(std_mpsc::RecvTimeoutError::Timeout) => {
                            if let Some(text) = filter.seen(clipboard.get_text()) {
                                if changed.send(text).is_err() {
                                    return;
                                }
                            }
                        }
                        Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .map_err(|e| InputError::Open(format!("cannot start the clipboard thread: {e}")))?;
        ready_rx.recv().map_err(|_| InputError::WorkerGone)??;
        Ok(ClipboardWorker { jobs })
    }

    /// Puts `text` on this machine's clipboard.
    pub fn set(&self, text: String) -> Result<(), InputError> {
        self.jobs.send(text).map_err(|_| InputError::WorkerGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn only_changes_made_elsewhere_are_news() {
        let mut f = ChangeFilter::default();
        assert_eq!(f.seen(Some("a".into())), Some("a".into()));
        assert_eq!(f.seen(Some("a".into())), None);
        f.set("from the viewer");
        assert_eq!(f.seen(Some("from the viewer".into())), None, "no echo");
        assert_eq!(f.seen(None), None);
        assert_eq!(f.seen(Some(String::new())), None, "an emptied clipboard is not shared");
        assert_eq!(f.seen(Some("b".into())), Some("b".into()));
    }

    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<Option<String>>>);

    impl Clipboard for Fake {
        fn get_text(&mut self) -> Option<String> {
            self.0.lock().unwrap().clone()
        }
        fn set_text(&mut self, text: &str) -> Result<(), String> {
            *self.0.lock().unwrap() = Some(text.into());
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_worker_sets_and_reports_without_echo() {
        let fake = Fake(Arc::new(Mutex::new(Some("before".into()))));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let f2 = fake.clone();
        let w = ClipboardWorker::spawn(move || Ok(f2), tx).unwrap();
        w.set("from viewer".into()).unwrap();
        tokio::time::sleep(POLL_EVERY * 3).await;
        assert_eq!(fake.0.lock().unwrap().as_deref(), Some("from viewer"));
        assert!(
            rx.try_recv().is_err(),
            "neither the start's text nor our own is reported"
        );
        *fake.0.lock().unwrap() = Some("copied on the host".into());
        let got = tokio::time::timeout(POLL_EVERY * 4, rx.recv()).await.unwrap();
        assert_eq!(got.as_deref(), Some("copied on the host"));
    }
}
