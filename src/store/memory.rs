//! `session.store = "memory"`: conversations in this process's memory, gone on restart.
//!
//! For tests, demos and a single replica that can afford to forget. Sixteen shards, each one
//! mutex over its conversations, leases and markers, so every operation is atomic under one
//! short lock and never held across an await.
//!
//! # What it costs to remember
//! Exactly-once means remembering every MessageSid for `store.replay_window` (24 h). A marker
//! here is 32 bytes (a 128-bit id and the time it was applied) plus the map's overhead; the
//! reply's bytes are kept only for `store.retry_horizon` (2 min). Both are trimmed oldest
//! first at every commit, so memory follows the texts of the last 24 hours, not the process's
//! age; conversations idle past `session.ttl` go at the sweep the [`Store`](super::Store) runs
//! once a minute.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Mutex, MutexGuard};

use super::ConvKey;
use super::backend::{Backend, Begin, Commit, Limits, Seen, StoreError, Stored, Write};

const SHARDS: usize = 16;

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
    /// Markers, then replies, in the order they were written: trimmed from the front.
    marker_order: VecDeque<(u64, MarkerId)>,
    reply_order: VecDeque<(u64, MarkerId)>,
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

    /// Drops the replies past the horizon and the markers past the window, oldest first.
    fn trim(&mut self, now_ms: u64, limits: &Limits) -> u64 {
        let horizon = Limits::ms(limits.retry_horizon);
        while let Some(&(at, id)) = self.reply_order.front() {
            if now_ms.saturating_sub(at) < horizon {
                break;
            }
            self.reply_order.pop_front();
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
        while let Some(&(at, id)) = self.marker_order.front() {
            if now_ms.saturating_sub(at) < window {
                break;
            }
            self.marker_order.pop_front();
            // Written again since (the same id applied later)? Then it is not this one's turn.
            if self.markers.get(&id) == Some(&at) {
                self.markers.remove(&id);
                removed += 1;
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
        shard.marker_order.push_back((now_ms, id));
        shard.replies.insert(id, (now_ms, write.reply.to_vec()));
        shard.reply_order.push_back((now_ms, id));
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
