//! A headless GNOME session for tests: its own D-Bus session bus, PipeWire
//! and WirePlumber, and Mutter as a Wayland compositor with virtual
//! monitors (`mutter --headless --virtual-monitor WxH ... --wayland
//! --no-x11`), all in a fresh 0700 `XDG_RUNTIME_DIR`. The same thing
//! `dbus-run-session` sets up, with each process owned (and logged) here.
//!
//! Commands made with [`GnomeSession::command`] run inside it: they see its
//! bus, its PipeWire and its Wayland socket, and no X display.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::{bin, wait_for, Proc, COUNTER};

pub struct GnomeSession {
    pub runtime_dir: PathBuf,
    pub bus_address: String,
    // Dropped last to first: Mutter, WirePlumber, PipeWire, the bus.
    procs: Vec<Proc>,
}

impl GnomeSession {
    /// Starts a session with one virtual monitor per `(width, height)`
    /// (the first is the primary), and waits until Mutter's remote-desktop
    /// API is on the bus and PipeWire answers.
    pub fn start(monitors: &[(u32, u32)], log_dir: &Path) -> Result<GnomeSession> {
        let runtime_dir = std::env::temp_dir().join(format!(
            "holdfast-gnome-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&runtime_dir);
        std::fs::create_dir_all(&runtime_dir)?;
        std::fs::set_permissions(&runtime_dir, std::fs::Permissions::from_mode(0o700))?;
        let bus_address = format!("unix:path={}", runtime_dir.join("bus").display());
        let mut session = GnomeSession {
            runtime_dir,
            bus_address,
            procs: Vec::new(),
        };
        let mut bus = Command::new("dbus-daemon");
        bus.args([
            "--session",
            "--nofork",
            "--nopidfile",
            "--address",
            &session.bus_address,
        ]);
        session.procs.push(Proc::spawn("dbus-session", bus, log_dir)?);
        wait_for(Duration::from_secs(10), "the session bus", || {
            Ok(session.runtime_dir.join("bus").exists().then_some(()))
        })?;

        session
            .procs
            .push(Proc::spawn("pipewire", session.command("pipewire"), log_dir)?);
        wait_for(Duration::from_secs(10), "PipeWire", || {
            Ok(session.runtime_dir.join("pipewire-0").exists().then_some(()))
        })?;
        session
            .procs
            .push(Proc::spawn("wireplumber", session.command("wireplumber"), log_dir)?);

        let mut mutter = session.command("mutter");
        mutter.arg("--headless");
        for (w, h) in monitors {
            mutter.args(["--virtual-monitor", &format!("{w}x{h}")]);
        }
        mutter.args(["--wayland", "--no-x11"]);
        session.procs.push(Proc::spawn("mutter", mutter, log_dir)?);
        wait_for(Duration::from_secs(30), "Mutter's remote-desktop API", || {
            let names = session.bus_names().unwrap_or_default();
            let ready = [
                "org.gnome.Mutter.RemoteDesktop",
                "org.gnome.Mutter.ScreenCast",
                "org.gnome.Mutter.DisplayConfig",
            ]
            .iter()
            .all(|n| names.iter().any(|x| x == n));
            Ok((ready && session.runtime_dir.join("wayland-0").exists()).then_some(()))
        })?;
        Ok(session)
    }

    /// Mutter's process (for its CPU use).
    pub fn mutter_pid(&self) -> u32 {
        self.procs.last().map_or(0, Proc::pid)
    }

    /// `program` inside the session (its bus, PipeWire, Wayland; no X).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        self.enter(&mut cmd);
        cmd
    }

    /// Puts `cmd` (made elsewhere, say in a network namespace: the
    /// session's sockets are files, reachable from any namespace) inside
    /// the session.
    pub fn enter<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        // GSETTINGS_BACKEND=memory: Mutter's own settings, no dconf daemon.
        cmd.envs(self.env()).env_remove("DISPLAY")
    }

    /// What [`enter`](Self::enter) sets, as pairs (for launchers that take
    /// an environment list).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("XDG_RUNTIME_DIR", self.runtime_dir.to_string_lossy().into_owned()),
            ("DBUS_SESSION_BUS_ADDRESS", self.bus_address.clone()),
            ("WAYLAND_DISPLAY", "wayland-0".into()),
            ("XDG_SESSION_TYPE", "wayland".into()),
            ("XDG_CURRENT_DESKTOP", "GNOME".into()),
            ("GSETTINGS_BACKEND", "memory".into()),
        ]
    }

    /// The names on the session bus.
    pub fn bus_names(&self) -> Result<Vec<String>> {
        let out = self
            .command("gdbus")
            .args([
                "call",
                "--session",
                "--dest",
                "org.freedesktop.DBus",
                "--object-path",
                "/org/freedesktop/DBus",
                "--method",
                "org.freedesktop.DBus.ListNames",
            ])
            .stderr(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!("gdbus ListNames failed");
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .split('\'')
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, s)| s.to_owned())
            .collect())
    }

    /// Starts the Wayland-native pattern window fullscreen on `output`
    /// (a connector such as `Meta-1`; `None`: the primary), and waits until
    /// it has drawn at its fullscreen size.
    pub fn start_pattern(&self, output: Option<&str>, log_dir: &Path, name: &str) -> Result<(Proc, (u32, u32))> {
        let mut cmd = self.command(bin("holdfast-wayland-pattern"));
        if let Some(o) = output {
            cmd.args(["--output", o]);
        }
        let p = Proc::spawn(name, cmd, log_dir)?;
        loop {
            let (ev, _) = p.next_event(&["drawn", "error"], Duration::from_secs(20))?;
            if ev["event"] == "error" {
                bail!("{name}: {ev}");
            }
            // The first draw may be at the pre-fullscreen size.
            let size = (
                ev["width"].as_u64().unwrap_or(0) as u32,
                ev["height"].as_u64().unwrap_or(0) as u32,
            );
            if size.0 > 640 || size.1 > 480 {
                return Ok((p, size));
            }
        }
    }
}

impl Drop for GnomeSession {
    fn drop(&mut self) {
        while let Some(p) = self.procs.pop() {
            drop(p);
        }
        let _ = std::fs::remove_dir_all(&self.runtime_dir);
    }
}

/// Whether this machine has what [`GnomeSession`] needs.
pub fn available() -> Result<()> {
    for tool in ["mutter", "pipewire", "wireplumber", "dbus-daemon", "gdbus"] {
        which(tool).with_context(|| format!("{tool} is not installed (scripts/deps.sh installs it)"))?;
    }
    Ok(())
}

fn which(tool: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("{tool} not found"))
}
