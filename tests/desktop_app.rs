//! Acceptance: the desktop app starts under Xvfb, shows its room ID and code
//! in its window, and a Chromium viewer can watch the screen it shares.
//! A screenshot of the display (app window included) is kept in
//! `test-artifacts/desktop_app/`.

use std::time::Duration;

use holdfast_testkit::{artifacts_dir, wait_for, Browser, Netns, Proc, Xvfb};

#[test]
fn desktop_app_shows_its_credentials_and_can_be_watched() -> anyhow::Result<()> {
    let art = artifacts_dir("desktop_app");
    let report = art.join("rendered.txt");
    let _ = std::fs::remove_file(&report);
    let ns = Netns::new()?;
    let x = Xvfb::start(Some(&ns), 1920, 1080, &art)?;

    let mut app = ns.command("dbus-run-session");
    app.arg("--")
        .arg(env!("CARGO_BIN_EXE_holdfast"))
        .env("DISPLAY", &x.display)
        .env("HOLDFAST_SERVE", "127.0.0.1:8080")
        .env("HOLDFAST_ICE_BIND", "127.0.0.1:0")
        .env("HOLDFAST_ALLOW_LOOPBACK", "1")
        .env("HOLDFAST_ACCEPT", "control")
        .env("HOLDFAST_RENDER_REPORT", &report)
        .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
        .env("LIBGL_ALWAYS_SOFTWARE", "1");
    let app = Proc::spawn("holdfast-app", app, &art)?;
    let room = app.json_line(Duration::from_secs(60))?;
    let (id, code) = (
        room["id"].as_str().unwrap().to_string(),
        room["code"].as_str().unwrap().to_string(),
    );

    // The window shows the ID and the code.
    wait_for(Duration::from_secs(30), "the window to show ID and code", || {
        let text = std::fs::read_to_string(&report).unwrap_or_default();
        Ok((text.contains(&id) && text.contains(&code)).then_some(()))
    })?;

    let mut browser = Browser::start(Some(&ns), &art)?;
    browser.watch(room["viewer_url"].as_str().unwrap(), &art)?;
    wait_for(
        Duration::from_secs(15),
        "the window to say a viewer is connected",
        || {
            Ok(std::fs::read_to_string(&report)
                .unwrap_or_default()
                .contains("Viewer connected")
                .then_some(()))
        },
    )?;
    // The viewer sees the app's own window, which shows the ID.
    std::thread::sleep(Duration::from_millis(500));
    browser.screenshot(&art.join("viewer.png"))?;
    ns.command("import")
        .args([
            "-display",
            &x.display,
            "-window",
            "root",
            art.join("desktop.png").to_str().unwrap(),
        ])
        .status()?;
    assert!(art.join("desktop.png").exists(), "screenshot of the display");
    Ok(())
}
