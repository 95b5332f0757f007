//! Room state in Redis, for several nodes serving one set of rooms
//! (docs/cluster-design.md): who owns a room (a lease each node renews),
//! what another node needs to carry a room on ([`RoomSnapshot`]), and the key
//! that signs session tokens, shared by every node. IO at the edge: the Hub
//! stays pure, and a node whose Redis is down keeps serving what it holds.
//!
//! `redis` (redis-rs) with its `ConnectionManager`: one multiplexed
//! connection that reconnects by itself after Redis restarts, so a restart
//! costs the commands in flight, not the node.

use std::time::Duration;

use holdfast_proto::RoomId;
use rand::RngCore;
use redis::aio::ConnectionManager;
use redis::Script;

use crate::hub::snapshot::RoomSnapshot;
use crate::token::TokenKey;

/// Every key this store writes starts with this.
const PREFIX: &str = "hf";
/// How long a command may take before the node stops waiting for Redis.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {} ms", COMMAND_TIMEOUT.as_millis())]
    Timeout,
    #[error("a stored room does not read back: {0}")]
    Corrupt(String),
}

/// Who holds a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This node (it just claimed it, or already held it).
    Us,
    /// Another node, whose lease is live.
    Node(String),
}

fn owner_key(room: &RoomId) -> String {
    format!("{PREFIX}:room:{}:owner", room.as_str())
}

fn state_key(room: &RoomId) -> String {
    format!("{PREFIX}:room:{}:state", room.as_str())
}

fn replay_key(room: &RoomId) -> String {
    format!("{PREFIX}:room:{}:replay", room.as_str())
}

fn ended_key(room: &RoomId) -> String {
    format!("{PREFIX}:room:{}:ended", room.as_str())
}

fn alive_key(node: &str) -> String {
    format!("{PREFIX}:node:{node}:alive")
}

/// The pub/sub channel that carries messages to `node`.
pub fn node_channel(node: &str) -> String {
    format!("{PREFIX}:node:{node}")
}

fn ms(d: Duration) -> u64 {
    d.as_millis().clamp(1, u64::MAX as u128) as u64
}

async fn timed<T>(f: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, StoreError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(StoreError::Timeout),
    }
}

/// Takes a room that is free, already ours, or held by a node that stopped
/// saying it is alive (it died: waiting out its lease would only delay the
/// clients that already came back elsewhere). KEYS: owner; ARGV: node, lease
/// ms, the alive-key prefix. Returns '' when taken, else the holder.
const CLAIM: &str = r"local cur = redis.call('GET', KEYS[1])
  if not cur or cur == ARGV[1] or redis.call('EXISTS', ARGV[3] .. cur .. ':alive') == 0 then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return ''
  end
  return cur";

/// Renews a lease that is ours or free (Redis lost it); 0 if another node
/// holds the room now. KEYS: owner; ARGV: node, lease ms.
const RENEW: &str = r"local cur = redis.call('GET', KEYS[1])
  if not cur or cur == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
  end
  return 0";

/// How long what a node writes is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// A room's state: its longest possible quiet life (grace, replay TTL).
    pub state: Duration,
    /// Replay entries kept per room, and how long after the last one.
    pub replay_messages: usize,
    pub replay_ttl: Duration,
    /// How long an ended room's tokens stay refused everywhere.
    pub ended: Duration,
    /// How long a node's hold on a room lasts unless renewed.
    pub lease: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            state: Duration::from_secs(600),
            replay_messages: crate::replay::REPLAY_MESSAGES,
            replay_ttl: crate::replay::REPLAY_TTL,
            ended: Duration::from_secs(3600),
            lease: Duration::from_secs(10),
        }
    }
}

/// One room's change, as a node writes it through.
#[derive(Debug, Clone)]
pub enum RoomWrite {
    /// The room now: `snapshot` holds the replay entries not written yet
    /// (`full`: all of them, replacing what is stored).
    Save { snapshot: Box<RoomSnapshot>, full: bool },
    /// The room ended (its nonce): state gone, tokens refused.
    Ended { id: RoomId, nonce: u64 },
}

/// What Redis holds about a room a node is about to carry on.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    pub snapshot: Option<RoomSnapshot>,
    /// The nonce of the room under this ID that ended lately.
    pub ended: Option<u64>,
}

#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    conn: ConnectionManager,
    node: String,
    retention: Retention,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("node", &self.node).finish()
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port`) as node `node`.
    pub async fn connect(url: &str, node: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        // One plain connection first: the manager would retry a refused
        // AUTH until the timeout, hiding the reason from the operator.
        timed(client.get_multiplexed_async_connection()).await?;
        let conn = timed(client.get_connection_manager()).await?;
        Ok(RedisStore {
            client,
            conn,
            node: node.to_owned(),
            retention: Retention::default(),
        })
    }

    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// A separate connection subscribed to this node's channel.
    pub async fn subscribe(&self) -> Result<redis::aio::PubSub, StoreError> {
        let mut pubsub = timed(self.client.get_async_pubsub()).await?;
        timed(pubsub.subscribe(node_channel(&self.node))).await?;
        Ok(pubsub)
    }

    /// Sends `payload` to `node`'s channel; the number of its subscribers
    /// that got it (0: the node is not listening).
    pub async fn publish(&self, node: &str, payload: &str) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        timed(
            redis::cmd("PUBLISH")
                .arg(node_channel(node))
                .arg(payload)
                .query_async(&mut conn),
        )
        .await
    }

    /// Says this node is alive for `ttl` (renewed well before it lapses).
    pub async fn heartbeat(&self, ttl: Duration) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        timed(
            redis::cmd("SET")
                .arg(alive_key(&self.node))
                .arg(1)
                .arg("PX")
                .arg(ms(ttl))
                .query_async::<()>(&mut conn),
        )
        .await
    }

    /// Which of `nodes` say they are alive.
    pub async fn alive(&self, nodes: &[String]) -> Result<Vec<bool>, StoreError> {
        if nodes.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for n in nodes {
            pipe.cmd("EXISTS").arg(alive_key(n));
        }
        let mut conn = self.conn.clone();
        let found: Vec<i64> = timed(pipe.query_async(&mut conn)).await?;
        Ok(found.into_iter().map(|n| n > 0).collect())
    }

    /// Takes `room` for this node for `lease` unless another live node holds
    /// it; holding it already renews it.
    pub async fn claim(&self, room: &RoomId, lease: Duration) -> Result<Owner, StoreError> {
        let mut conn = self.conn.clone();
        let holder: String = timed(
            Script::new(CLAIM)
                .key(owner_key(room))
                .arg(&self.node)
                .arg(ms(lease))
                .arg(format!("{PREFIX}:node:"))
                .invoke_async(&mut conn),
        )
        .await?;
        Ok(if holder.is_empty() {
            Owner::Us
        } else {
            Owner::Node(holder)
        })
    }

    /// Renews this node's leases on `rooms` (taking back any Redis lost);
    /// returns those another node holds now: this node must let them go.
    pub async fn renew(&self, rooms: &[RoomId], lease: Duration) -> Result<Vec<RoomId>, StoreError> {
        let mut lost = Vec::new();
        // Bounded pipelines: one round trip per thousand rooms.
        for chunk in rooms.chunks(1000) {
            let mut pipe = redis::pipe();
            for room in chunk {
                pipe.cmd("EVAL")
                    .arg(RENEW)
                    .arg(1)
                    .arg(owner_key(room))
                    .arg(&self.node)
                    .arg(ms(lease));
                // A quiet room's state lives as long as its lease does.
                pipe.cmd("PEXPIRE")
                    .arg(state_key(room))
                    .arg(ms(self.retention.state))
                    .ignore();
            }
            let mut conn = self.conn.clone();
            let held: Vec<i64> = timed(pipe.query_async(&mut conn)).await?;
            lost.extend(chunk.iter().zip(held).filter(|(_, h)| *h == 0).map(|(r, _)| r.clone()));
        }
        Ok(lost)
    }

    /// Writes `snap` whole (its replay entries replace the stored ones).
    pub async fn save(&self, snap: &RoomSnapshot) -> Result<(), StoreError> {
        self.write(&[RoomWrite::Save {
            snapshot: Box::new(snap.clone()),
            full: true,
        }])
        .await
    }

    /// Writes a batch of room changes in one round trip.
    pub async fn write(&self, writes: &[RoomWrite]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let r = self.retention;
        let mut pipe = redis::pipe();
        for w in writes {
            match w {
                RoomWrite::Save { snapshot, full } => {
                    let id = &snapshot.id;
                    // The entries live in their own list (appended, trimmed).
                    let head = RoomSnapshot {
                        replay: Vec::new(),
                        ..(**snapshot).clone()
                    };
                    let json = serde_json::to_string(&head).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    pipe.cmd("SET")
                        .arg(state_key(id))
                        .arg(json)
                        .arg("PX")
                        .arg(ms(r.state))
                        .ignore();
                    if *full {
                        // First write of a room this node made (or a rewrite): hold it.
                        pipe.cmd("EVAL")
                            .arg(RENEW)
                            .arg(1)
                            .arg(owner_key(id))
                            .arg(&self.node)
                            .arg(ms(r.lease))
                            .ignore();
                        pipe.cmd("DEL").arg(replay_key(id)).ignore();
                    }
                    if !snapshot.replay.is_empty() {
                        let mut push = redis::cmd("RPUSH");
                        push.arg(replay_key(id));
                        for entry in &snapshot.replay {
                            push.arg(serde_json::to_string(entry).map_err(|e| StoreError::Corrupt(e.to_string()))?);
                        }
                        pipe.add_command(push).ignore();
                        pipe.cmd("LTRIM")
                            .arg(replay_key(id))
                            .arg(-(r.replay_messages as i64))
                            .arg(-1)
                            .ignore();
                        pipe.cmd("PEXPIRE").arg(replay_key(id)).arg(ms(r.replay_ttl)).ignore();
                    }
                }
                RoomWrite::Ended { id, nonce } => {
                    pipe.cmd("DEL").arg(state_key(id)).arg(replay_key(id)).ignore();
                    pipe.cmd("SET")
                        .arg(ended_key(id))
                        .arg(*nonce)
                        .arg("PX")
                        .arg(ms(r.ended))
                        .ignore();
                    pipe.cmd("EVAL")
                        .arg("if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end return 1")
                        .arg(1)
                        .arg(owner_key(id))
                        .arg(&self.node)
                        .ignore();
                }
            }
        }
        let mut conn = self.conn.clone();
        timed(pipe.query_async::<()>(&mut conn)).await
    }

    /// The room as last written, if it is still kept.
    pub async fn load(&self, room: &RoomId) -> Result<Option<RoomSnapshot>, StoreError> {
        Ok(self.load_stored(room).await?.snapshot)
    }

    /// The room as last written, and whether a room under its ID ended lately.
    pub async fn load_stored(&self, room: &RoomId) -> Result<Stored, StoreError> {
        let mut conn = self.conn.clone();
        let (state, entries, ended): (Option<String>, Vec<String>, Option<u64>) = timed(
            redis::pipe()
                .cmd("GET")
                .arg(state_key(room))
                .cmd("LRANGE")
                .arg(replay_key(room))
                .arg(0)
                .arg(-1)
                .cmd("GET")
                .arg(ended_key(room))
                .query_async(&mut conn),
        )
        .await?;
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
        let snapshot = match state {
            None => None,
            Some(json) => {
                let mut snap: RoomSnapshot = serde_json::from_str(&json).map_err(corrupt)?;
                snap.replay = entries
                    .iter()
                    .map(|e| serde_json::from_str(e))
                    .collect::<Result<_, _>>()
                    .map_err(corrupt)?;
                Some(snap)
            }
        };
        Ok(Stored { snapshot, ended })
    }

    /// The room ended: its state goes, and its lease if this node holds it.
    pub async fn forget(&self, room: &RoomId, nonce: u64) -> Result<(), StoreError> {
        self.write(&[RoomWrite::Ended {
            id: room.clone(),
            nonce,
        }])
        .await
    }

    /// The key every node signs session tokens with: made by the first node
    /// that asks, read by the others.
    pub async fn token_key(&self) -> Result<TokenKey, StoreError> {
        let mut fresh = [0u8; 32];
        rand::rng().fill_bytes(&mut fresh);
        let key = format!("{PREFIX}:token-key");
        let mut conn = self.conn.clone();
        let _: Option<String> = timed(
            redis::cmd("SET")
                .arg(&key)
                .arg(&fresh[..])
                .arg("NX")
                .query_async(&mut conn),
        )
        .await?;
        let stored: Vec<u8> = timed(redis::cmd("GET").arg(&key).query_async(&mut conn)).await?;
        let bytes: [u8; 32] = stored
            .try_into()
            .map_err(|_| StoreError::Corrupt("the token key is not 32 bytes".into()))?;
        Ok(TokenKey::from_bytes(bytes))
    }
}
