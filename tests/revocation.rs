//! Acceptance (issue 12, item 4): revoking means now. A viewer with control
//! types long texts (characters outside the keyboard layout, ~40 ms each on
//! X11, so seconds of typing queue up) and moves the pointer; then the host
//! switches control off, kicks the viewer, or stops sharing. The X server's
//! own event stream (`holdfast-xevents`: XInput 2 raw events) says when the
//! last key or pointer event landed; it must be within one character of the
//! revoke, not seconds later.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use holdfast_testkit::{artifacts_dir, bin, start_host, start_probe_viewer, start_signal, wait_for, Netns, Proc, Xvfb};
use serde_json::Value;

const URL: &str = "http://127.0.0.1:8080";
/// One character in flight when the revoke lands, plus the host reading its stdin.
const SLACK_MS: u128 = 150;

fn unix_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

struct Desk {
    ns: Netns,
    _x: Xvfb,
    _signal: Proc,
    host: Proc,
    viewer: Proc,
    events: Proc,
    peer: String,
}

fn desk(art: &Path) -> anyhow::Result<Desk> {
    let ns = Netns::new()?;
    let x = Xvfb::start(Some(&ns), 1280, 720, art)?;
    let signal = start_signal(&ns, "127.0.0.1", art)?;
    let args = ["--ice-bind", "127.0.0.1:0", "--allow-loopback", "--accept", "control"];
    let (host, room) = start_host(&ns, URL, &args, Some(&x.display), art)?;
    let viewer = start_probe_viewer(&ns, URL, &room, &["--ice-bind", "127.0.0.1:0", "--allow-loopback"], art)?;
    let joined = wait_line(&host, Duration::from_secs(20), |e| e["event"] == "viewer-joined")?;
    let peer = joined["peer_id"].as_str().unwrap().to_owned();
    wait_line(&viewer, Duration::from_secs(20), |e| e["event"] == "frame")?;
    let mut cmd = ns.command(bin("holdfast-xevents"));
    cmd.env("DISPLAY", &x.display);
    let events = Proc::spawn("xevents", cmd, art)?;
    wait_line(&events, Duration::from_secs(10), |e| e["ready"] == true)?;
    Ok(Desk {
        ns,
        _x: x,
        _signal: signal,
        host,
        viewer,
        events,
        peer,
    })
}

fn wait_line(p: &Proc, within: Duration, f: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    let deadline = Instant::now() + within;
    loop {
        let v = p.json_line(deadline.saturating_duration_since(Instant::now()))?;
        if f(&v) {
            return Ok(v);
        }
    }
}

/// Queues seconds of typing and keeps moving the pointer for `busy`; then
/// `revoke` runs, and the viewer keeps trying for two more seconds. Returns
/// (events before the revoke, key presses before it, events after it, ms
/// from the revoke to the last event).
fn revoke_while_busy(
    d: &mut Desk,
    revoke: &mut dyn FnMut(&mut Desk) -> anyhow::Result<()>,
) -> anyhow::Result<(usize, usize, usize, i128)> {
    let text = format!(r#"{{"type":"text","text":"{}"}}"#, "é".repeat(250));
    for _ in 0..2 {
        d.viewer.write_line(&text)?;
    }
    let busy_until = Instant::now() + Duration::from_millis(1500);
    let mut i = 0u32;
    while Instant::now() < busy_until {
        let x = 0.2 + (i % 50) as f64 / 100.0;
        d.viewer
            .write_line(&format!(r#"{{"type":"pointer-move","x":{x},"y":0.5}}"#))?;
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let at = unix_ms();
    revoke(d)?;
    // The viewer keeps trying (input the host must now ignore).
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let _ = d.viewer.write_line(&text);
        let _ = d.viewer.write_line(r#"{"type":"pointer-move","x":0.9,"y":0.9}"#);
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut events = Vec::new();
    while let Ok(v) = d.events.json_line(Duration::from_millis(200)) {
        if let Some(t) = v["t_ms"].as_u64() {
            events.push((t as u128, v["kind"] == "key"));
        }
    }
    let before = events.iter().filter(|(t, _)| *t <= at).count();
    let keys_before = events.iter().filter(|(t, key)| *t <= at && *key).count();
    let after = events.len() - before;
    let last = events.last().map_or(0, |(t, _)| *t) as i128 - at as i128;
    Ok((before, keys_before, after, last))
}

fn check(what: &str, (before, keys_before, after, last): (usize, usize, usize, i128)) {
    eprintln!(
        "{what}: {before} X input events before the revoke ({keys_before} key presses of the 500 characters queued), \
         {after} after; the last {last} ms after the revoke"
    );
    assert!(
        before > 50,
        "{what}: the viewer was not busy enough to prove anything ({before} events)"
    );
    // Typing was still under way: without the revoke, keys would go on landing.
    assert!(
        keys_before > 5 && keys_before < 500,
        "{what}: {keys_before} key presses before the revoke: the typing was not in progress"
    );
    assert!(
        last <= SLACK_MS as i128,
        "{what}: input landed {last} ms after the revoke ({after} events after it)"
    );
}

#[test]
fn switching_control_off_stops_queued_input_at_once() -> anyhow::Result<()> {
    let art = artifacts_dir("revocation_control_off");
    let mut d = desk(&art)?;
    let figures = revoke_while_busy(&mut d, &mut |d| d.host.write_line("view-only on"))?;
    check("control off", figures);
    let mode = wait_line(&d.viewer, Duration::from_secs(5), |e| {
        e["event"] == "control" && e["message"]["type"] == "mode" && e["message"]["control"] == false
    });
    assert!(mode.is_ok(), "the viewer was told its control is off");
    Ok(())
}

#[test]
fn kicking_the_viewer_stops_its_input_and_ends_its_session() -> anyhow::Result<()> {
    let art = artifacts_dir("revocation_kick");
    let mut d = desk(&art)?;
    let peer = d.peer.clone();
    let figures = revoke_while_busy(&mut d, &mut |d| d.host.write_line(&format!("kick {peer}")))?;
    check("kick", figures);
    let closed = wait_line(&d.viewer, Duration::from_secs(10), |e| e["event"] == "closed")?;
    eprintln!("viewer: {closed}");
    let left = wait_line(&d.host, Duration::from_secs(5), |e| e["event"] == "viewer-left");
    assert!(left.is_ok(), "the host dropped the viewer");
    let _ = &d.ns;
    Ok(())
}

#[test]
fn stopping_sharing_stops_queued_input_at_once() -> anyhow::Result<()> {
    let art = artifacts_dir("revocation_stop");
    let mut d = desk(&art)?;
    let figures = revoke_while_busy(&mut d, &mut |d| d.host.write_line("stop"))?;
    check("stop sharing", figures);
    wait_for(Duration::from_secs(5), "the host to say it stopped", || {
        Ok(d.host
            .json_line(Duration::from_millis(500))
            .ok()
            .filter(|e| e["event"] == "stopped")
            .map(|_| ()))
    })?;
    Ok(())
}
