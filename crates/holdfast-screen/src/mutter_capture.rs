//! One display's frames on GNOME Wayland, across the Mutter sessions of a
//! [`MutterLink`]: when Mutter ends the stream (it does whenever the
//! monitors change), the next grab starts a new session (or takes the one
//! another user of the link already started) and carries on with the same
//! display's new stream. The pipeline sees a new size as any size change
//! (a keyframe).

use std::sync::Arc;

use holdfast_media::{BgraFrame, FrameSource, MediaError};
use tracing::info;

use crate::mutter::{MutterLink, MutterSession};
use crate::pipewire::PipeWireSource;

pub struct MutterCapture {
    link: Arc<MutterLink>,
    index: usize,
    generation: u64,
    session: Arc<MutterSession>,
    source: PipeWireSource,
}

impl MutterCapture {
    pub fn open(link: Arc<MutterLink>, index: usize) -> Result<MutterCapture, MediaError> {
        let (generation, session) = link.current();
        let source = open_stream(&session, index)?;
        Ok(MutterCapture {
            link,
            index,
            generation,
            session,
            source,
        })
    }

    /// Moves to the link's newest session (starting one if ours ended).
    fn renew(&mut self) -> Result<(), MediaError> {
        let (generation, session) = self
            .link
            .renew(self.generation)
            .map_err(|e| MediaError::Capture(e.to_string()))?;
        // A display that went away: the primary one.
        let index = if self.index < session.displays().len() {
            self.index
        } else {
            0
        };
        self.source = open_stream(&session, index)?;
        info!(
            display = index,
            generation, "capturing from the new remote-desktop session"
        );
        self.generation = generation;
        self.session = session;
        Ok(())
    }
}

fn open_stream(session: &MutterSession, index: usize) -> Result<PipeWireSource, MediaError> {
    let n = session.displays().len();
    let stream = session.stream(index).ok_or(MediaError::NoSuchDisplay(index, n))?;
    PipeWireSource::open(stream.node_id)
}

impl FrameSource for MutterCapture {
    fn grab(&mut self) -> Result<Option<BgraFrame<'_>>, MediaError> {
        // Mutter pauses the stream of a closed session rather than ending it.
        if self.session.is_closed() || self.source.error().is_some() || self.link.current().0 != self.generation {
            self.renew()?;
        }
        // Serials start over on each stream: the generation keeps a new
        // stream's first picture from matching an old one's last.
        let generation = self.generation;
        Ok(self.source.grab()?.map(|f| BgraFrame {
            serial: f.serial.map(|s| (generation << 48) ^ s),
            ..f
        }))
    }

    fn dimensions(&self) -> (u32, u32) {
        self.source.dimensions()
    }
}
