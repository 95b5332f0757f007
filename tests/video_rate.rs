//! Video on a busy screen, end to end (issue 14): `holdfast-busyscreen`'s
//! 1080p pages and terminal shared by the host, Chromium as the viewer in
//! another namespace, each page switch's change-to-canvas latency read off
//! the canvas (`holdfast_testkit::ratebench`). The bounds are looser than
//! the figures so they hold on a loaded CI machine; the figures come from
//! `holdfast-bench rate` (docs/benchmarks.md).

use std::time::Duration;

use holdfast_testkit::artifacts_dir;
use holdfast_testkit::ratebench::{run, Report, Scenario};

#[test]
fn an_unshaped_link_shows_every_change_of_a_busy_screen_promptly() -> anyhow::Result<()> {
    let art = artifacts_dir("video_rate_unshaped");
    let r = run(
        &Scenario::steady("unshaped", None, Duration::ZERO, Duration::from_secs(20), &[]),
        &art,
    )?;
    let p = &r.phases[0];
    eprintln!("{} (first picture {:?})", p.describe(2), r.first_picture);
    // Measured on the first reference machine: p50 147 ms, p95 153 ms, 22
    // fps, first picture 1.9 s. On the 2026-12-01 evening machine the same
    // code (e8cc5f3) read p50 277-311 ms with a worst change of 491 ms and
    // 1.3 s in two runs: the median is the stable figure, the worst of six
    // changes is not (docs/benchmarks.md).
    anyhow::ensure!(p.changes.len() >= 6, "page switches drawn: {}", p.changes.len());
    anyhow::ensure!(p.missed(0) == 0, "every change shown: {}", p.describe(0));
    anyhow::ensure!(
        p.quantile(2, 0.5).is_some_and(|d| d <= Duration::from_millis(500)),
        "{}",
        p.describe(2)
    );
    anyhow::ensure!(
        p.quantile(2, 1.0).is_some_and(|d| d <= Duration::from_secs(2)),
        "{}",
        p.describe(2)
    );
    anyhow::ensure!(
        p.fps >= 12.0,
        "the terminal keeps the picture moving: {}",
        p.describe(2)
    );
    anyhow::ensure!(
        r.first_picture.is_some_and(|d| d <= Duration::from_secs(5)),
        "first picture after {:?}",
        r.first_picture
    );
    // Rate control is the default: the first picture is small, and a fast
    // path takes the picture to full size.
    let sizes: Vec<_> = r.host_viewers.iter().map(|v| v.coded_size).collect();
    anyhow::ensure!(sizes == [(1920, 1080)], "the viewer's picture at the end: {sizes:?}");
    // A path this fast is coded with the camera tuning (the CPU limits here).
    let tunings: Vec<_> = r.host_viewers.iter().map(|v| v.tuning.as_deref()).collect();
    anyhow::ensure!(
        tunings == [Some("motion")],
        "the encoder's tuning at the end: {tunings:?}"
    );
    Ok(())
}

/// 500 kbit/s under rate control: the screen is scaled down until a page
/// switch fits the link, so every change shows within a couple of seconds
/// (at the fixed 4 Mbit/s none of them does: docs/benchmarks.md).
#[test]
fn a_500_kbit_link_shows_every_change_of_a_busy_screen() -> anyhow::Result<()> {
    let art = artifacts_dir("video_rate_500k");
    let r = run_shaped("500 kbit/s", 500, Duration::from_secs(20), &art)?;
    let p = &r.phases[0];
    eprintln!("{} (first picture {:?})", p.describe(2), r.first_picture);
    eprintln!("changes: {:?}", p.changes);
    // Measured here (five runs): p50 41-404 ms, worst 246 ms-1.6 s, 14-18
    // fps, first picture 3.1-3.6 s, one change in 40 not read off the
    // canvas (at a quarter size the code's cells are 6 pixels).
    anyhow::ensure!(p.changes.len() >= 6, "page switches drawn: {}", p.changes.len());
    anyhow::ensure!(p.missed(2) <= 1, "changes shown: {}", p.describe(2));
    anyhow::ensure!(
        p.quantile(2, 0.5).is_some_and(|d| d <= Duration::from_secs(1)),
        "{}",
        p.describe(2)
    );
    anyhow::ensure!(
        p.quantile(2, 1.0).is_some_and(|d| d <= Duration::from_millis(2500)),
        "{}",
        p.describe(2)
    );
    anyhow::ensure!(p.fps >= 5.0, "{}", p.describe(2));
    anyhow::ensure!(
        r.first_picture.is_some_and(|d| d <= Duration::from_secs(8)),
        "first picture after {:?}",
        r.first_picture
    );
    let stats: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(art.join("host-stats.json"))?)?;
    let (coded, screen) = (&stats["coded_size"], &stats["screen_size"]);
    anyhow::ensure!(
        coded[0].as_u64() < screen[0].as_u64(),
        "the picture was scaled down for the link: coded {coded}, screen {screen}"
    );
    Ok(())
}

/// The first picture over 1 Mbit/s (issue 14: within 1.5 s of the viewer
/// opening the room). It is sent small (a quarter of the screen's width:
/// a 1080p page would take 3 s on this link, half size 0.8 s) and the next
/// keyframe probes the path (docs/rate-control.md, "Resolution"). Measured
/// 0.57-0.87 s; with the first picture at half size, 1.5-2.0 s.
#[test]
fn a_1_mbit_link_shows_the_first_picture_within_one_and_a_half_seconds() -> anyhow::Result<()> {
    let art = artifacts_dir("video_rate_1m_first");
    let r = run_shaped("1 Mbit/s", 1000, Duration::from_secs(8), &art)?;
    let p = &r.phases[0];
    eprintln!("{} (first picture {:?})", p.describe(0), r.first_picture);
    anyhow::ensure!(
        r.first_picture.is_some_and(|d| d <= Duration::from_millis(1500)),
        "first picture after {:?}",
        r.first_picture
    );
    anyhow::ensure!(p.missed(0) == 0, "every change shown: {}", p.describe(0));
    Ok(())
}

fn adaptive() -> Vec<String> {
    vec!["--rate-control".into(), "adaptive".into()]
}

/// One phase of `length` on the host's uplink shaped to `kbit`, under rate control.
fn run_shaped(name: &str, kbit: u32, length: Duration, art: &std::path::Path) -> anyhow::Result<Report> {
    run(
        &Scenario::steady(name, Some(kbit), Duration::ZERO, length, &adaptive()),
        art,
    )
}

/// Two viewers on one host (issue 14, acceptance 3): Chromium on an
/// unshaped link and the Rust probe viewer behind 500 kbit/s. The slow one
/// gets its own encoder (its own size, bitrate and keyframes,
/// docs/rate-control.md "Several viewers"), so the fast one keeps its frame
/// rate and latency and the slow one still sees every change; neither
/// decoder refuses a picture.
#[test]
fn a_slow_viewer_does_not_hold_back_a_fast_one() -> anyhow::Result<()> {
    let art = artifacts_dir("video_rate_two_viewers");
    let r = run(
        &Scenario {
            slow_viewer_kbit: Some(500),
            ..Scenario::steady(
                "two viewers",
                None,
                Duration::ZERO,
                Duration::from_secs(25),
                &adaptive(),
            )
        },
        &art,
    )?;
    let (fast, slow) = (&r.phases[0], r.slow.as_ref().expect("a slow viewer ran"));
    eprintln!("fast: {} (first picture {:?})", fast.describe(2), r.first_picture);
    eprintln!("slow: {}", slow.describe(2));
    eprintln!("host: {:?}", r.host_viewers);
    anyhow::ensure!(
        r.decode_errors == 0 && r.slow_decode_errors == 0,
        "pictures refused: Chromium {}, probe {}",
        r.decode_errors,
        r.slow_decode_errors
    );
    let lanes: Vec<u64> = r.host_viewers.iter().map(|v| v.lane).collect();
    anyhow::ensure!(
        lanes.len() == 2 && lanes[0] != lanes[1],
        "each viewer on its own encoder: {:?}",
        r.host_viewers
    );
    let (fast_size, slow_size) = (r.host_viewers[0].coded_size, r.host_viewers[1].coded_size);
    anyhow::ensure!(
        fast_size.0 == 1920 && slow_size.0 < 1920,
        "the fast viewer at full size, the slow one scaled: {:?}",
        r.host_viewers
    );
    // Each lane picks its tuning by its own path: the camera tuning for the
    // fast one, the screen-content tuning's small frames for the slow one.
    let tunings: Vec<_> = r.host_viewers.iter().map(|v| v.tuning.as_deref()).collect();
    anyhow::ensure!(
        tunings == [Some("motion"), Some("screen")],
        "the lanes' tunings: {:?}",
        r.host_viewers
    );
    // The fast viewer: the same bounds as alone (the unshaped test above).
    anyhow::ensure!(fast.missed(0) == 0, "fast: every change shown: {}", fast.describe(0));
    anyhow::ensure!(
        fast.quantile(2, 0.5).is_some_and(|d| d <= Duration::from_millis(500)),
        "fast: {}",
        fast.describe(2)
    );
    anyhow::ensure!(fast.fps >= 12.0, "fast: {}", fast.describe(2));
    // The slow one: a usable picture, every change within a few seconds.
    anyhow::ensure!(slow.missed(2) <= 1, "slow: changes shown: {}", slow.describe(2));
    anyhow::ensure!(
        slow.quantile(2, 0.5).is_some_and(|d| d <= Duration::from_secs(2)),
        "slow: {}",
        slow.describe(2)
    );
    anyhow::ensure!(slow.fps >= 2.0, "slow: {}", slow.describe(2));
    Ok(())
}

/// The link falls from 8 Mbit/s to 500 kbit/s under a busy screen (issue 14,
/// acceptance 2's step down). The shaper's full queue drops part of a burst
/// and SCTP's queue stops moving until its retransmission timer: the host
/// must take that for a slow path, not an outage, because the viewer keeps
/// acknowledging (docs/rate-control.md), and shrink the picture within
/// seconds. Before that rule: p95 1.7 s with 4 of 13 changes never shown.
/// Neither may a step up of the picture's size gamble a big keyframe on a
/// path that is already behind, and what was queued before the fall is
/// given up after the video channel's 3 s lifetime: before those two, 2 of
/// 6 runs here (and one CI run) showed nothing for 6-10 s after the step,
/// behind a 300 KB keyframe sent just after the fall; with the first alone,
/// 1 of 14 (a 440 KB one).
#[test]
fn a_step_down_to_500_kbit_is_followed_within_seconds() -> anyhow::Result<()> {
    let art = artifacts_dir("video_rate_step_down");
    let phases = [(Some(8000), 12), (Some(500), 24)]
        .into_iter()
        .map(|(rate_kbit, s)| holdfast_testkit::ratebench::Phase {
            rate_kbit,
            length: Duration::from_secs(s),
        })
        .collect();
    let r = run(
        &Scenario {
            name: "step down".into(),
            phases,
            host_args: adaptive(),
            ..Default::default()
        },
        &art,
    )?;
    let (before, after) = (&r.phases[0], &r.phases[1]);
    eprintln!("8 Mbit/s: {}", before.describe(2));
    eprintln!("500 kbit/s: {}", after.describe(2));
    eprintln!("changes after the step: {:?}", after.changes);
    eprintln!("decode errors: {}", r.decode_errors);
    // Measured here (12 runs, 2026-12-04): p50 66-194 ms, p95 300-534 ms, 0
    // of 10 not shown, 15.7-18.4 fps; the change at the step itself shown
    // 1.3-3.2 s later or never (its frame given up), the second or third
    // within 18-533 ms. Without the stall rule the three changes of the first 6 s
    // were never shown (the later ones were): the second and third change
    // after the step tell the two apart (one may be missed, as a 6-pixel
    // code at a quarter size is sometimes not read).
    anyhow::ensure!(after.changes.len() >= 9, "page switches drawn: {}", after.changes.len());
    let early: Vec<Duration> = after.changes[1..3].iter().flatten().copied().collect();
    anyhow::ensure!(
        early.iter().any(|d| *d <= Duration::from_millis(1500)),
        "2-6 s after the step the picture follows again: {:?}",
        &after.changes[..3]
    );
    anyhow::ensure!(after.missed(2) <= 1, "changes shown: {}", after.describe(2));
    anyhow::ensure!(
        after
            .quantile(2, 0.95)
            .is_some_and(|d| d <= Duration::from_millis(1500)),
        "{}",
        after.describe(2)
    );
    anyhow::ensure!(after.fps >= 5.0, "{}", after.describe(2));
    // Video queued before the fall is given up after the channel's lifetime
    // (SCTP partial reliability); the viewer must skip to a keyframe, never
    // hand its decoder a frame whose reference was given up.
    anyhow::ensure!(
        r.decode_errors == 0,
        "Chromium's decoder refused {} frames",
        r.decode_errors
    );
    Ok(())
}
