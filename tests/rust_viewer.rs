//! Acceptance: a Rust viewer peer (webrtc-rs + OpenH264 decoder) connects to
//! the host over loopback; what it decodes matches the captured screen.
//! Also: bad signalling input mid-stream leaves the running session untouched.
//! (Backpressure needs a viewer whose socket stops draining: tests/backpressure.rs.)

use std::time::{Duration, Instant};

use holdfast_media::encode::EncoderSettings;
use holdfast_media::synthetic::SyntheticSource;
use holdfast_media::worker::MediaWorker;
use holdfast_media::{BgraFrame, FrameSource, H264Decoder, I420Image, ScreenSource};
use holdfast_peer::backpressure::QueueLimits;
use holdfast_peer::host::{self, ConsentPolicy, HostConfig, HostHandle};
use holdfast_peer::rtc::RtcOptions;
use holdfast_peer::viewer::{self, ViewerConfig, ViewerEvent, ViewerHandle};
use holdfast_proto::signal::Decision;
use holdfast_proto::video::EncodedFrame;
use holdfast_proto::{RoomCode, RoomId};
use holdfast_session::KeepaliveConfig;
use holdfast_signal::{RunningServer, ServerConfig};
use holdfast_testkit::{artifacts_dir, pattern, start_pattern, Xvfb};

async fn server() -> RunningServer {
    let mut cfg = ServerConfig::loopback(0);
    cfg.ui_dir = None;
    holdfast_signal::spawn(cfg).await.expect("server starts")
}

async fn start_host(server: &RunningServer, worker: MediaWorker, limits: QueueLimits, fps: u32) -> HostHandle {
    let mut cfg = HostConfig::new(url::Url::parse(&server.base_url).unwrap());
    cfg.rtc = RtcOptions::loopback();
    cfg.limits = limits;
    cfg.fps = fps;
    cfg.consent = ConsentPolicy::Always(Decision::Control);
    host::start(cfg, worker, None).await.expect("host registers")
}

async fn join(server: &RunningServer, host: &HostHandle) -> ViewerHandle {
    viewer::connect(ViewerConfig {
        signal_url: url::Url::parse(&server.base_url).unwrap(),
        id: RoomId::parse(&host.room.id).unwrap(),
        code: RoomCode::parse(&host.room.code).unwrap(),
        token: None,
        resume: None,
        rtc: RtcOptions::loopback(),
        keepalive: KeepaliveConfig::viewer(),
        tls: None,
        grace: holdfast_session::GRACE_PERIOD,
        inbox: None,
        incoming_files: holdfast_peer::transfer::IncomingFiles::Allow,
        password: None,
    })
    .await
    .expect("viewer joins")
}

async fn next_frame(v: &mut ViewerHandle, within: Duration) -> EncodedFrame {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, v.events.recv()).await {
            Ok(Some(ViewerEvent::Frame(f))) => return f,
            Ok(Some(ViewerEvent::Closed(why))) => panic!("viewer closed: {why}"),
            Ok(Some(ViewerEvent::BadChunk(e))) => panic!("bad chunk: {e}"),
            Ok(Some(_)) => {}
            Ok(None) => panic!("viewer gone"),
            Err(_) => panic!("no frame within {within:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_viewer_decodes_what_the_host_captured() {
    let art = artifacts_dir("rust_viewer");
    let x = Xvfb::start(None, 1280, 720, &art).unwrap();
    let mut pat = start_pattern(None, &x.display, &art).unwrap();
    pat.write_line("still").unwrap();
    // SAFETY of intent: this test binary is its own process; nothing else reads DISPLAY concurrently.
    std::env::set_var("DISPLAY", &x.display);
    std::thread::sleep(Duration::from_millis(300));

    let server = server().await;
    let worker = MediaWorker::spawn(|| ScreenSource::open(0), EncoderSettings::default()).unwrap();
    assert_eq!(worker.dimensions(), (1280, 720));
    let host = start_host(&server, worker, QueueLimits::default(), 30).await;
    let mut v = join(&server, &host).await;

    let first = next_frame(&mut v, Duration::from_secs(20)).await;
    assert!(first.keyframe, "the first frame a viewer gets is a keyframe");
    assert_eq!((first.display_width, first.display_height), (1280, 720));
    // Rate control sends the first picture small, then probes the path: on
    // loopback the still screen reaches its full size within seconds (it
    // must be encoded again at the new size although nothing changed).
    let started = Instant::now();
    let full = loop {
        let f = next_frame(&mut v, Duration::from_secs(10)).await;
        if f.keyframe && (f.width, f.height) == (1280, 720) {
            break f;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no full-size picture yet");
    };
    eprintln!(
        "first picture {}x{}, full size after {:?}",
        first.width,
        first.height,
        started.elapsed()
    );
    let mut dec = H264Decoder::new().unwrap();
    let pic = dec
        .decode(&full.data)
        .unwrap()
        .expect("a keyframe decodes to a picture");

    // What the screen shows now, captured independently and taken through
    // the same colour conversion the encoder sees.
    let mut screen = ScreenSource::open(0).unwrap();
    let grabbed: BgraFrame<'_> = screen.grab().unwrap().expect("a frame");
    let mut reference = I420Image::default();
    reference.convert_from(&grabbed).unwrap();
    let want = reference.to_rgba().unwrap();
    let mean_err = pic
        .rgba
        .iter()
        .zip(&want)
        .map(|(a, b)| a.abs_diff(*b) as u64)
        .sum::<u64>() as f64
        / want.len() as f64;
    eprintln!("decoded vs captured: mean abs error {mean_err:.2} per channel");
    assert!(mean_err < 3.0, "decoded picture differs from the screen: {mean_err}");
    for (x, y, c) in [
        (320, 180, pattern::TOP_LEFT),
        (960, 180, pattern::TOP_RIGHT),
        (320, 540, pattern::BOTTOM_LEFT),
        (960, 450, pattern::BOTTOM_RIGHT),
    ] {
        let got = pic.rgb_at(x, y);
        assert!(pattern::close(got, c, 24), "({x},{y}) decoded {got:?}, want {c:?}");
    }
    host.stop().await.unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_pings_are_answered_and_timed() {
    let server = server().await;
    let worker = MediaWorker::spawn(|| Ok(SyntheticSource::new(320, 240)), EncoderSettings::default()).unwrap();
    let mut cfg = HostConfig::new(url::Url::parse(&server.base_url).unwrap());
    cfg.rtc = RtcOptions::loopback();
    cfg.keepalive.interval = Duration::from_millis(100);
    cfg.consent = ConsentPolicy::Always(Decision::Control);
    let host = host::start(cfg, worker, None).await.unwrap();
    let mut v = join(&server, &host).await;
    next_frame(&mut v, Duration::from_secs(20)).await;
    tokio::spawn(async move { while v.events.recv().await.is_some() {} });
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let s = host.stats.borrow().viewers[0].clone();
    eprintln!("keepalive: {} pings, rtt {:?} ms", s.pings_sent, s.rtt_ms);
    assert!(s.pings_sent >= 8, "pings every 100 ms: {s:?}");
    assert!(s.rtt_ms.is_some_and(|r| r < 100.0), "answered, with an RTT: {s:?}");
    assert!(!s.unresponsive);
    host.stop().await.unwrap();
    server.shutdown().await;
}

/// The viewer acknowledges what it drew; the host turns that into a
/// capture-to-screen figure and reports it back. A viewer lying in its
/// acknowledgements (a frame never sent, one held longer than it existed, one
/// acknowledged twice) is refused and moves no figure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_acknowledgements_are_reported_back_and_forged_ones_refused() {
    use holdfast_proto::commands::Control;
    let server = server().await;
    let worker = MediaWorker::spawn(|| Ok(SyntheticSource::new(640, 360)), EncoderSettings::default()).unwrap();
    let host = start_host(&server, worker, QueueLimits::default(), 30).await;
    let mut v = join(&server, &host).await;
    let first = next_frame(&mut v, Duration::from_secs(20)).await;
    // Drawn 10 ms after arriving, acknowledged at once: and its forgeries.
    tokio::time::sleep(Duration::from_millis(10)).await;
    v.send_control(Control::FrameShown {
        frame: first.frame_id,
        after_ms: 10,
    });
    for (frame, after_ms) in [(first.frame_id, 10), (first.frame_id + 100_000, 0)] {
        v.send_control(Control::FrameShown { frame, after_ms });
    }
    // A real frame said to have waited 59 s on the viewer: impossible. The
    // host reports once a second, so its report may come before or after
    // the next frame: keep whichever comes first of either.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut report, mut forged_wait) = (None, false);
    while report.is_none() || !forged_wait {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, v.events.recv()).await {
            Ok(Some(ViewerEvent::Control(c @ Control::LinkReport { .. }))) => report = Some(c),
            Ok(Some(ViewerEvent::Frame(f))) if !forged_wait => {
                v.send_control(Control::FrameShown {
                    frame: f.frame_id,
                    after_ms: 59_000,
                });
                forged_wait = true;
            }
            Ok(Some(_)) => {}
            other => panic!("no link report ({report:?}) or no second frame ({forged_wait}): {other:?}"),
        }
    }
    let report = report.expect("the loop ends with one");
    // The impossible wait was sent last: give the host a moment to refuse it.
    let mut stats = host.stats.clone();
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        stats.wait_for(|s| s.viewers.first().is_some_and(|v| v.commands_rejected >= 3)),
    )
    .await;
    let s = host.stats.borrow().viewers[0].clone();
    eprintln!(
        "report {report:?}; host: shown p50 {:?} p95 {:?}, rejected {}",
        s.shown_p50_ms, s.shown_p95_ms, s.commands_rejected
    );
    let Control::LinkReport {
        shown_p50_ms,
        shown_p95_ms,
        ..
    } = report
    else {
        unreachable!()
    };
    assert!(
        shown_p50_ms >= 10 && shown_p95_ms < 1_000,
        "one honest sample: {report:?}"
    );
    assert_eq!(s.shown_p95_ms, Some(shown_p95_ms), "the forgeries moved nothing");
    assert_eq!(
        s.commands_rejected, 3,
        "a repeat, an unknown frame and an impossible wait"
    );
    host.stop().await.unwrap();
    server.shutdown().await;
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signalling_input_does_not_disturb_a_running_stream() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let server = server().await;
    let worker = MediaWorker::spawn(|| Ok(SyntheticSource::new(640, 360)), EncoderSettings::default()).unwrap();
    let host = start_host(&server, worker, QueueLimits::default(), 30).await;
    let mut v = join(&server, &host).await;
    next_frame(&mut v, Duration::from_secs(20)).await;

    let ws_url = format!("ws://{}/ws", server.addr);
    let (mut bad, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    async fn reply(bad: &mut Ws, send: Message) -> serde_json::Value {
        bad.send(send).await.unwrap();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(5), bad.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            if let Message::Text(t) = msg {
                return serde_json::from_str(&t).unwrap();
            }
        }
    }
    async fn expect_error(bad: &mut Ws, send: Message, code: &str) {
        let v = reply(bad, send).await;
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["code"], code, "{v}");
        assert!(!v["message"].as_str().unwrap().is_empty(), "{v}");
    }
    expect_error(&mut bad, Message::text("{{{"), "bad-message").await;
    expect_error(
        &mut bad,
        Message::text(format!(r#"{{"type":"offer","sdp":"{}"}}"#, "a".repeat(100_000))),
        "too-large",
    )
    .await;
    expect_error(&mut bad, Message::text(r#"{"type":"format-c"}"#), "unknown-type").await;
    expect_error(&mut bad, Message::binary(vec![0u8; 16]), "bad-message").await;
    expect_error(
        &mut bad,
        Message::text(r#"{"type":"join","id":"000000000","gate":"ABCD"}"#),
        "invalid-credentials",
    )
    .await;
    let wrong = format!(
        r#"{{"type":"join","id":"{}","gate":"{}"}}"#,
        host.room.id.replace(' ', ""),
        // A gate that is not the host's.
        if host.room.code.starts_with("0000") {
            "1111"
        } else {
            "0000"
        }
    );
    expect_error(&mut bad, Message::text(wrong), "invalid-credentials").await;
    expect_error(
        &mut bad,
        Message::text(r#"{"type":"candidate","candidate":{"candidate":"x"}}"#),
        "not-in-room",
    )
    .await;
    // Now a host of its own room, it tries to reach a peer of another room.
    assert_eq!(
        reply(&mut bad, Message::text(r#"{"type":"register","gate":"ABCD"}"#)).await["type"],
        "registered"
    );
    expect_error(
        &mut bad,
        Message::text(r#"{"type":"offer","to":"p0123456789abcdef","sdp":"v=0"}"#),
        "unknown-peer",
    )
    .await;
    // Meanwhile the session never stopped.
    let mut frames = 0;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(2) {
        next_frame(&mut v, Duration::from_secs(5)).await;
        frames += 1;
    }
    assert!(frames >= 10, "stream kept flowing ({frames} frames in 2 s)");
    host.stop().await.unwrap();
    server.shutdown().await;
}
