//! Masked-number relays: people text each other through the operator's Twilio numbers, never
//! learning each other's number (what Twilio Proxy did), with nothing but the webhooks Twilio
//! sends and TwiML replies.
//!
//! - [`model`]: sessions, participants, proxies;
//! - [`store`]: where sessions and their (proxy, address) bindings live, atomically, on the
//!   conversation store's engine (memory, SQLite or Redis);
//! - `route`: an inbound text → `<Message to from>` for every other participant;
//! - the admin API that creates and closes sessions is `crate::admin`.

pub mod model;
pub mod route;
pub mod store;

use std::sync::Arc;

use crate::config::RelayConfig;
use crate::metrics::Metrics;

pub use model::{NewParticipant, NewSession, Participant, RelaySession, State};
pub use store::{AnyRelay, Filter, PoolEntry, RelayBackend, RelayError, RelayKeys};

/// The relay as the webhook route and the admin API use it: the store, the pool and the
/// settings of `[relay]`.
#[derive(Debug)]
pub struct Relay {
    backend: AnyRelay,
    /// Its `numbers` are the pool, in order of preference.
    config: RelayConfig,
    limits: route::Limits,
    metrics: Option<Arc<Metrics>>,
}

impl Relay {
    pub fn new(backend: AnyRelay, config: RelayConfig, metrics: Option<Arc<Metrics>>) -> Arc<Self> {
        Arc::new(Relay {
            backend,
            config,
            limits: route::Limits::default(),
            metrics,
        })
    }

    fn count(&self, event: &str) {
        if let Some(metrics) = &self.metrics {
            metrics.relay_session(event);
        }
    }

    /// Refreshes the relay gauges every `every` (sessions per pool number summed, pool numbers
    /// in use).
    pub fn spawn_gauges(self: &Arc<Self>, every: std::time::Duration) {
        let Some(metrics) = self.metrics.clone() else {
            return;
        };
        let relay = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(relay) = relay.upgrade() else { return };
                if let Ok(pool) = relay.pool().await {
                    let sessions = pool.iter().map(|entry| entry.in_use).sum();
                    let used = pool.iter().filter(|entry| entry.in_use > 0).count();
                    metrics.relay_pool(sessions, used);
                }
            }
        });
    }

    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    pub fn pool_numbers(&self) -> &[String] {
        &self.config.numbers
    }

    pub async fn create(&self, new: NewSession) -> Result<RelaySession, RelayError> {
        let created = self
            .backend
            .create(new, &self.config.numbers, now_ms())
            .await?;
        self.count("created");
        tracing::info!(
            session = created.id,
            participants = created.participants.len(),
            "relay session opened"
        );
        Ok(created)
    }

    pub async fn lookup(
        &self,
        proxy: &str,
        address: &str,
    ) -> Result<Option<RelaySession>, RelayError> {
        self.backend.lookup(proxy, address).await
    }

    /// The session as the API shows it: one past its end is `closed` (reason `ttl`), whether
    /// or not a text has closed it in the store yet.
    pub async fn get(&self, id: &str) -> Result<Option<RelaySession>, RelayError> {
        Ok(self.backend.get(id).await?.map(|s| as_of(s, now_ms())))
    }

    pub async fn list(
        &self,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RelaySession>, RelayError> {
        let now = now_ms();
        let page = self.backend.list(filter, after, limit, now).await?;
        Ok(page.into_iter().map(|s| as_of(s, now)).collect())
    }

    /// Closes a session (`reason`: `closed`, `agent`, …), once: closing a closed one answers it
    /// as it is, and one already past its end closes as `ttl`, whatever the caller asked.
    pub async fn close(&self, id: &str, reason: &str) -> Result<Option<RelaySession>, RelayError> {
        let now = now_ms();
        let Some(before) = self.backend.get(id).await? else {
            return Ok(None);
        };
        if before.state == State::Closed {
            return Ok(Some(before));
        }
        let reason = if before.is_live(now) { reason } else { "ttl" };
        let closed = self.backend.close(id, reason, now).await?;
        if closed.is_some() {
            self.count(reason);
            tracing::info!(session = id, reason, "relay session closed");
        }
        Ok(closed)
    }

    pub async fn touch(&self, id: &str) -> Result<(), RelayError> {
        self.backend.touch(id, now_ms()).await
    }

    pub async fn set_opted_out(
        &self,
        id: &str,
        address: &str,
        opted_out: bool,
    ) -> Result<(), RelayError> {
        self.backend.set_opted_out(id, address, opted_out).await
    }

    pub async fn pool(&self) -> Result<Vec<PoolEntry>, RelayError> {
        self.backend.pool(&self.config.numbers, now_ms()).await
    }
}

/// `session` as of `now_ms`: past its end, closed.
fn as_of(mut session: RelaySession, now_ms: u64) -> RelaySession {
    if session.state == State::Open && !session.is_live(now_ms) {
        session.state = State::Closed;
        session.closed_reason = Some("ttl".into());
    }
    session
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    crate::store::unix_ms()
}
