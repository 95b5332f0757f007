//! The code check's computing cost: a whole exchange (host hello, viewer
//! reply, host confirm, viewer check), both sides in one process, timed over
//! many runs; prints p50 / p95 / max. On the wire it adds 1.5 round trips on
//! the already open `commands` channel, before the consent question.
//! `cargo bench -p holdfast-auth --bench exchange`.

use std::time::{Duration, Instant};

use holdfast_auth::{Binding, Fingerprint, HostHandshake, Secret, ViewerHandshake};

fn fp(seed: u8) -> Fingerprint {
    let hex: Vec<String> = (0..32u8).map(|i| format!("{:02X}", seed.wrapping_add(i))).collect();
    Fingerprint::parse(&format!("sha-256 {}", hex.join(":"))).unwrap()
}

fn main() {
    let binding = Binding {
        room: "123456789".into(),
        host: fp(1),
        viewer: fp(2),
    };
    let rng = &mut rand::rng();
    let runs = 2000;
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        let (host, hello) = HostHandshake::start(Secret::code("ABCDEFGHJK"), binding.clone(), rng);
        let (viewer, reply) = ViewerHandshake::on_hello(&Secret::code("ABCDEFGHJK"), &binding, &hello, rng).unwrap();
        let (confirm, _) = host.on_reply(&reply).unwrap();
        viewer.on_confirm(&confirm).unwrap();
        times.push(t0.elapsed());
    }
    times.sort();
    let at = |q: f64| times[((runs as f64 * q) as usize).min(runs - 1)];
    println!(
        "whole exchange, both sides' computing ({runs} runs): p50 {:?}, p95 {:?}, max {:?}",
        at(0.50),
        at(0.95),
        times[runs - 1]
    );
}
