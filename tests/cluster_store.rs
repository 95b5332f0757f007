//! Issue 13, item 2 (being built): room ownership, room state and the shared
//! token key in Debian's redis-server, as two nodes see them
//! (`holdfast_signal::cluster::store`), and a Redis restart survived.

use std::time::Duration;

use holdfast_proto::signal::{PeerId, ServerMessage};
use holdfast_proto::RoomId;
use holdfast_signal::cluster::store::{Owner, RedisStore, Retention};
use holdfast_signal::hub::snapshot::{MemberRole, MemberSnapshot, RoomSnapshot};
use holdfast_signal::token::{Claims, Grant};
use holdfast_testkit::{artifacts_dir, RedisServer};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn snapshot(id: &RoomId) -> RoomSnapshot {
    RoomSnapshot {
        id: id.clone(),
        gate: serde_json::from_str("\"K7QX\"").unwrap(),
        unattended: None,
        nonce: 42,
        host: PeerId("phost".into()),
        owner: "10.0.0.1".parse().unwrap(),
        members: vec![
            MemberSnapshot {
                peer: PeerId("phost".into()),
                role: MemberRole::Host,
                last_delivered: 7,
                last_received: 3,
                reconnections: 0,
                away_ms: None,
            },
            MemberSnapshot {
                peer: PeerId("pview".into()),
                role: MemberRole::Viewer { control: true },
                last_delivered: 5,
                last_received: 9,
                reconnections: 1,
                away_ms: Some(1500),
            },
        ],
        revoked: vec![PeerId("pgone".into())],
        taken_at_ms: 1_796_000_000_000,
        last_seq: 7,
        gaps: vec![(2, 3)],
        replay: vec![(6, PeerId("pview".into()), ServerMessage::Pong)],
    }
}

#[test]
fn two_nodes_share_ownership_room_state_and_the_token_key_through_redis() -> anyhow::Result<()> {
    let art = artifacts_dir("cluster_store");
    let port = free_port();
    let redis = RedisServer::start(None, port, &art)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let kept = Retention {
            state: Duration::from_secs(60),
            ..Default::default()
        };
        let a = RedisStore::connect(&redis.url(), "node-a").await?.with_retention(kept);
        let b = RedisStore::connect(&redis.url(), "node-b").await?.with_retention(kept);
        let room = RoomId::parse("123456789").map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let lease = Duration::from_millis(400);
        a.heartbeat(lease).await?;
        b.heartbeat(Duration::from_secs(60)).await?;
        assert_eq!(a.alive(&["node-a".into(), "node-c".into()]).await?, vec![true, false]);

        // One owner at a time; the holder renews.
        assert_eq!(a.claim(&room, lease).await?, Owner::Us);
        assert_eq!(b.claim(&room, lease).await?, Owner::Node("node-a".into()));
        assert_eq!(a.claim(&room, lease).await?, Owner::Us);
        assert!(a.renew(std::slice::from_ref(&room), lease).await?.is_empty());
        // A stops renewing and saying it is alive (it died): B takes the room;
        // A, were it alive, learns it lost it.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(b.claim(&room, lease).await?, Owner::Us);
        assert_eq!(a.renew(std::slice::from_ref(&room), lease).await?, vec![room.clone()]);

        // What A wrote, B reads back exactly.
        let mut snap = snapshot(&room);
        a.save(&snap).await?;
        let back = b.load(&room).await?.expect("saved");
        assert_eq!(serde_json::to_string(&back)?, serde_json::to_string(&snap)?);
        // Written through step by step: new entries appended, the oldest
        // trimmed past the replay size.
        let step = |seq: u64| (seq, PeerId("phost".into()), ServerMessage::Pong);
        for seq in 8..8 + Retention::default().replay_messages as u64 + 5 {
            snap.last_seq = seq;
            snap.replay = vec![step(seq)];
            a.write(&[holdfast_signal::cluster::store::RoomWrite::Save {
                snapshot: Box::new(snap.clone()),
                full: false,
            }])
            .await?;
        }
        let back = b.load(&room).await?.expect("saved");
        let seqs: Vec<u64> = back.replay.iter().map(|e| e.0).collect();
        let last = snap.last_seq;
        assert_eq!(
            seqs,
            (last + 1 - 50..=last).collect::<Vec<_>>(),
            "the last 50, in order"
        );
        assert_eq!(back.last_seq, last);
        // Kept only as long as asked.
        let brief = RedisStore::connect(&redis.url(), "node-a")
            .await?
            .with_retention(Retention {
                state: Duration::from_millis(200),
                ..Default::default()
            });
        let other = RoomId::parse("987654321").map_err(|e| anyhow::anyhow!("{e:?}"))?;
        brief.save(&snapshot(&other)).await?;
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(b.load(&other).await?.is_none(), "expired");
        // Ended: gone, lease too (B holds it, so B forgets it); its nonce is
        // remembered so its tokens cannot bring it back elsewhere.
        b.forget(&room, 42).await?;
        let stored = a.load_stored(&room).await?;
        assert!(stored.snapshot.is_none());
        assert_eq!(stored.ended, Some(42));
        assert_eq!(a.claim(&room, lease).await?, Owner::Us);

        // Tokens one node signs, the other accepts.
        let (ka, kb) = (a.token_key().await?, b.token_key().await?);
        let claims = Claims {
            room: room.clone(),
            nonce: 1,
            peer: PeerId("pview".into()),
            grant: Grant::Viewer { control: false },
        };
        assert!(kb.verify(&ka.sign(&claims)).is_some(), "one key for every node");
        anyhow::Ok(())
    })?;

    // Redis restarts (losing everything: no persistence here): the same
    // store reconnects by itself and works again.
    drop(redis);
    let redis = RedisServer::start(None, port, &art)?;
    rt.block_on(async {
        let a = RedisStore::connect(&redis.url(), "node-a").await?;
        let room = RoomId::parse("555555555").map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(a.claim(&room, Duration::from_secs(5)).await?, Owner::Us);
        anyhow::Ok(())
    })?;
    Ok(())
}

/// A store made before Redis went away keeps working once it is back,
/// without being made again (`ConnectionManager` reconnects); meanwhile its
/// calls fail quickly with an error, never hang or panic.
#[test]
fn a_store_rides_out_a_redis_restart() -> anyhow::Result<()> {
    let art = artifacts_dir("cluster_store_restart");
    let port = free_port();
    let redis = RedisServer::start(None, port, &art)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let room = RoomId::parse("111222333").map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let store = rt.block_on(RedisStore::connect(&redis.url(), "node-a"))?;
    rt.block_on(store.claim(&room, Duration::from_secs(5)))?;
    drop(redis);
    let started = std::time::Instant::now();
    let down = rt.block_on(store.claim(&room, Duration::from_secs(5)));
    assert!(down.is_err(), "Redis is down: {down:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "failed quickly: {:?}",
        started.elapsed()
    );
    let _redis = RedisServer::start(None, port, &art)?;
    let back = rt.block_on(async {
        for _ in 0..50 {
            if let Ok(owner) = store.claim(&room, Duration::from_secs(5)).await {
                return Some(owner);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    });
    assert_eq!(back, Some(Owner::Us), "the same store works again after the restart");
    Ok(())
}
