//! How often a peer can put a line in our logs: a peer that sends malformed
//! messages by the thousand gets one warning per [`LOG_GATE_INTERVAL`], with
//! the count of those it stood for, and the counters keep the exact total.
//! Pure, with time passed in.

use std::time::{Duration, Instant};

/// At most one warning this often per gate.
pub const LOG_GATE_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Clone)]
pub struct LogGate {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogGate {
    /// `Some(n)` when a warning should be written now, `n` being how many
    /// were suppressed since the last one; `None` to stay quiet.
    pub fn pass(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < LOG_GATE_INTERVAL => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_one_line_per_interval_with_its_count() {
        let mut g = LogGate::default();
        let t0 = Instant::now();
        assert_eq!(g.pass(t0), Some(0));
        let quiet = (1..10_000)
            .filter(|i| g.pass(t0 + Duration::from_micros(*i)).is_some())
            .count();
        assert_eq!(quiet, 0);
        assert_eq!(g.pass(t0 + LOG_GATE_INTERVAL), Some(9_999));
        assert_eq!(g.pass(t0 + LOG_GATE_INTERVAL + Duration::from_secs(1)), None);
    }
}
