//! `holdfast-signal`: rooms over WebSocket, the browser viewer, and the ICE
//! server list. See `--help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use holdfast_proto::signal::IceServer;
use holdfast_signal::access::{self, LimiterConfig};
use holdfast_signal::hub::Caps;
use holdfast_signal::replay::ReplayConfig;
use holdfast_signal::server::ConnCaps;
use holdfast_signal::token::TokenKey;
use holdfast_signal::turn::TurnRest;
use holdfast_signal::{spawn, ServerConfig, TlsMode};

#[derive(Parser, Debug)]
#[command(
    name = "holdfast-signal",
    version,
    about = "Holdfast signalling server: rooms over WebSocket, the browser viewer, ICE servers"
)]
struct Cli {
    /// Address to listen on. Loopback serves plain HTTP; any other address
    /// serves HTTPS (WebCodecs needs a secure context off localhost).
    #[arg(long, default_value = "127.0.0.1:8080", env = "HOLDFAST_LISTEN")]
    listen: SocketAddr,
    /// PEM certificate chain for HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Directory for the self-signed certificate generated on first run.
    #[arg(long, default_value = "holdfast-tls")]
    tls_dir: PathBuf,
    /// Extra host name or IP address for the self-signed certificate (repeatable).
    #[arg(long = "tls-name")]
    tls_names: Vec<String>,
    /// Serve plain HTTP even on a non-loopback address (behind a TLS proxy).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    no_tls: bool,
    /// Directory of the built viewer (ui/dist). Found automatically when omitted.
    #[arg(long, env = "HOLDFAST_UI_DIR")]
    ui_dir: Option<PathBuf>,
    /// STUN server URL handed to clients, e.g. stun:stun.example.org:3478 (repeatable).
    #[arg(long = "stun")]
    stun: Vec<String>,
    /// TURN server URL handed to clients, e.g. turn:turn.example.org:3478 (repeatable).
    #[arg(long = "turn")]
    turn: Vec<String>,
    /// TURN username.
    #[arg(long, env = "HOLDFAST_TURN_USERNAME")]
    turn_username: Option<String>,
    /// TURN credential (prefer the environment variable: arguments are visible to other users).
    #[arg(long, env = "HOLDFAST_TURN_CREDENTIAL", hide_env_values = true)]
    turn_credential: Option<String>,
    /// TURN server URL for which each host and admitted viewer gets its own
    /// short-lived credentials (coturn `use-auth-secret`; repeatable).
    #[arg(long = "turn-rest")]
    turn_rest: Vec<String>,
    /// The secret shared with coturn's `static-auth-secret` (prefer the environment variable).
    #[arg(long, env = "HOLDFAST_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// How long `--turn-rest` credentials stay valid.
    #[arg(long, default_value_t = holdfast_signal::turn::DEFAULT_TURN_TTL.as_secs_f64())]
    turn_ttl_secs: f64,
    /// A browser origin allowed to use the WebSocket and API besides this
    /// server's own pages and the desktop app, e.g. https://support.example.com (repeatable).
    #[arg(long = "allow-origin")]
    allow_origin: Vec<String>,
    /// Open connections one address (IPv6: one /64) may hold.
    #[arg(long, default_value_t = ConnCaps::default().per_addr)]
    max_conns_per_addr: usize,
    /// Open connections in all.
    #[arg(long, default_value_t = ConnCaps::default().total)]
    max_conns: usize,
    /// Rooms one address may hold.
    #[arg(long, default_value_t = Caps::default().rooms_per_addr)]
    max_rooms_per_addr: usize,
    /// Rooms in all.
    #[arg(long, default_value_t = Caps::default().rooms_total)]
    max_rooms: usize,
    /// Wrong codes allowed per minute, per room and per client address, before a lockout.
    #[arg(long, default_value_t = access::MAX_FAILURES)]
    max_failures: u32,
    /// First lockout in seconds; each further lockout of the same room or address doubles it.
    #[arg(long, default_value_t = access::FIRST_LOCKOUT.as_secs_f64())]
    lockout_secs: f64,
    /// Seconds a host has to answer a join request (silence means deny).
    #[arg(long, default_value_t = holdfast_proto::signal::CONSENT_TIMEOUT.as_secs_f64())]
    consent_timeout_secs: f64,
    /// Seconds between WebSocket pings to each client.
    #[arg(long, default_value_t = holdfast_signal::server::WS_PING_INTERVAL.as_secs_f64())]
    ws_ping_secs: f64,
    /// Close a client connection silent for this many seconds (rounded up to whole ping intervals).
    #[arg(long, default_value_t = holdfast_signal::server::WS_SILENT_TIMEOUT.as_secs_f64())]
    ws_silent_secs: f64,
    /// Seconds a member whose connection dropped keeps its place (and can resume).
    #[arg(long, default_value_t = holdfast_session::GRACE_PERIOD.as_secs_f64())]
    grace_secs: f64,
    /// Messages kept per room for reconnecting members.
    #[arg(long, default_value_t = holdfast_signal::replay::REPLAY_MESSAGES)]
    replay_messages: usize,
    /// Seconds those messages are kept after the room's last activity.
    #[arg(long, default_value_t = holdfast_signal::replay::REPLAY_TTL.as_secs_f64())]
    replay_ttl_secs: f64,
    /// File with the key that signs session tokens (created on first run), so
    /// tokens survive a restart. Default: holdfast/signal-token.key in the
    /// user's local data directory.
    #[arg(long, env = "HOLDFAST_TOKEN_KEY_FILE")]
    token_key_file: Option<PathBuf>,
    /// Sign tokens with a key that dies with the process (a restart logs everyone out).
    #[arg(long, conflicts_with = "token_key_file")]
    ephemeral_tokens: bool,
    /// Log filter, e.g. `info` or `holdfast_signal=debug`.
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
    let tls = match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) => TlsMode::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ if cli.no_tls => TlsMode::Off,
        _ => match TlsMode::default_for(&cli.listen, cli.tls_dir.clone()) {
            TlsMode::SelfSigned { dir, mut names } => {
                names.extend(cli.tls_names.iter().cloned());
                TlsMode::SelfSigned { dir, names }
            }
            other => other,
        },
    };
    let mut ice_servers = Vec::new();
    if !cli.stun.is_empty() {
        ice_servers.push(IceServer {
            urls: cli.stun.clone(),
            ..Default::default()
        });
    }
    if !cli.turn.is_empty() {
        ice_servers.push(IceServer {
            urls: cli.turn.clone(),
            username: cli.turn_username.clone(),
            credential: cli.turn_credential.clone(),
        });
    }
    let token_key = if cli.ephemeral_tokens {
        TokenKey::random()
    } else {
        let path = cli
            .token_key_file
            .clone()
            .or_else(|| dirs::data_local_dir().map(|d| d.join("holdfast").join("signal-token.key")))
            .ok_or_else(|| anyhow::anyhow!("no data directory: pass --token-key-file or --ephemeral-tokens"))?;
        TokenKey::load_or_create(&path).map_err(|e| anyhow::anyhow!("token key {}: {e}", path.display()))?
    };
    let config = ServerConfig {
        listen: cli.listen,
        tls,
        ui_dir: cli.ui_dir.clone().or_else(holdfast_signal::server::default_ui_dir),
        ice_servers,
        limiter: LimiterConfig {
            max_failures: cli.max_failures.max(1),
            first_lockout: Duration::try_from_secs_f64(cli.lockout_secs)?,
            ..LimiterConfig::default()
        },
        consent_timeout: Duration::try_from_secs_f64(cli.consent_timeout_secs)?,
        ws_ping_interval: Duration::try_from_secs_f64(cli.ws_ping_secs)?,
        ws_silent_timeout: Duration::try_from_secs_f64(cli.ws_silent_secs)?,
        grace: Duration::try_from_secs_f64(cli.grace_secs)?,
        replay: ReplayConfig {
            capacity: cli.replay_messages.max(1),
            ttl: Duration::try_from_secs_f64(cli.replay_ttl_secs)?,
        },
        token_key,
        turn: (!cli.turn_rest.is_empty())
            .then(|| {
                let secret = cli.turn_secret.clone()?;
                Some(TurnRest::new(
                    cli.turn_rest.clone(),
                    secret,
                    Duration::try_from_secs_f64(cli.turn_ttl_secs).ok()?,
                ))
            })
            .flatten(),
        allowed_origins: cli.allow_origin.clone(),
        conn_caps: ConnCaps {
            per_addr: cli.max_conns_per_addr.max(1),
            total: cli.max_conns.max(1),
        },
        room_caps: Caps {
            rooms_per_addr: cli.max_rooms_per_addr.max(1),
            rooms_total: cli.max_rooms.max(1),
        },
    };
    if !cli.turn_rest.is_empty() && config.turn.is_none() {
        anyhow::bail!("--turn-rest needs --turn-secret (or HOLDFAST_TURN_SECRET) and a valid --turn-ttl-secs");
    }
    let server = spawn(config).await?;
    eprintln!("holdfast-signal: serving {}", server.base_url);
    tokio::select! {
        r = server.wait() => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
