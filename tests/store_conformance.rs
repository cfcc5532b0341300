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

/// Steps (a begin and a commit each, as one webhook makes) per second through the SQLite
/// store, with 1, 16 and 256 in flight: a timing to read, not a test.
#[tokio::test(flavor = "current_thread")]
#[ignore = "a timing: cargo test --release --test store_conformance -- --ignored --nocapture"]
async fn sqlite_steps_per_second() {
    const STEPS: usize = 40_000;
    let dir = TempDir::new("sqlite-throughput");
    let store = sqlite(&dir.0.join("state.db"));
    let keys: Arc<Vec<_>> = Arc::new((0..1000).map(|_| fresh_key()).collect());
    for in_flight in [1, 16, 256] {
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..in_flight)
            .map(|task| {
                let (store, keys) = (store.clone(), keys.clone());
                tokio::spawn(async move {
                    for n in (task..STEPS).step_by(in_flight) {
                        one_step(&*store, &keys[n % keys.len()]).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("steps");
        }
        let rate = STEPS as f64 / started.elapsed().as_secs_f64();
        eprintln!("sqlite: {in_flight:>3} in flight: {rate:>8.0} steps/s");
    }
}

/// A webhook's store calls: begin (retrying while another task has the key) and commit.
async fn one_step<B: Backend>(store: &B, key: &sms_sessions::store::ConvKey) {
    let (sms, token) = (sid(), rand::random());
    loop {
        let now = sms_sessions::store::unix_ms();
        match store
            .begin(key, &sms, token, now, &LIMITS)
            .await
            .expect("begin")
        {
            Begin::Busy => tokio::task::yield_now().await,
            Begin::Owned(_) => {
                let write = Write {
                    data: Some(b"count=1&flow=survey&step=3"),
                    reply: b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>Thanks!</Message></Response>",
                };
                store
                    .commit(key, &sms, token, write, now, &LIMITS)
                    .await
                    .expect("commit");
                return;
            }
            Begin::Seen(_) => panic!("a fresh sid was seen"),
        }
    }
}
