//! Acceptance (issue 12): a hostile signalling server cannot admit anyone or
//! raise anyone's rights. A stand-in server ([`holdfast_testkit::standin`])
//! drives a real `holdfast-host` and a real Rust viewer and lies:
//!
//! - it invents a viewer with control that never asked and was never shown
//!   to anyone: the host offers it nothing and says so;
//! - it tells host and viewer that a viewer the host admitted view-only has
//!   control: the host keeps it view-only, tells it so, and no input lands
//!   on the host's screen (xdotool);
//! - told the truth, the same relay gives a viewer granted control a pointer
//!   that lands where it pointed (so the test can fail).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use holdfast_testkit::standin::{host_sent, Lies, StandIn, INTRUDER_PEER, ROOM_ID, VIEWER_PEER};
use holdfast_testkit::{artifacts_dir, bin, wait_for, xdotool_pointer, Proc, Xvfb};
use serde_json::Value;

/// `holdfast-host` against the stand-in, on loopback; returns it after its room line.
fn host(standin: &StandIn, accept: &str, display: Option<&str>, art: &Path) -> anyhow::Result<Proc> {
    let mut cmd = Command::new(bin("holdfast-host"));
    cmd.args([
        "--signal",
        &standin.url(),
        "--ice-bind",
        "127.0.0.1:0",
        "--allow-loopback",
    ])
    .args(["--accept", accept, "--no-network-watch", "--log", "debug"]);
    match display {
        Some(d) => {
            cmd.env("DISPLAY", d);
        }
        None => {
            cmd.args(["--source", "synthetic"]);
        }
    }
    let p = Proc::spawn("host", cmd, art)?;
    let room = p.json_line(Duration::from_secs(30))?;
    assert_eq!(
        room["id"].as_str().map(|s| s.replace(' ', "")),
        Some(ROOM_ID.into()),
        "{room}"
    );
    Ok(p)
}

fn viewer(standin: &StandIn, art: &Path) -> anyhow::Result<Proc> {
    let mut cmd = Command::new(bin("holdfast-probe-viewer"));
    cmd.args(["--signal", &standin.url(), "--id", ROOM_ID, "--code", "ABCDEFGHJK"])
        .args(["--ice-bind", "127.0.0.1:0", "--allow-loopback"]);
    Proc::spawn("viewer", cmd, art)
}

/// The host's next event named `name` within `within`.
fn host_event(host: &Proc, name: &str, within: Duration) -> anyhow::Result<Value> {
    let deadline = Instant::now() + within;
    loop {
        let ev = host.json_line(deadline.saturating_duration_since(Instant::now()))?;
        if ev["event"] == name {
            return Ok(ev);
        }
    }
}

/// The viewer's next event matching `f` within `within`.
fn viewer_event(v: &Proc, within: Duration, mut f: impl FnMut(&Value) -> bool) -> anyhow::Result<Value> {
    let deadline = Instant::now() + within;
    loop {
        let ev = v.json_line(deadline.saturating_duration_since(Instant::now()))?;
        if f(&ev) {
            return Ok(ev);
        }
    }
}

#[test]
fn a_server_cannot_invent_a_viewer() -> anyhow::Result<()> {
    let art = artifacts_dir("hostile_server_invent");
    let standin = StandIn::start(Lies {
        invent_viewer: true,
        ..Lies::default()
    })?;
    // Default consent mode: ask the person. Nobody asked, nobody answered.
    let host = host(&standin, "ask", None, &art)?;
    let refused = host_event(&host, "viewer-refused", Duration::from_secs(10))?;
    assert_eq!(refused["peer_id"], INTRUDER_PEER, "{refused}");
    eprintln!("host: {refused}");
    // Nothing reaches the invented viewer: no offer, no candidate, ever.
    let offered = host_sent(&standin, Duration::from_secs(5), |m| m["to"] == INTRUDER_PEER);
    assert!(
        offered.is_none(),
        "the host answered the server's invention: {offered:?}"
    );
    assert!(standin.sent_to(INTRUDER_PEER).is_empty());
    Ok(())
}

/// A viewer sends pointer moves to (0.25, 0.25); returns where the host's pointer is after.
fn point_and_read(v: &mut Proc, display: &str) -> anyhow::Result<(i32, i32)> {
    for _ in 0..10 {
        v.write_line(r#"{"type":"pointer-move","x":0.25,"y":0.25}"#)?;
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1000));
    xdotool_pointer(None, display)
}

#[test]
fn a_server_cannot_raise_a_view_only_viewer_to_control() -> anyhow::Result<()> {
    let art = artifacts_dir("hostile_server_upgrade");
    let x = Xvfb::start(None, 1280, 720, &art)?;
    let standin = StandIn::start(Lies {
        upgrade_to_control: true,
        ..Lies::default()
    })?;
    let host = host(&standin, "view", Some(&x.display), &art)?;
    let mut v = viewer(&standin, &art)?;
    // The server told the viewer it has control...
    let joined = viewer_event(&v, Duration::from_secs(15), |e| e["event"] == "joined")?;
    assert_eq!(joined["control"], true, "the stand-in lies to the viewer: {joined}");
    // ...and the host: it refuses the claim and admits the viewer view-only.
    let refused = host_event(&host, "viewer-refused", Duration::from_secs(10))?;
    assert_eq!(refused["peer_id"], VIEWER_PEER);
    let admitted = host_event(&host, "viewer-joined", Duration::from_secs(10))?;
    assert_eq!(admitted["control"], false, "{admitted}");
    // The honest part works: the viewer sees the screen, and the host tells
    // it the truth (`mode` comes when the channel opens, before the first frame).
    let mut mode = None;
    viewer_event(&v, Duration::from_secs(20), |e| {
        if e["event"] == "control" && e["message"]["type"] == "mode" {
            mode = Some(e["message"]["control"].clone());
        }
        e["event"] == "frame" && e["decoded"] == true
    })?;
    assert_eq!(
        mode,
        Some(Value::Bool(false)),
        "the host told the viewer it is view-only"
    );
    // Its input lands nowhere.
    let before = xdotool_pointer(None, &x.display)?;
    let after = point_and_read(&mut v, &x.display)?;
    assert_eq!(after, before, "a view-only viewer moved the host's pointer");
    eprintln!("pointer stayed at {after:?}");
    Ok(())
}

#[test]
fn told_the_truth_the_same_relay_gives_control_that_lands() -> anyhow::Result<()> {
    let art = artifacts_dir("hostile_server_honest");
    let x = Xvfb::start(None, 1280, 720, &art)?;
    let standin = StandIn::start(Lies::default())?;
    let host = host(&standin, "control", Some(&x.display), &art)?;
    let mut v = viewer(&standin, &art)?;
    let joined = viewer_event(&v, Duration::from_secs(15), |e| e["event"] == "joined")?;
    assert_eq!(joined["control"], true);
    let admitted = host_event(&host, "viewer-joined", Duration::from_secs(10))?;
    assert_eq!(admitted["control"], true);
    viewer_event(&v, Duration::from_secs(20), |e| {
        e["event"] == "frame" && e["decoded"] == true
    })?;
    let landed = wait_for(Duration::from_secs(10), "the pointer to land", || {
        let at = point_and_read(&mut v, &x.display)?;
        Ok(((at.0 - 320).abs() <= 1 && (at.1 - 180).abs() <= 1).then_some(at))
    })?;
    eprintln!("pointer landed at {landed:?}");
    Ok(())
}
