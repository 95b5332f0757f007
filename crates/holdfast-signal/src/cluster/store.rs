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

#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    node: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("node", &self.node).finish()
    }
}

fn owner_key(room: &RoomId) -> String {
    format!("{PREFIX}:room:{}:owner", room.as_str())
}

fn state_key(room: &RoomId) -> String {
    format!("{PREFIX}:room:{}:state", room.as_str())
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

impl RedisStore {
    /// Connects to `url` (`redis://host:port`) as node `node`.
    pub async fn connect(url: &str, node: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let conn = timed(client.get_connection_manager()).await?;
        Ok(RedisStore {
            conn,
            node: node.to_owned(),
        })
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Takes `room` for this node for `lease` unless another node holds a
    /// live lease; holding it already renews it.
    pub async fn claim(&self, room: &RoomId, lease: Duration) -> Result<Owner, StoreError> {
        // One round trip, atomic: set if free, renew if ours, else say whose.
        let script = Script::new(
            r"local cur = redis.call('GET', KEYS[1])
              if not cur then
                redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
                return ''
              elseif cur == ARGV[1] then
                redis.call('PEXPIRE', KEYS[1], ARGV[2])
                return ''
              end
              return cur",
        );
        let holder: String = self.lease_script(&script, room, lease).await?;
        Ok(if holder.is_empty() {
            Owner::Us
        } else {
            Owner::Node(holder)
        })
    }

    /// Renews this node's leases on `rooms`; returns those it no longer held
    /// (lapsed and taken by another node: it must let them go).
    pub async fn renew(&self, rooms: &[RoomId], lease: Duration) -> Result<Vec<RoomId>, StoreError> {
        let script = Script::new(
            r"if redis.call('GET', KEYS[1]) == ARGV[1] then
                return redis.call('PEXPIRE', KEYS[1], ARGV[2])
              end
              return 0",
        );
        let mut lost = Vec::new();
        for room in rooms {
            let held: i64 = self.lease_script(&script, room, lease).await?;
            if held == 0 {
                lost.push(room.clone());
            }
        }
        Ok(lost)
    }

    /// Runs a lease script on `room`'s owner key with this node and `lease`.
    async fn lease_script<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        room: &RoomId,
        lease: Duration,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        timed(
            script
                .key(owner_key(room))
                .arg(&self.node)
                .arg(ms(lease))
                .invoke_async(&mut conn),
        )
        .await
    }

    /// Writes what another node needs to carry `snap`'s room on, kept `ttl`.
    pub async fn save(&self, snap: &RoomSnapshot, ttl: Duration) -> Result<(), StoreError> {
        let json = serde_json::to_string(snap).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut conn = self.conn.clone();
        timed(
            redis::cmd("SET")
                .arg(state_key(&snap.id))
                .arg(json)
                .arg("PX")
                .arg(ms(ttl))
                .query_async::<()>(&mut conn),
        )
        .await
    }

    /// The room as last saved, if it is still kept.
    pub async fn load(&self, room: &RoomId) -> Result<Option<RoomSnapshot>, StoreError> {
        let mut conn = self.conn.clone();
        let json: Option<String> = timed(redis::cmd("GET").arg(state_key(room)).query_async(&mut conn)).await?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// The room ended: its state goes, and its lease if this node holds it.
    pub async fn forget(&self, room: &RoomId) -> Result<(), StoreError> {
        let script = Script::new(
            r"redis.call('DEL', KEYS[2])
              if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
              return 1",
        );
        let mut conn = self.conn.clone();
        timed(
            script
                .key(owner_key(room))
                .key(state_key(room))
                .arg(&self.node)
                .invoke_async::<i64>(&mut conn),
        )
        .await
        .map(|_| ())
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
