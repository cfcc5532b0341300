//! What every server-side backend provides: a few atomic operations on one conversation.
//!
//! The [`Store`](super::Store) in front of a backend does the rest (keys, the per-pair queue
//! of this process, deadlines, expiry on read, metrics); a backend only has to make each
//! operation below atomic against every other client of the same data — other tasks, and for
//! Redis other replicas.
//!
//! # The protocol, per inbound text
//! 1. [`begin`](Backend::begin): if the MessageSid was applied already, its marker
//!    ([`Begin::Seen`]); else, if another step of the pair holds the lease, [`Begin::Busy`];
//!    else take the lease under `token` and return the conversation ([`Begin::Owned`]).
//! 2. The flow runs (later: with call-outs, which is why the pair is leased rather than
//!    re-run on a conflict: a step runs once per text).
//! 3. [`commit`](Backend::commit) under the same token: write the state (or delete it), the
//!    marker and the reply, and drop the lease — all or nothing; [`Commit::LeaseLost`] when the
//!    lease expired and another step took it, in which case nothing is written.
//!    [`release`](Backend::release) drops the lease of a step that ends without a commit.

use std::future::Future;
use std::time::Duration;

use super::ConvKey;

/// The timing rules a backend applies, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `session.ttl`: a conversation not written for this long is gone.
    pub ttl: Duration,
    /// `store.retry_horizon`: how long the reply to a MessageSid is kept for Twilio's retries.
    pub retry_horizon: Duration,
    /// `store.replay_window`: how long a MessageSid's marker is kept (replays answered empty).
    pub replay_window: Duration,
    /// How long a step may hold its pair before another may take it (a step on a replica that
    /// died mid-step holds it no longer than this).
    pub lease: Duration,
}

impl Limits {
    pub fn ms(duration: Duration) -> u64 {
        u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
    }
}

/// A conversation as a backend keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The state, form-encoded ([`SessionData::to_bytes`](crate::session::SessionData::to_bytes)).
    pub data: Vec<u8>,
    /// When it was last written, in Unix milliseconds (the TTL is checked against it on read).
    pub touched_ms: u64,
}

/// A MessageSid that was applied already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// When it was applied, in Unix milliseconds.
    pub applied_ms: u64,
    /// The reply's bytes while within the retry horizon; `None` after it.
    pub reply: Option<Vec<u8>>,
}

/// What [`Backend::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    Seen(Seen),
    /// Another step of the pair holds the lease; try again shortly.
    Busy,
    /// The lease is this step's; the conversation, if there is one (expired or not: the
    /// [`Store`](super::Store) checks the TTL).
    Owned(Option<Stored>),
}

/// What [`Backend::commit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Done,
    /// The step's lease had expired and was taken; nothing was written.
    LeaseLost,
}

/// What a step writes when it commits.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    /// The new state; `None` deletes the conversation (an opt-out, a finished flow that
    /// cleared everything).
    pub data: Option<&'a [u8]>,
    /// The reply's bytes, kept for the retry horizon.
    pub reply: &'a [u8],
}

/// Why a backend could not answer. Every one costs the webhook a 503, never a wrong reply.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connection refused or lost, I/O error, a server error reply.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The deadline (`store.timeout`) passed.
    #[error("store did not answer within {0:?}")]
    Timeout(Duration),
    /// A value the store holds is not one this server wrote.
    #[error("store holds an unreadable value: {0}")]
    Corrupt(String),
}

/// The operations of one backend. Each is atomic; see the [module docs](self).
pub trait Backend: Send + Sync + 'static {
    fn begin(
        &self,
        key: &ConvKey,
        sid: &str,
        token: u64,
        now_ms: u64,
        limits: &Limits,
    ) -> impl Future<Output = Result<Begin, StoreError>> + Send;

    fn commit(
        &self,
        key: &ConvKey,
        sid: &str,
        token: u64,
        write: Write<'_>,
        now_ms: u64,
        limits: &Limits,
    ) -> impl Future<Output = Result<Commit, StoreError>> + Send;

    /// Drops the lease if `token` still holds it.
    fn release(
        &self,
        key: &ConvKey,
        token: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The conversation under `key` without taking its lease (for conversations kept under a
    /// previous secret's key).
    fn peek(
        &self,
        key: &ConvKey,
    ) -> impl Future<Output = Result<Option<Stored>, StoreError>> + Send;

    /// Deletes the conversation under `key` (its markers stay).
    fn delete(&self, key: &ConvKey) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Answers when the backend does (`GET /readyz`).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes what has expired (backends whose engine does not expire keys itself);
    /// returns how many conversations and markers went.
    fn sweep(
        &self,
        now_ms: u64,
        limits: &Limits,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let _ = (now_ms, limits);
        async { Ok(0) }
    }
}
