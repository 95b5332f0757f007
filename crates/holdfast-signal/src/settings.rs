//! The server's settings: one definition for the configuration file
//! (`/etc/holdfast/signal.toml`, `--config`) and the command line (which
//! overrides the file, option by option). Parsed with `toml`, checked as a
//! whole ([`Settings::validate`]) with errors that name the key and the
//! file's line, and turned into the parts of a [`crate::ServerConfig`] that
//! need no IO. Pure: reading files and keys is the binary's job.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::access::{self, LimiterConfig};
use crate::hub::Caps;
use crate::replay::{ReplayConfig, REPLAY_MESSAGES, REPLAY_TTL};
use crate::server::{ConnCaps, WS_PING_INTERVAL, WS_SILENT_TIMEOUT};
use crate::turn::DEFAULT_TURN_TTL;

/// Where the package installs the configuration.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/holdfast/signal.toml";

/// Everything `holdfast-signal` can be told. Field names are the file's keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address to listen on. Loopback serves plain HTTP; any other address HTTPS.
    pub listen: SocketAddr,
    /// Log filter, e.g. `info` or `holdfast_signal=debug`.
    pub log: String,
    /// Directory of the built viewer (`ui/dist`); found automatically when absent.
    pub ui_dir: Option<PathBuf>,
    /// Browser origins allowed besides the server's own pages and the app.
    pub allow_origins: Vec<String>,
    /// Reverse proxies (addresses or CIDR networks) whose `X-Forwarded-For`
    /// is believed: the client address the limiter counts. Nobody else's is.
    pub trusted_proxies: Vec<String>,
    pub tls: TlsSettings,
    pub ice: IceSettings,
    pub turn: TurnSettings,
    pub session: SessionSettings,
    pub limits: LimitSettings,
    pub redis: RedisSettings,
}

/// Several nodes sharing one set of rooms (docs/cluster-design.md).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// `redis://HOST:PORT[/DB]`; absent: this server alone, rooms in memory.
    pub url: Option<String>,
    /// This node's name in Redis (default: host name and a random suffix,
    /// new each start). Letters, digits and `-`.
    pub node_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// PEM certificate chain and key (both or neither).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Where a self-signed certificate is made on first run (without `cert`).
    pub dir: PathBuf,
    /// Extra names for the self-signed certificate.
    pub names: Vec<String>,
    /// Plain HTTP even off loopback (behind a TLS-terminating proxy).
    pub off: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IceSettings {
    /// STUN URLs handed to everyone.
    pub stun: Vec<String>,
    /// TURN URLs with one fixed username and credential (prefer `[turn]`).
    pub turn: Vec<String>,
    pub turn_username: Option<String>,
    pub turn_credential: Option<String>,
}

/// TURN with short-lived credentials per member (coturn `use-auth-secret`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnSettings {
    pub urls: Vec<String>,
    /// The secret shared with coturn's `static-auth-secret`; or `secret_file`.
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub ttl_secs: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    /// How long a dropped member keeps its place; announced to clients.
    pub grace_secs: f64,
    pub replay_messages: usize,
    pub replay_ttl_secs: f64,
    pub consent_timeout_secs: f64,
    /// Key that signs session tokens (created on first run).
    pub token_key_file: Option<PathBuf>,
    /// Sign with a key that dies with the process.
    pub ephemeral_tokens: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    pub max_conns_per_addr: usize,
    pub max_conns: usize,
    pub max_rooms_per_addr: usize,
    pub max_rooms: usize,
    pub max_failures: u32,
    pub lockout_secs: f64,
    pub ws_ping_secs: f64,
    pub ws_silent_secs: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            log: "info".into(),
            ui_dir: None,
            allow_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            tls: TlsSettings::default(),
            ice: IceSettings::default(),
            turn: TurnSettings::default(),
            session: SessionSettings::default(),
            limits: LimitSettings::default(),
            redis: RedisSettings::default(),
        }
    }
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            cert: None,
            key: None,
            dir: PathBuf::from("holdfast-tls"),
            names: Vec::new(),
            off: false,
        }
    }
}

impl Default for TurnSettings {
    fn default() -> Self {
        TurnSettings {
            urls: Vec::new(),
            secret: None,
            secret_file: None,
            ttl_secs: DEFAULT_TURN_TTL.as_secs_f64(),
        }
    }
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            grace_secs: holdfast_session::GRACE_PERIOD.as_secs_f64(),
            replay_messages: REPLAY_MESSAGES,
            replay_ttl_secs: REPLAY_TTL.as_secs_f64(),
            consent_timeout_secs: holdfast_proto::signal::CONSENT_TIMEOUT.as_secs_f64(),
            token_key_file: None,
            ephemeral_tokens: false,
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_conns_per_addr: ConnCaps::default().per_addr,
            max_conns: ConnCaps::default().total,
            max_rooms_per_addr: Caps::default().rooms_per_addr,
            max_rooms: Caps::default().rooms_total,
            max_failures: access::MAX_FAILURES,
            lockout_secs: access::FIRST_LOCKOUT.as_secs_f64(),
            ws_ping_secs: WS_PING_INTERVAL.as_secs_f64(),
            ws_silent_secs: WS_SILENT_TIMEOUT.as_secs_f64(),
        }
    }
}

/// A setting that cannot be used, by its key (`turn.ttl_secs`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct Invalid {
    pub key: String,
    pub message: String,
}

/// Why a configuration file was refused, with where in it.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    #[error("{origin}:{line}: {invalid}", line = line.map_or_else(|| "-".to_owned(), |l| l.to_string()))]
    Invalid {
        origin: String,
        line: Option<usize>,
        invalid: Invalid,
    },
}

fn invalid(key: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        key: key.into(),
        message: message.into(),
    }
}

fn seconds(key: &str, v: f64, min: f64, max: f64) -> Result<Duration, Invalid> {
    if !v.is_finite() || v < min || v > max {
        return Err(invalid(
            key,
            format!("must be between {min} and {max} seconds, not {v}"),
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

fn at_least_one(key: &str, v: usize) -> Result<(), Invalid> {
    if v == 0 {
        return Err(invalid(key, "must be at least 1"));
    }
    Ok(())
}

fn ice_urls(key: &str, urls: &[String], schemes: &[&str]) -> Result<(), Invalid> {
    for u in urls {
        if !schemes.iter().any(|s| u.starts_with(&format!("{s}:"))) || u.len() > 512 {
            return Err(invalid(key, format!("`{u}` is not a {} URL", schemes.join("/"))));
        }
    }
    Ok(())
}

impl Settings {
    /// Reads a configuration file's text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, SettingsError> {
        let settings: Settings = toml::from_str(text).map_err(|e| SettingsError::Syntax {
            origin: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        settings.validate().map_err(|invalid| SettingsError::Invalid {
            origin: origin.to_owned(),
            line: line_of(text, &invalid.key),
            invalid,
        })?;
        Ok(settings)
    }

    /// Checks the settings as a whole; the first problem found, by key.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.log.trim().is_empty() {
            return Err(invalid("log", "must not be empty"));
        }
        for o in &self.allow_origins {
            let ok = (o.starts_with("https://") || o.starts_with("http://")) && !o.ends_with('/');
            if !ok {
                return Err(invalid(
                    "allow_origins",
                    format!("`{o}` is not an origin (scheme://host[:port])"),
                ));
            }
        }
        self.proxies()?;
        let t = &self.tls;
        match (&t.cert, &t.key) {
            (Some(_), None) => return Err(invalid("tls.cert", "needs tls.key too")),
            (None, Some(_)) => return Err(invalid("tls.key", "needs tls.cert too")),
            (Some(_), Some(_)) if t.off => return Err(invalid("tls.off", "contradicts tls.cert and tls.key")),
            _ => {}
        }
        ice_urls("ice.stun", &self.ice.stun, &["stun", "stuns"])?;
        ice_urls("ice.turn", &self.ice.turn, &["turn", "turns"])?;
        ice_urls("turn.urls", &self.turn.urls, &["turn", "turns"])?;
        let turn = &self.turn;
        if turn.secret.is_some() && turn.secret_file.is_some() {
            return Err(invalid("turn.secret", "give secret or secret_file, not both"));
        }
        if !turn.urls.is_empty() && turn.secret.is_none() && turn.secret_file.is_none() {
            return Err(invalid(
                "turn.urls",
                "needs turn.secret or turn.secret_file (coturn's static-auth-secret)",
            ));
        }
        if turn.secret.as_deref().is_some_and(|s| s.len() < 16) {
            return Err(invalid(
                "turn.secret",
                "is too short to keep credentials from being forged (16+ characters)",
            ));
        }
        seconds("turn.ttl_secs", turn.ttl_secs, 10.0, 7.0 * 86_400.0)?;
        let s = &self.session;
        seconds("session.grace_secs", s.grace_secs, 1.0, 86_400.0)?;
        seconds("session.replay_ttl_secs", s.replay_ttl_secs, 1.0, 86_400.0)?;
        seconds("session.consent_timeout_secs", s.consent_timeout_secs, 1.0, 600.0)?;
        if !(1..=10_000).contains(&s.replay_messages) {
            return Err(invalid("session.replay_messages", "must be between 1 and 10000"));
        }
        if s.ephemeral_tokens && s.token_key_file.is_some() {
            return Err(invalid(
                "session.ephemeral_tokens",
                "contradicts session.token_key_file",
            ));
        }
        let l = &self.limits;
        at_least_one("limits.max_conns_per_addr", l.max_conns_per_addr)?;
        at_least_one("limits.max_conns", l.max_conns)?;
        at_least_one("limits.max_rooms_per_addr", l.max_rooms_per_addr)?;
        at_least_one("limits.max_rooms", l.max_rooms)?;
        at_least_one("limits.max_failures", l.max_failures as usize)?;
        seconds("limits.lockout_secs", l.lockout_secs, 1.0, 86_400.0)?;
        let ping = seconds("limits.ws_ping_secs", l.ws_ping_secs, 0.01, 3600.0)?;
        let silent = seconds("limits.ws_silent_secs", l.ws_silent_secs, 0.01, 3600.0)?;
        if silent < ping {
            return Err(invalid(
                "limits.ws_silent_secs",
                "must not be shorter than limits.ws_ping_secs",
            ));
        }
        let r = &self.redis;
        if let Some(url) = &r.url {
            let ok =
                (url.starts_with("redis://") || url.starts_with("rediss://")) && redis::parse_redis_url(url).is_some();
            if !ok {
                return Err(invalid(
                    "redis.url",
                    "is not a redis:// URL (redis://[:PASSWORD@]HOST:PORT[/DB])",
                ));
            }
        }
        if let Some(id) = &r.node_id {
            let ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                return Err(invalid("redis.node_id", "must be 1-64 letters, digits or `-`"));
            }
            if r.url.is_none() {
                return Err(invalid("redis.node_id", "needs redis.url"));
            }
        }
        Ok(())
    }

    /// The cluster side of the server, if `redis.url` is set.
    pub fn cluster(&self) -> Option<crate::cluster::ClusterConfig> {
        self.redis.url.as_ref().map(|url| crate::cluster::ClusterConfig {
            redis_url: url.clone(),
            node_id: self
                .redis
                .node_id
                .clone()
                .unwrap_or_else(crate::cluster::ClusterConfig::fresh_node_id),
        })
    }

    /// The trusted proxies as networks (a bare address is a /32 or /128).
    pub fn proxies(&self) -> Result<Vec<IpNet>, Invalid> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| invalid("trusted_proxies", format!("`{p}` is not an address or network")))
            })
            .collect()
    }

    pub fn limiter(&self) -> LimiterConfig {
        LimiterConfig {
            max_failures: self.limits.max_failures.max(1),
            first_lockout: Duration::from_secs_f64(self.limits.lockout_secs),
            ..LimiterConfig::default()
        }
    }

    pub fn replay(&self) -> ReplayConfig {
        ReplayConfig {
            capacity: self.session.replay_messages,
            ttl: Duration::from_secs_f64(self.session.replay_ttl_secs),
        }
    }

    pub fn conn_caps(&self) -> ConnCaps {
        ConnCaps {
            per_addr: self.limits.max_conns_per_addr,
            total: self.limits.max_conns,
        }
    }

    pub fn room_caps(&self) -> Caps {
        Caps {
            rooms_per_addr: self.limits.max_rooms_per_addr,
            rooms_total: self.limits.max_rooms,
        }
    }
}

/// The line (1-based) of `key` (`section.name`) in a TOML text, if it is there.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        let (_, value) = table.iter().find(|(k, _)| k.get_ref().as_ref() == part)?;
        if parts.peek().is_none() {
            return Some(text[..value.span().start].matches('\n').count() + 1);
        }
        match value.get_ref() {
            toml::de::DeValue::Table(t) => table = t,
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Settings::from_toml(text, "signal.toml").unwrap_err().to_string()
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        assert_eq!(Settings::from_toml("", "x").unwrap(), Settings::default());
        Settings::default().validate().unwrap();
    }

    #[test]
    fn the_packaged_example_is_valid_and_says_what_it_sets() {
        let text = include_str!("../../../packaging/signal/signal.toml");
        let s = Settings::from_toml(text, "signal.toml").unwrap();
        assert_eq!(s.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(s.session.grace_secs, 300.0);
        assert_eq!(s.tls.dir, PathBuf::from("/var/lib/holdfast-signal/tls"));
        assert_eq!(s.redis, RedisSettings::default(), "alone unless told");
        let clustered = text.replace("# url = ", "url = ").replace("# node_id = ", "node_id = ");
        let c = Settings::from_toml(&clustered, "signal.toml")
            .unwrap()
            .cluster()
            .unwrap();
        assert_eq!(
            (c.redis_url.as_str(), c.node_id.as_str()),
            ("redis://10.0.0.5:6379", "signal-1")
        );
    }

    #[test]
    fn a_full_file_reads_into_every_section() {
        let s = Settings::from_toml(
            r#"
listen = "0.0.0.0:443"
trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
allow_origins = ["https://support.example.com"]
[tls]
cert = "/etc/holdfast/cert.pem"
key = "/etc/holdfast/key.pem"
[turn]
urls = ["turn:turn.example.com:3478"]
secret_file = "/etc/holdfast/turn.secret"
ttl_secs = 600
[session]
grace_secs = 60
replay_messages = 100
[limits]
max_rooms = 500
"#,
            "x",
        )
        .unwrap();
        assert_eq!(s.proxies().unwrap().len(), 2);
        assert_eq!(s.turn.ttl_secs, 600.0);
        assert_eq!(s.replay().capacity, 100);
        assert_eq!(s.room_caps().rooms_total, 500);
        assert_eq!(
            s.limits.max_conns,
            ConnCaps::default().total,
            "unset keys keep their defaults"
        );
    }

    #[test]
    fn syntax_and_type_errors_name_the_line() {
        let e = err("listen = \"0.0.0.0:443\"\n[session]\ngrace_secs = \"long\"\n");
        assert!(e.contains("signal.toml") && e.contains("line 3"), "{e}");
        let e = err("listen = \n");
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused_by_name_and_line() {
        let e = err("[session]\ngrace_secs = 60\ngrace_minutes = 5\n");
        assert!(e.contains("grace_minutes") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn values_that_cannot_work_are_refused_with_key_and_line() {
        for (text, key, line) in [
            ("[turn]\nurls = [\"turn:t:3478\"]\n", "turn.urls", 2),
            (
                "[turn]\nurls = [\"http://t\"]\nsecret = \"0123456789abcdef\"\n",
                "turn.urls",
                2,
            ),
            ("[turn]\nsecret = \"short\"\n", "turn.secret", 2),
            ("[redis]\nurl = \"http://r:6379\"\n", "redis.url", 2),
            (
                "[redis]\nurl = \"redis://r:6379\"\nnode_id = \"a b\"\n",
                "redis.node_id",
                3,
            ),
            ("\n\n[session]\ngrace_secs = 0\n", "session.grace_secs", 4),
            (
                "[limits]\nws_ping_secs = 10\nws_silent_secs = 5\n",
                "limits.ws_silent_secs",
                3,
            ),
            ("[tls]\ncert = \"/c.pem\"\n", "tls.cert", 2),
            ("trusted_proxies = [\"10.0.0.0/33\"]\n", "trusted_proxies", 1),
            ("allow_origins = [\"support.example.com\"]\n", "allow_origins", 1),
            ("[limits]\nmax_rooms = 0\n", "limits.max_rooms", 2),
        ] {
            let e = err(text);
            assert!(
                e.starts_with(&format!("signal.toml:{line}: {key}:")),
                "{text:?} gave {e}"
            );
        }
    }
}
