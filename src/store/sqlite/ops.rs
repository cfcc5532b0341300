//! Each backend operation as SQL, run by the store's thread inside a transaction it opened.
//!
//! Every operation reads (and decodes) all it needs before it writes anything, so one that
//! finds an unreadable row ([`Fail::Corrupt`]) has changed nothing and the other operations
//! of the same transaction can still commit. Time is the caller's `now_ms`, never the clock:
//! the tests simulate time that way.

use std::collections::HashMap;

use rusqlite::types::ValueRef;
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::super::backend::{Begin, Commit, Seen, StoreError, Stored};

/// One call of the [`Backend`](super::super::Backend), with what it needs owned, to cross to
/// the store's thread. Durations are in milliseconds.
#[derive(Debug)]
pub enum Op {
    Begin(BeginOp),
    Commit(CommitOp),
    Release {
        key: [u8; 16],
        token: u64,
    },
    Peek {
        key: [u8; 16],
    },
    Delete {
        key: [u8; 16],
    },
    Ping,
    Sweep {
        now_ms: u64,
        ttl_ms: u64,
        window_ms: u64,
        horizon_ms: u64,
    },
}

#[derive(Debug)]
pub struct BeginOp {
    pub key: [u8; 16],
    pub sid: String,
    pub token: u64,
    pub now_ms: u64,
    pub lease_ms: u64,
    pub window_ms: u64,
    pub horizon_ms: u64,
}

#[derive(Debug)]
pub struct CommitOp {
    pub key: [u8; 16],
    pub sid: String,
    pub token: u64,
    pub data: Option<Vec<u8>>,
    pub reply: Vec<u8>,
    pub now_ms: u64,
}

/// The leases of the steps in flight: (token, until_ms) per conversation key.
///
/// Kept by the store's thread, not in the file: the lock file makes this process the file's
/// only user, so a lease means nothing to anyone else, and one in the file would cost every
/// `begin` a write. The thread runs every operation, so a lease is checked and taken
/// atomically with the reads and writes around it, as it would be in a table.
pub type Leases = HashMap<[u8; 16], (u64, u64)>;

/// What an [`Op`] answers.
#[derive(Debug)]
pub enum Answer {
    Begin(Begin),
    Commit(Commit),
    Done,
    Peek(Option<Stored>),
    Swept(u64),
}

/// Why an operation failed: SQLite itself (the whole transaction is rolled back), or a row
/// this server did not write (the operation wrote nothing; the transaction goes on).
#[derive(Debug)]
pub enum Fail {
    Sql(rusqlite::Error),
    Corrupt(String),
}

impl From<rusqlite::Error> for Fail {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sql(error)
    }
}

impl Op {
    /// Whether the operation only matters to a caller still waiting for it: a `begin` whose
    /// caller gave up (its `store.timeout` passed) must not take a lease nobody will release.
    pub fn only_for_caller(&self) -> bool {
        matches!(self, Self::Begin(_) | Self::Peek { .. } | Self::Ping)
    }

    pub fn run(&self, tx: &Transaction<'_>, leases: &mut Leases) -> Result<Answer, Fail> {
        match self {
            Self::Begin(op) => op.run(tx, leases).map(Answer::Begin),
            Self::Commit(op) => op.run(tx, leases).map(Answer::Commit),
            Self::Release { key, token } => {
                if leases.get(key).is_some_and(|(holder, _)| holder == token) {
                    leases.remove(key);
                }
                Ok(Answer::Done)
            }
            Self::Peek { key } => conversation(tx, key).map(Answer::Peek),
            Self::Delete { key } => {
                tx.prepare_cached(DROP_CONVERSATION)?.execute([key])?;
                Ok(Answer::Done)
            }
            Self::Ping => {
                tx.prepare_cached("SELECT 1")?.query_row([], |_| Ok(()))?;
                Ok(Answer::Done)
            }
            Self::Sweep {
                now_ms,
                ttl_ms,
                window_ms,
                horizon_ms,
            } => {
                leases.retain(|_, (_, until_ms)| *until_ms > *now_ms);
                sweep(tx, *now_ms, *ttl_ms, *window_ms, *horizon_ms).map(Answer::Swept)
            }
        }
    }
}

impl BeginOp {
    fn run(&self, tx: &Transaction<'_>, leases: &mut Leases) -> Result<Begin, Fail> {
        let Self {
            key,
            sid,
            token,
            now_ms,
            lease_ms,
            window_ms,
            horizon_ms,
        } = self;
        if let Some((applied_ms, reply)) = marker(tx, key, sid)? {
            let age = now_ms.saturating_sub(applied_ms);
            if age < *window_ms {
                let reply = if age < *horizon_ms { reply } else { None };
                return Ok(Begin::Seen(Seen { applied_ms, reply }));
            }
        }
        if leases
            .get(key)
            .is_some_and(|(_, until_ms)| until_ms > now_ms)
        {
            return Ok(Begin::Busy);
        }
        let stored = conversation(tx, key)?;
        leases.insert(*key, (*token, now_ms.saturating_add(*lease_ms)));
        Ok(Begin::Owned(stored))
    }
}

impl CommitOp {
    fn run(&self, tx: &Transaction<'_>, leases: &mut Leases) -> Result<Commit, Fail> {
        let Self {
            key,
            sid,
            token,
            data,
            reply,
            now_ms,
        } = self;
        let held = leases.get(key);
        if !held.is_some_and(|(holder, until_ms)| holder == token && until_ms > now_ms) {
            return Ok(Commit::LeaseLost);
        }
        match data {
            Some(data) => {
                let mut stmt = tx.prepare_cached(PUT_CONVERSATION)?;
                stmt.execute(params![key, data, int(*now_ms)])?;
            }
            None => {
                tx.prepare_cached(DROP_CONVERSATION)?.execute([key])?;
            }
        }
        let mut stmt = tx.prepare_cached(PUT_MARKER)?;
        stmt.execute(params![key, sid, int(*now_ms), reply])?;
        leases.remove(key);
        Ok(Commit::Done)
    }
}

const MARKER: &str = "SELECT applied_ms, reply FROM marker WHERE key = ?1 AND sid = ?2";
const CONVERSATION: &str = "SELECT data, touched_ms FROM conversation WHERE key = ?1";
const PUT_CONVERSATION: &str = "INSERT INTO conversation (key, data, touched_ms) \
     VALUES (?1, ?2, ?3) \
     ON CONFLICT (key) DO UPDATE SET data = excluded.data, touched_ms = excluded.touched_ms";
const PUT_MARKER: &str = "INSERT INTO marker (key, sid, applied_ms, reply) \
     VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (key, sid) DO UPDATE SET applied_ms = excluded.applied_ms, reply = excluded.reply";
const DROP_CONVERSATION: &str = "DELETE FROM conversation WHERE key = ?1";

/// `sid`'s marker: when it was applied, and its reply unless the sweep dropped it.
fn marker(tx: &Transaction<'_>, key: &[u8; 16], sid: &str) -> Result<Option<Marker>, Fail> {
    let mut stmt = tx.prepare_cached(MARKER)?;
    let row = stmt
        .query_row(params![key, sid], |row| Ok(read_marker(row)))
        .optional()?;
    row.transpose()
}

type Marker = (u64, Option<Vec<u8>>);

fn read_marker(row: &Row<'_>) -> Result<Marker, Fail> {
    let applied_ms = ms(row.get_ref(0)?, "marker.applied_ms")?;
    let reply = match row.get_ref(1)? {
        ValueRef::Null => None,
        value => Some(blob(value, "marker.reply")?),
    };
    Ok((applied_ms, reply))
}

fn conversation(tx: &Transaction<'_>, key: &[u8; 16]) -> Result<Option<Stored>, Fail> {
    let mut stmt = tx.prepare_cached(CONVERSATION)?;
    let row = stmt
        .query_row([key], |row| Ok(read_conversation(row)))
        .optional()?;
    row.transpose()
}

fn read_conversation(row: &Row<'_>) -> Result<Stored, Fail> {
    Ok(Stored {
        data: blob(row.get_ref(0)?, "conversation.data")?,
        touched_ms: ms(row.get_ref(1)?, "conversation.touched_ms")?,
    })
}

/// Deletes conversations idle for `ttl_ms` and markers older than `window_ms`, drops the
/// replies older than `horizon_ms` and the expired leases; returns how many conversations and
/// markers went (as [`MemoryStore`](super::super::MemoryStore) counts).
fn sweep(
    tx: &Transaction<'_>,
    now_ms: u64,
    ttl_ms: u64,
    window_ms: u64,
    horizon_ms: u64,
) -> Result<u64, Fail> {
    let mut removed = 0;
    if let Some(cutoff) = expired_at_or_before(now_ms, ttl_ms) {
        let mut stmt = tx.prepare_cached("DELETE FROM conversation WHERE touched_ms <= ?1")?;
        removed += stmt.execute([cutoff])?;
    }
    if let Some(cutoff) = expired_at_or_before(now_ms, window_ms) {
        let mut stmt = tx.prepare_cached("DELETE FROM marker WHERE applied_ms <= ?1")?;
        removed += stmt.execute([cutoff])?;
    }
    if let Some(cutoff) = expired_at_or_before(now_ms, horizon_ms) {
        let mut stmt = tx.prepare_cached(
            "UPDATE marker SET reply = NULL WHERE applied_ms <= ?1 AND reply IS NOT NULL",
        )?;
        stmt.execute([cutoff])?;
    }
    Ok(u64::try_from(removed).unwrap_or(u64::MAX))
}

/// The latest time stamp whose age at `now_ms` is at least `limit_ms` (ages saturate at 0, as
/// the memory backend's do, so a limit of 0 takes everything); `None` when none is.
fn expired_at_or_before(now_ms: u64, limit_ms: u64) -> Option<i64> {
    if limit_ms == 0 {
        return Some(i64::MAX);
    }
    now_ms.checked_sub(limit_ms).map(int)
}

/// A time stamp as SQLite stores it (past year 292 million, the largest it can).
fn int(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn ms(value: ValueRef<'_>, column: &str) -> Result<u64, Fail> {
    match value {
        ValueRef::Integer(ms) => {
            u64::try_from(ms).map_err(|_| Fail::Corrupt(format!("{column} is negative")))
        }
        _ => Err(Fail::Corrupt(format!("{column} is not an integer"))),
    }
}

fn blob(value: ValueRef<'_>, column: &str) -> Result<Vec<u8>, Fail> {
    match value {
        ValueRef::Blob(bytes) => Ok(bytes.to_vec()),
        _ => Err(Fail::Corrupt(format!("{column} is not a blob"))),
    }
}

impl From<Fail> for StoreError {
    fn from(fail: Fail) -> Self {
        match fail {
            Fail::Sql(error) => Self::Unavailable(format!("SQLite: {error}")),
            Fail::Corrupt(what) => Self::Corrupt(what),
        }
    }
}
