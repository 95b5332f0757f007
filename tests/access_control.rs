//! Acceptance: nobody joins without the code and the host's consent, against
//! the real server, host and viewers (Rust probe viewers and Chromium).
//!
//! - The server sees only the code's first 4 characters (its gate): wrong
//!   ones are refused with a clear error and a count of attempts left; the
//!   fifth locks the address out (even for the right code) until the lockout
//!   expires (shortened to 3 s here), after which the right code works. A code
//!   with the right gate and a wrong rest gets past the server and is refused
//!   by the host's own check ("wrong code"), which the server counts too.
//! - The host denies: the viewer is told so and gets no video. The host does
//!   not answer: the request times out (shortened to 2 s) with its own message.
//! - The host allows: video flows; the session token then rejoins without a
//!   new question to the host, proving the resume secret the first check
//!   left; the token alone (stolen, say) gets nothing and ends the session.
//! - Neither the code nor the token ever appears in the server's or host's log.

use std::path::Path;
use std::time::{Duration, Instant};

use holdfast_testkit::{
    artifacts_dir, start_host, start_probe_viewer, start_signal_with, wait_for, Browser, Netns, Proc,
    SYNTHETIC_ON_LOOPBACK,
};
use serde_json::Value;

const URL: &str = "http://127.0.0.1:8080";

/// A viewer joining with the room's real code (its outcome is up to the host).
fn ask_to_join(ns: &Netns, room: &Value, art: &Path) -> anyhow::Result<Proc> {
    start_probe_viewer(ns, URL, room, &["--ice-bind", "127.0.0.1:0", "--allow-loopback"], art)
}

/// Runs a probe viewer with `code` until it is refused or joined; returns its first such event.
fn attempt(ns: &Netns, room: &Value, code: &str, art: &Path) -> anyhow::Result<(Proc, Value)> {
    let mut room = room.clone();
    room["code"] = code.into();
    let p = ask_to_join(ns, &room, art)?;
    let ev = outcome(&p, Duration::from_secs(15))?;
    Ok((p, ev))
}

fn outcome(p: &Proc, within: Duration) -> anyhow::Result<Value> {
    let deadline = Instant::now() + within;
    loop {
        let ev = p.json_line(deadline.saturating_duration_since(Instant::now()))?;
        if ev["event"] == "auth-failed" {
            return Ok(ev);
        }
        if ev["event"] == "refused" || ev["event"] == "joined" {
            return Ok(ev);
        }
    }
}

fn next_host_event(host: &Proc, name: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ev = host.json_line(deadline.saturating_duration_since(Instant::now()))?;
        if ev["event"] == name {
            return Ok(ev);
        }
    }
}

#[test]
fn wrong_codes_lock_out_and_the_host_decides_who_joins() -> anyhow::Result<()> {
    let art = artifacts_dir("access_control");
    let ns = Netns::new()?;
    let server_args = ["--lockout-secs", "3", "--consent-timeout-secs", "2", "--log", "debug"];
    let signal = start_signal_with(&ns, "127.0.0.1", &server_args, &art)?;
    let args = [&SYNTHETIC_ON_LOOPBACK[..], &["--accept", "ask", "--log", "debug"]].concat();
    let (mut host, room) = start_host(&ns, URL, &args, None, &art)?;
    let code = room["code"].as_str().unwrap().to_owned();
    // The link carries the code in its fragment, which never reaches the server.
    let link = room["viewer_url"].as_str().unwrap();
    let (sent, kept) = link.split_once('#').expect("the link has a fragment");
    let bare = code.replace('-', "");
    assert!(
        !sent.contains(&bare) && !sent.contains("code="),
        "the code is in the part browsers send: {link}"
    );
    assert!(kept.contains(&format!("code={bare}")), "{link}");

    // Four wrong codes: refused, counting down.
    for left in (1..=4).rev() {
        let (_, ev) = attempt(&ns, &room, "0000000000", &art)?;
        assert_eq!(ev["code"], "invalid-credentials", "{ev}");
        let msg = ev["message"].as_str().unwrap();
        assert!(msg.contains(&format!("{left} attempts left")), "{msg}");
    }
    // The fifth locks this address out; so is the right code, right now.
    let (_, ev) = attempt(&ns, &room, "0000000000", &art)?;
    assert_eq!(ev["code"], "locked-out", "{ev}");
    let (_, ev) = attempt(&ns, &room, &code, &art)?;
    assert_eq!(ev["code"], "locked-out", "the right code is locked out too: {ev}");
    let wait = ev["retry_after_ms"].as_u64().unwrap();
    assert!(wait > 0 && wait <= 3000, "{ev}");
    eprintln!("locked out; retry after {wait} ms");
    std::thread::sleep(Duration::from_millis(wait + 200));

    // The right gate with a wrong rest: past the server, refused by the host's
    // own check, and nobody was asked.
    let gate: String = bare.chars().take(4).collect();
    let wrong_rest = format!("{gate}{}", if bare.ends_with("000000") { "111111" } else { "000000" });
    let (_, ev) = attempt(&ns, &room, &wrong_rest, &art)?;
    assert_eq!(ev["event"], "auth-failed", "{ev}");
    assert_eq!(ev["reason"], "wrong-code", "{ev}");
    let failed = next_host_event(&host, "auth-failed")?;
    assert_eq!(failed["reason"], "wrong-code", "{failed}");

    // After the lockout the right code works: the host is asked, and denies.
    let viewer = ask_to_join(&ns, &room, &art)?;
    let req = next_host_event(&host, "join-request")?;
    assert_eq!(req["address"], "127.0.0.1");
    host.write_line(&format!("deny {}", req["peer_id"].as_str().unwrap()))?;
    let ev = outcome(&viewer, Duration::from_secs(10))?;
    assert_eq!(ev["code"], "consent-denied", "{ev}");
    assert!(ev["message"].as_str().unwrap().contains("declined"), "{ev}");

    // The host does not answer: refused when the 2 s run out.
    let t0 = Instant::now();
    let viewer = ask_to_join(&ns, &room, &art)?;
    next_host_event(&host, "join-request")?;
    let ev = outcome(&viewer, Duration::from_secs(10))?;
    let took = t0.elapsed();
    assert_eq!(ev["code"], "consent-timeout", "{ev}");
    assert!(took >= Duration::from_millis(1900), "timed out after {took:?}");
    eprintln!("unanswered request refused after {took:?}");

    // In a browser: the denial is shown, and no video arrives.
    let mut browser = Browser::start(Some(&ns), &art)?;
    browser.open(room["viewer_url"].as_str().unwrap())?;
    let req = next_host_event(&host, "join-request")?;
    wait_for(Duration::from_secs(5), "the waiting message", || {
        Ok((browser.eval("window.holdfast.message()")?.as_str()
            == Some("Code checked; waiting for the host to accept…"))
        .then_some(()))
    })?;
    host.write_line(&format!("deny {}", req["peer_id"].as_str().unwrap()))?;
    let shown = wait_for(Duration::from_secs(5), "the denial in the page", || {
        let m = browser.eval("window.holdfast.message()")?;
        Ok(m.as_str().filter(|m| m.contains("declined")).map(str::to_owned))
    })?;
    eprintln!("the page says: {shown}");
    browser.screenshot(&art.join("viewer-denied.png"))?;
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(browser.stats()?["framesDecoded"], 0, "no video after a denial");

    // The host allows: frames flow; then the token rejoins without a question.
    let viewer = ask_to_join(&ns, &room, &art)?;
    let req = next_host_event(&host, "join-request")?;
    host.write_line(&format!("control {}", req["peer_id"].as_str().unwrap()))?;
    let joined = outcome(&viewer, Duration::from_secs(10))?;
    assert_eq!(joined["event"], "joined", "{joined}");
    assert_eq!(joined["control"], true);
    let mut resume = None;
    wait_for(Duration::from_secs(20), "a decoded frame", || {
        let ev = viewer.json_line(Duration::from_secs(20))?;
        if ev["event"] == "verified" {
            resume = ev["resume"].as_str().map(str::to_owned);
        }
        Ok((ev["event"] == "frame" && ev["decoded"] == true).then_some(()))
    })?;
    let resume = resume.expect("the host proved the code before any frame");
    let token = joined["token"].as_str().unwrap().to_owned();
    // The viewer's process dies; its place is kept for the grace window, so a
    // new process with the token is the same viewer, admitted without a question.
    drop(viewer);
    let again = start_probe_viewer(
        &ns,
        URL,
        &room,
        &[
            "--token",
            &token,
            "--resume-secret",
            &resume,
            "--ice-bind",
            "127.0.0.1:0",
            "--allow-loopback",
        ],
        &art,
    )?;
    let ev = outcome(&again, Duration::from_secs(10))?;
    assert_eq!(ev["event"], "joined", "the token rejoins: {ev}");
    let ev = next_host_event(&host, "viewer-joined")?;
    assert_eq!(ev["control"], true, "with the control it was granted: {ev}");
    let frame = wait_for(Duration::from_secs(20), "a frame on the new connection", || {
        let ev = again.json_line(Duration::from_secs(20))?;
        Ok((ev["event"] == "frame" && ev["decoded"] == true).then_some(ev))
    })?;
    eprintln!("token rejoin decodes again: {frame}");
    drop(again);

    // The token alone (without what the first check left) gets no frame:
    // the host asks the new connection for the resume secret, and ends the session.
    let stolen = start_probe_viewer(
        &ns,
        URL,
        &room,
        &["--token", &token, "--ice-bind", "127.0.0.1:0", "--allow-loopback"],
        &art,
    )?;
    let failed = next_host_event(&host, "auth-failed")?;
    eprintln!("a token without its resume secret: {failed}");
    let mut seen = Vec::new();
    while let Ok(ev) = stolen.json_line(Duration::from_secs(10)) {
        seen.push(ev);
    }
    assert!(!seen.iter().any(|e| e["event"] == "frame"), "{seen:?}");
    assert!(
        seen.iter()
            .any(|e| e["event"] == "auth-failed" && e["reason"] == "no-secret"),
        "{seen:?}"
    );
    drop(stolen);

    // No secret in any log.
    drop(host);
    drop(signal);
    std::thread::sleep(Duration::from_millis(300));
    for log in ["signal.log", "host.log"] {
        let text = std::fs::read_to_string(art.join(log)).unwrap_or_default();
        assert!(!text.is_empty(), "{log} is empty: wrong file name?");
        assert!(!text.contains(&code), "{log} contains the code");
        assert!(!text.contains(&code.replace('-', "")), "{log} contains the code");
        assert!(!text.contains(&token), "{log} contains the session token");
        assert!(!text.contains(&resume), "{log} contains the resume secret");
    }
    Ok(())
}
