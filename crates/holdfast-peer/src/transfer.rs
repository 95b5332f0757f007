//! The async shell around [`holdfast_transfer::Engine`] for one session, on
//! either side: it owns the engine, the session's current `transfer`
//! channel, the files being read and written, and the flow control that
//! keeps file bytes from delaying video.
//!
//! One task per session (per viewer on the host), living across
//! reconnections: each new peer connection hands it its `transfer` channel
//! ([`TransferInput::Channel`]), and nothing is read from that channel until
//! the shell says the connection passed the end-to-end check
//! ([`TransferInput::Trusted`]). What arrives before is dropped and counted.
//!
//! Flow control: a chunk is written only while the channel's outstanding
//! bytes are under the [`Pacer`]'s delay-based limit (files fill what the
//! path leaves free, adding at most ~25 ms of queue in front of the
//! session's video, input and acknowledgements) and, on the host, while the
//! video channel holds less than [`VIDEO_FIRST_BYTES`] ([`Pace`]).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use holdfast_proto::transfer::{check_name, Kind, Message, RejectReason, MAX_CHAT_CHARS, MAX_CLIPBOARD_TEXT_BYTES};
use holdfast_transfer::pacer::MIN_LIMIT;
use holdfast_transfer::{ChatLine, Collision, Engine, Event, Inbox, Pacer, Partial, Poll, Side, TransferView};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};
use webrtc::data_channel::{DataChannel, DataChannelEvent};

/// File bytes wait while the video channel holds more than this.
pub const VIDEO_FIRST_BYTES: usize = 64 * 1024;
/// How often a blocked sender looks again (video queued, or the limit reached).
const RETRY: Duration = Duration::from_millis(5);
/// How often the UI's view is refreshed while something moves.
const VIEW_EVERY: Duration = Duration::from_millis(250);
/// Messages kept from a connection before its check passed (the browser's
/// shell keeps as many: `ui/src/transfers.ts`).
const EARLY_MESSAGES: usize = 64;

/// The video channel that goes before file bytes (set by the host; a
/// viewer has none).
#[derive(Default)]
pub struct Pace {
    video: Mutex<Option<Arc<dyn DataChannel>>>,
}

impl Pace {
    /// The video channel of the same connection: file bytes wait while it
    /// holds more than [`VIDEO_FIRST_BYTES`].
    pub fn set_video(&self, video: Arc<dyn DataChannel>) {
        *self.video.lock().expect("pace lock") = Some(video);
    }

    /// Whether video has more than [`VIDEO_FIRST_BYTES`] outstanding.
    async fn video_busy(&self) -> bool {
        let video = self.video.lock().expect("pace lock").clone();
        match video {
            Some(v) => v.outstanding_bytes().await.unwrap_or(0) > VIDEO_FIRST_BYTES,
            None => false,
        }
    }
}

/// What crosses, decided by the shell (the host: control granted, the
/// host's switches; revoking stops what is under way at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Allowed {
    /// The other side may send files here.
    pub files_in: bool,
    /// Clipboard content crosses (both ways).
    pub clipboard: bool,
}

/// How incoming files are taken, once allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncomingFiles {
    /// Each offer is put to the person ([`TransferOutput::Offered`]).
    Ask,
    /// Taken without asking (kept beside any file of the same name).
    Allow,
}

#[derive(Debug, Clone)]
pub struct TransferConfig {
    pub side: Side,
    /// Where incoming files go (None: refused).
    pub inbox: Option<PathBuf>,
    pub incoming: IncomingFiles,
    /// Names the session's partial files apart (the peer id, say).
    pub tag: String,
}

/// Instructions from the shell.
pub enum TransferInput {
    /// A new peer connection's `transfer` channel.
    Channel(Arc<dyn DataChannel>),
    /// That connection passed the end-to-end check: read and send on it.
    Trusted,
    SendFile(PathBuf),
    SendClipboardText(String),
    Chat(String),
    /// The person's answer to [`TransferOutput::Offered`].
    Decide {
        id: u32,
        accept: bool,
        collision: Collision,
    },
    Cancel(u32),
    Allow(Allowed),
    /// Sends these bytes as they are, whatever they hold: for tests that
    /// play a hostile peer.
    #[doc(hidden)]
    Raw(Vec<u8>),
}

/// What the shell shows or does.
#[derive(Debug, Clone, PartialEq)]
pub enum TransferOutput {
    /// The other side offers a file: answer with [`TransferInput::Decide`].
    Offered {
        id: u32,
        name: String,
        size: u64,
        /// A file of that name is already there.
        exists: bool,
    },
    Chat(ChatLine),
    /// Clipboard text from the other side (only while allowed).
    Clipboard(String),
    /// A file arrived whole and verified, saved at `path`.
    Saved {
        id: u32,
        path: PathBuf,
    },
    /// A transfer ended without success (either way).
    Failed {
        id: u32,
        name: String,
        error: String,
    },
    /// A local request could not start (a file that cannot be read, a bad name).
    Refused(String),
}

/// The UI's view of the session's transfers and chat.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TransferState {
    pub transfers: Vec<TransferView>,
    pub chat: Vec<ChatLine>,
    pub allowed: AllowedView,
    /// The channel is open on a checked connection (else transfers wait).
    pub connected: bool,
    /// Messages on the channel refused (malformed, out of turn, before trust).
    pub rejected: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AllowedView {
    pub files_in: bool,
    pub clipboard: bool,
}

pub struct TransferHandle {
    tx: mpsc::UnboundedSender<TransferInput>,
    pub events: mpsc::UnboundedReceiver<TransferOutput>,
    pub state: watch::Receiver<TransferState>,
    pub pace: Arc<Pace>,
}

impl TransferHandle {
    pub fn send(&self, input: TransferInput) {
        let _ = self.tx.send(input);
    }

    pub fn sender(&self) -> mpsc::UnboundedSender<TransferInput> {
        self.tx.clone()
    }
}

/// Starts a session's transfer task.
pub fn spawn(config: TransferConfig) -> TransferHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (state_tx, state_rx) = watch::channel(TransferState::default());
    let pace = Arc::new(Pace::default());
    let task = Task {
        engine: Engine::new(config.side),
        inbox: config.inbox.as_deref().and_then(|p| match Inbox::open(p) {
            Ok(i) => Some(i),
            Err(e) => {
                warn!("incoming files are refused: {e}");
                None
            }
        }),
        config,
        channel: None,
        open: false,
        trusted: false,
        early: Vec::new(),
        allowed: Allowed::default(),
        reading: HashMap::new(),
        writing: HashMap::new(),
        collisions: HashMap::new(),
        out: out_tx,
        state: state_tx,
        pace: pace.clone(),
        pacer: Pacer::default(),
        written: 0,
        rejected: 0,
        dirty: true,
    };
    tokio::spawn(task.run(rx));
    TransferHandle {
        tx,
        events: out_rx,
        state: state_rx,
        pace,
    }
}

struct Task {
    config: TransferConfig,
    engine: Engine,
    inbox: Option<Inbox>,
    channel: Option<Arc<dyn DataChannel>>,
    /// The channel is open…
    open: bool,
    /// …and its connection passed the check.
    trusted: bool,
    /// What the channel brought before this side's check passed: the peer
    /// may write as soon as its own check passed, and the two checks end on
    /// another channel (`commands`, unordered). Read once ours passes,
    /// dropped with the channel.
    early: Vec<Vec<u8>>,
    allowed: Allowed,
    /// Files being sent, by transfer id.
    reading: HashMap<u32, File>,
    /// Files being received.
    writing: HashMap<u32, Partial>,
    /// What to do if an incoming file's name is taken when it is saved.
    collisions: HashMap<u32, Collision>,
    out: mpsc::UnboundedSender<TransferOutput>,
    state: watch::Sender<TransferState>,
    pace: Arc<Pace>,
    /// How much file data may be outstanding on the channel.
    pacer: Pacer,
    /// Bytes written to the current channel.
    written: u64,
    rejected: u64,
    dirty: bool,
}

enum Wake {
    Input(Option<TransferInput>),
    Channel(Option<DataChannelEvent>),
    Timer,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<TransferInput>) {
        let mut view_at = Instant::now();
        loop {
            let blocked = self.live() && self.engine.busy();
            let wake = {
                let channel = self.channel.clone();
                tokio::select! {
                    input = rx.recv() => Wake::Input(input),
                    ev = async { match &channel { Some(dc) => dc.poll().await, None => std::future::pending().await } } => Wake::Channel(ev),
                    _ = tokio::time::sleep(if blocked { RETRY } else { VIEW_EVERY }) => Wake::Timer,
                }
            };
            match wake {
                Wake::Input(None) => break,
                Wake::Input(Some(input)) => self.on_input(input).await,
                Wake::Channel(None) => self.closed(),
                Wake::Channel(Some(ev)) => self.on_channel(ev).await,
                Wake::Timer => {}
            }
            self.pump().await;
            let now = Instant::now();
            if self.dirty || (self.engine.busy() && now >= view_at) {
                self.publish();
                view_at = now + VIEW_EVERY;
                self.dirty = false;
            }
        }
        // The session ended: nothing half-written stays behind.
        self.engine.stop_all(RejectReason::Cancelled);
        self.drain_events();
    }

    fn live(&self) -> bool {
        self.open && self.trusted
    }

    async fn on_input(&mut self, input: TransferInput) {
        self.dirty = true;
        match input {
            TransferInput::Channel(dc) => {
                if self.live() {
                    self.engine.handle_closed();
                }
                let _ = dc.set_buffered_amount_low_threshold(MIN_LIMIT as u32).await;
                self.channel = Some(dc);
                // A new path: its delay and rate are learnt afresh.
                self.pacer = Pacer::default();
                self.written = 0;
                // The channel is created open-pending; its OnOpen follows.
                self.open = false;
                self.trusted = false;
                self.early.clear();
            }
            TransferInput::Trusted => {
                // Said once per connection; a second would restart the
                // engine's hello and pause what is moving.
                if self.trusted {
                    return;
                }
                self.trusted = true;
                // A channel already open when the check passed.
                if !self.open {
                    if let Some(dc) = &self.channel {
                        self.open = matches!(
                            dc.ready_state().await,
                            Ok(webrtc::data_channel::RTCDataChannelState::Open)
                        );
                    }
                }
                if self.live() {
                    self.engine.handle_open();
                    for bytes in std::mem::take(&mut self.early) {
                        self.on_bytes(&bytes);
                    }
                }
            }
            TransferInput::SendFile(path) => match open_for_sending(&path) {
                Ok((file, name, size)) => {
                    let id = self.engine.send_file(name, size);
                    info!(id, size, "sending {}", path.display());
                    self.reading.insert(id, file);
                }
                Err(e) => {
                    let _ = self.out.send(TransferOutput::Refused(e));
                }
            },
            TransferInput::SendClipboardText(text) => {
                if !self.allowed.clipboard {
                    return;
                }
                if text.len() as u64 > MAX_CLIPBOARD_TEXT_BYTES {
                    let _ = self.out.send(TransferOutput::Refused(format!(
                        "the clipboard holds {} KB of text, more than the {} KB shared: send it as a file",
                        text.len() / 1024,
                        MAX_CLIPBOARD_TEXT_BYTES / 1024
                    )));
                    return;
                }
                self.engine.send_clipboard(Kind::ClipboardText, text.into_bytes());
            }
            TransferInput::Chat(text) => {
                let text: String = text
                    .chars()
                    .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
                    .collect();
                let text = text.trim();
                if text.is_empty() || text.chars().count() > MAX_CHAT_CHARS {
                    let _ = self.out.send(TransferOutput::Refused(format!(
                        "a chat message holds 1 to {MAX_CHAT_CHARS} characters"
                    )));
                    return;
                }
                if self.engine.send_chat(text.to_owned()).is_none() {
                    let _ = self
                        .out
                        .send(TransferOutput::Refused("too many chat messages in this session".into()));
                }
            }
            TransferInput::Decide { id, accept, collision } => {
                if accept && self.allowed.files_in {
                    self.take(id, collision);
                } else {
                    self.engine.reject(id, RejectReason::Declined);
                }
            }
            TransferInput::Cancel(id) => self.engine.cancel(id),
            TransferInput::Raw(bytes) => {
                if let (Some(dc), true) = (&self.channel, self.live()) {
                    let _ = dc.send(BytesMut::from(&bytes[..])).await;
                }
            }
            TransferInput::Allow(allowed) => {
                debug!(?allowed, side = ?self.config.side, "what may cross");
                let was = std::mem::replace(&mut self.allowed, allowed);
                if was.files_in && !allowed.files_in {
                    self.stop_incoming(|v| v.kind == Kind::File);
                }
                if was.clipboard && !allowed.clipboard {
                    self.stop_incoming(|v| v.kind.is_clipboard());
                }
            }
        }
        self.drain_events();
    }

    /// Revoked: what the other side is sending stops now.
    fn stop_incoming(&mut self, which: impl Fn(&TransferView) -> bool) {
        for v in self.engine.transfers() {
            let live = !matches!(
                v.phase,
                holdfast_transfer::Phase::Done | holdfast_transfer::Phase::Failed
            );
            if v.direction == holdfast_transfer::Direction::Incoming && live && which(&v) {
                self.engine.reject(v.id, RejectReason::NotAllowed);
            }
        }
    }

    /// Accepts incoming file `id` into the inbox.
    fn take(&mut self, id: u32, collision: Collision) {
        let Some(view) = self.engine.transfers().into_iter().find(|v| v.id == id) else {
            return;
        };
        let Some(inbox) = &self.inbox else {
            return self.engine.reject(id, RejectReason::NotAllowed);
        };
        if collision == Collision::Refuse && inbox.exists(&view.name) {
            return self.engine.reject(id, RejectReason::Declined);
        }
        match inbox.begin(&format!("{}-{id}", self.config.tag), &view.name, view.size) {
            Ok(partial) => {
                self.writing.insert(id, partial);
                self.collisions.insert(id, collision);
                self.engine.accept(id);
            }
            Err(e) => {
                warn!(id, "cannot take {:?}: {e}", view.name);
                self.engine.reject(id, e.reason());
            }
        }
    }

    async fn on_channel(&mut self, ev: DataChannelEvent) {
        match ev {
            DataChannelEvent::OnOpen => {
                self.open = true;
                self.dirty = true;
                if self.live() {
                    self.engine.handle_open();
                }
            }
            DataChannelEvent::OnClose => self.closed(),
            DataChannelEvent::OnMessage(msg) => {
                if !self.live() {
                    if self.open && !self.trusted && self.early.len() < EARLY_MESSAGES {
                        self.early.push(msg.data.to_vec());
                    } else {
                        self.rejected += 1;
                    }
                    return;
                }
                self.on_bytes(&msg.data);
            }
            _ => {}
        }
    }

    /// One message from a checked connection.
    fn on_bytes(&mut self, bytes: &[u8]) {
        let now = Instant::now();
        let result = Message::parse(bytes)
            .map_err(|e| e.to_string())
            .and_then(|m| self.engine.handle_message(now, m).map_err(|e| e.to_string()));
        if let Err(e) = result {
            self.rejected += 1;
            self.dirty = true;
            debug!("transfer message refused: {e}");
        }
        self.drain_events();
    }

    fn closed(&mut self) {
        self.early.clear();
        if self.live() {
            self.engine.handle_closed();
        }
        self.open = false;
        self.channel = None;
        self.dirty = true;
    }

    /// Acts on what the engine asks for.
    fn drain_events(&mut self) {
        while let Some(ev) = self.engine.poll_event() {
            self.dirty = true;
            match ev {
                Event::Chat { n, text } => {
                    let _ = self.out.send(TransferOutput::Chat(ChatLine { mine: false, n, text }));
                }
                Event::Offered { id, kind, name, size } => match kind {
                    Kind::File if !self.allowed.files_in || self.inbox.is_none() => {
                        self.engine.reject(id, RejectReason::NotAllowed)
                    }
                    Kind::File => match self.config.incoming {
                        IncomingFiles::Allow => self.take(id, Collision::KeepBoth),
                        IncomingFiles::Ask => {
                            let exists = self.inbox.as_ref().is_some_and(|i| i.exists(&name));
                            let _ = self.out.send(TransferOutput::Offered { id, name, size, exists });
                        }
                    },
                    Kind::ClipboardText if self.allowed.clipboard => self.engine.accept(id),
                    _ => self.engine.reject(id, RejectReason::NotAllowed),
                },
                Event::Write { id, offset, data } => {
                    let result = match self.writing.get_mut(&id) {
                        Some(p) => p.write_at(offset, &data),
                        None => continue,
                    };
                    if let Err(e) = result {
                        warn!(id, "writing failed: {e}");
                        self.engine.write_failed(id, e.reason());
                    }
                }
                Event::Verified { id } => {
                    let (Some(inbox), Some(partial)) = (&self.inbox, self.writing.remove(&id)) else {
                        self.engine.saved(id, Err(RejectReason::WriteFailed));
                        continue;
                    };
                    let collision = self.collisions.remove(&id).unwrap_or(Collision::KeepBoth);
                    match inbox.finish(partial, collision) {
                        Ok(name) => {
                            let path = inbox.path().join(&name);
                            info!(id, "saved {}", path.display());
                            self.engine.saved(id, Ok(()));
                            let _ = self.out.send(TransferOutput::Saved { id, path });
                        }
                        Err(e) => {
                            warn!(id, "could not save: {e}");
                            self.engine.saved(id, Err(e.reason()));
                        }
                    }
                }
                Event::Clipboard { kind, data } => {
                    if kind == Kind::ClipboardText && self.allowed.clipboard {
                        match String::from_utf8(data) {
                            Ok(text) => {
                                let _ = self.out.send(TransferOutput::Clipboard(text));
                            }
                            Err(_) => {
                                self.rejected += 1;
                                warn!("clipboard text refused: not UTF-8");
                            }
                        }
                    }
                }
                Event::Discard { id } => {
                    if let (Some(inbox), Some(partial)) = (&self.inbox, self.writing.remove(&id)) {
                        inbox.discard(partial);
                    }
                }
                Event::Finished { id, outcome, .. } => {
                    self.reading.remove(&id);
                    self.collisions.remove(&id);
                    if let Err(error) = outcome {
                        let name = self
                            .engine
                            .transfers()
                            .into_iter()
                            .find(|v| v.id == id)
                            .map(|v| v.name)
                            .unwrap_or_default();
                        let _ = self.out.send(TransferOutput::Failed { id, name, error });
                    }
                }
            }
        }
    }

    /// Sends what the engine has: control messages, then chunks within the limit.
    async fn pump(&mut self) {
        if !self.live() {
            return;
        }
        let Some(dc) = self.channel.clone() else { return };
        while let Some(c) = self.engine.poll_control() {
            if !self.write(&dc, &Message::Control(c).encode()).await {
                return;
            }
        }
        loop {
            let outstanding = dc.outstanding_bytes().await.unwrap_or(usize::MAX);
            self.pacer.on_sample(Instant::now(), self.written, outstanding);
            if !self.engine.busy() {
                break;
            }
            if outstanding >= self.pacer.limit() {
                self.pacer.on_limited();
                break;
            }
            if self.pace.video_busy().await {
                break;
            }
            let bytes = match self.engine.poll_chunk() {
                None => break,
                Some(Poll::Ready(b)) => b,
                Some(Poll::Read(job)) => {
                    let mut buf = vec![0; job.len];
                    let read = self.reading.get(&job.id).map(|f| f.read_exact_at(&mut buf, job.offset));
                    match read {
                        Some(Ok(())) => match self.engine.chunk(job.id, job.offset, &buf) {
                            Some(b) => b,
                            None => continue,
                        },
                        _ => {
                            warn!(id = job.id, "reading failed");
                            self.engine.read_failed(job.id);
                            self.drain_events();
                            continue;
                        }
                    }
                }
            };
            if !self.write(&dc, &bytes).await {
                break;
            }
            // The last chunk queues the `end`.
            while let Some(c) = self.engine.poll_control() {
                self.write(&dc, &Message::Control(c).encode()).await;
            }
        }
    }

    /// Writes one message, counting it for the pacer.
    async fn write(&mut self, dc: &Arc<dyn DataChannel>, bytes: &[u8]) -> bool {
        self.written += bytes.len() as u64;
        dc.send(BytesMut::from(bytes)).await.is_ok()
    }

    fn publish(&mut self) {
        let state = TransferState {
            transfers: self.engine.transfers(),
            chat: self.engine.chat().cloned().collect(),
            allowed: AllowedView {
                files_in: self.allowed.files_in,
                clipboard: self.allowed.clipboard,
            },
            connected: self.live(),
            rejected: self.rejected,
        };
        self.state.send_if_modified(|s| {
            let changed = *s != state;
            *s = state;
            changed
        });
    }
}

/// Opens a file to send: a regular file with a plain name.
fn open_for_sending(path: &Path) -> Result<(File, String, u64), String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} has no usable file name", path.display()))?
        .to_owned();
    check_name(&name).map_err(|e| format!("{name:?} cannot be sent: {e}"))?;
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    Ok((file, name, meta.len()))
}
