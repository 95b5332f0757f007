//! Acceptance (issue 13, item 3): the server as an operator gets it.
//! `scripts/package-signal.sh` builds the `.deb` (here from the test build's
//! binary; alone it builds the release one), `apt-get install ./….deb`
//! installs it, the unit passes `systemd-analyze verify`, the installed
//! server serves HTTPS with the installed `/etc/holdfast/signal.toml` as the
//! service's user, and `--check-config` refuses broken files with the line
//! at fault. The package is purged afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use holdfast_testkit::{artifacts_dir, bin, output_of as run, repo_root, wait_for, InstalledPackage, Netns, Proc};

/// `--check-config` on `text`: (exit code, what it printed).
fn check(art: &Path, name: &str, text: &str) -> anyhow::Result<(i32, String)> {
    let path = art.join(name);
    std::fs::write(&path, text)?;
    let out = Command::new("/usr/bin/holdfast-signal")
        .arg("--check-config")
        .arg(&path)
        .output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[test]
fn the_server_deb_installs_and_serves_with_its_config_file() -> anyhow::Result<()> {
    let art = artifacts_dir("signal_package");
    let signal = bin("holdfast-signal");
    let deb = PathBuf::from(
        run(Command::new("bash")
            .arg(repo_root().join("scripts/package-signal.sh"))
            .arg("--binary")
            .arg(&signal)
            .arg("--out")
            .arg(&art)
            .current_dir(repo_root()))?
        .trim(),
    );
    let files = run(Command::new("dpkg-deb").arg("-c").arg(&deb))?;
    for f in [
        "./usr/bin/holdfast-signal",
        "./etc/holdfast/signal.toml",
        "./lib/systemd/system/holdfast-signal.service",
        "./usr/share/holdfast-signal/ui/index.html",
        "./usr/share/doc/holdfast-signal/deploy.md",
    ] {
        anyhow::ensure!(files.contains(f), "the package carries {f}: {files}");
    }
    let conffiles = run(Command::new("dpkg-deb").args(["-e"]).arg(&deb).arg(art.join("DEBIAN")))
        .and_then(|_| Ok(std::fs::read_to_string(art.join("DEBIAN/conffiles"))?))?;
    anyhow::ensure!(
        conffiles.trim() == "/etc/holdfast/signal.toml",
        "the config is a conffile: {conffiles}"
    );

    let _installed = InstalledPackage::install(&deb, "holdfast-signal")?;
    let owner = run(Command::new("stat").args(["-c", "%U:%G %a", "/etc/holdfast/signal.toml"]))?;
    anyhow::ensure!(
        owner.trim() == "root:holdfast-signal 640",
        "config owner and mode: {owner}"
    );

    // The unit, as systemd reads it (where systemd-analyze is installed).
    if Command::new("systemd-analyze").arg("--version").output().is_ok() {
        let out = Command::new("systemd-analyze")
            .args(["verify", "/lib/systemd/system/holdfast-signal.service"])
            .output()?;
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        anyhow::ensure!(
            out.status.success() && !said.contains("holdfast-signal.service:"),
            "systemd-analyze verify: {said}"
        );
        eprintln!("systemd-analyze verify: clean");
    } else {
        eprintln!("systemd-analyze is not installed: the unit was not verified");
    }

    // The installed file checks out, and the installed server serves with it
    // as the service's own user (in a namespace of its own: port 8443).
    let (code, said) = check(
        &art,
        "installed.toml",
        &std::fs::read_to_string("/etc/holdfast/signal.toml")?,
    )?;
    anyhow::ensure!(code == 0, "the installed config: {said}");
    let ns = Netns::new()?;
    let mut cmd = ns.command("runuser");
    cmd.args(["-u", "holdfast-signal", "--", "/usr/bin/holdfast-signal", "--config"])
        .arg("/etc/holdfast/signal.toml");
    let _server = Proc::spawn("installed-signal", cmd, &art)?;
    let page = wait_for(Duration::from_secs(20), "the installed server's HTTPS", || {
        Ok(ns
            .exec(&["curl", "-sfk", "https://127.0.0.1:8443/"])
            .ok()
            .filter(|p| p.contains("<html")))
    })?;
    anyhow::ensure!(page.contains("Holdfast"), "the viewer page: {page}");
    let health = ns.exec(&["curl", "-sfk", "https://127.0.0.1:8443/healthz"])?;
    eprintln!("installed server: https://127.0.0.1:8443/ serves the viewer; /healthz says {health}");
    let state = run(Command::new("ls").arg("/var/lib/holdfast-signal"))?;
    anyhow::ensure!(
        state.contains("tls") && state.contains("signal-token.key"),
        "its certificate and token key live in its state directory: {state}"
    );

    // Broken files: refused, with the line at fault.
    for (name, text, want) in [
        ("syntax.toml", "listen = \"0.0.0.0:8443\"\n[session\n", "line 2"),
        ("unknown.toml", "[session]\ngrace_secs = 60\ngrace = 5\n", "line 3"),
        ("type.toml", "[limits]\n\nmax_rooms = \"many\"\n", "line 3"),
        ("value.toml", "\n[session]\ngrace_secs = -4\n", ":3: session.grace_secs"),
        (
            "turn.toml",
            "[turn]\nurls = [\"turn:t.example:3478\"]\n",
            ":2: turn.urls",
        ),
        (
            "missing.toml",
            "[tls]\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"\n",
            "tls.cert: /nonexistent/c.pem",
        ),
    ] {
        let (code, said) = check(&art, name, text)?;
        anyhow::ensure!(code == 1 && said.contains(want), "{name}: exit {code}: {said}");
        eprintln!("{name}: {}", said.trim());
    }
    Ok(())
}
