//! `holdfast-bench capture`: one 1080p screen captured on X11 (Xvfb, scrap's
//! shared memory) and on Wayland (headless GNOME Mutter, frames over
//! PipeWire), measured the same way, side by side:
//!
//! 1. the media pipeline in this process while the screen changes every
//!    16 ms: per-stage times (capture, change detection, convert, encode),
//!    median and p95 over 150 encoded frames;
//! 2. the whole path into Chromium over loopback: frames decoded per second
//!    while the screen changes, and the CPU of the host and of the display
//!    server (Xvfb, or Mutter, which copies each frame for PipeWire), with
//!    the screen changing and with it still.

use std::time::{Duration, Instant};

use anyhow::Result;
use holdfast_media::encode::EncoderSettings;
use holdfast_media::pipeline::{FrameOutcome, FrameRequest, MediaPipeline};
use holdfast_screen::{BackendKind, Screen};
use holdfast_testkit::gnome::GnomeSession;
use holdfast_testkit::{artifacts_dir, bin, start_pattern, start_signal, Browser, Netns, Proc, Xvfb};

use crate::{cpu_percent, percentile};

/// A 1920x1080 desktop with a pattern that can move.
enum Desk {
    X11 { x: Xvfb, pattern: Proc },
    Wayland { session: GnomeSession, pattern: Proc },
}

impl Desk {
    fn kind(&self) -> BackendKind {
        match self {
            Desk::X11 { .. } => BackendKind::X11,
            Desk::Wayland { .. } => BackendKind::Mutter,
        }
    }

    /// The screen changes every 16 ms (`true`) or not at all.
    fn set_busy(&mut self, busy: bool) -> Result<()> {
        match self {
            Desk::X11 { pattern, .. } if busy => {
                pattern.write_line("speed 16")?;
                pattern.write_line("move")
            }
            Desk::X11 { pattern, .. } => pattern.write_line("still"),
            Desk::Wayland { pattern, .. } => pattern.write_line(if busy { "animate 16" } else { "animate 0" }),
        }
    }

    /// The display server's process.
    fn server_pid(&self) -> u32 {
        match self {
            Desk::X11 { x, .. } => x.pid(),
            Desk::Wayland { session, .. } => session.mutter_pid(),
        }
    }

    /// Makes this process's screen calls reach the desk.
    fn enter_here(&self) {
        match self {
            Desk::X11 { x, .. } => std::env::set_var("DISPLAY", &x.display),
            Desk::Wayland { session, .. } => {
                std::env::set_var("XDG_RUNTIME_DIR", &session.runtime_dir);
                std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &session.bus_address);
                std::env::set_var("WAYLAND_DISPLAY", "wayland-0");
            }
        }
    }

    fn host_command(&self, ns: &Netns) -> std::process::Command {
        let mut cmd = ns.command(bin("holdfast-host"));
        match self {
            Desk::X11 { x, .. } => {
                cmd.env("DISPLAY", &x.display).env("HOLDFAST_SCREEN", "x11");
            }
            Desk::Wayland { session, .. } => {
                session.enter(&mut cmd);
            }
        }
        cmd
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Part 1: the pipeline in this process.
fn stages(desk: &mut Desk) -> Result<()> {
    desk.enter_here();
    let screen = Screen::open_kind(desk.kind())?;
    let mut p = MediaPipeline::new(screen.open_capture(0)?, EncoderSettings::default())?;
    desk.set_busy(true)?;
    std::thread::sleep(Duration::from_millis(500));
    let (mut cap, mut det, mut conv, mut enc) = (vec![], vec![], vec![], vec![]);
    let (mut grabs, mut unchanged) = (0u32, 0u32);
    let t0 = Instant::now();
    let mut encoded = 0;
    while encoded < 150 {
        std::thread::sleep(Duration::from_millis(16));
        grabs += 1;
        match p.step(FrameRequest::default())? {
            FrameOutcome::Encoded(_, t) => {
                encoded += 1;
                cap.push(ms(t.capture));
                det.push(ms(t.detect));
                conv.push(ms(t.convert));
                enc.push(ms(t.encode));
            }
            FrameOutcome::Unchanged(t) => {
                unchanged += 1;
                cap.push(ms(t.capture));
                det.push(ms(t.detect));
            }
            FrameOutcome::NotReady => {}
        }
        anyhow::ensure!(t0.elapsed() < Duration::from_secs(60), "the pattern stopped changing");
    }
    let kind = desk.kind();
    for (name, v) in [
        ("capture", &mut cap),
        ("detect", &mut det),
        ("convert", &mut conv),
        ("encode", &mut enc),
    ] {
        println!(
            "{kind:<6} stage {name:<8} 1920x1080 (ms): median {:.2}, p95 {:.2}",
            percentile(v, 50.0),
            percentile(v, 95.0)
        );
    }
    println!("{kind:<6} grabs {grabs}, of which unchanged {unchanged} (the pattern moves every 16 ms)");
    desk.set_busy(false)?;
    Ok(())
}

/// Part 2: into Chromium.
fn end_to_end(desk: &mut Desk, art: &std::path::Path) -> Result<()> {
    let ns = Netns::new()?;
    let _signal = start_signal(&ns, "127.0.0.1", art)?;
    let mut cmd = desk.host_command(&ns);
    cmd.args([
        "--signal",
        "http://127.0.0.1:8080",
        "--ice-bind",
        "127.0.0.1:0",
        "--allow-loopback",
        "--accept",
        "control",
    ]);
    let host = Proc::spawn(&format!("host-{}", desk.kind()), cmd, art)?;
    let room = host.json_line(Duration::from_secs(30))?;
    let mut browser = Browser::start(Some(&ns), art)?;
    browser.watch(room["viewer_url"].as_str().unwrap_or_default(), art)?;
    let kind = desk.kind();
    let server = desk.server_pid();

    desk.set_busy(true)?;
    std::thread::sleep(Duration::from_secs(3));
    let f0 = browser.stats()?["framesDecoded"].as_u64().unwrap_or(0);
    let t0 = Instant::now();
    let server_busy = std::thread::scope(|s| {
        let server = s.spawn(|| cpu_percent(server, Duration::from_secs(10)));
        let host = cpu_percent(host.pid(), Duration::from_secs(10));
        (host, server.join().expect("cpu thread"))
    });
    let f1 = browser.stats()?["framesDecoded"].as_u64().unwrap_or(0);
    let fps = (f1 - f0) as f64 / t0.elapsed().as_secs_f64();
    println!("{kind:<6} sustained fps (changing screen, Chromium decoded): {fps:.1}");
    println!(
        "{kind:<6} CPU, changing screen (% of one core): host {:.1}, display server {:.1}",
        server_busy.0?, server_busy.1?
    );

    desk.set_busy(false)?;
    std::thread::sleep(Duration::from_secs(3));
    let idle = std::thread::scope(|s| {
        let server = s.spawn(|| cpu_percent(server, Duration::from_secs(10)));
        let host = cpu_percent(host.pid(), Duration::from_secs(10));
        (host, server.join().expect("cpu thread"))
    });
    println!(
        "{kind:<6} CPU, still screen (% of one core): host {:.1}, display server {:.1}",
        idle.0?, idle.1?
    );
    Ok(())
}

pub fn run(_args: &[String]) -> Result<()> {
    let art = artifacts_dir("bench_capture");
    {
        let x = Xvfb::start(None, 1920, 1080, &art)?;
        let pattern = start_pattern(None, &x.display, &art)?;
        let mut desk = Desk::X11 { x, pattern };
        stages(&mut desk)?;
        end_to_end(&mut desk, &art)?;
    }
    {
        let session = GnomeSession::start(&[(1920, 1080)], &art)?;
        let (pattern, _) = session.start_pattern(None, &art, "wayland-pattern")?;
        let mut desk = Desk::Wayland { session, pattern };
        stages(&mut desk)?;
        end_to_end(&mut desk, &art)?;
    }
    Ok(())
}
