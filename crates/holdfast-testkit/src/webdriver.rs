//! The desktop app under test, driven the way its users meet it: the real
//! built binary in WebKitGTK, launched and read through `tauri-driver`
//! (which fronts Debian's `WebKitWebDriver`) over W3C WebDriver.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::{command_in, wait_for, Netns, Proc};

/// W3C's key for an element reference in responses.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running `tauri-driver`, and the app session it opened.
pub struct AppDriver {
    base: String,
    session: String,
    /// The namespace the driver listens in; requests are made from there.
    ns: Option<String>,
    _driver: Proc,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl AppDriver {
    /// Starts `tauri-driver` in `ns` with `env` (which the app inherits) and
    /// launches `app` under it.
    pub fn launch(ns: Option<&Netns>, app: &Path, env: &[(&str, &str)], log_dir: &Path) -> Result<Self> {
        // Ports are per namespace; a free one on the test's loopback is free in a fresh namespace too.
        let (port, native) = (free_port()?, free_port()?);
        // A bus of its own, unless the caller puts the app in a session
        // that has one (a GNOME session: the app must reach its Mutter).
        let own_bus = !env.iter().any(|(k, _)| *k == "DBUS_SESSION_BUS_ADDRESS");
        let mut cmd = command_in(ns, if own_bus { "dbus-run-session" } else { "env" });
        if own_bus {
            cmd.arg("--");
        }
        cmd.args([
            "tauri-driver",
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let driver = Proc::spawn("tauri-driver", cmd, log_dir)?;
        let base = format!("http://127.0.0.1:{port}");
        let mut me = AppDriver {
            base,
            session: String::new(),
            ns: ns.map(|n| n.name.clone()),
            _driver: driver,
        };
        wait_for(Duration::from_secs(20), "tauri-driver to listen", || {
            Ok(me.raw("GET", "/status", None).ok().map(|_| ()))
        })?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "tauri:options": {"application": app},
        }}});
        let v = me.raw("POST", "/session", Some(caps)).context("launching the app")?;
        me.session = v["sessionId"].as_str().context("no session id")?.to_owned();
        Ok(me)
    }

    /// One WebDriver call, made with curl from the driver's namespace.
    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{}", self.base, path);
        let mut cmd = match &self.ns {
            Some(ns) => {
                let mut c = std::process::Command::new("ip");
                c.args(["netns", "exec", ns, "curl"]);
                c
            }
            None => std::process::Command::new("curl"),
        };
        cmd.args([
            "-s",
            "--max-time",
            "120",
            "-X",
            method,
            "-H",
            "Content-Type: application/json",
        ]);
        if method == "POST" {
            cmd.args(["--data-binary", &body.unwrap_or_else(|| json!({})).to_string()]);
        }
        let out = cmd.arg(&url).output()?;
        if !out.status.success() {
            bail!("curl {method} {path} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8(out.stdout)?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("{method} {path}: {text}"))?;
        if let Some(err) = v["value"]["error"].as_str() {
            bail!("{method} {path}: {err}: {}", v["value"]["message"]);
        }
        Ok(v["value"].clone())
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        self.raw(method, &format!("/session/{}{}", self.session, path), body)
    }

    fn element(&self, css: &str) -> Result<String> {
        let v = self.cmd("POST", "/element", Some(json!({"using": "css selector", "value": css})))?;
        let id = v[ELEMENT_KEY].as_str().or_else(|| v["ELEMENT"].as_str());
        Ok(id.with_context(|| format!("no element reference in {v}"))?.to_owned())
    }

    /// A string the driver reports about the first element matching `css` (`what`: `text`, `property/value`).
    fn element_str(&self, css: &str, what: &str) -> Result<String> {
        let id = self.element(css)?;
        Ok(self
            .cmd("GET", &format!("/element/{id}/{what}"), None)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The rendered text of the first element matching `css`.
    pub fn text(&self, css: &str) -> Result<String> {
        self.element_str(css, "text")
    }

    /// Whether the first element matching `css` exists and is shown.
    pub fn displayed(&self, css: &str) -> Result<bool> {
        let Ok(id) = self.element(css) else { return Ok(false) };
        Ok(self
            .cmd("GET", &format!("/element/{id}/displayed"), None)?
            .as_bool()
            .unwrap_or(false))
    }

    /// Clicks `css` once it is enabled, as a person would (the consent
    /// dialog's allow buttons wake a second after it opens).
    pub fn click_when_enabled(&self, css: &str, within: Duration) -> Result<()> {
        wait_for(within, "the button to wake", || {
            Ok((self.execute(
                "const e = document.querySelector(arguments[0]); return !!e && !e.disabled",
                json!([css]),
            )? == json!(true))
            .then_some(()))
        })?;
        self.click(css)
    }

    pub fn click(&self, css: &str) -> Result<()> {
        let id = self.element(css)?;
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})))
            .map(|_| ())
            .with_context(|| {
                let probe = self.execute(
                    "const e = document.querySelector(arguments[0]); if (!e) return 'gone'; \
                     const r = e.getBoundingClientRect(); \
                     const at = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2); \
                     return JSON.stringify({rect: r, hidden: e.closest('[hidden]') !== null, \
                       at: at && (at.id || at.className || at.tagName), inner: [innerWidth, innerHeight]});",
                    json!([css]),
                );
                format!("clicking {css}: {probe:?}")
            })
    }

    /// Presses and releases each key in turn at the focused element (W3C
    /// key actions: `\u{E007}` is Enter), as a person typing would.
    pub fn press_keys(&self, keys: &[&str]) -> Result<()> {
        let mut actions = Vec::new();
        for k in keys {
            actions.push(json!({"type": "keyDown", "value": k}));
            actions.push(json!({"type": "keyUp", "value": k}));
        }
        self.cmd(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )?;
        Ok(())
    }

    /// Replaces the value of the input matching `css` by typing `text`.
    pub fn fill(&self, css: &str, text: &str) -> Result<()> {
        let id = self.element(css)?;
        self.cmd("POST", &format!("/element/{id}/clear"), Some(json!({})))?;
        self.cmd("POST", &format!("/element/{id}/value"), Some(json!({"text": text})))
            .map(|_| ())
    }

    /// The current value of the form field matching `css`.
    pub fn value(&self, css: &str) -> Result<String> {
        self.element_str(css, "property/value")
    }

    /// Chooses `value` in the `<select>` matching `css`.
    pub fn select(&self, css: &str, value: &str) -> Result<()> {
        let option = format!("{css} option[value='{value}']");
        self.click(&option)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub fn execute(&self, script: &str, args: Value) -> Result<Value> {
        self.cmd("POST", "/execute/sync", Some(json!({"script": script, "args": args})))
    }

    /// The window's own rendering, as PNG.
    pub fn screenshot(&self, path: &Path) -> Result<()> {
        use base64::Engine;
        let v = self.cmd("GET", "/screenshot", None)?;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().context("no screenshot")?)?;
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Waits until the text of `css` satisfies `ok`, and returns it.
    pub fn wait_text(&self, css: &str, within: Duration, what: &str, ok: impl Fn(&str) -> bool) -> Result<String> {
        let mut last = String::new();
        let r = wait_for(within, what, || {
            last = match self.text(css) {
                Ok(t) => t,
                Err(e) => format!("<{e:#}>"),
            };
            Ok(ok(&last).then(|| last.clone()))
        });
        r.with_context(|| format!("{css} read {last:?}"))
    }

    pub fn quit(&mut self) {
        if !self.session.is_empty() {
            let _ = self.raw("DELETE", &format!("/session/{}", self.session), None);
            self.session.clear();
        }
    }
}

impl Drop for AppDriver {
    fn drop(&mut self) {
        self.quit();
    }
}
