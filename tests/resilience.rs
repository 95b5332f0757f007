//! Acceptance (issue 4): sessions that survive a broken network. Server, host
//! and viewer each run in their own network namespace, plugged into one
//! switched LAN (`holdfast_testkit::Lan`); faults are applied to one
//! participant's cable. A blackout takes the cable's switch port off the
//! bridge, so everything is dropped silently, both ways, as in a real outage
//! (this kernel has no `sch_netem`; see `Link::blackout`). Each case
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
    host_link: Link,
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
        host_link,
        viewer_link,
    })
}

/// The host (moving synthetic picture) and a Rust viewer, joined and decoding.
struct Session {
    signal: Proc,
    host: Proc,
    viewer: Proc,
    room: Value,
    /// The viewer's session token.
    token: String,
}

/// Starts a [`Session`]; the arguments are added to each process's defaults.
fn session_with(
    net: &Net,
    server_args: &[&str],
    host_args: &[&str],
    viewer_args: &[&str],
    art: &Path,
) -> anyhow::Result<Session> {
    let signal = start_signal_with(&net.server_ns, SERVER_IP, server_args, art)?;
    let bind = format!("{HOST_IP}:0");
    let mut args = vec!["--source", "synthetic", "--log", "info,holdfast_peer=debug"];
    if !host_args.contains(&"--ice-bind") {
        args.extend(["--ice-bind", &bind]);
    }
    args.extend(host_args);
    let (host, room) = start_host(&net.host_ns, &url(), &args, None, art)?;
    let vbind = format!("{VIEWER_IP}:0");
    let mut vargs = vec!["--ice-bind", &vbind, "--frame-every", "1"];
    vargs.extend(viewer_args);
    let viewer = start_probe_viewer(&net.viewer_ns, &url(), &room, &vargs, art)?;
    let joined = next_event(&viewer, &["joined", "refused"], Duration::from_secs(20))?;
    anyhow::ensure!(joined["event"] == "joined", "{joined}");
    next_event(&viewer, &["frame"], Duration::from_secs(20))?;
    let token = joined["token"].as_str().unwrap_or_default().to_owned();
    Ok(Session {
        signal,
        host,
        viewer,
        room,
        token,
    })
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
    let Session {
        signal: _signal,
        host,
        viewer,
        ..
    } = session_with(&net, &[], &[], &[], &art)?;
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
    let restarts = named(&host_events, &["viewer-recovering"]).len();
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

/// Frames seen in `events`.
fn frames(events: &[Value]) -> usize {
    events.iter().filter(|e| e["event"] == "frame").count()
}

/// Events of the given names, for printing.
fn named<'a>(events: &'a [Value], names: &[&str]) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| names.iter().any(|n| e["event"] == *n))
        .collect()
}

#[test]
fn a_sixty_second_blackout_past_ice_failure_resumes_by_itself() -> anyhow::Result<()> {
    let art = artifacts_dir("resilience_blackout_60s");
    let net = net()?;
    let Session {
        signal: _signal,
        host,
        viewer,
        ..
    } = session_with(&net, &[], &[], &[], &art)?;
    anyhow::ensure!(
        frames(&events_for(&viewer, Duration::from_secs(2))) > 0,
        "no frames before the cut"
    );
    net.viewer_link.blackout()?;
    let cut = Instant::now();
    let during = events_for(&viewer, Duration::from_secs(60));
    net.viewer_link.restore()?;
    let restored = Instant::now();
    // Within the grace window (300 s) and with no help: the signalling
    // backoff (cap 30 s) plus a rebuilt or restarted connection.
    let (first, on_the_way) = next_event_keeping(&viewer, &["frame", "closed"], Duration::from_secs(120))?;
    let recovered = restored.elapsed();
    anyhow::ensure!(first["event"] == "frame", "the session ended: {first}");
    let host_events = drain(&host);
    let recoveries = named(&host_events, &["viewer-recovering"]);
    eprintln!(
        "blackout {:.1} s; signalling lost seen by the viewer after {:?}; first frame {:.2} s after the link returned; \
         host recoveries {}: {:?}; viewer events after the link returned: {:?}",
        (restored - cut).as_secs_f64(),
        named(&during, &["signal-lost"]).first().and_then(|e| e["at_ms"].as_u64()),
        recovered.as_secs_f64(),
        recoveries.len(),
        recoveries,
        named(&on_the_way, &["signal-resumed", "state", "host-away"]),
    );
    let all: Vec<Value> = during.iter().chain(&on_the_way).cloned().collect();
    anyhow::ensure!(
        named(&all, &["joined", "closed"]).is_empty(),
        "same session: {:?}",
        named(&all, &["joined", "closed"])
    );
    anyhow::ensure!(!recoveries.is_empty(), "the host never tried to recover");
    let after = events_for(&viewer, Duration::from_secs(3));
    anyhow::ensure!(
        frames(&after) > 10,
        "video keeps flowing: {} frames in 3 s",
        frames(&after)
    );
    Ok(())
}

#[test]
fn past_the_grace_window_the_session_ends_cleanly_and_its_credentials_are_dead() -> anyhow::Result<()> {
    let art = artifacts_dir("resilience_past_grace");
    let net = net()?;
    // Grace shortened to 8 s on all three; the server notices silence in 6 s.
    let server = ["--grace-secs", "8", "--ws-ping-secs", "2", "--ws-silent-secs", "6"];
    let Session {
        signal: _signal,
        host,
        viewer,
        room,
        token: viewer_token,
    } = session_with(&net, &server, &["--grace-secs", "8"], &["--grace-secs", "8"], &art)?;
    // The host's cable goes dark for longer than the window.
    net.host_link.blackout()?;
    let cut = Instant::now();
    let closed = next_event(&viewer, &["closed"], Duration::from_secs(40))?;
    let viewer_told = cut.elapsed();
    let ended = next_event(&host, &["session-ended"], Duration::from_secs(40))?;
    let host_told = cut.elapsed();
    net.host_link.restore()?;
    eprintln!(
        "host cut; viewer told after {:.1} s: {closed}; host told after {:.1} s: {ended}",
        viewer_told.as_secs_f64(),
        host_told.as_secs_f64()
    );
    let reason = closed["reason"].as_str().unwrap_or_default();
    anyhow::ensure!(
        reason.contains("ended") || reason.contains("closed"),
        "a clear reason: {reason}"
    );
    anyhow::ensure!(
        ended["reason"].as_str().unwrap_or_default().contains("ended"),
        "a clear reason on the host: {ended}"
    );
    // The old code and the old token are refused, with a clear message.
    let vbind = format!("{VIEWER_IP}:0");
    let by_code = start_probe_viewer(&net.viewer_ns, &url(), &room, &["--ice-bind", &vbind], &art)?;
    let refused = next_event(&by_code, &["refused", "joined"], Duration::from_secs(20))?;
    eprintln!("old code: {refused}");
    anyhow::ensure!(refused["event"] == "refused", "the old code still works: {refused}");
    let by_token = start_probe_viewer(
        &net.viewer_ns,
        &url(),
        &room,
        &["--ice-bind", &vbind, "--token", &viewer_token],
        &art,
    )?;
    let refused = next_event(&by_token, &["refused", "joined"], Duration::from_secs(20))?;
    eprintln!("old token: {refused}");
    anyhow::ensure!(refused["event"] == "refused", "the old token still works: {refused}");
    anyhow::ensure!(
        refused["code"] == "session-ended" && refused["message"].as_str().unwrap_or_default().contains("ended"),
        "says the session ended: {refused}"
    );
    Ok(())
}

#[test]
fn a_restarted_server_picks_the_session_up_and_delivers_what_was_queued_once_in_order() -> anyhow::Result<()> {
    let art = artifacts_dir("resilience_server_restart");
    let net = net()?;
    // Tokens are signed with a key kept on disk, so they outlive the process.
    let key = art.join("signal-token.key");
    let key = key.to_str().unwrap_or_default();
    let server_args = ["--token-key-file", key];
    let Session {
        signal,
        mut host,
        viewer,
        ..
    } = session_with(&net, &server_args, &[], &[], &art)?;
    drop(signal); // killed: no goodbye to anyone
    let down = Instant::now();
    // Media does not need the server.
    let meanwhile = events_for(&viewer, Duration::from_secs(4));
    eprintln!("server down: {} frames in 4 s", frames(&meanwhile));
    anyhow::ensure!(frames(&meanwhile) > 20, "media stopped with the server");
    // The host renegotiates while the server is down: its offer is queued.
    host.write_line("restart-ice")?;
    let queued = events_for(&viewer, Duration::from_secs(1));
    anyhow::ensure!(
        named(&queued, &["signal"]).is_empty(),
        "nothing can arrive while the server is down"
    );
    let signal = start_signal_with(
        &net.server_ns,
        SERVER_IP,
        &server_args,
        &artifacts_dir("resilience_server_restart/restarted"),
    )?;
    let back = Instant::now();
    // Both come back by themselves; the viewer gets the queued offer, once.
    let (first, on_the_way) = next_event_keeping(&viewer, &["frame"], Duration::from_secs(60))?;
    let settle = events_for(&viewer, Duration::from_secs(5));
    let seen: Vec<Value> = on_the_way
        .iter()
        .chain(std::iter::once(&first))
        .chain(&settle)
        .cloned()
        .collect();
    let signals = named(&seen, &["signal"]);
    let seqs: Vec<u64> = signals.iter().filter_map(|e| e["seq"].as_u64()).collect();
    let offers = signals.iter().filter(|e| e["type"] == "offer").count();
    let host_events = drain(&host);
    eprintln!(
        "server down {:.1} s; viewer events after the restart: {:?}; host: {:?}",
        (back - down).as_secs_f64(),
        named(
            &seen,
            &["signal", "signal-resumed", "signal-lost", "state", "joined", "closed"]
        ),
        named(
            &host_events,
            &["signal-lost", "signal-restored", "viewer-recovering", "viewer-state"]
        ),
    );
    anyhow::ensure!(offers == 1, "the queued offer arrives exactly once: {signals:?}");
    anyhow::ensure!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    anyhow::ensure!(
        named(&host_events, &["signal-restored"]).len() == 1,
        "the host re-registered its room"
    );
    anyhow::ensure!(named(&seen, &["joined", "closed"]).is_empty(), "the same session");
    anyhow::ensure!(
        frames(&settle) > 20,
        "video flows after the restart: {}",
        frames(&settle)
    );
    let metrics = net.server_ns.exec(&["curl", "-sf", &format!("{}/metrics", url())])?;
    let restored = metrics
        .lines()
        .find(|l| l.starts_with("holdfast_rooms_restored_total"))
        .unwrap_or_default()
        .to_owned();
    eprintln!("restarted server: {restored}");
    anyhow::ensure!(
        restored.ends_with(" 1"),
        "the room was restored from the host's token: {restored}"
    );
    drop(signal);
    Ok(())
}

#[test]
fn when_the_hosts_address_changes_the_session_moves_to_the_new_one() -> anyhow::Result<()> {
    let art = artifacts_dir("resilience_address_change");
    let net = net()?;
    // Bound to every interface, as by default, so new addresses can be used.
    let Session {
        signal: _signal,
        host,
        viewer,
        ..
    } = session_with(&net, &[], &["--ice-bind", "0.0.0.0:0"], &[], &art)?;
    anyhow::ensure!(frames(&events_for(&viewer, Duration::from_secs(2))) > 0);
    net.host_link.readdress(HOST_IP, "10.77.0.12")?;
    let changed = Instant::now();
    let noticed = next_event(&host, &["network-changed"], Duration::from_secs(10))?;
    let detect = changed.elapsed();
    // Frames in flight may still arrive; wait for the new connection's.
    let (recovering, _) = next_event_keeping(&host, &["viewer-recovering"], Duration::from_secs(10))?;
    let (first, on_the_way) = next_event_keeping(&viewer, &["frame", "closed"], Duration::from_secs(30))?;
    let after = events_for(&viewer, Duration::from_secs(3));
    let recovered = changed.elapsed();
    eprintln!(
        "address changed; host noticed in {:.2} s: {noticed}; {recovering}; video back within {:.2} s; viewer: {:?}",
        detect.as_secs_f64(),
        recovered.as_secs_f64(),
        named(&on_the_way, &["state", "signal-resumed", "signal"])
    );
    anyhow::ensure!(first["event"] == "frame", "the session ended: {first}");
    anyhow::ensure!(
        frames(&after) > 10,
        "video flows on the new address: {}",
        frames(&after)
    );
    anyhow::ensure!(
        named(&on_the_way, &["signal"]).iter().any(|e| e["type"] == "offer"),
        "the host renegotiated"
    );
    anyhow::ensure!(named(&after, &["joined", "closed"]).is_empty(), "the same session");
    Ok(())
}
