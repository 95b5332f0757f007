//! Files and clipboards for transfer tests: random files with their
//! SHA-256, and the X clipboard read and written with `xclip`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

/// Lowercase hex, as the transfer format writes SHA-256.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

pub fn sha256_file(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Writes `len` random bytes to `dir/name`; returns the path and its SHA-256.
pub fn random_file(dir: &Path, name: &str, len: usize) -> (PathBuf, String) {
    use rand::RngCore;
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    let path = dir.join(name);
    std::fs::write(&path, &data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, sha256_hex(&data))
}

/// The X clipboard's text on `display`.
pub fn xclip_out(display: &str) -> String {
    let out = Command::new("xclip")
        .args(["-o", "-selection", "clipboard"])
        .env("DISPLAY", display)
        .output()
        .expect("xclip runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Puts `text` on the X clipboard of `display` (xclip keeps serving it).
pub fn xclip_in(display: &str, text: &str) {
    use std::io::Write;
    let mut child = Command::new("xclip")
        .args(["-i", "-selection", "clipboard"])
        .env("DISPLAY", display)
        .stdin(Stdio::piped())
        .spawn()
        .expect("xclip runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("xclip reads");
    child.wait().expect("xclip ends");
}
