//! `session.store = "redis://…"` (or `rediss://…`, TLS): conversations in Redis, shared by
//! every replica.
//!
//! Each [`Backend`] operation is one round trip: `begin`, `commit` and `release` are Lua
//! scripts run by EVALSHA ([`scripts`]), atomic against every other client; `peek`, `delete`
//! and `ping` are single commands. One [`ConnectionManager`] (a multiplexed connection that
//! reconnects by itself after Redis restarts) is shared by every request, and every call is
//! bounded by `store.timeout`: a Redis that is down or slow costs a webhook a 503, never a hang.
//! Keys ([`keys`]) carry a keyed hash of the pair, never a phone number, and expire by
//! themselves, so there is nothing to sweep.
//!
//! # Running Redis for this
//! - **Durability.** A commit is acknowledged once the primary has it in memory. Replication
//!   is asynchronous: a failover can lose the last commits (a conversation steps back, a
//!   MessageSid may be applied again). Without persistence a Redis restart forgets every
//!   conversation; use AOF (`appendonly yes`, `appendfsync everysec`, at most about a second
//!   lost) if conversations must survive one.
//! - **Memory.** Use `maxmemory-policy noeviction` (writes then fail loudly, as 503s) or
//!   `volatile-ttl`; never `allkeys-lru`/`allkeys-random`, which silently drop live
//!   conversations and the markers that answer Twilio's retries.
//! - **Least privilege.** What this server sends, on keys under its prefix:
//!   `ACL SETUSER sms on >PASSWORD ~PREFIX:* resetchannels -@all +evalsha +script|load +get
//!   +set +del +hset +hmget +pexpire +ping`. EVALSHA runs the scripts, SCRIPT LOAD loads one
//!   Redis lacks (after a restart or a failover), GET SET DEL HSET HMGET PEXPIRE are what the
//!   scripts call (ACLs apply inside scripts too), HMGET DEL PING are also sent directly. Add
//!   `+select` for a database other than 0. redis-rs also sends CLIENT SETINFO on connect
//!   (Redis 7.2 and later know it) and ignores a refusal. `tests/store_redis.rs` checks this
//!   list against a real Redis.
//! - **Cluster.** All keys of a conversation share one hash tag, so the scripts work on Redis
//!   Cluster; this backend connects to one node (or a proxy) only, for now.

mod keys;
mod scripts;

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, RedisResult, Value};

use self::keys::Keys;
use self::scripts::Scripts;
use super::ConvKey;
use super::backend::{Backend, Begin, Commit, Limits, StoreError, Stored, Write};

/// Conversations in one Redis, under one key prefix.
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    /// `store.timeout`: the most one call may take, waiting for a reconnection included.
    timeout: Duration,
    scripts: Scripts,
}

impl RedisStore {
    /// Connects to `url` and checks that Redis answers, all within `timeout`.
    ///
    /// Errors never hold the URL (it may carry a password): redis-rs' messages name the
    /// failure, not the address's credentials.
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        keys::check_prefix(prefix).map_err(StoreError::Unavailable)?;
        let connect = connection(url, timeout).map_err(StoreError::Unavailable)?;
        Ok(Self {
            connection: within(timeout, connect).await?,
            prefix: prefix.to_owned(),
            timeout,
            scripts: Scripts::new(),
        })
    }

    fn keys(&self, key: &ConvKey) -> Keys {
        Keys::new(&self.prefix, key)
    }

    /// Runs one call under `store.timeout`.
    async fn call<T>(&self, call: impl Future<Output = RedisResult<T>>) -> Result<T, StoreError> {
        within(self.timeout, call).await
    }
}

/// The connection to `url` (the conversation store's and the relay's): a [`ConnectionManager`]
/// whose connection attempts and replies are bounded by `timeout`, once Redis has answered
/// PING. The URL is checked at once (the error never holds it: it may carry a password); the
/// future connects, unbounded: the caller bounds it.
pub(crate) fn connection(
    url: &str,
    timeout: Duration,
) -> Result<impl Future<Output = RedisResult<ConnectionManager>> + use<>, String> {
    let client = redis::Client::open(url).map_err(|e| format!("not a usable Redis URL: {e}"))?;
    if url.starts_with("rediss://") {
        choose_tls_provider();
    }
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        // Reconnect attempts come quickly and give up soon: a call never waits for them
        // longer than `timeout` anyway, and the next call starts a new round.
        .set_min_delay(Duration::from_millis(25))
        .set_max_delay(Duration::from_millis(250))
        .set_number_of_retries(2);
    Ok(async move {
        let mut connection = ConnectionManager::new_with_config(client, config).await?;
        let () = redis::cmd("PING").query_async(&mut connection).await?;
        Ok(connection)
    })
}

/// Installs ring as rustls' crypto provider for this process, unless one is installed already:
/// redis-rs builds its TLS configuration from the process default, which rustls cannot pick by
/// itself when no provider, or more than one, is compiled in (the first `rediss://` connection
/// would panic).
fn choose_tls_provider() {
    // An error means a provider is installed already: that one stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `call`, bounded by `timeout`, its error as a [`StoreError`].
async fn within<T>(
    timeout: Duration,
    call: impl Future<Output = RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(failure(&error, timeout)),
        Err(_) => Err(StoreError::Timeout(timeout)),
    }
}

/// A connection, I/O or server error: Redis could not do it (the webhook answers 503).
fn failure(error: &RedisError, timeout: Duration) -> StoreError {
    if error.is_timeout() {
        return StoreError::Timeout(timeout);
    }
    StoreError::Unavailable(format!("redis: {error}"))
}

impl Backend for RedisStore {
    async fn begin(
        &self,
        key: &ConvKey,
        sid: &str,
        token: u64,
        now_ms: u64,
        limits: &Limits,
    ) -> Result<Begin, StoreError> {
        let keys = self.keys(key);
        let until_ms = now_ms.saturating_add(Limits::ms(limits.lease));
        let mut invocation = self.scripts.begin.prepare_invoke();
        invocation
            .key(keys.conversation())
            .key(keys.marker(sid))
            .key(keys.reply(sid))
            .key(keys.lease())
            .arg(scripts::time(scripts::earliest(
                now_ms,
                limits.replay_window,
            )))
            .arg(scripts::time(scripts::earliest(
                now_ms,
                limits.retry_horizon,
            )))
            .arg(scripts::time(now_ms))
            .arg(scripts::lease(token, until_ms))
            .arg(scripts::expiry(limits.lease));
        let mut connection = self.connection.clone();
        let reply: Value = self.call(invocation.invoke_async(&mut connection)).await?;
        scripts::begin_reply(&reply)
    }

    async fn commit(
        &self,
        key: &ConvKey,
        sid: &str,
        token: u64,
        write: Write<'_>,
        now_ms: u64,
        limits: &Limits,
    ) -> Result<Commit, StoreError> {
        let keys = self.keys(key);
        let (keep, data) = match write.data {
            Some(data) => ("1", data),
            None => ("0", &[][..]),
        };
        let mut invocation = self.scripts.commit.prepare_invoke();
        invocation
            .key(keys.conversation())
            .key(keys.marker(sid))
            .key(keys.reply(sid))
            .key(keys.lease())
            .arg(scripts::holder(token))
            .arg(scripts::time(now_ms))
            .arg(keep)
            .arg(data)
            .arg(scripts::expiry(limits.ttl))
            .arg(scripts::expiry(limits.replay_window))
            .arg(write.reply)
            .arg(scripts::expiry(limits.retry_horizon));
        let mut connection = self.connection.clone();
        let reply: Value = self.call(invocation.invoke_async(&mut connection)).await?;
        scripts::commit_reply(&reply)
    }

    async fn release(&self, key: &ConvKey, token: u64) -> Result<(), StoreError> {
        let mut invocation = self.scripts.release.prepare_invoke();
        invocation
            .key(self.keys(key).lease())
            .arg(scripts::holder(token));
        let mut connection = self.connection.clone();
        let reply: Value = self.call(invocation.invoke_async(&mut connection)).await?;
        if scripts::is(&reply, "done") {
            Ok(())
        } else {
            Err(StoreError::Corrupt(
                "the release script answered otherwise".into(),
            ))
        }
    }

    async fn peek(&self, key: &ConvKey) -> Result<Option<Stored>, StoreError> {
        let mut command = redis::cmd("HMGET");
        command.arg(self.keys(key).conversation()).arg("t").arg("d");
        let mut connection = self.connection.clone();
        let reply: Value = self.call(command.query_async(&mut connection)).await?;
        match &reply {
            Value::Array(fields) if fields.len() == 2 => scripts::stored(&fields[0], &fields[1]),
            _ => Err(StoreError::Corrupt("HMGET answered otherwise".into())),
        }
    }

    async fn delete(&self, key: &ConvKey) -> Result<(), StoreError> {
        let mut command = redis::cmd("DEL");
        command.arg(self.keys(key).conversation());
        let mut connection = self.connection.clone();
        let _removed: Value = self.call(command.query_async(&mut connection)).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let reply: Value = self
            .call(redis::cmd("PING").query_async(&mut connection))
            .await?;
        if scripts::is(&reply, "PONG") {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "redis: PING did not answer PONG".into(),
            ))
        }
    }
}
