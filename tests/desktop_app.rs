//! Acceptance for the desktop app, driven as its users meet it: the real
//! built binary in WebKitGTK under Xvfb, read and clicked through
//! `tauri-driver` + `WebKitWebDriver`, with Debian's Chromium as the viewer.
//! Screenshots of the window in each state are kept in
//! `test-artifacts/desktop_app*/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use holdfast_testkit::{artifacts_dir, start_pattern, wait_for, AppDriver, Browser, Lan, Netns, Proc, Xvfb};

const APP_IP: &str = "10.78.0.2";
const VIEWER_IP: &str = "10.78.0.3";

/// The app's own folders, fresh for each test (XDG_CONFIG_HOME, XDG_DATA_HOME).
struct Dirs {
    config: PathBuf,
    data: PathBuf,
}

impl Dirs {
    fn fresh(art: &Path) -> Dirs {
        let (config, data) = (art.join("config"), art.join("data"));
        let _ = std::fs::remove_dir_all(&config);
        let _ = std::fs::remove_dir_all(&data);
        Dirs { config, data }
    }

    fn settings_file(&self) -> PathBuf {
        self.config.join("holdfast/settings.toml")
    }

    /// Everything the app logged.
    fn logs(&self) -> String {
        let dir = self.data.join("holdfast/logs");
        let mut text = String::new();
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            text += &std::fs::read_to_string(e.path()).unwrap_or_default();
        }
        text
    }
}

/// Launches the built app on `display` in `ns`, its embedded server on `serve`.
fn launch(
    ns: &Netns,
    display: &str,
    serve: &str,
    ice_bind: &str,
    dirs: &Dirs,
    art: &Path,
) -> anyhow::Result<AppDriver> {
    let (config, data) = (dirs.config.to_string_lossy(), dirs.data.to_string_lossy());
    AppDriver::launch(
        Some(ns),
        Path::new(env!("CARGO_BIN_EXE_holdfast")),
        &[
            ("DISPLAY", display),
            ("HOLDFAST_SERVE", serve),
            ("HOLDFAST_ICE_BIND", ice_bind),
            ("HOLDFAST_ALLOW_LOOPBACK", "1"),
            ("XDG_CONFIG_HOME", &config),
            ("XDG_DATA_HOME", &data),
            ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
            ("LIBGL_ALWAYS_SOFTWARE", "1"),
        ],
        art,
    )
}

/// The room's ID and code as the window shows them, once it does.
fn credentials(app: &AppDriver, art: &Path) -> anyhow::Result<(String, String)> {
    let id = app
        .wait_text("#room-id", Duration::from_secs(60), "the window to show the ID", |t| {
            t.chars().filter(char::is_ascii_digit).count() >= 6
        })
        .inspect_err(|_| {
            let _ = app.screenshot(&art.join("failed.png"));
            eprintln!(
                "page: {:?}",
                app.execute("return document.documentElement.outerHTML", serde_json::json!([]))
            );
        })?;
    let code = app.text("#room-code")?;
    anyhow::ensure!(code.len() >= 6 && code != "…", "the code is shown: {code:?}");
    Ok((id, code))
}

/// Chromium asks to join; the person at the app allows control in the dialog.
fn join_with_consent(app: &AppDriver, browser: &mut Browser, url: &str, art: &Path, shot: &str) -> anyhow::Result<()> {
    browser.open(url)?;
    app.wait_text("#consent-body", Duration::from_secs(30), "the consent dialog", |t| {
        t.contains("entered your ID and code")
    })?;
    app.screenshot(&art.join(shot))?;
    app.click("#consent-control")?;
    Ok(())
}

fn decoded(browser: &mut Browser) -> u64 {
    browser
        .stats()
        .ok()
        .and_then(|s| s["framesDecoded"].as_u64())
        .unwrap_or(0)
}

#[test]
fn the_app_shows_its_credentials_asks_consent_and_shows_the_viewer_connected() -> anyhow::Result<()> {
    let art = artifacts_dir("desktop_app");
    let dirs = Dirs::fresh(&art);
    let ns = Netns::new()?;
    let x = Xvfb::start(Some(&ns), 1280, 800, &art)?;
    let app = launch(&ns, &x.display, "127.0.0.1:8080", "127.0.0.1:0", &dirs, &art)?;
    let (id, code) = credentials(&app, &art)?;
    let link = app.text("#viewer-link")?;
    anyhow::ensure!(
        link.contains(&id.replace(' ', "")) && link.contains(&code.replace('-', "")),
        "the link carries both: {link}"
    );
    app.wait_text("#host-state", Duration::from_secs(10), "waiting", |t| {
        t == "Waiting for a viewer"
    })?;
    app.screenshot(&art.join("host-waiting.png"))?;

    let mut browser = Browser::start(Some(&ns), &art)?;
    join_with_consent(&app, &mut browser, &link, &art, "host-consent.png")?;
    app.wait_text(
        "#host-state",
        Duration::from_secs(30),
        "the state to read connected",
        |t| t == "Connected",
    )?;
    let toasts = app.wait_text("#toasts", Duration::from_secs(5), "a joined toast", |t| {
        t.contains("A viewer joined (with control).")
    })?;
    wait_for(Duration::from_secs(30), "the viewer's first frame", || {
        Ok((decoded(&mut browser) > 0).then_some(()))
    })?;
    app.wait_text("#quality-text", Duration::from_secs(15), "a quality reading", |t| {
        t == "Good"
    })?;
    app.screenshot(&art.join("host-connected.png"))?;
    browser.screenshot(&art.join("viewer.png"))?;
    eprintln!("app: ID {id}, toasts {toasts:?}");
    anyhow::ensure!(
        !app.displayed("#reconnect-panel")?,
        "no reconnect button while connected"
    );

    // The logs are in the data folder and hold no secret.
    let token = browser.eval("sessionStorage.getItem('holdfast.token')")?;
    let token = token.as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(token.len() > 20, "the viewer holds a session token: {token:?}");
    let logs = dirs.logs();
    anyhow::ensure!(
        logs.contains("Holdfast starting") && logs.contains("sharing"),
        "the app logs to files: {logs}"
    );
    let bare_code = code.replace('-', "");
    for secret in [code.as_str(), bare_code.as_str(), token.as_str()] {
        anyhow::ensure!(!logs.contains(secret), "a secret in the logs: {secret}");
    }
    Ok(())
}

/// `m:ss` as seconds.
fn clock_secs(text: &str) -> Option<u64> {
    let (m, s) = text.trim().split_once(':')?;
    Some(m.parse::<u64>().ok()? * 60 + s.parse::<u64>().ok()?)
}

/// The app and Chromium on a LAN of their own, each in its namespace, so the
/// viewer's cable can be pulled.
struct LanSession {
    _lan: Lan,
    app_ns: Netns,
    viewer_ns: Netns,
    viewer_link: holdfast_testkit::Link,
    _app_link: holdfast_testkit::Link,
}

fn lan() -> anyhow::Result<LanSession> {
    let lan = Lan::new()?;
    let (app_ns, viewer_ns) = (Netns::new()?, Netns::new()?);
    let app_link = lan.attach(&app_ns, APP_IP)?;
    let viewer_link = lan.attach(&viewer_ns, VIEWER_IP)?;
    Ok(LanSession {
        _lan: lan,
        app_ns,
        viewer_ns,
        viewer_link,
        _app_link: app_link,
    })
}

/// The app shares on the LAN (its embedded server at APP_IP, HTTPS with a
/// self-signed certificate), Chromium joins with consent and sees frames.
fn connected_over_lan(
    net: &LanSession,
    dirs: &Dirs,
    art: &Path,
) -> anyhow::Result<(Xvfb, Proc, AppDriver, Browser, String)> {
    let x = Xvfb::start(Some(&net.app_ns), 1280, 800, art)?;
    // Something moving on the shared screen, so video keeps flowing.
    let pattern = start_pattern(Some(&net.app_ns), &x.display, art)?;
    let serve = format!("{APP_IP}:8080");
    let bind = format!("{APP_IP}:0");
    let app = launch(&net.app_ns, &x.display, &serve, &bind, dirs, art)?;
    let (id, _code) = credentials(&app, art)?;
    let link = app.text("#viewer-link")?;
    anyhow::ensure!(link.starts_with(&format!("https://{APP_IP}:8080/")), "{link}");
    let mut browser = Browser::start(Some(&net.viewer_ns), art)?;
    join_with_consent(&app, &mut browser, &link, art, "host-consent.png")?;
    app.wait_text("#host-state", Duration::from_secs(30), "connected", |t| {
        t == "Connected"
    })?;
    wait_for(Duration::from_secs(30), "the viewer's first frame", || {
        Ok((decoded(&mut browser) > 0).then_some(()))
    })?;
    Ok((x, pattern, app, browser, id))
}

#[test]
fn a_cut_network_shows_the_reconnect_countdown_and_the_button_resumes_the_same_session() -> anyhow::Result<()> {
    let art = artifacts_dir("desktop_app_reconnect");
    let dirs = Dirs::fresh(&art);
    let net = lan()?;
    let (_x, _pattern, app, mut browser, id) = connected_over_lan(&net, &dirs, &art)?;

    net.viewer_link.blackout()?;
    let cut = Instant::now();
    let state = app.wait_text("#host-state", Duration::from_secs(20), "the state to change", |t| {
        t != "Connected" && !t.is_empty()
    })?;
    let noticed = cut.elapsed();
    anyhow::ensure!(app.displayed("#reconnect")?, "the reconnect button appears");
    let first = app.text("#reconnect-countdown")?;
    let left = clock_secs(&first).ok_or_else(|| anyhow::anyhow!("countdown reads {first:?}"))?;
    anyhow::ensure!(left <= 300 && left > 240, "counting down from 5:00: {first}");
    let lost_toast = app.text("#toasts")?;
    app.screenshot(&art.join("host-reconnect.png"))?;
    std::thread::sleep(Duration::from_millis(2500));
    let later = clock_secs(&app.text("#reconnect-countdown")?).unwrap_or(u64::MAX);
    anyhow::ensure!(
        later < left && later < 300,
        "the countdown runs below 5:00: {left} then {later}"
    );

    // The person presses the button while the network is still out: the app
    // starts over on a fresh ICE session at once (so the old path cannot come
    // back by itself), and says so.
    let frames_before = decoded(&mut browser);
    app.click("#reconnect")?;
    let repairing = app.wait_text(
        "#host-state",
        Duration::from_secs(5),
        "the press to start a repair",
        |t| t.starts_with("Reconnecting (attempt"),
    )?;
    anyhow::ensure!(app.displayed("#reconnect")?, "still offered until connected");
    net.viewer_link.restore()?;
    let pressed = Instant::now();
    app.wait_text("#host-state", Duration::from_secs(30), "connected again", |t| {
        t == "Connected"
    })?;
    let resumed = pressed.elapsed();
    eprintln!("after the press: {repairing:?}");
    wait_for(Duration::from_secs(30), "video again in the browser", || {
        Ok((decoded(&mut browser) > frames_before + 10).then_some(()))
    })?;
    anyhow::ensure!(!app.displayed("#reconnect")?, "the button goes once connected");
    anyhow::ensure!(app.text("#room-id")? == id, "the same session (same ID)");
    anyhow::ensure!(!app.displayed("#consent")?, "no new consent asked");
    let toasts = app.text("#toasts")?;
    anyhow::ensure!(!toasts.contains("asks to connect"), "no new join request: {toasts:?}");
    app.screenshot(&art.join("host-restored.png"))?;
    eprintln!(
        "cut: state {state:?} after {:.1} s, countdown {first} then {later} s, toast {lost_toast:?}; \
         link restored after the press: connected in {:.1} s, toasts {toasts:?}",
        noticed.as_secs_f64(),
        resumed.as_secs_f64()
    );
    Ok(())
}

#[test]
fn when_the_resume_window_runs_out_the_app_says_the_session_ended() -> anyhow::Result<()> {
    let art = artifacts_dir("desktop_app_expired");
    let dirs = Dirs::fresh(&art);
    // The shortest window the settings allow.
    std::fs::create_dir_all(dirs.settings_file().parent().unwrap())?;
    std::fs::write(dirs.settings_file(), "grace_secs = 30\n")?;
    let net = lan()?;
    let (_x, _pattern, app, _browser, id) = connected_over_lan(&net, &dirs, &art)?;
    net.viewer_link.blackout()?;
    let cut = Instant::now();
    let first = app.wait_text("#reconnect-countdown", Duration::from_secs(20), "the countdown", |t| {
        clock_secs(t).is_some()
    })?;
    anyhow::ensure!(clock_secs(&first).unwrap() <= 30, "a 0:30 window: {first}");
    let ended = app.wait_text("#host-state", Duration::from_secs(60), "the session to end", |t| {
        t == "Session ended"
    })?;
    let after = cut.elapsed();
    let message = app.text("#ended-text")?;
    anyhow::ensure!(
        message.contains("did not come back within 0:30"),
        "says why: {message:?}"
    );
    anyhow::ensure!(!app.displayed("#reconnect")?, "no button once the window ran out");
    anyhow::ensure!(!app.displayed("#credentials")?, "the spent code is no longer shown");
    app.screenshot(&art.join("host-ended.png"))?;
    // A new session: a new room.
    app.click("#new-session")?;
    let new_id = app.wait_text("#room-id", Duration::from_secs(30), "a new room", |t| {
        t != id && t.chars().filter(char::is_ascii_digit).count() >= 6
    })?;
    app.wait_text("#host-state", Duration::from_secs(10), "waiting again", |t| {
        t == "Waiting for a viewer"
    })?;
    eprintln!(
        "{ended} {:.1} s after the cut: {message:?}; new room {new_id}",
        after.as_secs_f64()
    );
    Ok(())
}

#[test]
fn settings_are_validated_saved_and_survive_a_restart() -> anyhow::Result<()> {
    let art = artifacts_dir("desktop_app_settings");
    let dirs = Dirs::fresh(&art);
    let ns = Netns::new()?;
    let x = Xvfb::start(Some(&ns), 1280, 800, &art)?;
    let mut app = launch(&ns, &x.display, "127.0.0.1:8080", "127.0.0.1:0", &dirs, &art)?;
    credentials(&app, &art)?;
    app.click("#tab-settings-btn")?;
    anyhow::ensure!(
        app.value("#set-grace")? == "300" && app.value("#set-keepalive")? == "5",
        "the seeds' defaults"
    );
    let device = app.text("#device-id")?;
    anyhow::ensure!(device.len() == 32, "a device ID: {device:?}");
    // A value out of bounds is refused, with the field named, and nothing is written.
    app.fill("#set-grace", "5")?;
    app.click("#settings-save")?;
    let refused = app.wait_text("#settings-status", Duration::from_secs(5), "an error", |t| {
        !t.is_empty()
    })?;
    anyhow::ensure!(refused.contains("grace_secs"), "names the field: {refused}");
    anyhow::ensure!(!dirs.settings_file().exists(), "nothing written");
    app.screenshot(&art.join("settings-refused.png"))?;

    app.fill("#set-grace", "120")?;
    app.fill("#set-fps", "24")?;
    app.fill("#set-ice", "stun:stun.example.org:3478")?;
    app.select("#set-quality", "high")?;
    app.select("#set-language", "zh-CN")?;
    app.click("#settings-save")?;
    app.wait_text("#settings-status", Duration::from_secs(5), "saved", |t| {
        t.contains("已保存")
    })?;
    let file = std::fs::read_to_string(dirs.settings_file())?;
    for line in [
        "grace_secs = 120",
        "fps = 24",
        "quality = \"high\"",
        "language = \"zh-CN\"",
        "stun:stun.example.org:3478",
    ] {
        anyhow::ensure!(file.contains(line), "{line} in {file}");
    }
    app.quit();
    drop(app);

    let app = launch(&ns, &x.display, "127.0.0.1:8080", "127.0.0.1:0", &dirs, &art)?;
    credentials(&app, &art)?;
    app.wait_text("#host-state", Duration::from_secs(10), "Chinese", |t| {
        t == "等待观看者连接"
    })?;
    app.screenshot(&art.join("host-waiting-zh.png"))?;
    app.click("#tab-settings-btn")?;
    anyhow::ensure!(app.value("#set-grace")? == "120", "grace kept");
    anyhow::ensure!(app.value("#set-fps")? == "24", "fps kept");
    anyhow::ensure!(app.value("#set-quality")? == "high", "quality kept");
    anyhow::ensure!(app.text("#device-id")? == device, "the same device ID after a restart");
    app.screenshot(&art.join("settings-zh.png"))?;
    let logs = dirs.logs();
    anyhow::ensure!(
        logs.matches("Holdfast starting").count() == 2,
        "both runs logged to the data folder"
    );
    Ok(())
}
