//! Signalling relay under load: 1,000 rooms (2,000 WebSocket connections) on
//! loopback through a real `holdfast-signal` process, each host sending
//! offers to its viewer at a steady rate. Prints relay latency (host send to
//! viewer receive, one clock) p50 / p99 / max and the delivered rate per
//! phase. `cargo bench -p holdfast-signal --bench relay_load [-- ROOMS]`.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_tungstenite::connect_async;

mod common;
use common::{admit_viewer, next_json, send, Ws};

/// Seconds per load phase, and each room's message rates per phase.
const PHASE: Duration = Duration::from_secs(15);
const RATES_HZ: [f64; 3] = [1.0, 5.0, 10.0];

/// A host and an admitted viewer in a new room; returns (host, viewer, viewer's peer ID).
async fn room(url: &str) -> (Ws, Ws, String) {
    let (mut host, _) = connect_async(url).await.expect("connect host");
    let (viewer, peer) = admit_viewer(url, &mut host).await;
    (host, viewer, peer)
}

/// One room for one phase: the host sends `n` offers `every` apart (after
/// `offset`); the viewer times each one's arrival. Returns latencies in µs.
async fn phase(
    mut host: Ws,
    mut viewer: Ws,
    peer: String,
    base: Instant,
    n: usize,
    every: Duration,
    offset: Duration,
) -> (Ws, Ws, String, Vec<u64>) {
    let sender = async {
        tokio::time::sleep(offset).await;
        let mut tick = tokio::time::interval(every);
        for _ in 0..n {
            tick.tick().await;
            let sent = base.elapsed().as_micros() as u64;
            send(&mut host, json!({"type": "offer", "to": peer, "sdp": sent.to_string()})).await;
        }
    };
    let receiver = async {
        let mut lat = Vec::with_capacity(n);
        let deadline = tokio::time::Instant::now() + offset + every * n as u32 + Duration::from_secs(10);
        while lat.len() < n {
            let Ok(msg) = tokio::time::timeout_at(deadline, next_json(&mut viewer)).await else {
                break;
            };
            if msg["type"] == "offer" {
                let sent: u64 = msg["sdp"].as_str().and_then(|s| s.parse().ok()).expect("timestamp");
                lat.push(base.elapsed().as_micros() as u64 - sent);
            }
        }
        lat
    };
    let ((), lat) = tokio::join!(sender, receiver);
    // Keep the viewer's socket live in the server's eyes between phases.
    send(&mut viewer, json!({"type": "ping"})).await;
    (host, viewer, peer, lat)
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    sorted[((p / 100.0) * sorted.len() as f64)
        .floor()
        .min(sorted.len() as f64 - 1.0) as usize] as f64
        / 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rooms: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1000);
    let (mut server, url) = common::start_server(&[
        "--max-conns-per-addr".into(),
        (2 * rooms + 10).to_string(),
        "--max-rooms-per-addr".into(),
        (rooms + 10).to_string(),
    ])
    .await;
    let t = Instant::now();
    let mut set = Vec::new();
    for chunk in 0..rooms.div_ceil(50) {
        let n = 50.min(rooms - chunk * 50);
        let made = futures_util::future::join_all((0..n).map(|_| room(&url))).await;
        set.extend(made);
    }
    println!(
        "{rooms} rooms ({} connections) set up in {:.2} s",
        rooms * 2,
        t.elapsed().as_secs_f64()
    );
    let base = Instant::now();
    for rate in RATES_HZ {
        let every = Duration::from_secs_f64(1.0 / rate);
        let n = (PHASE.as_secs_f64() * rate) as usize;
        let started = Instant::now();
        let tasks: Vec<_> = set
            .drain(..)
            .enumerate()
            .map(|(i, (h, v, p))| {
                // Spread the rooms' sends evenly over one interval.
                let offset = every.mul_f64(i as f64 / rooms as f64);
                tokio::spawn(phase(h, v, p, base, n, every, offset))
            })
            .collect();
        let mut all = Vec::with_capacity(rooms * n);
        for t in tasks {
            let (h, v, p, lat) = t.await.expect("room task");
            all.extend(lat);
            set.push((h, v, p));
        }
        let took = started.elapsed().as_secs_f64();
        let expected = rooms * n;
        all.sort_unstable();
        println!(
            "{rooms} rooms x {rate} msg/s ({:.0} msg/s offered): delivered {}/{} in {took:.1} s; relay latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            rooms as f64 * rate,
            all.len(),
            expected,
            pct(&all, 50.0),
            pct(&all, 99.0),
            *all.last().unwrap_or(&0) as f64 / 1000.0,
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}
