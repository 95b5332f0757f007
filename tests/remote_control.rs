//! Acceptance: remote control against the real thing. The host shares an
//! Xvfb screen on which a real application (a Chromium window with a text
//! area) runs; a headless Chromium viewer moves, clicks and types through the
//! viewer page; `xdotool` and the X server's own state say where the pointer
//! is and which keys are down; the application says what it received.
//!
//! - Control: the pointer lands within 1 px of where the viewer pointed,
//!   clicks arrive, typed text (ASCII, accented, CJK, symbols) arrives intact.
//! - View only (the host's switch): the same actions change nothing.
//! - A viewer admitted view-only that sends input anyway changes nothing.
//! - Keys held when the network is cut are released within the dead-peer
//!   timeout, and the viewer is declared dead after 3 silent intervals.
//! - On a host with two monitors sharing the second, the pointer lands on
//!   the second monitor; the viewer switches displays and input follows.

use std::path::Path;
use std::time::{Duration, Instant};

use holdfast_testkit::{
    artifacts_dir, repo_root, start_host, start_probe_viewer, start_signal, wait_for, x_input_state, xdotool_pointer,
    Browser, Netns, Proc, Xvfb,
};
use serde_json::Value;

const W: f64 = 1920.0;
const H: f64 = 1080.0;

struct Desk {
    ns: Netns,
    x: Xvfb,
    target: Browser,
    host: Proc,
    viewer: Browser,
    _signal: Proc,
}

/// Xvfb with the target window, signalling, a host sharing the screen, and a
/// Chromium viewer watching it: all in one namespace on loopback.
fn desk(art: &Path) -> anyhow::Result<Desk> {
    let ns = Netns::new()?;
    let x = Xvfb::start(Some(&ns), 1920, 1080, art)?;
    let mut target = Browser::start_window(Some(&ns), &x.display, 1920, 1080, art)?;
    let page = repo_root().join("tests/browser/input-target.html");
    target.open(&format!("file://{}", page.display()))?;
    let signal = start_signal(&ns, "127.0.0.1", art)?;
    let args = ["--ice-bind", "127.0.0.1:0", "--allow-loopback", "--accept", "control"];
    let (host, room) = start_host(&ns, "http://127.0.0.1:8080", &args, Some(&x.display), art)?;
    let mut viewer = Browser::start(Some(&ns), art)?;
    viewer.watch(room["viewer_url"].as_str().unwrap(), art)?;
    wait_for(Duration::from_secs(10), "the viewer to take control", || {
        Ok((viewer.eval("window.holdfast.control()")? == true).then_some(()))
    })?;
    Ok(Desk {
        ns,
        x,
        target,
        host,
        viewer,
        _signal: signal,
    })
}

impl Desk {
    /// Page coordinates in the viewer for remote pixel (rx, ry), and the
    /// remote pixel those coordinates really mean (what the host must hit).
    fn client_point(&mut self, rx: f64, ry: f64) -> anyhow::Result<((f64, f64), (i32, i32))> {
        self.viewer.point_on_picture((rx + 0.5) / W, (ry + 0.5) / H, W, H)
    }

    fn pointer(&self) -> anyhow::Result<(i32, i32)> {
        xdotool_pointer(Some(&self.ns), &self.x.display)
    }

    fn target_state(&mut self) -> anyhow::Result<(Value, String)> {
        let t = self.target.eval("window.target")?;
        let text = self
            .target
            .eval("window.targetText()")?
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok((t, text))
    }

    fn wait_text(&mut self, want: &str) -> anyhow::Result<()> {
        let r = wait_for(Duration::from_secs(10), "the typed text on the host", || {
            let (_, text) = self.target_state()?;
            Ok((text == want).then_some(()))
        });
        if r.is_err() {
            eprintln!("host text is {:?}, want {want:?}", self.target_state()?.1);
        }
        r
    }
}

fn near(a: (i32, i32), b: (i32, i32)) -> bool {
    (a.0 - b.0).abs() <= 1 && (a.1 - b.1).abs() <= 1
}

#[test]
fn chromium_viewer_moves_clicks_and_types_on_the_host_and_view_only_stops_it() -> anyhow::Result<()> {
    let art = artifacts_dir("remote_control");
    let mut d = desk(&art)?;

    // Pointer: several points, each within 1 px of where the viewer pointed.
    // The picture must not move in the page meanwhile (the figures in the
    // bar change twice a second; a bar that grew once moved it by 16 px).
    let rect_before = d.viewer.eval("window.holdfast.pictureRect()")?;
    for (rx, ry) in [(700.0, 400.0), (10.0, 10.0), (1900.0, 1060.0), (960.0, 540.0)] {
        let ((cx, cy), expect) = d.client_point(rx, ry)?;
        d.viewer.mouse("move", cx, cy)?;
        let at = wait_for(Duration::from_secs(5), "the host pointer to move", || {
            let p = d.pointer()?;
            Ok(near(p, expect).then_some(p))
        });
        let at = at.map_err(|e| anyhow::anyhow!("{e}; pointer at {:?}, want {expect:?}", d.pointer()))?;
        eprintln!("viewer pointed at remote ({rx},{ry}) -> host pointer {at:?} (want {expect:?})");
    }
    std::thread::sleep(Duration::from_secs(1));
    let rect_after = d.viewer.eval("window.holdfast.pictureRect()")?;
    assert_eq!(
        rect_after, rect_before,
        "the remote picture moved in the page while the viewer pointed"
    );

    // Click into the application: it counts the click at that spot.
    let ((cx, cy), expect) = d.client_point(800.0, 300.0)?;
    d.viewer.mouse("click", cx, cy)?;
    let t = wait_for(Duration::from_secs(5), "the click on the host", || {
        let (t, _) = d.target_state()?;
        Ok((t["clicks"] == 1).then_some(t))
    })?;
    let last: Vec<i32> = serde_json::from_value(t["lastClick"].clone())?;
    assert!(near((last[0], last[1]), expect), "click at {last:?}, want {expect:?}");
    // A right click too.
    d.viewer.mouse_button("click", cx, cy, "right")?;
    wait_for(Duration::from_secs(5), "the right click", || {
        Ok((d.target_state()?.0["rightClicks"] == 1).then_some(()))
    })?;

    // Typing: ASCII with shifted symbols, then text outside the US layout.
    d.viewer.keyboard("type", "Hello, World! 123")?;
    d.wait_text("Hello, World! 123")?;
    d.viewer.keyboard("press", "Enter")?;
    d.viewer.keyboard("type", "héllo wörld ß 你好 ✓")?;
    d.wait_text("Hello, World! 123\nhéllo wörld ß 你好 ✓")?;
    d.viewer.keyboard("press", "Backspace")?;
    d.wait_text("Hello, World! 123\nhéllo wörld ß 你好 ")?;
    // The wheel scrolls.
    d.viewer.wheel(cx, cy, 300.0)?;
    wait_for(Duration::from_secs(5), "wheel events on the host", || {
        Ok((d.target_state()?.0["wheel"].as_u64().unwrap_or(0) > 0).then_some(()))
    })?;
    // Nothing is left held down.
    let xs = x_input_state(Some(&d.ns), &d.x.display)?;
    assert_eq!(xs["keys"].as_array().map(Vec::len), Some(0), "keys left down: {xs}");
    d.viewer.screenshot(&art.join("viewer-control.png"))?;

    // The host switches control off: the viewer is told, and the same actions change nothing.
    d.host.write_line("view-only on")?;
    wait_for(Duration::from_secs(5), "the viewer to leave control", || {
        Ok((d.viewer.eval("window.holdfast.control()")? == false).then_some(()))
    })?;
    let before_pointer = d.pointer()?;
    let (before, before_text) = d.target_state()?;
    let ((mx, my), _) = d.client_point(200.0, 900.0)?;
    d.viewer.mouse("move", mx, my)?;
    d.viewer.mouse("click", mx, my)?;
    d.viewer.keyboard("type", "nope")?;
    d.viewer.wheel(mx, my, 300.0)?;
    std::thread::sleep(Duration::from_millis(1500));
    let (after, after_text) = d.target_state()?;
    assert_eq!(d.pointer()?, before_pointer, "the pointer moved in view-only mode");
    assert_eq!(after["clicks"], before["clicks"], "a click landed in view-only mode");
    assert_eq!(after["wheel"], before["wheel"], "the wheel scrolled in view-only mode");
    assert_eq!(after_text, before_text, "text arrived in view-only mode");
    d.viewer.screenshot(&art.join("viewer-view-only.png"))?;

    // And back on: control works again.
    d.host.write_line("view-only off")?;
    wait_for(Duration::from_secs(5), "the viewer to regain control", || {
        Ok((d.viewer.eval("window.holdfast.control()")? == true).then_some(()))
    })?;
    let ((cx, cy), _) = d.client_point(900.0, 300.0)?;
    d.viewer.mouse("click", cx, cy)?;
    wait_for(Duration::from_secs(5), "a click after control returned", || {
        Ok((d.target_state()?.0["clicks"] == 2).then_some(()))
    })?;

    // The viewer's own switch: "View only" in the page stops its input too.
    d.viewer.eval("document.getElementById('control-toggle').click()")?;
    assert_eq!(d.viewer.eval("window.holdfast.control()")?, false);
    let before_pointer = d.pointer()?;
    d.viewer.mouse("move", mx, my)?;
    d.viewer.mouse("click", mx, my)?;
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        d.pointer()?,
        before_pointer,
        "the pointer moved after the viewer chose view only"
    );
    assert_eq!(
        d.target_state()?.0["clicks"],
        2,
        "a click landed after the viewer chose view only"
    );
    d.viewer.eval("document.getElementById('control-toggle').click()")?;
    wait_for(Duration::from_secs(5), "the viewer to take control back", || {
        Ok((d.viewer.eval("window.holdfast.control()")? == true).then_some(()))
    })?;
    d.viewer.mouse("click", cx, cy)?;
    wait_for(Duration::from_secs(5), "a click after taking control back", || {
        Ok((d.target_state()?.0["clicks"] == 3).then_some(()))
    })?;
    Ok(())
}

/// Host and server in one namespace with the screen; the probe viewer in
/// another, across a veth link the test can cut.
struct Split {
    host_ns: Netns,
    viewer_ns: Netns,
    x: Xvfb,
    _signal: Proc,
    host: Proc,
    room: Value,
    link: holdfast_testkit::Veth,
}

fn split(art: &Path, net: &str, host_args: &[&str]) -> anyhow::Result<Split> {
    split_with_monitors(art, net, host_args, &[])
}

/// As [`split`], with the screen divided into RandR monitors (`WxH+X+Y`) first.
fn split_with_monitors(art: &Path, net: &str, host_args: &[&str], monitors: &[&str]) -> anyhow::Result<Split> {
    let (host_ns, viewer_ns) = (Netns::new()?, Netns::new()?);
    let (host_ip, viewer_ip) = (format!("{net}.1"), format!("{net}.2"));
    let link = host_ns.veth_to(&viewer_ns, &host_ip, &viewer_ip)?;
    let x = Xvfb::start(Some(&host_ns), 1920, 1080, art)?;
    if !monitors.is_empty() {
        let out = host_ns
            .command(holdfast_testkit::bin("holdfast-xstate"))
            .arg("monitors")
            .args(monitors)
            .env("DISPLAY", &x.display)
            .output()?;
        anyhow::ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        eprintln!("monitors: {}", String::from_utf8_lossy(&out.stdout).trim());
    }
    let signal = start_signal(&host_ns, &host_ip, art)?;
    let bind = format!("{host_ip}:0");
    let mut args = vec!["--ice-bind", &bind];
    args.extend_from_slice(host_args);
    let (host, room) = start_host(
        &host_ns,
        &format!("http://{host_ip}:8080"),
        &args,
        Some(&x.display),
        art,
    )?;
    Ok(Split {
        host_ns,
        viewer_ns,
        x,
        _signal: signal,
        host,
        room,
        link,
    })
}

impl Split {
    fn probe(&self, net: &str, art: &Path) -> anyhow::Result<Proc> {
        let bind = format!("{net}.2:0");
        let viewer = start_probe_viewer(
            &self.viewer_ns,
            &format!("http://{net}.1:8080"),
            &self.room,
            &["--ice-bind", &bind, "--frame-every", "30"],
            art,
        )?;
        // Joined, and the first frame decoded: the connection is up.
        wait_for_event(&viewer, "joined", Duration::from_secs(20))?;
        wait_for_event(&viewer, "frame", Duration::from_secs(20))?;
        Ok(viewer)
    }

    fn keys_down(&self) -> anyhow::Result<Vec<u64>> {
        let s = x_input_state(Some(&self.host_ns), &self.x.display)?;
        Ok(s["keys"].as_array().unwrap().iter().filter_map(Value::as_u64).collect())
    }
}

fn wait_for_event(p: &Proc, event: &str, within: Duration) -> anyhow::Result<Value> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line: Value = p.json_line(left)?;
        if line["event"] == event {
            return Ok(line);
        }
        anyhow::ensure!(
            line["event"] != "refused" && line["event"] != "closed",
            "viewer said {line}"
        );
    }
}

#[test]
fn keys_held_when_the_network_is_cut_are_released_within_the_dead_peer_timeout() -> anyhow::Result<()> {
    let art = artifacts_dir("remote_control_cut");
    let net = "10.213.11";
    // PING every 1 s: the viewer is dead after 3 s of silence.
    let s = split(&art, net, &["--accept", "control", "--keepalive-ms", "1000"])?;
    let mut viewer = s.probe(net, &art)?;
    assert!(s.keys_down()?.is_empty());
    viewer.write_line(r#"{"type":"key","code":"ShiftLeft","key":"Shift","down":true}"#)?;
    viewer.write_line(r#"{"type":"key","code":"KeyA","key":"A","down":true}"#)?;
    let held = wait_for(Duration::from_secs(5), "the keys to be held on the host", || {
        let k = s.keys_down()?;
        Ok((k.len() == 2).then_some(k))
    })?;
    eprintln!("held on the host: keycodes {held:?}");

    s.link.set_up(false)?;
    let cut = Instant::now();
    let released = wait_for(Duration::from_secs(10), "the held keys to be released", || {
        Ok(s.keys_down()?.is_empty().then(|| cut.elapsed()))
    })?;
    let dead = wait_for_event(&s.host, "viewer-unresponsive", Duration::from_secs(10)).map(|_| cut.elapsed())?;
    eprintln!("link cut: viewer declared dead after {dead:?}, keys released after {released:?}");
    // Dead after 3 silent intervals (3 s), not before; released at that moment.
    assert!(dead >= Duration::from_millis(2500), "declared dead too early: {dead:?}");
    assert!(
        released <= Duration::from_millis(4000),
        "keys released after {released:?} (dead-peer timeout 3 s)"
    );
    s.link.set_up(true)?;
    Ok(())
}

#[test]
fn a_viewer_admitted_view_only_cannot_inject_even_if_it_tries() -> anyhow::Result<()> {
    let art = artifacts_dir("remote_control_view_only");
    let net = "10.213.12";
    let stats = art.join("host-stats.json");
    let stats_arg = stats.to_str().unwrap().to_owned();
    let s = split(&art, net, &["--accept", "view", "--stats-file", &stats_arg])?;
    let mut viewer = s.probe(net, &art)?;
    let pointer = xdotool_pointer(Some(&s.host_ns), &s.x.display)?;
    let target = if pointer.0 > 500 { (0.1, 0.1) } else { (0.9, 0.9) };
    viewer.write_line(&format!(
        r#"{{"type":"pointer-move","x":{},"y":{}}}"#,
        target.0, target.1
    ))?;
    viewer.write_line(r#"{"type":"key","code":"ShiftLeft","key":"Shift","down":true}"#)?;
    viewer.write_line(r#"{"type":"pointer-button","button":"left","down":true,"x":0.5,"y":0.5}"#)?;
    let ignored = wait_for(Duration::from_secs(10), "the host to count ignored input", || {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap_or_default()).unwrap_or_default();
        Ok((v["viewers"][0]["input_ignored"].as_u64().unwrap_or(0) >= 3).then_some(v))
    })?;
    eprintln!("host stats: {}", ignored["viewers"][0]);
    assert_eq!(ignored["viewers"][0]["input_events"], 0);
    let xs = x_input_state(Some(&s.host_ns), &s.x.display)?;
    assert_eq!(
        xdotool_pointer(Some(&s.host_ns), &s.x.display)?,
        pointer,
        "the pointer moved"
    );
    assert_eq!(xs["keys"].as_array().map(Vec::len), Some(0), "a key went down: {xs}");
    assert_eq!(xs["buttons"], 0, "a button went down: {xs}");
    Ok(())
}

#[test]
fn on_a_two_monitor_host_input_lands_on_the_shared_monitor() -> anyhow::Result<()> {
    let art = artifacts_dir("remote_control_monitors");
    let net = "10.213.13";
    // Two monitors side by side; the host shares the right one.
    let monitors = ["960x1080+0+0", "960x1080+960+0"];
    let s = split_with_monitors(&art, net, &["--accept", "control", "--display", "1"], &monitors)?;
    let mut viewer = s.probe(net, &art)?;
    // Asking for the display it already shows makes the host list them again.
    viewer.write_line(r#"{"type":"select-display","index":1}"#)?;
    let displays = wait_for(Duration::from_secs(10), "the host's display list", || {
        let ev = viewer.json_line(Duration::from_secs(10))?;
        Ok((ev["event"] == "control" && ev["message"]["type"] == "displays").then(|| ev["message"].clone()))
    })?;
    eprintln!("host says: {displays}");
    assert_eq!(displays["current"], 1);
    // The X server also lists the output's own full-screen monitor (ours have no outputs).
    assert!(displays["displays"].as_array().map_or(0, Vec::len) >= 2, "{displays}");
    assert_eq!(displays["displays"][1]["width"], 960);
    for ((nx, ny), want) in [
        ((0.0, 0.0), (960, 0)),
        ((0.5, 0.5), (1440, 540)),
        ((1.0, 1.0), (1919, 1079)),
    ] {
        viewer.write_line(&format!(r#"{{"type":"pointer-move","x":{nx},"y":{ny}}}"#))?;
        let at = wait_for(Duration::from_secs(5), "the pointer on the second monitor", || {
            let p = xdotool_pointer(Some(&s.host_ns), &s.x.display)?;
            Ok(near(p, want).then_some(p))
        })?;
        eprintln!("({nx},{ny}) of monitor 1 -> host pointer {at:?}");
    }

    // The viewer switches to the full-screen monitor (index 2), then to the left one.
    for (index, width, (nx, ny), want) in [(2, 1920, (0.25, 0.25), (480, 270)), (0, 960, (1.0, 1.0), (959, 1079))] {
        viewer.write_line(&format!(r#"{{"type":"select-display","index":{index}}}"#))?;
        let mut told = false;
        let mut keyframe = false;
        wait_for(
            Duration::from_secs(20),
            "the switch and a keyframe of the new display",
            || {
                let ev = viewer.json_line(Duration::from_secs(20))?;
                told |= ev["event"] == "control" && ev["message"]["current"] == index;
                // The display's size: rate control may code it smaller.
                keyframe |= ev["event"] == "frame"
                    && ev["keyframe"] == true
                    && ev["decoded"] == true
                    && ev["display_width"] == width;
                Ok((told && keyframe).then_some(()))
            },
        )?;
        viewer.write_line(&format!(r#"{{"type":"pointer-move","x":{nx},"y":{ny}}}"#))?;
        let at = wait_for(
            Duration::from_secs(5),
            "the pointer on the newly shared display",
            || {
                let p = xdotool_pointer(Some(&s.host_ns), &s.x.display)?;
                Ok(near(p, want).then_some(p))
            },
        )?;
        eprintln!("switched to display {index} ({width} wide): ({nx},{ny}) -> host pointer {at:?}");
    }
    Ok(())
}
