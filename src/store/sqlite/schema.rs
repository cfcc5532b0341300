//! The file's layout and its settings, applied once when the store opens.
//!
//! Three tables, all `WITHOUT ROWID` (every lookup is by the primary key, so the rows live in
//! the key's B-tree instead of a second one): `conversation` (the state of a pair), `marker`
//! (one per applied MessageSid, with its reply while within the retry horizon) and `lease`
//! (the step that holds a pair). `PRAGMA user_version` numbers the layout, so a file written
//! by a newer release is refused rather than misread.

use rusqlite::{Connection, TransactionBehavior};

/// The layout this release writes (`PRAGMA user_version`); 0 is a file not set up yet.
pub const VERSION: i64 = 1;

/// `busy_timeout`: how long a statement waits for a lock another connection holds (only an
/// operator's `sqlite3` shell can hold one: the lock file keeps out other servers).
const BUSY_TIMEOUT_MS: i64 = 5000;

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS conversation (
    key BLOB PRIMARY KEY,
    data BLOB NOT NULL,
    touched_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS marker (
    key BLOB,
    sid TEXT,
    applied_ms INTEGER NOT NULL,
    reply BLOB,
    PRIMARY KEY (key, sid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS marker_applied ON marker (applied_ms);
";

/// The tables (and index) above; anything else in a file means it is not ours.
/// The relay's tables (`crate::relay::store::sqlite`) share the file; either may be made first.
const OURS: [&str; 7] = [
    "conversation",
    "marker",
    "marker_applied",
    "lease",
    "relay_sessions",
    "relay_bindings",
    "relay_addresses",
];

/// Sets the connection up and the file's layout; leases left by a previous process are
/// cleared (the lock file guarantees that process is gone, so its steps are too).
pub fn prepare(conn: &mut Connection) -> Result<(), String> {
    settings(conn)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| format!("cannot write: {e}"))?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| format!("cannot read: {e}"))?;
    if version > VERSION {
        return Err(format!(
            "the file's layout is version {version}, written by a newer sms-sessions; \
             this one understands version {VERSION} at most (upgrade, or point \
             session.store at another file)"
        ));
    }
    if version == 0 {
        refuse_foreign(&tx)?;
    }
    let setup = || -> rusqlite::Result<()> {
        tx.execute_batch(TABLES)?;
        tx.pragma_update(None, "user_version", VERSION)?;
        // Leases lived in the file before they moved to the store's thread.
        tx.execute("DROP TABLE IF EXISTS lease", [])?;
        Ok(())
    };
    setup().map_err(|e| format!("cannot create the tables: {e}"))?;
    tx.commit().map_err(|e| format!("cannot write: {e}"))
}

/// WAL with `synchronous=NORMAL`: one `write()` per transaction and no fsync, yet a
/// transaction that committed survives the process being killed (see the module docs of
/// [`super`]).
fn settings(conn: &Connection) -> Result<(), String> {
    let failed = |e: rusqlite::Error| format!("cannot set up SQLite: {e}");
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(failed)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!(
            "journal_mode stays {mode:?}, not WAL (a file system without shared memory?)"
        ));
    }
    let rest = || -> rusqlite::Result<()> {
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "busy_timeout", BUSY_TIMEOUT_MS)?;
        conn.pragma_update(None, "foreign_keys", "OFF")
    };
    rest().map_err(failed)?;
    // Every statement the store runs, prepared once (a dozen; the default keeps 16).
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// A file with `user_version` 0 but tables of its own belongs to something else: refuse it
/// rather than add ours next to them.
fn refuse_foreign(conn: &Connection) -> Result<(), String> {
    let names = || -> rusqlite::Result<Vec<String>> {
        let mut stmt =
            conn.prepare("SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        rows.collect()
    };
    let names = names().map_err(|e| format!("cannot read: {e}"))?;
    let foreign: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|name| !OURS.contains(name))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the file holds tables that are not sms-sessions's ({}); point session.store at a \
         file of its own",
        foreign.join(", ")
    ))
}
