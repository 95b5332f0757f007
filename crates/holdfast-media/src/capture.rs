//! Screen capture. [`FrameSource`] abstracts the screen so the pipeline can be
//! benchmarked and tested on synthetic content; [`ScreenSource`] is the X11
//! one, on `scrap` (X11 SHM on Linux, DXGI on Windows, Quartz on macOS).
//! Which source a session uses is decided in `holdfast-screen` (Wayland
//! sessions capture through the compositor's PipeWire stream).

use std::io::ErrorKind;

use crate::MediaError;

/// A borrowed BGRA frame: `stride` bytes per row, `width * 4 <= stride`.
pub struct BgraFrame<'a> {
    pub data: &'a [u8],
    pub width: u32,
    pub height: u32,
    pub stride: u32,
    /// The source's number for this picture, when it knows which pictures
    /// are new (a compositor sends a buffer only on damage): equal serials
    /// are the same picture, so nothing is hashed. `None`: compare pixels.
    pub serial: Option<u64>,
}

impl BgraFrame<'_> {
    /// Whether `data` holds the rows its geometry promises (a frame from
    /// elsewhere is checked before any kernel reads it).
    pub fn check(&self) -> Result<(), MediaError> {
        let (row, rows) = (self.width as usize * 4, self.height as usize);
        if self.width == 0 || self.height == 0 {
            return Err(MediaError::Convert(format!(
                "empty frame: {}x{}",
                self.width, self.height
            )));
        }
        if (self.stride as usize) < row || self.data.len() < self.stride as usize * (rows - 1) + row {
            return Err(MediaError::Convert("BGRA buffer smaller than its geometry".into()));
        }
        Ok(())
    }
}

/// Something that produces BGRA frames.
pub trait FrameSource {
    /// The next frame, or `None` when the source has none ready yet.
    fn grab(&mut self) -> Result<Option<BgraFrame<'_>>, MediaError>;
    /// Current size in pixels.
    fn dimensions(&self) -> (u32, u32);
}

impl FrameSource for Box<dyn FrameSource> {
    fn grab(&mut self) -> Result<Option<BgraFrame<'_>>, MediaError> {
        (**self).grab()
    }
    fn dimensions(&self) -> (u32, u32) {
        (**self).dimensions()
    }
}

/// Geometry of one display, in the virtual desktop's coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisplayInfo {
    pub index: usize,
    pub width: u32,
    pub height: u32,
}

/// Lists the displays scrap can capture.
pub fn list_displays() -> Result<Vec<DisplayInfo>, MediaError> {
    let all = scrap::Display::all().map_err(|e| MediaError::Capture(e.to_string()))?;
    Ok(all
        .iter()
        .enumerate()
        .map(|(index, d)| DisplayInfo {
            index,
            width: d.width() as u32,
            height: d.height() as u32,
        })
        .collect())
}

/// Captures one display. Not `Send`: create it on the thread that uses it.
pub struct ScreenSource {
    capturer: scrap::Capturer,
    width: u32,
    height: u32,
}

impl ScreenSource {
    /// Opens display `index` (0 is the primary display).
    pub fn open(index: usize) -> Result<Self, MediaError> {
        let display = if index == 0 {
            scrap::Display::primary().map_err(|e| MediaError::Capture(e.to_string()))?
        } else {
            let mut all = scrap::Display::all().map_err(|e| MediaError::Capture(e.to_string()))?;
            let n = all.len();
            if index >= n {
                return Err(MediaError::NoSuchDisplay(index, n));
            }
            all.swap_remove(index)
        };
        let (width, height) = (display.width() as u32, display.height() as u32);
        let capturer = scrap::Capturer::new(display).map_err(|e| MediaError::Capture(e.to_string()))?;
        Ok(ScreenSource {
            capturer,
            width,
            height,
        })
    }
}

impl FrameSource for ScreenSource {
    fn grab(&mut self) -> Result<Option<BgraFrame<'_>>, MediaError> {
        let (width, height) = (self.width, self.height);
        match self.capturer.frame() {
            Ok(frame) => {
                let data: &[u8] = &frame;
                let stride = (data.len() / height.max(1) as usize) as u32;
                // SAFETY: scrap's `Frame<'a>` only wraps a `&'a [u8]` into the
                // capturer's own buffer, borrowed for as long as `&mut self`;
                // its `Deref` merely shortens that lifetime.
                let data: &[u8] = unsafe { std::slice::from_raw_parts(data.as_ptr(), data.len()) };
                Ok(Some(BgraFrame {
                    data,
                    width,
                    height,
                    stride,
                    serial: None,
                }))
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(MediaError::Capture(e.to_string())),
        }
    }

    fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }
}
