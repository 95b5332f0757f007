//! Frames from a PipeWire video stream (a Mutter screen-cast stream, or a
//! portal's), as a [`FrameSource`].
//!
//! PipeWire calls back on its own loop, so a thread runs that loop and
//! copies each new buffer into a slot; [`PipeWireSource::grab`] swaps the
//! newest one out (two buffers recycled, no allocation per frame). Only
//! BGRx/BGRA in shared memory is asked for: what the pipeline converts,
//! with no GPU needed. The compositor sends a buffer only when something
//! changed, and each new buffer gets a serial; the pipeline compares
//! serials instead of hashing pixels ("damage" at frame granularity).
//!
//! A buffer is checked against its negotiated geometry before it is read: a
//! short or malformed one is dropped, never read out of bounds.

use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use holdfast_media::{BgraFrame, FrameSource, MediaError};
use pipewire as pw;
use pw::properties::properties;
use pw::spa;
use pw::stream::{StreamFlags, StreamState};
use spa::param::format::{FormatProperties, MediaSubtype, MediaType};
use spa::param::video::{VideoFormat, VideoInfoRaw};
use spa::param::ParamType;
use spa::pod::serialize::PodSerializer;
use spa::pod::{Pod, Value};
use spa::utils::{Fraction, Rectangle, SpaTypes};
use tracing::{debug, warn};

/// How long PipeWire has to connect and deliver the first frame.
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest side accepted from the compositor.
const MAX_SIDE: u32 = 16_384;

struct Frame {
    data: Vec<u8>,
    width: u32,
    height: u32,
    stride: u32,
    serial: u64,
}

#[derive(Default)]
struct Slot {
    fresh: Option<Frame>,
    /// A buffer the grabber is done with, to copy the next frame into.
    spare: Option<Vec<u8>>,
    serial: u64,
    error: Option<String>,
    dropped: u64,
}

#[derive(Default)]
struct Shared {
    slot: Mutex<Slot>,
    changed: Condvar,
}

impl Shared {
    fn fail(&self, error: String) {
        let mut slot = self.slot.lock().expect("pipewire slot");
        slot.error.get_or_insert(error);
        self.changed.notify_all();
    }

    /// Copies one buffer's frame into the slot, if it is whole.
    fn store(&self, format: &VideoInfoRaw, data: &[u8], offset: usize, size: usize, stride: i32) {
        let (width, height) = (format.size().width, format.size().height);
        if !matches!(format.format(), VideoFormat::BGRx | VideoFormat::BGRA)
            || width == 0
            || height == 0
            || width > MAX_SIDE
            || height > MAX_SIDE
        {
            return;
        }
        let row = width as usize * 4;
        let stride = if stride > 0 { stride as usize } else { row };
        let need = stride * (height as usize - 1) + row;
        let mut slot = self.slot.lock().expect("pipewire slot");
        if stride < row || size < need || offset.checked_add(need).is_none_or(|end| end > data.len()) {
            slot.dropped += 1;
            if slot.dropped == 1 {
                warn!(
                    width,
                    height, stride, size, "a PipeWire buffer is smaller than its format; dropped"
                );
            }
            return;
        }
        let mut buf = slot.spare.take().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(&data[offset..offset + need]);
        slot.serial += 1;
        let frame = Frame {
            data: buf,
            width,
            height,
            stride: stride as u32,
            serial: slot.serial,
        };
        if let Some(old) = slot.fresh.replace(frame) {
            slot.spare = Some(old.data);
        }
        self.changed.notify_all();
    }
}

/// The BGRx/BGRA raw video formats, any size and rate.
fn format_pod() -> Result<Vec<u8>, MediaError> {
    let object = spa::pod::object!(
        SpaTypes::ObjectParamFormat,
        ParamType::EnumFormat,
        spa::pod::property!(FormatProperties::MediaType, Id, MediaType::Video),
        spa::pod::property!(FormatProperties::MediaSubtype, Id, MediaSubtype::Raw),
        spa::pod::property!(
            FormatProperties::VideoFormat,
            Choice,
            Enum,
            Id,
            VideoFormat::BGRx,
            VideoFormat::BGRx,
            VideoFormat::BGRA
        ),
        spa::pod::property!(
            FormatProperties::VideoSize,
            Choice,
            Range,
            Rectangle,
            Rectangle {
                width: 1920,
                height: 1080
            },
            Rectangle { width: 1, height: 1 },
            Rectangle {
                width: MAX_SIDE,
                height: MAX_SIDE
            }
        ),
        spa::pod::property!(
            FormatProperties::VideoFramerate,
            Choice,
            Range,
            Fraction,
            Fraction { num: 30, denom: 1 },
            Fraction { num: 0, denom: 1 },
            Fraction { num: 1000, denom: 1 }
        ),
    );
    PodSerializer::serialize(std::io::Cursor::new(Vec::new()), &Value::Object(object))
        .map(|(cursor, _)| cursor.into_inner())
        .map_err(|e| MediaError::Capture(format!("PipeWire format: {e:?}")))
}

/// Runs PipeWire's loop for one stream until `quit` says so.
fn run(node_id: u32, shared: Arc<Shared>, quit: pw::channel::Receiver<()>, ready: mpsc::Sender<Result<(), String>>) {
    let fail = |what: &str, e: pw::Error| {
        let msg = format!("PipeWire {what}: {e}");
        shared.fail(msg.clone());
        let _ = ready.send(Err(msg));
    };
    let mainloop = match pw::main_loop::MainLoopRc::new(None) {
        Ok(l) => l,
        Err(e) => return fail("main loop", e),
    };
    let context = match pw::context::ContextRc::new(&mainloop, None) {
        Ok(c) => c,
        Err(e) => return fail("context", e),
    };
    let core = match context.connect_rc(None) {
        Ok(c) => c,
        Err(e) => return fail("connection (is PipeWire running in this session?)", e),
    };
    let stream = match pw::stream::StreamBox::new(
        &core,
        "holdfast-capture",
        properties! {
            *pw::keys::MEDIA_TYPE => "Video",
            *pw::keys::MEDIA_CATEGORY => "Capture",
            *pw::keys::MEDIA_ROLE => "Screen",
        },
    ) {
        Ok(s) => s,
        Err(e) => return fail("stream", e),
    };
    let (on_state, on_frame) = (shared.clone(), shared.clone());
    let listener = stream
        .add_local_listener_with_user_data(VideoInfoRaw::default())
        .state_changed(move |_, _, old, new| {
            debug!(node_id, ?old, ?new, "PipeWire stream state");
            match new {
                StreamState::Error(e) => on_state.fail(format!("PipeWire stream: {e}")),
                StreamState::Unconnected if matches!(old, StreamState::Paused | StreamState::Streaming) => {
                    on_state.fail("the compositor ended the screen-cast stream".into())
                }
                _ => {}
            }
        })
        .param_changed(|_, format, id, param| {
            if let (true, Some(param)) = (id == ParamType::Format.as_raw(), param) {
                if format.parse(param).is_ok() {
                    debug!(format = ?format.format(), size = ?format.size(), "PipeWire format");
                }
            }
        })
        .process(move |stream, format| {
            let Some(mut buffer) = stream.dequeue_buffer() else {
                return;
            };
            let Some(data) = buffer.datas_mut().first_mut() else {
                return;
            };
            let chunk = data.chunk();
            let (offset, size, stride) = (chunk.offset() as usize, chunk.size() as usize, chunk.stride());
            if let Some(bytes) = data.data() {
                on_frame.store(format, bytes, offset, size, stride);
            }
        })
        .register();
    let _listener = match listener {
        Ok(l) => l,
        Err(e) => return fail("stream listener", e),
    };
    let pod = match format_pod() {
        Ok(p) => p,
        Err(e) => {
            shared.fail(e.to_string());
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let Some(pod) = Pod::from_bytes(&pod) else {
        return fail("format", pw::Error::CreationFailed);
    };
    if let Err(e) = stream.connect(
        spa::utils::Direction::Input,
        Some(node_id),
        StreamFlags::AUTOCONNECT | StreamFlags::MAP_BUFFERS,
        &mut [pod],
    ) {
        return fail("connecting to the stream", e);
    }
    let _quit = quit.attach(mainloop.loop_(), {
        let mainloop = mainloop.clone();
        move |()| mainloop.quit()
    });
    let _ = ready.send(Ok(()));
    mainloop.run();
}

/// Frames of one PipeWire node (see the module doc).
pub struct PipeWireSource {
    shared: Arc<Shared>,
    current: Frame,
    quit: pw::channel::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl PipeWireSource {
    /// Connects to `node_id` on this session's PipeWire and waits for the
    /// first frame (its size is the display's).
    pub fn open(node_id: u32) -> Result<PipeWireSource, MediaError> {
        pw::init();
        let shared = Arc::new(Shared::default());
        let (quit, quit_rx) = pw::channel::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("holdfast-pipewire".into())
            .spawn({
                let shared = shared.clone();
                move || run(node_id, shared, quit_rx, ready_tx)
            })
            .map_err(|e| MediaError::Capture(format!("cannot start the PipeWire thread: {e}")))?;
        let mut source = PipeWireSource {
            shared,
            current: Frame {
                data: Vec::new(),
                width: 0,
                height: 0,
                stride: 0,
                serial: 0,
            },
            quit,
            thread: Some(thread),
        };
        match ready_rx.recv_timeout(FIRST_FRAME_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(MediaError::Capture(e)),
            Err(_) => return Err(MediaError::Capture("PipeWire did not start".into())),
        }
        source.wait_first_frame(node_id)?;
        Ok(source)
    }

    fn wait_first_frame(&mut self, node_id: u32) -> Result<(), MediaError> {
        let deadline = Instant::now() + FIRST_FRAME_TIMEOUT;
        let mut slot = self.shared.slot.lock().expect("pipewire slot");
        loop {
            if let Some(e) = &slot.error {
                return Err(MediaError::Capture(e.clone()));
            }
            if let Some(frame) = slot.fresh.take() {
                self.current = frame;
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(MediaError::Capture(format!(
                    "no frame from PipeWire node {node_id} within {FIRST_FRAME_TIMEOUT:?}"
                )));
            }
            slot = self.shared.changed.wait_timeout(slot, left).expect("pipewire slot").0;
        }
    }

    /// Why the stream stopped, once it has (the compositor ended it, or PipeWire failed).
    pub fn error(&self) -> Option<String> {
        self.shared.slot.lock().expect("pipewire slot").error.clone()
    }

    /// Frames PipeWire delivered that were malformed (dropped).
    pub fn dropped(&self) -> u64 {
        self.shared.slot.lock().expect("pipewire slot").dropped
    }
}

impl FrameSource for PipeWireSource {
    fn grab(&mut self) -> Result<Option<BgraFrame<'_>>, MediaError> {
        {
            let mut slot = self.shared.slot.lock().expect("pipewire slot");
            if let Some(e) = &slot.error {
                return Err(MediaError::Capture(e.clone()));
            }
            if let Some(fresh) = slot.fresh.take() {
                let old = std::mem::replace(&mut self.current, fresh);
                slot.spare = Some(old.data);
            }
        }
        let f = &self.current;
        Ok(Some(BgraFrame {
            data: &f.data,
            width: f.width,
            height: f.height,
            stride: f.stride,
            serial: Some(f.serial),
        }))
    }

    fn dimensions(&self) -> (u32, u32) {
        (self.current.width, self.current.height)
    }
}

impl Drop for PipeWireSource {
    fn drop(&mut self) {
        let _ = self.quit.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
