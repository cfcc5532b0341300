//! `session.store = "redis://…"`: relay sessions in Redis, shared by every replica.
//!
//! # Keys (all under `store.prefix`; no phone number in any name)
//! - `{prefix}:relay:s:<id>`: the session's JSON;
//! - `{prefix}:relay:b:<RelayKeys::binding>`: the id of the session the (proxy, address) pair
//!   was last claimed by;
//! - `{prefix}:relay:a:<RelayKeys::address>`: a set of the ids of the address's sessions;
//! - `{prefix}:relay:ids`: every id, in a sorted set of equal scores (so in id order), for
//!   `list`;
//! - `{prefix}:relay:live`: the ids of open sessions scored by their end
//!   ([`RelaySession::ends_at_ms`]), so `pool` (which the gauges call every few seconds)
//!   reads the live sessions only, not a week of them.
//!
//! Each key expires ([`GRACE_MS`] after its session's end, `PEXPIRE`); ids left in the sets
//! by sessions that expired are dropped when `list` or `pool` come across them.
//!
//! # Atomicity
//! `create` reads the bindings it may claim (and their sessions), allocates in Rust, then
//! claims with one Lua script that checks that every binding it claims still names what was
//! read and is still free, and writes the session, its bindings and indexes — or writes
//! nothing and answers `changed`, and `create` starts again from the reads. So of two creates
//! wanting the last free binding, on any replicas, exactly one claims it: the other reads
//! again and finds the pool exhausted. `close`, `touch` and `set_opted_out` read the record,
//! change it in Rust, and write it with a script only if it is still what they read
//! (compare-and-set), again starting over otherwise. Scripts read session JSON with Redis'
//! `cjson` and never write any (numbers stay as serde wrote them). Times are the callers'.
//!
//! A script touches keys of several sessions, which Redis Cluster does not allow: like the
//! conversation store, this backend talks to one Redis (or a proxy in front of several).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{RedisResult, Script};

use super::{
    Filter, GRACE_MS, PoolEntry, RelayBackend, RelayError, RelayKeys, allocate, candidates,
    close_session, count_pool, empty_pool, from_json, keep_page, new_id, open_session, opt_out,
    record_end, to_json, touch_session,
};
use crate::relay::model::{NewSession, RelaySession};

/// The most one Redis call may take, waiting for a reconnection included.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// How many times an operation starts over after another changed what it read.
const ATTEMPTS: usize = 64;

/// How many ids `list` and `pool` read at a time.
const CHUNK: usize = 200;

/// The shortest a record is kept (ms): one that ended long ago (an `expires_at_ms` in the
/// past) still is, briefly.
const MIN_PX: u64 = 1_000;

/// The longest (ms): ten years, where a session's absurd TTL would overflow Redis' clock.
const MAX_PX: u64 = 3650 * 24 * 3600 * 1000;

/// KEYS: the new session, the ids set, the live set, then for each participant its binding,
/// the session the binding named when read (the binding itself if none), its address set.
/// ARGV: now, the new id, its JSON, its px, its end, then for each participant the id its
/// binding named when read ('' for none).
const CREATE: &str = r"
local now = tonumber(ARGV[1])
local function live(key)
  local body = redis.call('GET', key)
  if not body then return false end
  local s = cjson.decode(body)
  if s.state ~= 'open' then return false end
  local ends = s.last_activity_ms + s.ttl_secs * 1000
  if type(s.expires_at_ms) == 'number' and s.expires_at_ms < ends then ends = s.expires_at_ms end
  return now < ends
end
local n = (#KEYS - 3) / 3
for i = 1, n do
  local bound = redis.call('GET', KEYS[3 * i + 1]) or ''
  if bound ~= ARGV[5 + i] then return 'changed' end
  if bound ~= '' and live(KEYS[3 * i + 2]) then return 'changed' end
end
local px = tonumber(ARGV[4])
local function extend(key)
  if redis.call('PTTL', key) < px then redis.call('PEXPIRE', key, ARGV[4]) end
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
for i = 1, n do
  redis.call('SET', KEYS[3 * i + 1], ARGV[2], 'PX', ARGV[4])
  redis.call('SADD', KEYS[3 * i + 3], ARGV[2])
  extend(KEYS[3 * i + 3])
end
redis.call('ZADD', KEYS[2], 0, ARGV[2])
extend(KEYS[2])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2])
extend(KEYS[3])
return 'ok'
";

/// KEYS: the session, the live set, then its bindings, then its address sets.
/// ARGV: the record as read, the record to write, its px ('' keeps the TTL), the id, how
/// many bindings, its score in the live set ('' unchanged, '-' out of it).
/// Writes only if the record is still as read; extends (never shortens) the bindings that
/// still name the session, the address sets and the live set to the new px.
const UPDATE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'changed' end
if ARGV[6] == '-' then
  redis.call('ZREM', KEYS[2], ARGV[4])
elseif ARGV[6] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[4])
end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 'ok'
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
local px = tonumber(ARGV[3])
local bindings = tonumber(ARGV[5])
for i = 2, #KEYS do
  local ours = true
  if i == 2 then
    ours = ARGV[6] ~= '-'
  elseif i <= bindings + 2 then
    ours = redis.call('GET', KEYS[i]) == ARGV[4]
  else
    redis.call('SADD', KEYS[i], ARGV[4])
  end
  if ours and redis.call('PTTL', KEYS[i]) < px then redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
end
return 'ok'
";

/// Relay sessions in one Redis, under one key prefix; see the [module docs](self).
pub struct RedisRelay {
    connection: ConnectionManager,
    keys: RelayKeys,
    names: Names,
    timeout: Duration,
    create: Script,
    update: Script,
}

/// The names of the relay's keys under one prefix.
#[derive(Debug, Clone)]
struct Names {
    prefix: String,
}

impl Names {
    fn session(&self, id: &str) -> String {
        format!("{}:relay:s:{id}", self.prefix)
    }

    fn binding(&self, key: &str) -> String {
        format!("{}:relay:b:{key}", self.prefix)
    }

    fn address(&self, key: &str) -> String {
        format!("{}:relay:a:{key}", self.prefix)
    }

    fn ids(&self) -> String {
        format!("{}:relay:ids", self.prefix)
    }

    fn live(&self) -> String {
        format!("{}:relay:live", self.prefix)
    }
}

/// How `update` changes a session's keys.
struct Change {
    /// The record's new px; `None` keeps its TTL (and the others' too).
    px: Option<u64>,
    /// Its new score (end) in the live set, `-` to take it out, empty to leave it.
    live: String,
}

/// How long a record ending at `end_ms` is kept from `now_ms` (ms, for `PX`).
fn px(end_ms: u64, now_ms: u64) -> u64 {
    end_ms
        .saturating_add(GRACE_MS)
        .saturating_sub(now_ms)
        .clamp(MIN_PX, MAX_PX)
}

fn parse(body: &str) -> Result<RelaySession, RelayError> {
    from_json(body, "a relay:s key")
}

/// What a script answered: `ok`, or `changed` (start over).
fn done(reply: &str) -> Result<bool, RelayError> {
    match reply {
        "ok" => Ok(true),
        "changed" => Ok(false),
        _ => Err(RelayError::Unavailable(
            "a relay script answered otherwise".into(),
        )),
    }
}

fn contended() -> RelayError {
    RelayError::Unavailable("relay records kept changing under this call".into())
}

impl RedisRelay {
    /// Connects to `url` and checks that Redis answers, within `timeout`; errors never hold
    /// the URL (it may carry a password).
    pub async fn connect(
        url: &str,
        keys: RelayKeys,
        prefix: &str,
        timeout: Duration,
    ) -> Result<Self, String> {
        let connect = crate::store::redis::connection(url, timeout)?;
        let connection = within(timeout, connect).await.map_err(|e| e.to_string())?;
        Ok(Self {
            connection,
            keys,
            names: Names {
                prefix: prefix.to_owned(),
            },
            timeout,
            create: Script::new(CREATE),
            update: Script::new(UPDATE),
        })
    }

    async fn call<T>(&self, call: impl Future<Output = RedisResult<T>>) -> Result<T, RelayError> {
        within(self.timeout, call).await
    }

    async fn get_key(&self, key: String) -> Result<Option<String>, RelayError> {
        let mut connection = self.connection.clone();
        self.call(redis::cmd("GET").arg(key).query_async(&mut connection))
            .await
    }

    /// The values of `keys` (none asked: none answered).
    async fn mget(&self, keys: &[String]) -> Result<Vec<Option<String>>, RelayError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut connection = self.connection.clone();
        self.call(redis::cmd("MGET").arg(keys).query_async(&mut connection))
            .await
    }

    /// Best effort: ids whose session expired leave the set they are in.
    async fn forget(&self, command: &str, set: &str, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        let mut connection = self.connection.clone();
        let mut cmd = redis::cmd(command);
        cmd.arg(set).arg(ids);
        let _: Result<i64, _> = self.call(cmd.query_async(&mut connection)).await;
    }

    /// The sessions of `ids` still kept, in order; the ids of those gone.
    async fn sessions(
        &self,
        ids: &[String],
    ) -> Result<(Vec<RelaySession>, Vec<String>), RelayError> {
        let keys: Vec<String> = ids.iter().map(|id| self.names.session(id)).collect();
        let bodies = self.mget(&keys).await?;
        let (mut kept, mut gone) = (Vec::new(), Vec::new());
        for (id, body) in ids.iter().zip(bodies) {
            match body {
                Some(body) => kept.push(parse(&body)?),
                None => gone.push(id.clone()),
            }
        }
        Ok((kept, gone))
    }

    /// Calls `visit` on every kept session with an id after `after`, in id order, until it
    /// says stop: from the address set of `address`, or else from the ids set.
    async fn scan(
        &self,
        address: Option<&str>,
        after: Option<&str>,
        mut visit: impl FnMut(RelaySession) -> bool,
    ) -> Result<(), RelayError> {
        if let Some(address) = address {
            let set = self.names.address(&self.keys.address(address));
            let mut connection = self.connection.clone();
            let members: Vec<String> = self
                .call(
                    redis::cmd("SMEMBERS")
                        .arg(&set)
                        .query_async(&mut connection),
                )
                .await?;
            let mut ids: Vec<String> = members
                .into_iter()
                .filter(|id| after.is_none_or(|after| id.as_str() > after))
                .collect();
            ids.sort_unstable();
            for chunk in ids.chunks(CHUNK) {
                let (kept, gone) = self.sessions(chunk).await?;
                self.forget("SREM", &set, &gone).await;
                if !kept.into_iter().all(&mut visit) {
                    return Ok(());
                }
            }
            return Ok(());
        }
        let set = self.names.ids();
        let mut from = after.map_or_else(|| "-".to_owned(), |after| format!("({after}"));
        loop {
            let mut connection = self.connection.clone();
            let mut cmd = redis::cmd("ZRANGEBYLEX");
            cmd.arg(&set)
                .arg(&from)
                .arg("+")
                .arg("LIMIT")
                .arg(0)
                .arg(CHUNK);
            let ids: Vec<String> = self.call(cmd.query_async(&mut connection)).await?;
            let (kept, gone) = self.sessions(&ids).await?;
            self.forget("ZREM", &set, &gone).await;
            if !kept.into_iter().all(&mut visit) || ids.len() < CHUNK {
                return Ok(());
            }
            from = ids.last().map_or(from, |last| format!("({last}"));
        }
    }

    /// One attempt at `create`: `None` if a binding changed between the reads and the claim.
    async fn try_create(
        &self,
        new: &NewSession,
        pool: &[String],
        now_ms: u64,
    ) -> Result<Option<RelaySession>, RelayError> {
        // Every binding the allocation may look at, what it names and whether that is live.
        let mut pairs: Vec<(&str, &str)> = candidates(new, pool).collect();
        pairs.sort_unstable();
        pairs.dedup();
        let bindings: Vec<String> = pairs
            .iter()
            .map(|(proxy, address)| self.keys.binding(proxy, address))
            .collect();
        let bound = self
            .mget(
                &bindings
                    .iter()
                    .map(|b| self.names.binding(b))
                    .collect::<Vec<_>>(),
            )
            .await?;
        let mut ids: Vec<String> = bound.iter().flatten().cloned().collect();
        ids.sort_unstable();
        ids.dedup();
        let (kept, _) = self.sessions(&ids).await?;
        let live: HashSet<&str> = kept
            .iter()
            .filter(|s| s.is_live(now_ms))
            .map(|s| s.id.as_str())
            .collect();
        let seen: HashMap<(&str, &str), Option<&String>> = pairs
            .iter()
            .copied()
            .zip(bound.iter().map(Option::as_ref))
            .collect();
        let proxies = allocate(new, pool, |proxy, address| {
            match seen.get(&(proxy, address)) {
                Some(id) => Ok(!id.is_some_and(|id| live.contains(&id.as_str()))),
                None => Err(RelayError::Unavailable("a binding was not read".into())),
            }
        })?;
        let session = open_session(new.clone(), proxies, new_id(), now_ms);
        let mut invocation = self.create.prepare_invoke();
        invocation
            .key(self.names.session(&session.id))
            .key(self.names.ids())
            .key(self.names.live())
            .arg(now_ms)
            .arg(&session.id)
            .arg(to_json(&session)?)
            .arg(px(record_end(&session, None), now_ms))
            .arg(session.ends_at_ms());
        for p in &session.participants {
            let binding = self.names.binding(&self.keys.binding(&p.proxy, &p.address));
            let was = seen
                .get(&(p.proxy.as_str(), p.address.as_str()))
                .copied()
                .flatten();
            let was_key = was.map_or_else(|| binding.clone(), |id| self.names.session(id));
            invocation
                .key(binding)
                .key(was_key)
                .key(self.names.address(&self.keys.address(&p.address)));
        }
        for p in &session.participants {
            let was = seen
                .get(&(p.proxy.as_str(), p.address.as_str()))
                .copied()
                .flatten();
            invocation.arg(was.map_or("", String::as_str));
        }
        let mut connection = self.connection.clone();
        let reply: String = self.call(invocation.invoke_async(&mut connection)).await?;
        Ok(done(&reply)?.then_some(session))
    }

    /// Reads the session `id`, lets `change` change it (`None`: nothing changed; else how its
    /// keys change), and writes it back if nobody wrote it in between; starts over if
    /// somebody did.
    async fn update(
        &self,
        id: &str,
        change: impl Fn(&mut RelaySession) -> Option<Change>,
    ) -> Result<Option<RelaySession>, RelayError> {
        for _ in 0..ATTEMPTS {
            let Some(body) = self.get_key(self.names.session(id)).await? else {
                return Ok(None);
            };
            let mut session = parse(&body)?;
            let Some(Change { px, live }) = change(&mut session) else {
                return Ok(Some(session));
            };
            let mut invocation = self.update.prepare_invoke();
            invocation
                .key(self.names.session(id))
                .key(self.names.live());
            for p in &session.participants {
                let binding = self.keys.binding(&p.proxy, &p.address);
                invocation.key(self.names.binding(&binding));
            }
            for p in &session.participants {
                invocation.key(self.names.address(&self.keys.address(&p.address)));
            }
            invocation
                .arg(&body)
                .arg(to_json(&session)?)
                .arg(px.map_or_else(String::new, |px| px.to_string()))
                .arg(id)
                .arg(session.participants.len())
                .arg(live);
            let mut connection = self.connection.clone();
            let reply: String = self.call(invocation.invoke_async(&mut connection)).await?;
            if done(&reply)? {
                return Ok(Some(session));
            }
        }
        Err(contended())
    }
}

/// `call`, bounded by `timeout`, its error a [`RelayError`] (redis-rs' messages name the
/// failure, never the URL's credentials).
async fn within<T>(
    timeout: Duration,
    call: impl Future<Output = RedisResult<T>>,
) -> Result<T, RelayError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(RelayError::Unavailable(format!("redis: {error}"))),
        Err(_) => Err(RelayError::Unavailable(format!(
            "redis did not answer within {timeout:?}"
        ))),
    }
}

impl RelayBackend for RedisRelay {
    async fn create(
        &self,
        new: NewSession,
        pool: &[String],
        now_ms: u64,
    ) -> Result<RelaySession, RelayError> {
        for _ in 0..ATTEMPTS {
            if let Some(session) = self.try_create(&new, pool, now_ms).await? {
                return Ok(session);
            }
        }
        Err(contended())
    }

    async fn lookup(&self, proxy: &str, address: &str) -> Result<Option<RelaySession>, RelayError> {
        let binding = self.names.binding(&self.keys.binding(proxy, address));
        let Some(id) = self.get_key(binding).await? else {
            return Ok(None);
        };
        self.get(&id).await
    }

    async fn get(&self, id: &str) -> Result<Option<RelaySession>, RelayError> {
        let body = self.get_key(self.names.session(id)).await?;
        body.map(|body| parse(&body)).transpose()
    }

    async fn list(
        &self,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<RelaySession>, RelayError> {
        let mut page = Vec::new();
        if limit == 0 {
            return Ok(page);
        }
        let visit = keep_page(filter, limit, now_ms, &mut page);
        self.scan(filter.address.as_deref(), after, visit).await?;
        Ok(page)
    }

    async fn close(
        &self,
        id: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<Option<RelaySession>, RelayError> {
        // The bindings stay: they name a closed session now, which frees them for a new one
        // and still tells its participants that it ended.
        self.update(id, |session| {
            let end = close_session(session, reason, now_ms)?;
            Some(Change {
                px: Some(px(end, now_ms)),
                live: "-".into(),
            })
        })
        .await
    }

    async fn touch(&self, id: &str, now_ms: u64) -> Result<(), RelayError> {
        self.update(id, |session| {
            touch_session(session, now_ms).then(|| Change {
                px: Some(px(record_end(session, None), now_ms)),
                live: session.ends_at_ms().to_string(),
            })
        })
        .await
        .map(drop)
    }

    async fn set_opted_out(
        &self,
        id: &str,
        address: &str,
        opted_out: bool,
    ) -> Result<(), RelayError> {
        self.update(id, |session| {
            opt_out(session, address, opted_out).then(|| Change {
                px: None,
                live: String::new(),
            })
        })
        .await
        .map(drop)
    }

    /// Reads the sessions of the live set that end after `now_ms`; drops from the set those
    /// whose record is gone, and those that ended a grace ago.
    async fn pool(&self, pool: &[String], now_ms: u64) -> Result<Vec<PoolEntry>, RelayError> {
        let set = self.names.live();
        let mut connection = self.connection.clone();
        if let Some(ended) = now_ms.checked_sub(GRACE_MS) {
            let mut cmd = redis::cmd("ZREMRANGEBYSCORE");
            cmd.arg(&set).arg("-inf").arg(ended);
            let _: Result<i64, _> = self.call(cmd.query_async(&mut connection)).await;
        }
        let mut cmd = redis::cmd("ZRANGEBYSCORE");
        cmd.arg(&set).arg(format!("({now_ms}")).arg("+inf");
        let ids: Vec<String> = self.call(cmd.query_async(&mut connection)).await?;
        let mut counts = empty_pool(pool);
        for chunk in ids.chunks(CHUNK) {
            let (kept, gone) = self.sessions(chunk).await?;
            self.forget("ZREM", &set, &gone).await;
            count_pool(&mut counts, &kept, now_ms);
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            prefix: "sms".into(),
        }
    }

    #[test]
    fn keys_are_the_specs_and_hold_no_number() {
        let keys = RelayKeys::new(b"a-test-relay-secret-0123456789abcdef");
        let names = names();
        let binding = names.binding(&keys.binding("+14155550100", "+14155550199"));
        assert!(binding.starts_with("sms:relay:b:"), "{binding}");
        assert_eq!(binding.len(), "sms:relay:b:".len() + 22);
        assert!(!binding.contains("4155550"));
        let address = names.address(&keys.address("+14155550199"));
        assert!(address.starts_with("sms:relay:a:") && !address.contains("4155550"));
        assert_eq!(names.session("RSab"), "sms:relay:s:RSab");
        assert_eq!(names.ids(), "sms:relay:ids");
    }

    #[test]
    fn a_record_is_kept_a_grace_after_its_end_and_never_for_nothing() {
        assert_eq!(px(10_000, 4_000), GRACE_MS + 6_000);
        assert_eq!(px(0, GRACE_MS + 50_000), MIN_PX);
        assert_eq!(px(u64::MAX, 0), MAX_PX);
    }

    #[test]
    fn script_replies_are_ok_changed_or_an_error() {
        assert_eq!(done("ok"), Ok(true));
        assert_eq!(done("changed"), Ok(false));
        assert!(done("nil").is_err());
    }
}
