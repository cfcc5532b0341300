//! Every server-side backend through the one conformance suite, and what only SQLite
//! promises: its file outlives the store, intact.

#[path = "common/store_suite.rs"]
mod store_suite;

mod common_spawn;

use std::path::Path;
use std::sync::Arc;

use common_spawn::TempDir;
use sms_sessions::store::{Backend, Begin, MemoryStore, SqliteStore, Stored, Write};
use store_suite::{LIMITS, base_ms, fresh_key, sid};

fn sqlite(path: &Path) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(path).expect("open the SQLite store"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_conforms() {
    store_suite::conformance(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_sweeps_what_expired() {
    store_suite::sweep_removes_expired(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_conforms() {
    let dir = TempDir::new("sqlite-conforms");
    store_suite::conformance(sqlite(&dir.0.join("state.db"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sweeps_what_expired() {
    let dir = TempDir::new("sqlite-sweeps");
    store_suite::sweep_removes_expired(sqlite(&dir.0.join("state.db"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_state_and_markers_survive_a_reopen() {
    let dir = TempDir::new("sqlite-reopen");
    let path = dir.0.join("state.db");
    let (key, now, sms, token) = (fresh_key(), base_ms(), sid(), rand::random());
    let store = sqlite(&path);
    assert!(matches!(
        store.begin(&key, &sms, token, now, &LIMITS).await,
        Ok(Begin::Owned(None))
    ));
    let write = Write {
        data: Some(b"count=7"),
        reply: b"<Response/>",
    };
    let done = store.commit(&key, &sms, token, write, now, &LIMITS).await;
    assert!(
        matches!(done, Ok(sms_sessions::store::Commit::Done)),
        "{done:?}"
    );
    drop(store);

    let store = sqlite(&path);
    let stored = Stored {
        data: b"count=7".to_vec(),
        touched_ms: now,
    };
    assert_eq!(store.peek(&key).await.expect("peek"), Some(stored));
    let again = store
        .begin(&key, &sms, rand::random(), now + 1, &LIMITS)
        .await;
    assert!(
        matches!(&again, Ok(Begin::Seen(seen)) if seen.reply.as_deref() == Some(b"<Response/>")),
        "the marker survives the reopen: {again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_is_intact_after_concurrent_steps() {
    let dir = TempDir::new("sqlite-integrity");
    let path = dir.0.join("state.db");
    let store = sqlite(&path);
    store_suite::concurrent_steps_count_exactly(store.clone()).await;
    drop(store); // the last Arc: closes the database and ends its thread

    let conn = rusqlite::Connection::open(&path).expect("open the file directly");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    let markers: i64 = conn
        .query_row("SELECT count(*) FROM marker", [], |row| row.get(0))
        .expect("count markers");
    assert_eq!(markers, 64, "one marker per step");
}
