//! `session.store = "memory"`: relay sessions in this process's memory, gone on restart.
//!
//! One mutex over the sessions, the bindings and the address index: every operation (a
//! `create`'s allocation and claims included) runs whole under it, never across an await.
//! Records go 7 days ([`GRACE_MS`]) after their session ended, at a sweep that operations
//! carrying the time run at most once a minute.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::{
    Filter, GRACE_MS, PoolEntry, RelayBackend, RelayError, RelayKeys, SWEEP_EVERY_MS, allocate,
    close_session, count_pool, empty_pool, matches, new_id, open_session, opt_out, record_end,
    touch_session,
};
use crate::relay::model::{NewSession, RelaySession};

/// Relay sessions in memory; see the [module docs](self).
#[derive(Debug)]
pub struct MemoryRelay {
    keys: RelayKeys,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// By id, so `list` pages in id order.
    sessions: BTreeMap<String, Entry>,
    /// [`RelayKeys::binding`] → session id.
    bindings: HashMap<String, String>,
    /// [`RelayKeys::address`] → the ids of the sessions with a participant there.
    addresses: HashMap<String, BTreeSet<String>>,
    next_sweep_ms: u64,
}

#[derive(Debug)]
struct Entry {
    session: RelaySession,
    /// [`record_end`]: the record goes [`GRACE_MS`] after it.
    end_ms: u64,
}

impl MemoryRelay {
    pub fn new(keys: RelayKeys) -> Self {
        Self {
            keys,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn is_free(&self, binding: &str, now_ms: u64) -> bool {
        let bound = self
            .bindings
            .get(binding)
            .and_then(|id| self.sessions.get(id));
        !bound.is_some_and(|entry| entry.session.is_live(now_ms))
    }

    /// Drops the records past their grace, with the bindings and index entries naming them.
    fn sweep(&mut self, keys: &RelayKeys, now_ms: u64) {
        if now_ms < self.next_sweep_ms {
            return;
        }
        self.next_sweep_ms = now_ms.saturating_add(SWEEP_EVERY_MS);
        let gone: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, entry)| is_gone(entry, now_ms))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            let Some(entry) = self.sessions.remove(&id) else {
                continue;
            };
            for p in &entry.session.participants {
                let binding = keys.binding(&p.proxy, &p.address);
                if self.bindings.get(&binding) == Some(&id) {
                    self.bindings.remove(&binding);
                }
                let address = keys.address(&p.address);
                if let Some(ids) = self.addresses.get_mut(&address) {
                    ids.remove(&id);
                    if ids.is_empty() {
                        self.addresses.remove(&address);
                    }
                }
            }
        }
    }

    /// Runs `change` on the session `id`, and records its new end if it gives one.
    fn update(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut RelaySession) -> Option<u64>,
    ) -> Option<RelaySession> {
        let entry = self.sessions.get_mut(id)?;
        if let Some(end_ms) = change(&mut entry.session) {
            entry.end_ms = end_ms;
        }
        Some(entry.session.clone())
    }
}

/// Past its grace at `now_ms`: as good as removed.
fn is_gone(entry: &Entry, now_ms: u64) -> bool {
    entry.end_ms.saturating_add(GRACE_MS) <= now_ms
}

impl RelayBackend for MemoryRelay {
    async fn create(
        &self,
        new: NewSession,
        pool: &[String],
        now_ms: u64,
    ) -> Result<RelaySession, RelayError> {
        let mut inner = self.lock();
        inner.sweep(&self.keys, now_ms);
        let proxies = allocate(&new, pool, |proxy, address| {
            Ok(inner.is_free(&self.keys.binding(proxy, address), now_ms))
        })?;
        let session = open_session(new, proxies, new_id(), now_ms);
        for p in &session.participants {
            let binding = self.keys.binding(&p.proxy, &p.address);
            inner.bindings.insert(binding, session.id.clone());
            let address = self.keys.address(&p.address);
            inner
                .addresses
                .entry(address)
                .or_default()
                .insert(session.id.clone());
        }
        let entry = Entry {
            session: session.clone(),
            end_ms: record_end(&session, None),
        };
        inner.sessions.insert(session.id.clone(), entry);
        Ok(session)
    }

    async fn lookup(&self, proxy: &str, address: &str) -> Result<Option<RelaySession>, RelayError> {
        let inner = self.lock();
        let id = inner.bindings.get(&self.keys.binding(proxy, address));
        let entry = id.and_then(|id| inner.sessions.get(id));
        Ok(entry.map(|entry| entry.session.clone()))
    }

    async fn get(&self, id: &str) -> Result<Option<RelaySession>, RelayError> {
        let inner = self.lock();
        Ok(inner.sessions.get(id).map(|entry| entry.session.clone()))
    }

    async fn list(
        &self,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<RelaySession>, RelayError> {
        use std::ops::Bound::{Excluded, Unbounded};
        let inner = self.lock();
        let from = after.map_or(Unbounded, Excluded);
        let page = inner
            .sessions
            .range::<str, _>((from, Unbounded))
            .map(|(_, entry)| entry)
            .filter(|entry| !is_gone(entry, now_ms) && matches(filter, &entry.session, now_ms))
            .take(limit)
            .map(|entry| entry.session.clone())
            .collect();
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
        let closed = self
            .lock()
            .update(id, |session| close_session(session, reason, now_ms));
        Ok(closed)
    }

    async fn touch(&self, id: &str, now_ms: u64) -> Result<(), RelayError> {
        self.lock().update(id, |session| {
            touch_session(session, now_ms).then(|| record_end(session, None))
        });
        Ok(())
    }

    async fn set_opted_out(
        &self,
        id: &str,
        address: &str,
        opted_out: bool,
    ) -> Result<(), RelayError> {
        self.lock().update(id, |session| {
            opt_out(session, address, opted_out);
            None
        });
        Ok(())
    }

    async fn pool(&self, pool: &[String], now_ms: u64) -> Result<Vec<PoolEntry>, RelayError> {
        let inner = self.lock();
        let mut counts = empty_pool(pool);
        count_pool(
            &mut counts,
            inner.sessions.values().map(|entry| &entry.session),
            now_ms,
        );
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{T0, keys, new, pool};
    use super::*;
    use crate::relay::model::State;

    fn relay() -> MemoryRelay {
        MemoryRelay::new(keys())
    }

    #[tokio::test]
    async fn a_failed_create_leaves_no_claim_behind() {
        let relay = relay();
        let pool = pool();
        relay
            .create(new(&["+1A", "+1B"]), &pool, T0)
            .await
            .expect("first");
        relay
            .create(new(&["+1A", "+1C"]), &pool, T0)
            .await
            .expect("second");
        let refused = relay.create(new(&["+1D", "+1A"]), &pool, T0).await;
        assert_eq!(refused, Err(RelayError::PoolExhausted(1)));
        assert_eq!(relay.lookup("+15550000001", "+1D").await, Ok(None));
        let inner = relay.lock();
        assert_eq!(inner.sessions.len(), 2);
        assert_eq!(inner.bindings.len(), 4);
    }

    #[tokio::test]
    async fn records_go_with_their_bindings_a_grace_after_they_end() {
        let relay = relay();
        let pool = pool();
        let old = relay
            .create(new(&["+1A", "+1B"]), &pool, T0)
            .await
            .expect("create");
        let closed = relay
            .close(&old.id, "closed", T0 + 1_000)
            .await
            .expect("close");
        assert_eq!(closed.map(|s| s.state), Some(State::Closed));
        // Just before the grace runs out it is still there (and a sweep runs).
        let later = T0 + 1_000 + GRACE_MS - 1;
        relay
            .create(new(&["+1C", "+1D"]), &pool, later)
            .await
            .expect("create");
        assert!(relay.get(&old.id).await.expect("get").is_some());
        let after = later + SWEEP_EVERY_MS;
        relay
            .create(new(&["+1E", "+1F"]), &pool, after)
            .await
            .expect("create");
        assert_eq!(relay.get(&old.id).await, Ok(None));
        assert_eq!(relay.lookup("+15550000001", "+1A").await, Ok(None));
        let inner = relay.lock();
        assert!(!inner.bindings.values().any(|id| id == &old.id));
        assert!(!inner.addresses.values().any(|ids| ids.contains(&old.id)));
    }

    #[tokio::test]
    async fn touch_moves_the_record_end_and_never_revives() {
        let relay = relay();
        let s = relay
            .create(new(&["+1A", "+1B"]), &pool(), T0)
            .await
            .expect("create");
        relay.touch(&s.id, T0 + 30_000).await.expect("touch");
        assert_eq!(relay.lock().sessions[&s.id].end_ms, T0 + 90_000);
        relay
            .touch(&s.id, T0 + 90_000)
            .await
            .expect("touch when ended");
        let got = relay.get(&s.id).await.expect("get").expect("there");
        assert_eq!(got.last_activity_ms, T0 + 30_000);
    }
}
