//! Who may talk to this server from a browser: the `Origin` allow-list and,
//! on a loopback bind, the `Host` check. Pure, so every rule is a unit test.
//!
//! WebSockets are not covered by the browser's same-origin policy: any page
//! the host's owner visits could open `ws://127.0.0.1:8080/ws` on the
//! embedded server and register rooms or join them (cross-site WebSocket
//! hijacking). So `/ws` and the API answer only:
//!
//! - requests without `Origin` (native clients: holdfast-host, the Rust viewer, curl);
//! - pages of this server itself (`Origin` equal to the scheme and `Host` the request came to);
//! - the desktop app's webview (`tauri://localhost`, `http(s)://tauri.localhost`);
//! - origins named with `--allow-origin`.
//!
//! On a loopback bind the `Host` must name loopback too; otherwise a page
//! could rebind its own name to 127.0.0.1 (DNS rebinding) and pass as "this
//! server's own origin".

/// The desktop app's webview origins on Linux/macOS and Windows.
const APP_ORIGINS: &[&str] = &["tauri://localhost", "http://tauri.localhost", "https://tauri.localhost"];
/// Longest header value looked at.
const MAX_HEADER_CHARS: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPolicy {
    /// `http` or `https`: how this server is reached.
    pub scheme: &'static str,
    /// The server listens on loopback only: `Host` must be loopback.
    pub loopback_bind: bool,
    /// Further allowed origins (`https://support.example.com`), exactly as browsers send them.
    pub extra: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("cross-origin request from {0} refused")]
    Origin(String),
    #[error("a loopback server answers only to a loopback Host, not {0}")]
    Host(String),
}

/// The host part of a `Host` header value (`[::1]:8080` → `::1`, `a.b:80` → `a.b`).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn is_loopback_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl OriginPolicy {
    /// Checks one request's `Origin` and `Host` headers (None when absent).
    pub fn check(&self, origin: Option<&str>, host: Option<&str>) -> Result<(), Refusal> {
        let shown = |s: &str| s.chars().take(80).collect::<String>();
        let host = host.unwrap_or_default();
        if host.len() > MAX_HEADER_CHARS || origin.is_some_and(|o| o.len() > MAX_HEADER_CHARS) {
            return Err(Refusal::Host("an oversized header".into()));
        }
        if self.loopback_bind && !is_loopback_name(host_name(host)) {
            return Err(Refusal::Host(shown(host)));
        }
        let Some(origin) = origin else {
            return Ok(()); // not a browser
        };
        let own = !host.is_empty() && origin.eq_ignore_ascii_case(&format!("{}://{host}", self.scheme));
        let allowed = own || APP_ORIGINS.contains(&origin) || self.extra.iter().any(|o| o.eq_ignore_ascii_case(origin));
        if allowed {
            Ok(())
        } else {
            Err(Refusal::Origin(shown(origin)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(loopback_bind: bool) -> OriginPolicy {
        OriginPolicy {
            scheme: "http",
            loopback_bind,
            extra: vec!["https://support.example.com".into()],
        }
    }

    #[test]
    fn native_clients_send_no_origin_and_pass() {
        assert_eq!(policy(true).check(None, Some("127.0.0.1:8080")), Ok(()));
        assert_eq!(policy(false).check(None, Some("203.0.113.5:8443")), Ok(()));
    }

    #[test]
    fn the_servers_own_pages_and_the_app_pass() {
        let p = policy(true);
        assert_eq!(p.check(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")), Ok(()));
        assert_eq!(p.check(Some("http://localhost:8080"), Some("localhost:8080")), Ok(()));
        assert_eq!(p.check(Some("http://[::1]:8080"), Some("[::1]:8080")), Ok(()));
        assert_eq!(p.check(Some("tauri://localhost"), Some("127.0.0.1:8080")), Ok(()));
        assert_eq!(
            p.check(Some("https://support.example.com"), Some("127.0.0.1:8080")),
            Ok(())
        );
        let lan = policy(false);
        assert_eq!(lan.check(Some("http://10.9.0.1:8080"), Some("10.9.0.1:8080")), Ok(()));
    }

    #[test]
    fn other_pages_are_refused() {
        let p = policy(true);
        for origin in [
            "https://evil.example",
            "http://127.0.0.1:9999",  // another port is another origin
            "https://127.0.0.1:8080", // and another scheme
            "null",                   // sandboxed frames, file: pages
            "http://127.0.0.1:8080.evil.example",
        ] {
            assert!(
                matches!(p.check(Some(origin), Some("127.0.0.1:8080")), Err(Refusal::Origin(_))),
                "{origin}"
            );
        }
    }

    #[test]
    fn a_rebound_name_cannot_reach_a_loopback_server() {
        // evil.example resolves to 127.0.0.1 now: its page is "same origin" by name.
        let p = policy(true);
        let e = p.check(Some("http://evil.example:8080"), Some("evil.example:8080"));
        assert!(matches!(e, Err(Refusal::Host(_))), "{e:?}");
        // Even without Origin (a form post, an image) the Host gives it away.
        assert!(p.check(None, Some("evil.example:8080")).is_err());
        assert!(p.check(None, None).is_err(), "HTTP/1.0 without Host");
        // A server on a public address answers to its public names.
        assert_eq!(policy(false).check(None, Some("holdfast.example.com")), Ok(()));
    }

    #[test]
    fn oversized_headers_are_refused() {
        let long = "a".repeat(MAX_HEADER_CHARS + 1);
        assert!(policy(false).check(Some(&long), Some("x")).is_err());
        assert!(policy(false).check(None, Some(&long)).is_err());
    }
}
