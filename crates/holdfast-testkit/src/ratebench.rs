//! Video over a shaped link, end to end (issue 14, acceptance 2): the host
//! shares a 1920x1080 Xvfb showing `holdfast-busyscreen` (pages of text and
//! pictures switching every 2 s over a scrolling terminal), Chromium watches
//! from another namespace, and the host's uplink is shaped with `tc tbf`
//! (and delayed by `holdfast-netem`). Each page switch carries its number in
//! a code on the screen; a script in the page reads the code off the canvas
//! as it is drawn, so a change's latency is the time from the X server
//! having it to the viewer's canvas showing it, on one clock.
//!
//! Used by `tests/video_rate.rs` (loose bounds) and `holdfast-bench rate`
//! (the figures in docs/benchmarks.md).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{bin, command_in, start_host, start_probe_viewer, start_signal, Browser, Lan, Netns, Proc, Xvfb};

const SERVER_IP: &str = "10.79.0.1";
const HOST_IP: &str = "10.79.0.2";
const VIEWER_IP: &str = "10.79.0.3";
const SLOW_VIEWER_IP: &str = "10.79.0.4";

/// One stretch of a run: the host's uplink at `rate_kbit` (None: unshaped) for `length`.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    pub rate_kbit: Option<u32>,
    pub length: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct Scenario {
    pub name: String,
    /// One-way delay added both ways on the host's link (RTT = twice this).
    pub delay: Duration,
    pub phases: Vec<Phase>,
    /// Extra arguments for `holdfast-host`.
    pub host_args: Vec<String>,
    /// A second viewer whose downlink carries this many kbit/s: the Rust
    /// probe viewer, reading the same change codes off what it decodes
    /// (figures in [`Report::slow`]). The phases shape the host's uplink as
    /// before, so this one is behind both.
    pub slow_viewer_kbit: Option<u32>,
    /// The busy screen's terminal: lines printed a second; `None`: its
    /// default, 25 (issue 14's table): 25 changes a second, so at most ~25
    /// distinct pictures a second.
    pub lines_per_sec: Option<u32>,
}

/// A JSON file (the host's `--stats-file`), if it is there and whole.
fn read_json(path: &Path) -> Option<Value> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
}

/// What the host said of one viewer at the end (`--stats-file`).
#[derive(Debug, Clone, Default)]
pub struct HostViewer {
    pub lane: u64,
    pub coded_size: (u64, u64),
    /// The lane's encoder tuning when the host picks it ("screen", "motion").
    pub tuning: Option<String>,
    pub kbit_per_s: f64,
}

impl Scenario {
    /// One phase of `length` at `rate_kbit` (None: unshaped), `delay` each way.
    pub fn steady(name: &str, rate_kbit: Option<u32>, delay: Duration, length: Duration, host_args: &[String]) -> Self {
        Scenario {
            name: name.into(),
            delay,
            phases: vec![Phase { rate_kbit, length }],
            host_args: host_args.to_vec(),
            slow_viewer_kbit: None,
            lines_per_sec: None,
        }
    }
}

/// What one phase showed.
#[derive(Debug, Clone, Default)]
pub struct PhaseReport {
    pub rate_kbit: Option<u32>,
    /// Change-to-canvas latency of each change drawn in this phase, in
    /// order; None: never shown.
    pub changes: Vec<Option<Duration>>,
    /// The viewer's decoded frames per second over the phase.
    pub fps: f64,
    /// Video bits the host sent per second over the phase.
    pub sent_kbit: f64,
    /// The host's rate estimate for the (fastest) viewer through the phase:
    /// time since the phase started, kbit/s; sampled a few times a second.
    pub estimate_kbit: Vec<(Duration, f64)>,
    /// The host's video bytes sent to the (fastest) viewer since the phase
    /// started, sampled with the estimate.
    pub sent_bytes: Vec<(Duration, u64)>,
    /// How busy the whole machine's CPUs were over the phase, 0 to 1 (every
    /// process: X, the busy screen, the host, Chromium).
    pub cpu_busy: Option<f64>,
    /// Packets the host's uplink shaper dropped over the phase (its queue
    /// full: what the rate controller is there to prevent); None unshaped.
    pub shaper_drops: Option<u64>,
    /// When in the phase the shaper dropped (sampled with the estimate):
    /// time since the phase started, packets dropped since the last sample.
    pub drops_at: Vec<(Duration, u64)>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub name: String,
    /// From the viewer page opening the room to its first change on the canvas.
    pub first_picture: Option<Duration>,
    pub phases: Vec<PhaseReport>,
    /// Pictures Chromium's decoder refused.
    pub decode_errors: u64,
    /// The second, slow viewer over the whole run (its rate, changes and
    /// decoded frames per second; `sent_kbit` from the host's figures), and
    /// the pictures its decoder refused.
    pub slow: Option<PhaseReport>,
    pub slow_decode_errors: u64,
    /// Each viewer as the host saw it, fastest first.
    pub host_viewers: Vec<HostViewer>,
}

impl PhaseReport {
    fn shown(&self, skip: usize) -> Vec<Duration> {
        let mut v: Vec<Duration> = self.changes.iter().skip(skip).flatten().copied().collect();
        v.sort();
        v
    }

    /// The latency at quantile `q` of the changes shown after the first `skip`.
    pub fn quantile(&self, skip: usize, q: f64) -> Option<Duration> {
        let v = self.shown(skip);
        (!v.is_empty()).then(|| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1])
    }

    /// How long after the phase began the host's estimate first reached `kbit`.
    pub fn estimate_reached(&self, kbit: f64) -> Option<Duration> {
        self.estimate_kbit.iter().find(|(_, e)| *e >= kbit).map(|(t, _)| *t)
    }

    /// The most the host sent in any one second of the phase, kbit/s.
    pub fn peak_sent_kbit(&self) -> f64 {
        sent_rates_kbit(&self.sent_bytes, Duration::from_secs(1))
            .map(|(_, r)| r)
            .fold(0.0, f64::max)
    }

    /// When (since the phase began) the host had first sent at `kbit` over a second.
    pub fn sent_reached(&self, kbit: f64) -> Option<Duration> {
        sent_rates_kbit(&self.sent_bytes, Duration::from_secs(1)).find_map(|(t, r)| (r >= kbit).then_some(t))
    }

    pub fn missed(&self, skip: usize) -> usize {
        self.changes.iter().skip(skip).filter(|c| c.is_none()).count()
    }

    /// One line: p50 / p95 / worst / missed / fps / kbit/s.
    pub fn describe(&self, skip: usize) -> String {
        let ms = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.0} ms", d.as_secs_f64() * 1000.0));
        format!(
            "{}: p50 {} p95 {} worst {} ({} changes, {} not shown), {:.1} fps, {:.0} kbit/s sent, CPU {}{}",
            self.rate_kbit.map_or("unshaped".into(), |r| format!("{r} kbit/s")),
            ms(self.quantile(skip, 0.5)),
            ms(self.quantile(skip, 0.95)),
            ms(self.quantile(skip, 1.0)),
            self.changes.len().saturating_sub(skip),
            self.missed(skip),
            self.fps,
            self.sent_kbit,
            self.cpu_busy.map_or("-".into(), |c| format!("{:.0} % busy", c * 100.0)),
            self.shaper_drops
                .map_or(String::new(), |d| format!(", shaper dropped {d} packets"))
        )
    }
}

/// Reads the change code off the viewer's canvas every few milliseconds and
/// keeps the first time each change was seen (Unix ms, the page's clock);
/// the code's geometry is [`crate::changecode`]'s ([`watcher`]).
const WATCHER: &str = r#"(() => {
  window.__changes = {};
  const CELL = __CELL__;
  const read = () => {
    let v = 0;
    for (let i = 0; i < __CELLS__; i++) {
      const [r, g, b] = window.holdfast.sample(i * CELL + CELL / 2, CELL / 2);
      const y = (r + g + b) / 3;
      if (y > 160) v |= 1 << i; else if (y > 96) return null;
    }
    const n = v & 0xfff, check = v >>> 12;
    return check === ((n * 7 + 3) & 0xf) && n > 0 ? n : null;
  };
  const poll = () => {
    try {
      const n = read();
      if (n !== null && !(n in window.__changes)) window.__changes[n] = performance.timeOrigin + performance.now();
    } catch (e) {}
  };
  setInterval(poll, 4);
  const frame = () => { poll(); requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
  return true;
})()"#;

fn watcher() -> String {
    WATCHER
        .replace("__CELL__", &crate::changecode::CELL.to_string())
        .replace("__CELLS__", &crate::changecode::CELLS.to_string())
}

fn unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Sets the host's uplink: a token bucket at `rate_kbit`, or none.
/// Packets the shaper on `dev` dropped since it was set (`tc -s`), if shaped.
fn shaper_drops(ns: &Netns, dev: &str) -> Option<u64> {
    let out = ns
        .command("tc")
        .args(["-s", "qdisc", "show", "dev", dev])
        .output()
        .ok()?;
    tbf_drops(&String::from_utf8_lossy(&out.stdout))
}

/// The drop count of a `tc -s qdisc show` listing whose qdisc is tbf.
fn tbf_drops(listing: &str) -> Option<u64> {
    // "qdisc tbf 1: root refcnt 2 rate ...\n Sent 123 bytes 4 pkt (dropped 5, overlimits 6 requeues 0)"
    let tbf = listing.split("qdisc ").find(|q| q.starts_with("tbf "))?;
    tbf.split("dropped ").nth(1)?.split(',').next()?.trim().parse().ok()
}

fn shape(ns: &Netns, dev: &str, rate_kbit: Option<u32>) -> Result<()> {
    crate::shape_egress(&ns.name, dev, rate_kbit).with_context(|| format!("shaping {dev} to {rate_kbit:?} kbit/s"))
}

/// Appends one line per viewer of the host's stats file to `trace`: the
/// phase, the time into it and the rate controller's figures.
fn trace_host(trace: &mut Option<std::fs::File>, v: &Value, phase: usize, at: Duration) {
    use std::io::Write;
    let Some(out) = trace.as_mut() else {
        return;
    };
    for viewer in v["viewers"].as_array().into_iter().flatten() {
        let f = |k: &str| viewer[k].as_f64().map_or("-".to_string(), |x| format!("{x:.0}"));
        let _ = writeln!(
            out,
            "phase {phase} t {:6.2} s peer {} estimate {} burst {} delivery {} queued {} delay_ms {} overdue_ms {} sent {} paced_late {} paced_bucket {} size {}",
            at.as_secs_f64(),
            viewer["peer_id"].as_str().unwrap_or("?"),
            f("estimate_kbps"),
            f("burst_kbps"),
            f("delivery_kbps"),
            f("queued_bytes"),
            f("queue_delay_ms"),
            f("overdue_ms"),
            f("bytes_sent"),
            f("paced_late"),
            f("paced_bucket"),
            viewer["coded_size"],
        );
    }
}

/// Runs `scenario`; artefacts (logs) go to `art`.
pub fn run(scenario: &Scenario, art: &Path) -> Result<Report> {
    let lan = Lan::new()?;
    let (server_ns, host_ns, viewer_ns) = (Netns::new()?, Netns::new()?, Netns::new()?);
    let _server_link = lan.attach(&server_ns, SERVER_IP)?;
    let host_link = lan.attach(&host_ns, HOST_IP)?;
    let _viewer_link = lan.attach(&viewer_ns, VIEWER_IP)?;
    let url = format!("http://{SERVER_IP}:8080");
    let _signal = start_signal(&server_ns, SERVER_IP, art)?;
    let x = Xvfb::start(Some(&host_ns), 1920, 1080, art)?;
    let mut cmd = command_in(Some(&host_ns), bin("holdfast-busyscreen"));
    cmd.env("DISPLAY", &x.display);
    if let Some(n) = scenario.lines_per_sec {
        cmd.args(["--lines-per-sec", &n.to_string()]);
    }
    let screen = Proc::spawn("busyscreen", cmd, art)?;
    screen
        .json_line(Duration::from_secs(20))
        .context("the busy screen's first page")?;
    let _impaired = if scenario.delay > Duration::ZERO {
        Some(host_link.impair(0.0, scenario.delay, 1, art)?)
    } else {
        None
    };
    let first_rate = scenario.phases.first().and_then(|p| p.rate_kbit);
    shape(&host_ns, &host_link.dev, first_rate)?;

    let stats_file = art.join("host-stats.json");
    let _ = std::fs::remove_file(&stats_file);
    let bind = format!("{HOST_IP}:0");
    let mut args: Vec<&str> = vec![
        "--ice-bind",
        &bind,
        "--stats-file",
        stats_file.to_str().unwrap_or_default(),
    ];
    args.extend(scenario.host_args.iter().map(String::as_str));
    let (_host, room) = start_host(&host_ns, &url, &args, Some(&x.display), art)?;
    // The fastest viewer (Chromium: a slow second viewer gets less): bytes
    // sent to it, and the host's estimate of its path.
    let host_figures = |v: &Value| -> (u64, Option<f64>) {
        let fastest = v["viewers"]
            .as_array()
            .into_iter()
            .flatten()
            .max_by_key(|v| v["bytes_sent"].as_u64().unwrap_or(0));
        fastest.map_or((0, None), |v| {
            (v["bytes_sent"].as_u64().unwrap_or(0), v["estimate_kbps"].as_f64())
        })
    };
    let host_bytes = || host_figures(&read_json(&stats_file).unwrap_or_default()).0;

    let mut browser = Browser::start_trusting(Some(&viewer_ns), art, &url)?;
    let opened = unix_ms();
    let started = Instant::now();
    browser.open(room["viewer_url"].as_str().unwrap_or_default())?;
    browser.eval(&watcher())?;
    let slow = match scenario.slow_viewer_kbit {
        Some(rate) => {
            let ns = Netns::new()?;
            let link = lan.attach(&ns, SLOW_VIEWER_IP)?;
            link.shape_inbound(Some(rate))?;
            let bind = format!("{SLOW_VIEWER_IP}:0");
            let probe = start_probe_viewer(&ns, &url, &room, &["--ice-bind", &bind, "--change-code"], art)?;
            Some((ns, link, probe))
        }
        None => None,
    };

    let mut report = Report {
        name: scenario.name.clone(),
        ..Default::default()
    };
    let mut bounds = Vec::new(); // (start unix ms, end unix ms) per phase
                                 // What the host said of its viewers through the run, for a failure's post-mortem.
    let mut trace = std::fs::File::create(art.join("host-trace.txt")).ok();
    for (i, phase) in scenario.phases.iter().enumerate() {
        if i > 0 {
            shape(&host_ns, &host_link.dev, phase.rate_kbit)?;
        }
        let (from, bytes0, frames0) = (unix_ms(), host_bytes(), decoded(&mut browser));
        let cpu0 = cpu_times();
        let drops0 = shaper_drops(&host_ns, &host_link.dev);
        let (mut drops_at, mut drops_seen) = (Vec::new(), drops0);
        let t = Instant::now();
        // The host writes its stats file once a second or so: sample it
        // more often than that, through the phase.
        let (mut estimate_kbit, mut sent) = (Vec::new(), vec![(Duration::ZERO, 0)]);
        while t.elapsed() < phase.length {
            std::thread::sleep(Duration::from_millis(250).min(phase.length.saturating_sub(t.elapsed())));
            let stats = read_json(&stats_file).unwrap_or_default();
            trace_host(&mut trace, &stats, i, t.elapsed());
            let (bytes, estimate) = host_figures(&stats);
            estimate_kbit.extend(estimate.map(|e| (t.elapsed(), e)));
            sent.push((t.elapsed(), bytes.saturating_sub(bytes0)));
            let drops = shaper_drops(&host_ns, &host_link.dev);
            if let (Some(now), Some(before)) = (drops, drops_seen) {
                if now > before {
                    drops_at.push((t.elapsed(), now - before));
                }
            }
            drops_seen = drops.or(drops_seen);
        }
        let secs = t.elapsed().as_secs_f64();
        let frames1 = decoded(&mut browser);
        let phase_bytes = sent.last().map_or(0, |&(_, b)| b);
        bounds.push((from, unix_ms()));
        report.phases.push(PhaseReport {
            rate_kbit: phase.rate_kbit,
            changes: Vec::new(),
            fps: frames1.saturating_sub(frames0) as f64 / secs,
            sent_kbit: phase_bytes as f64 * 8.0 / 1000.0 / secs,
            estimate_kbit,
            sent_bytes: sent,
            shaper_drops: drops0.zip(drops_seen).map(|(a, b)| b.saturating_sub(a)),
            drops_at,
            cpu_busy: cpu0.zip(cpu_times()).and_then(|((busy0, all0), (busy1, all1))| {
                (all1 > all0).then(|| busy1.saturating_sub(busy0) as f64 / (all1 - all0) as f64)
            }),
        });
    }
    // Changes drawn up to the end; anything not shown 5 s after the end is missed.
    std::thread::sleep(Duration::from_secs(2));
    let seen = browser.eval("window.__changes")?;
    let mut drawn = Vec::new();
    while let Ok(line) = screen.json_line(Duration::from_millis(100)) {
        if let (Some(n), Some(at)) = (line["change"].as_u64(), line["at_us"].as_u64()) {
            drawn.push((n, at as f64 / 1000.0));
        }
    }
    if drawn.is_empty() {
        bail!("the busy screen drew nothing");
    }
    report.decode_errors = browser
        .stats()
        .ok()
        .and_then(|s| s["decodeErrors"].as_u64())
        .unwrap_or(0);
    if let Some((_, _, probe)) = &slow {
        let (slow, errors) = slow_report(probe, &drawn, &bounds);
        report.slow = Some(PhaseReport {
            rate_kbit: scenario.slow_viewer_kbit,
            ..slow
        });
        report.slow_decode_errors = errors;
    }
    if let Some(v) = read_json(&stats_file) {
        let secs = started.elapsed().as_secs_f64();
        report.host_viewers = v["viewers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| HostViewer {
                lane: v["lane"].as_u64().unwrap_or(0),
                coded_size: (
                    v["coded_size"][0].as_u64().unwrap_or(0),
                    v["coded_size"][1].as_u64().unwrap_or(0),
                ),
                tuning: v["tuning"].as_str().map(String::from),
                kbit_per_s: v["bytes_sent"].as_u64().unwrap_or(0) as f64 * 8.0 / 1000.0 / secs,
            })
            .collect();
        report
            .host_viewers
            .sort_by(|a, b| b.kbit_per_s.total_cmp(&a.kbit_per_s));
        if let (Some(slow), Some(last)) = (report.slow.as_mut(), report.host_viewers.last()) {
            slow.sent_kbit = last.kbit_per_s;
        }
    }
    let shown_at = |n: u64| seen[n.to_string()].as_f64();
    report.first_picture = seen
        .as_object()
        .and_then(|m| m.values().filter_map(Value::as_f64).reduce(f64::min))
        .map(|t| Duration::from_secs_f64(((t - opened) / 1000.0).max(0.0)));
    for (n, at) in drawn {
        let Some(i) = bounds.iter().position(|&(from, to)| at >= from && at < to) else {
            continue;
        };
        let latency = shown_at(n).map(|t| Duration::from_secs_f64(((t - at) / 1000.0).max(0.0)));
        report.phases[i].changes.push(latency);
    }
    Ok(report)
}

/// The slow probe viewer's changes, frame rate and decode errors over the phases.
fn slow_report(probe: &Proc, drawn: &[(u64, f64)], bounds: &[(f64, f64)]) -> (PhaseReport, u64) {
    let (from, to) = (bounds.first().map_or(0.0, |b| b.0), bounds.last().map_or(0.0, |b| b.1));
    let mut shown = std::collections::HashMap::new();
    let (mut frames, mut decode_errors) = (0u64, 0u64);
    while let Ok(line) = probe.json_line(Duration::from_millis(100)) {
        match line["event"].as_str() {
            Some("change") => {
                if let (Some(n), Some(at)) = (line["n"].as_u64(), line["at_us"].as_u64()) {
                    shown.entry(n).or_insert(at as f64 / 1000.0);
                }
            }
            Some("frame") => {
                let at = line["capture_us"].as_u64().unwrap_or(0) as f64 / 1000.0;
                if line["decoded"].as_bool() == Some(true) && at >= from && at < to {
                    frames += 1;
                }
            }
            Some("decode-error") => decode_errors += 1,
            _ => {}
        }
    }
    let report = PhaseReport {
        changes: drawn
            .iter()
            .filter(|(_, at)| *at >= from && *at < to)
            .map(|(n, at)| {
                shown
                    .get(n)
                    .map(|t| Duration::from_secs_f64(((t - at) / 1000.0).max(0.0)))
            })
            .collect(),
        fps: frames as f64 / ((to - from) / 1000.0).max(1.0),
        ..Default::default()
    };
    (report, decode_errors)
}

/// The rate over each `window` (at least) of cumulative byte counts sampled
/// at the given times, kbit/s, with the time each window ends.
fn sent_rates_kbit(samples: &[(Duration, u64)], window: Duration) -> impl Iterator<Item = (Duration, f64)> + '_ {
    samples.iter().enumerate().filter_map(move |(i, (t1, b1))| {
        // The latest sample at least `window` before this one.
        let (t0, b0) = samples[..i].iter().rev().find(|(t0, _)| *t1 - *t0 >= window)?;
        let secs = (*t1 - *t0).as_secs_f64();
        Some((*t1, b1.saturating_sub(*b0) as f64 * 8.0 / 1000.0 / secs))
    })
}

/// The machine's CPU time so far, (busy, all), in clock ticks (/proc/stat's
/// first line; idle and iowait count as not busy).
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    let all: u64 = ticks.iter().sum();
    let idle = ticks.get(3)? + ticks.get(4).unwrap_or(&0);
    Some((all - idle, all))
}

fn decoded(b: &mut Browser) -> u64 {
    b.stats().ok().and_then(|s| s["framesDecoded"].as_u64()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shapers_drops_are_read_off_tc() {
        let listing = "qdisc tbf 1: root refcnt 2 rate 500Kbit burst 16Kb lat 300ms \n Sent 7512 bytes 12 pkt (dropped 7, overlimits 30 requeues 0) \n backlog 0b 0p requeues 0\n";
        assert_eq!(tbf_drops(listing), Some(7));
        let unshaped = "qdisc noqueue 0: root refcnt 2 \n Sent 0 bytes 0 pkt (dropped 3, overlimits 0 requeues 0) \n";
        assert_eq!(tbf_drops(unshaped), None);
    }

    #[test]
    fn sent_rates_are_over_full_windows() {
        let s = |ms: u64, bytes: u64| (Duration::from_millis(ms), bytes);
        // 125 KB in the second from 1.0 to 2.0 s: 1 Mbit/s; the 250 ms
        // before it carried nothing and do not dilute it, nor make it 4 Mbit/s.
        let phase = |samples: &[(Duration, u64)]| PhaseReport {
            sent_bytes: samples.to_vec(),
            ..Default::default()
        };
        let p = phase(&[
            s(0, 0),
            s(750, 0),
            s(1000, 0),
            s(1250, 125_000),
            s(2000, 125_000),
            s(2250, 125_000),
        ]);
        assert!((p.peak_sent_kbit() - 1000.0).abs() < 1.0);
        assert_eq!(p.sent_reached(900.0), Some(Duration::from_millis(2000)));
        assert_eq!(p.sent_reached(1100.0), None);
        assert_eq!(
            phase(&[s(0, 0), s(750, 500_000)]).peak_sent_kbit(),
            0.0,
            "no full window"
        );
    }
}
