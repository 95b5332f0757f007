//! `holdfast-bench rate`: issue 14's table, end to end (see
//! `holdfast_testkit::ratebench`): change-to-canvas latency, frame rate and
//! bits used on a busy 1080p screen over shaped links, the link steps, and
//! the first picture, and two viewers on very different links. Prints one
//! line per phase, for docs/benchmarks.md.
//!
//! `holdfast-bench rate [--secs N] [--only NAME] [-- HOST ARGS...]` (`--only`
//! runs the scenarios whose name contains NAME, or is it with `--only =NAME`)

use std::time::Duration;

use anyhow::Result;
use holdfast_testkit::artifacts_dir;
use holdfast_testkit::ratebench::{run as run_scenario, Phase, Scenario};

/// Changes skipped at the start of a phase (the link's step, or the first picture).
const SKIP: usize = 2;
/// The step up's goal: this much available to the encoder within 10 s.
const STEP_UP_KBIT: f64 = 4000.0;

pub fn run(args: &[String]) -> Result<()> {
    let secs = args
        .iter()
        .position(|a| a == "--secs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(30u64);
    let host_args: Vec<String> = args
        .iter()
        .position(|a| a == "--")
        .map(|i| args[i + 1..].to_vec())
        .unwrap_or_default();
    let length = Duration::from_secs(secs);
    let steady = |name: &str, rate: Option<u32>, delay_ms: u64| {
        Scenario::steady(name, rate, Duration::from_millis(delay_ms), length, &host_args)
    };
    let scenarios = vec![
        steady("unshaped", None, 0),
        // The default content changes 25 times a second (its terminal's
        // lines): this one asks for more than 30, to see what the pipeline
        // itself reaches.
        Scenario {
            lines_per_sec: Some(60),
            ..steady("unshaped, 60 lines a second", None, 0)
        },
        steady("8 Mbit/s", Some(8000), 0),
        steady("2 Mbit/s", Some(2000), 0),
        steady("1 Mbit/s", Some(1000), 0),
        steady("1 Mbit/s, 150 ms RTT", Some(1000), 75),
        steady("700 kbit/s", Some(700), 0),
        steady("500 kbit/s", Some(500), 0),
        steady("300 kbit/s", Some(300), 0),
        Scenario {
            name: "steps 8 Mbit/s -> 500 kbit/s -> 8 Mbit/s".into(),
            delay: Duration::ZERO,
            phases: [(Some(8000), 20), (Some(500), 30), (Some(8000), 30)]
                .into_iter()
                .map(|(rate_kbit, s)| Phase {
                    rate_kbit,
                    length: Duration::from_secs(s),
                })
                .collect(),
            host_args: host_args.clone(),
            slow_viewer_kbit: None,
            lines_per_sec: None,
        },
        Scenario {
            slow_viewer_kbit: Some(500),
            ..steady("two viewers: unshaped + 500 kbit/s", None, 0)
        },
    ];
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let art = artifacts_dir("bench_rate");
    for s in scenarios
        .into_iter()
        .filter(|s| only.as_ref().is_none_or(|o| picked(&s.name, o)))
    {
        let r = run_scenario(&s, &art)?;
        println!(
            "{}: first picture {}",
            r.name,
            r.first_picture
                .map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64()))
        );
        for p in &r.phases {
            // Issue 14's step up asks for 4 Mbit/s used within 10 s "when the
            // content needs it": when the estimate allowed it, and what was sent.
            let when = |d: Option<Duration>| d.map_or("never".into(), |d| format!("after {:.1} s", d.as_secs_f64()));
            println!(
                "  {}; estimate >= {STEP_UP_KBIT} kbit/s {}, sent at that rate over a second {}; most sent in a second {:.0} kbit/s",
                p.describe(SKIP),
                when(p.estimate_reached(STEP_UP_KBIT)),
                when(p.sent_reached(STEP_UP_KBIT)),
                p.peak_sent_kbit()
            );
            // Each change, in order (the first SKIP not counted): where a p95 comes from.
            let each: Vec<String> = p
                .changes
                .iter()
                .map(|c| c.map_or("-".into(), |d| d.as_millis().to_string()))
                .collect();
            println!("    changes (ms, first {SKIP} not counted): {}", each.join(" "));
            // The estimate once a second: how it fell after a step down and climbed after a step up.
            let mut next = Duration::ZERO;
            let mut each_second = Vec::new();
            for (t, e) in &p.estimate_kbit {
                if *t >= next {
                    each_second.push(format!("{e:.0}"));
                    next += Duration::from_secs(1);
                }
            }
            println!("    estimate (kbit/s, each second): {}", each_second.join(" "));
            if !p.drops_at.is_empty() {
                let at: Vec<String> = p
                    .drops_at
                    .iter()
                    .map(|(t, n)| format!("{n} at {:.2} s", t.as_secs_f64()))
                    .collect();
                println!("    shaper drops: {}", at.join(", "));
            }
        }
        if let Some(slow) = &r.slow {
            println!(
                "  slow viewer: {}, decode errors {}",
                slow.describe(SKIP),
                r.slow_decode_errors
            );
        }
        if r.slow.is_some() || r.decode_errors > 0 {
            println!("  Chromium decode errors {}", r.decode_errors);
        }
        for v in &r.host_viewers {
            println!(
                "  host: lane {} at {}x{}, {:.0} kbit/s",
                v.lane, v.coded_size.0, v.coded_size.1, v.kbit_per_s
            );
        }
    }
    Ok(())
}

/// Whether `--only` picked the scenario `name`: `=NAME` exactly, else by a part of it.
fn picked(name: &str, only: &str) -> bool {
    match only.strip_prefix('=') {
        Some(exact) => name == exact,
        None => name.contains(only),
    }
}
