//! The Linux package, as a user gets it: `scripts/package.sh --debug` builds
//! the `.deb` (and `.rpm`) with the Tauri CLI, `apt-get install ./….deb`
//! installs it, and the installed app starts under Xvfb and shows a room.
//! (The debug profile shares the test build; `scripts/package.sh` alone makes
//! the release packages the same way.) The package is removed afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use holdfast_testkit::{artifacts_dir, output_of as run, repo_root, AppDriver, InstalledPackage, Netns, Xvfb};

#[test]
fn the_deb_builds_installs_and_the_installed_app_starts() -> anyhow::Result<()> {
    let art = artifacts_dir("packaging");
    let listing = run(Command::new("bash")
        .arg(repo_root().join("scripts/package.sh"))
        .arg("--debug")
        .current_dir(repo_root()))?;
    let packages: Vec<PathBuf> = listing.lines().map(PathBuf::from).collect();
    let deb = packages
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .ok_or_else(|| anyhow::anyhow!("no .deb in {listing}"))?;
    let rpm = packages.iter().find(|p| p.extension().is_some_and(|e| e == "rpm"));
    anyhow::ensure!(rpm.is_some_and(|p| p.is_file()), "an .rpm too: {listing}");

    // What the package declares and carries.
    let info = run(Command::new("dpkg-deb").arg("-I").arg(deb))?;
    for dep in [
        "libwebkit2gtk-4.1-0",
        "gstreamer1.0-libav",
        "libayatana-appindicator3-1",
    ] {
        anyhow::ensure!(info.contains(dep), "depends on {dep}: {info}");
    }
    let files = run(Command::new("dpkg-deb").arg("-c").arg(deb))?;
    for f in [
        "usr/bin/holdfast",
        "usr/share/applications/Holdfast.desktop",
        "usr/share/icons/hicolor/128x128/apps/holdfast.png",
        "usr/lib/Holdfast/viewer/index.html",
    ] {
        anyhow::ensure!(files.contains(f), "the package holds {f}");
    }
    std::fs::write(art.join("deb-info.txt"), format!("{info}\n{files}"))?;

    let _installed = InstalledPackage::install(deb, "holdfast")?;
    let installed = Path::new("/usr/bin/holdfast");
    anyhow::ensure!(installed.is_file(), "installed at {}", installed.display());

    // The installed app starts, shares, and its window shows the room.
    let ns = Netns::new()?;
    let x = Xvfb::start(Some(&ns), 1280, 800, &art)?;
    let (config, data) = (art.join("config"), art.join("data"));
    let _ = std::fs::remove_dir_all(&config);
    let _ = std::fs::remove_dir_all(&data);
    let app = AppDriver::launch(
        Some(&ns),
        installed,
        &[
            ("DISPLAY", x.display.as_str()),
            ("XDG_CONFIG_HOME", &config.to_string_lossy()),
            ("XDG_DATA_HOME", &data.to_string_lossy()),
            ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
        ],
        &art,
    )?;
    let id = app.wait_text(
        "#room-id",
        Duration::from_secs(60),
        "the installed app to show a room",
        |t| t.chars().filter(char::is_ascii_digit).count() >= 6,
    )?;
    let state = app.text("#host-state")?;
    app.screenshot(&art.join("installed-app.png"))?;
    // This namespace has no network: the screen says only this computer can open the link.
    let reach = app.text("#reach")?;
    anyhow::ensure!(reach.contains("No one else"), "{reach}");
    // The installed app's embedded server (every address, HTTPS with its own
    // certificate) serves the browser viewer from the package.
    let page = ns.exec(&["curl", "-sfk", "https://127.0.0.1:8443/"])?;
    anyhow::ensure!(
        page.contains("<canvas") || page.contains("viewer"),
        "the viewer page is served: {page}"
    );
    let logs: String = std::fs::read_dir(data.join("holdfast/logs"))?
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    anyhow::ensure!(
        logs.contains("ui=Some(\"/usr/lib/Holdfast/viewer\")"),
        "the viewer page comes from the package: {logs}"
    );
    eprintln!("installed {} → room {id}, state {state:?}", deb.display());
    anyhow::ensure!(state == "Waiting for a viewer", "{state}");
    Ok(())
}

/// Width and height from a PNG's IHDR.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Some((be(16), be(20)))
}

#[test]
fn every_icon_the_bundlers_need_is_there_at_its_size() -> anyhow::Result<()> {
    let conf: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(repo_root().join("tauri.conf.json"))?)?;
    let icons: Vec<String> = serde_json::from_value(conf["bundle"]["icon"].clone())?;
    for want in [
        "icons/32x32.png",
        "icons/128x128.png",
        "icons/128x128@2x.png",
        "icons/icon.icns",
        "icons/icon.ico",
    ] {
        anyhow::ensure!(icons.iter().any(|i| i == want), "tauri.conf.json lists {want}");
    }
    for icon in &icons {
        let bytes = std::fs::read(repo_root().join(icon))?;
        let name = Path::new(icon).file_name().unwrap().to_string_lossy().into_owned();
        match name.rsplit('.').next() {
            Some("png") => {
                let (w, h) = png_size(&bytes).ok_or_else(|| anyhow::anyhow!("{icon} is not a PNG"))?;
                anyhow::ensure!(w == h, "{icon} is square: {w}x{h}");
                let expect = match name.as_str() {
                    "32x32.png" => Some(32),
                    "128x128.png" => Some(128),
                    "128x128@2x.png" => Some(256),
                    "icon.png" => Some(512),
                    _ => None,
                };
                if let Some(e) = expect {
                    anyhow::ensure!(w == e, "{icon} is {e} px, not {w}");
                }
            }
            // Apple's container (not a renamed PNG), and Windows' (several sizes).
            Some("icns") => anyhow::ensure!(bytes.starts_with(b"icns"), "{icon} is a real .icns"),
            Some("ico") => anyhow::ensure!(
                bytes.starts_with(&[0, 0, 1, 0]) && bytes[4] >= 4,
                "{icon} holds several sizes"
            ),
            _ => anyhow::bail!("unexpected icon {icon}"),
        }
    }
    Ok(())
}
