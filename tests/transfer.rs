//! Acceptance (issue 15), in process over loopback: files both ways between
//! the host and a Rust viewer, verified by SHA-256 and landing in the chosen
//! folders; chat both ways in order; the clipboard to and from the host's X
//! clipboard (checked with `xclip`); and what a hostile viewer tries (path
//! tricks, bytes it was never asked for, sending without control) refused.
//! The shaped-link transfer with a cut is tests/transfer_netns.rs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use holdfast_media::encode::EncoderSettings;
use holdfast_media::synthetic::SyntheticSource;
use holdfast_media::worker::MediaWorker;
use holdfast_peer::host::{self, ConsentPolicy, HostConfig, HostEvent, HostHandle};
use holdfast_peer::rtc::RtcOptions;
use holdfast_peer::transfer::{IncomingFiles, TransferInput, TransferOutput, TransferState};
use holdfast_peer::viewer::{self, ViewerConfig, ViewerHandle};
use holdfast_proto::signal::Decision;
use holdfast_proto::transfer::{encode_chunk, Control, Kind, Message, RejectReason};
use holdfast_proto::{RoomCode, RoomId};
use holdfast_signal::{RunningServer, ServerConfig};
use holdfast_testkit::files::{random_file, sha256_file as sha_of, sha256_hex, xclip_in, xclip_out};
use holdfast_testkit::{artifacts_dir, Xvfb};
use holdfast_transfer::{Direction, Phase, TransferView};

async fn server() -> RunningServer {
    let mut cfg = ServerConfig::loopback(0);
    cfg.ui_dir = None;
    holdfast_signal::spawn(cfg).await.expect("server starts")
}

async fn start_host(server: &RunningServer, inbox: &Path, clipboard: bool, decision: Decision) -> HostHandle {
    let mut cfg = HostConfig::new(url::Url::parse(&server.base_url).unwrap());
    cfg.rtc = RtcOptions::loopback();
    cfg.fps = 15;
    cfg.consent = ConsentPolicy::Always(decision);
    cfg.inbox = Some(inbox.to_path_buf());
    cfg.incoming_files = IncomingFiles::Allow;
    cfg.clipboard = clipboard.then(holdfast_input::ClipboardSource::system);
    let worker = MediaWorker::spawn(|| Ok(SyntheticSource::new(640, 360)), EncoderSettings::default()).unwrap();
    host::start(cfg, worker, None).await.expect("host registers")
}

async fn join(server: &RunningServer, host: &HostHandle, inbox: &Path) -> ViewerHandle {
    let url = url::Url::parse(&server.base_url).unwrap();
    let id = RoomId::parse(&host.room.id).unwrap();
    let code = RoomCode::parse(&host.room.code).unwrap();
    viewer::connect(ViewerConfig {
        rtc: RtcOptions::loopback(),
        inbox: Some(inbox.to_path_buf()),
        incoming_files: IncomingFiles::Allow,
        ..ViewerConfig::new(url, id, code)
    })
    .await
    .expect("viewer joins")
}

/// Waits until `f` holds for the state of the viewer's transfers.
async fn until(
    state: &mut tokio::sync::watch::Receiver<TransferState>,
    within: Duration,
    what: &str,
    f: impl Fn(&TransferState) -> bool,
) -> TransferState {
    let r = tokio::time::timeout(within, state.wait_for(|s| f(s)))
        .await
        .map(|r| r.map(|s| s.clone()));
    match r {
        Ok(Ok(s)) => s,
        _ => panic!("{what} within {within:?}; state: {:#?}", *state.borrow()),
    }
}

fn done(s: &TransferState, direction: Direction, name: &str) -> Option<TransferView> {
    s.transfers
        .iter()
        .find(|t| t.direction == direction && t.name == name && t.phase == Phase::Done)
        .cloned()
}

fn failed(s: &TransferState, direction: Direction, name: &str) -> Option<TransferView> {
    s.transfers
        .iter()
        .find(|t| t.direction == direction && t.name == name && t.phase == Phase::Failed)
        .cloned()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_chat_cross_both_ways_and_arrive_whole() {
    let art = artifacts_dir("transfer_both_ways");
    let (host_dir, viewer_dir, src) = (art.join("host-inbox"), art.join("viewer-inbox"), art.join("src"));
    for d in [&host_dir, &viewer_dir, &src] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d).unwrap();
    }
    let server = server().await;
    let mut host = start_host(&server, &host_dir, false, Decision::Control).await;
    let v = join(&server, &host, &viewer_dir).await;
    let mut state = v.transfer.state.clone();

    let size = 64 << 20;
    let (up, up_sha) = random_file(&src, "from the viewer.bin", size);
    let (down, down_sha) = random_file(&src, "from-the-host.bin", size);
    let started = Instant::now();
    v.transfer.send(TransferInput::SendFile(up.clone()));
    host.remote().send_file(None, down.clone());
    v.transfer.send(TransferInput::Chat("hello from the viewer".into()));
    host.remote().chat(None, "hello from the host".into());
    v.transfer.send(TransferInput::Chat("second line".into()));

    let s = until(&mut state, Duration::from_secs(120), "both files done", |s| {
        done(s, Direction::Outgoing, "from the viewer.bin").is_some()
            && done(s, Direction::Incoming, "from-the-host.bin").is_some()
    })
    .await;
    let took = started.elapsed();
    eprintln!(
        "2 x {} MB both ways at once in {:.1} s: {:.1} MB/s each way",
        size >> 20,
        took.as_secs_f64(),
        size as f64 / 1e6 / took.as_secs_f64()
    );
    assert_eq!(sha_of(&host_dir.join("from the viewer.bin")), up_sha);
    assert_eq!(sha_of(&viewer_dir.join("from-the-host.bin")), down_sha);
    assert_eq!(files_in(&host_dir), vec!["from the viewer.bin"], "no partial file left");
    assert_eq!(files_in(&viewer_dir), vec!["from-the-host.bin"]);
    let up_view = done(&s, Direction::Outgoing, "from the viewer.bin").unwrap();
    assert_eq!(
        (up_view.done, up_view.bytes_sent),
        (size as u64, size as u64),
        "each byte sent once"
    );

    // Chat: the host's line reached the viewer, the viewer's two reached the host, in order.
    let s = until(&mut state, Duration::from_secs(5), "the host's chat line", |s| {
        s.chat.iter().any(|l| !l.mine && l.text == "hello from the host")
    })
    .await;
    let mine: Vec<&str> = s.chat.iter().filter(|l| l.mine).map(|l| l.text.as_str()).collect();
    assert_eq!(mine, vec!["hello from the viewer", "second line"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut host_heard = Vec::new();
    while host_heard.len() < 2 && Instant::now() < deadline {
        if let Ok(Some(HostEvent::Transfer {
            event: TransferOutput::Chat(line),
            ..
        })) = tokio::time::timeout(Duration::from_millis(200), host.events.recv()).await
        {
            host_heard.push((line.n, line.text));
        }
    }
    assert_eq!(
        host_heard,
        vec![(0, "hello from the viewer".to_string()), (1, "second line".to_string())]
    );
    host.stop().await.unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_viewer_cannot_write_outside_the_folder_nor_send_without_control() {
    let art = artifacts_dir("transfer_hostile");
    let (host_dir, viewer_dir, outside) = (art.join("host-inbox"), art.join("viewer-inbox"), art.join("outside"));
    for d in [&host_dir, &viewer_dir, &outside] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(outside.join("victim"), b"precious").unwrap();
    std::os::unix::fs::symlink(outside.join("victim"), host_dir.join("link.txt")).unwrap();
    let server = server().await;
    let host = start_host(&server, &host_dir, false, Decision::Control).await;
    let v = join(&server, &host, &viewer_dir).await;
    let mut state = v.transfer.state.clone();
    let mut host_stats = host.stats.clone();
    until(&mut state, Duration::from_secs(10), "the transfer channel up", |s| {
        s.connected
    })
    .await;

    // Offers a well-behaved viewer would never make, straight on the wire.
    let tricks = ["../x", "/etc/passwd", "a\u{1b}[31mred", "..", "sub/dir"];
    for (i, name) in tricks.iter().enumerate() {
        let json = format!(
            r#"{{"type":"offer","v":1,"id":{},"kind":"file","name":{},"size":4}}"#,
            100 + 2 * i,
            serde_json::to_string(name).unwrap()
        );
        v.transfer.send(TransferInput::Raw(json.into_bytes()));
    }
    // Bytes nobody asked for, for an id never offered and one never accepted.
    v.transfer.send(TransferInput::Raw(encode_chunk(200, 0, b"junk")));
    // A name already taken by a symlink: saved beside it, never through it.
    random_file(&art, "link.txt", 4);
    v.transfer.send(TransferInput::SendFile(art.join("link.txt")));
    let s = until(&mut state, Duration::from_secs(20), "the honest file saved", |s| {
        done(s, Direction::Outgoing, "link.txt").is_some()
    })
    .await;
    assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"precious");
    assert!(host_dir.join("link.txt").is_symlink());
    let saved = files_in(&host_dir);
    assert!(saved.contains(&"link (1).txt".to_string()), "{saved:?}");
    assert_eq!(files_in(&outside), vec!["victim"]);
    assert!(!Path::new("/etc/x").exists());
    let host_rejected = tokio::time::timeout(
        Duration::from_secs(5),
        host_stats.wait_for(|h| h.viewers.first().is_some_and(|v| v.transfer.rejected >= 6)),
    )
    .await
    .map(|h| h.map(|h| h.viewers[0].transfer.rejected).unwrap_or(0));
    eprintln!(
        "host refused {host_rejected:?} messages; viewer state {:?}",
        s.transfers.len()
    );
    assert!(host_rejected.is_ok(), "five bad names and a stray chunk refused");

    // Control off: what the viewer sends now is refused, and nothing lands.
    host.set_control(false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (no, _) = random_file(&art, "while-view-only.bin", 1000);
    v.transfer.send(TransferInput::SendFile(no));
    let s = until(&mut state, Duration::from_secs(10), "the offer refused", |s| {
        failed(s, Direction::Outgoing, "while-view-only.bin").is_some()
    })
    .await;
    let f = failed(&s, Direction::Outgoing, "while-view-only.bin").unwrap();
    assert_eq!(f.error.as_deref(), Some(RejectReason::NotAllowed.describe()));
    assert!(!files_in(&host_dir).iter().any(|n| n.contains("view-only")));
    host.stop().await.unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clipboard_crosses_both_ways_only_with_control_and_the_switch_on() {
    let art = artifacts_dir("transfer_clipboard");
    let x = Xvfb::start(None, 640, 360, &art).unwrap();
    // SAFETY of intent: this test binary's other tests do not read DISPLAY.
    std::env::set_var("DISPLAY", &x.display);
    let (host_dir, viewer_dir) = (art.join("host-inbox"), art.join("viewer-inbox"));
    for d in [&host_dir, &viewer_dir] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d).unwrap();
    }
    let server = server().await;
    let host = start_host(&server, &host_dir, true, Decision::Control).await;
    assert!(
        host.stats.borrow().clipboard_available,
        "the host opened the X clipboard"
    );
    let mut v = join(&server, &host, &viewer_dir).await;
    let mut state = v.transfer.state.clone();
    until(&mut state, Duration::from_secs(10), "the clipboard allowed", |s| {
        s.allowed.clipboard && s.connected
    })
    .await;

    // Viewer to host: lands on the host's X clipboard.
    let text = "Grüße aus dem Viewer — 你好 ✓";
    v.transfer.send(TransferInput::SendClipboardText(text.into()));
    holdfast_testkit::wait_for(Duration::from_secs(5), "xclip shows the viewer's text", || {
        Ok((xclip_out(&x.display) == text).then_some(()))
    })
    .unwrap();

    // Host to viewer: copied on the host, arrives at the viewer.
    xclip_in(&x.display, "copied on the host");
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match v.transfer.events.recv().await {
                Some(TransferOutput::Clipboard(t)) => break t,
                Some(_) => {}
                None => panic!("transfer task gone"),
            }
        }
    })
    .await
    .expect("the host's clipboard reached the viewer");
    assert_eq!(got, "copied on the host");

    // Oversized: refused on the sending side with a clear error; nothing crosses.
    let big = "x".repeat(holdfast_proto::transfer::MAX_CLIPBOARD_TEXT_BYTES as usize + 1);
    v.transfer.send(TransferInput::SendClipboardText(big));
    let refused = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Some(TransferOutput::Refused(why)) = v.transfer.events.recv().await {
                break why;
            }
        }
    })
    .await
    .expect("a clear error");
    assert!(refused.contains("send it as a file"), "{refused}");

    // Not UTF-8, straight on the wire: refused by the host, the clipboard unchanged.
    let before = host.stats.borrow().viewers[0].transfer.rejected;
    let bad = [0xffu8, 0xfe, 0x41];
    let id = 900;
    let raw = |m: Message| v.transfer.send(TransferInput::Raw(m.encode()));
    raw(Message::Control(Control::Offer {
        id,
        kind: Kind::ClipboardText,
        name: String::new(),
        size: 3,
    }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    raw(Message::Chunk {
        id,
        offset: 0,
        data: bad.to_vec(),
    });
    raw(Message::Control(Control::End {
        id,
        sha256: sha256_hex(&bad),
    }));
    let mut host_stats = host.stats.clone();
    // (A watch::Ref held on blocks the host's next publish: keep only a bool.)
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        host_stats.wait_for(|h| h.viewers.first().is_some_and(|v| v.transfer.rejected > before)),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(refused, "non-UTF-8 clipboard counted as refused");
    assert_eq!(xclip_out(&x.display), "copied on the host");

    // The switch off, then control off: nothing crosses either way.
    for (switch_off, label) in [(true, "clipboard switch off"), (false, "control off")] {
        if switch_off {
            host.remote().set_clipboard(false);
        } else {
            host.remote().set_clipboard(true);
            host.set_control(false);
        }
        until(&mut state, Duration::from_secs(5), label, |s| !s.allowed.clipboard).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        v.transfer
            .send(TransferInput::SendClipboardText(format!("{label}: must not land")));
        xclip_in(&x.display, &format!("{label}: must not leave"));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(xclip_out(&x.display), format!("{label}: must not leave"), "{label}");
        while let Ok(ev) = v.transfer.events.try_recv() {
            assert!(!matches!(ev, TransferOutput::Clipboard(_)), "{label}: {ev:?}");
        }
    }
    host.stop().await.unwrap();
    server.shutdown().await;
}

/// A tmpfs of `mb` MiB at `dir`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mb: u32) -> Tmpfs {
        let _ = Command::new("umount").arg("-l").arg(dir).status();
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "holdfast-test"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount a tmpfs (the tests run as root)");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gives_a_clear_error_and_leaves_no_partial_file() {
    let art = artifacts_dir("transfer_full_disk");
    let (src, viewer_dir) = (art.join("src"), art.join("viewer-inbox"));
    for d in [&src, &viewer_dir] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d).unwrap();
    }
    let disk = Tmpfs::mount(&art.join("small-disk"), 110);
    let server = server().await;
    let host = start_host(&server, &disk.0, false, Decision::Control).await;
    let v = join(&server, &host, &viewer_dir).await;
    let mut state = v.transfer.state.clone();
    until(&mut state, Duration::from_secs(10), "the transfer channel up", |s| {
        s.connected
    })
    .await;
    let no_space = RejectReason::NoSpace.describe();

    // Bigger than the free space (with the 64 MiB kept free): refused before a byte moves.
    let (big, _) = random_file(&src, "too-big.bin", 50 << 20);
    v.transfer.send(TransferInput::SendFile(big));
    let s = until(&mut state, Duration::from_secs(10), "the big file refused", |s| {
        failed(s, Direction::Outgoing, "too-big.bin").is_some()
    })
    .await;
    let f = failed(&s, Direction::Outgoing, "too-big.bin").unwrap();
    assert_eq!((f.error.as_deref(), f.bytes_sent), (Some(no_space), 0));

    // Three that each fit when offered (40 + 64 of 110 MiB), but not
    // together: the disk fills while the third is written.
    let files: Vec<(PathBuf, String)> = ["one.bin", "two.bin", "three.bin"]
        .iter()
        .map(|name| random_file(&src, name, 40 << 20))
        .collect();
    for (path, _) in &files {
        v.transfer.send(TransferInput::SendFile(path.clone()));
    }
    let s = until(&mut state, Duration::from_secs(60), "all three ended", |s| {
        ["one.bin", "two.bin", "three.bin"]
            .iter()
            .all(|n| done(s, Direction::Outgoing, n).is_some() || failed(s, Direction::Outgoing, n).is_some())
    })
    .await;
    let outcome: Vec<(String, Option<String>)> = ["one.bin", "two.bin", "three.bin"]
        .iter()
        .map(|n| {
            let t = s.transfers.iter().find(|t| t.name == *n).unwrap();
            (format!("{n}: {:?}", t.phase), t.error.clone())
        })
        .collect();
    eprintln!("on a 110 MiB disk: {outcome:?}; left there: {:?}", files_in(&disk.0));
    assert!(done(&s, Direction::Outgoing, "one.bin").is_some(), "{outcome:?}");
    assert!(done(&s, Direction::Outgoing, "two.bin").is_some(), "{outcome:?}");
    let third = failed(&s, Direction::Outgoing, "three.bin").expect("the third does not fit");
    assert_eq!(third.error.as_deref(), Some(no_space));
    assert!(
        third.done > 0,
        "the third failed while written, not when offered: {third:?}"
    );
    assert_eq!(sha_of(&disk.0.join("one.bin")), files[0].1);
    assert_eq!(sha_of(&disk.0.join("two.bin")), files[1].1);
    let left = files_in(&disk.0);
    assert!(!left.iter().any(|n| n.ends_with(".part")), "no partial file: {left:?}");
    assert!(!left.contains(&"three.bin".to_string()), "{left:?}");
    host.stop().await.unwrap();
    server.shutdown().await;
}
