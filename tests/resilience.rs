//! Acceptance (issue 4): sessions that survive a broken network. Server, host
//! and viewer each run in their own network namespace, plugged into one
//! switched LAN (`holdfast_testkit::Lan`); faults are applied to one
//! participant's cable. A blackout takes the cable's switch port off the
//! bridge, so everything is dropped silently, both ways, as in a real outage
//! (this kernel has no `sch_netem`; see `holdfast_testkit::netns`). Each case
//! prints what it measured.

use std::path::Path;
use std::time::{Duration, Instant};

use holdfast_testkit::{artifacts_dir, start_host, start_probe_viewer, start_signal_with, Lan, Link, Netns, Proc};
use serde_json::Value;

struct Net {
    _lan: Lan,
    server_ns: Netns,
    host_ns: Netns,
    viewer_ns: Netns,
    _server_link: Link,
    _host_link: Link,
    viewer_link: Link,
}

const SERVER_IP: &str = "10.77.0.1";
const HOST_IP: &str = "10.77.0.2";
const VIEWER_IP: &str = "10.77.0.3";

fn url() -> String {
    format!("http://{SERVER_IP}:8080")
}

fn net() -> anyhow::Result<Net> {
    let lan = Lan::new()?;
    let (server_ns, host_ns, viewer_ns) = (Netns::new()?, Netns::new()?, Netns::new()?);
    let server_link = lan.attach(&server_ns, SERVER_IP)?;
    let host_link = lan.attach(&host_ns, HOST_IP)?;
    let viewer_link = lan.attach(&viewer_ns, VIEWER_IP)?;
    Ok(Net {
        _lan: lan,
        server_ns,
        host_ns,
        viewer_ns,
        _server_link: server_link,
        _host_link: host_link,
        viewer_link,
    })
}

/// The host (moving synthetic picture) and a Rust viewer, joined and decoding.
fn session(net: &Net, server_args: &[&str], art: &Path) -> anyhow::Result<(Proc, Proc, Proc, Value)> {
    let signal = start_signal_with(&net.server_ns, SERVER_IP, server_args, art)?;
    let bind = format!("{HOST_IP}:0");
    let (host, room) = start_host(
        &net.host_ns,
        &url(),
        &[
            "--source",
            "synthetic",
            "--ice-bind",
            &bind,
            "--log",
            "info,holdfast_peer=debug",
        ],
        None,
        art,
    )?;
    let vbind = format!("{VIEWER_IP}:0");
    let viewer = start_probe_viewer(
        &net.viewer_ns,
        &url(),
        &room,
        &["--ice-bind", &vbind, "--frame-every", "1"],
        art,
    )?;
    let joined = next_event(&viewer, &["joined", "refused"], Duration::from_secs(20))?;
    anyhow::ensure!(joined["event"] == "joined", "{joined}");
    next_event(&viewer, &["frame"], Duration::from_secs(20))?;
    Ok((signal, host, viewer, room))
}

fn next_event(p: &Proc, names: &[&str], within: Duration) -> anyhow::Result<Value> {
    Ok(next_event_keeping(p, names, within)?.0)
}

/// Like [`next_event`], also returning the events read on the way.
fn next_event_keeping(p: &Proc, names: &[&str], within: Duration) -> anyhow::Result<(Value, Vec<Value>)> {
    let deadline = Instant::now() + within;
    let mut skipped = Vec::new();
    loop {
        let ev = p.json_line(deadline.saturating_duration_since(Instant::now()))?;
        if names.iter().any(|n| ev["event"] == *n) {
            return Ok((ev, skipped));
        }
        skipped.push(ev);
    }
}

/// Reads the viewer's events for `d`, returning them.
fn events_for(p: &Proc, d: Duration) -> Vec<Value> {
    let until = Instant::now() + d;
    let mut out = Vec::new();
    while let Ok(ev) = p.json_line(until.saturating_duration_since(Instant::now())) {
        out.push(ev);
        if Instant::now() >= until {
            break;
        }
    }
    out
}

#[test]
fn a_ten_second_blackout_resumes_the_same_session_within_three_seconds() -> anyhow::Result<()> {
    let art = artifacts_dir("resilience_blackout_10s");
    let net = net()?;
    let (_signal, host, viewer, _room) = session(&net, &[], &art)?;
    // Frames flow; then the viewer's cable goes dark for 10 s.
    let before = events_for(&viewer, Duration::from_secs(2));
    anyhow::ensure!(before.iter().any(|e| e["event"] == "frame"), "no frames before the cut");
    net.viewer_link.blackout()?;
    let cut = Instant::now();
    let during = events_for(&viewer, Duration::from_secs(10));
    net.viewer_link.restore()?;
    let restored = Instant::now();
    let blackout = restored - cut;
    let (first, on_the_way) = next_event_keeping(&viewer, &["frame", "closed"], Duration::from_secs(30))?;
    let resumed_after = restored.elapsed();
    anyhow::ensure!(first["event"] == "frame", "the session ended: {first}");
    let frames_during = during.iter().filter(|e| e["event"] == "frame").count();
    eprintln!(
        "blackout {:.1} s; frames during {frames_during}; first frame {:.2} s after the link returned; events during: {:?}",
        blackout.as_secs_f64(),
        resumed_after.as_secs_f64(),
        during.iter().filter(|e| e["event"] != "frame").collect::<Vec<_>>()
    );
    let after = events_for(&viewer, Duration::from_secs(3));
    anyhow::ensure!(
        !after.iter().any(|e| e["event"] == "joined" || e["event"] == "closed"),
        "same session, no new join: {after:?}"
    );
    // What the host sent through the server meanwhile (the ICE restart's
    // offer and candidates) reached the viewer once each, in order.
    let host_events = drain(&host);
    let restarts = host_events.iter().filter(|e| e["event"] == "viewer-recovering").count();
    let signals: Vec<&Value> = before
        .iter()
        .chain(&during)
        .chain(&on_the_way)
        .chain(&after)
        .filter(|e| e["event"] == "signal")
        .collect();
    let seqs: Vec<u64> = signals.iter().filter_map(|e| e["seq"].as_u64()).collect();
    let offers = signals.iter().filter(|e| e["type"] == "offer").count();
    eprintln!(
        "signalling during and after the cut: {} messages {:?}; ICE restarts by the host {restarts}; offers received {offers}",
        seqs.len(),
        signals.iter().map(|e| format!("{}:{}", e["seq"], e["type"].as_str().unwrap_or("?"))).collect::<Vec<_>>()
    );
    anyhow::ensure!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "room messages out of order or repeated: {seqs:?}"
    );
    anyhow::ensure!(restarts >= 1, "the host never restarted ICE: {host_events:?}");
    anyhow::ensure!(offers == restarts, "{restarts} restart offers sent, {offers} received");
    anyhow::ensure!(
        resumed_after <= Duration::from_secs(3),
        "video resumed {:.2} s after the link returned (want ≤ 3 s)",
        resumed_after.as_secs_f64()
    );
    Ok(())
}

/// Every line the process has printed so far (without waiting for more).
fn drain(p: &Proc) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(ev) = p.json_line(Duration::from_millis(50)) {
        out.push(ev);
    }
    out
}
