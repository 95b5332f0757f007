//! Every install step of `scripts/deps.sh` runs here against an empty tool
//! root, so a broken install line fails the suite instead of hiding behind a
//! tool someone installed by hand long ago (as `cargo install tauri-driver@2`
//! once did: cargo 1.95 refuses a bare major version).
//!
//! - the cargo tools (`cargo-nextest`, `tauri-driver`) install into an empty
//!   `CARGO_INSTALL_ROOT` with a `PATH` that has neither, and then run;
//! - every Debian package the script names resolves (`apt-get -s`);
//! - with no node on PATH, Node.js installs into an empty root and runs;
//! - the npm packages install into an empty folder, and a second run is a no-op.
//!
//! Not exercised: the rustup branch (`curl sh.rustup.rs`), which runs only
//! where cargo is missing and needs a host this machine cannot reach.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};
use holdfast_testkit::repo_root;

/// A fresh, empty directory under the system's temporary folder.
fn empty_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("holdfast-{name}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A `PATH` with `tools` (through links to them) and the system's folders,
/// and nothing from any cargo install root or /usr/local.
fn bare_path(shim: &Path) -> Result<String> {
    link_tools(shim, &["cargo", "rustc"])?;
    Ok(format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", shim.display()))
}

/// Links each of `tools`, as found on this PATH, into `shim`.
fn link_tools(shim: &Path, tools: &[&str]) -> Result<()> {
    for tool in tools {
        let out = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()?;
        let found = String::from_utf8(out.stdout)?.trim().to_owned();
        if found.is_empty() {
            bail!("{tool} is not on PATH");
        }
        // The link keeps the tool's name, which is how rustup's proxies know what to run.
        std::os::unix::fs::symlink(&found, shim.join(tool)).with_context(|| format!("linking {found}"))?;
    }
    Ok(())
}

/// Runs `script` in bash after sourcing `scripts/deps.sh`, in `dir`.
fn deps_step(script: &str, dir: &Path, env: &[(&str, &str)]) -> Result<Output> {
    let deps = repo_root().join("scripts/deps.sh");
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("set -eu; source '{}'; {script}", deps.display()))
        .current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output()?;
    eprintln!(
        "--- {script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}

fn on_path(path: &str, tool: &str) -> Result<bool> {
    Ok(Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .env("PATH", path)
        .output()?
        .status
        .success())
}

#[test]
fn cargo_tools_install_into_an_empty_root_and_run() -> Result<()> {
    let root = empty_dir("tool-root")?;
    let shim = empty_dir("tool-shim")?;
    let path = bare_path(&shim)?;
    for tool in ["tauri-driver", "cargo-nextest"] {
        assert!(
            !on_path(&path, tool)?,
            "{tool} is on the bare PATH: the test would prove nothing"
        );
    }
    let env = [("PATH", path.as_str()), ("CARGO_INSTALL_ROOT", root.to_str().unwrap())];
    let out = deps_step(
        "holdfast_cargo_tools; command -v tauri-driver cargo-nextest",
        &root,
        &env,
    )?;
    assert!(out.status.success(), "the cargo install steps failed (see above)");
    let stdout = String::from_utf8(out.stdout)?;
    for tool in ["tauri-driver", "cargo-nextest"] {
        let installed = root.join("bin").join(tool);
        assert!(installed.is_file(), "{} missing", installed.display());
        assert!(
            stdout.contains(installed.to_str().unwrap()),
            "{tool} on PATH is not the one just installed: {stdout}"
        );
    }
    let nextest = Command::new(root.join("bin/cargo-nextest"))
        .args(["nextest", "--version"])
        .output()?;
    assert!(nextest.status.success(), "cargo-nextest does not run");
    let version = String::from_utf8_lossy(&nextest.stdout);
    assert!(version.starts_with("cargo-nextest 0.9"), "{version}");
    let driver = Command::new(root.join("bin/tauri-driver")).arg("--help").output()?;
    let help = format!(
        "{}{}",
        String::from_utf8_lossy(&driver.stdout),
        String::from_utf8_lossy(&driver.stderr)
    );
    assert!(help.contains("--native-driver"), "tauri-driver --help: {help}");
    eprintln!("installed into {}: {}", root.display(), version.trim());
    std::fs::remove_dir_all(&root)?;
    std::fs::remove_dir_all(&shim)?;
    Ok(())
}

#[test]
fn every_debian_package_the_script_names_resolves() -> Result<()> {
    let dir = empty_dir("apt")?;
    let out = deps_step(
        "apt-get install -s --no-install-recommends $(holdfast_apt_packages test) python3-venv",
        &dir,
        &[],
    )?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "apt-get refuses the package list: {text}");
    assert!(!text.contains("Unable to locate"), "{text}");
    // The lists are not empty by accident (a renamed variable would be).
    let listed = deps_step("holdfast_apt_packages test", &dir, &[])?;
    let names = String::from_utf8(listed.stdout)?;
    for must in ["chromium", "xvfb", "webkit2gtk-driver", "libwebkit2gtk-4.1-dev", "nasm"] {
        assert!(names.split_whitespace().any(|n| n == must), "{must} not in: {names}");
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn without_node_on_path_node_installs_into_an_empty_root() -> Result<()> {
    let root = empty_dir("node-root")?;
    std::fs::remove_dir(&root)?; // the step creates it
    let shim = empty_dir("node-shim")?;
    // No /usr/bin here (Debian's /bin is /usr/bin, where node may live): only what the step uses.
    link_tools(&shim, &["sh", "bash", "dpkg", "apt-get"])?;
    // The interpreter itself, not a version manager's wrapper script.
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()?;
    std::os::unix::fs::symlink(String::from_utf8(python.stdout)?.trim(), shim.join("python3"))?;
    let path = shim.display().to_string();
    assert!(
        !on_path(&path, "node")?,
        "node is on the bare PATH: the test would prove nothing"
    );
    let env = [("PATH", path.as_str()), ("HOLDFAST_NODE_ROOT", root.to_str().unwrap())];
    let out = deps_step("holdfast_node && node --version && npm --version", &shim, &env)?;
    assert!(out.status.success(), "the Node.js install step failed (see above)");
    let stdout = String::from_utf8(out.stdout)?;
    let version = stdout.lines().next().unwrap_or_default();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .unwrap_or("0")
        .parse()?;
    assert!(major >= 22, "node {version}");
    // Again: already there, nothing installed.
    let again = deps_step("holdfast_node && node --version", &shim, &env)?;
    assert!(again.status.success());
    assert!(!String::from_utf8_lossy(&again.stderr).contains("installing"));
    eprintln!("node {version} from {}", root.display());
    std::fs::remove_dir_all(&root)?;
    std::fs::remove_dir_all(&shim)?;
    Ok(())
}

#[test]
fn npm_packages_install_into_an_empty_folder_once() -> Result<()> {
    let dir = empty_dir("npm")?;
    for f in ["package.json", "package-lock.json"] {
        std::fs::copy(repo_root().join(f), dir.join(f))?;
    }
    let out = deps_step("holdfast_node; holdfast_npm", &dir, &[])?;
    assert!(out.status.success(), "npm install step failed");
    for bin in ["vite", "vitest", "tauri", "tsc"] {
        assert!(dir.join("node_modules/.bin").join(bin).exists(), "{bin} not installed");
    }
    let again = deps_step("holdfast_npm", &dir, &[])?;
    assert!(again.status.success());
    assert!(
        !String::from_utf8_lossy(&again.stderr).contains("installing"),
        "a second run reinstalled an unchanged lock file"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
