//! `holdfast-bench`: the end-to-end figures for docs/benchmarks.md, measured
//! on real components (run as root; it makes its own namespace and display):
//!
//! - per-stage times (capture, convert, encode) on a 1920x1080 Xvfb display (median, p95);
//! - sustained frames per second decoded by Chromium while the screen changes;
//! - capture-to-decoded latency in Chromium over loopback (p50, p95);
//! - host CPU use with an idle screen and with a changing one.
//!
//! Per-stage conversion and encoding costs are criterion benches:
//! `cargo bench -p holdfast-media`.

use std::time::{Duration, Instant};

use anyhow::Result;
use holdfast_media::encode::{EncoderSettings, Tuning};
use holdfast_media::pipeline::{FrameOutcome, FrameRequest, MediaPipeline};
use holdfast_media::ScreenSource;
use holdfast_testkit::{artifacts_dir, start_host, start_pattern, start_signal, Browser, Netns, Xvfb};

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

fn main() -> Result<()> {
    // `holdfast-bench [screen|motion]`: the encoder tuning to measure.
    let tuning_name = std::env::args().nth(1).unwrap_or_else(|| "screen".into());
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
    {
        let mut p = MediaPipeline::new(
            ScreenSource::open(0)?,
            EncoderSettings {
                tuning,
                ..Default::default()
            },
        )?;
        let (mut cap, mut conv, mut enc, mut both) = (vec![], vec![], vec![], vec![]);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let t0 = Instant::now();
        let mut encoded = 0;
        while encoded < 150 {
            std::thread::sleep(Duration::from_millis(16));
            match p.step(FrameRequest::default())? {
                FrameOutcome::Encoded(_, t) => {
                    encoded += 1;
                    cap.push(ms(t.capture));
                    conv.push(ms(t.convert));
                    enc.push(ms(t.encode));
                    both.push(ms(t.convert + t.encode));
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
                "stage {name:<15} 1920x1080 (ms): median {:.2}, p95 {:.2}",
                percentile(v, 50.0),
                percentile(v, 95.0)
            );
        }
    }
    pat.write_line("speed 100")?;

    // 2-4. The whole path into Chromium.
    let _signal = start_signal(&ns, "127.0.0.1", &art)?;
    let stats_file = art.join("host-stats.json");
    let host_args = [
        "--ice-bind",
        "127.0.0.1:0",
        "--allow-loopback",
        "--stats-file",
        stats_file.to_str().unwrap(),
    ];
    let (host, room) = start_host(&ns, "http://127.0.0.1:8080", &host_args, Some(&x.display), &art)?;
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
