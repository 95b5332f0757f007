//! What the load benches share: the WebSocket helpers and a room set-up.

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
    send(host, json!({"type": "register"})).await;
    let reg = next_json(host).await;
    let (mut viewer, _) = connect_async(url).await.expect("connect viewer");
    send(
        &mut viewer,
        json!({"type": "join", "id": reg["id"], "code": reg["code"]}),
    )
    .await;
    let req = next_json(host).await;
    assert_eq!(req["type"], "join-request", "{req}");
    let peer = req["peer_id"].as_str().expect("peer").to_owned();
    send(host, json!({"type": "consent", "peer": peer, "decision": "control"})).await;
    while next_json(&mut viewer).await["type"] != "joined" {}
    (viewer, peer)
}
