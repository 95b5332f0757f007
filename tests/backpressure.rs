//! Acceptance: backpressure on the `video` channel, against real peers in
//! their own processes. A viewer that stops reading (its process frozen with
//! SIGSTOP, so its socket stops draining and SCTP stops acknowledging) and a
//! viewer behind a link throttled with `tc` in a network namespace must never
//! let the host's queue exceed 4 MiB plus one frame; drops are counted; when
//! the viewer resumes, the stream continues on a keyframe and nothing fails to
//! decode. On the throttled link the keepalive must keep flowing while the
//! video queue sits at its limit (PING/PONG do not wait behind video).

use std::time::{Duration, Instant};

use holdfast_testkit::{artifacts_dir, bin, start_host, start_signal, wait_for, Netns, Proc};
use serde_json::Value;

const CEILING: u64 = 4 * 1024 * 1024;
/// PING interval for these tests: shorter than the seeds' 5 s to see several in
/// a few seconds, but not below SCTP's 1 s minimum retransmission timeout (at
/// 1 s, one PING lost in the saturated queue and retransmitted with backoff can
/// cost three intervals).
const KEEPALIVE_MS: u64 = 2000;

struct Session {
    _signal: Proc,
    host: Proc,
    viewer: Proc,
    stats: std::path::PathBuf,
    last_id: Option<u64>,
    /// When each keepalive PING reached the viewer (Unix ms, the viewer's clock).
    pings: Vec<u64>,
}

impl Session {
    fn host_stats(&self) -> anyhow::Result<Value> {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&self.stats)?)?;
        Ok(v["viewers"][0].clone())
    }

    /// Reads the viewer's next frame report, checking it decoded and that ids are contiguous.
    fn frame(&mut self, within: Duration) -> anyhow::Result<Value> {
        loop {
            let line: Value = serde_json::from_str(&self.viewer.line(within)?)?;
            match line["event"].as_str() {
                Some("frame") => {
                    let id = line["id"].as_u64().unwrap();
                    if let Some(prev) = self.last_id {
                        assert_eq!(id, (prev + 1) % (1 << 32), "frame ids must be contiguous: {line}");
                    }
                    self.last_id = Some(id);
                    assert!(line["decoded"] == true, "frame did not decode: {line}");
                    return Ok(line);
                }
                Some("decode-error") | Some("bad-chunk") | Some("closed") => {
                    panic!("viewer reported {line}")
                }
                Some("ping") => self.pings.push(line["at_ms"].as_u64().unwrap()),
                _ => {}
            }
        }
    }
}

/// Signalling server and host in `host_ns` (reached at `server_ip`), viewer in `viewer_ns`.
fn start(
    host_ns: &Netns,
    viewer_ns: &Netns,
    server_ip: &str,
    host_bind: &str,
    viewer_bind: &str,
    art: &std::path::Path,
) -> anyhow::Result<Session> {
    let signal = start_signal(host_ns, server_ip, art)?;
    let stats = art.join("host-stats.json");
    let _ = std::fs::remove_file(&stats);
    let url = format!("http://{server_ip}:8080");
    // An incompressible 1080p picture at a fixed high bitrate (no rate
    // control to pace it), bounded by the 4 MiB ceiling alone: no latency
    // target, and no withholding from a stalled queue (a frozen viewer must
    // fill it to the ceiling).
    let stats_path = stats.to_str().unwrap();
    let host_args = [
        "--source",
        "noise",
        "--rate-control",
        "fixed",
        "--bitrate",
        "24000",
        "--queue-target-ms",
        "0",
        "--queue-stall-ms",
        "0",
        "--allow-loopback",
        "--ice-bind",
        host_bind,
        "--stats-file",
        stats_path,
        "--keepalive-ms",
        &KEEPALIVE_MS.to_string(),
    ];
    let (host, room) = start_host(host_ns, &url, &host_args, None, art)?;
    let mut viewer = viewer_ns.command(bin("holdfast-probe-viewer"));
    viewer
        .args([
            "--signal",
            &url,
            "--id",
            room["id"].as_str().unwrap(),
            "--code",
            room["code"].as_str().unwrap(),
        ])
        .args(["--ice-bind", viewer_bind, "--allow-loopback"]);
    let viewer = Proc::spawn("viewer", viewer, art)?;
    let mut s = Session {
        _signal: signal,
        host,
        viewer,
        stats,
        last_id: None,
        pings: Vec::new(),
    };
    let first = s.frame(Duration::from_secs(30))?;
    assert!(first["keyframe"] == true, "first frame is a keyframe: {first}");
    Ok(s)
}

/// After the stall: frames flow again, a keyframe follows the drops, the bound held.
fn check_recovery(s: &mut Session, id_before_stall: u64) -> anyhow::Result<()> {
    let mut keyframe_after = false;
    let deadline = Instant::now() + Duration::from_secs(40);
    while !keyframe_after {
        assert!(Instant::now() < deadline, "no keyframe after the stall");
        let f = s.frame(Duration::from_secs(30))?;
        keyframe_after = f["keyframe"] == true && f["id"].as_u64().unwrap() > id_before_stall;
    }
    for _ in 0..20 {
        s.frame(Duration::from_secs(10))?;
    }
    std::thread::sleep(Duration::from_millis(1200)); // one more stats write
    let v = s.host_stats()?;
    eprintln!("host view of the viewer after recovery: {v}");
    let (max_q, max_f) = (
        v["max_queued_bytes"].as_u64().unwrap(),
        v["max_frame_bytes"].as_u64().unwrap(),
    );
    assert!(v["frames_dropped"].as_u64().unwrap() > 0, "drops are counted");
    assert!(v["keyframe_after_every_drop"] == true, "a keyframe after every drop");
    assert!(
        max_q <= CEILING + max_f,
        "queue reached {max_q} > {CEILING} + one frame ({max_f})"
    );
    assert!(
        max_q > CEILING / 2,
        "the stall should have filled the queue (max {max_q})"
    );
    Ok(())
}

#[test]
fn frozen_viewer_never_pushes_the_queue_past_the_ceiling() -> anyhow::Result<()> {
    let art = artifacts_dir("backpressure_frozen");
    let ns = Netns::new()?;
    let mut s = start(&ns, &ns, "127.0.0.1", "127.0.0.1:0", "127.0.0.1:0", &art)?;
    for _ in 0..10 {
        s.frame(Duration::from_secs(10))?;
    }
    let before = s.last_id.unwrap();
    s.viewer.signal("STOP")?;
    // Frozen for at most 8 s: past ICE's 5 s "disconnected" (which recovers) but
    // far from its 25 s "failed". At ~20 Mbit/s the 4 MiB fill in about two seconds.
    let t0 = Instant::now();
    let dropped = wait_for(Duration::from_secs(8), "drops while the viewer is frozen", || {
        let v = s.host_stats()?;
        Ok((v["frames_dropped"].as_u64().unwrap_or(0) >= 3).then_some(v))
    });
    s.viewer.signal("CONT")?;
    let v = dropped?;
    eprintln!("drops began {:?} after the freeze: {v}", t0.elapsed());
    check_recovery(&mut s, before)?;
    assert!(s.host.is_running());
    Ok(())
}

#[test]
fn throttled_link_never_pushes_the_queue_past_the_ceiling() -> anyhow::Result<()> {
    let art = artifacts_dir("backpressure_tc");
    let (h, v) = (Netns::new()?, Netns::new()?);
    // A veth pair between the two namespaces, with test addresses of their own.
    let (vh, vv) = (format!("{}a", h.name), format!("{}b", h.name));
    let ip = |args: &[&str]| -> anyhow::Result<()> {
        let st = std::process::Command::new("ip").args(args).status()?;
        anyhow::ensure!(st.success(), "ip {args:?} failed");
        Ok(())
    };
    ip(&[
        "link", "add", &vh, "netns", &h.name, "type", "veth", "peer", "name", &vv, "netns", &v.name,
    ])?;
    h.exec(&["ip", "addr", "add", "10.213.7.1/24", "dev", &vh])?;
    v.exec(&["ip", "addr", "add", "10.213.7.2/24", "dev", &vv])?;
    h.exec(&["ip", "link", "set", &vh, "up"])?;
    v.exec(&["ip", "link", "set", &vv, "up"])?;

    let mut s = start(&h, &v, "10.213.7.1", "10.213.7.1:0", "10.213.7.2:0", &art)?;
    for _ in 0..10 {
        s.frame(Duration::from_secs(10))?;
    }
    let before = s.last_id.unwrap();
    // Throttle the host's side to 2 Mbit/s, far below the ~20 Mbit/s it produces.
    h.exec(&[
        "tc", "qdisc", "add", "dev", &vh, "root", "tbf", "rate", "2mbit", "burst", "32kb", "latency", "400ms",
    ])?;
    let throttled = wait_for(Duration::from_secs(30), "drops on the throttled link", || {
        let st = s.host_stats()?;
        Ok((st["frames_dropped"].as_u64().unwrap_or(0) >= 10).then_some(st))
    });
    let st = throttled?;
    eprintln!("while throttled: {st}");
    // Stay throttled, queue at its limit, for a while: the keepalive must keep flowing.
    let full_from = unix_ms();
    let mut worst_rtt = 0f64;
    let mut max_queued = 0;
    for _ in 0..24 {
        std::thread::sleep(Duration::from_millis(500));
        let st = s.host_stats()?;
        assert!(
            st["unresponsive"] == false,
            "the viewer looked dead while the queue was full: {st}"
        );
        worst_rtt = worst_rtt.max(st["rtt_ms"].as_f64().unwrap_or(0.0));
        max_queued = max_queued.max(st["queued_bytes"].as_u64().unwrap_or(0));
    }
    let full_until = unix_ms();
    h.exec(&["tc", "qdisc", "del", "dev", &vh, "root"])?;
    check_recovery(&mut s, before)?;
    let during: Vec<u64> = s
        .pings
        .iter()
        .copied()
        .filter(|&t| t >= full_from && t <= full_until + KEEPALIVE_MS)
        .collect();
    let mut edges = vec![full_from];
    edges.extend(&during);
    let worst_gap = edges.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(u64::MAX);
    eprintln!(
        "queue full for {} ms (max {max_queued} B queued): {} PINGs reached the viewer, worst gap {worst_gap} ms, \
         worst host RTT {worst_rtt:.0} ms",
        full_until - full_from,
        during.len()
    );
    assert!(
        max_queued > CEILING / 2,
        "the queue should have been near its limit (max {max_queued})"
    );
    let dead_after = 3 * KEEPALIVE_MS;
    assert!(during.len() >= 5, "PINGs every 2 s: only {} in 12 s", during.len());
    assert!(
        worst_gap < dead_after,
        "a {dead_after} ms gap would declare the viewer dead: {worst_gap} ms"
    );
    assert!(
        worst_rtt > 0.0 && worst_rtt < dead_after as f64,
        "PONGs answered within the dead-peer timeout: {worst_rtt} ms"
    );
    Ok(())
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
