//! Conversations kept on the server (`session.store` = `memory`, `sqlite:PATH`, `redis://…`):
//! exactly once per MessageSid, one step at a time per pair.
//!
//! A conversation is found by a keyed hash of its (To, From) pair ([`ConvKey`]), so no cookie is
//! needed and no phone number appears in any key or value the store holds. Each inbound text
//! is one [`Step`]:
//!
//! 1. The step queues behind any other step of the same pair in this process, then asks the
//!    [`Backend`] to [`begin`](Backend::begin): a MessageSid applied already is answered from
//!    its marker (the same reply bytes within `store.retry_horizon`, an empty `<Response/>`
//!    after it); a pair leased by another replica is waited for; otherwise the step takes the
//!    pair's lease and gets its state.
//! 2. The flow runs on that state, once (with call-outs to come, a step must never run twice
//!    for one text, which is why the pair is leased rather than the step re-run on a
//!    conflict).
//! 3. [`Step::commit`] writes the state, the MessageSid's marker and the reply in one atomic
//!    operation, under the lease; a step that ends without committing releases the lease.
//!
//! Every backend call has `store.timeout`; a store that does not answer costs that webhook a
//! 503 (Twilio retries it, or uses the fallback URL), never a hang or a lost update.

pub mod backend;
pub mod memory;
pub mod redis;
pub mod sqlite;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use backend::{Backend, Begin, Commit, Limits, Seen, StoreError, Stored, Write};
pub use memory::MemoryStore;
pub use redis::RedisStore;
pub use sqlite::SqliteStore;

use crate::metrics::Metrics;
use crate::session::{Pair, SessionData, SessionSecret};

/// Where conversations are kept: `session.store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// In the signed cookie Twilio keeps (the default; no server-side state).
    Cookie,
    Memory,
    Sqlite(std::path::PathBuf),
    /// A `redis://` or `rediss://` URL, as given.
    Redis(String),
}

impl StoreUrl {
    /// Parses `session.store`; the error says what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        Ok(match text {
            "cookie" => Self::Cookie,
            "memory" | "memory://" => Self::Memory,
            _ if text.starts_with("redis://") || text.starts_with("rediss://") => {
                ::redis::Client::open(text).map_err(|e| format!("not a usable Redis URL: {e}"))?;
                Self::Redis(text.to_owned())
            }
            _ => {
                let Some(path) = text
                    .strip_prefix("sqlite://")
                    .or_else(|| text.strip_prefix("sqlite:"))
                else {
                    return Err("expected \"cookie\", \"memory\", \"sqlite:PATH\", \
                                \"redis://HOST:PORT[/DB]\" or \"rediss://…\""
                        .into());
                };
                if path.is_empty() {
                    return Err(
                        "sqlite: needs a file path (sqlite:/var/lib/sms-sessions/state.db)".into(),
                    );
                }
                Self::Sqlite(path.into())
            }
        })
    }

    /// The mode's name, for logs and `check-config` (never the URL: it may hold a password).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Cookie => "cookie",
            Self::Memory => "memory",
            Self::Sqlite(_) => "sqlite",
            Self::Redis(_) => "redis",
        }
    }

    /// Whether the state outlives this process (and must be found again by the next one).
    pub fn is_durable(&self) -> bool {
        matches!(self, Self::Sqlite(_) | Self::Redis(_))
    }
}

/// The `[store]` settings (`session.store` selects the backend).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: StoreUrl,
    /// `store.timeout`: the most one backend call may take.
    pub timeout: Duration,
    /// `store.retry_horizon`.
    pub retry_horizon: Duration,
    /// `store.replay_window`.
    pub replay_window: Duration,
    /// `store.max_state_bytes`: the most state one conversation may keep.
    pub max_state_bytes: usize,
    /// `store.prefix`: the Redis key prefix, so one Redis can serve several deployments.
    pub prefix: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: StoreUrl::Cookie,
            timeout: Duration::from_secs(1),
            retry_horizon: Duration::from_secs(120),
            replay_window: Duration::from_secs(24 * 3600),
            max_state_bytes: 64 * 1024,
            prefix: "sms-sessions".into(),
        }
    }
}

/// A conversation's key: HMAC-SHA256 of the pair under the session secret, cut to 16 bytes.
///
/// Keyed, because phone numbers are a small space: an unkeyed hash of a pair is found again
/// by trying them all. Written out ([`fmt::Display`]) as 22 characters of base64url.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConvKey([u8; 16]);

impl ConvKey {
    pub fn derive(secret: &SessionSecret, pair: Pair<'_>) -> Self {
        Self::derive_with(&keying(secret), pair)
    }

    fn derive_with(keyed: &Hmac<Sha256>, pair: Pair<'_>) -> Self {
        let mut mac = keyed.clone();
        mac.update(b"conv\0");
        mac.update(pair.to.as_bytes());
        mac.update(b"\0");
        mac.update(pair.from.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut key = [0; 16];
        key.copy_from_slice(&digest[..16]);
        Self(key)
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for ConvKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = [0; 22];
        let written = URL_SAFE_NO_PAD
            .encode_slice(self.0, &mut text)
            .expect("16 bytes are 22 characters");
        f.write_str(std::str::from_utf8(&text[..written]).expect("base64 is ASCII"))
    }
}

impl fmt::Debug for ConvKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConvKey({self})")
    }
}

/// The MAC a secret keys, ready to clone per request (keying hashes the secret: done once).
fn keying(secret: &SessionSecret) -> Hmac<Sha256> {
    <Hmac<Sha256>>::new_from_slice(secret.expose()).expect("HMAC takes keys of any length")
}

/// The backend `session.store` names.
pub enum AnyBackend {
    Memory(Box<MemoryStore>),
    Sqlite(SqliteStore),
    Redis(RedisStore),
}

impl fmt::Debug for AnyBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Memory(_) => "AnyBackend::Memory",
            Self::Sqlite(_) => "AnyBackend::Sqlite",
            Self::Redis(_) => "AnyBackend::Redis",
        })
    }
}

macro_rules! dispatch {
    ($self:ident, $backend:ident => $call:expr) => {
        match $self {
            AnyBackend::Memory($backend) => $call.await,
            AnyBackend::Sqlite($backend) => $call.await,
            AnyBackend::Redis($backend) => $call.await,
        }
    };
}

impl Backend for AnyBackend {
    async fn begin(
        &self,
        key: &ConvKey,
        sid: &str,
        token: u64,
        now_ms: u64,
        limits: &Limits,
    ) -> Result<Begin, StoreError> {
        dispatch!(self, b => b.begin(key, sid, token, now_ms, limits))
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
        dispatch!(self, b => b.commit(key, sid, token, write, now_ms, limits))
    }

    async fn release(&self, key: &ConvKey, token: u64) -> Result<(), StoreError> {
        dispatch!(self, b => b.release(key, token))
    }

    async fn peek(&self, key: &ConvKey) -> Result<Option<Stored>, StoreError> {
        dispatch!(self, b => b.peek(key))
    }

    async fn delete(&self, key: &ConvKey) -> Result<(), StoreError> {
        dispatch!(self, b => b.delete(key))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, b => b.ping())
    }

    async fn sweep(&self, now_ms: u64, limits: &Limits) -> Result<u64, StoreError> {
        dispatch!(self, b => b.sweep(now_ms, limits))
    }
}

/// How a step found its conversation (the `sessions_total` outcome and the log's `session`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    New,
    Resumed,
    /// There was one, idle past `session.ttl`: a fresh start.
    Expired,
    /// Found under a previous secret's key, and moved to the current one.
    Rotated,
    /// None was stored; the request's valid session cookie was imported (and is cleared).
    Imported,
}

impl Found {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Resumed => "resumed",
            Self::Expired => "expired",
            Self::Rotated => "rotated",
            Self::Imported => "imported",
        }
    }
}

/// Why a step could not be answered from the store: each is a 503 for that webhook.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Other steps of the pair held it until the deadline.
    #[error("the conversation stayed busy with other texts until the deadline")]
    Busy,
    /// The step outlived its lease and another took the pair; nothing was written.
    #[error("the step outlived its lease on the conversation; nothing was written")]
    LeaseLost,
}

impl Unavailable {
    /// The `reason` label of `store_unavailable_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Store(StoreError::Timeout(_)) => "timeout",
            Self::Store(StoreError::Unavailable(_)) => "unavailable",
            Self::Store(StoreError::Corrupt(_)) => "corrupt",
            Self::Busy => "busy",
            Self::LeaseLost => "lease_lost",
        }
    }
}

/// What [`Store::begin`] found.
pub enum Started {
    /// The MessageSid was applied already: answer with its reply (within the retry horizon)
    /// or with nothing (a replay), and change nothing.
    Seen(Seen),
    /// The pair is this step's until it commits or is dropped.
    Step(Step),
}

/// The server-side store: a [`Backend`] behind keys, a per-pair queue, deadlines and metrics.
pub struct Store {
    backend: AnyBackend,
    /// Keyed by the current secret first, then `session.previous_secrets` (looked up on a
    /// miss).
    secrets: Vec<Hmac<Sha256>>,
    limits: Limits,
    timeout: Duration,
    max_state_bytes: usize,
    queue: Arc<PairQueue>,
    metrics: Option<Arc<Metrics>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("limits", &self.limits)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why the store could not be opened at start.
#[derive(Debug, thiserror::Error)]
#[error("session.store: {0}")]
pub struct OpenError(pub String);

impl Store {
    /// Opens the backend `config.url` names and checks that it answers; `None` for `cookie`.
    ///
    /// `secrets`: the session secret, then the previous ones. `lease`: how long one step may
    /// hold its pair.
    pub async fn open(
        config: &StoreConfig,
        secrets: Vec<SessionSecret>,
        ttl: Duration,
        lease: Duration,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Option<Arc<Self>>, OpenError> {
        let backend = match &config.url {
            StoreUrl::Cookie => return Ok(None),
            StoreUrl::Memory => AnyBackend::Memory(Box::default()),
            StoreUrl::Sqlite(path) => AnyBackend::Sqlite(
                SqliteStore::open(path)
                    .map_err(|e| OpenError(format!("{}: {e}", path.display())))?,
            ),
            StoreUrl::Redis(url) => AnyBackend::Redis(
                RedisStore::connect(url, &config.prefix, config.timeout)
                    .await
                    .map_err(|e| OpenError(e.to_string()))?,
            ),
        };
        let store = Self {
            backend,
            secrets: secrets.iter().map(keying).collect(),
            limits: Limits {
                ttl,
                retry_horizon: config.retry_horizon,
                replay_window: config.replay_window,
                lease,
            },
            timeout: config.timeout,
            max_state_bytes: config.max_state_bytes,
            queue: Arc::default(),
            metrics,
        };
        store
            .ready()
            .await
            .map_err(|e| OpenError(format!("{} did not answer: {e}", config.url.kind())))?;
        Ok(Some(Arc::new(store)))
    }

    /// A store over `backend` (tests, and the conformance suite).
    pub fn with_backend(backend: AnyBackend, secret: SessionSecret, limits: Limits) -> Self {
        Self {
            backend,
            secrets: vec![keying(&secret)],
            limits,
            timeout: Duration::from_secs(1),
            max_state_bytes: StoreConfig::default().max_state_bytes,
            queue: Arc::default(),
            metrics: None,
        }
    }

    pub fn backend(&self) -> &AnyBackend {
        &self.backend
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn max_state_bytes(&self) -> usize {
        self.max_state_bytes
    }

    /// The pair's key under the current secret.
    pub fn key(&self, pair: Pair<'_>) -> ConvKey {
        ConvKey::derive_with(&self.secrets[0], pair)
    }

    /// Whether the store answers within `store.timeout` (`GET /readyz`).
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.call("ping", self.backend.ping()).await
    }

    /// Starts the step for the text `sid` of `pair`: waits for the pair (this process's other
    /// steps of it first, then another replica's lease) until `deadline`.
    pub async fn begin(
        self: &Arc<Self>,
        pair: Pair<'_>,
        sid: &str,
        deadline: Instant,
    ) -> Result<Started, Unavailable> {
        let key = self.key(pair);
        let turn = tokio::time::timeout_at(deadline.into(), self.queue.clone().turn(key))
            .await
            .map_err(|_| Unavailable::Busy)?;
        let token: u64 = rand::random();
        let mut pause = Duration::from_millis(2);
        // The TTL is judged at the time the backend was asked, which took the lease.
        let (stored, now_ms) = loop {
            let now_ms = unix_ms();
            let begin = self.backend.begin(&key, sid, token, now_ms, &self.limits);
            let begun = self.call("begin", begin).await.inspect_err(|_| {
                // It may have taken the lease before the deadline cut it off: give it back,
                // so the pair's next text need not wait for the lease to run out.
                let store = self.clone();
                tokio::spawn(async move {
                    let _ = store
                        .call("release", store.backend.release(&key, token))
                        .await;
                });
            })?;
            match begun {
                Begin::Seen(seen) => return Ok(Started::Seen(seen)),
                Begin::Owned(stored) => break (stored, now_ms),
                Begin::Busy => {
                    if Instant::now() + pause >= deadline {
                        return Err(Unavailable::Busy);
                    }
                    self.count_wait();
                    // Another replica holds the pair: its step is short, or its lease expires.
                    let jitter = Duration::from_micros(rand::random_range(0..1_000));
                    tokio::time::sleep(pause + jitter).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
            }
        };
        let mut step = Step {
            store: self.clone(),
            key,
            sid: sid.to_owned(),
            token,
            data: SessionData::default(),
            found: Found::New,
            moved_from: None,
            committed: false,
            turn: Some(turn),
        };
        match stored {
            Some(stored) if self.is_live(&stored, now_ms) => {
                step.data = self.decode(&stored)?;
                step.found = Found::Resumed;
            }
            Some(_) => step.found = Found::Expired,
            None => {
                // Kept under a previous secret's key? Moved to the current key on commit.
                for secret in &self.secrets[1..] {
                    let old = ConvKey::derive_with(secret, pair);
                    if let Some(stored) = self.call("peek", self.backend.peek(&old)).await?
                        && self.is_live(&stored, now_ms)
                    {
                        step.data = self.decode(&stored)?;
                        step.found = Found::Rotated;
                        step.moved_from = Some(old);
                        break;
                    }
                }
            }
        }
        Ok(Started::Step(step))
    }

    fn is_live(&self, stored: &Stored, now_ms: u64) -> bool {
        now_ms.saturating_sub(stored.touched_ms) < Limits::ms(self.limits.ttl)
    }

    fn decode(&self, stored: &Stored) -> Result<SessionData, StoreError> {
        SessionData::from_bytes(&stored.data)
            .ok_or_else(|| StoreError::Corrupt("state is not UTF-8 form encoding".into()))
    }

    /// Runs one backend call under `store.timeout`, timing it.
    async fn call<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        };
        if let Some(metrics) = &self.metrics {
            metrics.store_call(op, started.elapsed(), result.is_ok());
        }
        result
    }

    fn count_wait(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.store_wait();
        }
    }

    /// Every `every`: removes what expired (Redis expires keys itself, its sweep does
    /// nothing) and the queue entries of waits that gave up; runs while the store lives.
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration) {
        let store = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(store) = store.upgrade() else { return };
                store.queue.prune();
                let now_ms = unix_ms();
                match store.backend.sweep(now_ms, &store.limits).await {
                    Ok(0) => {}
                    Ok(removed) => tracing::debug!(removed, "store: expired entries removed"),
                    Err(error) => tracing::warn!(%error, "store: sweeping expired entries failed"),
                }
            }
        });
    }
}

/// One inbound text's hold on its pair: the state to give the flow, and the commit.
pub struct Step {
    store: Arc<Store>,
    key: ConvKey,
    sid: String,
    token: u64,
    /// The conversation's state: the flow reads and updates it.
    pub data: SessionData,
    pub found: Found,
    moved_from: Option<ConvKey>,
    committed: bool,
    /// Held until the step ends (and, for a step dropped uncommitted, until its lease is
    /// released), so the pair's next text in this process finds the pair free.
    turn: Option<Turn>,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("key", &self.key)
            .field("found", &self.found)
            .finish_non_exhaustive()
    }
}

/// The state does not fit in `store.max_state_bytes`.
#[derive(Debug, thiserror::Error)]
#[error("the conversation's state is {0} bytes; store.max_state_bytes is {1}")]
pub struct TooLarge(pub usize, pub usize);

/// Why a commit failed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
}

impl Step {
    /// Marks the state as imported from the request's session cookie.
    pub fn import(&mut self, data: SessionData) {
        self.data = data;
        self.found = Found::Imported;
    }

    /// Writes [`data`](Self::data), the MessageSid's marker and `reply`, atomically, and ends
    /// the step. Empty state deletes the conversation.
    pub async fn commit(mut self, reply: &[u8]) -> Result<(), CommitError> {
        let data = (!self.data.is_empty()).then(|| self.data.to_bytes());
        if let Some(data) = &data
            && data.len() > self.store.max_state_bytes
        {
            return Err(TooLarge(data.len(), self.store.max_state_bytes).into());
        }
        let write = Write {
            data: data.as_deref(),
            reply,
        };
        let store = &self.store;
        let commit = store.backend.commit(
            &self.key,
            &self.sid,
            self.token,
            write,
            unix_ms(),
            &store.limits,
        );
        // On an error the step is dropped uncommitted and releases its lease: a commit that
        // still lands after that finds the lease gone and writes nothing (LeaseLost), and one
        // that landed before is found by the retry of this text, through its marker.
        let outcome = store.call("commit", commit).await;
        let outcome = outcome.map_err(Unavailable::from)?;
        self.committed = true;
        match outcome {
            Commit::Done => {}
            Commit::LeaseLost => return Err(Unavailable::LeaseLost.into()),
        }
        if let Some(old) = self.moved_from {
            let deleted = store.call("delete", store.backend.delete(&old)).await;
            if let Err(error) = deleted {
                // Harmless: the copy under the current key wins; the old one expires.
                tracing::warn!(%error, "store: the copy under a previous secret's key stays until it expires");
            }
        }
        Ok(())
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // A step dropped before committing (an error, a panic, a client gone) leaves the pair
        // to the next step now rather than at the lease's end.
        let (store, key, token) = (self.store.clone(), self.key, self.token);
        let turn = self.turn.take();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = store
                    .call("release", store.backend.release(&key, token))
                    .await;
                drop(turn);
            });
        }
    }
}

/// This process's queue per pair: its steps of one pair run one after the other, so only one
/// of them at a time asks the backend for the pair's lease.
#[derive(Debug, Default)]
struct PairQueue {
    shards: [Mutex<HashMap<ConvKey, Arc<tokio::sync::Mutex<()>>>>; 16],
}

impl PairQueue {
    fn shard(
        &self,
        key: &ConvKey,
    ) -> std::sync::MutexGuard<'_, HashMap<ConvKey, Arc<tokio::sync::Mutex<()>>>> {
        self.shards[usize::from(key.as_bytes()[1]) % 16]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drops the entries nobody holds or waits for: left by a wait that timed out while it
    /// was the last in line.
    fn prune(&self) {
        for shard in &self.shards {
            let mut shard = shard
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            shard.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let len = |shard: &Mutex<HashMap<_, _>>| shard.lock().map_or(0, |s| s.len());
        self.shards.iter().map(len).sum()
    }

    /// Waits for the pair's turn.
    async fn turn(self: Arc<Self>, key: ConvKey) -> Turn {
        let slot = self.shard(&key).entry(key).or_default().clone();
        let guard = slot.lock_owned().await;
        Turn {
            queue: self,
            key,
            guard: Some(guard),
        }
    }
}

/// A pair's turn in this process; the pair's entry goes with its last waiter.
struct Turn {
    queue: Arc<PairQueue>,
    key: ConvKey,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut shard = self.queue.shard(&self.key);
        let guard = self.guard.take();
        // Held by the map and this guard only: nobody waits, the entry can go. Waiters clone
        // the entry under this same shard lock, so none can appear in between.
        if let Some(slot) = shard.get(&self.key)
            && Arc::strong_count(slot) == 2
        {
            shard.remove(&self.key);
        }
        drop(guard);
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SessionSecret {
        SessionSecret::new("a-test-session-secret-0123456789abcdef").expect("32+ bytes")
    }

    fn limits() -> Limits {
        Limits {
            ttl: Duration::from_secs(4 * 3600),
            retry_horizon: Duration::from_secs(120),
            replay_window: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(3),
        }
    }

    fn memory_store() -> Arc<Store> {
        let memory = AnyBackend::Memory(Box::default());
        Arc::new(Store::with_backend(memory, secret(), limits()))
    }

    const PAIR: Pair<'static> = Pair {
        to: "+14155550100",
        from: "+14155550199",
    };

    #[test]
    fn a_key_is_22_characters_and_depends_on_both_numbers_and_the_secret() {
        let key = ConvKey::derive(&secret(), PAIR).to_string();
        assert_eq!(key.len(), 22);
        assert!(!key.contains("415555"));
        let swapped = Pair {
            to: PAIR.from,
            from: PAIR.to,
        };
        assert_ne!(ConvKey::derive(&secret(), swapped).to_string(), key);
        let other = SessionSecret::new("another-session-secret-0123456789abcdef").expect("long");
        assert_ne!(ConvKey::derive(&other, PAIR).to_string(), key);
    }

    #[tokio::test]
    async fn the_queue_forgets_a_pair_once_its_last_step_is_done() {
        let store = memory_store();
        let deadline = Instant::now() + Duration::from_secs(1);
        let Ok(Started::Step(step)) = store.begin(PAIR, "SM1", deadline).await else {
            panic!("a fresh pair starts a step");
        };
        assert_eq!(store.queue.len(), 1);
        // A second text of the pair waits for the first, and gives up at its deadline.
        let soon = Instant::now() + Duration::from_millis(50);
        let waited = store.begin(PAIR, "SM2", soon).await;
        assert!(matches!(waited, Err(Unavailable::Busy)));
        step.commit(b"<Response/>").await.expect("commits");
        store.queue.prune();
        assert_eq!(store.queue.len(), 0, "nothing left behind");
        let Ok(Started::Seen(seen)) = store.begin(PAIR, "SM1", deadline).await else {
            panic!("SM1 was applied");
        };
        assert_eq!(seen.reply.as_deref(), Some(&b"<Response/>"[..]));
        assert_eq!(store.queue.len(), 0);
    }

    #[tokio::test]
    async fn a_dropped_step_releases_its_lease_for_the_next_text() {
        let store = memory_store();
        let deadline = Instant::now() + Duration::from_secs(1);
        let Ok(Started::Step(step)) = store.begin(PAIR, "SM1", deadline).await else {
            panic!("starts");
        };
        drop(step); // an error before the commit
        let Ok(Started::Step(next)) = store.begin(PAIR, "SM1", deadline).await else {
            panic!("the same text can be tried again at once, not after the lease");
        };
        assert_eq!(next.found, Found::New);
    }
}
