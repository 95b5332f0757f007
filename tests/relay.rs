//! Acceptance (issue 13, item 1): reaching a host through a TURN relay.
//!
//! Host and viewers sit in namespaces that cannot reach each other: each is
//! cabled to the server's namespace (the signalling server and Debian's
//! coturn), which forwards nothing, so the only way between them is the
//! relay. The server hands out TURN REST credentials (HMAC under the secret
//! it shares with coturn) to hosts and admitted viewers only, and renews them
//! before they expire. Each case prints what it measured.

use std::path::Path;
use std::time::{Duration, Instant};

use holdfast_signal::turn::TurnRest;
use holdfast_testkit::{
    artifacts_dir, start_host, start_pattern, start_probe_viewer, start_signal_with, wait_for, xdotool_pointer,
    Browser, Coturn, Netns, Proc, Veth, Xvfb,
};
use serde_json::Value;

/// The server's and coturn's address on the viewers' side; the host reaches
/// it through the server's other cable (a host route), never the viewers.
const SERVER: &str = "10.81.2.1";
const SERVER_HOST_SIDE: &str = "10.81.1.1";
const HOST_IP: &str = "10.81.1.2";
const VIEWER_IP: &str = "10.81.2.2";
const SECRET: &str = "relay-test-secret-shared-with-coturn";
const TURN_URL: &str = "turn:10.81.2.1:3478";
const W: f64 = 1280.0;
const H: f64 = 720.0;

fn url() -> String {
    format!("http://{SERVER}:8080")
}

struct RelayNet {
    server_ns: Netns,
    host_ns: Netns,
    viewer_ns: Netns,
    _cables: (Veth, Veth),
}

/// Host and viewer each cabled to the server only. Checks that the host
/// reaches the server's viewer-side address and not the viewer.
fn relay_net() -> anyhow::Result<RelayNet> {
    let (server_ns, host_ns, viewer_ns) = (Netns::new()?, Netns::new()?, Netns::new()?);
    let h = host_ns.veth_to(&server_ns, HOST_IP, SERVER_HOST_SIDE)?;
    let v = viewer_ns.veth_to(&server_ns, VIEWER_IP, SERVER)?;
    host_ns.exec(&["ip", "route", "add", &format!("{SERVER}/32"), "via", SERVER_HOST_SIDE])?;
    // Default routes through the server, as real machines have (Chromium
    // gathers no candidate without one); the server forwards nothing.
    host_ns.exec(&["ip", "route", "add", "default", "via", SERVER_HOST_SIDE])?;
    viewer_ns.exec(&["ip", "route", "add", "default", "via", SERVER])?;
    // A namespace starts with forwarding off; say so rather than rely on it.
    server_ns.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=0"])?;
    host_ns
        .exec(&["ping", "-c1", "-W1", SERVER])
        .map_err(|e| anyhow::anyhow!("the host cannot reach the server: {e}"))?;
    anyhow::ensure!(
        host_ns.exec(&["ping", "-c1", "-W1", VIEWER_IP]).is_err(),
        "the host reaches the viewer directly: this test needs them apart"
    );
    Ok(RelayNet {
        server_ns,
        host_ns,
        viewer_ns,
        _cables: (h, v),
    })
}

fn start_relay(net: &RelayNet, art: &Path) -> anyhow::Result<Coturn> {
    Coturn::start(&net.server_ns, &[SERVER], SERVER, SECRET, art)
}

/// The signalling server with TURN REST credentials of `ttl_secs`.
fn start_server(net: &RelayNet, ttl_secs: u64, art: &Path) -> anyhow::Result<Proc> {
    let ttl = ttl_secs.to_string();
    start_signal_with(
        &net.server_ns,
        SERVER,
        &[
            "--turn-rest",
            TURN_URL,
            "--turn-secret",
            SECRET,
            "--turn-ttl-secs",
            &ttl,
        ],
        art,
    )
}

/// The host sharing `display`, unattended, bound to its only address.
fn start_relayed_host(net: &RelayNet, display: &str, extra: &[&str], art: &Path) -> anyhow::Result<(Proc, Value)> {
    let bind = format!("{HOST_IP}:0");
    let stats = art.join("host-stats.json");
    let mut args = vec![
        "--log",
        "info,holdfast_peer=debug",
        "--ice-bind",
        &bind,
        "--stats-file",
        stats.to_str().unwrap_or_default(),
    ];
    args.extend(extra);
    start_host(&net.host_ns, &url(), &args, Some(display), art)
}

fn host_stats(art: &Path) -> Value {
    std::fs::read(art.join("host-stats.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// The Rust viewer, joined through the relay (it says so), decoding.
fn join_relayed(net: &RelayNet, room: &Value, art: &Path) -> anyhow::Result<Proc> {
    let vbind = format!("{VIEWER_IP}:0");
    let viewer = start_probe_viewer(
        &net.viewer_ns,
        &url(),
        room,
        &["--ice-bind", &vbind, "--frame-every", "1"],
        art,
    )?;
    let (joined, _) = viewer.next_event(&["joined", "refused", "closed"], Duration::from_secs(40))?;
    anyhow::ensure!(joined["event"] == "joined", "{joined}");
    let (route, _) = viewer.next_event(&["route"], Duration::from_secs(30))?;
    anyhow::ensure!(route["route"] == "relayed", "the Rust viewer's path: {route}");
    anyhow::ensure!(
        frames_within(&viewer, Duration::from_secs(2)) > 0,
        "no frames through the relay"
    );
    Ok(viewer)
}

/// Frames the viewer reported within `d`.
fn frames_within(p: &Proc, d: Duration) -> usize {
    let until = Instant::now() + d;
    let mut n = 0;
    while let Ok(ev) = p.json_line(until.saturating_duration_since(Instant::now())) {
        n += usize::from(ev["event"] == "frame");
        if Instant::now() >= until {
            break;
        }
    }
    n
}

fn near(a: (i32, i32), b: (i32, i32)) -> bool {
    (a.0 - b.0).abs() <= 2 && (a.1 - b.1).abs() <= 2
}

/// Whether coturn gives `username`/`password` an allocation: Debian's own
/// TURN client (`turnutils_uclient`), from the viewer's namespace.
fn coturn_allocates(ns: &Netns, username: &str, password: &str) -> anyhow::Result<bool> {
    let out = ns
        .command("turnutils_uclient")
        .args([
            "-y", "-n", "1", "-m", "1", "-c", "-e", SERVER, "-u", username, "-w", password, SERVER,
        ])
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(!text.contains("Cannot complete Allocation") && text.contains("Total lost packets"))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `expiry:` of every username coturn accepted a request from, per
/// identity (the member's peer ID).
fn accepted_expiries(log: &str) -> std::collections::BTreeMap<String, std::collections::BTreeSet<u64>> {
    let mut out = std::collections::BTreeMap::<String, std::collections::BTreeSet<u64>>::new();
    for l in log.lines().filter(|l| l.contains("success")) {
        let Some(user) = l.split("user <").nth(1).and_then(|u| u.split('>').next()) else {
            continue;
        };
        if let Some((expiry, who)) = user.split_once(':') {
            if let Ok(expiry) = expiry.parse() {
                out.entry(who.to_owned()).or_default().insert(expiry);
            }
        }
    }
    out
}

#[test]
fn viewers_reach_a_host_they_cannot_reach_directly_through_the_relay_and_keep_it_past_the_credentials_lifetime(
) -> anyhow::Result<()> {
    let art = artifacts_dir("relay_only");
    let net = relay_net()?;
    let relay = start_relay(&net, &art)?;

    // coturn takes credentials made with the shared secret, and refuses an
    // expired username (correctly signed) and a forged password.
    let turn = TurnRest::new(vec![TURN_URL.into()], SECRET, Duration::from_secs(60));
    let creds = |at: u64| {
        let s = turn.credentials("probe", at);
        (s.username.unwrap_or_default(), s.credential.unwrap_or_default())
    };
    let (fresh_user, fresh_pass) = creds(unix_now());
    let (old_user, old_pass) = creds(unix_now() - 120);
    let forged = TurnRest::new(vec![TURN_URL.into()], "not-the-secret", Duration::from_secs(60))
        .credentials("probe", unix_now())
        .credential
        .unwrap_or_default();
    anyhow::ensure!(
        coturn_allocates(&net.viewer_ns, &fresh_user, &fresh_pass)?,
        "coturn refused fresh credentials"
    );
    anyhow::ensure!(
        !coturn_allocates(&net.viewer_ns, &old_user, &old_pass)?,
        "coturn took expired credentials"
    );
    anyhow::ensure!(
        !coturn_allocates(&net.viewer_ns, &fresh_user, &forged)?,
        "coturn took a forged password"
    );
    eprintln!("coturn: fresh credentials allocate; expired and forged ones are refused");

    // Credentials live 20 s here: the server renews them every 10 s.
    let ttl = 20;
    let _signal = start_server(&net, ttl, &art)?;
    let x = Xvfb::start(Some(&net.host_ns), W as u32, H as u32, &art)?;
    // A picture that keeps moving, so frames keep flowing.
    let _pattern = start_pattern(Some(&net.host_ns), &x.display, &art)?;
    let (host, room) = start_relayed_host(&net, &x.display, &["--relay-recheck-secs", "0"], &art)?;
    let started = Instant::now();

    // The Rust viewer: joined, decoding, through the relay.
    let mut viewer = join_relayed(&net, &room, &art)?;

    // Chromium beside it, from the same side.
    let mut browser = Browser::start_trusting(Some(&net.viewer_ns), &art, &url())?;
    browser.watch(room["viewer_url"].as_str().unwrap_or_default(), &art)?;
    let web_route = wait_for(Duration::from_secs(15), "Chromium's path to be known", || {
        let s = browser.stats()?;
        Ok(s["route"].as_str().map(str::to_owned))
    })?;
    anyhow::ensure!(web_route == "relayed", "Chromium's path: {web_route}");

    // The host sees both through the relay.
    let routes = wait_for(Duration::from_secs(10), "the host's view of both paths", || {
        let v = host_stats(&art)["viewers"].clone();
        let routes: Vec<String> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v["route"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok((routes.len() == 2).then_some(routes))
    })?;
    anyhow::ensure!(routes.iter().all(|r| r == "relayed"), "host: {routes:?}");

    // Control through the relay, from both viewers.
    let pointer = || xdotool_pointer(Some(&net.host_ns), &x.display);
    viewer.write_line(r#"{"type":"pointer-move","x":0.25,"y":0.75}"#)?;
    let want = ((0.25 * W) as i32, (0.75 * H) as i32);
    wait_for(Duration::from_secs(5), "the Rust viewer's pointer move", || {
        Ok(near(pointer()?, want).then_some(()))
    })?;
    let ((cx, cy), want_web) = browser.point_on_picture(0.8, 0.2, W, H)?;
    browser.mouse("move", cx, cy)?;
    wait_for(Duration::from_secs(5), "Chromium's pointer move", || {
        Ok(near(pointer()?, want_web).then_some(()))
    })?;
    eprintln!("input through the relay landed: Rust viewer at {want:?}, Chromium at {want_web:?}");
    let info = browser.eval("document.getElementById('info')?.textContent ?? ''")?;
    eprintln!("Chromium shows: {info}");
    anyhow::ensure!(
        info.as_str().unwrap_or_default().contains("relayed"),
        "Chromium does not say relayed: {info}"
    );

    // Past two lifetimes of the first credentials: the allocations made
    // with them live on (a TURN server checks credentials when allocating),
    // and the video keeps coming.
    let decoded_before = browser.stats()?["framesDecoded"].as_u64().unwrap_or(0);
    while started.elapsed() < Duration::from_secs(2 * ttl + 5) {
        anyhow::ensure!(
            frames_within(&viewer, Duration::from_secs(5)) > 0,
            "the Rust viewer got no frame for 5 s, {:.0} s in",
            started.elapsed().as_secs_f64()
        );
    }
    let decoded_after = browser.stats()?["framesDecoded"].as_u64().unwrap_or(0);
    anyhow::ensure!(
        decoded_after > decoded_before + 30,
        "Chromium decoded {decoded_before} then {decoded_after}"
    );
    let renewed = std::fs::read_to_string(&host.log)?
        .matches("ICE servers renewed")
        .count();
    anyhow::ensure!(renewed >= 3, "the host took {renewed} renewals in {}+ s", 2 * ttl);
    let first_allocations = accepted_expiries(&relay.log_text());
    let oldest = first_allocations.values().flatten().min().copied().unwrap_or(0);
    anyhow::ensure!(
        oldest > 0 && oldest < unix_now(),
        "the first credentials have not expired yet ({oldest})"
    );
    eprintln!(
        "{:.0} s on the relay with {ttl} s credentials (the first expired at {oldest}, {} s ago): the host took \
         {renewed} renewals; Chromium decoded {} frames meanwhile",
        started.elapsed().as_secs_f64(),
        unix_now() - oldest,
        decoded_after - decoded_before
    );

    // coturn restarts, forgetting every allocation: the session comes back
    // through the new one, made with renewed credentials (the first ones
    // would be refused now).
    drop(relay);
    let cut = Instant::now();
    let relay = start_relay(&net, &art)?;
    let restarted = unix_now();
    let mut rust_back = None;
    let mut web_back = None;
    let mut last_decoded = browser.stats()?["framesDecoded"].as_u64().unwrap_or(0);
    let mut web_frames_seen = 0;
    while (rust_back.is_none() || web_back.is_none()) && cut.elapsed() < Duration::from_secs(120) {
        if rust_back.is_none()
            && frames_within(&viewer, Duration::from_millis(500)) > 0
            && cut.elapsed() > Duration::from_secs(2)
        {
            rust_back = Some(cut.elapsed());
        }
        let decoded = browser.stats()?["framesDecoded"].as_u64().unwrap_or(0);
        if decoded > last_decoded && cut.elapsed() > Duration::from_secs(2) {
            web_frames_seen += decoded - last_decoded;
            if web_frames_seen >= 5 && web_back.is_none() {
                web_back = Some(cut.elapsed());
            }
        }
        last_decoded = decoded;
        std::thread::sleep(Duration::from_millis(200));
    }
    let rust_back = rust_back.ok_or_else(|| anyhow::anyhow!("the Rust viewer never got video again"))?;
    let web_back = web_back.ok_or_else(|| anyhow::anyhow!("Chromium never decoded again"))?;
    let after = accepted_expiries(&relay.log_text());
    let newest = after.values().flatten().max().copied().unwrap_or(0);
    eprintln!(
        "coturn restarted: video back through the relay after {:.1} s (Rust viewer) and {:.1} s (Chromium); \
         its new allocations took credentials expiring at {newest} ({} members)",
        rust_back.as_secs_f64(),
        web_back.as_secs_f64(),
        after.len()
    );
    anyhow::ensure!(
        newest > restarted,
        "coturn allocated only with credentials that had expired: {after:?}"
    );
    anyhow::ensure!(
        rust_back < Duration::from_secs(300) && web_back < Duration::from_secs(300),
        "not within the grace window"
    );
    let routes = wait_for(Duration::from_secs(10), "the host's view of both paths", || {
        let routes: Vec<Value> = host_stats(&art)["viewers"]
            .as_array()
            .map(|a| a.iter().map(|v| v["route"].clone()).collect())
            .unwrap_or_default();
        Ok((routes.len() == 2 && routes.iter().all(|r| r == "relayed")).then_some(routes))
    });
    anyhow::ensure!(routes.is_ok(), "host at the end: {}", host_stats(&art)["viewers"]);
    Ok(())
}

/// A relayed session moves to a direct path once one appears: the host
/// restarts ICE on relayed connections now and then, and ICE prefers a
/// direct pair it can check.
#[test]
fn a_relayed_session_moves_to_a_direct_path_when_one_appears() -> anyhow::Result<()> {
    let art = artifacts_dir("relay_to_direct");
    let net = relay_net()?;
    let _relay = start_relay(&net, &art)?;
    let _signal = start_server(&net, 600, &art)?;
    let x = Xvfb::start(Some(&net.host_ns), W as u32, H as u32, &art)?;
    let _pattern = start_pattern(Some(&net.host_ns), &x.display, &art)?;
    let (_host, room) = start_relayed_host(&net, &x.display, &["--relay-recheck-secs", "5"], &art)?;
    let viewer = join_relayed(&net, &room, &art)?;
    // Two rechecks with no direct path: still relayed, video flowing.
    anyhow::ensure!(
        frames_within(&viewer, Duration::from_secs(12)) > 0,
        "no video while relayed"
    );
    let stats = host_stats(&art);
    anyhow::ensure!(stats["viewers"][0]["route"] == "relayed", "{}", stats["viewers"][0]);

    // The server starts routing between the two networks: a direct path.
    net.server_ns.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    anyhow::ensure!(
        net.host_ns.exec(&["ping", "-c1", "-W1", VIEWER_IP]).is_ok(),
        "still no route"
    );
    let opened = Instant::now();
    let (direct, skipped) = viewer.next_event(&["route"], Duration::from_secs(30))?;
    anyhow::ensure!(direct["route"] == "direct", "{direct}");
    let took = opened.elapsed();
    let frames_on_the_way = skipped.iter().filter(|e| e["event"] == "frame").count();
    anyhow::ensure!(
        frames_within(&viewer, Duration::from_secs(3)) > 0,
        "no video on the direct path"
    );
    let host_route = wait_for(Duration::from_secs(5), "the host to see the direct path", || {
        let r = host_stats(&art)["viewers"][0]["route"].clone();
        Ok((r == "direct").then_some(r))
    })?;
    eprintln!(
        "a direct path appeared: the session moved off the relay after {:.1} s (recheck every 5 s), \
         {frames_on_the_way} frames arrived meanwhile; host says {host_route}",
        took.as_secs_f64()
    );
    Ok(())
}
