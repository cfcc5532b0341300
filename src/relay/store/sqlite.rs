//! `session.store = "sqlite:PATH"`: relay sessions in the conversations' SQLite file, through
//! a connection of the relay's own.
//!
//! The conversation store ([`crate::store::SqliteStore`]) owns its connection on a thread of
//! its own and holds `PATH.lock` against other processes; the relay opens a second
//! connection to the same file in the same process (WAL, `busy_timeout`), so the two take
//! turns at writing. Open the conversation store first: on a new file it refuses tables it
//! does not know of. Each call runs on tokio's blocking pool, under this connection's mutex.
//!
//! # Tables
//! - `relay_sessions(id PRIMARY KEY, body TEXT, ends_at INTEGER)`: the session's JSON and
//!   its record end ([`record_end`]); the row goes [`GRACE_MS`] after it.
//! - `relay_bindings(key PRIMARY KEY, id)`: [`RelayKeys::binding`] → session id.
//! - `relay_addresses(key, id)`: [`RelayKeys::address`] → the ids of its sessions.
//!
//! `create` allocates and claims in one `BEGIN IMMEDIATE` transaction: SQLite lets one
//! writer in at a time across connections, so two creates (from one relay or two, on one
//! file) never both see a binding free.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::{
    Filter, GRACE_MS, PoolEntry, RelayBackend, RelayError, RelayKeys, SWEEP_EVERY_MS, allocate,
    close_session, count_pool, empty_pool, from_json, keep_page, new_id, open_session, opt_out,
    record_end, to_json, touch_session,
};
use crate::relay::model::{NewSession, RelaySession, State};

/// How long a statement waits for the other connection's write to finish.
const BUSY_TIMEOUT_MS: i64 = 5000;

/// How many rows `list` and `pool` read at a time.
const CHUNK: i64 = 256;

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS relay_sessions (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    ends_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS relay_sessions_ends ON relay_sessions (ends_at);
CREATE TABLE IF NOT EXISTS relay_bindings (
    key TEXT PRIMARY KEY,
    id TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS relay_bindings_id ON relay_bindings (id);
CREATE TABLE IF NOT EXISTS relay_addresses (
    key TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (key, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS relay_addresses_id ON relay_addresses (id);
";

/// Relay sessions in a SQLite file; see the [module docs](self).
#[derive(Clone)]
pub struct SqliteRelay {
    db: Arc<Mutex<Db>>,
    keys: RelayKeys,
}

struct Db {
    conn: Connection,
    next_sweep_ms: u64,
}

impl SqliteRelay {
    /// Opens a connection to `path` (created if missing; its directory must exist) and the
    /// relay's tables.
    pub async fn open(path: &Path, keys: RelayKeys) -> Result<Self, String> {
        let path = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || connect(&path))
            .await
            .map_err(|e| format!("the SQLite open task failed: {e}"))??;
        Ok(Self {
            db: Arc::new(Mutex::new(Db {
                conn,
                next_sweep_ms: 0,
            })),
            keys,
        })
    }

    /// Runs `work` on the blocking pool with the connection.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Db, &RelayKeys) -> Result<T, Fail> + Send + 'static,
    ) -> Result<T, RelayError> {
        let (db, keys) = (self.db.clone(), self.keys.clone());
        let task = tokio::task::spawn_blocking(move || work(&mut lock(&db), &keys));
        match task.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(fail)) => Err(fail.into()),
            Err(e) => Err(RelayError::Unavailable(format!(
                "the SQLite task failed: {e}"
            ))),
        }
    }
}

fn lock(db: &Mutex<Db>) -> MutexGuard<'_, Db> {
    db.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn connect(path: &Path) -> Result<Connection, String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir.filter(|d| !d.is_dir()) {
        return Err(format!("the directory {} does not exist", dir.display()));
    }
    let failed = |e: rusqlite::Error| format!("SQLite: {e}");
    let mut conn = Connection::open(path).map_err(failed)?;
    // The busy timeout first: switching to WAL waits for the other connection too.
    conn.pragma_update(None, "busy_timeout", BUSY_TIMEOUT_MS)
        .map_err(failed)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(failed)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("journal_mode stays {mode:?}, not WAL"));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(failed)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    tx.execute_batch(TABLES).map_err(failed)?;
    tx.commit().map_err(failed)?;
    Ok(conn)
}

/// Why a call failed: SQLite (the transaction rolled back), a record that does not parse, or
/// the relay's own refusal (also rolled back).
enum Fail {
    Sql(rusqlite::Error),
    Relay(RelayError),
}

impl From<rusqlite::Error> for Fail {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sql(error)
    }
}

impl From<RelayError> for Fail {
    fn from(error: RelayError) -> Self {
        Self::Relay(error)
    }
}

impl From<Fail> for RelayError {
    fn from(fail: Fail) -> Self {
        match fail {
            Fail::Sql(error) => RelayError::Unavailable(format!("SQLite: {error}")),
            Fail::Relay(error) => error,
        }
    }
}

fn parse(body: &str) -> Result<RelaySession, RelayError> {
    from_json(body, "relay_sessions.body")
}

/// A time stamp as SQLite stores it.
fn int(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn immediate(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

/// The session whose body `sql` selects by `?1 = key`, if there is one.
fn read(conn: &Connection, sql: &str, key: &str) -> Result<Option<RelaySession>, Fail> {
    let mut stmt = conn.prepare_cached(sql)?;
    let body: Option<String> = stmt.query_row([key], |row| row.get(0)).optional()?;
    Ok(body.map(|body| parse(&body)).transpose()?)
}

fn session(conn: &Connection, id: &str) -> Result<Option<RelaySession>, Fail> {
    read(conn, "SELECT body FROM relay_sessions WHERE id = ?1", id)
}

/// Whether the binding is free at `now_ms`: unbound, or bound to a session that is gone,
/// closed or past its end.
fn is_free(tx: &Transaction<'_>, binding: &str, now_ms: u64) -> Result<bool, RelayError> {
    let sql = "SELECT s.body FROM relay_bindings b LEFT JOIN relay_sessions s ON s.id = b.id \
               WHERE b.key = ?1";
    let found = || -> rusqlite::Result<Option<Option<String>>> {
        let mut stmt = tx.prepare_cached(sql)?;
        stmt.query_row([binding], |row| row.get(0)).optional()
    };
    match found().map_err(|e| RelayError::Unavailable(format!("SQLite: {e}")))? {
        Some(Some(body)) => Ok(!parse(&body)?.is_live(now_ms)),
        _ => Ok(true),
    }
}

/// Deletes the sessions past their grace with their bindings and index rows (at most once a
/// [`SWEEP_EVERY_MS`]; a rolled-back sweep waits for the next).
fn sweep(next_sweep_ms: &mut u64, tx: &Transaction<'_>, now_ms: u64) -> rusqlite::Result<()> {
    if now_ms < *next_sweep_ms {
        return Ok(());
    }
    *next_sweep_ms = now_ms.saturating_add(SWEEP_EVERY_MS);
    let Some(cutoff) = now_ms.checked_sub(GRACE_MS) else {
        return Ok(());
    };
    let gone = "SELECT id FROM relay_sessions WHERE ends_at <= ?1";
    for table in ["relay_bindings", "relay_addresses"] {
        let sql = format!("DELETE FROM {table} WHERE id IN ({gone})");
        tx.prepare_cached(&sql)?.execute([int(cutoff)])?;
    }
    let sql = "DELETE FROM relay_sessions WHERE ends_at <= ?1";
    tx.prepare_cached(sql)?.execute([int(cutoff)])?;
    Ok(())
}

/// Allocates and claims in one transaction: all of it commits, or none.
fn create(
    db: &mut Db,
    keys: &RelayKeys,
    new: NewSession,
    pool: &[String],
    now_ms: u64,
) -> Result<RelaySession, Fail> {
    let tx = immediate(&mut db.conn)?;
    sweep(&mut db.next_sweep_ms, &tx, now_ms)?;
    let proxies = allocate(&new, pool, |proxy, address| {
        is_free(&tx, &keys.binding(proxy, address), now_ms)
    })?;
    let session = open_session(new, proxies, new_id(), now_ms);
    let sql = "INSERT INTO relay_sessions (id, body, ends_at) VALUES (?1, ?2, ?3)";
    let end = int(record_end(&session, None));
    tx.prepare_cached(sql)?
        .execute(params![session.id, to_json(&session)?, end])?;
    for p in &session.participants {
        let sql = "INSERT INTO relay_bindings (key, id) VALUES (?1, ?2) \
                   ON CONFLICT (key) DO UPDATE SET id = excluded.id";
        let binding = keys.binding(&p.proxy, &p.address);
        tx.prepare_cached(sql)?
            .execute(params![binding, session.id])?;
        let sql = "INSERT OR IGNORE INTO relay_addresses (key, id) VALUES (?1, ?2)";
        let address = keys.address(&p.address);
        tx.prepare_cached(sql)?
            .execute(params![address, session.id])?;
    }
    tx.commit()?;
    Ok(session)
}

/// Runs `change` on the session `id` in one transaction, writing it back if `change` says
/// it changed (with its new record end if it gives one).
fn update(
    db: &mut Db,
    id: &str,
    change: impl FnOnce(&mut RelaySession) -> Option<Option<u64>>,
) -> Result<Option<RelaySession>, Fail> {
    let tx = immediate(&mut db.conn)?;
    let Some(mut session) = session(&tx, id)? else {
        return Ok(None);
    };
    if let Some(end) = change(&mut session) {
        let body = to_json(&session)?;
        match end {
            Some(end) => {
                let sql = "UPDATE relay_sessions SET body = ?2, ends_at = ?3 WHERE id = ?1";
                tx.prepare_cached(sql)?
                    .execute(params![id, body, int(end)])?;
            }
            None => {
                let sql = "UPDATE relay_sessions SET body = ?2 WHERE id = ?1";
                tx.prepare_cached(sql)?.execute(params![id, body])?;
            }
        }
        tx.commit()?;
    }
    Ok(Some(session))
}

/// Rows of `relay_sessions` with ids after `after`, `CHUNK` at a time, in id order, that have
/// not passed their grace at `now_ms` (and are not past their end, if `live_only`); for the
/// address index's key when given. `visit` says whether to go on.
fn scan(
    conn: &Connection,
    address: Option<&str>,
    after: &str,
    live_only: bool,
    now_ms: u64,
    mut visit: impl FnMut(RelaySession) -> bool,
) -> Result<(), Fail> {
    // A live session ends after `now_ms` (`ends_at` is its end while it is open); a record
    // past its grace ended at or before `now_ms - GRACE_MS`.
    let ended_by = if live_only {
        int(now_ms)
    } else {
        now_ms.checked_sub(GRACE_MS).map_or(i64::MIN, int)
    };
    // Both statements take the same parameters (`?1` is NULL without an address).
    let sql = match address {
        Some(_) => {
            "SELECT s.id, s.body FROM relay_addresses a JOIN relay_sessions s ON s.id = a.id \
             WHERE a.key = ?1 AND a.id > ?2 AND s.ends_at > ?3 ORDER BY a.id LIMIT ?4"
        }
        None => {
            "SELECT id, body FROM relay_sessions \
             WHERE ?1 IS NULL AND id > ?2 AND ends_at > ?3 ORDER BY id LIMIT ?4"
        }
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let mut cursor = after.to_owned();
    loop {
        let rows = stmt.query_map(params![address, cursor, ended_by, CHUNK], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let rows: Vec<(String, String)> = rows.collect::<rusqlite::Result<_>>()?;
        let Some((last, _)) = rows.last() else {
            return Ok(());
        };
        cursor = last.clone();
        let full = rows.len() == usize::try_from(CHUNK).unwrap_or(usize::MAX);
        for (_, body) in rows {
            if !visit(parse(&body)?) {
                return Ok(());
            }
        }
        if !full {
            return Ok(());
        }
    }
}

impl RelayBackend for SqliteRelay {
    async fn create(
        &self,
        new: NewSession,
        pool: &[String],
        now_ms: u64,
    ) -> Result<RelaySession, RelayError> {
        let pool = pool.to_vec();
        self.run(move |db, keys| create(db, keys, new, &pool, now_ms))
            .await
    }

    async fn lookup(&self, proxy: &str, address: &str) -> Result<Option<RelaySession>, RelayError> {
        let binding = self.keys.binding(proxy, address);
        self.run(move |db, _| {
            let sql = "SELECT s.body FROM relay_bindings b JOIN relay_sessions s ON s.id = b.id \
                       WHERE b.key = ?1";
            read(&db.conn, sql, &binding)
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<RelaySession>, RelayError> {
        let id = id.to_owned();
        self.run(move |db, _| session(&db.conn, &id)).await
    }

    async fn list(
        &self,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<RelaySession>, RelayError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let filter = filter.clone();
        let address = filter.address.as_deref().map(|a| self.keys.address(a));
        let after = after.unwrap_or_default().to_owned();
        self.run(move |db, _| {
            let mut page = Vec::new();
            let live_only = filter.state == Some(State::Open);
            let visit = keep_page(&filter, limit, now_ms, &mut page);
            scan(
                &db.conn,
                address.as_deref(),
                &after,
                live_only,
                now_ms,
                visit,
            )?;
            Ok(page)
        })
        .await
    }

    async fn close(
        &self,
        id: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<Option<RelaySession>, RelayError> {
        // The bindings stay: they name a closed session now, which frees them for a new one
        // and still tells its participants that it ended.
        let (id, reason) = (id.to_owned(), reason.to_owned());
        self.run(move |db, _| update(db, &id, |s| close_session(s, &reason, now_ms).map(Some)))
            .await
    }

    async fn touch(&self, id: &str, now_ms: u64) -> Result<(), RelayError> {
        let id = id.to_owned();
        self.run(move |db, _| {
            update(db, &id, |s| {
                touch_session(s, now_ms).then(|| Some(record_end(s, None)))
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
        let (id, address) = (id.to_owned(), address.to_owned());
        self.run(move |db, _| update(db, &id, |s| opt_out(s, &address, opted_out).then_some(None)))
            .await
            .map(drop)
    }

    async fn pool(&self, pool: &[String], now_ms: u64) -> Result<Vec<PoolEntry>, RelayError> {
        let mut counts = empty_pool(pool);
        self.run(move |db, _| {
            scan(&db.conn, None, "", true, now_ms, |s| {
                count_pool(&mut counts, [&s], now_ms);
                true
            })?;
            Ok(counts)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{T0, keys, new, pool};
    use super::*;
    use crate::store::sqlite::Scratch;

    #[tokio::test]
    async fn lives_beside_the_conversation_store_in_one_file() {
        let scratch = Scratch::new("relay");
        let conversations = crate::store::SqliteStore::open(&scratch.db()).expect("store opens");
        let relay = SqliteRelay::open(&scratch.db(), keys())
            .await
            .expect("relay opens");
        let s = relay
            .create(new(&["+1A", "+1B"]), &pool(), T0)
            .await
            .expect("create");
        use crate::store::Backend as _;
        conversations
            .ping()
            .await
            .expect("the conversation store still answers");
        drop(relay);
        drop(conversations);
        // Both open again, in the order a server opens them, and the session is there.
        let _conversations = crate::store::SqliteStore::open(&scratch.db()).expect("reopen");
        let relay = SqliteRelay::open(&scratch.db(), keys())
            .await
            .expect("reopen");
        assert_eq!(relay.get(&s.id).await, Ok(Some(s)));
    }

    #[tokio::test]
    async fn a_missing_directory_is_refused() {
        let scratch = Scratch::new("relay");
        let path = scratch.0.join("nowhere").join("state.db");
        let refused = SqliteRelay::open(&path, keys()).await.map(drop);
        assert!(refused.is_err_and(|e| e.contains("does not exist")));
    }

    #[tokio::test]
    async fn rows_go_a_grace_after_the_session_ends() {
        let scratch = Scratch::new("relay");
        let relay = SqliteRelay::open(&scratch.db(), keys())
            .await
            .expect("open");
        let old = relay
            .create(new(&["+1A", "+1B"]), &pool(), T0)
            .await
            .expect("create");
        relay
            .close(&old.id, "closed", T0 + 1_000)
            .await
            .expect("close");
        let later = T0 + 1_000 + GRACE_MS;
        relay
            .create(new(&["+1C", "+1D"]), &pool(), later)
            .await
            .expect("create");
        assert_eq!(relay.get(&old.id).await, Ok(None));
        let count = |table: &str| -> i64 {
            let sql = format!("SELECT count(*) FROM {table} WHERE id = ?1");
            lock(&relay.db)
                .conn
                .query_row(&sql, [&old.id], |row| row.get(0))
                .expect("count")
        };
        assert_eq!(count("relay_bindings"), 0);
        assert_eq!(count("relay_addresses"), 0);
    }
}
