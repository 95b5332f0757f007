//! Scenarios played through two engines joined by a scripted channel, with
//! every call and everything each engine said recorded in
//! `tests/vectors/transfer-engine.json`. The browser's port of the engine
//! (`ui/src/transferengine.ts`) replays each side's calls from that file and
//! must say the same (`ui/src/transferengine.test.ts`): a drift between the
//! two fails a test on one side or the other.
//!
//! File bytes follow [`pattern`], so the file records a chunk's place and
//! length rather than its bytes; anything else goes as hex.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use holdfast_proto::transfer::{Kind, Message, RejectReason};
use holdfast_transfer::{Engine, Event, Poll, Side};
use serde_json::{json, Value};

/// The byte at `offset` of every file in these scenarios.
fn pattern(offset: u64) -> u8 {
    ((offset * 31 + 7) % 251) as u8
}

fn pattern_bytes(offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pattern(offset + i)).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Host => "host",
        Side::Viewer => "viewer",
    }
}

/// A message as the file records it: a chunk of pattern bytes by place, else hex.
fn wire_value(bytes: &[u8]) -> Value {
    if let Ok(Message::Chunk { id, offset, data }) = Message::parse(bytes) {
        if data == pattern_bytes(offset, data.len()) {
            return json!({ "chunk": { "id": id, "offset": offset, "len": data.len() } });
        }
    }
    json!({ "hex": hex(bytes) })
}

struct Recorder {
    t0: Instant,
    now: Instant,
    host: Engine,
    viewer: Engine,
    /// What each side sent and the other has not yet received.
    to_viewer: VecDeque<Vec<u8>>,
    to_host: VecDeque<Vec<u8>>,
    steps: Vec<Value>,
}

impl Recorder {
    fn new() -> Self {
        let t0 = Instant::now();
        Recorder {
            t0,
            now: t0,
            host: Engine::new(Side::Host),
            viewer: Engine::new(Side::Viewer),
            to_viewer: VecDeque::new(),
            to_host: VecDeque::new(),
            steps: Vec::new(),
        }
    }

    fn engine(&mut self, side: Side) -> &mut Engine {
        match side {
            Side::Host => &mut self.host,
            Side::Viewer => &mut self.viewer,
        }
    }

    fn outbox(&mut self, from: Side) -> &mut VecDeque<Vec<u8>> {
        match from {
            Side::Host => &mut self.to_viewer,
            Side::Viewer => &mut self.to_host,
        }
    }

    /// One call on `side`'s engine, then everything it has to say.
    fn step(&mut self, side: Side, op: Value, call: impl FnOnce(&mut Engine, Instant) -> Value) -> Value {
        self.step_sending(side, op, |e, now| (call(e, now), None))
    }

    /// A step whose call yields a chunk, which goes on the wire before any
    /// control message the call queued (as a shell sends them).
    fn step_sending(
        &mut self,
        side: Side,
        op: Value,
        call: impl FnOnce(&mut Engine, Instant) -> (Value, Option<Vec<u8>>),
    ) -> Value {
        self.now += Duration::from_millis(10);
        let now = self.now;
        let (result, chunk) = call(self.engine(side), now);
        self.outbox(side).extend(chunk);
        let mut controls = Vec::new();
        let mut sent = Vec::new();
        while let Some(c) = self.engine(side).poll_control() {
            controls.push(serde_json::to_value(&c).unwrap());
            sent.push(Message::from(c).encode());
        }
        let mut events = Vec::new();
        while let Some(e) = self.engine(side).poll_event() {
            events.push(event_value(&e));
        }
        let views: Vec<Value> = self
            .engine(side)
            .transfers()
            .into_iter()
            .map(|v| {
                json!([
                    v.id,
                    v.direction,
                    v.kind,
                    v.phase,
                    v.done,
                    v.size,
                    v.bytes_sent,
                    v.error,
                    v.failure
                ])
            })
            .collect();
        let chat: Vec<Value> = self.engine(side).chat().map(|l| json!([l.mine, l.n, l.text])).collect();
        self.outbox(side).extend(sent);
        let busy = self.engine(side).busy();
        self.steps.push(json!({
            "side": side_name(side),
            "now_ms": now.duration_since(self.t0).as_millis() as u64,
            "op": op,
            "result": result,
            "controls": controls,
            "events": events,
            "views": views,
            "chat": chat,
            "busy": busy,
        }));
        result
    }

    fn open(&mut self) {
        for side in [Side::Host, Side::Viewer] {
            self.step(side, json!({ "op": "open" }), |e, _| {
                e.handle_open();
                Value::Null
            });
        }
    }

    /// The link drops: both channels close and whatever was in flight is lost.
    fn cut(&mut self) {
        self.to_viewer.clear();
        self.to_host.clear();
        for side in [Side::Host, Side::Viewer] {
            self.step(side, json!({ "op": "closed" }), |e, _| {
                e.handle_closed();
                Value::Null
            });
        }
    }

    /// Delivers up to `n` messages waiting for `to`; returns how many went.
    fn deliver(&mut self, to: Side, n: usize) -> usize {
        let from = if to == Side::Host { Side::Viewer } else { Side::Host };
        let mut went = 0;
        while went < n {
            let Some(bytes) = self.outbox(from).pop_front() else {
                break;
            };
            self.recv(to, &bytes);
            went += 1;
        }
        went
    }

    fn recv(&mut self, to: Side, bytes: &[u8]) {
        let msg = Message::parse(bytes).expect("engines send valid messages");
        self.step(
            to,
            json!({ "op": "recv", "msg": wire_value(bytes) }),
            |e, now| match e.handle_message(now, msg) {
                Ok(()) => Value::Null,
                Err(err) => json!({ "error": err.0 }),
            },
        );
    }

    /// Polls `side` for chunks and sends what it asks for, up to `n` chunks.
    fn send_chunks(&mut self, side: Side, n: usize) -> usize {
        let mut sent = 0;
        while sent < n {
            let poll = self.step_sending(side, json!({ "op": "poll_chunk" }), |e, _| match e.poll_chunk() {
                None => (Value::Null, None),
                Some(Poll::Ready(bytes)) => (json!({ "ready": wire_value(&bytes) }), Some(bytes)),
                Some(Poll::Read(job)) => (
                    json!({ "read": { "id": job.id, "offset": job.offset, "len": job.len } }),
                    None,
                ),
            });
            if poll.is_null() {
                break;
            }
            if let Some(read) = poll.get("read") {
                let (id, offset, len) = (
                    read["id"].as_u64().unwrap() as u32,
                    read["offset"].as_u64().unwrap(),
                    read["len"].as_u64().unwrap() as usize,
                );
                self.step_sending(
                    side,
                    json!({ "op": "chunk", "id": id, "offset": offset, "len": len }),
                    |e, _| match e.chunk(id, offset, &pattern_bytes(offset, len)) {
                        Some(bytes) => (wire_value(&bytes), Some(bytes)),
                        None => (Value::Null, None),
                    },
                );
            }
            sent += 1;
        }
        sent
    }

    /// Moves everything both ways until both sides are quiet.
    fn settle(&mut self) {
        loop {
            let moved = self.deliver(Side::Host, usize::MAX)
                + self.deliver(Side::Viewer, usize::MAX)
                + self.send_chunks(Side::Host, 8)
                + self.send_chunks(Side::Viewer, 8);
            if moved == 0 {
                break;
            }
        }
    }

    fn call(&mut self, side: Side, op: Value, f: impl FnOnce(&mut Engine) -> Value) -> Value {
        self.step(side, op, |e, _| f(e))
    }

    fn chat(&mut self, side: Side, text: &str) {
        let t = text.to_string();
        self.call(side, json!({ "op": "chat", "text": text }), |e| json!(e.send_chat(t)));
    }

    fn file(&mut self, side: Side, name: &str, size: u64) -> u32 {
        let n = name.to_string();
        let id = self.call(side, json!({ "op": "file", "name": name, "size": size }), |e| {
            json!(e.send_file(n, size))
        });
        id.as_u64().unwrap() as u32
    }

    fn scenario(mut self, name: &str, out: &mut Vec<Value>) {
        out.push(json!({ "name": name, "steps": std::mem::take(&mut self.steps) }));
    }
}

fn event_value(e: &Event) -> Value {
    match e {
        Event::Chat { n, text } => json!({ "type": "chat", "n": n, "text": text }),
        Event::Offered { id, kind, name, size } => {
            json!({ "type": "offered", "id": id, "kind": kind, "name": name, "size": size })
        }
        Event::Write { id, offset, data } => {
            // Pattern bytes by length; any others (a corrupted chunk) as hex.
            let hexed = (data != &pattern_bytes(*offset, data.len())).then(|| hex(data));
            json!({ "type": "write", "id": id, "offset": offset, "len": data.len(), "hex": hexed })
        }
        Event::Verified { id } => json!({ "type": "verified", "id": id }),
        Event::Clipboard { kind, data } => json!({ "type": "clipboard", "kind": kind, "data": hex(data) }),
        Event::Discard { id } => json!({ "type": "discard", "id": id }),
        Event::Finished { id, direction, outcome } => json!({
            "type": "finished", "id": id, "direction": direction,
            "error": outcome.as_ref().err(),
        }),
    }
}

fn accept_offers(r: &mut Recorder, side: Side) {
    // Accept every file the side was offered and has not answered.
    let offered: Vec<u32> = r
        .engine(side)
        .transfers()
        .into_iter()
        .filter(|v| {
            v.phase == holdfast_transfer::Phase::Offered && v.direction == holdfast_transfer::Direction::Incoming
        })
        .map(|v| v.id)
        .collect();
    for id in offered {
        r.call(side, json!({ "op": "accept", "id": id }), |e| {
            e.accept(id);
            Value::Null
        });
    }
}

fn saved(r: &mut Recorder, side: Side, id: u32, result: Result<(), RejectReason>) {
    r.call(side, json!({ "op": "saved", "id": id, "reason": result.err() }), |e| {
        e.saved(id, result);
        Value::Null
    });
}

#[test]
fn engine_scenarios_match_the_committed_vectors() {
    let mut scenarios = Vec::new();

    // Chat both ways, a line written during a cut, each line once after it.
    let mut r = Recorder::new();
    r.open();
    r.chat(Side::Viewer, "hello from the viewer");
    r.chat(Side::Host, "hello, 你好");
    r.settle();
    r.chat(Side::Viewer, "lost in the cut");
    r.cut();
    r.chat(Side::Host, "written while down");
    r.open();
    r.settle();
    assert_eq!(r.host.chat().count(), 4);
    r.scenario("chat across a cut", &mut scenarios);

    // A file each way (past the 1 MiB progress mark); the link drops with some in flight; both resume
    // from the receiver's confirmed byte, the host saves, the viewer keeps.
    let mut r = Recorder::new();
    r.open();
    let up = r.file(Side::Viewer, "report.bin", 1536 * 1024 + 5);
    let down = r.file(Side::Host, "tools.tar", 1280 * 1024 + 100);
    r.settle();
    accept_offers(&mut r, Side::Host);
    accept_offers(&mut r, Side::Viewer);
    r.deliver(Side::Host, usize::MAX);
    r.deliver(Side::Viewer, usize::MAX);
    r.send_chunks(Side::Viewer, 40);
    r.send_chunks(Side::Host, 36);
    r.deliver(Side::Host, 38);
    r.deliver(Side::Viewer, 34);
    r.cut();
    r.open();
    r.settle();
    saved(&mut r, Side::Host, up, Ok(()));
    saved(&mut r, Side::Viewer, down, Ok(()));
    r.settle();
    r.scenario("files both ways resume after a cut", &mut scenarios);

    // Clipboard text the host copies twice (the first replaced), then a
    // refusal, a cancel mid-way, a file the receiver could not keep.
    let mut r = Recorder::new();
    r.open();
    r.call(
        Side::Host,
        json!({ "op": "clipboard", "kind": "clipboard-text", "data": hex(b"first") }),
        |e| json!(e.send_clipboard(Kind::ClipboardText, b"first".to_vec())),
    );
    r.call(
        Side::Host,
        json!({ "op": "clipboard", "kind": "clipboard-text", "data": hex("second, 第二".as_bytes()) }),
        |e| json!(e.send_clipboard(Kind::ClipboardText, "second, 第二".as_bytes().to_vec())),
    );
    r.settle();
    accept_offers(&mut r, Side::Viewer);
    r.settle();
    let declined = r.file(Side::Host, "setup.exe", 1000);
    let cancelled = r.file(Side::Viewer, "big.iso", 5 * 1024 * 1024);
    let unkept = r.file(Side::Viewer, "notes.txt", 70_000);
    r.settle();
    r.call(
        Side::Viewer,
        json!({ "op": "reject", "id": declined, "reason": "declined" }),
        |e| {
            e.reject(declined, RejectReason::Declined);
            Value::Null
        },
    );
    accept_offers(&mut r, Side::Host);
    r.deliver(Side::Viewer, usize::MAX);
    r.deliver(Side::Host, usize::MAX);
    r.send_chunks(Side::Viewer, 3);
    r.settle_some();
    r.call(Side::Viewer, json!({ "op": "cancel", "id": cancelled }), |e| {
        e.cancel(cancelled);
        Value::Null
    });
    r.settle();
    saved(&mut r, Side::Host, unkept, Err(RejectReason::NoSpace));
    r.settle();
    r.scenario("clipboard, refusals and cancels", &mut scenarios);

    // What a broken or hostile peer says is refused and changes nothing else.
    let mut r = Recorder::new();
    r.open();
    r.settle();
    let good = r.file(Side::Host, "a.txt", 10);
    r.settle();
    for (to, bytes) in [
        (Side::Host, br#"{"type":"chat","n":5,"text":"skipped ahead"}"#.to_vec()),
        (
            Side::Host,
            br#"{"type":"offer","id":7,"kind":"file","name":"x","size":1}"#.to_vec(),
        ),
        (Side::Host, br#"{"type":"progress","id":1,"have":5}"#.to_vec()),
        (Side::Host, br#"{"type":"complete","id":99}"#.to_vec()),
        (Side::Viewer, holdfast_proto::transfer::encode_chunk(good, 0, b"early")),
        (Side::Viewer, holdfast_proto::transfer::encode_chunk(77, 0, b"stray")),
        (
            Side::Viewer,
            br#"{"type":"end","id":1,"sha256":"0000000000000000000000000000000000000000000000000000000000000000"}"#
                .to_vec(),
        ),
        (
            Side::Viewer,
            br#"{"type":"abort","id":4,"reason":"cancelled"}"#.to_vec(),
        ),
    ] {
        r.recv(to, &bytes);
    }
    // A file whose bytes were changed on the way fails its check.
    let bent = r.file(Side::Host, "b.txt", 10);
    r.settle();
    accept_offers(&mut r, Side::Viewer);
    r.deliver(Side::Host, usize::MAX);
    r.send_chunks(Side::Host, 1);
    let sent: Vec<Vec<u8>> = r.to_viewer.drain(..).collect();
    assert_eq!(sent.len(), 2, "the chunk and the end");
    r.recv(
        Side::Viewer,
        &holdfast_proto::transfer::encode_chunk(bent, 0, b"0123456789"),
    );
    r.recv(Side::Viewer, &sent[1]);
    r.scenario("hostile and broken messages", &mut scenarios);

    holdfast_proto::check_vectors(
        "transfer-engine.json",
        json!({ "pattern": "byte at offset o = (o * 31 + 7) % 251", "scenarios": scenarios }),
    );
}

impl Recorder {
    /// Delivers what is waiting both ways once, without sending more chunks.
    fn settle_some(&mut self) {
        self.deliver(Side::Host, usize::MAX);
        self.deliver(Side::Viewer, usize::MAX);
    }
}
