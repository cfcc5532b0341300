//! `session.store = "memory"`: conversations in this process's memory, gone on restart.
//!
//! For tests, demos and a single replica that can afford to forget. Sixteen shards, each one
//! mutex over its conversations, leases and markers, so every operation is atomic under one
//! short lock and never held across an await.
//!
//! # What it costs to remember
//! Exactly-once means remembering every MessageSid for `store.replay_window` (24 h): here
//! about 60 bytes each (a 128-bit id, the time it was applied, its place in the order), and
//! the reply's bytes for `store.retry_horizon` (2 min). Both are trimmed oldest first at every
//! commit, and at most [`MAX_MARKERS`] MessageSids are kept: past that the oldest is forgotten
//! first (a replay of it would be applied again; a retry, which comes within seconds, is
//! always among the newest). So the store's memory levels off at a few tens of MiB however
//! long the process runs; conversations idle past `session.ttl` go at the sweep the
//! [`Store`](super::Store) runs once a minute.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Mutex, MutexGuard};

use super::ConvKey;
use super::backend::{Backend, Begin, Commit, Limits, Seen, StoreError, Stored, Write};

const SHARDS: usize = 16;

/// The most MessageSids remembered (for their replay window), across the shards.
pub const MAX_MARKERS: usize = 100_000;
const MAX_MARKERS_PER_SHARD: usize = MAX_MARKERS / SHARDS;

#[derive(Debug, Default)]
pub struct MemoryStore {
    shards: [Mutex<Shard>; SHARDS],
}

/// The maps of one shard. Keys are keyed hashes already (a [`ConvKey`] is an HMAC), so they
/// are hashed by folding their bytes ([`Fold`]), not by SipHash again.
#[derive(Debug, Default)]
struct Shard {
    conversations: HashMap<ConvKey, Stored, Folded>,
    leases: HashMap<ConvKey, Lease, Folded>,
    /// When each MessageSid was applied.
    markers: HashMap<MarkerId, u64, Folded>,
    /// The reply of each MessageSid still within the retry horizon, with its marker's time.
    replies: HashMap<MarkerId, (u64, Vec<u8>), Folded>,
    /// Every marker in the order it was written, oldest first; the first `replied` of them
    /// have had their reply dropped already (past the retry horizon).
    order: VecDeque<(u64, MarkerId)>,
    replied: usize,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    token: u64,
    until_ms: u64,
}

/// A MessageSid of one conversation: the conversation key's first 64 bits and a 64-bit hash
/// of the MessageSid. MessageSids are Twilio's, signed, so nobody picks one to collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct MarkerId(u128);

impl MarkerId {
    fn new(key: &ConvKey, sid: &str) -> Self {
        let mut prefix = [0; 8];
        prefix.copy_from_slice(&key.as_bytes()[..8]);
        // SipHash with fixed keys: the same id for the same MessageSid in every process run.
        let mut hasher = std::hash::DefaultHasher::new();
        sid.hash(&mut hasher);
        Self(u128::from(u64::from_le_bytes(prefix)) << 64 | u128::from(hasher.finish()))
    }
}

type Folded = BuildHasherDefault<Fold>;

/// Folds the bytes of an already uniformly random key into 64 bits (FxHash's step).
#[derive(Debug, Default)]
struct Fold(u64);

impl Hasher for Fold {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u128(&mut self, value: u128) {
        self.write(&value.to_le_bytes());
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn shard(&self, key: &ConvKey) -> MutexGuard<'_, Shard> {
        let index = usize::from(key.as_bytes()[0]) % SHARDS;
        // A panic while a shard was locked cannot leave it half-written: every operation
        // below checks, then writes, with nothing that can panic in between.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn shards(&self) -> impl Iterator<Item = MutexGuard<'_, Shard>> {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// How many conversations are held (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.shards().map(|shard| shard.conversations.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Shard {
    fn seen(&self, id: MarkerId, now_ms: u64, limits: &Limits) -> Option<Seen> {
        let applied_ms = *self.markers.get(&id)?;
        let age = now_ms.saturating_sub(applied_ms);
        if age >= Limits::ms(limits.replay_window) {
            return None;
        }
        let within_horizon = age < Limits::ms(limits.retry_horizon);
        Some(Seen {
            applied_ms,
            reply: within_horizon
                .then(|| self.replies.get(&id).map(|(_, reply)| reply.clone()))
                .flatten(),
        })
    }

    fn holds(&self, key: &ConvKey, token: u64, now_ms: u64) -> bool {
        self.leases
            .get(key)
            .is_some_and(|lease| lease.token == token && lease.until_ms > now_ms)
    }

    /// Drops the replies past the horizon, the markers past the window and those over
    /// [`MAX_MARKERS_PER_SHARD`], oldest first; returns how many markers went.
    fn trim(&mut self, now_ms: u64, limits: &Limits) -> u64 {
        let horizon = Limits::ms(limits.retry_horizon);
        while let Some(&(at, id)) = self.order.get(self.replied) {
            if now_ms.saturating_sub(at) < horizon {
                break;
            }
            self.replied += 1;
            if self
                .replies
                .get(&id)
                .is_some_and(|(written, _)| *written == at)
            {
                self.replies.remove(&id);
            }
        }
        let window = Limits::ms(limits.replay_window);
        let mut removed = 0;
        while let Some(&(at, id)) = self.order.front() {
            if now_ms.saturating_sub(at) < window && self.order.len() <= MAX_MARKERS_PER_SHARD {
                break;
            }
            self.order.pop_front();
            self.replied = self.replied.saturating_sub(1);
            // Written again since (the same id applied later)? Then it is not this one's turn.
            if self.markers.get(&id) == Some(&at) {
                self.markers.remove(&id);
                removed += 1;
                if self
                    .replies
                    .get(&id)
                    .is_some_and(|(written, _)| *written == at)
                {
                    self.replies.remove(&id);
                }
            }
        }
        removed
    }
}

impl Backend for MemoryStore {
    async fn begin(
        &self,
        key: &ConvKey,
        sid: &str,
        token: u64,
        now_ms: u64,
        limits: &Limits,
    ) -> Result<Begin, StoreError> {
        let id = MarkerId::new(key, sid);
        let mut shard = self.shard(key);
        if let Some(seen) = shard.seen(id, now_ms, limits) {
            return Ok(Begin::Seen(seen));
        }
        if shard
            .leases
            .get(key)
            .is_some_and(|lease| lease.until_ms > now_ms)
        {
            return Ok(Begin::Busy);
        }
        let until_ms = now_ms.saturating_add(Limits::ms(limits.lease));
        shard.leases.insert(*key, Lease { token, until_ms });
        Ok(Begin::Owned(shard.conversations.get(key).cloned()))
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
        let id = MarkerId::new(key, sid);
        let mut shard = self.shard(key);
        if !shard.holds(key, token, now_ms) {
            return Ok(Commit::LeaseLost);
        }
        match write.data {
            Some(data) => {
                let stored = Stored {
                    data: data.to_vec(),
                    touched_ms: now_ms,
                };
                shard.conversations.insert(*key, stored);
            }
            None => {
                shard.conversations.remove(key);
            }
        }
        shard.leases.remove(key);
        shard.trim(now_ms, limits);
        shard.markers.insert(id, now_ms);
        shard.replies.insert(id, (now_ms, write.reply.to_vec()));
        shard.order.push_back((now_ms, id));
        Ok(Commit::Done)
    }

    async fn release(&self, key: &ConvKey, token: u64) -> Result<(), StoreError> {
        let mut shard = self.shard(key);
        if shard.leases.get(key).is_some_and(|l| l.token == token) {
            shard.leases.remove(key);
        }
        Ok(())
    }

    async fn peek(&self, key: &ConvKey) -> Result<Option<Stored>, StoreError> {
        Ok(self.shard(key).conversations.get(key).cloned())
    }

    async fn delete(&self, key: &ConvKey) -> Result<(), StoreError> {
        self.shard(key).conversations.remove(key);
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Removes conversations idle for `limits.ttl`, markers past the replay window, replies
    /// past the retry horizon and expired leases; returns how many conversations and markers
    /// went.
    async fn sweep(&self, now_ms: u64, limits: &Limits) -> Result<u64, StoreError> {
        let ttl = Limits::ms(limits.ttl);
        let mut removed = 0;
        for mut shard in self.shards() {
            let before = shard.conversations.len();
            shard
                .conversations
                .retain(|_, c| now_ms.saturating_sub(c.touched_ms) < ttl);
            removed += (before - shard.conversations.len()) as u64;
            removed += shard.trim(now_ms, limits);
            shard.leases.retain(|_, l| l.until_ms > now_ms);
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const LIMITS: Limits = Limits {
        ttl: Duration::from_secs(4 * 3600),
        retry_horizon: Duration::from_secs(120),
        replay_window: Duration::from_secs(24 * 3600),
        lease: Duration::from_secs(10),
    };

    async fn apply(store: &MemoryStore, key: &ConvKey, sid: &str, now_ms: u64) {
        let owned = store.begin(key, sid, 1, now_ms, &LIMITS).await;
        assert!(matches!(owned, Ok(Begin::Owned(_))), "{sid}: {owned:?}");
        let write = Write {
            data: Some(b"n=1"),
            reply: b"<Response/>",
        };
        let done = store.commit(key, sid, 1, write, now_ms, &LIMITS).await;
        assert_eq!(done.ok(), Some(Commit::Done));
    }

    #[tokio::test]
    async fn past_the_cap_the_oldest_message_sids_are_forgotten_first() {
        let store = MemoryStore::new();
        let key = ConvKey::from_bytes([3; 16]);
        let now = 1_700_000_000_000;
        let texts = MAX_MARKERS_PER_SHARD + 100;
        for n in 0..texts {
            apply(&store, &key, &format!("SM{n}"), now + n as u64).await;
        }
        {
            let shard = store.shard(&key);
            assert!(shard.markers.len() <= MAX_MARKERS_PER_SHARD + 1);
            assert_eq!(shard.order.len(), shard.markers.len());
        }
        let later = now + texts as u64;
        let newest = format!("SM{}", texts - 1);
        let newest = store.begin(&key, &newest, 2, later, &LIMITS).await;
        assert!(
            matches!(newest, Ok(Begin::Seen(_))),
            "the newest is remembered"
        );
        let oldest = store.begin(&key, "SM0", 2, later, &LIMITS).await;
        assert!(
            matches!(oldest, Ok(Begin::Owned(_))),
            "the oldest is forgotten"
        );
    }

    #[tokio::test]
    async fn replies_go_at_the_horizon_and_markers_stay_for_the_window() {
        let store = MemoryStore::new();
        let key = ConvKey::from_bytes([5; 16]);
        let now = 1_700_000_000_000;
        apply(&store, &key, "SM1", now).await;
        let horizon = Limits::ms(LIMITS.retry_horizon);
        apply(&store, &key, "SM2", now + horizon).await; // trims at its commit
        let shard = store.shard(&key);
        assert_eq!(shard.replies.len(), 1, "SM1's reply is gone");
        assert_eq!(shard.markers.len(), 2, "its marker is not");
        assert_eq!(shard.replied, 1);
    }
}
