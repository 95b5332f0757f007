//! H.264 encoding with OpenH264, tuned for interactive screen sharing:
//! real-time mode, bitrate rate control, no encoder-side frame skipping (the
//! host drops frames itself, before encoding, so it knows which frames the
//! viewer lacks), keyframes only on request, and the picture cut into slices
//! that OpenH264 encodes on separate threads.
//!
//! The encoder is driven through OpenH264's own interface (`openh264-sys2`,
//! [`RawEncoder`]), not the `openh264` crate's `Encoder`: the crate builds its
//! parameters itself, always with a single slice, and one slice is one thread
//! however many threads are asked for.
//!
//! [`Tuning::Screen`] (the default) is OpenH264's screen-content mode: the
//! smallest frames for text and UI, at the cost of its content analysis.
//! [`Tuning::Motion`] (OpenH264's camera mode) encodes busy content faster at
//! 2-3x the bytes for small changes. See docs/benchmarks.md.

use openh264::formats::YUVSource;
use openh264_sys2::source::APILoader;
use openh264_sys2::{
    videoFormatI420, videoFrameTypeI, videoFrameTypeIDR, videoFrameTypeIPMixed, videoFrameTypeP, ISVCEncoder,
    SBitrateInfo, SEncParamExt as Params, SFrameBSInfo, SSourcePicture, CAMERA_VIDEO_REAL_TIME, CONSTANT_ID,
    ENCODER_OPTION, ENCODER_OPTION_BITRATE, ENCODER_OPTION_DATAFORMAT, ENCODER_OPTION_MAX_BITRATE,
    ENCODER_OPTION_TRACE_LEVEL, LOW_COMPLEXITY, RC_BITRATE_MODE, SCREEN_CONTENT_REAL_TIME, SM_FIXEDSLCNUM_SLICE,
    SM_SINGLE_SLICE, SPATIAL_LAYER_0, SPATIAL_LAYER_ALL, WELS_LOG_QUIET,
};

use crate::{I420Image, MediaError};

/// Default frame rate: smooth pointer motion without saturating two cores.
pub const DEFAULT_FPS: u32 = 30;
/// Default bitrate: crisp 1080p desktop text at 30 fps.
pub const DEFAULT_BITRATE_KBPS: u32 = 4_000;
/// The quantiser range. OpenH264 replaces a minimum of 0 (the crate's
/// default) with its screen-content limits [26, 35], and a maximum of 35
/// cannot honour a low bitrate on a big change: a page of text at 500 kbit/s
/// came out several times the budget. The full range up to 51 lets rate
/// control meet the target; the minimum keeps it from spending bits on
/// invisible refinement of static text.
pub const QP_RANGE: (u8, u8) = (12, 51);

/// What the encoder optimises for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tuning {
    /// Text and UI: OpenH264's screen-content mode.
    #[default]
    Screen,
    /// Speed and motion: OpenH264's camera mode.
    Motion,
}

impl Tuning {
    /// Its name on the command line and in stats.
    pub fn name(self) -> &'static str {
        match self {
            Tuning::Screen => "screen",
            Tuning::Motion => "motion",
        }
    }
}

/// Slices per picture by default: one per core of the 2-core reference
/// machine. Each slice costs a few hundred bytes of prediction lost at its
/// edge; see docs/benchmarks.md for what it buys.
pub const DEFAULT_SLICES: u16 = 2;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderSettings {
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// OpenH264 worker threads; 0 gives one per slice.
    pub threads: u16,
    /// Slices per picture (1 to 4); OpenH264 encodes slices in parallel.
    pub slices: u16,
    pub tuning: Tuning,
}

impl Default for EncoderSettings {
    fn default() -> Self {
        EncoderSettings {
            fps: DEFAULT_FPS,
            bitrate_kbps: DEFAULT_BITRATE_KBPS,
            threads: 0,
            slices: DEFAULT_SLICES,
            tuning: Tuning::Screen,
        }
    }
}

/// One encoded access unit (Annex B).
#[derive(Debug, Clone)]
pub struct EncodedPicture {
    pub data: Vec<u8>,
    pub keyframe: bool,
}

/// One OpenH264 encoder instance: created, initialised, uninitialised and
/// destroyed here, used through its function table.
struct RawEncoder {
    ptr: *mut ISVCEncoder,
    initialised: bool,
}

// SAFETY: an OpenH264 encoder instance has no thread affinity; `&mut self`
// on every call keeps it to one thread at a time.
unsafe impl Send for RawEncoder {}

impl RawEncoder {
    fn new() -> Result<Self, MediaError> {
        let mut ptr = std::ptr::null_mut();
        // SAFETY: writes a new instance's pointer into `ptr`.
        let rc = unsafe { APILoader::WelsCreateSVCEncoder(&raw mut ptr) };
        if rc != 0 || ptr.is_null() {
            return Err(MediaError::Encode(format!("OpenH264 creating an encoder: error {rc}")));
        }
        Ok(RawEncoder {
            ptr,
            initialised: false,
        })
    }

    fn table(&self) -> &openh264_sys2::ISVCEncoderVtbl {
        // SAFETY: `ptr` is a live instance (created in `new`, destroyed in
        // `drop`) whose first field points at its function table.
        unsafe { &**self.ptr }
    }

    fn default_params(&mut self) -> Result<Params, MediaError> {
        let mut p = Params::default();
        let f = self
            .table()
            .GetDefaultParams
            .ok_or(MediaError::Encode("no GetDefaultParams".into()))?;
        // SAFETY: fills the struct it is given.
        check(unsafe { f(self.ptr, &raw mut p) }, "reading the default parameters")?;
        Ok(p)
    }

    fn initialise(&mut self, params: &Params) -> Result<(), MediaError> {
        let f = self
            .table()
            .InitializeExt
            .ok_or(MediaError::Encode("no InitializeExt".into()))?;
        // SAFETY: `params` is a complete parameter set that lives across the call.
        check(unsafe { f(self.ptr, params) }, "initialising")?;
        self.initialised = true;
        Ok(())
    }

    /// # Safety
    /// `value` must be what OpenH264 expects for `option`.
    unsafe fn set_option<T>(&mut self, option: openh264_sys2::ENCODER_OPTION, value: &mut T) -> i32 {
        match self.table().SetOption {
            // SAFETY: per the caller; `value` lives across the call.
            Some(f) => unsafe { f(self.ptr, option, (value as *mut T).cast()) },
            None => -1,
        }
    }

    fn force_intra_frame(&mut self) {
        if let Some(f) = self.table().ForceIntraFrame {
            // SAFETY: an initialised instance.
            unsafe { f(self.ptr, true) };
        }
    }

    /// # Safety
    /// The instance is initialised for the picture's size and its planes
    /// cover it; `info` is read before the next call.
    unsafe fn encode_frame(&mut self, source: &SSourcePicture, info: &mut SFrameBSInfo) -> i32 {
        match self.table().EncodeFrame {
            // SAFETY: per the caller.
            Some(f) => unsafe { f(self.ptr, source, info) },
            None => -1,
        }
    }
}

impl Drop for RawEncoder {
    fn drop(&mut self) {
        // SAFETY: the instance is live; uninitialised only if initialised.
        unsafe {
            if self.initialised {
                if let Some(f) = self.table().Uninitialize {
                    f(self.ptr);
                }
            }
            APILoader::WelsDestroySVCEncoder(self.ptr);
        }
    }
}

pub struct H264Encoder {
    encoder: RawEncoder,
    settings: EncoderSettings,
    /// (0, 0) until the first picture initialises the encoder.
    dimensions: (u32, u32),
    force_keyframe: bool,
    info: SFrameBSInfo,
}

impl H264Encoder {
    pub fn new(settings: EncoderSettings) -> Result<Self, MediaError> {
        Ok(H264Encoder {
            encoder: RawEncoder::new()?,
            settings,
            dimensions: (0, 0),
            force_keyframe: true,
            info: SFrameBSInfo::default(),
        })
    }

    /// The encoder's parameters for a `width` x `height` picture.
    fn params(&mut self, width: u32, height: u32) -> Result<Params, MediaError> {
        let s = self.settings;
        let mut p = self.encoder.default_params()?;
        let dim = |v: u32| i32::try_from(v).map_err(|_| MediaError::Encode(format!("picture side {v} too large")));
        let bps = i32::try_from(s.bitrate_kbps.saturating_mul(1000)).unwrap_or(i32::MAX);
        p.iUsageType = match s.tuning {
            Tuning::Screen => SCREEN_CONTENT_REAL_TIME,
            Tuning::Motion => CAMERA_VIDEO_REAL_TIME,
        };
        p.iPicWidth = dim(width)?;
        p.iPicHeight = dim(height)?;
        p.iTargetBitrate = bps;
        p.iRCMode = RC_BITRATE_MODE;
        p.fMaxFrameRate = s.fps as f32;
        p.bEnableFrameSkip = false;
        p.iComplexityMode = LOW_COMPLEXITY;
        p.uiIntraPeriod = 0;
        p.eSpsPpsIdStrategy = CONSTANT_ID;
        p.iMinQp = QP_RANGE.0.into();
        p.iMaxQp = QP_RANGE.1.into();
        p.iLoopFilterDisableIdc = 0;
        p.bEnableDenoise = false;
        p.bEnableSceneChangeDetect = true;
        // Camera-mode analyses; screen-content mode has its own and turns
        // these off (with a warning each) if asked.
        p.bEnableBackgroundDetection = s.tuning == Tuning::Motion;
        p.bEnableAdaptiveQuant = s.tuning == Tuning::Motion;
        p.bEnableLongTermReference = false;
        p.iLtrMarkPeriod = 30;
        p.iSpatialLayerNum = 1;
        p.iTemporalLayerNum = 1;
        let slices = s.slices.clamp(1, 4);
        p.iMultipleThreadIdc = if s.threads == 0 { slices } else { s.threads };
        let layer = &mut p.sSpatialLayers[0];
        layer.iVideoWidth = dim(width)?;
        layer.iVideoHeight = dim(height)?;
        layer.fFrameRate = s.fps as f32;
        layer.iSpatialBitrate = bps;
        layer.iMaxSpatialBitrate = bps;
        if slices > 1 {
            layer.sSliceArgument.uiSliceMode = SM_FIXEDSLCNUM_SLICE;
            layer.sSliceArgument.uiSliceNum = slices.into();
        } else {
            layer.sSliceArgument.uiSliceMode = SM_SINGLE_SLICE;
            layer.sSliceArgument.uiSliceNum = 1;
        }
        // Say how the pixels were converted (convert.rs: BT.601, limited
        // range, colour description 6 = SMPTE 170M). Without it each decoder
        // guesses: Chromium picks BT.601, WebKitGTK's GStreamer decoder BT.709
        // for HD, which shifted the desktop app's greens by 27 levels.
        layer.bVideoSignalTypePresent = true;
        layer.bColorDescriptionPresent = true;
        layer.bFullRange = false;
        layer.uiColorPrimaries = 6;
        layer.uiTransferCharacteristics = 6;
        layer.uiColorMatrix = 6;
        Ok(p)
    }

    /// Initialises (or re-initialises, on a new size) for `width` x `height`.
    fn initialise(&mut self, width: u32, height: u32) -> Result<(), MediaError> {
        if self.dimensions != (0, 0) {
            // A fresh encoder: the first frame at the new size is a clean
            // IDR with new SPS/PPS, whatever OpenH264 would carry over.
            self.encoder = RawEncoder::new()?;
        }
        let params = self.params(width, height)?;
        let (mut trace, mut format) = (WELS_LOG_QUIET, videoFormatI420);
        // Quiet before initialising: OpenH264 otherwise prints its parameter
        // notes on stderr. SAFETY: both options take an int.
        unsafe {
            check(
                self.encoder.set_option(ENCODER_OPTION_TRACE_LEVEL, &mut trace),
                "setting the log level",
            )?;
        }
        self.encoder.initialise(&params)?;
        unsafe {
            check(
                self.encoder.set_option(ENCODER_OPTION_DATAFORMAT, &mut format),
                "setting I420 input",
            )?;
        }
        self.dimensions = (width, height);
        self.force_keyframe = true;
        Ok(())
    }

    pub fn settings(&self) -> EncoderSettings {
        self.settings
    }

    /// Aims at `kbps` from the next frame on: no new encoder, no keyframe.
    pub fn set_bitrate(&mut self, kbps: u32) -> Result<(), MediaError> {
        let kbps = kbps.max(1);
        let was = self.settings.bitrate_kbps;
        if kbps == was {
            return Ok(());
        }
        self.settings.bitrate_kbps = kbps;
        if self.dimensions == (0, 0) {
            // Not initialised yet (that happens at the first frame): start there.
            return Ok(());
        }
        // OpenH264 refuses a layer's target above the layer's maximum, and
        // the crate set the maximum equal to the target: raise the maximums
        // (the stream's and the one layer's) first when going up, lower the
        // target first when going down. The target is set for the whole
        // stream, which OpenH264 hands on to the layer.
        const MAX_ALL: (ENCODER_OPTION, i32) = (ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_ALL);
        const MAX_LAYER: (ENCODER_OPTION, i32) = (ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_0);
        const TARGET: (ENCODER_OPTION, i32) = (ENCODER_OPTION_BITRATE, SPATIAL_LAYER_ALL);
        let order = if kbps > was {
            [MAX_ALL, MAX_LAYER, TARGET]
        } else {
            [TARGET, MAX_LAYER, MAX_ALL]
        };
        for (option, layer) in order {
            let mut info = SBitrateInfo {
                iLayer: layer,
                iBitrate: kbps.saturating_mul(1000).min(i32::MAX as u32) as i32,
            };
            // SAFETY: the encoder is initialised (a frame was encoded), and
            // both options take an SBitrateInfo.
            let rc = unsafe { self.encoder.set_option(option, &mut info) };
            if rc != 0 {
                return Err(MediaError::Encode(format!(
                    "setting the bitrate to {kbps} kbit/s: error {rc}"
                )));
            }
        }
        Ok(())
    }

    /// Codes with `tuning` from the next frame on. OpenH264 fixes its usage
    /// type when it is initialised, so this is a new encoder: the next frame
    /// is a keyframe.
    pub fn set_tuning(&mut self, tuning: Tuning) -> Result<(), MediaError> {
        if tuning == self.settings.tuning {
            return Ok(());
        }
        self.settings.tuning = tuning;
        let (w, h) = self.dimensions;
        if (w, h) != (0, 0) {
            self.initialise(w, h)?;
        }
        Ok(())
    }

    /// Makes the next frame an IDR frame.
    pub fn request_keyframe(&mut self) {
        self.force_keyframe = true;
    }

    /// Encodes one picture; `None` if the encoder produced nothing.
    pub fn encode(&mut self, image: &I420Image) -> Result<Option<EncodedPicture>, MediaError> {
        if self.dimensions != (image.width, image.height) {
            self.initialise(image.width, image.height)?;
        }
        // The planes must cover the picture: OpenH264 reads them unchecked.
        let (ys, us, vs) = image.strides();
        let (w, h) = (image.width as usize, image.height as usize);
        let ch = h.div_ceil(2);
        if ys < w || image.y().len() < ys * h || image.u().len() < us * ch || image.v().len() < vs * ch {
            return Err(MediaError::Encode(format!("the planes do not cover a {w}x{h} picture")));
        }
        let int = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
        let source = SSourcePicture {
            iColorFormat: videoFormatI420,
            iStride: [int(ys), int(us), int(vs), 0],
            // OpenH264 takes `*mut` but only reads the planes.
            pData: [
                image.y().as_ptr().cast_mut(),
                image.u().as_ptr().cast_mut(),
                image.v().as_ptr().cast_mut(),
                std::ptr::null_mut(),
            ],
            iPicWidth: int(w),
            iPicHeight: int(h),
            uiTimeStamp: 0,
            bPsnrY: false,
            bPsnrU: false,
            bPsnrV: false,
        };
        // SAFETY: the encoder is initialised for this size; the planes were
        // checked to cover it and outlive the call; `info` receives pointers
        // into the encoder's own buffers, read below before the next call.
        if self.force_keyframe {
            self.encoder.force_intra_frame();
        }
        // SAFETY: initialised for this size, planes checked above; `info`
        // is read (in `bitstream`) before the next call.
        check(
            unsafe { self.encoder.encode_frame(&source, &mut self.info) },
            "encoding",
        )?;
        let keyframe = match self.info.eFrameType {
            t if t == videoFrameTypeIDR || t == videoFrameTypeI => true,
            t if t == videoFrameTypeP || t == videoFrameTypeIPMixed => false,
            // Skipped or invalid: nothing to send.
            _ => return Ok(None),
        };
        let data = self.bitstream();
        if data.is_empty() {
            return Ok(None);
        }
        if keyframe {
            self.force_keyframe = false;
        }
        Ok(Some(EncodedPicture { data, keyframe }))
    }

    /// The NAL units of the last encoded picture, in order (Annex B).
    fn bitstream(&self) -> Vec<u8> {
        let info = &self.info;
        let layers = usize::try_from(info.iLayerNum).unwrap_or(0).min(info.sLayerInfo.len());
        let mut out = Vec::with_capacity(usize::try_from(info.iFrameSizeInBytes).unwrap_or(0));
        for layer in &info.sLayerInfo[..layers] {
            let nals = usize::try_from(layer.iNalCount).unwrap_or(0);
            if nals == 0 || layer.pBsBuf.is_null() || layer.pNalLengthInByte.is_null() {
                continue;
            }
            // SAFETY: OpenH264 fills `iNalCount` lengths and a buffer holding
            // that many bytes, valid until the next encode call.
            let lengths = unsafe { std::slice::from_raw_parts(layer.pNalLengthInByte, nals) };
            let total: usize = lengths.iter().map(|&n| usize::try_from(n).unwrap_or(0)).sum();
            out.extend_from_slice(unsafe { std::slice::from_raw_parts(layer.pBsBuf, total) });
        }
        out
    }
}

fn check(rc: i32, what: &str) -> Result<(), MediaError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(MediaError::Encode(format!("OpenH264 {what}: error {rc}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::SyntheticSource;
    use crate::{FrameSource, H264Decoder, I420Image};

    /// Bytes of `n` frames of the busy synthetic desktop, all decoded, and
    /// whether any of them was a keyframe.
    fn encode_n(enc: &mut H264Encoder, src: &mut SyntheticSource, dec: &mut H264Decoder, n: usize) -> (usize, bool) {
        let mut image = I420Image::default();
        let (mut bytes, mut keyframe) = (0, false);
        for _ in 0..n {
            let frame = src.grab().unwrap().unwrap();
            image.convert_from(&frame).unwrap();
            let pic = enc.encode(&image).unwrap().expect("a changing screen gives a frame");
            bytes += pic.data.len();
            keyframe |= pic.keyframe;
            dec.decode(&pic.data).unwrap().expect("every frame decodes");
        }
        (bytes, keyframe)
    }

    #[test]
    fn the_bitrate_changes_mid_stream_without_a_keyframe() {
        // Started at 1 Mbit/s: above and below where it began.
        let mut enc = H264Encoder::new(EncoderSettings {
            bitrate_kbps: 1_000,
            ..Default::default()
        })
        .unwrap();
        let mut src = SyntheticSource::noisy(640, 360);
        let mut dec = H264Decoder::new().unwrap();
        encode_n(&mut enc, &mut src, &mut dec, 10);
        enc.set_bitrate(4_000).unwrap();
        encode_n(&mut enc, &mut src, &mut dec, 10);
        let (high, keyframe) = encode_n(&mut enc, &mut src, &mut dec, 30);
        assert!(!keyframe);
        enc.set_bitrate(300).unwrap();
        encode_n(&mut enc, &mut src, &mut dec, 10);
        let (low, keyframe) = encode_n(&mut enc, &mut src, &mut dec, 30);
        eprintln!("30 frames at 4000 kbit/s: {high} B; at 300 kbit/s: {low} B");
        assert!(!keyframe, "a new bitrate is not a new stream");
        // 300 kbit/s at 30 fps is 37.5 KB a second: allow the encoder its slack.
        assert!(low < 60_000, "300 kbit/s honoured: {low} B in a second");
        assert!(low * 4 < high, "{low} B is not far under {high} B");
        enc.set_bitrate(4_000).unwrap();
        encode_n(&mut enc, &mut src, &mut dec, 10);
        let (again, keyframe) = encode_n(&mut enc, &mut src, &mut dec, 30);
        assert!(!keyframe);
        assert!(again > low * 3, "back up: {again} B");
    }

    #[test]
    fn a_new_tuning_is_a_keyframe_and_the_stream_decodes_on() {
        let mut enc = H264Encoder::new(EncoderSettings::default()).unwrap();
        let mut src = SyntheticSource::noisy(640, 360);
        let mut dec = H264Decoder::new().unwrap();
        encode_n(&mut enc, &mut src, &mut dec, 5);
        let (_, keyframe) = encode_n(&mut enc, &mut src, &mut dec, 5);
        assert!(!keyframe, "no keyframe while the tuning stays");
        enc.set_tuning(Tuning::Screen).unwrap();
        let (_, keyframe) = encode_n(&mut enc, &mut src, &mut dec, 5);
        assert!(!keyframe, "the same tuning again changes nothing");
        enc.set_tuning(Tuning::Motion).unwrap();
        assert_eq!(enc.settings().tuning, Tuning::Motion);
        let mut image = I420Image::default();
        image.convert_from(&src.grab().unwrap().unwrap()).unwrap();
        let pic = enc.encode(&image).unwrap().unwrap();
        assert!(pic.keyframe, "a new encoder starts with a keyframe");
        dec.decode(&pic.data).unwrap().expect("it decodes in the same decoder");
        let (_, keyframe) = encode_n(&mut enc, &mut src, &mut dec, 5);
        assert!(!keyframe);
    }

    /// NAL unit types in an Annex B access unit, in order.
    fn nal_types(data: &[u8]) -> Vec<u8> {
        let mut types = Vec::new();
        let mut i = 0;
        while i + 3 < data.len() {
            if data[i..i + 3] == [0, 0, 1] {
                types.push(data[i + 3] & 0x1f);
                i += 3;
            } else {
                i += 1;
            }
        }
        types
    }

    #[test]
    fn each_picture_is_cut_into_the_slices_asked_for_and_decodes() {
        for slices in [1u16, 2, 4] {
            let mut enc = H264Encoder::new(EncoderSettings {
                slices,
                ..Default::default()
            })
            .unwrap();
            let mut src = SyntheticSource::noisy(1280, 720);
            let mut dec = H264Decoder::new().unwrap();
            let mut image = I420Image::default();
            for n in 0..5 {
                image.convert_from(&src.grab().unwrap().unwrap()).unwrap();
                let pic = enc.encode(&image).unwrap().expect("a changing screen gives a frame");
                assert_eq!(pic.keyframe, n == 0);
                // 5 = IDR slice, 1 = non-IDR slice; SPS/PPS come with the IDR.
                let kind = if n == 0 { 5 } else { 1 };
                let count = nal_types(&pic.data).iter().filter(|&&t| t == kind).count();
                assert_eq!(count, slices as usize, "picture {n} with {slices} slices");
                dec.decode(&pic.data).unwrap().expect("every picture decodes");
            }
        }
    }

    #[test]
    fn planes_that_do_not_cover_the_picture_are_refused() {
        let mut enc = H264Encoder::new(EncoderSettings::default()).unwrap();
        let mut image = I420Image {
            width: 64,
            height: 64,
            y: vec![0; 64 * 64],
            u: vec![0; 32 * 32],
            v: vec![0; 32 * 32],
        };
        assert!(enc.encode(&image).unwrap().is_some());
        image.v.truncate(100);
        let err = enc.encode(&image).unwrap_err();
        assert!(err.to_string().contains("do not cover"), "{err}");
    }

    #[test]
    fn a_bitrate_set_before_the_first_frame_is_used_from_it() {
        let mut enc = H264Encoder::new(EncoderSettings::default()).unwrap();
        enc.set_bitrate(250).unwrap();
        assert_eq!(enc.settings().bitrate_kbps, 250);
        let mut src = SyntheticSource::noisy(640, 360);
        let mut dec = H264Decoder::new().unwrap();
        let (bytes, keyframe) = encode_n(&mut enc, &mut src, &mut dec, 30);
        assert!(keyframe, "the first frame is a keyframe");
        assert!(bytes < 120_000, "{bytes} B for a second at 250 kbit/s");
    }
}
