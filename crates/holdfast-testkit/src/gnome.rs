//! A headless GNOME session for tests: its own D-Bus session bus, PipeWire
//! and WirePlumber, and Mutter as a Wayland compositor with virtual
//! monitors (`mutter --headless --virtual-monitor WxH ... --wayland
//! --no-x11`), all in a fresh 0700 `XDG_RUNTIME_DIR`. The same thing
//! `dbus-run-session` sets up, with each process owned (and logged) here.
//!
//! Commands made with [`GnomeSession::command`] run inside it: they see its
//! bus, its PipeWire and its Wayland socket, and no X display.
//! [`GnomeSession::set_scales`] scales the monitors as the Displays panel
//! would (`DisplayConfig.ApplyMonitorsConfig`); fractional scales need
//! Mutter's `scale-monitor-framebuffer` feature, which
//! [`GnomeSession::start_with_features`] turns on.

use std::collections::HashMap;
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
        Self::start_with_features(monitors, &[], log_dir)
    }

    /// As [`start`](Self::start), with Mutter's `experimental-features`
    /// set (say `scale-monitor-framebuffer`, for fractional scales).
    pub fn start_with_features(monitors: &[(u32, u32)], features: &[&str], log_dir: &Path) -> Result<GnomeSession> {
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
        if !features.is_empty() {
            // GLib's keyfile settings backend: Mutter's settings from a file
            // of this session's own, no dconf daemon.
            let config = session.runtime_dir.join("config");
            let dir = config.join("glib-2.0/settings");
            std::fs::create_dir_all(&dir)?;
            let list: Vec<String> = features.iter().map(|f| format!("'{f}'")).collect();
            std::fs::write(
                dir.join("keyfile"),
                format!("[org/gnome/mutter]\nexperimental-features=[{}]\n", list.join(", ")),
            )?;
            mutter
                .env("GSETTINGS_BACKEND", "keyfile")
                .env("XDG_CONFIG_HOME", &config);
        }
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

    /// Sets each monitor's scale (in the order [`start`](Self::start) made
    /// them; the first stays primary), laid out left to right with their
    /// tops aligned, and waits until Mutter reports the new layout.
    pub fn set_scales(&self, scales: &[f64]) -> Result<()> {
        use holdfast_screen::mutter::{Mode, State};
        use zbus::zvariant::Value;
        type LogicalConfig<'a> = (
            i32,
            i32,
            f64,
            u32,
            bool,
            Vec<(String, String, HashMap<String, Value<'a>>)>,
        );
        const DEST: &str = "org.gnome.Mutter.DisplayConfig";

        let conn = zbus::blocking::connection::Builder::address(self.bus_address.as_str())?.build()?;
        let config = zbus::blocking::Proxy::new(&conn, DEST, "/org/gnome/Mutter/DisplayConfig", DEST)?;
        let (serial, mut monitors, _, props): State = config.call("GetCurrentState", &())?;
        // Virtual monitors are named Meta-0, Meta-1, ... in the order given.
        monitors.sort_by(|a, b| a.0 .0.cmp(&b.0 .0));
        anyhow::ensure!(
            monitors.len() == scales.len(),
            "{} monitors, {} scales",
            monitors.len(),
            scales.len()
        );
        // 1: logical layout (positions in logical pixels), 2: physical.
        let logical_layout = props.get("layout-mode").and_then(|v| u32::try_from(v).ok()) == Some(1);
        let mut x = 0;
        let mut layout: Vec<LogicalConfig> = Vec::new();
        for (i, ((spec, modes, _), scale)) in monitors.iter().zip(scales).enumerate() {
            let current = |m: &&Mode| m.6.get("is-current").and_then(|v| bool::try_from(v).ok()) == Some(true);
            let mode = modes
                .iter()
                .find(current)
                .with_context(|| format!("{} has no current mode", spec.0))?;
            anyhow::ensure!(
                mode.5.iter().any(|s| (s - scale).abs() < 0.01),
                "{} ({}x{}) does not take scale {scale}; it takes {:?}",
                spec.0,
                mode.1,
                mode.2,
                mode.5
            );
            // Mutter's own value for the scale (its list holds exact floats).
            let exact = mode
                .5
                .iter()
                .copied()
                .find(|s| (s - scale).abs() < 0.01)
                .unwrap_or(*scale);
            layout.push((
                x,
                0,
                exact,
                0,
                i == 0,
                vec![(spec.0.clone(), mode.0.clone(), HashMap::new())],
            ));
            x += if logical_layout {
                (mode.1 as f64 / exact).round() as i32
            } else {
                mode.1
            };
        }
        // 1: temporary (not stored for the next login).
        let no_props: HashMap<String, Value> = HashMap::new();
        let _: () = config.call("ApplyMonitorsConfig", &(serial, 1u32, layout, no_props))?;
        wait_for(Duration::from_secs(10), "the new monitor scales", || {
            let (_, _, logical, _): State = config.call("GetCurrentState", &())?;
            let mut now: Vec<(String, f64)> = logical
                .iter()
                .flat_map(|l| l.5.iter().map(move |s| (s.0.clone(), l.2)))
                .collect();
            now.sort_by(|a, b| a.0.cmp(&b.0));
            let done = now.len() == scales.len() && now.iter().zip(scales).all(|((_, a), b)| (a - b).abs() < 0.01);
            Ok(done.then_some(()))
        })
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
    for tool in [
        "mutter",
        "pipewire",
        "wireplumber",
        "dbus-daemon",
        "gdbus",
        "wl-copy",
        "wl-paste",
    ] {
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
