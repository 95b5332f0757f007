//! TLS for the viewer page: WebCodecs needs a secure context, which browsers
//! grant to `https://` and to `http://localhost` only. Certificates come from
//! files, or a self-signed one is generated once and kept for later runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP: only right on loopback.
    Off,
    /// PEM certificate chain and private key.
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed certificate stored in this directory (created on first
    /// run, and again whenever `names` change), valid for localhost, this
    /// host's name, and `names` (host names or IP addresses).
    SelfSigned { dir: PathBuf, names: Vec<String> },
}

impl TlsMode {
    /// The default for a listen address: plain on loopback, self-signed elsewhere.
    pub fn default_for(listen: &SocketAddr, dir: PathBuf) -> Self {
        if listen.ip().is_loopback() {
            TlsMode::Off
        } else {
            let names = if listen.ip().is_unspecified() {
                vec![]
            } else {
                vec![listen.ip().to_string()]
            };
            TlsMode::SelfSigned { dir, names }
        }
    }
}

/// Returns (certificate PEM, key PEM), generating a self-signed pair if none
/// exists yet for exactly these names.
pub fn load_or_create_self_signed(dir: &Path, extra_names: &[String]) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let (cert_path, key_path, names_path) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("names.txt"));
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            names.push(h.to_string());
        }
    }
    for n in extra_names {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    let names_line = names.join("\n");
    let same_names = std::fs::read_to_string(&names_path).is_ok_and(|n| n == names_line);
    if same_names && cert_path.exists() && key_path.exists() {
        return Ok((std::fs::read(&cert_path)?, std::fs::read(&key_path)?));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let generated = rcgen::generate_simple_self_signed(names).context("generating a self-signed certificate")?;
    let cert = generated.cert.pem().into_bytes();
    let key = generated.signing_key.serialize_pem().into_bytes();
    std::fs::write(&cert_path, &cert)?;
    write_private(&key_path, &key)?;
    std::fs::write(&names_path, names_line)?;
    Ok((cert, key))
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(data)
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificate_is_created_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("holdfast-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = load_or_create_self_signed(&dir, &[]).unwrap();
        let second = load_or_create_self_signed(&dir, &[]).unwrap();
        assert_eq!(first, second);
        assert!(String::from_utf8_lossy(&first.0).contains("BEGIN CERTIFICATE"));
        let other = load_or_create_self_signed(&dir, &["10.1.2.3".into()]).unwrap();
        assert_ne!(first, other, "new names, new certificate");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn loopback_defaults_to_plain_http() {
        let d = PathBuf::from("/tmp/x");
        assert_eq!(
            TlsMode::default_for(&"127.0.0.1:8080".parse().unwrap(), d.clone()),
            TlsMode::Off
        );
        assert!(matches!(
            TlsMode::default_for(&"0.0.0.0:8443".parse().unwrap(), d),
            TlsMode::SelfSigned { .. }
        ));
    }
}
