//! The signalling WebSocket as two channels: typed messages out, typed
//! messages in. A reader and a writer task own the socket; when it closes the
//! incoming channel ends, which is how callers learn of it.

use futures_util::{SinkExt, StreamExt};
use holdfast_proto::signal::{ClientMessage, ServerMessage};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, warn};
use url::Url;

use crate::PeerError;

/// The `/ws` endpoint for a server base URL (`http://host:port` or `ws://...`).
pub fn websocket_url(base: &Url) -> Result<Url, PeerError> {
    let mut url = base.clone();
    let scheme = match base.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(PeerError::Url(format!("unsupported scheme `{other}`"))),
    };
    url.set_scheme(scheme).map_err(|_| PeerError::Url(base.to_string()))?;
    if !url.path().ends_with("/ws") {
        url.set_path("/ws");
    }
    url.set_query(None);
    Ok(url)
}

/// A TLS client configuration trusting the system's roots plus the PEM
/// certificate(s) in `ca` (for a server with a self-signed certificate).
pub fn tls_config_with_ca(ca: &std::path::Path) -> Result<std::sync::Arc<rustls::ClientConfig>, PeerError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    let mut added = 0;
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| PeerError::Connect(format!("{}: {e}", ca.display())))? {
        let cert = cert.map_err(|e| PeerError::Connect(format!("{}: {e}", ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| PeerError::Connect(format!("{}: {e}", ca.display())))?;
        added += 1;
    }
    if added == 0 {
        return Err(PeerError::Connect(format!("{}: no certificate found", ca.display())));
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

pub struct SignalConnection {
    pub tx: mpsc::UnboundedSender<ClientMessage>,
    pub rx: mpsc::UnboundedReceiver<ServerMessage>,
}

impl SignalConnection {
    /// Connects; `tls` overrides the system's trust roots for `wss://`.
    pub async fn connect(base: &Url, tls: Option<std::sync::Arc<rustls::ClientConfig>>) -> Result<Self, PeerError> {
        let url = websocket_url(base)?;
        let connector = tls.map(tokio_tungstenite::Connector::Rustls);
        let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(url.as_str(), None, true, connector)
            .await
            .map_err(|e| PeerError::Connect(e.to_string()))?;
        let (mut sink, mut stream) = ws.split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ClientMessage>();
        let (in_tx, in_rx) = mpsc::unbounded_channel::<ServerMessage>();
        tokio::spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                if sink.send(Message::text(msg.to_json())).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        tokio::spawn(async move {
            while let Some(frame) = stream.next().await {
                match frame {
                    Ok(Message::Text(text)) => match ServerMessage::parse(&text) {
                        Ok(msg) => {
                            debug!(kind = ?std::mem::discriminant(&msg), "signal in");
                            if in_tx.send(msg).is_err() {
                                break;
                            }
                        }
                        Err(e) => warn!("ignoring bad server message: {e}"),
                    },
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        });
        Ok(SignalConnection { tx: out_tx, rx: in_rx })
    }

    pub fn send(&self, msg: ClientMessage) -> Result<(), PeerError> {
        self.tx.send(msg).map_err(|_| PeerError::SignalClosed)
    }

    pub async fn recv(&mut self) -> Result<ServerMessage, PeerError> {
        self.rx.recv().await.ok_or(PeerError::SignalClosed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_url_follows_the_page_scheme() {
        let u = |s: &str| websocket_url(&Url::parse(s).unwrap()).unwrap().to_string();
        assert_eq!(u("http://127.0.0.1:8080"), "ws://127.0.0.1:8080/ws");
        assert_eq!(u("https://example.test/"), "wss://example.test/ws");
        assert_eq!(u("ws://h:1/ws"), "ws://h:1/ws");
        assert!(websocket_url(&Url::parse("ftp://x").unwrap()).is_err());
    }
}
