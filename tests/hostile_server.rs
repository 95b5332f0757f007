//! Acceptance (issue 12): a hostile signalling server cannot admit anyone,
//! raise anyone's rights, or sit in the middle of a session. A stand-in
//! server ([`holdfast_testkit::standin`]) drives a real `holdfast-host` and a
//! real viewer (the Rust viewer, or Chromium) and lies:
//!
//! - (a) it invents a viewer with control that never asked and was never
//!   shown to anyone: the host offers it nothing and says so;
//! - (b) it tells host and viewer that a viewer the host admitted view-only
//!   has control: the host keeps it view-only, tells it so, and no input
//!   lands on the host's screen (xdotool);
//! - (c) it lets through a join with a wrong code, or with none: the host's
//!   own check fails (or never completes), nobody is asked, no frame leaves,
//!   both sides say "wrong code"; after five, the host changes its code;
//! - (d) it stands in the middle of the peer connection, relaying both data
//!   channels byte for byte: the check fails on both sides as *intercepted*,
//!   not one byte of video leaves the host, no input lands;
//! - told the truth, the same relay gives a viewer that knows the code a
//!   screen and a pointer that lands where it pointed (so the tests can fail).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use holdfast_testkit::standin::{host_sent, Lies, StandIn, INTRUDER_PEER, ROOM_ID, VIEWER_PEER};
use holdfast_testkit::{artifacts_dir, bin, wait_for, xdotool_pointer, Browser, Proc, Xvfb};
use serde_json::Value;

/// `holdfast-host` against the stand-in, on loopback; returns it and the code it shows.
fn host(standin: &StandIn, accept: &str, display: Option<&str>, art: &Path) -> anyhow::Result<(Proc, String)> {
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
    let code = room["code"].as_str().expect("the host shows its code").to_owned();
    Ok((p, code))
}

fn viewer(standin: &StandIn, code: &str, art: &Path) -> anyhow::Result<Proc> {
    let mut cmd = Command::new(bin("holdfast-probe-viewer"));
    cmd.args(["--signal", &standin.url(), "--id", ROOM_ID, "--code", code])
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
    let (host, _) = host(&standin, "ask", None, &art)?;
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
    let (host, code) = host(&standin, "view", Some(&x.display), &art)?;
    let mut v = viewer(&standin, &code, &art)?;
    // The server told the viewer it has control...
    let joined = viewer_event(&v, Duration::from_secs(15), |e| e["event"] == "joined")?;
    assert_eq!(joined["control"], true, "the stand-in lies to the viewer: {joined}");
    // ...and the host: it admitted the viewer view-only (its own decision,
    // after the check) and refuses the server's claim.
    let admitted = host_event(&host, "viewer-joined", Duration::from_secs(10))?;
    assert_eq!(admitted["control"], false, "{admitted}");
    let refused = host_event(&host, "viewer-refused", Duration::from_secs(10))?;
    assert_eq!(refused["peer_id"], VIEWER_PEER);
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
    let (host, code) = host(&standin, "control", Some(&x.display), &art)?;
    let mut v = viewer(&standin, &code, &art)?;
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

/// A code of the right shape that is not `code` (its first character changed).
fn other_code(code: &str) -> String {
    let first = if code.starts_with('Z') { 'Y' } else { 'Z' };
    format!("{first}{}", &code[1..])
}

/// Waits until the host has reported `n` failed checks to the server. The
/// report comes a moment after the viewer was told, and the stand-in has one
/// viewer slot: the next viewer must not start before it (it would get the
/// previous one's refusal).
fn wait_reported(standin: &StandIn, n: usize) -> anyhow::Result<()> {
    wait_for(Duration::from_secs(5), "the host's report to the server", || {
        let sent = standin
            .from_host()
            .iter()
            .filter(|m| m["type"] == "auth-failed")
            .count();
        Ok((sent == n).then_some(()))
    })
}

/// Everything `p` prints until it exits (or `within` passes).
fn lines_until_exit(p: &Proc, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while let Ok(v) = p.json_line(deadline.saturating_duration_since(Instant::now())) {
        out.push(v);
    }
    out
}

#[test]
fn a_join_with_a_wrong_or_no_code_gets_nothing_and_five_wrong_codes_change_the_code() -> anyhow::Result<()> {
    let art = artifacts_dir("hostile_server_wrong_code");
    let x = Xvfb::start(None, 1280, 720, &art)?;
    // The stand-in lets any join through to the host (it checks no gate).
    let standin = StandIn::start(Lies::default())?;
    let (host, code) = host(&standin, "control", Some(&x.display), &art)?;
    let before = xdotool_pointer(None, &x.display)?;
    let mut codes = vec![code.clone()];
    for attempt in 1..=5 {
        let mut v = viewer(&standin, &other_code(&code), &art)?;
        let _ = v.write_line(r#"{"type":"pointer-move","x":0.25,"y":0.25}"#);
        let seen = lines_until_exit(&v, Duration::from_secs(20));
        eprintln!("wrong code {attempt}: viewer {seen:?}");
        let failed = seen
            .iter()
            .find(|e| e["event"] == "auth-failed")
            .expect("the viewer says so");
        assert_eq!(failed["reason"], "wrong-code", "{failed}");
        assert!(
            !seen.iter().any(|e| e["event"] == "frame" || e["event"] == "joined"),
            "nothing for a wrong code: {seen:?}"
        );
        let told = host_event(&host, "auth-failed", Duration::from_secs(10))?;
        assert_eq!(told["reason"], "wrong-code", "{told}");
        assert_eq!(told["address"], "127.0.0.1", "{told}");
        wait_reported(&standin, attempt)?;
    }
    // The fifth failure in a row: the host makes up a new code and says so.
    let changed = host_event(&host, "code-changed", Duration::from_secs(10))?;
    let new_code = changed["code"].as_str().unwrap().to_owned();
    assert_ne!(new_code, code);
    codes.push(new_code.clone());
    eprintln!("the code changed after five failed checks");
    assert_eq!(xdotool_pointer(None, &x.display)?, before, "no input landed");
    // Nobody was ever asked or admitted (the host's lines so far).
    let sent = standin.from_host();
    assert!(!sent.iter().any(|m| m["type"] == "consent"), "{sent:?}");
    assert!(
        sent.iter().any(|m| m["type"] == "rekey"),
        "the server heard of the new gate"
    );
    assert_eq!(
        sent.iter().filter(|m| m["type"] == "auth-failed").count(),
        5,
        "each failed check was reported to the server"
    );
    // The old code admits no one now; the new one does.
    let old = viewer(&standin, &code, &art)?;
    let seen = lines_until_exit(&old, Duration::from_secs(20));
    assert!(
        seen.iter()
            .any(|e| e["event"] == "auth-failed" && e["reason"] == "wrong-code"),
        "{seen:?}"
    );
    wait_reported(&standin, 6)?;
    let v = viewer(&standin, &new_code, &art)?;
    viewer_event(&v, Duration::from_secs(20), |e| {
        e["event"] == "frame" && e["decoded"] == true
    })?;
    Ok(())
}

#[test]
fn a_viewer_that_never_proves_the_code_is_never_shown_to_the_user() -> anyhow::Result<()> {
    use futures_util::SinkExt;
    let art = artifacts_dir("hostile_server_no_code");
    let standin = StandIn::start(Lies::default())?;
    let (host, _) = host(&standin, "ask", None, &art)?;
    // A "viewer" that knows no code: it joins and then says nothing at all.
    let rt = tokio::runtime::Runtime::new()?;
    let url = format!("ws://{}/ws", standin.addr);
    let mut ws = rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await?;
        let join = serde_json::json!({"type": "join", "id": ROOM_ID, "gate": "0000"});
        ws.send(tokio_tungstenite::tungstenite::Message::text(join.to_string()))
            .await?;
        anyhow::Ok(ws)
    })?;
    // The host connects to check it (an offer: the check runs over that connection)...
    let offer = host_sent(&standin, Duration::from_secs(10), |m| m["type"] == "offer");
    assert!(offer.is_some(), "the host connects to check the viewer");
    // ...and without a passed check asks nobody.
    let deadline = Instant::now() + Duration::from_secs(8);
    while let Ok(ev) = host.json_line(deadline.saturating_duration_since(Instant::now())) {
        assert!(
            !matches!(ev["event"].as_str(), Some("join-request" | "viewer-joined")),
            "the user was asked about a viewer that proved nothing: {ev}"
        );
    }
    assert!(!standin.from_host().iter().any(|m| m["type"] == "consent"));
    rt.block_on(async { ws.close(None).await.ok() });
    Ok(())
}

#[test]
fn a_server_in_the_middle_is_caught_by_the_rust_viewer_and_the_host() -> anyhow::Result<()> {
    let art = artifacts_dir("hostile_server_mitm_rust");
    let x = Xvfb::start(None, 1280, 720, &art)?;
    let standin = StandIn::start(Lies {
        man_in_the_middle: true,
        ..Lies::default()
    })?;
    let (host, code) = host(&standin, "control", Some(&x.display), &art)?;
    let before = xdotool_pointer(None, &x.display)?;
    // The right code: only the certificates differ.
    let mut v = viewer(&standin, &code, &art)?;
    let _ = v.write_line(r#"{"type":"pointer-move","x":0.25,"y":0.25}"#);
    let seen = lines_until_exit(&v, Duration::from_secs(30));
    eprintln!("viewer: {seen:?}");
    let failed = seen
        .iter()
        .find(|e| e["event"] == "auth-failed")
        .expect("the viewer notices");
    assert_eq!(failed["reason"], "intercepted", "{failed}");
    assert!(
        failed["message"].as_str().unwrap().contains("in the middle"),
        "named as such: {failed}"
    );
    assert!(!seen.iter().any(|e| e["event"] == "frame" || e["event"] == "joined"));
    let told = host_event(&host, "auth-failed", Duration::from_secs(10))?;
    assert_eq!(told["reason"], "intercepted", "{told}");
    assert!(told["message"].as_str().unwrap().contains("in the middle"), "{told}");
    // The middle relayed the channels, yet no frame left the host.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(standin.relayed_video_bytes(), 0, "video crossed the middle");
    assert_eq!(xdotool_pointer(None, &x.display)?, before, "no input landed");
    assert!(
        !standin.from_host().iter().any(|m| m["type"] == "consent"),
        "nobody was asked"
    );
    Ok(())
}

#[test]
fn a_server_in_the_middle_is_caught_by_chromium_and_the_host() -> anyhow::Result<()> {
    let art = artifacts_dir("hostile_server_mitm_chromium");
    let standin = StandIn::start(Lies {
        man_in_the_middle: true,
        ..Lies::default()
    })?;
    let (host, code) = host(&standin, "control", None, &art)?;
    let mut browser = Browser::start(None, &art)?;
    browser.open(&format!("{}/#id={ROOM_ID}&code={code}", standin.url()))?;
    let stats = wait_for(Duration::from_secs(30), "the page to give up", || {
        let s = browser.stats()?;
        Ok((s["state"] == "failed").then_some(s))
    });
    if stats.is_err() {
        let _ = browser.screenshot(&art.join("failed.png"));
        eprintln!("console: {:#?}", browser.console());
    }
    let stats = stats?;
    assert_eq!(stats["authFailure"], "intercepted", "{stats}");
    assert_eq!(stats["framesDecoded"], 0, "{stats}");
    let shown = browser.eval("window.holdfast.message()")?;
    eprintln!("the page says: {shown}");
    assert!(shown.as_str().unwrap_or_default().contains("in the middle"), "{shown}");
    browser.screenshot(&art.join("intercepted.png"))?;
    let told = host_event(&host, "auth-failed", Duration::from_secs(10))?;
    assert_eq!(told["reason"], "intercepted", "{told}");
    assert_eq!(standin.relayed_video_bytes(), 0, "video crossed the middle");
    Ok(())
}

#[test]
fn told_the_truth_chromium_passes_the_check_and_sees_the_screen() -> anyhow::Result<()> {
    let art = artifacts_dir("hostile_server_honest_chromium");
    let standin = StandIn::start(Lies::default())?;
    let (_host, code) = host(&standin, "view", None, &art)?;
    let mut browser = Browser::start(None, &art)?;
    let stats = browser.watch(&format!("{}/#id={ROOM_ID}&code={code}", standin.url()), &art)?;
    assert_eq!(stats["authFailure"], Value::Null, "{stats}");
    Ok(())
}
