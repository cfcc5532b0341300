//! The Redis backend against a real `redis-server` (started per test on a free loopback port,
//! see `common/redis_server.rs`): the backend contract, then what only Redis has — key names
//! in a shared keyspace, outages and restarts, prefixes.
//!
//! The contract is `tests/common/store_suite.rs`, the suite every backend runs.

mod common;
#[path = "common/store_suite.rs"]
mod store_suite;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redis_server::{self, RedisServer};
use sms_sessions::session::{Pair, SessionSecret};
use sms_sessions::store::{
    Backend, Begin, Commit, ConvKey, Limits, RedisStore, Started, Store, StoreConfig, StoreError,
    StoreUrl, Write, unix_ms,
};

const LIMITS: Limits = Limits {
    ttl: Duration::from_secs(3600),
    retry_horizon: Duration::from_secs(120),
    replay_window: Duration::from_secs(24 * 3600),
    lease: Duration::from_secs(30),
};

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
    store_suite::conformance(Arc::new(connect(&server, "contract").await)).await;
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

// ---- What only Redis has -----------------------------------------------------------------

const PAIRS: [(&str, &str); 3] = [
    ("+15005550006", "+447700900123"),
    ("+15005550006", "+33612345678"),
    ("+4915112345678", "+15551234567"),
];

/// Every key in the database, with its value's bytes (a hash's field values joined).
async fn dump(url: &str) -> Vec<(String, Vec<u8>)> {
    let mut connection = redis_server::connection(url).await;
    let names = redis_server::key_names(&mut connection).await;
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
            &store_suite::sid(),
            b"count=3&step=ask",
            reply.as_bytes(),
            now,
        )
        .await;
        // Leave a lease too.
        assert!(matches!(
            begin(&store, &key, &store_suite::sid(), 9, now + 1).await,
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
    let key = store_suite::fresh_key();
    apply(&store, &key, &store_suite::sid(), b"n=1", b"r", unix_ms()).await;

    server.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let result = store
            .begin(&key, &store_suite::sid(), 2, unix_ms(), &LIMITS)
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
            .begin(&key, &store_suite::sid(), 3, unix_ms(), &LIMITS)
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
    let (key, sid, now) = (
        store_suite::fresh_key(),
        store_suite::sid(),
        store_suite::base_ms(),
    );
    apply(&a, &key, &sid, b"a=1", b"ra", now).await;
    assert_eq!(b.peek(&key).await.expect("peek"), None);
    // Neither a's marker nor a lease under a's prefix reaches b.
    assert!(matches!(
        begin(&a, &key, &store_suite::sid(), 2, now).await,
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
    let (key, sid, now) = (
        store_suite::fresh_key(),
        store_suite::sid(),
        store_suite::base_ms(),
    );
    apply(&store, &key, &sid, b"a=1", b"r", now).await;
    assert!(matches!(
        begin(&store, &key, &sid, 2, now).await,
        Begin::Seen(_)
    ));
    assert!(matches!(
        begin(&store, &key, &store_suite::sid(), 2, now).await,
        Begin::Owned(Some(_))
    ));
    store.release(&key, 2).await.expect("release");
    assert!(store.peek(&key).await.expect("peek").is_some());
    let sid = store_suite::sid();
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
