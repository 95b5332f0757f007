//! Acceptance: a real headless Chromium watches a real host capturing an Xvfb
//! screen at 1920x1080 through a real signalling server, all inside a private
//! network namespace. The canvas must show the test pattern's colours, frames
//! must keep arriving, and a change on screen must show within 1 s.

use std::time::{Duration, Instant};

use holdfast_testkit::{
    artifacts_dir, bin, pattern, start_pattern, wait_for, Browser, Netns, Proc, Xvfb,
};

#[test]
fn chromium_viewer_shows_the_host_screen_and_follows_changes() -> anyhow::Result<()> {
    let art = artifacts_dir("browser_viewer");
    let ns = Netns::new()?;
    let x = Xvfb::start(Some(&ns), 1920, 1080, &art)?;
    let mut pat = start_pattern(Some(&ns), &x.display, &art)?;

    let mut signal = ns.command(bin("holdfast-signal"));
    signal.args(["--listen", "127.0.0.1:8080"]);
    let _signal = Proc::spawn("signal", signal, &art)?;
    wait_for(Duration::from_secs(20), "signalling server", || {
        Ok(ns
            .exec(&["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"])
            .is_ok()
            .then_some(()))
    })?;

    let mut host = ns.command(bin("holdfast-host"));
    host.args([
        "--signal",
        "http://127.0.0.1:8080",
        "--ice-bind",
        "127.0.0.1:0",
        "--allow-loopback",
    ])
    .env("DISPLAY", &x.display);
    let host = Proc::spawn("host", host, &art)?;
    let room: serde_json::Value = serde_json::from_str(&host.line(Duration::from_secs(30))?)?;
    let url = room["viewer_url"].as_str().expect("viewer_url").to_string();
    assert!(room["id"].as_str().unwrap().replace(' ', "").len() == 9);

    let mut browser = Browser::start(Some(&ns), &art)?;
    browser.open(&url)?;
    let connected = wait_for(Duration::from_secs(30), "the first decoded frame", || {
        let s = browser.stats()?;
        Ok(
            (s["state"] == "connected" && s["framesDecoded"].as_u64().unwrap_or(0) > 0)
                .then_some(s),
        )
    });
    if connected.is_err() {
        let _ = browser.screenshot(&art.join("failed.png"));
        eprintln!("console: {:#?}", browser.console());
    }
    let stats = connected?;
    assert_eq!(
        (stats["width"].as_u64(), stats["height"].as_u64()),
        (Some(1920), Some(1080))
    );

    // The pattern's colours, sampled away from edges and the moving square.
    for (x, y, want) in [
        (480, 270, pattern::TOP_LEFT),
        (1440, 270, pattern::TOP_RIGHT),
        (480, 810, pattern::BOTTOM_LEFT),
        (1440, 700, pattern::BOTTOM_RIGHT),
    ] {
        let got = browser.sample(x, y)?;
        assert!(
            pattern::close(got, want, 24),
            "pixel ({x},{y}): got {got:?}, want {want:?}"
        );
    }

    // Frames keep arriving while the square moves.
    let before = browser.stats()?["framesDecoded"].as_u64().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let after = browser.stats()?["framesDecoded"].as_u64().unwrap();
    assert!(
        after >= before + 10,
        "only {} frames in 2 s",
        after - before
    );

    // A change on screen appears within 1 s.
    let cyan = [0x20, 0xE0, 0xE0];
    pat.write_line("tl 20E0E0")?;
    let t0 = Instant::now();
    wait_for(
        Duration::from_secs(5),
        "the change to reach the canvas",
        || Ok(pattern::close(browser.sample(480, 270)?, cyan, 24).then_some(())),
    )?;
    let shown_after = t0.elapsed();
    eprintln!(
        "change visible after {shown_after:?}; stats {}",
        browser.stats()?
    );
    assert!(
        shown_after < Duration::from_secs(1),
        "change took {shown_after:?}"
    );

    browser.screenshot(&art.join("viewer.png"))?;
    let s = browser.stats()?;
    assert_eq!(s["decodeErrors"], 0);
    Ok(())
}
