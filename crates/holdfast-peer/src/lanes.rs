//! Which encoder ("lane") each viewer watches, when viewers' paths differ.
//!
//! Policy (docs/rate-control.md, "Several viewers"): one capture feeds up to
//! [`MAX_LANES`] encoders. Viewers whose paths carry about the same rate
//! share one encoder at the slowest of their rates; a viewer whose path
//! carries less than [`SPLIT_BELOW`] of the fastest viewer's gets the other
//! encoder, with its own bitrate, size and references, so it neither holds
//! the fast viewers to its rate nor makes them decode its keyframes. Temporal
//! layers were the alternative: they let a slow viewer skip frames of one
//! stream, but each frame it does take is sized for the fast link (a page
//! switch at 4 Mbit/s is seconds at 500 kbit/s), and a slow viewer that falls
//! behind on the base layer still needs a keyframe everyone pays for.
//!
//! Moving a viewer to another lane costs it a keyframe of that lane, so
//! moves have hysteresis (split below 40 %, join above 60 %) and a viewer
//! stays at least [`MIN_STAY`] in a lane. Pure: time is passed in.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

pub use holdfast_media::MAX_LANES;

// The policy below knows a fast lane and a slow one.
const _: () = assert!(MAX_LANES == 2);

/// A viewer whose rate is below this share of the fastest viewer's moves to
/// the other lane.
pub const SPLIT_BELOW: f64 = 0.4;
/// A viewer on the slow lane moves back above this share.
pub const JOIN_ABOVE: f64 = 0.6;
/// No viewer moves twice within this (each move is a keyframe for it).
pub const MIN_STAY: Duration = Duration::from_secs(5);

/// A viewer moved from one lane to another: it needs a keyframe of its new lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneMove<K> {
    pub viewer: K,
    pub from: usize,
    pub to: usize,
}

#[derive(Debug, Clone, Copy)]
struct Placed {
    lane: usize,
    since: Instant,
}

/// The lane of every watching viewer.
#[derive(Debug)]
pub struct LanePolicy<K> {
    lanes: usize,
    placed: HashMap<K, Placed>,
}

impl<K: Eq + Hash + Clone> LanePolicy<K> {
    /// `lanes`: how many encoders may run (1 = every viewer on one, at the
    /// slowest viewer's rate), clamped to 1..=[`MAX_LANES`].
    pub fn new(lanes: usize) -> Self {
        LanePolicy {
            lanes: lanes.clamp(1, MAX_LANES),
            placed: HashMap::new(),
        }
    }

    /// The lane `viewer` watches (0 if it is not placed yet).
    pub fn lane_of(&self, viewer: &K) -> usize {
        self.placed.get(viewer).map_or(0, |p| p.lane)
    }

    /// How many of the placed viewers are on `lane`.
    pub fn members(&self, lane: usize) -> usize {
        self.placed.values().filter(|p| p.lane == lane).count()
    }

    /// Places the watching `viewers` (each with the bitrate its path carries,
    /// `None` without rate control) and returns the moves. Viewers not in the
    /// list are forgotten.
    pub fn assign(&mut self, now: Instant, viewers: &[(K, Option<u32>)]) -> Vec<LaneMove<K>> {
        self.placed.retain(|k, _| viewers.iter().any(|(v, _)| v == k));
        for (v, _) in viewers {
            // A new viewer starts where the fastest are (its first frame is a keyframe anyway).
            let fast = self.fast_lane(viewers);
            self.placed
                .entry(v.clone())
                .or_insert(Placed { lane: fast, since: now });
        }
        if self.lanes < 2 {
            return Vec::new();
        }
        let fastest = viewers.iter().filter_map(|(_, r)| *r).max();
        let Some(fastest) = fastest.filter(|&f| f > 0) else {
            return Vec::new();
        };
        let fast = self.fast_lane(viewers);
        let slow = 1 - fast;
        let mut moves = Vec::new();
        for (v, rate) in viewers {
            let p = self.placed[v];
            if now.duration_since(p.since) < MIN_STAY {
                continue;
            }
            // Without rate control a viewer's path is unknown: it shares the fast lane.
            let share = rate.map_or(1.0, |r| r as f64 / fastest as f64);
            let want = if p.lane == slow && share <= JOIN_ABOVE || p.lane != slow && share < SPLIT_BELOW {
                slow
            } else {
                fast
            };
            if want != p.lane {
                self.placed.insert(v.clone(), Placed { lane: want, since: now });
                moves.push(LaneMove {
                    viewer: v.clone(),
                    from: p.lane,
                    to: want,
                });
            }
        }
        moves
    }

    /// The lane of the fastest placed viewer (0 when none is placed).
    fn fast_lane(&self, viewers: &[(K, Option<u32>)]) -> usize {
        viewers
            .iter()
            .filter_map(|(v, r)| self.placed.get(v).map(|p| (r.unwrap_or(u32::MAX), p.lane)))
            .max_by_key(|&(r, lane)| (r, std::cmp::Reverse(lane)))
            .map_or(0, |(_, lane)| lane)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn viewers_on_similar_paths_share_one_lane() {
        let t0 = Instant::now();
        let mut lanes = LanePolicy::new(2);
        assert!(lanes.assign(t0, &[(1, Some(4000)), (2, Some(2500))]).is_empty());
        assert!(lanes
            .assign(t0 + SEC * 60, &[(1, Some(4000)), (2, Some(2000))])
            .is_empty());
        assert_eq!((lanes.lane_of(&1), lanes.lane_of(&2)), (0, 0));
        assert_eq!(lanes.members(0), 2);
    }

    #[test]
    fn a_slow_viewer_gets_its_own_lane_after_its_first_stay_and_comes_back_with_hysteresis() {
        let t0 = Instant::now();
        let mut lanes = LanePolicy::new(2);
        let at = |s: u32| t0 + SEC * s;
        assert!(lanes.assign(at(0), &[(1, Some(4000)), (2, Some(4000))]).is_empty());
        // 2's path falls to 500 kbit/s: not before its minimum stay.
        assert!(lanes.assign(at(3), &[(1, Some(4000)), (2, Some(500))]).is_empty());
        assert_eq!(
            lanes.assign(at(5), &[(1, Some(4000)), (2, Some(500))]),
            [LaneMove {
                viewer: 2,
                from: 0,
                to: 1
            }]
        );
        // Between 40 % and 60 % it stays where it is, on either lane.
        for s in 11..40 {
            assert!(lanes.assign(at(s), &[(1, Some(4000)), (2, Some(2000))]).is_empty());
        }
        assert_eq!(lanes.lane_of(&2), 1);
        assert_eq!(
            lanes.assign(at(41), &[(1, Some(4000)), (2, Some(2600))]),
            [LaneMove {
                viewer: 2,
                from: 1,
                to: 0
            }]
        );
        // Moved at 41 s: it stays 5 s whatever its rate does.
        assert!(lanes.assign(at(42), &[(1, Some(4000)), (2, Some(300))]).is_empty());
        assert_eq!(lanes.assign(at(46), &[(1, Some(4000)), (2, Some(300))]).len(), 1);
    }

    #[test]
    fn when_the_fast_viewer_leaves_the_slow_one_stays_put_and_a_new_viewer_joins_the_fastest() {
        let t0 = Instant::now();
        let mut lanes = LanePolicy::new(2);
        lanes.assign(t0, &[(1, Some(4000)), (2, Some(300))]);
        lanes.assign(t0 + SEC * 10, &[(1, Some(4000)), (2, Some(300))]);
        assert_eq!(lanes.lane_of(&2), 1);
        // Alone, 2 is the fastest: its lane is the fast one, no move, no keyframe.
        assert!(lanes.assign(t0 + SEC * 20, &[(2, Some(300))]).is_empty());
        assert_eq!(lanes.members(0), 0);
        // A newcomer joins the lane of the fastest viewer, here lane 1.
        assert!(lanes
            .assign(t0 + SEC * 21, &[(2, Some(300)), (3, Some(300))])
            .is_empty());
        assert_eq!(lanes.lane_of(&3), 1);
    }

    #[test]
    fn one_lane_or_no_rate_control_keeps_everyone_together() {
        let t0 = Instant::now();
        let mut one = LanePolicy::new(1);
        one.assign(t0, &[(1, Some(4000)), (2, Some(300))]);
        assert!(one.assign(t0 + SEC * 60, &[(1, Some(4000)), (2, Some(300))]).is_empty());
        let mut fixed = LanePolicy::new(2);
        fixed.assign(t0, &[(1, None), (2, None)]);
        assert!(fixed.assign(t0 + SEC * 60, &[(1, None), (2, None)]).is_empty());
        // A viewer without a figure is never taken for a slow one.
        let mut mixed = LanePolicy::new(2);
        mixed.assign(t0, &[(1, Some(4000)), (2, None)]);
        assert!(mixed.assign(t0 + SEC * 60, &[(1, Some(4000)), (2, None)]).is_empty());
        assert_eq!(mixed.lane_of(&2), 0);
    }

    #[test]
    fn the_lanes_are_clamped_to_what_the_pipeline_has() {
        let t0 = Instant::now();
        let mut lanes = LanePolicy::new(9);
        lanes.assign(t0, &[(1, Some(8000)), (2, Some(300)), (3, Some(100))]);
        lanes.assign(t0 + SEC * 10, &[(1, Some(8000)), (2, Some(300)), (3, Some(100))]);
        assert!((0..3).all(|v| lanes.lane_of(&v) < MAX_LANES));
        assert_eq!(lanes.members(1), 2, "both slow viewers share the slow lane");
    }
}
