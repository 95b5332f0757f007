//! `holdfast-bench`: the end-to-end figures for docs/benchmarks.md, measured
//! on real components (run as root; it makes its own namespace and display):
//!
//! - per-stage times (capture, convert, encode) on a 1920x1080 Xvfb display (median, p95);
//! - sustained frames per second decoded by Chromium while the screen changes;
//! - capture-to-decoded latency in Chromium over loopback (p50, p95);
//! - host CPU use with an idle screen and with a changing one;
//! - `holdfast-bench input`: viewer input event to injection on the host's X
//!   display over loopback (p50, p95), pointer moves and key presses;
//! - `holdfast-bench join`: a new viewer process to `joined` and to its first
//!   decoded frame, and the end-to-end code check's share (p50, p95), 40 joins
//!   over loopback against the real server and host.
//!
//! - `holdfast-bench rate`: a busy 1080p screen over shaped links (500 kbit/s
//!   to unshaped, 150 ms RTT, an 8 Mbit/s -> 500 kbit/s -> 8 Mbit/s step):
//!   change-to-canvas latency, frame rate, bits used, first picture (`rate.rs`).
//!
//! - `holdfast-bench capture`: the same 1080p screen on X11 and on Wayland
//!   (GNOME Mutter, PipeWire): per-stage times, fps into Chromium, host and
//!   display-server CPU with the screen busy and still (`capture.rs`).
//!
//! - `holdfast-bench transfer`: file throughput one way at a time over
//!   loopback, host and Rust viewer, SHA-256 checked (`transfer.rs`).
//!
//! - `holdfast-bench cluster`: 10,000 rooms over two signalling nodes and
//!   Redis, relay latency, Redis memory per room, and a node killed under
//!   load (see `cluster.rs`).
//!
//! Per-stage conversion and encoding costs are criterion benches:
//! `cargo bench -p holdfast-media`.

use std::time::{Duration, Instant};

mod capture;
mod cluster;
mod rate;
mod transfer;

use anyhow::Result;
use holdfast_media::encode::{EncoderSettings, Tuning};
use holdfast_media::pipeline::{FrameOutcome, FrameRequest, MediaPipeline};
use holdfast_media::ScreenSource;
use holdfast_testkit::{
    artifacts_dir, start_host, start_loopback_host, start_pattern, start_probe_viewer, start_signal, Browser, Netns,
    Proc, Xvfb,
};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::ConnectionExt;

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((p / 100.0) * v.len() as f64).floor().min(v.len() as f64 - 1.0) as usize]
}

/// CPU seconds (user + system) used so far by `pid`.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

fn cpu_percent(pid: u32, over: Duration) -> Result<f64> {
    let (c0, t0) = (cpu_seconds(pid)?, Instant::now());
    std::thread::sleep(over);
    Ok((cpu_seconds(pid)? - c0) / t0.elapsed().as_secs_f64() * 100.0)
}

/// Input latency: the probe viewer sends an event at t0 (written to its stdin
/// the instant before); this process polls the X server until the event has
/// taken effect (pointer at the target, key down) at t1.
fn input_latency() -> Result<()> {
    let art = artifacts_dir("bench_input");
    let ns = Netns::new()?;
    let x = Xvfb::start(Some(&ns), 1920, 1080, &art)?;
    let mut pat = start_pattern(Some(&ns), &x.display, &art)?;
    pat.write_line("still")?;
    let _signal = start_signal(&ns, "127.0.0.1", &art)?;
    let host_args = ["--ice-bind", "127.0.0.1:0", "--allow-loopback", "--accept", "control"];
    let (_host, room) = start_host(&ns, "http://127.0.0.1:8080", &host_args, Some(&x.display), &art)?;
    let viewer_args = ["--ice-bind", "127.0.0.1:0", "--allow-loopback", "--frame-every", "1000"];
    let mut viewer = start_probe_viewer(&ns, "http://127.0.0.1:8080", &room, &viewer_args, &art)?;
    wait_event(&viewer, "joined")?;
    wait_event(&viewer, "frame")?;
    let (conn, screen) = x11rb::connect(Some(&x.display))?;
    let root = conn.setup().roots[screen].root;

    for (screen, pattern) in [("idle screen", "still"), ("screen changing every 16 ms", "move")] {
        pat.write_line("speed 16")?;
        pat.write_line(pattern)?;
        std::thread::sleep(Duration::from_secs(2));
        measure_input(&conn, root, &mut viewer, screen)?;
    }
    Ok(())
}

/// Joins, one after another: each a new probe viewer process with the code,
/// admitted by the unattended host; timed from spawning it.
fn join_time() -> Result<()> {
    const JOINS: usize = 40;
    let art = artifacts_dir("bench_join");
    let ns = Netns::new()?;
    let _signal = start_signal(&ns, "127.0.0.1", &art)?;
    let host_args = [&holdfast_testkit::SYNTHETIC_ON_LOOPBACK[..], &["--accept", "view"]].concat();
    let (_host, room) = start_host(&ns, "http://127.0.0.1:8080", &host_args, None, &art)?;
    let viewer_args = ["--ice-bind", "127.0.0.1:0", "--allow-loopback", "--frame-every", "1000"];
    let (mut joined, mut pictured, mut check) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..JOINS {
        let t0 = Instant::now();
        let viewer = start_probe_viewer(&ns, "http://127.0.0.1:8080", &room, &viewer_args, &art)?;
        wait_event(&viewer, "joined")?;
        joined.push(t0.elapsed().as_secs_f64() * 1000.0);
        loop {
            let ev = viewer.json_line(Duration::from_secs(30))?;
            if ev["event"] == "verified" {
                check.push(ev["check_ms"].as_f64().unwrap_or(f64::NAN));
            }
            if ev["event"] == "frame" && ev["decoded"] == true {
                pictured.push(t0.elapsed().as_secs_f64() * 1000.0);
                break;
            }
        }
        // Leave (rather than vanish, which keeps a place for the grace window).
        let mut viewer = viewer;
        viewer.write_line("leave")?;
        wait_event(&viewer, "closed")?;
    }
    println!("join: {JOINS} viewers, one after another, each a new process over loopback");
    for (what, v) in [
        ("spawn to joined (ms)", &mut joined),
        ("spawn to first decoded frame (ms)", &mut pictured),
        ("the code check: channel open to host proved (ms)", &mut check),
    ] {
        println!(
            "  {what}: p50 {:.1}, p95 {:.1}",
            percentile(v, 50.0),
            percentile(v, 95.0)
        );
    }
    Ok(())
}

/// Pause between two polls of the X server (adds at most this much to a sample).
const POLL: Duration = Duration::from_micros(100);

fn measure_input(
    conn: &x11rb::rust_connection::RustConnection,
    root: u32,
    viewer: &mut Proc,
    screen: &str,
) -> Result<()> {
    let deadline = |t0: Instant| -> Result<()> {
        anyhow::ensure!(t0.elapsed() < Duration::from_secs(5), "input never landed");
        Ok(())
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut moves = Vec::new();
    for i in 0..400u32 {
        // Alternate between two points so every move changes the position.
        let (nx, ny) = if i % 2 == 0 { (0.25, 0.25) } else { (0.75, 0.75) };
        let want = ((nx * 1919.0f64).round() as i16, (ny * 1079.0f64).round() as i16);
        let t0 = Instant::now();
        viewer.write_line(&format!(r#"{{"type":"pointer-move","x":{nx},"y":{ny}}}"#))?;
        loop {
            let p = conn.query_pointer(root)?.reply()?;
            if (p.root_x, p.root_y) == want {
                break;
            }
            deadline(t0)?;
            // Poll gently: a busy loop would take a core from the host being measured.
            std::thread::sleep(POLL);
        }
        moves.push(ms(t0.elapsed()));
        std::thread::sleep(Duration::from_millis(10));
    }
    let key_down = |conn: &x11rb::rust_connection::RustConnection| -> Result<bool> {
        let map = conn.query_keymap()?.reply()?;
        Ok(map.keys.iter().any(|&b| b != 0))
    };
    let mut keys = Vec::new();
    for _ in 0..200 {
        let t0 = Instant::now();
        viewer.write_line(r#"{"type":"key","code":"ShiftLeft","key":"Shift","down":true}"#)?;
        while !key_down(conn)? {
            deadline(t0)?;
            std::thread::sleep(POLL);
        }
        keys.push(ms(t0.elapsed()));
        viewer.write_line(r#"{"type":"key","code":"ShiftLeft","key":"Shift","down":false}"#)?;
        let t1 = Instant::now();
        while key_down(conn)? {
            deadline(t1)?;
            std::thread::sleep(POLL);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for (name, v) in [("pointer move", &mut moves), ("key press", &mut keys)] {
        println!(
            "input latency, viewer event to host injection, {screen}, {name} ({} samples, ms): p50 {:.2}, p95 {:.2}, max {:.2}",
            v.len(),
            percentile(v, 50.0),
            percentile(v, 95.0),
            percentile(v, 100.0)
        );
    }
    Ok(())
}

fn wait_event(p: &Proc, name: &str) -> Result<()> {
    loop {
        let ev = p.json_line(Duration::from_secs(30))?;
        anyhow::ensure!(ev["event"] != "refused", "viewer refused: {ev}");
        if ev["event"] == name {
            return Ok(());
        }
    }
}

fn main() -> Result<()> {
    // `holdfast-bench [screen|motion|input]`: the encoder tuning to measure, or input latency.
    let tuning_name = std::env::args().nth(1).unwrap_or_else(|| "screen".into());
    if tuning_name == "input" {
        return input_latency();
    }
    if tuning_name == "join" {
        return join_time();
    }
    let args: Vec<String> = std::env::args().skip(2).collect();
    if tuning_name == "cluster" {
        return cluster::run(&args);
    }
    if tuning_name == "rate" {
        return rate::run(&args);
    }
    if tuning_name == "transfer" {
        return transfer::run(&args);
    }
    if tuning_name == "capture" {
        return capture::run(&args);
    }
    if tuning_name == "cluster-worker" {
        return cluster::worker(&args);
    }
    let tuning = match tuning_name.as_str() {
        "screen" => Tuning::Screen,
        "motion" => Tuning::Motion,
        other => anyhow::bail!("unknown tuning `{other}` (screen or motion)"),
    };
    println!("encoder tuning: {tuning_name}");
    let art = artifacts_dir("bench");
    let ns = Netns::new()?;
    let x = Xvfb::start(Some(&ns), 1920, 1080, &art)?;
    let mut pat = start_pattern(Some(&ns), &x.display, &art)?;

    // 1. The media pipeline alone on the real display, while the pattern moves
    //    every 16 ms (this process joins the display through its socket file).
    std::env::set_var("DISPLAY", &x.display);
    pat.write_line("speed 16")?;
    // Once per slice count: one slice is how the encoder ran before issue 14.
    for slices in [1, holdfast_media::encode::DEFAULT_SLICES] {
        let mut p = MediaPipeline::new(
            ScreenSource::open(0)?,
            EncoderSettings {
                tuning,
                slices,
                ..Default::default()
            },
        )?;
        let (mut cap, mut conv, mut enc, mut both, mut bytes) = (vec![], vec![], vec![], vec![], vec![]);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let t0 = Instant::now();
        let mut encoded = 0;
        while encoded < 150 {
            std::thread::sleep(Duration::from_millis(16));
            match p.step(FrameRequest::default())? {
                FrameOutcome::Encoded(f, t) => {
                    encoded += 1;
                    cap.push(ms(t.capture));
                    conv.push(ms(t.convert));
                    enc.push(ms(t.encode));
                    both.push(ms(t.convert + t.encode));
                    if !f.keyframe {
                        bytes.push(f.data.len() as f64);
                    }
                }
                FrameOutcome::Unchanged(t) => cap.push(ms(t.capture)),
                FrameOutcome::NotReady => {}
            }
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(60), "the pattern stopped changing");
        }
        for (name, v) in [
            ("capture", &mut cap),
            ("convert", &mut conv),
            ("encode", &mut enc),
            ("convert+encode", &mut both),
        ] {
            println!(
                "stage {name:<15} 1920x1080, {slices} slice(s) (ms): median {:.2}, p95 {:.2}",
                percentile(v, 50.0),
                percentile(v, 95.0)
            );
        }
        println!(
            "delta frame bytes, {slices} slice(s): median {:.0}, p95 {:.0}",
            percentile(&mut bytes, 50.0),
            percentile(&mut bytes, 95.0)
        );
    }
    pat.write_line("speed 100")?;

    // 2-4. The whole path into Chromium.
    let _signal = start_signal(&ns, "127.0.0.1", &art)?;
    let (host, room, stats_file) = start_loopback_host(&ns, &x.display, &art)?;
    let mut browser = Browser::start(Some(&ns), &art)?;
    browser.watch(room["viewer_url"].as_str().unwrap(), &art)?;

    // Changing screen: the square moves every 16 ms.
    pat.write_line("speed 16")?;
    pat.write_line("move")?;
    std::thread::sleep(Duration::from_secs(3));
    browser.eval("window.holdfast.latencySamples().length")?;
    let f0 = browser.stats()?["framesDecoded"].as_u64().unwrap();
    let t0 = Instant::now();
    let busy_cpu = cpu_percent(host.pid(), Duration::from_secs(10))?;
    let f1 = browser.stats()?["framesDecoded"].as_u64().unwrap();
    let fps = (f1 - f0) as f64 / t0.elapsed().as_secs_f64();
    let mut lat: Vec<f64> = serde_json::from_value(browser.eval("window.holdfast.latencySamples()")?)?;
    println!("sustained fps (changing screen, Chromium decoded): {fps:.1}");
    println!(
        "capture-to-decoded latency in Chromium (ms, last {} frames): p50 {:.1}, p95 {:.1}",
        lat.len(),
        percentile(&mut lat, 50.0),
        percentile(&mut lat, 95.0)
    );
    println!("host CPU, changing screen: {busy_cpu:.1}% of one core");

    // Idle screen.
    pat.write_line("still")?;
    pat.write_line("speed 1000")?;
    std::thread::sleep(Duration::from_secs(3));
    let idle_cpu = cpu_percent(host.pid(), Duration::from_secs(10))?;
    println!("host CPU, idle screen: {idle_cpu:.1}% of one core");
    if let Ok(stats) = std::fs::read_to_string(&stats_file) {
        println!("host stats: {stats}");
    }
    Ok(())
}
