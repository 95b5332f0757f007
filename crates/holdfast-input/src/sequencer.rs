//! Restores the viewer's event order. Each input event carries `seq` (from 0,
//! +1 per event); the channel is reliable but unordered, so an event may
//! arrive before its predecessor. Events are released strictly in order;
//! duplicates and stale numbers are dropped; a bounded buffer keeps a
//! misbehaving viewer from growing memory (on overflow the gap is skipped).

use std::collections::BTreeMap;

/// Out-of-order events held while waiting for a missing one.
pub const MAX_REORDER: usize = 256;

#[derive(Debug)]
pub struct InputSequencer<T> {
    next: u32,
    held: BTreeMap<u32, T>,
    skipped: u64,
}

impl<T> Default for InputSequencer<T> {
    fn default() -> Self {
        InputSequencer {
            next: 0,
            held: BTreeMap::new(),
            skipped: 0,
        }
    }
}

impl<T> InputSequencer<T> {
    /// Accepts one event; returns those now deliverable, in order.
    pub fn push(&mut self, seq: u32, event: T) -> Vec<T> {
        // Wrapping distance: "ahead" is within half the sequence space.
        let ahead = seq.wrapping_sub(self.next);
        if ahead >= u32::MAX / 2 {
            return Vec::new(); // already delivered (duplicate or stale)
        }
        self.held.insert(seq, event);
        if ahead > 0 && self.held.len() > MAX_REORDER {
            // The gap never filled: give up on it rather than hold input forever.
            self.skipped += 1;
            self.next = *self.held.keys().next().expect("not empty");
        }
        let mut out = Vec::new();
        while let Some(e) = self.held.remove(&self.next) {
            out.push(e);
            self.next = self.next.wrapping_add(1);
        }
        out
    }

    /// Events waiting for a predecessor.
    pub fn waiting(&self) -> usize {
        self.held.len()
    }

    /// Gaps given up on.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_events_pass_straight_through() {
        let mut s = InputSequencer::default();
        for i in 0..10 {
            assert_eq!(s.push(i, i), vec![i]);
        }
    }

    #[test]
    fn early_events_wait_for_the_missing_one() {
        let mut s = InputSequencer::default();
        assert_eq!(s.push(0, 'a'), vec!['a']);
        assert!(s.push(2, 'c').is_empty());
        assert!(s.push(3, 'd').is_empty());
        assert_eq!(s.waiting(), 2);
        assert_eq!(s.push(1, 'b'), vec!['b', 'c', 'd']);
        assert_eq!(s.waiting(), 0);
    }

    #[test]
    fn duplicates_and_stale_events_are_dropped() {
        let mut s = InputSequencer::default();
        s.push(0, 0);
        s.push(1, 1);
        assert!(s.push(1, 99).is_empty());
        assert!(s.push(0, 99).is_empty());
        assert_eq!(s.push(2, 2), vec![2]);
    }

    #[test]
    fn a_gap_that_never_fills_is_skipped_after_the_buffer_fills() {
        let mut s = InputSequencer::default();
        for i in 1..=MAX_REORDER as u32 {
            assert!(s.push(i, i).is_empty());
        }
        let out = s.push(MAX_REORDER as u32 + 1, 0);
        assert_eq!(out.len(), MAX_REORDER + 1);
        assert_eq!(out[0], 1);
        assert_eq!(s.skipped(), 1);
        assert_eq!(s.waiting(), 0);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = InputSequencer::<u32> {
            next: u32::MAX - 1,
            ..Default::default()
        };
        assert!(s.push(0, 2).is_empty());
        assert_eq!(s.push(u32::MAX - 1, 0), vec![0]);
        assert_eq!(s.push(u32::MAX, 1), vec![1, 2]);
    }
}
