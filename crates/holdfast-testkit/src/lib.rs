//! Test harness for Holdfast's end-to-end tests: the real components, started
//! and stopped by the test itself.
//!
//! - [`Netns`]: a private network namespace with only loopback, so every
//!   packet of a test stays on this machine and tests never collide on ports.
//! - [`Xvfb`]: a virtual X display (inside the namespace).
//! - [`Proc`]: a child process killed when dropped, with stdout lines.
//! - [`Browser`]: Debian's Chromium driven through `tests/browser/driver.mjs`.
//! - [`pattern`]: the colours the test-pattern window paints.
//! - [`netem`]: loss and delay for a [`Link`], in userspace ([`Link::impair`]).
//! - [`standin`]: a lying signalling server for the hostile-server suite.
//! - [`ratebench`]: video over a shaped link with a busy screen, change-to-canvas latency (issue 14).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

pub mod changecode;
pub mod files;
pub mod gnome;
pub mod netem;
pub mod ratebench;
pub mod standin;
pub mod webdriver;
pub use webdriver::AppDriver;

/// A window covering the whole screen, above everything (override-redirect),
/// and a graphics context for it: what the picture programs draw into
/// (`holdfast-testpattern`, `holdfast-busyscreen`). Returns (window, gc).
pub fn fullscreen_window(conn: &impl x11rb::connection::Connection, screen_num: usize) -> Result<(u32, u32)> {
    use x11rb::protocol::xproto::{ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask, WindowClass};
    let screen = &conn.setup().roots[screen_num];
    let win = conn.generate_id()?;
    conn.create_window(
        x11rb::COPY_DEPTH_FROM_PARENT,
        win,
        screen.root,
        0,
        0,
        screen.width_in_pixels,
        screen.height_in_pixels,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new()
            .override_redirect(1)
            .background_pixel(0)
            .event_mask(EventMask::EXPOSURE),
    )?;
    let gc = conn.generate_id()?;
    conn.create_gc(gc, win, &CreateGCAux::new().graphics_exposures(0))?;
    conn.map_window(win)?;
    conn.flush()?;
    Ok((win, gc))
}

pub mod pattern {
    //! What `holdfast-testpattern` paints, as (r, g, b).
    pub const TOP_LEFT: [u8; 3] = [0xE0, 0x20, 0x20];
    pub const TOP_RIGHT: [u8; 3] = [0x20, 0xC0, 0x40];
    pub const BOTTOM_LEFT: [u8; 3] = [0x20, 0x40, 0xE0];
    pub const BOTTOM_RIGHT: [u8; 3] = [0xF0, 0xD0, 0x20];

    /// Whether two colours match within `tol` per channel (codec and colour
    /// conversion shift saturated colours by a few levels).
    pub fn close(a: [u8; 3], b: [u8; 3], tol: u8) -> bool {
        a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tol)
    }
}

pub mod wayland_pattern {
    //! What `holdfast-wayland-pattern` paints (its default top-left fill
    //! and the three fixed quadrants), as (r, g, b): one definition for the
    //! window and the tests that look for its colours.
    pub const FILL: [u8; 3] = [0xd0, 0x30, 0x30];
    pub const TOP_RIGHT: [u8; 3] = [0x30, 0xd0, 0x30];
    pub const BOTTOM_LEFT: [u8; 3] = [0x30, 0x30, 0xd0];
    pub const BOTTOM_RIGHT: [u8; 3] = [0xf0, 0xf0, 0xf0];

    /// A colour as 0xRRGGBB.
    pub const fn packed(c: [u8; 3]) -> u32 {
        (c[0] as u32) << 16 | (c[1] as u32) << 8 | c[2] as u32
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A workspace binary built next to the running test.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("deps dir");
    let dir = if dir.ends_with("deps") {
        dir.parent().expect("profile dir")
    } else {
        dir
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// Where a test keeps its screenshots and logs.
pub fn artifacts_dir(test: &str) -> PathBuf {
    let dir = repo_root().join("test-artifacts").join(test);
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// Polls `f` until it returns `Some`, or fails after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let start = Instant::now();
    let mut last_err = None;
    loop {
        match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what} (last error: {last_err:?})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Runs `cmd` to success and returns its stdout (its output in the error otherwise).
pub fn output_of(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A Debian package a test installed: purged when the test ends, however it ends.
pub struct InstalledPackage(pub &'static str);

impl InstalledPackage {
    /// `apt-get install ./file.deb`, purged on drop.
    pub fn install(deb: &Path, name: &'static str) -> Result<Self> {
        let guard = InstalledPackage(name);
        output_of(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "--reinstall", "--no-install-recommends"])
                .arg(deb)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        Ok(guard)
    }
}

impl Drop for InstalledPackage {
    fn drop(&mut self) {
        let _ = Command::new("apt-get").args(["purge", "-y", "-qq", self.0]).output();
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace with only `lo` up; deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Result<Self> {
        let name = format!("hf{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        run(Command::new("ip").args(["netns", "add", &name]))
            .context("creating a network namespace (needs root and iproute2)")?;
        let ns = Netns { name };
        run(Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]))?;
        Ok(ns)
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// IPv6 off (late link-local addresses upset Chromium's ICE).
    fn disable_ipv6(&self) -> Result<()> {
        self.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])?;
        self.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"])?;
        Ok(())
    }

    /// Runs a command inside the namespace and waits for it.
    pub fn exec(&self, args: &[&str]) -> Result<String> {
        let out = self.command(args[0]).args(&args[1..]).output()?;
        if !out.status.success() {
            bail!("{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// One end of a veth pair between two namespaces; the link can be cut and restored.
pub struct Veth {
    ns: String,
    pub dev: String,
}

impl Netns {
    /// A veth pair from this namespace (`ip_here`) to `other` (`ip_there`),
    /// both `/24`, IPv6 off in both (late link-local addresses upset Chromium).
    /// Returns this side's end.
    pub fn veth_to(&self, other: &Netns, ip_here: &str, ip_there: &str) -> Result<Veth> {
        let (here, there) = (format!("{}a", self.name), format!("{}b", self.name));
        self.disable_ipv6()?;
        other.disable_ipv6()?;
        run(Command::new("ip").args([
            "link",
            "add",
            &here,
            "netns",
            &self.name,
            "type",
            "veth",
            "peer",
            "name",
            &there,
            "netns",
            &other.name,
        ]))?;
        self.exec(&["ip", "addr", "add", &format!("{ip_here}/24"), "dev", &here])?;
        other.exec(&["ip", "addr", "add", &format!("{ip_there}/24"), "dev", &there])?;
        self.exec(&["ip", "link", "set", &here, "up"])?;
        other.exec(&["ip", "link", "set", &there, "up"])?;
        Ok(Veth {
            ns: self.name.clone(),
            dev: here,
        })
    }
}

impl Veth {
    /// Cuts (`false`) or restores (`true`) the link: with one end down nothing crosses.
    pub fn set_up(&self, up: bool) -> Result<()> {
        run(Command::new("ip").args(["-n", &self.ns, "link", "set", &self.dev, if up { "up" } else { "down" }]))
    }
}

/// A switched LAN: a namespace holding a Linux bridge that other namespaces
/// plug into ([`Lan::attach`]), so host, viewer and server each get their own
/// namespace and link, and any one link can be cut or degraded alone.
pub struct Lan {
    switch: Netns,
    ports: AtomicUsize,
}

/// One namespace's cable into a [`Lan`]: both ends, so faults apply both ways.
pub struct Link {
    ns: String,
    pub dev: String,
    switch_ns: String,
    switch_dev: String,
}

impl Lan {
    pub fn new() -> Result<Self> {
        let switch = Netns::new()?;
        switch.exec(&["ip", "link", "add", "br0", "type", "bridge"])?;
        switch.exec(&["ip", "link", "set", "br0", "up"])?;
        Ok(Lan {
            switch,
            ports: AtomicUsize::new(0),
        })
    }

    /// Plugs `ns` in with address `ip`/24 (IPv6 off, as Chromium dislikes late link-local addresses).
    pub fn attach(&self, ns: &Netns, ip: &str) -> Result<Link> {
        let n = self.ports.fetch_add(1, Ordering::SeqCst);
        let (here, port) = (format!("{}e{n}", self.switch.name), format!("{}p{n}", self.switch.name));
        ns.disable_ipv6()?;
        run(Command::new("ip").args([
            "link",
            "add",
            &here,
            "netns",
            &ns.name,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &self.switch.name,
        ]))?;
        self.switch.exec(&["ip", "link", "set", &port, "master", "br0"])?;
        self.switch.exec(&["ip", "link", "set", &port, "up"])?;
        ns.exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", &here])?;
        ns.exec(&["ip", "link", "set", &here, "up"])?;
        Ok(Link {
            ns: ns.name.clone(),
            dev: here,
            switch_ns: self.switch.name.clone(),
            switch_dev: port,
        })
    }
}

impl Link {
    /// Silently drops everything both ways: the switch port leaves the bridge,
    /// so this end keeps its link, carrier and routes, and no error reaches
    /// the sockets, as in a real outage upstream. [`Link::restore`] undoes it.
    pub fn blackout(&self) -> Result<()> {
        run(Command::new("ip").args(["-n", &self.switch_ns, "link", "set", &self.switch_dev, "nomaster"]))
    }

    /// Loses `loss_percent` of the packets and delays the rest by `delay`,
    /// each way, until the returned [`Impaired`] is dropped. This kernel has
    /// no `sch_netem`, so `holdfast-netem` carries the port's frames in
    /// userspace (see [`netem`]); the switch port leaves the bridge and a
    /// veth pair through the forwarder takes its place.
    pub fn impair(&self, loss_percent: f64, delay: Duration, seed: u64, log_dir: &Path) -> Result<Impaired> {
        let (inner, outer) = (format!("{}i", self.switch_dev), format!("{}j", self.switch_dev));
        let ip = |args: &[&str]| run(Command::new("ip").args(["-n", &self.switch_ns]).args(args));
        ip(&["link", "add", &inner, "type", "veth", "peer", "name", &outer])?;
        ip(&["link", "set", &outer, "up"])?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.switch_ns])
            .arg(bin("holdfast-netem"))
            .args([&self.switch_dev, &outer])
            .args(["--loss", &loss_percent.to_string()])
            .args(["--delay-ms", &delay.as_millis().to_string()])
            .args(["--seed", &seed.to_string()]);
        let proc = Proc::spawn(&format!("netem-{}", self.switch_dev), cmd, log_dir)?;
        let impaired = Impaired {
            proc,
            switch_ns: self.switch_ns.clone(),
            switch_dev: self.switch_dev.clone(),
            inner,
            last: std::cell::RefCell::new(serde_json::Value::Null),
        };
        // The forwarder is carrying frames before the port leaves the bridge.
        impaired.proc.json_line(Duration::from_secs(5))?;
        ip(&["link", "set", &self.switch_dev, "nomaster"])?;
        ip(&["link", "set", &impaired.inner, "master", "br0"])?;
        ip(&["link", "set", &impaired.inner, "up"])?;
        Ok(impaired)
    }

    /// Limits what reaches this end to `rate_kbit` (a token bucket on the
    /// switch's port, as a slow downlink); None lifts it.
    pub fn shape_inbound(&self, rate_kbit: Option<u32>) -> Result<()> {
        shape_egress(&self.switch_ns, &self.switch_dev, rate_kbit)
    }

    /// Ends a [`Link::blackout`]: the port is bridged again.
    pub fn restore(&self) -> Result<()> {
        run(Command::new("ip").args(["-n", &self.switch_ns, "link", "set", &self.switch_dev, "master", "br0"]))
    }

    /// Moves this end to a new address, as a new DHCP lease does: the old one
    /// goes first (deleting a primary address also deletes the secondaries
    /// of its subnet, so the new one is added after).
    pub fn readdress(&self, old_ip: &str, new_ip: &str) -> Result<()> {
        run(Command::new("ip").args(["-n", &self.ns, "addr", "del", &format!("{old_ip}/24"), "dev", &self.dev]))?;
        run(Command::new("ip").args(["-n", &self.ns, "addr", "add", &format!("{new_ip}/24"), "dev", &self.dev]))
    }
}

/// Shapes what `dev` in namespace `ns` sends to a token bucket at
/// `rate_kbit` (None: removes it). The queue holds 300 ms at the rate (at
/// least 16 KB), as a modem or a hotel's uplink does: what does not fit is
/// dropped. A new rate on a shaped link keeps what its queue holds (`tc
/// qdisc change`), as a link whose rate changes does: deleting the qdisc
/// would drop it, a burst of losses no real link makes when it speeds up.
pub fn shape_egress(ns: &str, dev: &str, rate_kbit: Option<u32>) -> Result<()> {
    let tc = |args: &[&str]| run(Command::new("ip").args(["netns", "exec", ns, "tc"]).args(args));
    let Some(rate) = rate_kbit else {
        let _ = tc(&["qdisc", "del", "dev", dev, "root"]);
        return Ok(());
    };
    let limit = ((rate as u64 * 1000 / 8) * 3 / 10).max(16 * 1024).to_string();
    let rate = format!("{rate}kbit");
    let tbf = ["root", "tbf", "rate", &rate, "burst", "16kb", "limit", &limit];
    let change: Vec<&str> = ["qdisc", "change", "dev", dev].into_iter().chain(tbf).collect();
    if tc(&change).is_ok() {
        return Ok(());
    }
    let _ = tc(&["qdisc", "del", "dev", dev, "root"]);
    let add: Vec<&str> = ["qdisc", "add", "dev", dev].into_iter().chain(tbf).collect();
    tc(&add)
}

/// A [`Link`] under [`Link::impair`]; dropping it bridges the port again.
pub struct Impaired {
    proc: Proc,
    switch_ns: String,
    switch_dev: String,
    inner: String,
    last: std::cell::RefCell<serde_json::Value>,
}

impl Impaired {
    /// The forwarder's latest counters:
    /// `{"a_to_b": {"passed", "lost", "overflow"}, "b_to_a": {..}}`, where
    /// `a_to_b` is what the participant sent.
    pub fn counters(&self) -> serde_json::Value {
        while let Ok(v) = self.proc.json_line(Duration::ZERO) {
            *self.last.borrow_mut() = v;
        }
        self.last.borrow().clone()
    }
}

impl Drop for Impaired {
    fn drop(&mut self) {
        let ip = |args: &[&str]| {
            let _ = Command::new("ip").args(["-n", &self.switch_ns]).args(args).output();
        };
        // The forwarder stops before the port is bridged again (no frame twice).
        let _ = self.proc.signal("KILL");
        ip(&["link", "set", &self.switch_dev, "master", "br0"]);
        ip(&["link", "del", &self.inner]);
    }
}

/// The X server's input state via `holdfast-xstate`: `{"pointer":[x,y],"keys":[..],"buttons":..}`.
pub fn x_input_state(ns: Option<&Netns>, display: &str) -> Result<serde_json::Value> {
    let out = command_in(ns, bin("holdfast-xstate"))
        .env("DISPLAY", display)
        .output()?;
    if !out.status.success() {
        bail!("holdfast-xstate: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The pointer position as `xdotool getmouselocation` reports it.
pub fn xdotool_pointer(ns: Option<&Netns>, display: &str) -> Result<(i32, i32)> {
    let out = command_in(ns, "xdotool")
        .args(["getmouselocation", "--shell"])
        .env("DISPLAY", display)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| -> Result<i32> {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .ok_or_else(|| anyhow!("xdotool printed no {k}: {text}"))?
            .trim()
            .parse()
            .map_err(Into::into)
    };
    Ok((field("X=")?, field("Y=")?))
}

/// Starts `holdfast-probe-viewer` in `ns` for `room` (as `start_host` returned it).
pub fn start_probe_viewer(
    ns: &Netns,
    signal_url: &str,
    room: &serde_json::Value,
    args: &[&str],
    log_dir: &Path,
) -> Result<Proc> {
    let mut cmd = ns.command(bin("holdfast-probe-viewer"));
    cmd.args([
        "--signal",
        signal_url,
        "--id",
        room["id"].as_str().unwrap_or_default(),
        "--code",
        room["code"].as_str().unwrap_or_default(),
    ])
    .args(args);
    Proc::spawn("viewer", cmd, log_dir)
}

/// A command for `program`, inside `ns` when given, else in this namespace.
pub fn command_in(ns: Option<&Netns>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match ns {
        Some(ns) => ns.command(program),
        None => Command::new(program),
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// A child process, killed on drop. Stdout lines arrive on [`Proc::lines`];
/// stderr goes to a log file in the artifacts directory.
pub struct Proc {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let err = std::fs::File::create(&log)?;
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(err);
        // Its own process group, so dropping it ends what it started too
        // (dbus-run-session's bus daemon, a browser's helpers).
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().with_context(|| format!("starting {name}: {cmd:?}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Proc {
            name: name.into(),
            child,
            stdin,
            lines,
            log,
        })
    }

    /// The next stdout line, within `timeout`.
    pub fn line(&self, timeout: Duration) -> Result<String> {
        self.lines.recv_timeout(timeout).map_err(|_| {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: String = log
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            anyhow!("{}: no output within {timeout:?}; log tail:\n{tail}", self.name)
        })
    }

    /// The next stdout line that is a JSON object, skipping any other output.
    pub fn json_line(&self, timeout: Duration) -> Result<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let line = self.line(deadline.saturating_duration_since(Instant::now()))?;
            if line.trim_start().starts_with('{') {
                return Ok(serde_json::from_str(&line)?);
            }
            eprintln!("{}: {line}", self.name);
        }
    }

    /// The next JSON event whose `event` is one of `names` (within `within`),
    /// with the events read on the way.
    pub fn next_event(&self, names: &[&str], within: Duration) -> Result<(serde_json::Value, Vec<serde_json::Value>)> {
        let deadline = Instant::now() + within;
        let mut skipped = Vec::new();
        loop {
            let ev = self.json_line(deadline.saturating_duration_since(Instant::now()))?;
            if names.iter().any(|n| ev["event"] == *n) {
                return Ok((ev, skipped));
            }
            skipped.push(ev);
        }
    }

    /// The JSON lines it prints for the next `d`.
    pub fn events_for(&self, d: Duration) -> Vec<serde_json::Value> {
        let until = std::time::Instant::now() + d;
        let mut out = Vec::new();
        while let Ok(ev) = self.json_line(until.saturating_duration_since(std::time::Instant::now())) {
            out.push(ev);
            if std::time::Instant::now() >= until {
                break;
            }
        }
        out
    }

    pub fn write_line(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow!("stdin closed"))?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGSTOP/SIGCONT and other signals by name.
    pub fn signal(&self, sig: &str) -> Result<()> {
        run(Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Leaked session buses each hold an inotify instance; at the
        // per-user limit (128) tools that watch files fail with EMFILE.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's coturn as the TURN relay, inside a namespace: listening on
/// port 3478 (UDP and TCP) of each `listen` address, relaying from `relay`,
/// and checking TURN REST credentials made with `secret` (`use-auth-secret`).
/// Its own log (`coturn.log`) records every allocation, refresh and refusal.
/// Killed on drop; starting it again gives a relay that knows no allocation.
pub struct Coturn {
    pub log: PathBuf,
    _proc: Proc,
}

impl Coturn {
    pub fn start(ns: &Netns, listen: &[&str], relay: &str, secret: &str, log_dir: &Path) -> Result<Self> {
        let log = log_dir.join("coturn.log");
        let _ = std::fs::remove_file(&log);
        let mut conf = String::new();
        for ip in listen {
            conf.push_str(&format!("listening-ip={ip}\n"));
        }
        conf.push_str(&format!(
            "listening-port=3478\nrelay-ip={relay}\nmin-port=49152\nmax-port=49999\n\
             use-auth-secret\nstatic-auth-secret={secret}\nrealm=holdfast.test\n\
             no-tls\nno-dtls\nno-cli\nfingerprint\nverbose\nsimple-log\nlog-file={}\n\
             userdb={}\npidfile={}\n",
            log.display(),
            log_dir.join("turndb").display(),
            log_dir.join("turnserver.pid").display(),
        ));
        let conf_path = log_dir.join("turnserver.conf");
        std::fs::write(&conf_path, conf)?;
        let mut cmd = ns.command("turnserver");
        cmd.arg("-c").arg(&conf_path);
        let proc = Proc::spawn("coturn-console", cmd, log_dir).context("starting turnserver (Debian's coturn)")?;
        wait_for(Duration::from_secs(15), "coturn's UDP listener", || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            Ok((text.matches("UDP listener opened").count() >= listen.len()).then_some(()))
        })?;
        Ok(Coturn { log, _proc: proc })
    }

    /// Everything coturn logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Debian's redis-server on 127.0.0.1:`port` (of `ns` if given), nothing
/// kept on disk; stopped on drop (start it again on the same port to restart it).
pub struct RedisServer {
    pub port: u16,
    _proc: Proc,
}

impl RedisServer {
    pub fn start(ns: Option<&Netns>, port: u16, log_dir: &Path) -> Result<Self> {
        let dir = log_dir.join(format!("redis-{port}"));
        std::fs::create_dir_all(&dir)?;
        let mut cmd = command_in(ns, "redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir);
        let proc = Proc::spawn(&format!("redis-{port}"), cmd, log_dir).context("starting redis-server (Debian's)")?;
        wait_for(Duration::from_secs(15), "redis-server to accept connections", || {
            Ok(accepts_tcp(ns, &format!("127.0.0.1:{port}")).then_some(()))
        })?;
        Ok(RedisServer { port, _proc: proc })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// `holdfast-signal` as one node of several: plain HTTP on `listen`
/// (`ip:port`), rooms shared through `redis_url`, named `node_id`; in `ns`
/// if given. Returns once it accepts connections.
pub fn start_signal_node(
    ns: Option<&Netns>,
    listen: &str,
    redis_url: &str,
    node_id: &str,
    args: &[&str],
    log_dir: &Path,
) -> Result<Proc> {
    let mut cmd = command_in(ns, bin("holdfast-signal"));
    cmd.args([
        "--listen",
        listen,
        "--no-tls",
        "--redis",
        redis_url,
        "--node-id",
        node_id,
    ])
    .args(args);
    let p = Proc::spawn(&format!("signal-{node_id}"), cmd, log_dir)?;
    wait_for(Duration::from_secs(20), "the signalling node", || {
        Ok(accepts_tcp(ns, listen).then_some(()))
    })?;
    Ok(p)
}

/// Whether something in `ns` (or here) accepts TCP connections on `addr` (`ip:port`).
pub fn accepts_tcp(ns: Option<&Netns>, addr: &str) -> bool {
    let Some((ip, port)) = addr.rsplit_once(':') else {
        return false;
    };
    command_in(ns, "bash")
        .args(["-c", &format!("exec 3<>/dev/tcp/{ip}/{port}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Debian's haproxy in front of signalling nodes: round robin, no
/// stickiness, WebSockets tunnelled, each node checked at `/healthz` every
/// 500 ms (two failures mark it down), a refused connection tried on
/// another node, and `X-Forwarded-For` added. Killed on drop.
pub struct Haproxy {
    pub listen: String,
    _proc: Proc,
}

impl Haproxy {
    pub fn start(ns: Option<&Netns>, listen: &str, backends: &[&str], log_dir: &Path) -> Result<Self> {
        let servers: Vec<(&str, bool)> = backends.iter().map(|b| (*b, false)).collect();
        Self::start_with(ns, &[(listen, &servers)], log_dir)
    }

    /// One frontend per `(listen, preferred, standby)`: all its clients go
    /// to `preferred` while its health check passes, else to `standby`
    /// (haproxy `backup`). Places clients on a chosen node, deterministically,
    /// while still moving them when it dies.
    pub fn start_failover(ns: Option<&Netns>, fronts: &[(&str, &str, &str)], log_dir: &Path) -> Result<Self> {
        let servers: Vec<(&str, Vec<(&str, bool)>)> = fronts
            .iter()
            .map(|(listen, preferred, standby)| (*listen, vec![(*preferred, false), (*standby, true)]))
            .collect();
        let fronts: Vec<(&str, &[(&str, bool)])> = servers.iter().map(|(l, s)| (*l, s.as_slice())).collect();
        Self::start_with(ns, &fronts, log_dir)
    }

    /// Frontends on `listen`, each with its servers (`true`: a backup).
    fn start_with(ns: Option<&Netns>, fronts: &[(&str, &[(&str, bool)])], log_dir: &Path) -> Result<Self> {
        let mut conf = String::from(
            "global\n  maxconn 4000\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 1h\n  timeout server 1h\n  \
             timeout tunnel 1h\n  retries 3\n  option redispatch\n",
        );
        for (i, (listen, servers)) in fronts.iter().enumerate() {
            conf.push_str(&format!(
                "frontend signal{i}\n  bind {listen}\n  option forwardfor\n  default_backend nodes{i}\n\
                 backend nodes{i}\n  balance roundrobin\n  option httpchk GET /healthz\n  \
                 default-server inter 500ms fall 2 rise 2\n"
            ));
            for (j, (addr, backup)) in servers.iter().enumerate() {
                let backup = if *backup { " backup" } else { "" };
                conf.push_str(&format!("  server node{j} {addr} check{backup}\n"));
            }
        }
        let listen = fronts.first().map(|f| f.0).ok_or_else(|| anyhow!("no frontend"))?;
        let path = log_dir.join(format!("haproxy-{}.cfg", listen.replace([':', '.'], "-")));
        std::fs::write(&path, conf)?;
        let mut cmd = command_in(ns, "haproxy");
        cmd.arg("-db").arg("-f").arg(&path);
        let proc = Proc::spawn("haproxy", cmd, log_dir).context("starting haproxy (Debian's)")?;
        for (listen, _) in fronts {
            wait_for(Duration::from_secs(15), "haproxy", || {
                Ok(accepts_tcp(ns, listen).then_some(()))
            })?;
        }
        Ok(Haproxy {
            listen: listen.to_owned(),
            _proc: proc,
        })
    }
}

/// An Xvfb display inside a namespace.
pub struct Xvfb {
    pub display: String,
    _proc: Proc,
}

impl Xvfb {
    pub fn pid(&self) -> u32 {
        self._proc.pid()
    }

    /// Starts Xvfb at `width`x`height`, in `ns` if given.
    pub fn start(ns: Option<&Netns>, width: u32, height: u32, log_dir: &Path) -> Result<Self> {
        // A display number no concurrent test uses, and none an earlier run
        // left a lock or socket for: a killed Xvfb leaves its lock, and once
        // its pid is reused Xvfb refuses the number ("already active").
        let mut n = 100 + (std::process::id() % 800) * 10 + COUNTER.fetch_add(1, Ordering::SeqCst) % 10;
        let taken = |n: u32| {
            Path::new(&format!("/tmp/.X{n}-lock")).exists() || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        };
        while taken(n) {
            n = 100 + (n + 7919) % 30000;
        }
        let display = format!(":{n}");
        let mut cmd = command_in(ns, "Xvfb");
        cmd.args([
            &display,
            "-screen",
            "0",
            &format!("{width}x{height}x24"),
            "-nolisten",
            "tcp",
            "-ac",
            // Keep state (RandR monitors, keymap) when the last client leaves.
            "-noreset",
        ]);
        let proc = Proc::spawn("xvfb", cmd, log_dir)?;
        wait_for(Duration::from_secs(15), "Xvfb", || {
            let ok = command_in(ns, "xdpyinfo")
                .args(["-display", &display])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?
                .success();
            Ok(ok.then_some(()))
        })?;
        Ok(Xvfb { display, _proc: proc })
    }
}

/// Starts the test-pattern window on `display` and waits until it is painted.
pub fn start_pattern(ns: Option<&Netns>, display: &str, log_dir: &Path) -> Result<Proc> {
    let mut cmd = command_in(ns, bin("holdfast-testpattern"));
    cmd.env("DISPLAY", display);
    let p = Proc::spawn("testpattern", cmd, log_dir)?;
    let line = p.line(Duration::from_secs(15))?;
    if line.trim() != "ready" {
        bail!("test pattern said {line}");
    }
    Ok(p)
}

/// Starts `holdfast-signal` on `ip`:8080 in `ns` (plain HTTP) and waits until it accepts connections.
pub fn start_signal(ns: &Netns, ip: &str, log_dir: &Path) -> Result<Proc> {
    start_signal_with(ns, ip, &[], log_dir)
}

/// [`start_signal`] with extra arguments (`--lockout-secs 3`, say).
pub fn start_signal_with(ns: &Netns, ip: &str, args: &[&str], log_dir: &Path) -> Result<Proc> {
    let mut cmd = ns.command(bin("holdfast-signal"));
    cmd.args(["--listen", &format!("{ip}:8080"), "--no-tls"]).args(args);
    let p = Proc::spawn("signal", cmd, log_dir)?;
    wait_for(Duration::from_secs(20), "the signalling server", || {
        Ok(ns
            .exec(&["bash", "-c", &format!("exec 3<>/dev/tcp/{ip}/8080")])
            .is_ok()
            .then_some(()))
    })?;
    Ok(p)
}

/// Starts `holdfast-host` in `ns` against `signal_url` with extra `args`, and
/// returns it with the room it printed (`id`, `code`, `viewer_url`).
/// `holdfast-host` arguments for a host of the generated desktop reached on loopback.
pub const SYNTHETIC_ON_LOOPBACK: [&str; 5] = ["--source", "synthetic", "--ice-bind", "127.0.0.1:0", "--allow-loopback"];

pub fn start_host(
    ns: &Netns,
    signal_url: &str,
    args: &[&str],
    display: Option<&str>,
    log_dir: &Path,
) -> Result<(Proc, serde_json::Value)> {
    let mut cmd = ns.command(bin("holdfast-host"));
    cmd.args(["--signal", signal_url]).args(args);
    if !args.contains(&"--accept") {
        // Tests that are not about consent admit their viewer unattended.
        cmd.args(["--accept", "control"]);
    }
    if let Some(d) = display {
        cmd.env("DISPLAY", d);
    }
    let p = Proc::spawn("host", cmd, log_dir)?;
    let room = p.json_line(Duration::from_secs(30))?;
    Ok((p, room))
}

/// Starts `holdfast-host` on loopback in `ns` against the server at
/// 127.0.0.1:8080, sharing `display`, writing its stats to
/// `log_dir/host-stats.json` (returned, after removing any old one).
pub fn start_loopback_host(ns: &Netns, display: &str, log_dir: &Path) -> Result<(Proc, serde_json::Value, PathBuf)> {
    let stats_file = log_dir.join("host-stats.json");
    let _ = std::fs::remove_file(&stats_file);
    let stats = stats_file.to_str().context("a UTF-8 artefacts path")?;
    let args = ["--ice-bind", "127.0.0.1:0", "--allow-loopback", "--stats-file", stats];
    let (host, room) = start_host(ns, "http://127.0.0.1:8080", &args, Some(display), log_dir)?;
    Ok((host, room, stats_file))
}

/// Debian's Chromium driven by Playwright through a line protocol.
pub struct Browser {
    proc: Proc,
}

impl Browser {
    pub fn start(ns: Option<&Netns>, log_dir: &Path) -> Result<Self> {
        Self::start_with(ns, log_dir, "chromium", &[])
    }

    /// Headless, treating the plain-HTTP `origin` as secure (as if it were
    /// HTTPS or loopback), for a server on a namespace's LAN address.
    pub fn start_trusting(ns: Option<&Netns>, log_dir: &Path, origin: &str) -> Result<Self> {
        Self::start_with(ns, log_dir, "chromium", &[("SECURE_ORIGINS", origin)])
    }

    /// A real Chromium window on `display` covering `width`x`height` from the
    /// top-left corner: an application for injected input to land in.
    pub fn start_window(ns: Option<&Netns>, display: &str, width: u32, height: u32, log_dir: &Path) -> Result<Self> {
        let (w, h) = (width.to_string(), height.to_string());
        Self::start_with(
            ns,
            log_dir,
            "chromium-window",
            &[
                ("HEADFUL", "1"),
                ("DISPLAY", display),
                ("WINDOW_W", &w),
                ("WINDOW_H", &h),
            ],
        )
    }

    fn start_with(ns: Option<&Netns>, log_dir: &Path, name: &str, env: &[(&str, &str)]) -> Result<Self> {
        let mut cmd = command_in(ns, "node");
        cmd.arg(repo_root().join("tests/browser/driver.mjs"))
            .current_dir(repo_root());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let proc = Proc::spawn(name, cmd, log_dir)?;
        let ready = proc.line(Duration::from_secs(60))?;
        if !ready.contains("ready") {
            bail!("browser driver said {ready}");
        }
        Ok(Browser { proc })
    }

    fn call(&mut self, req: serde_json::Value) -> Result<serde_json::Value> {
        self.proc.write_line(&req.to_string())?;
        let line = self.proc.line(Duration::from_secs(60))?;
        let v: serde_json::Value = serde_json::from_str(&line)?;
        if v["ok"] != true {
            bail!("browser: {}", v["error"]);
        }
        Ok(v["value"].clone())
    }

    pub fn open(&mut self, url: &str) -> Result<()> {
        self.call(serde_json::json!({"cmd": "open", "url": url})).map(|_| ())
    }

    pub fn eval(&mut self, expr: &str) -> Result<serde_json::Value> {
        self.call(serde_json::json!({"cmd": "eval", "expr": expr}))
    }

    pub fn screenshot(&mut self, path: &Path) -> Result<()> {
        self.call(serde_json::json!({"cmd": "screenshot", "path": path}))
            .map(|_| ())
    }

    pub fn console(&mut self) -> Result<Vec<String>> {
        let v = self.call(serde_json::json!({"cmd": "console"}))?;
        Ok(serde_json::from_value(v)?)
    }

    /// Picks `paths` in the page's file input at `selector` (as the person would).
    pub fn set_files(&mut self, selector: &str, paths: &[&Path]) -> Result<()> {
        self.call(serde_json::json!({"cmd": "files", "selector": selector, "paths": paths}))
            .map(|_| ())
    }

    /// Clicks `selector` and saves the download it starts to `path`;
    /// returns the name the page suggested.
    pub fn download(&mut self, selector: &str, path: &Path) -> Result<String> {
        let v = self.call(serde_json::json!({"cmd": "download", "selector": selector, "path": path}))?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Grants the page's origin browser permissions (`clipboard-read`, ...),
    /// as a person answering the prompt would.
    pub fn grant(&mut self, permissions: &[&str], origin: &str) -> Result<()> {
        self.call(serde_json::json!({"cmd": "grant", "permissions": permissions, "origin": origin}))
            .map(|_| ())
    }

    /// The viewer's `window.holdfast.stats()`.
    pub fn stats(&mut self) -> Result<serde_json::Value> {
        self.eval("window.holdfast.stats()")
    }

    /// Opens `url` and waits until the viewer is connected and has decoded a frame.
    pub fn watch(&mut self, url: &str, log_dir: &Path) -> Result<serde_json::Value> {
        self.open(url)?;
        let r = wait_for(Duration::from_secs(30), "the viewer's first decoded frame", || {
            let s = self.stats()?;
            Ok((s["state"] == "connected" && s["framesDecoded"].as_u64().unwrap_or(0) > 0).then_some(s))
        });
        if r.is_err() {
            let _ = self.screenshot(&log_dir.join("failed.png"));
            eprintln!("browser console: {:#?}", self.console());
        }
        r
    }

    /// Mouse actions at page coordinates (`move`, `down`, `up`, `click`).
    pub fn mouse(&mut self, action: &str, x: f64, y: f64) -> Result<()> {
        self.call(serde_json::json!({"cmd": "mouse", "action": action, "x": x, "y": y}))
            .map(|_| ())
    }

    /// A mouse action with a given button (`left`, `middle`, `right`).
    pub fn mouse_button(&mut self, action: &str, x: f64, y: f64, button: &str) -> Result<()> {
        self.call(serde_json::json!({"cmd": "mouse", "action": action, "x": x, "y": y, "button": button}))
            .map(|_| ())
    }

    pub fn wheel(&mut self, x: f64, y: f64, dy: f64) -> Result<()> {
        self.call(serde_json::json!({"cmd": "mouse", "action": "wheel", "x": x, "y": y, "dy": dy}))
            .map(|_| ())
    }

    /// Keyboard actions: `type` and `insert` take text, `press`/`down`/`up` a key name.
    pub fn keyboard(&mut self, action: &str, arg: &str) -> Result<()> {
        self.call(serde_json::json!({"cmd": "keyboard", "action": action, "text": arg, "key": arg}))
            .map(|_| ())
    }

    /// Page coordinates at fraction (`fx`, `fy`) of the viewer's picture of
    /// a `w`x`h` screen, and the remote pixel those coordinates really mean
    /// (what the host must hit, after the page rounds to whole pixels).
    pub fn point_on_picture(&mut self, fx: f64, fy: f64, w: f64, h: f64) -> Result<((f64, f64), (i32, i32))> {
        let r = self.eval("window.holdfast.pictureRect()")?;
        let get = |k: &str| r[k].as_f64().ok_or_else(|| anyhow!("pictureRect has no {k}: {r}"));
        let (left, top, width, height) = (get("left")?, get("top")?, get("width")?, get("height")?);
        let (cx, cy) = ((left + fx * width).round(), (top + fy * height).round());
        let expect = (
            ((cx - left) / width * (w - 1.0)).round() as i32,
            ((cy - top) / height * (h - 1.0)).round() as i32,
        );
        Ok(((cx, cy), expect))
    }

    /// The colour the viewer drew at remote-screen pixel (x, y).
    pub fn sample(&mut self, x: u32, y: u32) -> Result<[u8; 3]> {
        let v = self.eval(&format!("window.holdfast.sample({x}, {y})"))?;
        Ok(serde_json::from_value(v)?)
    }
}
