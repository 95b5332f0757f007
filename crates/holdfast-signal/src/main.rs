//! `holdfast-signal`: rooms over WebSocket, the browser viewer, and the ICE
//! server list. See `--help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use holdfast_proto::signal::IceServer;
use holdfast_signal::settings::Settings;
use holdfast_signal::token::TokenKey;
use holdfast_signal::turn::TurnRest;
use holdfast_signal::{spawn, ServerConfig, TlsMode};

#[derive(Parser, Debug)]
#[command(
    name = "holdfast-signal",
    version,
    about = "Holdfast signalling server: rooms over WebSocket, the browser viewer, ICE servers",
    after_help = "Every option can also be set in the configuration file (--config; the package's \
                  /etc/holdfast/signal.toml lists them all with their defaults); an option given \
                  here overrides the file."
)]
struct Cli {
    /// Read settings from this TOML file; options given here override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check a configuration file (syntax, values, the files it names) and exit:
    /// 0 if it is usable, otherwise 1 with the errors and their line numbers.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    check_config: Option<PathBuf>,
    /// Address to listen on (127.0.0.1:8080). Loopback serves plain HTTP; any
    /// other address serves HTTPS (WebCodecs needs a secure context off localhost).
    #[arg(long, env = "HOLDFAST_LISTEN")]
    listen: Option<SocketAddr>,
    /// PEM certificate chain for HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Directory for the self-signed certificate generated on first run (holdfast-tls).
    #[arg(long)]
    tls_dir: Option<PathBuf>,
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
    /// How long `--turn-rest` credentials stay valid, in seconds (3600).
    #[arg(long)]
    turn_ttl_secs: Option<f64>,
    /// A browser origin allowed to use the WebSocket and API besides this
    /// server's own pages and the desktop app, e.g. https://support.example.com (repeatable).
    #[arg(long = "allow-origin")]
    allow_origin: Vec<String>,
    /// A reverse proxy (address or CIDR network) whose X-Forwarded-For names
    /// the client (repeatable). Nobody else's header is believed.
    #[arg(long = "trusted-proxy")]
    trusted_proxy: Vec<String>,
    /// Open connections one address (IPv6: one /64) may hold (64).
    #[arg(long)]
    max_conns_per_addr: Option<usize>,
    /// Open connections in all (20000).
    #[arg(long)]
    max_conns: Option<usize>,
    /// Rooms one address may hold (16).
    #[arg(long)]
    max_rooms_per_addr: Option<usize>,
    /// Rooms in all (10000).
    #[arg(long)]
    max_rooms: Option<usize>,
    /// Wrong codes allowed per minute, per room and per client address, before a lockout (5).
    #[arg(long)]
    max_failures: Option<u32>,
    /// First lockout in seconds; each further lockout of the same room or address doubles it (60).
    #[arg(long)]
    lockout_secs: Option<f64>,
    /// Seconds a host has to answer a join request; silence means deny (30).
    #[arg(long)]
    consent_timeout_secs: Option<f64>,
    /// Seconds between WebSocket pings to each client (10).
    #[arg(long)]
    ws_ping_secs: Option<f64>,
    /// Close a client connection silent for this many seconds, rounded up to whole ping intervals (30).
    #[arg(long)]
    ws_silent_secs: Option<f64>,
    /// Seconds a member whose connection dropped keeps its place and can resume (300);
    /// announced to clients, which keep to it.
    #[arg(long)]
    grace_secs: Option<f64>,
    /// Messages kept per room for reconnecting members (50).
    #[arg(long)]
    replay_messages: Option<usize>,
    /// Seconds those messages are kept after the room's last activity (300).
    #[arg(long)]
    replay_ttl_secs: Option<f64>,
    /// File with the key that signs session tokens (created on first run), so
    /// tokens survive a restart. Default: holdfast/signal-token.key in the
    /// user's local data directory.
    #[arg(long, env = "HOLDFAST_TOKEN_KEY_FILE")]
    token_key_file: Option<PathBuf>,
    /// Sign tokens with a key that dies with the process (a restart logs everyone out).
    #[arg(long, conflicts_with = "token_key_file")]
    ephemeral_tokens: bool,
    /// Log filter, e.g. `info` or `holdfast_signal=debug`.
    #[arg(long, env = "HOLDFAST_LOG")]
    log: Option<String>,
    /// Share rooms with other nodes through this Redis, e.g. redis://10.0.0.5:6379:
    /// any node accepts any client (see docs/cluster-design.md).
    #[arg(long, value_name = "URL", env = "HOLDFAST_REDIS", hide_env_values = true)]
    redis: Option<String>,
    /// This node's name in Redis (default: host name and a random suffix).
    #[arg(long, requires = "redis")]
    node_id: Option<String>,
}

impl Cli {
    /// The options given on the command line, over `s` (the file's or the defaults).
    fn overlay(&self, s: &mut Settings) {
        fn set<T: Clone>(to: &mut T, from: &Option<T>) {
            if let Some(v) = from {
                *to = v.clone();
            }
        }
        fn set_some<T: Clone>(to: &mut Option<T>, from: &Option<T>) {
            if from.is_some() {
                to.clone_from(from);
            }
        }
        fn list(to: &mut Vec<String>, from: &[String]) {
            if !from.is_empty() {
                *to = from.to_vec();
            }
        }
        set(&mut s.listen, &self.listen);
        set(&mut s.log, &self.log);
        set_some(&mut s.ui_dir, &self.ui_dir);
        list(&mut s.allow_origins, &self.allow_origin);
        list(&mut s.trusted_proxies, &self.trusted_proxy);
        set_some(&mut s.tls.cert, &self.tls_cert);
        set_some(&mut s.tls.key, &self.tls_key);
        set(&mut s.tls.dir, &self.tls_dir);
        list(&mut s.tls.names, &self.tls_names);
        s.tls.off |= self.no_tls;
        list(&mut s.ice.stun, &self.stun);
        list(&mut s.ice.turn, &self.turn);
        set_some(&mut s.ice.turn_username, &self.turn_username);
        set_some(&mut s.ice.turn_credential, &self.turn_credential);
        list(&mut s.turn.urls, &self.turn_rest);
        if self.turn_secret.is_some() {
            s.turn.secret.clone_from(&self.turn_secret);
            s.turn.secret_file = None;
        }
        set(&mut s.turn.ttl_secs, &self.turn_ttl_secs);
        set(&mut s.limits.max_conns_per_addr, &self.max_conns_per_addr);
        set(&mut s.limits.max_conns, &self.max_conns);
        set(&mut s.limits.max_rooms_per_addr, &self.max_rooms_per_addr);
        set(&mut s.limits.max_rooms, &self.max_rooms);
        set(&mut s.limits.max_failures, &self.max_failures);
        set(&mut s.limits.lockout_secs, &self.lockout_secs);
        set(&mut s.limits.ws_ping_secs, &self.ws_ping_secs);
        set(&mut s.limits.ws_silent_secs, &self.ws_silent_secs);
        set(&mut s.session.consent_timeout_secs, &self.consent_timeout_secs);
        set(&mut s.session.grace_secs, &self.grace_secs);
        set(&mut s.session.replay_messages, &self.replay_messages);
        set(&mut s.session.replay_ttl_secs, &self.replay_ttl_secs);
        if self.ephemeral_tokens {
            s.session.ephemeral_tokens = true;
            s.session.token_key_file = None;
        }
        set_some(&mut s.redis.url, &self.redis);
        set_some(&mut s.redis.node_id, &self.node_id);
        if self.token_key_file.is_some() {
            s.session.token_key_file.clone_from(&self.token_key_file);
            s.session.ephemeral_tokens = false;
        }
    }
}

/// Reads and checks a configuration file, and the files it names.
fn load(path: &std::path::Path) -> anyhow::Result<Settings> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let settings = Settings::from_toml(&text, &path.display().to_string())?;
    check_files(&settings).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(settings)
}

/// The files the settings name must be readable (the TLS pair, the TURN secret).
fn check_files(s: &Settings) -> anyhow::Result<()> {
    for (key, file) in [
        ("tls.cert", &s.tls.cert),
        ("tls.key", &s.tls.key),
        ("turn.secret_file", &s.turn.secret_file),
    ] {
        if let Some(f) = file {
            std::fs::File::open(f).map_err(|e| anyhow::anyhow!("{key}: {}: {e}", f.display()))?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(path) = &cli.check_config {
        match load(path) {
            Ok(_) => {
                println!("{}: ok", path.display());
                return Ok(());
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
    let mut settings = match &cli.config {
        Some(path) => load(path)?,
        None => Settings::default(),
    };
    cli.overlay(&mut settings);
    settings.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    check_files(&settings)?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&settings.log))
        .with_writer(std::io::stderr)
        .init();
    let s = &settings;
    let tls = match (&s.tls.cert, &s.tls.key) {
        (Some(cert), Some(key)) => TlsMode::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ if s.tls.off => TlsMode::Off,
        _ => match TlsMode::default_for(&s.listen, s.tls.dir.clone()) {
            TlsMode::SelfSigned { dir, mut names } => {
                names.extend(s.tls.names.iter().cloned());
                TlsMode::SelfSigned { dir, names }
            }
            other => other,
        },
    };
    let mut ice_servers = Vec::new();
    if !s.ice.stun.is_empty() {
        ice_servers.push(IceServer {
            urls: s.ice.stun.clone(),
            ..Default::default()
        });
    }
    if !s.ice.turn.is_empty() {
        ice_servers.push(IceServer {
            urls: s.ice.turn.clone(),
            username: s.ice.turn_username.clone(),
            credential: s.ice.turn_credential.clone(),
        });
    }
    // Nodes sign with the key they share through Redis.
    let token_key = if s.session.ephemeral_tokens || s.redis.url.is_some() {
        TokenKey::random()
    } else {
        let path = s
            .session
            .token_key_file
            .clone()
            .or_else(|| dirs::data_local_dir().map(|d| d.join("holdfast").join("signal-token.key")))
            .ok_or_else(|| anyhow::anyhow!("no data directory: set session.token_key_file or --ephemeral-tokens"))?;
        TokenKey::load_or_create(&path).map_err(|e| anyhow::anyhow!("token key {}: {e}", path.display()))?
    };
    let turn = if s.turn.urls.is_empty() {
        None
    } else {
        let secret = match (&s.turn.secret, &s.turn.secret_file) {
            (Some(secret), _) => secret.clone(),
            (None, Some(file)) => std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("turn.secret_file {}: {e}", file.display()))?
                .trim()
                .to_owned(),
            (None, None) => anyhow::bail!("--turn-rest needs --turn-secret (or HOLDFAST_TURN_SECRET)"),
        };
        Some(TurnRest::new(
            s.turn.urls.clone(),
            secret,
            Duration::from_secs_f64(s.turn.ttl_secs),
        ))
    };
    let config = ServerConfig {
        listen: s.listen,
        tls,
        ui_dir: s.ui_dir.clone().or_else(holdfast_signal::server::default_ui_dir),
        ice_servers,
        limiter: s.limiter(),
        consent_timeout: Duration::from_secs_f64(s.session.consent_timeout_secs),
        ws_ping_interval: Duration::from_secs_f64(s.limits.ws_ping_secs),
        ws_silent_timeout: Duration::from_secs_f64(s.limits.ws_silent_secs),
        grace: Duration::from_secs_f64(s.session.grace_secs),
        replay: s.replay(),
        token_key,
        turn,
        allowed_origins: s.allow_origins.clone(),
        trusted_proxies: s.proxies().map_err(|e| anyhow::anyhow!("{e}"))?,
        conn_caps: s.conn_caps(),
        room_caps: s.room_caps(),
        cluster: s.cluster(),
    };
    let server = spawn(config).await?;
    eprintln!("holdfast-signal: serving {}", server.base_url);
    tokio::select! {
        r = server.wait() => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
