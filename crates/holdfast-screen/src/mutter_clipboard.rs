//! The clipboard of a GNOME Wayland session, through the same Mutter
//! remote-desktop session that shares the screen: arboard needs the
//! `wlr-data-control` protocol, which Mutter does not offer, and a Wayland
//! client may touch the clipboard only while it has focus. This is what
//! gnome-remote-desktop uses.
//!
//! - Taking text copied on the host: Mutter announces each new owner
//!   (`SelectionOwnerChanged`); the next [`Clipboard::get_text`] reads the
//!   text once (`SelectionRead` hands over a pipe), and answers from that
//!   copy until the owner changes again.
//! - Putting a viewer's text on it: `SetSelection` makes this session the
//!   owner; each paste asks for the data (`SelectionTransfer`), and a
//!   thread writes the text into the pipe `SelectionWrite` gives.
//!
//! Reads are bounded in size ([`MAX_TEXT_BYTES`]) and time
//! ([`READ_TIMEOUT`]): the other end of the pipe is whatever application
//! owns the selection. When Mutter ends the session (the monitors changed),
//! the clipboard is enabled again on the link's new one.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use holdfast_input::{Clipboard, InputError};
use tracing::{debug, warn};
use zbus::blocking::Proxy;
use zbus::zvariant::{OwnedFd, OwnedValue, Value};

use crate::mutter::{MutterLink, MutterSession};

/// The text types this session offers, most specific first (GTK asks for
/// the first, X11 clients through Xwayland for `UTF8_STRING`).
pub const TEXT_TYPES: [&str; 3] = ["text/plain;charset=utf-8", "UTF8_STRING", "text/plain"];
/// The most text read from the clipboard (the transfer protocol's own limit).
pub const MAX_TEXT_BYTES: usize = holdfast_proto::transfer::MAX_CLIPBOARD_TEXT_BYTES as usize;
/// How long the owner of the selection has to hand its text over.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Which of `offered` to read text as: the first of [`TEXT_TYPES`] on offer.
pub fn text_type(offered: &[String]) -> Option<&'static str> {
    TEXT_TYPES.into_iter().find(|t| offered.iter().any(|o| o == t))
}

/// What a `SelectionOwnerChanged` means for the copy kept here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerChange {
    /// This session owns it (its own `SetSelection`): nothing new.
    Ours,
    /// Someone else copied text, to be read as this type.
    Text(&'static str),
    /// Someone else copied something that is not text (or cleared it).
    NotText,
}

/// Reads a `SelectionOwnerChanged`'s options.
pub fn owner_change(options: &HashMap<String, OwnedValue>) -> OwnerChange {
    let ours = options
        .get("session-is-owner")
        .and_then(|v| bool::try_from(v).ok())
        .unwrap_or(false);
    if ours {
        return OwnerChange::Ours;
    }
    let offered = options.get("mime-types").map(|v| strings(v)).unwrap_or_default();
    text_type(&offered).map_or(OwnerChange::NotText, OwnerChange::Text)
}

/// The strings of an `as`. Mutter 43 sends `mime-types` as `(as)`, a
/// structure around the list, although its interface says `as`: both are read.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| match x {
                Value::Str(s) => Some(s.to_string()),
                _ => None,
            })
            .collect(),
        Value::Structure(s) => s.fields().first().map(strings).unwrap_or_default(),
        Value::Value(inner) => strings(inner),
        _ => Vec::new(),
    }
}

#[derive(Debug, Default)]
struct State {
    /// The text this session put on the clipboard (served to pastes).
    offered: Option<String>,
    /// Someone else owns the selection now, with text of this type, not read yet.
    unread: Option<&'static str>,
    /// The clipboard's text as last read or set.
    current: Option<String>,
}

/// The clipboard of a [`MutterLink`]'s session (see the module doc).
pub struct MutterClipboard {
    link: Arc<MutterLink>,
    generation: u64,
    inner: SessionClipboard,
}

impl MutterClipboard {
    pub fn open(link: Arc<MutterLink>) -> Result<MutterClipboard, InputError> {
        let (generation, session) = link.current();
        Ok(MutterClipboard {
            inner: SessionClipboard::open(&session)?,
            link,
            generation,
        })
    }

    /// Moves to the link's newest session if the one in use was replaced.
    fn follow(&mut self) {
        let (generation, session) = self.link.current();
        if session.is_closed() {
            // Capture or input start the next one.
            return;
        }
        if generation == self.generation {
            return;
        }
        match SessionClipboard::open(&session) {
            Ok(inner) => {
                self.inner = inner;
                self.generation = generation;
            }
            Err(e) => warn!("clipboard on the new remote-desktop session: {e}"),
        }
    }
}

impl Clipboard for MutterClipboard {
    fn get_text(&mut self) -> Option<String> {
        self.follow();
        self.inner.get_text()
    }

    fn set_text(&mut self, text: &str) -> Result<(), String> {
        self.follow();
        self.inner.set_text(text)
    }
}

/// The clipboard of one session.
struct SessionClipboard {
    session: Proxy<'static>,
    state: Arc<Mutex<State>>,
}

impl SessionClipboard {
    /// Enables the session's clipboard and starts answering its signals.
    fn open(mutter: &MutterSession) -> Result<SessionClipboard, InputError> {
        let session = mutter.session_proxy().clone();
        let err = |what: &str, e: zbus::Error| InputError::Open(format!("Mutter clipboard: {what}: {e}"));
        let signals = session
            .receive_all_signals()
            .map_err(|e| err("subscribing to its signals", e))?;
        let no_options: HashMap<&str, Value> = HashMap::new();
        session
            .call_method("EnableClipboard", &(no_options,))
            .map_err(|e| err("EnableClipboard", e))?;
        // What was copied before sharing began is read at the first look.
        let state = Arc::new(Mutex::new(State {
            unread: Some(TEXT_TYPES[0]),
            ..State::default()
        }));
        let (proxy, shared) = (session.clone(), state.clone());
        thread::Builder::new()
            .name("holdfast-mutter-clipboard".into())
            .spawn(move || {
                // Ends when the session's connection closes.
                for msg in signals {
                    let header = msg.header();
                    match header.member().map(|m| m.as_str()) {
                        Some("SelectionOwnerChanged") => {
                            let Ok(options) = msg.body().deserialize::<HashMap<String, OwnedValue>>() else {
                                continue;
                            };
                            let change = owner_change(&options);
                            debug!(?change, "clipboard owner changed");
                            let mut s = shared.lock().expect("clipboard state");
                            match change {
                                OwnerChange::Ours => {}
                                OwnerChange::Text(t) => s.unread = Some(t),
                                OwnerChange::NotText => {
                                    s.unread = None;
                                    s.current = None;
                                }
                            }
                        }
                        Some("SelectionTransfer") => {
                            let Ok((mime, serial)) = msg.body().deserialize::<(String, u32)>() else {
                                continue;
                            };
                            let text = shared.lock().expect("clipboard state").offered.clone();
                            let ok = match text {
                                Some(t) if TEXT_TYPES.contains(&mime.as_str()) => write_selection(&proxy, serial, &t),
                                _ => false,
                            };
                            if let Err(e) = proxy.call_method("SelectionWriteDone", &(serial, ok)) {
                                warn!("clipboard: SelectionWriteDone failed: {e}");
                            }
                        }
                        _ => {}
                    }
                }
            })
            .map_err(|e| InputError::Open(format!("cannot start the clipboard thread: {e}")))?;
        Ok(SessionClipboard { session, state })
    }
}

/// Writes `text` into the pipe Mutter gives for paste `serial`.
fn write_selection(proxy: &Proxy<'static>, serial: u32, text: &str) -> bool {
    let fd: OwnedFd = match proxy.call("SelectionWrite", &(serial,)) {
        Ok(fd) => fd,
        Err(e) => {
            warn!("clipboard: SelectionWrite failed: {e}");
            return false;
        }
    };
    let mut pipe = blocking(fd);
    pipe.write_all(text.as_bytes()).is_ok()
}

/// The pipe as a blocking file. Mutter (GLib) creates it with O_NONBLOCK,
/// so a read before the owner wrote, or a write past the pipe's buffer,
/// failed with EAGAIN (the clipboard test caught it under load); the
/// reads are bounded in time by their own thread instead.
fn blocking(fd: OwnedFd) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::from(std::os::fd::OwnedFd::from(fd));
    let raw = file.as_raw_fd();
    // SAFETY: `raw` is an open descriptor owned by `file` for this call.
    unsafe {
        let flags = libc::fcntl(raw, libc::F_GETFL);
        if flags >= 0 && flags & libc::O_NONBLOCK != 0 {
            libc::fcntl(raw, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    file
}

/// Reads the selection as `mime`, at most [`MAX_TEXT_BYTES`], within
/// [`READ_TIMEOUT`]. The read runs on a thread of its own: an owner that
/// never closes the pipe leaves only that thread waiting.
fn read_selection(proxy: &Proxy<'static>, mime: &str) -> Result<String, String> {
    let fd: OwnedFd = proxy
        .call("SelectionRead", &(mime,))
        .map_err(|e| format!("SelectionRead: {e}"))?;
    let pipe = blocking(fd);
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("holdfast-clipboard-read".into())
        .spawn(move || {
            let mut bytes = Vec::new();
            let r = pipe.take(MAX_TEXT_BYTES as u64 + 1).read_to_end(&mut bytes);
            let _ = tx.send(r.map(|_| bytes));
        })
        .map_err(|e| e.to_string())?;
    let bytes = rx
        .recv_timeout(READ_TIMEOUT)
        .map_err(|_| format!("the owner did not hand the text over within {READ_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    if bytes.len() > MAX_TEXT_BYTES {
        return Err(format!("over {MAX_TEXT_BYTES} bytes: not shared"));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8".into())
}

impl SessionClipboard {
    fn get_text(&mut self) -> Option<String> {
        let unread = self.state.lock().expect("clipboard state").unread.take();
        if let Some(mime) = unread {
            let text = read_selection(&self.session, mime)
                .inspect_err(|e| debug!("clipboard: not read: {e}"))
                .ok();
            self.state.lock().expect("clipboard state").current = text;
        }
        self.state.lock().expect("clipboard state").current.clone()
    }

    fn set_text(&mut self, text: &str) -> Result<(), String> {
        {
            let mut s = self.state.lock().expect("clipboard state");
            s.offered = Some(text.to_owned());
            s.current = Some(text.to_owned());
            s.unread = None;
        }
        let options = HashMap::from([("mime-types", Value::from(TEXT_TYPES.to_vec()))]);
        self.session
            .call_method("SetSelection", &(options,))
            .map(drop)
            .map_err(|e| format!("SetSelection: {e}"))
    }
}

impl Drop for SessionClipboard {
    fn drop(&mut self) {
        let _ = self.session.call_method("DisableClipboard", &());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options as Mutter 43 sends them: `mime-types` as `(as)`.
    fn options(ours: bool, types: &[&str]) -> HashMap<String, OwnedValue> {
        let types: Vec<String> = types.iter().map(|s| s.to_string()).collect();
        HashMap::from([
            ("session-is-owner".to_string(), OwnedValue::from(ours)),
            (
                "mime-types".to_string(),
                OwnedValue::try_from(Value::from((types,))).unwrap(),
            ),
        ])
    }

    #[test]
    fn text_is_read_as_the_most_specific_type_on_offer() {
        let offered = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            text_type(&offered(&["text/html", "text/plain", "text/plain;charset=utf-8"])),
            Some("text/plain;charset=utf-8")
        );
        assert_eq!(text_type(&offered(&["STRING", "UTF8_STRING"])), Some("UTF8_STRING"));
        assert_eq!(text_type(&offered(&["image/png"])), None);
        assert_eq!(text_type(&[]), None);
    }

    #[test]
    fn an_owner_change_is_news_only_when_someone_else_copied_text() {
        assert_eq!(owner_change(&options(true, &TEXT_TYPES)), OwnerChange::Ours);
        assert_eq!(
            owner_change(&options(false, &["text/plain", "TEXT"])),
            OwnerChange::Text("text/plain")
        );
        assert_eq!(owner_change(&options(false, &["image/png"])), OwnerChange::NotText);
        assert_eq!(owner_change(&HashMap::new()), OwnerChange::NotText);
        // As the interface documents it: a plain `as`.
        let plain = HashMap::from([(
            "mime-types".to_string(),
            OwnedValue::try_from(Value::from(vec!["UTF8_STRING".to_string()])).unwrap(),
        )]);
        assert_eq!(owner_change(&plain), OwnerChange::Text("UTF8_STRING"));
    }
}
