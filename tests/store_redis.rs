//! The Redis backend against a real `redis-server` (started per test on a free loopback port,
//! see `common/redis_server.rs`): the backend contract, then what only Redis has — key names
//! in a shared keyspace, outages and restarts, prefixes.
//!
//! To run the shared suite instead of the contract checks below (once
//! `tests/common/store_suite.rs` is here):
//! `#[path = "common/store_suite.rs"] mod store_suite;` and, in `contract`,
//! `store_suite::conformance(Arc::new(store)).await;`

#[path = "common/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_server::RedisServer;
use sms_sessions::session::{Pair, SessionSecret};
use sms_sessions::store::{
    Backend, Begin, Commit, ConvKey, Limits, RedisStore, Seen, Started, Store, StoreConfig,
    StoreError, StoreUrl, Stored, Write, unix_ms,
};

const LIMITS: Limits = Limits {
    ttl: Duration::from_secs(3600),
    retry_horizon: Duration::from_secs(120),
    replay_window: Duration::from_secs(24 * 3600),
    lease: Duration::from_secs(30),
};
const HORIZON: u64 = 120_000;
const WINDOW: u64 = 24 * 3_600_000;
const LEASE: u64 = 30_000;

const TIMEOUT: Duration = Duration::from_secs(2);

async fn connect(server: &RedisServer, prefix: &str) -> RedisStore {
    RedisStore::connect(&server.url(), prefix, TIMEOUT)
        .await
        .expect("connect to the test redis-server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    conformance(Arc::new(connect(&server, "contract").await)).await;
}

/// Every check of the backend contract (`src/store/backend.rs`), each on keys of its own and
/// at synthetic times.
async fn conformance<B: Backend>(backend: Arc<B>) {
    let b = backend.as_ref();
    empty_begin_owns_nothing(b).await;
    commit_writes_state_and_frees_the_pair(b).await;
    applied_sid_is_seen_with_its_reply_then_without_then_not(b).await;
    live_lease_of_any_token_is_busy_until_it_ends(b).await;
    stale_token_commit_is_lease_lost_and_writes_nothing(b).await;
    release_by_another_token_keeps_the_lease(b).await;
    commit_without_data_deletes_but_the_marker_stays(b).await;
    peek_takes_no_lease_and_delete_keeps_markers(b).await;
    large_and_binary_values_round_trip(b).await;
    keys_are_isolated(b).await;
    concurrent_steps_each_apply_once(backend).await;
}

fn random_key() -> ConvKey {
    ConvKey::from_bytes(rand::random())
}

fn random_sid() -> String {
    format!("SM{:032x}", rand::random::<u128>())
}

/// A synthetic "now", far from the real clock's, so only the arguments decide.
fn synthetic_now() -> u64 {
    1_000_000_000_000 + rand::random_range(0..1_000_000_000)
}

fn write<'a>(data: Option<&'a [u8]>, reply: &'a [u8]) -> Write<'a> {
    Write { data, reply }
}

async fn begin(b: &impl Backend, key: &ConvKey, sid: &str, token: u64, now: u64) -> Begin {
    b.begin(key, sid, token, now, &LIMITS).await.expect("begin")
}

async fn commit(
    b: &impl Backend,
    key: &ConvKey,
    sid: &str,
    token: u64,
    w: Write<'_>,
    now: u64,
) -> Commit {
    b.commit(key, sid, token, w, now, &LIMITS)
        .await
        .expect("commit")
}

/// Begins (expecting the pair) and commits `data` with `reply` under token 1.
async fn apply(b: &impl Backend, key: &ConvKey, sid: &str, data: &[u8], reply: &[u8], now: u64) {
    assert!(matches!(begin(b, key, sid, 1, now).await, Begin::Owned(_)));
    let done = commit(b, key, sid, 1, write(Some(data), reply), now).await;
    assert_eq!(done, Commit::Done);
}

async fn empty_begin_owns_nothing(b: &impl Backend) {
    let now = synthetic_now();
    assert_eq!(
        begin(b, &random_key(), &random_sid(), 7, now).await,
        Begin::Owned(None)
    );
}

async fn commit_writes_state_and_frees_the_pair(b: &impl Backend) {
    let (key, now) = (random_key(), synthetic_now());
    apply(b, &key, &random_sid(), b"count=1", b"<Response/>", now).await;
    // The lease went with the commit: the next text owns the pair at once, state included.
    let expected = Stored {
        data: b"count=1".to_vec(),
        touched_ms: now,
    };
    assert_eq!(
        begin(b, &key, &random_sid(), 2, now + 1).await,
        Begin::Owned(Some(expected))
    );
}

async fn applied_sid_is_seen_with_its_reply_then_without_then_not(b: &impl Backend) {
    let (key, sid, now) = (random_key(), random_sid(), synthetic_now());
    let reply = b"<Response><Message>1</Message></Response>";
    apply(b, &key, &sid, b"count=1", reply, now).await;
    let seen = |reply: Option<&[u8]>| {
        Begin::Seen(Seen {
            applied_ms: now,
            reply: reply.map(<[u8]>::to_vec),
        })
    };
    assert_eq!(begin(b, &key, &sid, 2, now).await, seen(Some(reply)));
    assert_eq!(
        begin(b, &key, &sid, 2, now + HORIZON - 1).await,
        seen(Some(reply))
    );
    assert_eq!(begin(b, &key, &sid, 2, now + HORIZON).await, seen(None));
    assert_eq!(begin(b, &key, &sid, 2, now + WINDOW - 1).await, seen(None));
    // Seen took no lease: another text owns the pair.
    assert!(matches!(
        begin(b, &key, &random_sid(), 3, now + 1).await,
        Begin::Owned(Some(_))
    ));
    // Past the replay window the MessageSid is new again (and finds the lease of token 3
    // ended long ago).
    assert!(matches!(
        begin(b, &key, &sid, 4, now + WINDOW).await,
        Begin::Owned(Some(_))
    ));
}

async fn live_lease_of_any_token_is_busy_until_it_ends(b: &impl Backend) {
    let (key, now) = (random_key(), synthetic_now());
    assert_eq!(
        begin(b, &key, &random_sid(), 1, now).await,
        Begin::Owned(None)
    );
    assert_eq!(begin(b, &key, &random_sid(), 2, now + 1).await, Begin::Busy);
    assert_eq!(
        begin(b, &key, &random_sid(), 2, now + LEASE - 1).await,
        Begin::Busy
    );
    // Busy whatever the token, the holder's own included.
    assert_eq!(begin(b, &key, &random_sid(), 1, now + 1).await, Begin::Busy);
    assert_eq!(
        begin(b, &key, &random_sid(), 2, now + LEASE).await,
        Begin::Owned(None)
    );
}

async fn stale_token_commit_is_lease_lost_and_writes_nothing(b: &impl Backend) {
    let (key, now) = (random_key(), synthetic_now());
    apply(b, &key, &random_sid(), b"count=1", b"r1", now).await;
    let (stale, fresh) = (random_sid(), random_sid());
    assert!(matches!(
        begin(b, &key, &stale, 10, now + 1).await,
        Begin::Owned(_)
    ));
    // Token 10 outlived its lease; token 11 took the pair.
    assert!(matches!(
        begin(b, &key, &fresh, 11, now + 1 + LEASE).await,
        Begin::Owned(_)
    ));
    let late = commit(
        b,
        &key,
        &stale,
        10,
        write(Some(b"count=9"), b"r9"),
        now + 2 + LEASE,
    );
    assert_eq!(late.await, Commit::LeaseLost);
    let kept = Stored {
        data: b"count=1".to_vec(),
        touched_ms: now,
    };
    assert_eq!(b.peek(&key).await.expect("peek"), Some(kept));
    // Token 11 still holds the pair and commits.
    let on_time = commit(
        b,
        &key,
        &fresh,
        11,
        write(Some(b"count=2"), b"r2"),
        now + 3 + LEASE,
    );
    assert_eq!(on_time.await, Commit::Done);
    // No marker for the lost commit: its text is new.
    assert!(matches!(
        begin(b, &key, &stale, 12, now + 4 + LEASE).await,
        Begin::Owned(Some(_))
    ));
    // A lease that ended (nobody took it) cannot commit either.
    let lapsed = commit(
        b,
        &key,
        &stale,
        12,
        write(Some(b"count=9"), b"r9"),
        now + 4 + 2 * LEASE,
    );
    assert_eq!(lapsed.await, Commit::LeaseLost);
    assert_eq!(
        b.peek(&key).await.expect("peek").map(|s| s.data),
        Some(b"count=2".to_vec())
    );
}

async fn release_by_another_token_keeps_the_lease(b: &impl Backend) {
    let (key, now) = (random_key(), synthetic_now());
    assert!(matches!(
        begin(b, &key, &random_sid(), 5, now).await,
        Begin::Owned(_)
    ));
    b.release(&key, 6).await.expect("release");
    assert_eq!(begin(b, &key, &random_sid(), 7, now + 1).await, Begin::Busy);
    b.release(&key, 5).await.expect("release");
    assert!(matches!(
        begin(b, &key, &random_sid(), 7, now + 2).await,
        Begin::Owned(_)
    ));
    // Releasing a pair nobody holds, or twice, is harmless.
    b.release(&random_key(), 1).await.expect("release");
}

async fn commit_without_data_deletes_but_the_marker_stays(b: &impl Backend) {
    let (key, now) = (random_key(), synthetic_now());
    apply(b, &key, &random_sid(), b"count=1", b"r1", now).await;
    let sid = random_sid();
    assert!(matches!(
        begin(b, &key, &sid, 2, now + 1).await,
        Begin::Owned(Some(_))
    ));
    let done = commit(b, &key, &sid, 2, write(None, b"bye"), now + 2).await;
    assert_eq!(done, Commit::Done);
    assert_eq!(b.peek(&key).await.expect("peek"), None);
    let seen = Seen {
        applied_ms: now + 2,
        reply: Some(b"bye".to_vec()),
    };
    assert_eq!(begin(b, &key, &sid, 3, now + 3).await, Begin::Seen(seen));
    assert_eq!(
        begin(b, &key, &random_sid(), 3, now + 3).await,
        Begin::Owned(None)
    );
}

async fn peek_takes_no_lease_and_delete_keeps_markers(b: &impl Backend) {
    let (key, sid, now) = (random_key(), random_sid(), synthetic_now());
    assert_eq!(b.peek(&key).await.expect("peek"), None);
    apply(b, &key, &sid, b"a=1", b"r", now).await;
    let stored = Stored {
        data: b"a=1".to_vec(),
        touched_ms: now,
    };
    assert_eq!(b.peek(&key).await.expect("peek"), Some(stored.clone()));
    assert_eq!(
        begin(b, &key, &random_sid(), 2, now + 1).await,
        Begin::Owned(Some(stored))
    );
    b.release(&key, 2).await.expect("release");
    b.delete(&key).await.expect("delete");
    assert_eq!(b.peek(&key).await.expect("peek"), None);
    assert!(matches!(
        begin(b, &key, &sid, 3, now + 2).await,
        Begin::Seen(_)
    ));
    b.delete(&random_key()).await.expect("deleting nothing");
    b.ping().await.expect("ping");
}

async fn large_and_binary_values_round_trip(b: &impl Backend) {
    let every_byte: Vec<u8> = (0..=255).collect();
    let mut large: Vec<u8> = (0..64 * 1024).map(|_| rand::random()).collect();
    large.extend_from_slice(&every_byte);
    let reply: Vec<u8> = every_byte.iter().rev().copied().chain(*b"\r\n\0").collect();
    for data in [large, every_byte, Vec::new()] {
        let (key, sid, now) = (random_key(), random_sid(), synthetic_now());
        apply(b, &key, &sid, &data, &reply, now).await;
        let stored = Stored {
            data: data.clone(),
            touched_ms: now,
        };
        assert_eq!(b.peek(&key).await.expect("peek"), Some(stored.clone()));
        let seen = Seen {
            applied_ms: now,
            reply: Some(reply.clone()),
        };
        assert_eq!(begin(b, &key, &sid, 2, now + 1).await, Begin::Seen(seen));
        assert_eq!(
            begin(b, &key, &random_sid(), 2, now + 1).await,
            Begin::Owned(Some(stored))
        );
    }
    // An empty reply is kept as empty, not as none.
    let (key, sid, now) = (random_key(), random_sid(), synthetic_now());
    apply(b, &key, &sid, b"x=1", b"", now).await;
    let seen = Seen {
        applied_ms: now,
        reply: Some(Vec::new()),
    };
    assert_eq!(begin(b, &key, &sid, 2, now).await, Begin::Seen(seen));
}

async fn keys_are_isolated(b: &impl Backend) {
    let (one, two, sid, now) = (random_key(), random_key(), random_sid(), synthetic_now());
    apply(b, &one, &sid, b"k=1", b"r", now).await;
    // The same MessageSid on another pair is another text; a lease on one pair blocks no other.
    assert_eq!(begin(b, &two, &sid, 2, now).await, Begin::Owned(None));
    assert!(matches!(
        begin(b, &one, &random_sid(), 3, now).await,
        Begin::Owned(Some(_))
    ));
    b.delete(&two).await.expect("delete");
    assert!(b.peek(&one).await.expect("peek").is_some());
}

/// 64 steps of one pair at once, each retrying while Busy: each applies once, in some order.
async fn concurrent_steps_each_apply_once<B: Backend>(backend: Arc<B>) {
    let key = random_key();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let backend = backend.clone();
            tokio::spawn(async move { increment(backend.as_ref(), &key).await })
        })
        .collect();
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.expect("task"));
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=64).collect::<Vec<u32>>());
    let stored = backend.peek(&key).await.expect("peek").expect("stored");
    assert_eq!(stored.data, b"count=64");
}

/// One text of the counter flow with real time: take the pair, add one, commit.
async fn increment(b: &impl Backend, key: &ConvKey) -> u32 {
    let (sid, token) = (random_sid(), rand::random());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stored = match b.begin(key, &sid, token, unix_ms(), &LIMITS).await {
            Ok(Begin::Owned(stored)) => stored,
            Ok(Begin::Busy) => {
                assert!(Instant::now() < deadline, "busy for 20 s");
                let pause = Duration::from_micros(rand::random_range(200..2_000));
                tokio::time::sleep(pause).await;
                continue;
            }
            other => panic!("begin: {other:?}"),
        };
        let count = stored.map_or(0, |s| {
            let text = String::from_utf8(s.data).expect("UTF-8");
            text.strip_prefix("count=")
                .and_then(|n| n.parse::<u32>().ok())
                .expect("count=N")
        }) + 1;
        let data = format!("count={count}");
        let reply = count.to_string();
        let w = write(Some(data.as_bytes()), reply.as_bytes());
        let done = b.commit(key, &sid, token, w, unix_ms(), &LIMITS).await;
        assert_eq!(done.expect("commit"), Commit::Done);
        return count;
    }
}

// ---- What only Redis has -----------------------------------------------------------------

const PAIRS: [(&str, &str); 3] = [
    ("+15005550006", "+447700900123"),
    ("+15005550006", "+33612345678"),
    ("+4915112345678", "+15551234567"),
];

/// Every key in the database, with its value's bytes (a hash's field values joined).
async fn dump(url: &str) -> Vec<(String, Vec<u8>)> {
    let client = redis::Client::open(url).expect("url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let mut names: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await
            .expect("SCAN");
        names.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let mut all = Vec::new();
    for name in names {
        let kind: String = redis::cmd("TYPE")
            .arg(&name)
            .query_async(&mut connection)
            .await
            .expect("TYPE");
        let value: Vec<u8> = match kind.as_str() {
            "string" => {
                redis::cmd("GET")
                    .arg(&name)
                    .query_async(&mut connection)
                    .await
            }
            "hash" => redis::cmd("HVALS")
                .arg(&name)
                .query_async::<Vec<Vec<u8>>>(&mut connection)
                .await
                .map(|values| values.concat()),
            other => panic!("{name}: a {other}, which this store never writes"),
        }
        .expect("read a value");
        all.push((name, value));
    }
    all
}

#[tokio::test]
async fn keys_and_values_hold_no_phone_numbers() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = connect(&server, "scan-test").await;
    let secret = SessionSecret::new(*b"a-test-secret-of-at-least-32-bytes!!").expect("long");
    let now = unix_ms();
    for (n, (to, from)) in PAIRS.into_iter().enumerate() {
        let key = ConvKey::derive(&secret, Pair { to, from });
        let reply = format!("<Response><Message>{n}</Message></Response>");
        apply(
            &store,
            &key,
            &random_sid(),
            b"count=3&step=ask",
            reply.as_bytes(),
            now,
        )
        .await;
        // Leave a lease too.
        assert!(matches!(
            begin(&store, &key, &random_sid(), 9, now + 1).await,
            Begin::Owned(Some(_))
        ));
    }
    let all = dump(&server.url()).await;
    assert_eq!(
        all.len(),
        PAIRS.len() * 4,
        "c, l, m and r per pair: {all:?}"
    );
    let name = regex::Regex::new(
        r"^scan-test:\{[A-Za-z0-9_-]{22}\}:(c|l|m:SM[0-9a-f]{32}|r:SM[0-9a-f]{32})$",
    )
    .expect("regex");
    for (key, value) in &all {
        assert!(name.is_match(key), "unexpected key name {key}");
        for (to, from) in PAIRS {
            for number in [to, from] {
                let digits = number.trim_start_matches('+');
                for run in digits.as_bytes().windows(5) {
                    assert!(
                        !key.as_bytes().windows(5).any(|w| w == run),
                        "{key} holds digits of {number}"
                    );
                    assert!(
                        !value.windows(5).any(|w| w == run),
                        "the value of {key} holds digits of {number}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn an_outage_fails_fast_and_a_restart_heals_without_reconnecting_by_hand() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let timeout = Duration::from_millis(500);
    let store = RedisStore::connect(&server.url(), "outage", timeout)
        .await
        .expect("connect");
    let key = random_key();
    apply(&store, &key, &random_sid(), b"n=1", b"r", unix_ms()).await;

    server.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let result = store
            .begin(&key, &random_sid(), 2, unix_ms(), &LIMITS)
            .await;
        let took = started.elapsed();
        assert!(
            matches!(
                result,
                Err(StoreError::Unavailable(_) | StoreError::Timeout(_))
            ),
            "{result:?}"
        );
        assert!(took < timeout + Duration::from_millis(200), "took {took:?}");
    }
    assert!(store.ping().await.is_err());

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    let healed = loop {
        match store
            .begin(&key, &random_sid(), 3, unix_ms(), &LIMITS)
            .await
        {
            Ok(begin) => break begin,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "still failing 5 s after the restart: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // No persistence: the restarted Redis starts empty.
    assert_eq!(healed, Begin::Owned(None));
    store.ping().await.expect("ping after the restart");
}

#[tokio::test]
async fn prefixes_keep_deployments_apart() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b) = (
        connect(&server, "deploy-a").await,
        connect(&server, "deploy-b").await,
    );
    let (key, sid, now) = (random_key(), random_sid(), synthetic_now());
    apply(&a, &key, &sid, b"a=1", b"ra", now).await;
    assert_eq!(b.peek(&key).await.expect("peek"), None);
    // Neither a's marker nor a lease under a's prefix reaches b.
    assert!(matches!(
        begin(&a, &key, &random_sid(), 2, now).await,
        Begin::Owned(Some(_))
    ));
    assert_eq!(begin(&b, &key, &sid, 3, now).await, Begin::Owned(None));
    assert_eq!(
        commit(&b, &key, &sid, 3, write(Some(b"b=1"), b"rb"), now).await,
        Commit::Done
    );
    b.delete(&key).await.expect("delete");
    assert_eq!(
        a.peek(&key).await.expect("peek").map(|s| s.data),
        Some(b"a=1".to_vec())
    );
    let all = dump(&server.url()).await;
    assert!(
        all.iter()
            .all(|(k, _)| k.starts_with("deploy-a:") || k.starts_with("deploy-b:"))
    );
}

#[tokio::test]
async fn connecting_fails_fast_and_never_shows_the_password() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("bound").port()
    };
    let timeout = Duration::from_millis(500);
    for url in [
        format!("redis://:hunter2-password@127.0.0.1:{port}"),
        format!("redis://someone:hunter2-password@127.0.0.1:{port}/3"),
    ] {
        let started = Instant::now();
        let error = match RedisStore::connect(&url, "p", timeout).await {
            Ok(_) => panic!("nothing listens on {port}"),
            Err(error) => error,
        };
        assert!(started.elapsed() < timeout + Duration::from_millis(200));
        let text = error.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            matches!(error, StoreError::Unavailable(_) | StoreError::Timeout(_)),
            "{error:?}"
        );
    }
    let refused = RedisStore::connect("redis://127.0.0.1:1/0", "a{}b", timeout).await;
    assert!(matches!(refused, Err(StoreError::Unavailable(why)) if why.contains("store.prefix")));
}

#[tokio::test]
async fn rediss_urls_speak_tls() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // A plain-text server: the TLS handshake must fail as an error (not a panic, not a hang).
    let url = format!("rediss://127.0.0.1:{}", server.port());
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let result = RedisStore::connect(&url, "tls", timeout).await;
    assert!(result.is_err(), "a plain-text server accepted TLS");
    assert!(started.elapsed() < timeout + Duration::from_millis(200));
}

#[tokio::test]
async fn a_wrong_password_is_reported_without_it() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = format!("redis://:hunter2-password@127.0.0.1:{}", server.port());
    let error = match RedisStore::connect(&url, "p", TIMEOUT).await {
        Ok(_) => panic!("the test server has no password set"),
        Err(error) => error.to_string(),
    };
    assert!(!error.contains("hunter2"), "{error}");
}

#[tokio::test]
async fn the_store_front_runs_steps_over_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let config = StoreConfig {
        url: StoreUrl::parse(&server.url()).expect("a Redis URL"),
        prefix: "front".into(),
        ..StoreConfig::default()
    };
    let secret = SessionSecret::new(*b"a-test-secret-of-at-least-32-bytes!!").expect("long");
    let store = Store::open(&config, vec![secret], LIMITS.ttl, LIMITS.lease, None)
        .await
        .expect("open")
        .expect("a server-side store");
    let pair = Pair {
        to: "+15005550006",
        from: "+447700900123",
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let Started::Step(mut step) = store.begin(pair, "SM1", deadline).await.expect("begin") else {
        panic!("a new text is a step");
    };
    step.data.set("count", 1);
    step.commit(b"<Response>1</Response>")
        .await
        .expect("commit");
    match store.begin(pair, "SM1", deadline).await.expect("begin") {
        Started::Seen(seen) => {
            assert_eq!(seen.reply.as_deref(), Some(&b"<Response>1</Response>"[..]))
        }
        Started::Step(_) => panic!("Twilio's retry of SM1 must be answered from its marker"),
    }
    let Started::Step(step) = store.begin(pair, "SM2", deadline).await.expect("begin") else {
        panic!("SM2 is new");
    };
    assert_eq!(step.data.get("count"), Some("1"));
    drop(step); // released without a commit: the pair is free again at once
    let again = tokio::time::timeout(Duration::from_secs(2), store.begin(pair, "SM3", deadline));
    assert!(matches!(again.await, Ok(Ok(Started::Step(_)))));
    store.ready().await.expect("ready");
}

/// The least-privilege user the module docs of `src/store/redis.rs` give is enough for every
/// operation, a script Redis lacks (NOSCRIPT, then SCRIPT LOAD) included.
#[tokio::test]
async fn the_documented_acl_user_suffices() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let admin = redis::Client::open(server.url()).expect("url");
    let mut admin = admin
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let rules = "on >acl-test-password ~acl-test:* resetchannels -@all +evalsha +script|load \
                 +get +set +del +hset +hmget +pexpire +ping";
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("sms")
        .arg(rules.split_whitespace().collect::<Vec<_>>())
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER");
    let url = format!("redis://sms:acl-test-password@127.0.0.1:{}", server.port());
    let store = RedisStore::connect(&url, "acl-test", TIMEOUT)
        .await
        .expect("connect as the limited user");
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut admin)
        .await
        .expect("SCRIPT FLUSH");
    let (key, sid, now) = (random_key(), random_sid(), synthetic_now());
    apply(&store, &key, &sid, b"a=1", b"r", now).await;
    assert!(matches!(
        begin(&store, &key, &sid, 2, now).await,
        Begin::Seen(_)
    ));
    assert!(matches!(
        begin(&store, &key, &random_sid(), 2, now).await,
        Begin::Owned(Some(_))
    ));
    store.release(&key, 2).await.expect("release");
    assert!(store.peek(&key).await.expect("peek").is_some());
    let sid = random_sid();
    assert!(matches!(
        begin(&store, &key, &sid, 3, now).await,
        Begin::Owned(Some(_))
    ));
    let deleted = commit(&store, &key, &sid, 3, write(None, b"r"), now).await;
    assert_eq!(deleted, Commit::Done);
    store.delete(&key).await.expect("delete");
    store.ping().await.expect("ping");
    // And the user can do nothing else.
    let denied = redis::Client::open(url.as_str()).expect("url");
    let mut denied = denied
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let keys: redis::RedisResult<Vec<String>> =
        redis::cmd("KEYS").arg("*").query_async(&mut denied).await;
    assert!(keys.is_err(), "KEYS is not among the documented commands");
}
