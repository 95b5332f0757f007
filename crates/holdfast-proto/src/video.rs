//! The `video` data channel: encoded H.264 frames (Annex B) split into chunks.
//!
//! Format version 2. Every message is one chunk: a header, then payload bytes.
//! All integers are big-endian.
//!
//! | offset | size | field                                                      |
//! |--------|------|------------------------------------------------------------|
//! | 0      | 1    | version, `1`                                               |
//! | 1      | 1    | flags: bit 0 keyframe; other bits must be zero             |
//! | 2      | 4    | frame id (wraps at 2^32; consecutive for frames sent)      |
//! | 6      | 2    | chunk index, `0..count`                                    |
//! | 8      | 2    | chunk count, `1..=MAX_CHUNKS`                              |
//! | 10     | 8    | capture time, microseconds since the Unix epoch (host clock)|
//! | 18     | 4    | keyframes only: coded width, height (u16 each, non-zero)    |
//! | 22     | 4    | keyframes only: display width, height (u16 each, non-zero)  |
//!
//! The coded size is the picture in the bitstream; the display size is the
//! screen it shows. They differ when the host scales the picture down to fit
//! a slow link (version 2; version 1 had no display size): the viewer draws
//! the picture stretched to the display size, so the screen keeps its size
//! and coordinates while its detail drops.
//!
//! The host never skips a frame id: frames it drops for backpressure are
//! dropped before they get one, and the next frame sent is a keyframe. So a
//! gap in ids, or a frame left incomplete, means loss, and the viewer waits
//! for (and asks for) a keyframe instead of decoding a broken picture.

use thiserror::Error;

pub const VERSION: u8 = 2;
pub const FLAG_KEYFRAME: u8 = 0x01;
/// Header bytes of a delta-frame chunk.
pub const HEADER_LEN: usize = 18;
/// Header bytes of a keyframe chunk (adds the coded and display sizes).
pub const KEYFRAME_HEADER_LEN: usize = 26;
/// Default size of one chunk message, header included. 16 KiB is the size
/// every browser's SCTP stack takes without negotiation.
pub const DEFAULT_CHUNK_BYTES: usize = 16 * 1024;
/// Most chunks one frame may have.
pub const MAX_CHUNKS: u16 = 2048;
/// Largest encoded frame a viewer will reassemble.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// Largest width or height accepted.
pub const MAX_DIMENSION: u16 = 8192;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChunkError {
    #[error("chunk of {0} bytes is shorter than its header")]
    Truncated(usize),
    #[error("unsupported video format version {0}")]
    Version(u8),
    #[error("reserved flag bits set: {0:#04x}")]
    Flags(u8),
    #[error("chunk index {index} out of range for count {count}")]
    Index { index: u16, count: u16 },
    #[error("invalid frame dimensions {0}x{1}")]
    Dimensions(u16, u16),
    #[error("chunk disagrees with earlier chunks of frame {0}")]
    Inconsistent(u32),
    #[error("frame exceeds {MAX_FRAME_BYTES} bytes")]
    TooLarge,
}

/// A parsed chunk header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    pub frame_id: u32,
    pub index: u16,
    pub count: u16,
    pub keyframe: bool,
    pub capture_us: u64,
    /// The coded size; `Some` exactly on keyframes.
    pub dimensions: Option<(u16, u16)>,
    /// The display size; `Some` exactly on keyframes.
    pub display: Option<(u16, u16)>,
}

impl ChunkHeader {
    /// Bytes this header takes on the wire.
    pub fn encoded_len(&self) -> usize {
        if self.keyframe {
            KEYFRAME_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        out.push(if self.keyframe { FLAG_KEYFRAME } else { 0 });
        out.extend_from_slice(&self.frame_id.to_be_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.capture_us.to_be_bytes());
        if self.keyframe {
            let (w, h) = self.dimensions.unwrap_or((0, 0));
            let (dw, dh) = self.display.unwrap_or((w, h));
            for v in [w, h, dw, dh] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
    }

    /// Parses a chunk, returning its header and payload.
    pub fn parse(msg: &[u8]) -> Result<(ChunkHeader, &[u8]), ChunkError> {
        if msg.len() < HEADER_LEN {
            return Err(ChunkError::Truncated(msg.len()));
        }
        if msg[0] != VERSION {
            return Err(ChunkError::Version(msg[0]));
        }
        let flags = msg[1];
        if flags & !FLAG_KEYFRAME != 0 {
            return Err(ChunkError::Flags(flags));
        }
        let keyframe = flags & FLAG_KEYFRAME != 0;
        let u16_at = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
        let frame_id = u32::from_be_bytes(msg[2..6].try_into().expect("4 bytes"));
        let index = u16_at(6);
        let count = u16_at(8);
        let capture_us = u64::from_be_bytes(msg[10..18].try_into().expect("8 bytes"));
        if count == 0 || count > MAX_CHUNKS || index >= count {
            return Err(ChunkError::Index { index, count });
        }
        let mut header = ChunkHeader {
            frame_id,
            index,
            count,
            keyframe,
            capture_us,
            dimensions: None,
            display: None,
        };
        if keyframe {
            if msg.len() < KEYFRAME_HEADER_LEN {
                return Err(ChunkError::Truncated(msg.len()));
            }
            let valid = |w: u16, h: u16| w != 0 && h != 0 && w <= MAX_DIMENSION && h <= MAX_DIMENSION;
            for (w, h) in [(u16_at(18), u16_at(20)), (u16_at(22), u16_at(24))] {
                if !valid(w, h) {
                    return Err(ChunkError::Dimensions(w, h));
                }
            }
            header.dimensions = Some((u16_at(18), u16_at(20)));
            header.display = Some((u16_at(22), u16_at(24)));
        }
        Ok((header, &msg[header.encoded_len()..]))
    }
}

/// One encoded frame, whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    pub frame_id: u32,
    pub keyframe: bool,
    pub capture_us: u64,
    /// The coded size (keyframes; 0 on delta frames).
    pub width: u16,
    pub height: u16,
    /// The size of the screen the picture shows, which it is drawn at
    /// (keyframes; 0 on delta frames). Larger than the coded size when the
    /// host scaled the picture down.
    pub display_width: u16,
    pub display_height: u16,
    /// H.264 Annex B bitstream.
    pub data: Vec<u8>,
}

/// Splits frames into chunk messages of at most `chunk_bytes` each.
#[derive(Debug, Clone)]
pub struct FrameChunker {
    chunk_bytes: usize,
}

impl FrameChunker {
    /// `chunk_bytes` is the whole message size, header included.
    pub fn new(chunk_bytes: usize) -> Self {
        assert!(chunk_bytes > KEYFRAME_HEADER_LEN + 64, "chunk size too small");
        FrameChunker { chunk_bytes }
    }

    /// The chunk messages for `frame`, in order.
    pub fn split(&self, frame: &EncodedFrame) -> Result<Vec<Vec<u8>>, ChunkError> {
        self.split_as(frame, frame.frame_id)
    }

    /// Like [`split`](Self::split) but numbered `frame_id`: one encoded frame
    /// goes to several viewers, each with its own id sequence, without copies.
    pub fn split_as(&self, frame: &EncodedFrame, frame_id: u32) -> Result<Vec<Vec<u8>>, ChunkError> {
        let header_len = if frame.keyframe {
            KEYFRAME_HEADER_LEN
        } else {
            HEADER_LEN
        };
        let per_chunk = self.chunk_bytes - header_len;
        let count = frame.data.len().div_ceil(per_chunk).max(1);
        if count > MAX_CHUNKS as usize || frame.data.len() > MAX_FRAME_BYTES {
            return Err(ChunkError::TooLarge);
        }
        let mut out = Vec::with_capacity(count);
        for index in 0..count {
            let start = index * per_chunk;
            let end = (start + per_chunk).min(frame.data.len());
            let mut msg = Vec::with_capacity(header_len + end - start);
            ChunkHeader {
                frame_id,
                index: index as u16,
                count: count as u16,
                keyframe: frame.keyframe,
                capture_us: frame.capture_us,
                dimensions: frame.keyframe.then_some((frame.width, frame.height)),
                display: frame.keyframe.then_some((frame.display_width, frame.display_height)),
            }
            .write(&mut msg);
            msg.extend_from_slice(&frame.data[start..end]);
            out.push(msg);
        }
        Ok(out)
    }
}

/// What the reassembler reports for each chunk pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembly {
    /// The frame is not complete yet.
    Pending,
    /// A whole frame that is safe to decode.
    Frame(EncodedFrame),
    /// A complete frame that cannot be decoded (no keyframe since a loss):
    /// it was discarded. Ask the host for a keyframe.
    NeedKeyframe,
}

/// Reassembles chunks into frames, and holds back delta frames until a
/// keyframe after any loss, so the decoder never sees a broken reference chain.
#[derive(Debug, Default)]
pub struct FrameAssembler {
    current: Option<Partial>,
    last_complete: Option<u32>,
    awaiting_keyframe: bool,
    started: bool,
    /// Frames lost or discarded so far.
    pub frames_lost: u64,
}

#[derive(Debug)]
struct Partial {
    header: ChunkHeader,
    received: Vec<bool>,
    parts: Vec<Vec<u8>>,
    have: u16,
    bytes: usize,
}

impl FrameAssembler {
    pub fn new() -> Self {
        FrameAssembler::default()
    }

    /// Marks the stream as broken (for example after a decoder error): delta
    /// frames are discarded until the next keyframe.
    pub fn require_keyframe(&mut self) {
        self.awaiting_keyframe = true;
    }

    /// Whether delta frames are being discarded until a keyframe arrives.
    pub fn awaiting_keyframe(&self) -> bool {
        self.awaiting_keyframe || !self.started
    }

    pub fn push(&mut self, msg: &[u8]) -> Result<Assembly, ChunkError> {
        let (header, payload) = ChunkHeader::parse(msg)?;
        if let Some(cur) = &self.current {
            if cur.header.frame_id != header.frame_id {
                // A new frame began before the old one completed: the old one is lost.
                self.current = None;
                self.frames_lost += 1;
                self.awaiting_keyframe = true;
            }
        }
        let cur = self.current.get_or_insert_with(|| Partial {
            header,
            received: vec![false; header.count as usize],
            parts: vec![Vec::new(); header.count as usize],
            have: 0,
            bytes: 0,
        });
        let h = &cur.header;
        if h.count != header.count || h.keyframe != header.keyframe || h.capture_us != header.capture_us {
            let id = header.frame_id;
            self.current = None;
            self.awaiting_keyframe = true;
            self.frames_lost += 1;
            return Err(ChunkError::Inconsistent(id));
        }
        let i = header.index as usize;
        if !cur.received[i] {
            cur.bytes += payload.len();
            if cur.bytes > MAX_FRAME_BYTES {
                self.current = None;
                self.awaiting_keyframe = true;
                self.frames_lost += 1;
                return Err(ChunkError::TooLarge);
            }
            cur.received[i] = true;
            cur.parts[i] = payload.to_vec();
            cur.have += 1;
        }
        if cur.have < cur.header.count {
            return Ok(Assembly::Pending);
        }
        let done = self.current.take().expect("current frame present");
        let h = done.header;
        if let Some(last) = self.last_complete {
            if h.frame_id != last.wrapping_add(1) {
                self.frames_lost += u64::from(h.frame_id.wrapping_sub(last).wrapping_sub(1)).min(1 << 20);
                self.awaiting_keyframe = true;
            }
        }
        self.last_complete = Some(h.frame_id);
        if h.keyframe {
            self.awaiting_keyframe = false;
            self.started = true;
        } else if self.awaiting_keyframe || !self.started {
            return Ok(Assembly::NeedKeyframe);
        }
        let (width, height) = h.dimensions.unwrap_or((0, 0));
        let (display_width, display_height) = h.display.unwrap_or((0, 0));
        Ok(Assembly::Frame(EncodedFrame {
            frame_id: h.frame_id,
            keyframe: h.keyframe,
            capture_us: h.capture_us,
            width,
            height,
            display_width,
            display_height,
            data: done.parts.concat(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(id: u32, keyframe: bool, len: usize) -> EncodedFrame {
        EncodedFrame {
            frame_id: id,
            keyframe,
            capture_us: 1_700_000_000_000_000 + id as u64,
            width: 960,
            height: 540,
            display_width: 1920,
            display_height: 1080,
            data: (0..len).map(|i| (i * 7 + id as usize) as u8).collect(),
        }
    }

    fn assemble_all(asm: &mut FrameAssembler, chunker: &FrameChunker, f: &EncodedFrame) -> Assembly {
        let mut last = Assembly::Pending;
        for c in chunker.split(f).unwrap() {
            last = asm.push(&c).unwrap();
        }
        last
    }

    #[test]
    fn keyframe_then_deltas_round_trip() {
        let chunker = FrameChunker::new(DEFAULT_CHUNK_BYTES);
        let mut asm = FrameAssembler::new();
        let k = frame(1, true, 100_000);
        assert_eq!(assemble_all(&mut asm, &chunker, &k), Assembly::Frame(k));
        let d = frame(2, false, 5_000);
        let mut expect = d.clone();
        expect.width = 0;
        expect.height = 0;
        expect.display_width = 0;
        expect.display_height = 0;
        assert_eq!(assemble_all(&mut asm, &chunker, &d), Assembly::Frame(expect));
        assert_eq!(asm.frames_lost, 0);
    }

    #[test]
    fn empty_and_exact_multiple_sizes_split_correctly() {
        let chunker = FrameChunker::new(1024);
        assert_eq!(chunker.split(&frame(1, false, 0)).unwrap().len(), 1);
        assert_eq!(chunker.split(&frame(1, false, 1024 - HEADER_LEN)).unwrap().len(), 1);
        assert_eq!(chunker.split(&frame(1, false, 1025 - HEADER_LEN)).unwrap().len(), 2);
        for c in chunker.split(&frame(1, true, 10_000)).unwrap() {
            assert!(c.len() <= 1024);
        }
    }

    #[test]
    fn deltas_before_first_keyframe_are_held_back() {
        let chunker = FrameChunker::new(DEFAULT_CHUNK_BYTES);
        let mut asm = FrameAssembler::new();
        assert_eq!(
            assemble_all(&mut asm, &chunker, &frame(5, false, 10)),
            Assembly::NeedKeyframe
        );
        assert!(matches!(
            assemble_all(&mut asm, &chunker, &frame(6, true, 10)),
            Assembly::Frame(_)
        ));
    }

    #[test]
    fn a_gap_discards_deltas_until_the_next_keyframe() {
        let chunker = FrameChunker::new(DEFAULT_CHUNK_BYTES);
        let mut asm = FrameAssembler::new();
        assert!(matches!(
            assemble_all(&mut asm, &chunker, &frame(1, true, 10)),
            Assembly::Frame(_)
        ));
        // Frame 2 lost entirely.
        assert_eq!(
            assemble_all(&mut asm, &chunker, &frame(3, false, 10)),
            Assembly::NeedKeyframe
        );
        assert_eq!(
            assemble_all(&mut asm, &chunker, &frame(4, false, 10)),
            Assembly::NeedKeyframe
        );
        assert!(matches!(
            assemble_all(&mut asm, &chunker, &frame(5, true, 10)),
            Assembly::Frame(_)
        ));
        assert!(matches!(
            assemble_all(&mut asm, &chunker, &frame(6, false, 10)),
            Assembly::Frame(_)
        ));
        assert_eq!(asm.frames_lost, 1);
    }

    #[test]
    fn an_incomplete_frame_is_lost_when_the_next_begins() {
        let chunker = FrameChunker::new(1024);
        let mut asm = FrameAssembler::new();
        assemble_all(&mut asm, &chunker, &frame(1, true, 10));
        let partial = chunker.split(&frame(2, false, 5000)).unwrap();
        asm.push(&partial[0]).unwrap();
        assert_eq!(
            assemble_all(&mut asm, &chunker, &frame(3, false, 10)),
            Assembly::NeedKeyframe
        );
        assert!(asm.frames_lost >= 1);
    }

    #[test]
    fn frame_ids_wrap() {
        let chunker = FrameChunker::new(DEFAULT_CHUNK_BYTES);
        let mut asm = FrameAssembler::new();
        assert!(matches!(
            assemble_all(&mut asm, &chunker, &frame(u32::MAX, true, 10)),
            Assembly::Frame(_)
        ));
        assert!(matches!(
            assemble_all(&mut asm, &chunker, &frame(0, false, 10)),
            Assembly::Frame(_)
        ));
    }

    #[test]
    fn malformed_chunks_are_rejected() {
        let good = FrameChunker::new(1024).split(&frame(1, true, 100)).unwrap().remove(0);
        assert_eq!(ChunkHeader::parse(&good[..10]), Err(ChunkError::Truncated(10)));
        let mut v = good.clone();
        v[0] = 1;
        assert_eq!(ChunkHeader::parse(&v).unwrap_err(), ChunkError::Version(1));
        let mut f = good.clone();
        f[1] = 0x81;
        assert!(matches!(ChunkHeader::parse(&f), Err(ChunkError::Flags(_))));
        let mut idx = good.clone();
        idx[6..8].copy_from_slice(&5u16.to_be_bytes());
        assert!(matches!(ChunkHeader::parse(&idx), Err(ChunkError::Index { .. })));
        let mut zero = good.clone();
        zero[8..10].copy_from_slice(&0u16.to_be_bytes());
        assert!(matches!(ChunkHeader::parse(&zero), Err(ChunkError::Index { .. })));
        let mut dim = good.clone();
        dim[18..20].copy_from_slice(&0u16.to_be_bytes());
        assert!(matches!(ChunkHeader::parse(&dim), Err(ChunkError::Dimensions(0, 540))));
        let mut shown = good.clone();
        shown[24..26].copy_from_slice(&(MAX_DIMENSION + 1).to_be_bytes());
        assert!(matches!(
            ChunkHeader::parse(&shown),
            Err(ChunkError::Dimensions(1920, 8193))
        ));
        assert!(matches!(
            ChunkHeader::parse(&good[..24]),
            Err(ChunkError::Truncated(24))
        ));
    }

    #[test]
    fn a_scaled_keyframe_carries_both_sizes_and_deltas_neither() {
        let chunks = FrameChunker::new(1024).split(&frame(7, true, 10)).unwrap();
        let (h, payload) = ChunkHeader::parse(&chunks[0]).unwrap();
        assert_eq!((h.dimensions, h.display), (Some((960, 540)), Some((1920, 1080))));
        assert_eq!(payload.len(), 10);
        let chunks = FrameChunker::new(1024).split(&frame(8, false, 10)).unwrap();
        let (h, _) = ChunkHeader::parse(&chunks[0]).unwrap();
        assert_eq!((h.dimensions, h.display), (None, None));
    }

    /// Chunks and what they parse to, for the browser's parser
    /// (`ui/src/assembler.test.ts` reads `tests/vectors/video.json`).
    #[test]
    fn chunk_vectors_match_the_committed_file() {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let chunker = FrameChunker::new(256);
        let key = chunker.split(&frame(0x0102_0304, true, 300)).unwrap();
        let delta = chunker.split(&frame(0x0102_0305, false, 20)).unwrap();
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("keyframe, first of two chunks", key[0].clone()),
            ("keyframe, second chunk", key[1].clone()),
            ("delta frame", delta[0].clone()),
        ];
        let mut bad = |name, at: usize, bytes: &[u8]| {
            let mut c = key[0].clone();
            c[at..at + bytes.len()].copy_from_slice(bytes);
            cases.push((name, c));
        };
        bad("version 1", 0, &[1]);
        bad("reserved flag", 1, &[0x03]);
        bad("index past count", 6, &[0, 2]);
        bad("zero count", 8, &[0, 0]);
        bad("zero coded width", 18, &[0, 0]);
        bad("display height over the limit", 24, &(MAX_DIMENSION + 1).to_be_bytes());
        cases.push(("keyframe without a display size", key[0][..24].to_vec()));
        cases.push(("shorter than a header", key[0][..17].to_vec()));
        let cases: Vec<_> = cases
            .into_iter()
            .map(|(name, c)| {
                let parsed = match ChunkHeader::parse(&c) {
                    Ok((h, payload)) => serde_json::json!({
                        "frameId": h.frame_id,
                        "index": h.index,
                        "count": h.count,
                        "keyframe": h.keyframe,
                        "captureUs": h.capture_us,
                        "width": h.dimensions.map_or(0, |d| d.0),
                        "height": h.dimensions.map_or(0, |d| d.1),
                        "displayWidth": h.display.map_or(0, |d| d.0),
                        "displayHeight": h.display.map_or(0, |d| d.1),
                        "payload": hex(payload),
                    }),
                    Err(e) => serde_json::json!({ "error": e.to_string() }),
                };
                serde_json::json!({ "name": name, "chunk": hex(&c), "parsed": parsed })
            })
            .collect();
        crate::check_vectors("video.json", serde_json::json!({ "version": VERSION, "cases": cases }));
    }

    #[test]
    fn inconsistent_chunks_break_the_frame_not_the_assembler() {
        let chunker = FrameChunker::new(1024);
        let mut asm = FrameAssembler::new();
        let mut chunks = chunker.split(&frame(1, true, 3000)).unwrap();
        asm.push(&chunks[0]).unwrap();
        chunks[1][10] ^= 0xff; // capture time differs
        assert!(matches!(asm.push(&chunks[1]), Err(ChunkError::Inconsistent(1))));
        assert!(matches!(
            assemble_all(&mut asm, &chunker, &frame(2, true, 10)),
            Assembly::Frame(_)
        ));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ChunkHeader::parse(&bytes);
            let _ = FrameAssembler::new().push(&bytes);
        }

        #[test]
        fn split_then_assemble_is_identity(len in 0usize..50_000, chunk in 200usize..20_000, id in any::<u32>()) {
            let chunker = FrameChunker::new(chunk);
            let f = frame(id, true, len);
            let mut asm = FrameAssembler::new();
            prop_assert_eq!(assemble_all(&mut asm, &chunker, &f), Assembly::Frame(f));
        }
    }
}
