//! `holdfast-probe-viewer`: a headless Rust viewer that joins a room, decodes
//! every frame with OpenH264 and reports each one as a JSON line on stdout:
//! `{"event":"frame","id":..,"keyframe":..,"bytes":..,"decoded":..,"capture_us":..}`,
//! plus `state`, `decode-error`, `bad-chunk` and `closed` events. Tests run it
//! as a separate process so it can be frozen (SIGSTOP) or put behind a slow link.

use clap::Parser;
use holdfast_media::H264Decoder;
use holdfast_peer::rtc::RtcOptions;
use holdfast_peer::viewer::{self, ViewerConfig, ViewerEvent};
use holdfast_proto::{RoomCode, RoomId};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "holdfast-probe-viewer",
    about = "Headless viewer that decodes and reports every frame"
)]
struct Cli {
    #[arg(long)]
    signal: url::Url,
    #[arg(long)]
    id: String,
    #[arg(long)]
    code: String,
    /// Local UDP address for WebRTC (repeatable).
    #[arg(long = "ice-bind")]
    ice_bind: Vec<String>,
    #[arg(long)]
    allow_loopback: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("info")
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut v = viewer::connect(ViewerConfig {
        signal_url: cli.signal,
        id: RoomId::parse(&cli.id)?,
        code: RoomCode::parse(&cli.code)?,
        rtc: RtcOptions {
            bind: if cli.ice_bind.is_empty() {
                vec!["0.0.0.0:0".into()]
            } else {
                cli.ice_bind
            },
            allow_loopback: cli.allow_loopback,
            mdns: true,
        },
        tls: None,
    })
    .await?;
    let mut decoder = H264Decoder::new()?;
    while let Some(ev) = v.events.recv().await {
        let line = match ev {
            ViewerEvent::Frame(f) => match decoder.decode(&f.data) {
                Ok(pic) => {
                    json!({"event": "frame", "id": f.frame_id, "keyframe": f.keyframe, "bytes": f.data.len(),
                    "decoded": pic.is_some(), "capture_us": f.capture_us})
                }
                Err(e) => {
                    v.request_keyframe();
                    json!({"event": "decode-error", "id": f.frame_id, "error": e.to_string()})
                }
            },
            ViewerEvent::State(s) => json!({"event": "state", "state": s.to_string()}),
            ViewerEvent::BadChunk(e) => json!({"event": "bad-chunk", "error": e}),
            ViewerEvent::Closed(why) => {
                println!("{}", json!({"event": "closed", "reason": why}));
                break;
            }
        };
        println!("{line}");
    }
    Ok(())
}
