//! What both screens show while a dropped session is being recovered: the
//! signalling attempt and when the next one starts, which connection
//! dropped, and when the grace window runs out; with the notices that go
//! with them. Shared by the host screen ([`crate::host_state`]) and the
//! viewer screen ([`crate::view_state`]). Pure: wall-clock milliseconds in.

use std::time::Duration;

use serde::Serialize;

use crate::host_state::{Link, Notice, EXPIRY_WARNING};

pub(crate) fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recovery {
    /// Reconnection attempt in progress (1-based), while reconnecting.
    pub attempt: Option<u32>,
    /// When the next signalling attempt starts (Unix ms), while it waits.
    pub retry_at_ms: Option<u64>,
    /// When a dropped session ends unless resumed (Unix ms); `None` while all is well.
    pub grace_deadline_ms: Option<u64>,
    /// The whole grace window, for "m:ss of 5:00".
    pub grace_total_ms: u64,
    /// Which connection the grace window is counting for (the server's wins).
    pub lost_link: Option<Link>,
    #[serde(skip)]
    warned_expiry: bool,
    #[serde(skip)]
    signal_down: bool,
}

impl Recovery {
    pub fn new(grace: Duration) -> Self {
        Recovery {
            attempt: None,
            retry_at_ms: None,
            grace_deadline_ms: None,
            grace_total_ms: ms(grace),
            lost_link: None,
            warned_expiry: false,
            signal_down: false,
        }
    }

    /// Whether the signalling connection is down (between [`Recovery::signal_lost`]
    /// and [`Recovery::signal_restored`]).
    pub fn signal_down(&self) -> bool {
        self.signal_down
    }

    /// The signalling connection dropped, or a retry failed: attempt n, the
    /// next try, and the client's own count of its grace window (the earlier
    /// of two deadlines wins).
    /// `grace` is the whole window as the server announced it: the one
    /// that counts, whatever this screen was started with.
    pub fn signal_lost(
        &mut self,
        attempt: u32,
        retry_in: Duration,
        grace_left: Duration,
        grace: Duration,
        now_ms: u64,
    ) -> Vec<Notice> {
        let mut out = Vec::new();
        self.grace_total_ms = ms(grace);
        if !self.signal_down {
            out.push(Notice::ConnectionLost { link: Link::Server });
        }
        self.signal_down = true;
        self.attempt = Some(attempt);
        self.retry_at_ms = Some(now_ms + ms(retry_in));
        let deadline = now_ms + ms(grace_left);
        self.grace_deadline_ms = Some(self.grace_deadline_ms.map_or(deadline, |d| d.min(deadline)));
        self.lost_link = Some(Link::Server);
        out.push(Notice::Reconnecting {
            link: Link::Server,
            attempt,
            retry_in_ms: ms(retry_in),
        });
        out
    }

    /// The signalling connection is back (no more next try to count down).
    pub fn signal_restored(&mut self) -> Vec<Notice> {
        let was = std::mem::replace(&mut self.signal_down, false);
        self.retry_at_ms = None;
        if was {
            vec![Notice::Restored { link: Link::Server }]
        } else {
            Vec::new()
        }
    }

    /// A peer connection dropped: the grace window starts, unless it runs already.
    pub fn path_lost(&mut self, link: Link, now_ms: u64) {
        if self.grace_deadline_ms.is_none() {
            self.grace_deadline_ms = Some(now_ms + self.grace_total_ms);
            self.lost_link = Some(link);
            self.warned_expiry = false;
        }
    }

    /// Everything is back up: the session is no longer at risk.
    pub fn all_up(&mut self) {
        self.grace_deadline_ms = None;
        self.lost_link = None;
        self.warned_expiry = false;
    }

    /// Over: nothing left to count down.
    pub fn finish(&mut self) {
        self.grace_deadline_ms = None;
        self.retry_at_ms = None;
        self.attempt = None;
    }

    /// Once per drop, [`EXPIRY_WARNING`] before the window runs out.
    pub fn expiry_warning(&mut self, now_ms: u64) -> Option<Notice> {
        let deadline = self.grace_deadline_ms?;
        if !self.warned_expiry && now_ms + ms(EXPIRY_WARNING) >= deadline && now_ms < deadline {
            self.warned_expiry = true;
            return Some(Notice::ExpiringSoon {
                left_ms: deadline - now_ms,
            });
        }
        None
    }
}
