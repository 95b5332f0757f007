//! `holdfast-host`: shares a screen without a window, for servers, unattended
//! machines and tests. Prints exactly one JSON line on stdout once the room
//! exists (`{"id","code","viewer_url"}`); everything else goes to stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use holdfast_media::encode::{EncoderSettings, Tuning, DEFAULT_BITRATE_KBPS, DEFAULT_FPS};
use holdfast_media::synthetic::SyntheticSource;
use holdfast_media::worker::MediaWorker;
use holdfast_media::ScreenSource;
use holdfast_peer::backpressure::{QueueLimits, VIDEO_QUEUE_CEILING_BYTES};
use holdfast_peer::host::{self, HostConfig};
use holdfast_peer::rtc::RtcOptions;
use holdfast_signal::{ServerConfig, TlsMode};
use tracing::info;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Source {
    /// The display (X11, Windows, macOS).
    Screen,
    /// A generated moving desktop, for machines without a display.
    Synthetic,
    /// The generated desktop with a band of fresh noise every frame (fills links, for tests).
    Noise,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum TuningArg {
    /// Smallest frames for text and UI (OpenH264 screen-content mode); ~23 ms per 1080p frame.
    Screen,
    /// Faster encoding for motion (OpenH264 camera mode); more bytes for small changes.
    Motion,
}

#[derive(Parser, Debug)]
#[command(name = "holdfast-host", version, about = "Share this screen with a Holdfast viewer")]
struct Cli {
    /// Signalling server base URL, e.g. http://127.0.0.1:8080 (it also serves the viewer).
    /// Without it, an embedded server is started on --serve.
    #[arg(long)]
    signal: Option<url::Url>,
    /// PEM certificate to trust for an https:// --signal server (e.g. its self-signed cert.pem).
    #[arg(long)]
    signal_ca: Option<PathBuf>,
    /// Listen address of the embedded signalling server (when --signal is absent).
    #[arg(long, default_value = "127.0.0.1:8080")]
    serve: SocketAddr,
    /// Display to share (0 is the primary display).
    #[arg(long, default_value_t = 0)]
    display: usize,
    /// What to capture.
    #[arg(long, value_enum, default_value_t = Source::Screen)]
    source: Source,
    /// Frames per second while the screen changes.
    #[arg(long, default_value_t = DEFAULT_FPS)]
    fps: u32,
    /// Target bitrate in kbit/s.
    #[arg(long, default_value_t = DEFAULT_BITRATE_KBPS)]
    bitrate: u32,
    /// What the encoder optimises for.
    #[arg(long, value_enum, default_value_t = TuningArg::Screen)]
    tuning: TuningArg,
    /// Capture interval in ms once the screen is idle (unchanged).
    #[arg(long, default_value_t = 200)]
    idle_ms: u64,
    /// Hard ceiling on bytes queued on the video channel (the seeds' 4 MiB).
    #[arg(long, default_value_t = VIDEO_QUEUE_CEILING_BYTES)]
    queue_ceiling: usize,
    /// Normal queue bound as milliseconds of video at --bitrate; 0 uses the ceiling alone.
    #[arg(long, default_value_t = 500)]
    queue_target_ms: u64,
    /// Local UDP address for WebRTC (repeatable); default: every non-loopback interface.
    #[arg(long = "ice-bind")]
    ice_bind: Vec<String>,
    /// Also offer loopback candidates (for tests on one machine).
    #[arg(long)]
    allow_loopback: bool,
    /// Write host statistics as JSON to this file every second.
    #[arg(long)]
    stats_file: Option<PathBuf>,
    /// Log filter.
    #[arg(long, default_value = "info", env = "HOLDFAST_LOG")]
    log: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();

    let mut _embedded = None;
    let signal_url = match &cli.signal {
        Some(url) => url.clone(),
        None => {
            let server = holdfast_signal::spawn(ServerConfig {
                listen: cli.serve,
                tls: TlsMode::default_for(&cli.serve, PathBuf::from("holdfast-tls")),
                ui_dir: holdfast_signal::server::default_ui_dir(),
                ice_servers: Vec::new(),
            })
            .await
            .context("starting the embedded signalling server")?;
            let url = url::Url::parse(&server.base_url)?;
            _embedded = Some(server);
            url
        }
    };

    let tuning = match cli.tuning {
        TuningArg::Screen => Tuning::Screen,
        TuningArg::Motion => Tuning::Motion,
    };
    let settings = EncoderSettings {
        fps: cli.fps,
        bitrate_kbps: cli.bitrate,
        threads: 0,
        tuning,
    };
    let worker = match cli.source {
        Source::Screen => {
            let display = cli.display;
            MediaWorker::spawn(move || ScreenSource::open(display), settings)
        }
        Source::Synthetic => MediaWorker::spawn(|| Ok(SyntheticSource::new(1920, 1080)), settings),
        Source::Noise => MediaWorker::spawn(|| Ok(SyntheticSource::noisy(1920, 1080)), settings),
    }
    .context("opening the screen (is DISPLAY set?)")?;
    info!(dimensions = ?worker.dimensions(), "capturing");

    let mut config = HostConfig::new(signal_url);
    if let Some(ca) = &cli.signal_ca {
        config.tls = Some(holdfast_peer::signal_client::tls_config_with_ca(ca)?);
    }
    config.fps = cli.fps;
    config.idle_interval = Duration::from_millis(cli.idle_ms);
    config.limits = if cli.queue_target_ms == 0 {
        QueueLimits::ceiling_only(cli.queue_ceiling)
    } else {
        let mut l = QueueLimits::for_bitrate(cli.bitrate, Duration::from_millis(cli.queue_target_ms));
        l.ceiling = cli.queue_ceiling;
        l
    };
    config.rtc = RtcOptions {
        bind: if cli.ice_bind.is_empty() {
            vec!["0.0.0.0:0".into()]
        } else {
            cli.ice_bind.clone()
        },
        allow_loopback: cli.allow_loopback,
        mdns: true,
    };

    let mut host = host::start(config, worker)
        .await
        .context("registering with the signalling server")?;
    println!("{}", serde_json::to_string(&host.room)?);
    // The code and link are on stdout only: stderr is the log, and codes never go in logs.
    eprintln!(
        "holdfast-host: room {} is open; give the viewer the code or link printed on stdout",
        host.room.id
    );

    if let Some(path) = cli.stats_file.clone() {
        let mut stats = host.stats.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let json = serde_json::to_vec(&*stats.borrow_and_update()).unwrap_or_default();
                let tmp = path.with_extension("tmp");
                if std::fs::write(&tmp, json).is_ok() {
                    let _ = std::fs::rename(&tmp, &path);
                }
            }
        });
    }

    tokio::select! {
        r = host.finished() => r.context("host stopped")?,
        _ = tokio::signal::ctrl_c() => { host.stop().await?; }
    }
    Ok(())
}
