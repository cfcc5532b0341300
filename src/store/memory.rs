//! `session.store = "memory"`: conversations in this process's memory, gone on restart.
//!
//! For tests, demos and a single replica that can afford to forget. Sixteen shards, each one
//! mutex over its conversations, markers and leases, so every operation is atomic under one
//! short lock and never held across an await. Expired entries are skipped on read and removed
//! by [`sweep`](Backend::sweep), which the [`Store`](super::Store) runs once a minute.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::ConvKey;
use super::backend::{Backend, Begin, Commit, Limits, Seen, StoreError, Stored, Write};

const SHARDS: usize = 16;

#[derive(Debug, Default)]
pub struct MemoryStore {
    shards: [Mutex<Shard>; SHARDS],
}

#[derive(Debug, Default)]
struct Shard {
    conversations: HashMap<ConvKey, Stored>,
    markers: HashMap<(ConvKey, Box<str>), Marker>,
    leases: HashMap<ConvKey, Lease>,
}

#[derive(Debug)]
struct Marker {
    applied_ms: u64,
    reply: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    token: u64,
    until_ms: u64,
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

    /// How many conversations are held (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().map_or(0, |s| s.conversations.len()))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Shard {
    fn seen(&self, key: &ConvKey, sid: &str, now_ms: u64, limits: &Limits) -> Option<Seen> {
        let marker = self.markers.get(&(*key, sid.into()))?;
        let age = now_ms.saturating_sub(marker.applied_ms);
        if age >= Limits::ms(limits.replay_window) {
            return None;
        }
        Some(Seen {
            applied_ms: marker.applied_ms,
            reply: (age < Limits::ms(limits.retry_horizon)).then(|| marker.reply.clone()),
        })
    }

    fn holds(&self, key: &ConvKey, token: u64, now_ms: u64) -> bool {
        self.leases
            .get(key)
            .is_some_and(|lease| lease.token == token && lease.until_ms > now_ms)
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
        let mut shard = self.shard(key);
        if let Some(seen) = shard.seen(key, sid, now_ms, limits) {
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
        _limits: &Limits,
    ) -> Result<Commit, StoreError> {
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
        let marker = Marker {
            applied_ms: now_ms,
            reply: write.reply.to_vec(),
        };
        shard.markers.insert((*key, sid.into()), marker);
        shard.leases.remove(key);
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

    /// Removes conversations idle for `limits.ttl`, markers older than the replay window and
    /// the replies past the retry horizon, and expired leases; returns how many entries went.
    async fn sweep(&self, now_ms: u64, limits: &Limits) -> Result<u64, StoreError> {
        let ttl = Limits::ms(limits.ttl);
        let window = Limits::ms(limits.replay_window);
        let horizon = Limits::ms(limits.retry_horizon);
        let mut removed = 0;
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            let before = shard.conversations.len() + shard.markers.len();
            shard
                .conversations
                .retain(|_, c| now_ms.saturating_sub(c.touched_ms) < ttl);
            shard.markers.retain(|_, m| {
                let age = now_ms.saturating_sub(m.applied_ms);
                if age >= horizon && !m.reply.is_empty() {
                    m.reply = Vec::new(); // past the retry horizon the bytes are not needed
                }
                age < window
            });
            shard.leases.retain(|_, l| l.until_ms > now_ms);
            removed += (before - shard.conversations.len() - shard.markers.len()) as u64;
        }
        Ok(removed)
    }
}
