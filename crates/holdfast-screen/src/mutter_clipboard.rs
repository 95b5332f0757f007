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
//! ([`READ_TIMEOUT`]), writes in time ([`WRITE_TIMEOUT`]): the other end of
//! the pipe is whatever application owns the selection or asks to paste, and
//! one that never writes or never reads must not stall the clipboard (a
//! blocking write once held the thread that answers Mutter's signals for as
//! long as a paster did not read). When Mutter ends the session (the
//! monitors changed), the clipboard is enabled again on the link's new one.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

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
/// How long an application pasting a viewer's text has to take it.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

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

/// Writes `text` into the pipe Mutter gives for paste `serial`, within
/// [`WRITE_TIMEOUT`].
fn write_selection(proxy: &Proxy<'static>, serial: u32, text: &str) -> bool {
    let fd: OwnedFd = match proxy.call("SelectionWrite", &(serial,)) {
        Ok(fd) => fd,
        Err(e) => {
            warn!("clipboard: SelectionWrite failed: {e}");
            return false;
        }
    };
    write_bounded(&nonblocking(fd), text.as_bytes(), WRITE_TIMEOUT)
        .inspect_err(|e| debug!("clipboard: paste {serial} not served: {e}"))
        .is_ok()
}

/// The pipe as a non-blocking file (Mutter's come so; made sure of), read
/// and written only when `poll` says it is ready, so a deadline holds.
fn nonblocking(fd: OwnedFd) -> std::fs::File {
    let fd = std::os::fd::OwnedFd::from(fd);
    if let Ok(flags) = rustix::fs::fcntl_getfl(&fd) {
        let _ = rustix::fs::fcntl_setfl(&fd, flags | rustix::fs::OFlags::NONBLOCK);
    }
    std::fs::File::from(fd)
}

/// Waits until `fd` is ready for `events` (or hung up), until `deadline` at the latest.
fn ready(fd: impl AsFd, events: rustix::event::PollFlags, deadline: Instant) -> Result<(), String> {
    use rustix::event::{poll, PollFd, Timespec};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out".into());
        }
        let timeout = Timespec {
            tv_sec: left.as_secs() as _,
            tv_nsec: left.subsec_nanos() as _,
        };
        match poll(&mut [PollFd::new(&fd, events)], Some(&timeout)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Reads `pipe` to its end: at most `max` bytes, within `timeout`.
fn read_bounded(mut pipe: &std::fs::File, max: usize, timeout: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + timeout;
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        ready(pipe, rustix::event::PollFlags::IN, deadline)
            .map_err(|e| format!("the owner did not hand the text over within {timeout:?}: {e}"))?;
        match pipe.read(&mut buf) {
            Ok(0) => return Ok(bytes),
            Ok(n) => {
                bytes.extend_from_slice(&buf[..n]);
                if bytes.len() > max {
                    return Err(format!("over {max} bytes: not shared"));
                }
            }
            Err(e) if again(&e) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Whether a read or write that failed so is simply tried again (`poll`
/// said ready, someone else was quicker; or a signal came).
fn again(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

/// Writes all of `bytes` into `pipe` within `timeout`.
fn write_bounded(mut pipe: &std::fs::File, mut bytes: &[u8], timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while !bytes.is_empty() {
        ready(pipe, rustix::event::PollFlags::OUT, deadline)
            .map_err(|e| format!("{} bytes not taken within {timeout:?}: {e}", bytes.len()))?;
        match pipe.write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if again(&e) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Reads the selection as `mime`, at most [`MAX_TEXT_BYTES`], within
/// [`READ_TIMEOUT`].
fn read_selection(proxy: &Proxy<'static>, mime: &str) -> Result<String, String> {
    let fd: OwnedFd = proxy
        .call("SelectionRead", &(mime,))
        .map_err(|e| format!("SelectionRead: {e}"))?;
    let bytes = read_bounded(&nonblocking(fd), MAX_TEXT_BYTES, READ_TIMEOUT)?;
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

    /// A pipe as Mutter hands one over: (our end, the application's end).
    fn pipe_pair(ours_reads: bool) -> (std::fs::File, std::fs::File) {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let (r, w) = (std::fs::File::from(r), std::fs::File::from(w));
        let (ours, theirs) = if ours_reads { (r, w) } else { (w, r) };
        (nonblocking(std::os::fd::OwnedFd::from(ours).into()), theirs)
    }

    #[test]
    fn an_owner_that_never_writes_costs_the_timeout_and_no_more() {
        let (ours, _theirs) = pipe_pair(true);
        let t = Instant::now();
        let r = read_bounded(&ours, MAX_TEXT_BYTES, Duration::from_millis(300));
        assert!(r.is_err(), "{r:?}");
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }

    #[test]
    fn an_owner_that_writes_past_the_limit_is_cut_off_and_not_read() {
        let (ours, mut theirs) = pipe_pair(true);
        let writer = thread::spawn(move || {
            // Endless text; stops when the reader goes away.
            let chunk = vec![b'a'; 64 * 1024];
            while theirs.write_all(&chunk).is_ok() {}
        });
        let r = read_bounded(&ours, MAX_TEXT_BYTES, Duration::from_secs(10));
        assert_eq!(r, Err(format!("over {MAX_TEXT_BYTES} bytes: not shared")));
        drop(ours);
        writer.join().unwrap();
    }

    #[test]
    fn an_owner_that_writes_slowly_within_the_time_is_read_whole() {
        let (ours, mut theirs) = pipe_pair(true);
        let writer = thread::spawn(move || {
            for part in ["Grüße ", "aus ", "dem Host"] {
                thread::sleep(Duration::from_millis(50));
                theirs.write_all(part.as_bytes()).unwrap();
            }
        });
        let r = read_bounded(&ours, MAX_TEXT_BYTES, Duration::from_secs(5));
        writer.join().unwrap();
        assert_eq!(r.as_deref(), Ok("Grüße aus dem Host".as_bytes()));
    }

    #[test]
    fn a_paster_that_never_reads_costs_the_timeout_and_no_more() {
        let (ours, _theirs) = pipe_pair(false);
        let text = vec![b'x'; 1024 * 1024]; // far past a pipe's buffer
        let t = Instant::now();
        let r = write_bounded(&ours, &text, Duration::from_millis(300));
        assert!(r.is_err(), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        // One that reads gets every byte.
        let (ours, mut theirs) = pipe_pair(false);
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            theirs.read_to_end(&mut got).unwrap();
            got
        });
        write_bounded(&ours, &text, Duration::from_secs(10)).unwrap();
        drop(ours);
        assert_eq!(reader.join().unwrap(), text);
    }
}
