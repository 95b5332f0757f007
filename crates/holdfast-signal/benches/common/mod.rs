//! What the load benches share: a real server process, the WebSocket
//! helpers and a room set-up.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).expect("server JSON"),
            Some(Ok(_)) => continue,
            other => panic!("socket ended: {other:?}"),
        }
    }
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

/// `host` (connected, in no room yet) registers; a new viewer joins and is
/// admitted with control. Returns the viewer and its peer ID.
pub async fn admit_viewer(url: &str, host: &mut Ws) -> (Ws, String) {
    send(host, json!({"type": "register", "gate": "K7QX"})).await;
    let reg = next_json(host).await;
    let (mut viewer, _) = connect_async(url).await.expect("connect viewer");
    send(&mut viewer, json!({"type": "join", "id": reg["id"], "gate": "K7QX"})).await;
    let req = next_json(host).await;
    assert_eq!(req["type"], "join-request", "{req}");
    let peer = req["peer_id"].as_str().expect("peer").to_owned();
    send(host, json!({"type": "consent", "peer": peer, "decision": "control"})).await;
    while next_json(&mut viewer).await["type"] != "joined" {}
    (viewer, peer)
}

/// Starts the real `holdfast-signal` on a free loopback port with `args`
/// (all bench clients come from 127.0.0.1, so callers lift the per-address
/// caps) and waits until it accepts; returns it and its WebSocket URL.
pub async fn start_server(args: &[String]) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let server = Command::new(env!("CARGO_BIN_EXE_holdfast-signal"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log",
            "warn",
            "--ephemeral-tokens",
        ])
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .expect("holdfast-signal");
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (server, format!("ws://127.0.0.1:{port}/ws"))
}
