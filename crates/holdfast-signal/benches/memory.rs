//! Server memory per idle socket and per room: a real `holdfast-signal`
//! process on loopback, its resident memory (VmRSS) read before and after
//! opening N idle WebSockets, then after registering a room on each (a host
//! and an admitted viewer per room). Prints KiB per socket and per room.
//! `cargo bench -p holdfast-signal --bench memory [-- N]` (default 1,000).

use std::time::Duration;

use tokio_tungstenite::connect_async;

mod common;
use common::admit_viewer;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Settles the allocator and reads RSS.
async fn settled(pid: u32) -> u64 {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rss_kib(pid)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1000);
    let (mut server, url) = common::start_server(&[
        "--max-conns-per-addr".into(),
        (3 * n + 10).to_string(),
        "--max-rooms-per-addr".into(),
        (n + 10).to_string(),
        // These clients never read, so never answer the server's pings: keep them anyway.
        "--ws-silent-secs".into(),
        "3600".into(),
    ])
    .await;
    let pid = server.id();
    let base = settled(pid).await;

    // N idle sockets: connected, nothing said.
    let mut idle = Vec::with_capacity(n);
    for _ in 0..n {
        idle.push(connect_async(&url).await.expect("connect").0);
    }
    let with_sockets = settled(pid).await;

    // N rooms: each idle socket registers, and a viewer joins and is admitted.
    let mut viewers = Vec::with_capacity(n);
    for host in idle.iter_mut() {
        viewers.push(admit_viewer(&url, host).await.0);
    }
    let with_rooms = settled(pid).await;
    let per_socket = (with_sockets - base) as f64 / n as f64;
    // A room adds one viewer socket and the room's state.
    let per_room = (with_rooms - with_sockets) as f64 / n as f64;
    println!("server RSS: {base} KiB at start, {with_sockets} KiB with {n} idle sockets, {with_rooms} KiB with {n} rooms (host + admitted viewer each)");
    println!("per idle socket: {per_socket:.1} KiB");
    println!("per room (its viewer's socket, membership, token, replay buffer): {per_room:.1} KiB; without the viewer's socket: {:.1} KiB", per_room - per_socket);
    let _ = server.kill();
    let _ = server.wait();
}
