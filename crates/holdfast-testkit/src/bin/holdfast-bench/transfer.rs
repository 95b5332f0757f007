//! `holdfast-bench transfer`: file throughput one way at a time over
//! loopback, a real `holdfast-host` and the Rust probe viewer in a private
//! namespace, the host sharing a still Xvfb screen. Up: the viewer sends a
//! file of random bytes into the host's folder (taken without asking);
//! down: the host sends one into the viewer's. Timed from the command to the
//! receiver's `file-saved` (so the offer, SHA-256 on both ends and the
//! final link into place are counted), checked by SHA-256, three runs each.
//! Options: `--mb N` (default 256).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use holdfast_testkit::files::{random_file, sha256_file};
use holdfast_testkit::{artifacts_dir, start_host, start_pattern, start_probe_viewer, start_signal, Netns, Proc, Xvfb};

const RUNS: usize = 3;

fn saved(p: &Proc, within: Duration) -> Result<std::path::PathBuf> {
    let until = Instant::now() + within;
    loop {
        let ev = p.json_line(until.saturating_duration_since(Instant::now()))?;
        anyhow::ensure!(ev["event"] != "transfer-failed", "failed: {ev}");
        if ev["event"] == "file-saved" {
            return Ok(ev["path"].as_str().context("a path")?.into());
        }
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let mb: usize = match args.iter().position(|a| a == "--mb") {
        Some(i) => args.get(i + 1).context("--mb N")?.parse()?,
        None => 256,
    };
    let size = mb * 1024 * 1024;
    let art = artifacts_dir("bench_transfer");
    let (host_inbox, viewer_inbox, files) = (art.join("host-inbox"), art.join("viewer-inbox"), art.join("files"));
    for d in [&host_inbox, &viewer_inbox, &files] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d)?;
    }
    let ns = Netns::new()?;
    let x = Xvfb::start(Some(&ns), 1280, 720, &art)?;
    let mut pat = start_pattern(Some(&ns), &x.display, &art)?;
    pat.write_line("still")?;
    let _signal = start_signal(&ns, "127.0.0.1", &art)?;
    let hi = host_inbox.to_string_lossy().into_owned();
    let host_args = [
        "--ice-bind",
        "127.0.0.1:0",
        "--allow-loopback",
        "--inbox",
        &hi,
        "--accept-files",
    ];
    let (mut host, room) = start_host(&ns, "http://127.0.0.1:8080", &host_args, Some(&x.display), &art)?;
    let vi = viewer_inbox.to_string_lossy().into_owned();
    let viewer_args = [
        "--ice-bind",
        "127.0.0.1:0",
        "--allow-loopback",
        "--frame-every",
        "1000",
        "--inbox",
        &vi,
    ];
    let mut viewer = start_probe_viewer(&ns, "http://127.0.0.1:8080", &room, &viewer_args, &art)?;
    crate::wait_event(&viewer, "joined")?;
    crate::wait_event(&viewer, "frame")?;
    let (src, sha) = random_file(&files, "payload.bin", size);
    println!("transfer over loopback, {mb} MiB of random bytes, still screen shared, {RUNS} runs each way");
    for (way, up) in [("viewer -> host", true), ("host -> viewer", false)] {
        let mut rates = Vec::new();
        for _ in 0..RUNS {
            let t0 = Instant::now();
            let path = if up {
                viewer.write_line(&format!("send {}", src.display()))?;
                saved(&host, Duration::from_secs(600))?
            } else {
                host.write_line(&format!("send all {}", src.display()))?;
                saved(&viewer, Duration::from_secs(600))?
            };
            let secs = t0.elapsed().as_secs_f64();
            anyhow::ensure!(sha256_file(&path) == sha, "{way}: the received file differs");
            std::fs::remove_file(&path)?;
            rates.push(size as f64 / secs / 1e6);
        }
        rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{way}: median {:.1} MB/s (runs {})",
            rates[RUNS / 2],
            rates.iter().map(|r| format!("{r:.1}")).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(())
}
