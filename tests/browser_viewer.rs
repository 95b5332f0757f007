//! Acceptance: a real headless Chromium watches a real host capturing an Xvfb
//! screen at 1920x1080 through a real signalling server, all inside a private
//! network namespace. The canvas must show the test pattern's colours, frames
//! must keep arriving, and a change on screen must show within 1 s.

use std::time::{Duration, Instant};

use holdfast_testkit::{
    artifacts_dir, pattern, start_host, start_loopback_host, start_pattern, start_signal, wait_for, Browser, Netns,
    Xvfb,
};

#[test]
fn chromium_viewer_shows_the_host_screen_and_follows_changes() -> anyhow::Result<()> {
    let art = artifacts_dir("browser_viewer");
    let ns = Netns::new()?;
    let x = Xvfb::start(Some(&ns), 1920, 1080, &art)?;
    let mut pat = start_pattern(Some(&ns), &x.display, &art)?;

    let _signal = start_signal(&ns, "127.0.0.1", &art)?;
    let (_host, room, stats_file) = start_loopback_host(&ns, &x.display, &art)?;
    assert_eq!(room["id"].as_str().unwrap().replace(' ', "").len(), 9);

    let mut browser = Browser::start(Some(&ns), &art)?;
    let stats = browser.watch(room["viewer_url"].as_str().unwrap(), &art)?;
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
    assert!(after >= before + 10, "only {} frames in 2 s", after - before);

    // A change on screen appears within 1 s.
    let cyan = [0x20, 0xE0, 0xE0];
    pat.write_line("tl 20E0E0")?;
    let t0 = Instant::now();
    wait_for(Duration::from_secs(5), "the change to reach the canvas", || {
        Ok(pattern::close(browser.sample(480, 270)?, cyan, 24).then_some(()))
    })?;
    let shown_after = t0.elapsed();
    eprintln!("change visible after {shown_after:?}; stats {}", browser.stats()?);
    assert!(shown_after < Duration::from_secs(1), "change took {shown_after:?}");

    browser.screenshot(&art.join("viewer.png"))?;
    let s = browser.stats()?;
    assert_eq!(s["decodeErrors"], 0);

    // Every drawn frame was acknowledged: the host measured capture to canvas
    // on its own clock, which covers at least what the viewer's decoder saw
    // (same machine, same clock), and told the viewer.
    let host_shown = wait_for(Duration::from_secs(5), "the host's capture-to-screen figure", || {
        let stats: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats_file)?)?;
        Ok(stats["viewers"][0]["shown_p50_ms"].as_f64())
    })?;
    let s = wait_for(Duration::from_secs(5), "the host's report in the viewer", || {
        let s = browser.stats()?;
        Ok(s["shownP50Ms"].is_number().then_some(s))
    })?;
    let decoded = s["latencyP50Ms"].as_f64().unwrap();
    eprintln!("capture to screen p50 {host_shown} ms (host), capture to decoded p50 {decoded} ms (viewer)");
    assert!(
        host_shown + 5.0 >= decoded && host_shown < 1000.0,
        "host's {host_shown} ms against the decoder's {decoded} ms"
    );
    let report = s["shownP50Ms"].as_f64().unwrap();
    assert!(report > 0.0 && report <= s["shownP95Ms"].as_f64().unwrap(), "{s}");
    Ok(())
}

/// Off loopback the viewer page must come over HTTPS (WebCodecs needs a secure
/// context): the server generates a self-signed certificate, the host trusts
/// it explicitly, and Chromium (told to accept it) decodes frames.
#[test]
fn viewer_off_loopback_is_served_over_https_and_decodes() -> anyhow::Result<()> {
    let art = artifacts_dir("browser_viewer_https");
    let ns = Netns::new()?;
    // A non-loopback address inside the namespace (a veth pair whose far end is
    // unused). No IPv6: link-local addresses appearing a moment later would make
    // Chromium abort its loads with ERR_NETWORK_CHANGED.
    ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])?;
    ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"])?;
    ns.exec(&["ip", "link", "add", "hf0", "type", "veth", "peer", "name", "hf1"])?;
    ns.exec(&["ip", "addr", "add", "10.213.9.1/24", "dev", "hf0"])?;
    ns.exec(&["ip", "link", "set", "hf1", "up"])?;
    ns.exec(&["ip", "link", "set", "hf0", "up"])?;
    let tls_dir = art.join("tls");
    let _ = std::fs::remove_dir_all(&tls_dir);
    let mut signal = ns.command(holdfast_testkit::bin("holdfast-signal"));
    signal.args(["--listen", "10.213.9.1:8443", "--tls-dir", tls_dir.to_str().unwrap()]);
    let _signal = holdfast_testkit::Proc::spawn("signal", signal, &art)?;
    wait_for(Duration::from_secs(20), "the certificate", || {
        Ok(tls_dir.join("cert.pem").exists().then_some(()))
    })?;
    let ca = tls_dir.join("cert.pem");
    let host_args = [
        "--source",
        "synthetic",
        "--ice-bind",
        "10.213.9.1:0",
        "--signal-ca",
        ca.to_str().unwrap(),
    ];
    let (_host, room) = start_host(&ns, "https://10.213.9.1:8443", &host_args, None, &art)?;
    let url = room["viewer_url"].as_str().unwrap();
    assert!(url.starts_with("https://10.213.9.1:8443/"), "{url}");
    let mut browser = Browser::start(Some(&ns), &art)?;
    let stats = browser.watch(url, &art)?;
    assert_eq!(browser.eval("window.isSecureContext")?, true);
    assert_eq!(stats["decodeErrors"], 0);
    // Plain HTTP is not served on that address.
    assert!(ns.exec(&["curl", "-sf", "http://10.213.9.1:8443/healthz"]).is_err());
    Ok(())
}
