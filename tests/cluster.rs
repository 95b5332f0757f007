//! Issue 13, item 2: several `holdfast-signal` nodes serving one set of rooms
//! through Debian's redis-server, behind Debian's haproxy (round robin, no
//! stickiness). Nodes are real processes, so one can be killed with SIGKILL.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use holdfast_testkit::{artifacts_dir, start_signal_node, Haproxy, Proc, RedisServer};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A signalling client speaking raw JSON, remembering the last room
/// sequence number it received (what a real client resumes with).
struct Client {
    ws: Ws,
    last_seq: u64,
    seqs: Vec<u64>,
}

impl Client {
    async fn connect(addr: &str) -> anyhow::Result<Self> {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await?;
        Ok(Client {
            ws,
            last_seq: 0,
            seqs: Vec::new(),
        })
    }

    async fn send(&mut self, v: Value) -> anyhow::Result<()> {
        self.ws.send(Message::text(v.to_string())).await?;
        Ok(())
    }

    /// The next server message within `within` (None: the socket closed).
    async fn recv(&mut self, within: Duration) -> anyhow::Result<Option<Value>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| anyhow::anyhow!("no message within {within:?}"))?;
            match frame {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t)?;
                    if let Some(seq) = v["seq"].as_u64() {
                        assert!(
                            seq > self.last_seq,
                            "numbered messages arrive once, in order: {seq} after {}",
                            self.last_seq
                        );
                        self.last_seq = seq;
                        self.seqs.push(seq);
                    }
                    return Ok(Some(v));
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next message of type `kind`, with those read on the way.
    async fn until(&mut self, kind: &str, within: Duration) -> anyhow::Result<(Value, Vec<Value>)> {
        let deadline = Instant::now() + within;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).await? {
                Some(v) if v["type"] == kind => return Ok((v, skipped)),
                Some(v) => skipped.push(v),
                None => anyhow::bail!("the socket closed while waiting for `{kind}`; read {skipped:?}"),
            }
        }
    }

    /// Waits for the server to close this socket; how long it took.
    async fn closed_within(&mut self, within: Duration) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        loop {
            let left = within.saturating_sub(t0.elapsed());
            if self.recv(left).await?.is_none() {
                return Ok(t0.elapsed());
            }
        }
    }
}

/// `GET path` on a node: (status, body).
fn http_get(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    http_get_with(addr, path, "")
}

fn http_get_with(addr: &str, path: &str, headers: &str) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    tcp.read_to_string(&mut raw)?;
    let status = raw.split_whitespace().nth(1).unwrap_or("0").parse()?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn metric(addr: &str, name: &str) -> anyhow::Result<u64> {
    let (_, text) = http_get(addr, "/metrics")?;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no {name} in /metrics of {addr}:\n{text}"))
}

fn healthz(addr: &str) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(&http_get(addr, "/healthz")?.1)?)
}

fn redis_cli(port: u16, args: &[&str]) -> anyhow::Result<String> {
    holdfast_testkit::output_of(
        std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args),
    )
}

fn log_of(p: &Proc) -> String {
    std::fs::read_to_string(&p.log).unwrap_or_default()
}

fn answer(n: u32) -> Value {
    json!({"type": "answer", "sdp": format!("v=0 answer {n}")})
}

/// Host on node A, viewer on node B: the viewer's socket is proxied to A and
/// everything works as on one server. Then A is killed with SIGKILL while
/// the host was away with messages queued for it: B closes the viewer's
/// proxied socket, the viewer comes back through haproxy and B takes the
/// room over from Redis; the host comes back through haproxy too and gets
/// every queued message (those A had, those B took since) once, in order,
/// numbered after everything before, with `reconnection-detected` saying
/// how many. Then Redis restarts: the room keeps working, new rooms and
/// joins work or get a clear error, the node says `redis: down` and back
/// `up`, rewrites its rooms, and nothing panicked.
#[test]
fn a_room_spans_two_nodes_and_survives_one_being_killed_and_a_redis_restart() -> anyhow::Result<()> {
    let art = artifacts_dir("cluster_failover");
    let redis_port = free_port();
    let redis = RedisServer::start(None, redis_port, &art)?;
    let (a_addr, b_addr, lb_addr) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let node_args = [
        "--grace-secs",
        "60",
        "--replay-ttl-secs",
        "120",
        "--replay-messages",
        "40",
        "--trusted-proxy",
        "127.0.0.1",
    ];
    let node_a = start_signal_node(None, &a_addr, &redis.url(), "node-a", &node_args, &art)?;
    let node_b = start_signal_node(None, &b_addr, &redis.url(), "node-b", &node_args, &art)?;
    let _lb = Haproxy::start(None, &lb_addr, &[&a_addr, &b_addr], &art)?;
    let rt = tokio::runtime::Runtime::new()?;
    let long = Duration::from_secs(10);

    rt.block_on(async {
        // The host registers on A; the viewer joins on B.
        let mut host = Client::connect(&a_addr).await?;
        host.send(json!({"type": "register", "gate": "K7QX"})).await?;
        let (reg, _) = host.until("registered", long).await?;
        let (id, host_token) = (reg["id"].as_str().unwrap().to_owned(), reg["token"].clone());
        let mut viewer = Client::connect(&b_addr).await?;
        viewer.send(json!({"type": "join", "id": id, "gate": "K7QX"})).await?;
        let (req, _) = host.until("join-request", long).await?;
        let peer = req["peer_id"].clone();
        host.send(json!({"type": "consent", "peer": peer, "decision": "control"}))
            .await?;
        let (joined, _) = viewer.until("joined", long).await?;
        let viewer_token = joined["token"].clone();
        assert_eq!(joined["control"], true);
        // Both answers announce the server's windows, which clients keep to.
        for answer in [&reg, &joined] {
            assert_eq!(answer["grace_ms"], 60_000, "{answer}");
            assert_eq!(answer["replay"], json!({"messages": 40, "ttl_ms": 120_000}), "{answer}");
        }

        // Relayed both ways across the nodes.
        let t0 = Instant::now();
        host.send(json!({"type": "offer", "to": peer, "sdp": "v=0 offer"}))
            .await?;
        let (offer, _) = viewer.until("offer", long).await?;
        assert_eq!(offer["sdp"], "v=0 offer");
        viewer.send(answer(0)).await?;
        let (ans, _) = host.until("answer", long).await?;
        assert_eq!(ans["sdp"], "v=0 answer 0");
        eprintln!("offer and answer across two nodes: {:?}", t0.elapsed());
        assert_eq!(metric(&a_addr, "holdfast_rooms")?, 1, "the room is held by A");
        assert_eq!(metric(&b_addr, "holdfast_rooms")?, 0);
        assert_eq!(
            metric(&b_addr, "holdfast_proxied_connections")?,
            1,
            "the viewer is proxied"
        );
        assert_eq!(metric(&a_addr, "holdfast_remote_connections")?, 1);
        assert_eq!(healthz(&b_addr)?["redis"], "up");
        // The HTTP API answers on the node holding the room; elsewhere a
        // 503 to retry, never a wrong-token 401 counted against the caller.
        let auth = format!("Authorization: Bearer {}\r\n", viewer_token.as_str().unwrap());
        let path = format!("/rooms/{id}/reconnection-state");
        assert_eq!(http_get_with(&a_addr, &path, &auth)?.0, 200);
        let (status, body) = http_get_with(&b_addr, &path, &auth)?;
        assert_eq!(status, 503, "{body}");
        assert_eq!(metric(&b_addr, "holdfast_wrong_credentials_total")?, 0);
        let before_kill = viewer.last_seq.max(host.last_seq);

        // The host steps away; the viewer sends two messages A queues for it.
        let host_seen = host.last_seq;
        drop(host);
        viewer.until("peer-state", long).await?;
        for n in 1..=2 {
            viewer.send(answer(n)).await?;
        }
        // Let A write them through, then kill it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        node_a.signal("KILL")?;
        let closed = viewer.closed_within(Duration::from_secs(15)).await?;
        eprintln!("node A killed: B closed the viewer's proxied socket after {closed:?}");

        // The viewer comes back through haproxy (A is down: B) with its token.
        let t_back = Instant::now();
        let mut viewer2 = Client::connect(&lb_addr).await?;
        viewer2.last_seq = viewer.last_seq;
        let resume = json!({"type": "join", "id": id, "token": viewer_token, "last_seq": viewer.last_seq});
        viewer2.send(resume).await?;
        let (rejoined, _) = viewer2.until("joined", long).await?;
        assert_eq!(rejoined["control"], true, "same rights as before");
        eprintln!("viewer back on B after {:?}", t_back.elapsed());
        assert_eq!(metric(&b_addr, "holdfast_rooms")?, 1, "B carries the room on");
        assert_eq!(metric(&b_addr, "holdfast_rooms_taken_over_total")?, 1);
        for n in 3..=4 {
            viewer2.send(answer(n)).await?;
        }

        // The host comes back through haproxy: everything queued, once, in order.
        let mut host2 = Client::connect(&lb_addr).await?;
        host2.last_seq = host_seen;
        let resume = json!({"type": "register", "gate": "K7QX", "token": host_token, "last_seq": host_seen});
        host2.send(resume).await?;
        let (registered, before) = host2.until("registered", long).await?;
        assert_eq!(registered["id"].as_str(), Some(id.as_str()));
        assert_eq!(registered["resumed"], true);
        let mut got = Vec::new();
        // Said first, then the answer, then the replay.
        let mut detected = before.into_iter().find(|m| m["type"] == "reconnection-detected");
        while got.len() < 4 || detected.is_none() {
            let m = host2
                .recv(long)
                .await
                .map_err(|e| anyhow::anyhow!("{e}: replayed so far {got:?}, {detected:?}"))?
                .ok_or_else(|| anyhow::anyhow!("host closed"))?;
            match m["type"].as_str() {
                Some("answer") => got.push((m["seq"].as_u64().unwrap(), m["sdp"].as_str().unwrap().to_owned())),
                Some("reconnection-detected") => detected = Some(m),
                _ => {}
            }
        }
        let sdps: Vec<&str> = got.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(sdps, ["v=0 answer 1", "v=0 answer 2", "v=0 answer 3", "v=0 answer 4"]);
        assert!(
            got[0].0 > before_kill,
            "numbers keep increasing: {got:?} after {before_kill}"
        );
        let detected = detected.unwrap();
        assert!(
            detected["missed_message_count"].as_u64() >= Some(4),
            "reports what was missed: {detected}"
        );
        assert_eq!(detected["replay_complete"], true, "nothing lost: {detected}");
        let away = detected["disconnect_duration"].as_f64().unwrap_or(0.0);
        assert!(
            away >= closed.as_secs_f64(),
            "the host's time away runs on across the move (not restarted): {away} s"
        );
        eprintln!("host resumed on B; replayed {got:?}; {detected}");

        // Still one room, relaying both ways on B.
        host2
            .send(json!({"type": "offer", "to": peer, "sdp": "v=0 offer 2"}))
            .await?;
        assert_eq!(viewer2.until("offer", long).await?.0["sdp"], "v=0 offer 2");

        // Redis restarts (losing everything).
        drop(redis);
        let t_down = Instant::now();
        while healthz(&b_addr)?["redis"] != "down" {
            anyhow::ensure!(t_down.elapsed() < long, "B never noticed Redis was down");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(metric(&b_addr, "holdfast_redis_up")?, 0);
        // The room works meanwhile.
        viewer2.send(answer(5)).await?;
        assert_eq!(host2.until("answer", long).await?.0["sdp"], "v=0 answer 5");
        // A new room can be made; a join to a room this node does not hold
        // gets a clear error (not "wrong code").
        let mut newcomer = Client::connect(&b_addr).await?;
        newcomer.send(json!({"type": "register", "gate": "ABCD"})).await?;
        let (reg2, _) = newcomer.until("registered", long).await?;
        let mut stranger = Client::connect(&b_addr).await?;
        stranger
            .send(json!({"type": "join", "id": "123456789", "gate": "ABCD"}))
            .await?;
        let (e, _) = stranger.until("error", long).await?;
        assert_eq!(e["code"], "session-unavailable", "{e}");
        assert!(e["retry_after_ms"].as_u64().is_some(), "{e}");

        let redis = RedisServer::start(None, redis_port, &art)?;
        let t_up = Instant::now();
        while healthz(&b_addr)?["redis"] != "up" {
            anyhow::ensure!(t_up.elapsed() < long, "B never noticed Redis was back");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Both rooms are written back, held by B.
        let t_rw = Instant::now();
        for room in [id.as_str(), reg2["id"].as_str().unwrap()] {
            loop {
                let owner = redis_cli(redis_port, &["GET", &format!("hf:room:{room}:owner")])?;
                let state = redis_cli(redis_port, &["EXISTS", &format!("hf:room:{room}:state")])?;
                if owner.trim() == "node-b" && state.trim() == "1" {
                    break;
                }
                anyhow::ensure!(t_rw.elapsed() < long, "room {room} not rewritten: {owner} {state}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        viewer2.send(answer(6)).await?;
        assert_eq!(host2.until("answer", long).await?.0["sdp"], "v=0 answer 6");
        let mut late = Client::connect(&lb_addr).await?;
        late.send(json!({"type": "join", "id": reg2["id"], "gate": "ABCD"}))
            .await?;
        newcomer.until("join-request", long).await?;
        drop(redis);
        anyhow::Ok(())
    })?;
    for p in [&node_a, &node_b] {
        let log = log_of(p);
        assert!(!log.contains("panicked"), "{}: {log}", p.name);
    }
    Ok(())
}

const SERVER_IP: &str = "10.78.0.1";
const HOST_IP: &str = "10.78.0.2";
const VIEWER_IP: &str = "10.78.0.3";
const W: f64 = 1280.0;
const H: f64 = 720.0;

fn near(a: (i32, i32), b: (i32, i32)) -> bool {
    (a.0 - b.0).abs() <= 2 && (a.1 - b.1).abs() <= 2
}

/// Frames the Rust viewer reported within `d`, and the other events it said.
fn frames_within(p: &Proc, d: Duration) -> (usize, Vec<Value>) {
    let until = Instant::now() + d;
    let (mut n, mut other) = (0, Vec::new());
    while let Ok(ev) = p.json_line(until.saturating_duration_since(Instant::now())) {
        if ev["event"] == "frame" {
            n += 1;
        } else {
            other.push(ev);
        }
        if Instant::now() >= until {
            break;
        }
    }
    (n, other)
}

/// The real thing: `holdfast-host` sharing an X display from its own
/// namespace, a Rust viewer and Chromium from another, and two nodes, Redis
/// and haproxy in a third. haproxy sends the host to node A and the viewers
/// to node B (each frontend prefers one node and falls back to the other),
/// so the viewers' signalling is proxied to A. Video and input work; A is
/// killed with SIGKILL: the video never stops (it does not go through the
/// server), the host resumes on B, and afterwards the room still admits a
/// new viewer and relays its signalling. Then Redis restarts: the media
/// keeps flowing and another new viewer is admitted.
#[test]
fn host_on_one_node_viewers_on_another_and_the_hosts_node_killed() -> anyhow::Result<()> {
    use holdfast_testkit::{
        start_host, start_pattern, start_probe_viewer, wait_for, xdotool_pointer, Browser, Lan, Netns, Xvfb,
    };
    let art = artifacts_dir("cluster_media");
    let lan = Lan::new()?;
    let (server_ns, host_ns, viewer_ns) = (Netns::new()?, Netns::new()?, Netns::new()?);
    let _links = (
        lan.attach(&server_ns, SERVER_IP)?,
        lan.attach(&host_ns, HOST_IP)?,
        lan.attach(&viewer_ns, VIEWER_IP)?,
    );
    let redis_port = 6390;
    let redis = RedisServer::start(Some(&server_ns), redis_port, &art)?;
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let (a_addr, b_addr) = (format!("{SERVER_IP}:8081"), format!("{SERVER_IP}:8082"));
    let (host_front, viewer_front) = (format!("{SERVER_IP}:8080"), format!("{SERVER_IP}:8090"));
    let node_args = ["--grace-secs", "60", "--trusted-proxy", SERVER_IP];
    let node_a = start_signal_node(Some(&server_ns), &a_addr, &redis_url, "node-a", &node_args, &art)?;
    let node_b = start_signal_node(Some(&server_ns), &b_addr, &redis_url, "node-b", &node_args, &art)?;
    let _lb = Haproxy::start_failover(
        Some(&server_ns),
        &[(&host_front, &a_addr, &b_addr), (&viewer_front, &b_addr, &a_addr)],
        &art,
    )?;
    let metric_in = |addr: &str, name: &str| -> anyhow::Result<u64> {
        let out = server_ns.exec(&["curl", "-s", &format!("http://{addr}/metrics")])?;
        out.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no {name} at {addr}"))
    };

    let x = Xvfb::start(Some(&host_ns), W as u32, H as u32, &art)?;
    let _pattern = start_pattern(Some(&host_ns), &x.display, &art)?;
    let bind = format!("{HOST_IP}:0");
    let (host, room) = start_host(
        &host_ns,
        &format!("http://{host_front}"),
        &["--log", "info,holdfast_peer=debug", "--ice-bind", &bind],
        Some(&x.display),
        &art,
    )?;
    let vbind = format!("{VIEWER_IP}:0");
    let viewer_url = format!("http://{viewer_front}");
    let mut viewer = start_probe_viewer(
        &viewer_ns,
        &viewer_url,
        &room,
        &["--ice-bind", &vbind, "--frame-every", "1"],
        &art,
    )?;
    let (joined, _) = viewer.next_event(&["joined", "refused", "closed"], Duration::from_secs(30))?;
    anyhow::ensure!(joined["event"] == "joined", "{joined}");
    viewer.next_event(&["frame"], Duration::from_secs(20))?;
    let page = room["viewer_url"]
        .as_str()
        .unwrap_or_default()
        .replace(&host_front, &viewer_front);
    let mut browser = Browser::start_trusting(Some(&viewer_ns), &art, &viewer_url)?;
    browser.watch(&page, &art)?;
    anyhow::ensure!(metric_in(&a_addr, "holdfast_rooms")? == 1, "the host is on A");
    anyhow::ensure!(metric_in(&b_addr, "holdfast_rooms")? == 0);
    let proxied = metric_in(&b_addr, "holdfast_proxied_connections")?;
    anyhow::ensure!(proxied == 2, "both viewers' signalling goes through B to A: {proxied}");

    // Input from both viewers lands.
    let pointer = || xdotool_pointer(Some(&host_ns), &x.display);
    let input_lands = |viewer: &mut Proc, browser: &mut Browser, (fx, fy): (f64, f64)| -> anyhow::Result<()> {
        viewer.write_line(&format!(r#"{{"type":"pointer-move","x":{fx},"y":{fy}}}"#))?;
        let want = ((fx * W) as i32, (fy * H) as i32);
        wait_for(Duration::from_secs(5), "the Rust viewer's pointer move", || {
            Ok(near(pointer()?, want).then_some(()))
        })?;
        let ((cx, cy), want_web) = browser.point_on_picture(1.0 - fx, 1.0 - fy, W, H)?;
        browser.mouse("move", cx, cy)?;
        wait_for(Duration::from_secs(5), "Chromium's pointer move", || {
            Ok(near(pointer()?, want_web).then_some(()))
        })?;
        Ok(())
    };
    input_lands(&mut viewer, &mut browser, (0.25, 0.75))?;
    eprintln!("host on A, viewers on B: video and input from both work");

    // SIGKILL node A. The video keeps coming the whole time.
    let decoded_before = browser.stats()?["framesDecoded"].as_u64().unwrap_or(0);
    node_a.signal("KILL")?;
    let killed = Instant::now();
    let mut quiet_seconds = 0;
    let mut events = Vec::new();
    while killed.elapsed() < Duration::from_secs(15) {
        let (frames, other) = frames_within(&viewer, Duration::from_secs(1));
        quiet_seconds += usize::from(frames == 0);
        events.extend(other);
    }
    eprintln!("Rust viewer during the failover: {events:?}");
    anyhow::ensure!(
        quiet_seconds <= 1,
        "the video stalled for {quiet_seconds} s while a server died"
    );
    let decoded_after = browser.stats()?["framesDecoded"].as_u64().unwrap_or(0);
    anyhow::ensure!(
        decoded_after > decoded_before + 100,
        "Chromium kept decoding: {decoded_before} -> {decoded_after}"
    );
    // The host resumed on B, which holds the room now.
    let took_over = wait_for(Duration::from_secs(30), "the room to be held by B", || {
        Ok(
            (metric_in(&b_addr, "holdfast_rooms")? == 1 && metric_in(&b_addr, "holdfast_proxied_connections")? == 0)
                .then(|| killed.elapsed()),
        )
    })?;
    let (restored, _) = host.next_event(&["signal-restored"], Duration::from_secs(30))?;
    eprintln!("node A killed: room on B after {took_over:?}; host: {restored}");
    input_lands(&mut viewer, &mut browser, (0.6, 0.4))?;

    // The room on B admits a newcomer: join request relayed to the host on B,
    // offer and answer relayed, video decoded.
    let newcomer = |name: &str| -> anyhow::Result<()> {
        let mut cmd = viewer_ns.command(holdfast_testkit::bin("holdfast-probe-viewer"));
        cmd.args([
            "--signal",
            &format!("http://{host_front}"),
            "--id",
            room["id"].as_str().unwrap_or_default(),
        ])
        .args([
            "--code",
            room["code"].as_str().unwrap_or_default(),
            "--ice-bind",
            &vbind,
            "--frame-every",
            "1",
        ]);
        let p = Proc::spawn(name, cmd, &art)?;
        let (joined, _) = p.next_event(&["joined", "refused", "closed"], Duration::from_secs(30))?;
        anyhow::ensure!(joined["event"] == "joined", "{name}: {joined}");
        p.next_event(&["frame"], Duration::from_secs(20))?;
        Ok(())
    };
    newcomer("viewer-after-failover")?;
    eprintln!("a new viewer joined the room on B and decodes");

    // Redis restarts: media keeps flowing; a newcomer still gets in (the
    // room is held by the node it reaches, in memory).
    drop(redis);
    let (frames, _) = frames_within(&viewer, Duration::from_secs(3));
    anyhow::ensure!(frames > 10, "video while Redis is down: {frames} frames in 3 s");
    newcomer("viewer-redis-down")?;
    let _redis = RedisServer::start(Some(&server_ns), redis_port, &art)?;
    wait_for(Duration::from_secs(15), "B to see Redis back", || {
        Ok((metric_in(&b_addr, "holdfast_redis_up")? == 1).then_some(()))
    })?;
    let (frames, _) = frames_within(&viewer, Duration::from_secs(3));
    anyhow::ensure!(frames > 10, "video after Redis came back: {frames} frames in 3 s");
    input_lands(&mut viewer, &mut browser, (0.3, 0.3))?;
    for p in [&node_a, &node_b, &host] {
        let log = log_of(p);
        anyhow::ensure!(!log.contains("panicked"), "{}: panicked", p.name);
    }
    Ok(())
}

/// A Redis password given in `--redis` never reaches the log, including
/// when the node cannot start because of it (this Redis has no password:
/// it refuses the AUTH).
#[test]
fn a_redis_password_stays_out_of_the_nodes_log() -> anyhow::Result<()> {
    let art = artifacts_dir("cluster_secret");
    let redis_port = free_port();
    let _redis = RedisServer::start(None, redis_port, &art)?;
    let secret = "hf-redis-pass-93f1c";
    let mut cmd = std::process::Command::new(holdfast_testkit::bin("holdfast-signal"));
    cmd.args(["--listen", &format!("127.0.0.1:{}", free_port()), "--no-tls"])
        .args(["--redis", &format!("redis://:{secret}@127.0.0.1:{redis_port}")])
        .args(["--log", "debug"]);
    let out = cmd.output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "the node cannot start with a refused AUTH:\n{text}"
    );
    assert!(
        text.contains(&format!("redis://127.0.0.1:{redis_port}")),
        "it names the server:\n{text}"
    );
    assert!(!text.contains(secret), "the password was logged:\n{text}");
    assert!(text.contains("authentication failed"), "it says why:\n{text}");
    Ok(())
}
