//! `holdfast-bench cluster`: the signalling cluster under load (issue 13,
//! acceptance 3). One Debian redis-server, nodes A and B serving 10,000 rooms
//! (a host and a viewer each, half of the rooms with host and viewer on
//! different nodes, so their messages cross Redis pub/sub), and node C
//! standing by; load-generating worker processes send one message a second
//! per room, alternately host to viewer and viewer to host, and time each
//! from send to receipt. Then node A is killed with SIGKILL: its clients
//! resume on C, the ones B proxied to A resume on B, and every message sent
//! is counted on arrival (lost must be 0, duplicates 0).
//!
//! Why a standby node: a process here may hold at most 20,000 descriptors
//! (a hard limit root cannot raise), so one survivor could not hold all
//! 20,000 clients; N+1 is also how one would run it.
//!
//! Clients behave as Holdfast's do: they number their messages, resume with
//! their token and the last room number they saw, and resend what the
//! server says it did not take (`reconnection-detected.last_received`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use holdfast_testkit::{artifacts_dir, start_signal_node, Proc, RedisServer};

use crate::cpu_seconds;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Latency histogram buckets: 50 µs wide, up to 2 s (beyond: the last).
const BUCKET_US: u64 = 50;
const BUCKETS: usize = 40_000;
/// Messages created in the first seconds of the steady phase are not timed
/// (connections still settling).
const WARMUP: Duration = Duration::from_secs(5);
/// Client messages kept for resending after a reconnect.
const RING: usize = 32;

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("{name} needs a value")),
        None => Ok(default),
    }
}

fn redis_used_memory(port: u16) -> Result<u64> {
    let out = holdfast_testkit::output_of(std::process::Command::new("redis-cli").args([
        "-p",
        &port.to_string(),
        "INFO",
        "memory",
    ]))?;
    out.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow!("no used_memory in {out}"))
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Report {
    /// Sparse histograms: (bucket, count).
    same_node: Vec<(usize, u64)>,
    cross_node: Vec<(usize, u64)>,
    sent: u64,
    received: u64,
    lost: u64,
    duplicates: u64,
    /// Unix ms at which each reconnection after the kill completed.
    back_at_ms: Vec<u64>,
    /// Clients that had not come back by the end.
    not_back: u64,
    errors: Vec<String>,
}

fn percentile(hist: &[u64], p: f64) -> f64 {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return f64::NAN;
    }
    let want = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
    let mut acc = 0;
    for (i, n) in hist.iter().enumerate() {
        acc += n;
        if acc >= want {
            return ((i as u64 + 1) * BUCKET_US) as f64 / 1000.0;
        }
    }
    f64::NAN
}

/// The coordinator: starts Redis and the nodes, the workers, kills node A,
/// and prints the figures.
pub fn run(args: &[String]) -> Result<()> {
    let rooms: usize = arg(args, "--rooms", 10_000)?;
    let workers: usize = arg(args, "--workers", 4)?;
    let steady: u64 = arg(args, "--steady-secs", 60)?;
    let after: u64 = arg(args, "--after-secs", 40)?;
    let art = artifacts_dir("bench_cluster");
    let redis_port = free_port()?;
    let redis = RedisServer::start(None, redis_port, &art)?;
    let base_memory = redis_used_memory(redis_port)?;
    let node_args = [
        "--log",
        "warn",
        "--max-conns-per-addr",
        "100000",
        "--max-conns",
        "19000",
        "--max-rooms-per-addr",
        "100000",
        "--max-rooms",
        "100000",
    ];
    let mut nodes = Vec::new();
    let mut addrs = Vec::new();
    for name in ["node-a", "node-b", "node-c"] {
        let addr = format!("127.0.0.1:{}", free_port()?);
        nodes.push(start_signal_node(None, &addr, &redis.url(), name, &node_args, &art)?);
        addrs.push(addr);
    }
    println!(
        "cluster bench: {rooms} rooms (host + viewer each) on nodes A and B, C standing by, one redis-server, {workers} load processes"
    );
    let exe = std::env::current_exe()?;
    let per = rooms.div_ceil(workers);
    let setup_started = Instant::now();
    let mut procs = Vec::new();
    for w in 0..workers {
        let count = per.min(rooms - (w * per).min(rooms));
        let mut cmd = std::process::Command::new(&exe);
        cmd.args([
            "cluster-worker",
            "--rooms",
            &count.to_string(),
            "--first",
            &(w * per).to_string(),
        ])
        .args(["--total", &rooms.to_string()])
        .args(["--a", &addrs[0], "--b", &addrs[1], "--c", &addrs[2]]);
        procs.push(Proc::spawn(&format!("bench-worker-{w}"), cmd, &art)?);
    }
    for p in &procs {
        let ready = p.json_line(Duration::from_secs(600))?;
        anyhow::ensure!(ready["ready"] == true, "{}: {ready}", p.name);
    }
    let setup = setup_started.elapsed();
    println!("setup: {rooms} rooms made and joined in {:.1} s", setup.as_secs_f64());
    let start = unix_ms() + 1000;
    let kill = start + steady * 1000;
    let end = kill + after * 1000;
    let plan = json!({"start_ms": start, "kill_ms": kill, "end_ms": end}).to_string();
    for p in &mut procs {
        p.write_line(&plan)?;
    }
    // Redis memory once the replay buffers have filled (50 messages at 1/s).
    std::thread::sleep(Duration::from_millis(
        kill.saturating_sub(unix_ms()).saturating_sub(2000),
    ));
    let loaded_memory = redis_used_memory(redis_port)?;
    let cpu_before: Vec<f64> = nodes.iter().map(|n| cpu_seconds(n.pid()).unwrap_or(0.0)).collect();
    std::thread::sleep(Duration::from_millis(kill.saturating_sub(unix_ms())));
    let cpu_after: Vec<f64> = nodes.iter().map(|n| cpu_seconds(n.pid()).unwrap_or(0.0)).collect();
    nodes[0].signal("KILL")?;
    let killed_at = unix_ms();
    println!("node A killed with SIGKILL at +{} s", steady);

    let mut same = vec![0u64; BUCKETS];
    let mut cross = vec![0u64; BUCKETS];
    let mut total = Report::default();
    for p in &procs {
        let wait = Duration::from_millis(end.saturating_sub(unix_ms())) + Duration::from_secs(120);
        let r: Report = serde_json::from_value(p.json_line(wait)?)?;
        for (i, n) in r.same_node {
            same[i] += n;
        }
        for (i, n) in r.cross_node {
            cross[i] += n;
        }
        total.sent += r.sent;
        total.received += r.received;
        total.lost += r.lost;
        total.duplicates += r.duplicates;
        total.not_back += r.not_back;
        total.back_at_ms.extend(r.back_at_ms);
        total.errors.extend(r.errors.into_iter().take(5));
    }
    let window_secs = 2.0f64;
    let cpu: Vec<String> = cpu_before
        .iter()
        .zip(&cpu_after)
        .map(|(a, b)| format!("{:.0}%", (b - a) / window_secs * 100.0))
        .collect();
    let timed: u64 = same.iter().chain(cross.iter()).sum();
    let mut all: Vec<u64> = same.clone();
    for (a, c) in all.iter_mut().zip(&cross) {
        *a += c;
    }
    println!(
        "relay latency, steady load ({timed} messages timed, {:.0}/s): all p50 {:.2} ms, p99 {:.2} ms; \
         same node p50 {:.2} / p99 {:.2} ms; across nodes p50 {:.2} / p99 {:.2} ms",
        timed as f64 / (steady as f64 - WARMUP.as_secs_f64()),
        percentile(&all, 50.0),
        percentile(&all, 99.0),
        percentile(&same, 50.0),
        percentile(&same, 99.0),
        percentile(&cross, 50.0),
        percentile(&cross, 99.0),
    );
    println!(
        "redis memory: {:.1} MiB for {rooms} rooms with full replay buffers: {:.0} bytes per room",
        (loaded_memory - base_memory) as f64 / 1048576.0,
        (loaded_memory - base_memory) as f64 / rooms as f64
    );
    println!("node CPU in the last 2 s before the kill (A, B, C): {}", cpu.join(", "));
    let back = total.back_at_ms.iter().max().map(|m| m.saturating_sub(killed_at));
    let mut backs: Vec<u64> = total.back_at_ms.iter().map(|m| m.saturating_sub(killed_at)).collect();
    backs.sort_unstable();
    let median = backs.get(backs.len() / 2).copied().unwrap_or(0);
    println!(
        "node failure: {} clients reconnected, the last {} ms after the kill (median {median} ms); {} not back; \
         messages sent {}, received {}, lost {}, duplicated {}",
        backs.len(),
        back.map_or("-".into(), |b| b.to_string()),
        total.not_back,
        total.sent,
        total.received,
        total.lost,
        total.duplicates
    );
    for e in &total.errors {
        println!("  worker error: {e}");
    }
    for n in &nodes[1..] {
        let log = std::fs::read_to_string(&n.log).unwrap_or_default();
        anyhow::ensure!(!log.contains("panicked"), "{} panicked", n.name);
    }
    anyhow::ensure!(
        total.lost == 0 && total.not_back == 0,
        "messages lost or clients stranded"
    );
    Ok(())
}

/// What every room task of a worker adds to.
struct Stats {
    same: Vec<u64>,
    cross: Vec<u64>,
    sent: u64,
    received: u64,
    duplicates: u64,
    back_at_ms: Vec<u64>,
    errors: Vec<String>,
    /// Per room and direction: messages sent, and those received.
    sent_ids: HashMap<(usize, bool), u64>,
    got_ids: HashMap<(usize, bool), HashSet<u64>>,
}

#[derive(Clone, Copy)]
struct Plan {
    start_ms: u64,
    kill_ms: u64,
    end_ms: u64,
}

/// One side of a room: a socket that resumes elsewhere when it drops.
struct Side {
    /// Nodes to try, in order.
    order: Vec<String>,
    ws: Option<Ws>,
    token: Value,
    last_seq: u64,
    cseq: u64,
    /// Sent messages, kept to resend what the server did not take.
    ring: VecDeque<(u64, Value)>,
}

impl Side {
    async fn send(&mut self, mut msg: Value) -> Result<()> {
        self.cseq += 1;
        msg["seq"] = self.cseq.into();
        self.ring.push_back((self.cseq, msg.clone()));
        if self.ring.len() > RING {
            self.ring.pop_front();
        }
        if let Some(ws) = &mut self.ws {
            if ws.send(Message::text(msg.to_string())).await.is_err() {
                self.ws = None;
            }
        }
        Ok(())
    }
}

async fn connect(addr: &str) -> Result<Ws> {
    // Small buffers, as the server's: 20,000 sockets with tungstenite's
    // 128 KiB defaults would take 2.5 GiB.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/ws"), Some(config), false),
    )
    .await
    .map_err(|_| anyhow!("connect timed out"))??;
    Ok(ws)
}

/// Reads the next JSON text message (None: closed).
async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) => return serde_json::from_str(&t).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

async fn until(ws: &mut Ws, kind: &str) -> Result<(Value, Vec<Value>)> {
    let mut skipped = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(60), next(ws))
            .await
            .map_err(|_| anyhow!("no {kind} within 60 s"))?
            .ok_or_else(|| anyhow!("closed while waiting for {kind}"))?;
        if m["type"] == kind {
            return Ok((m, skipped));
        }
        if m["type"] == "error" {
            bail!("error while waiting for {kind}: {m}");
        }
        skipped.push(m);
    }
}

/// Worker: its share of rooms, set up, then driven to the plan.
pub fn worker(args: &[String]) -> Result<()> {
    let rooms: usize = arg(args, "--rooms", 0)?;
    let first: usize = arg(args, "--first", 0)?;
    let total: usize = arg(args, "--total", rooms)?;
    let addr = |name: &str| -> Result<String> { arg(args, name, String::new()) };
    let nodes = [addr("--a")?, addr("--b")?, addr("--c")?];
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let stats = Arc::new(Mutex::new(Stats {
            same: vec![0; BUCKETS],
            cross: vec![0; BUCKETS],
            sent: 0,
            received: 0,
            duplicates: 0,
            back_at_ms: Vec::new(),
            errors: Vec::new(),
            sent_ids: HashMap::new(),
            got_ids: HashMap::new(),
        }));
        let (plan_tx, plan_rx) = tokio::sync::watch::channel::<Option<Plan>>(None);
        let epoch = Instant::now();
        let setup_limit = Arc::new(tokio::sync::Semaphore::new(100));
        let mut ready = Vec::new();
        let mut tasks = Vec::new();
        for r in first..first + rooms {
            let (tx, rx) = tokio::sync::oneshot::channel();
            ready.push(rx);
            // Hosts alternate A/B; viewers too, shifted: half the rooms cross nodes.
            let host_node = r % 2;
            let viewer_node = (r / 2) % 2;
            let order = |n: usize| vec![nodes[n].clone(), nodes[2].clone(), nodes[1 - n].clone()];
            let ctx = RoomCtx {
                index: r,
                phase_ms: (r as u64 * 1000) / total.max(1) as u64,
                cross: host_node != viewer_node,
                host_order: order(host_node),
                viewer_order: order(viewer_node),
                stats: stats.clone(),
                epoch,
            };
            let mut plan_rx = plan_rx.clone();
            let limit = setup_limit.clone();
            tasks.push(tokio::spawn(async move {
                let set = {
                    let _permit = limit.acquire().await;
                    setup(&ctx).await
                };
                let (host, viewer, viewer_peer) = match set {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = tx.send(Ok(()));
                let plan = loop {
                    if let Some(p) = *plan_rx.borrow() {
                        break p;
                    }
                    if plan_rx.changed().await.is_err() {
                        return;
                    }
                };
                if let Err(e) = drive(&ctx, plan, host, viewer, viewer_peer).await {
                    ctx.stats
                        .lock()
                        .unwrap()
                        .errors
                        .push(format!("room {}: {e:#}", ctx.index));
                }
            }));
        }
        let mut failed = 0;
        for rx in ready {
            if let Ok(Err(e)) = rx.await {
                failed += 1;
                if failed < 5 {
                    eprintln!("setup failed: {e}");
                }
            }
        }
        anyhow::ensure!(failed == 0, "{failed} rooms could not be set up");
        println!("{}", json!({"ready": true}));
        // The plan comes on stdin.
        let line = tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            std::io::stdin().read_line(&mut s).map(|_| s)
        })
        .await??;
        let v: Value = serde_json::from_str(&line)?;
        let plan = Plan {
            start_ms: v["start_ms"].as_u64().context("start_ms")?,
            kill_ms: v["kill_ms"].as_u64().context("kill_ms")?,
            end_ms: v["end_ms"].as_u64().context("end_ms")?,
        };
        plan_tx.send(Some(plan))?;
        for t in tasks {
            let _ = t.await;
        }
        let s = stats.lock().unwrap();
        let sparse = |h: &Vec<u64>| -> Vec<(usize, u64)> {
            h.iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| (i, *n))
                .collect()
        };
        let mut lost = 0;
        for (key, n) in &s.sent_ids {
            let got = s
                .got_ids
                .get(key)
                .map_or(0, |g| (1..=*n).filter(|i| g.contains(i)).count() as u64);
            lost += n - got;
        }
        let report = Report {
            same_node: sparse(&s.same),
            cross_node: sparse(&s.cross),
            sent: s.sent,
            received: s.received,
            lost,
            duplicates: s.duplicates,
            back_at_ms: s.back_at_ms.clone(),
            not_back: 0,
            errors: s.errors.clone(),
        };
        println!("{}", serde_json::to_string(&report)?);
        anyhow::Ok(())
    })
}

struct RoomCtx {
    index: usize,
    phase_ms: u64,
    cross: bool,
    host_order: Vec<String>,
    viewer_order: Vec<String>,
    stats: Arc<Mutex<Stats>>,
    epoch: Instant,
}

const GATE: &str = "K7QX";

/// A room: the host registers, the viewer joins, the host consents.
async fn setup(ctx: &RoomCtx) -> Result<(Side, Side, Value)> {
    let mut hws = connect(&ctx.host_order[0]).await?;
    hws.send(Message::text(json!({"type": "register", "gate": GATE}).to_string()))
        .await?;
    let (reg, _) = until(&mut hws, "registered").await?;
    let id = reg["id"].clone();
    let mut vws = connect(&ctx.viewer_order[0]).await?;
    vws.send(Message::text(
        json!({"type": "join", "id": id, "gate": GATE}).to_string(),
    ))
    .await?;
    let (req, _) = until(&mut hws, "join-request").await?;
    let peer = req["peer_id"].clone();
    let consent = json!({"type": "consent", "peer": peer, "decision": "control"});
    hws.send(Message::text(consent.to_string())).await?;
    let (joined, _) = until(&mut vws, "joined").await?;
    let side = |order: &Vec<String>, ws, token: &Value| Side {
        order: order.clone(),
        ws: Some(ws),
        token: token.clone(),
        last_seq: 0,
        cseq: 0,
        ring: VecDeque::new(),
    };
    let mut host = side(&ctx.host_order, hws, &reg["token"]);
    host.token = json!({"id": id, "token": reg["token"]});
    let mut viewer = side(&ctx.viewer_order, vws, &joined["token"]);
    viewer.token = json!({"id": id, "token": joined["token"]});
    Ok((host, viewer, peer))
}

/// Sends on the plan's schedule and reads both sides until the end; a side
/// that drops resumes on the next node in its list.
async fn drive(ctx: &RoomCtx, plan: Plan, mut host: Side, mut viewer: Side, peer: Value) -> Result<()> {
    let first_send = plan.start_ms + ctx.phase_ms;
    tokio::time::sleep(Duration::from_millis(first_send.saturating_sub(unix_ms()))).await;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut k: u64 = 0;
    let drain_until = plan.end_ms + 8000;
    let drained = tokio::time::sleep(Duration::from_millis(drain_until.saturating_sub(unix_ms())));
    tokio::pin!(drained);
    loop {
        if host.ws.is_none() {
            resume(ctx, &plan, &mut host, true).await?;
        }
        if viewer.ws.is_none() {
            resume(ctx, &plan, &mut viewer, false).await?;
        }
        let now = unix_ms();
        if now >= drain_until {
            return Ok(());
        }
        let sending = now < plan.end_ms;
        let hw = host.ws.as_mut().expect("resumed");
        let vw = viewer.ws.as_mut().expect("resumed");
        tokio::select! {
            _ = tick.tick(), if sending => {
                k += 1;
                let from_host = k % 2 == 1;
                let key = (ctx.index, from_host);
                let n = {
                    let mut s = ctx.stats.lock().unwrap();
                    s.sent += 1;
                    let n = s.sent_ids.entry(key).or_insert(0);
                    *n += 1;
                    *n
                };
                let t_us = ctx.epoch.elapsed().as_micros() as u64;
                let sdp = format!("b {n} {t_us} {}", unix_ms());
                if from_host {
                    host.send(json!({"type": "offer", "to": peer, "sdp": sdp})).await?;
                } else {
                    viewer.send(json!({"type": "answer", "sdp": sdp})).await?;
                }
            }
            m = next(hw) => match m {
                Some(m) => on_message(ctx, &plan, &mut host, m, false),
                None => host.ws = None,
            },
            m = next(vw) => match m {
                Some(m) => on_message(ctx, &plan, &mut viewer, m, true),
                None => viewer.ws = None,
            },
            _ = &mut drained => return Ok(()),
        }
    }
}

/// A message a side received: relayed ones are timed and counted.
fn on_message(ctx: &RoomCtx, plan: &Plan, side: &mut Side, m: Value, from_host: bool) {
    if let Some(seq) = m["seq"].as_u64() {
        side.last_seq = side.last_seq.max(seq);
    }
    let kind = if from_host { "offer" } else { "answer" };
    if m["type"] != kind {
        return;
    }
    let Some(sdp) = m["sdp"].as_str() else { return };
    let parts: Vec<u64> = sdp.split_whitespace().skip(1).filter_map(|p| p.parse().ok()).collect();
    let [n, t_us, sent_ms] = parts[..] else { return };
    let mut s = ctx.stats.lock().unwrap();
    s.received += 1;
    if !s.got_ids.entry((ctx.index, from_host)).or_default().insert(n) {
        s.duplicates += 1;
        return;
    }
    let timed = sent_ms >= plan.start_ms + WARMUP.as_millis() as u64 && sent_ms < plan.kill_ms;
    if timed {
        let us = (ctx.epoch.elapsed().as_micros() as u64).saturating_sub(t_us);
        let b = ((us / BUCKET_US) as usize).min(BUCKETS - 1);
        if ctx.cross {
            s.cross[b] += 1;
        } else {
            s.same[b] += 1;
        }
    }
}

/// The side's socket dropped: resume on the first node that answers, with
/// the token and the last number seen; resend what the server did not take.
async fn resume(ctx: &RoomCtx, plan: &Plan, side: &mut Side, host: bool) -> Result<()> {
    let started = Instant::now();
    let mut attempt = 0usize;
    loop {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "could not resume in 120 s"
        );
        let addr = side.order[attempt % side.order.len()].clone();
        attempt += 1;
        let Ok(mut ws) = connect(&addr).await else {
            tokio::time::sleep(Duration::from_millis(100 + rand::random::<u64>() % 200)).await;
            continue;
        };
        let msg = if host {
            json!({"type": "register", "gate": GATE, "token": side.token["token"], "last_seq": side.last_seq})
        } else {
            json!({"type": "join", "id": side.token["id"], "token": side.token["token"], "last_seq": side.last_seq})
        };
        if ws.send(Message::text(msg.to_string())).await.is_err() {
            continue;
        }
        let want = if host { "registered" } else { "joined" };
        match until(&mut ws, want).await {
            Ok((_, before)) => {
                let last_received = before
                    .iter()
                    .find(|m| m["type"] == "reconnection-detected")
                    .and_then(|m| m["last_received"].as_u64());
                let resend: Vec<Value> = side
                    .ring
                    .iter()
                    .filter(|(seq, _)| last_received.is_none_or(|l| *seq > l))
                    .map(|(_, m)| m.clone())
                    .collect();
                for m in resend {
                    ws.send(Message::text(m.to_string())).await?;
                }
                side.ws = Some(ws);
                if unix_ms() >= plan.kill_ms {
                    ctx.stats.lock().unwrap().back_at_ms.push(unix_ms());
                }
                return Ok(());
            }
            Err(e) => {
                let text = e.to_string();
                // Not back yet (the room's node is being replaced): try again.
                if !(text.contains("session-unavailable") || text.contains("closed")) {
                    bail!("resuming on {addr}: {text}");
                }
                tokio::time::sleep(Duration::from_millis(200 + rand::random::<u64>() % 300)).await;
            }
        }
    }
}
