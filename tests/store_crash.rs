//! Store modes under crashes, replicas and outages, with the real binary (issue 11).
//!
//! Twenty phones text the counter 25 times each, their texts in order and overlapping one
//! another's. Mid-burst a server is killed (`kill -9`: no drain, no flush). Every text that
//! got no answer is sent again, with the same MessageSid, as Twilio's retry would, to the
//! server that carries on, and the burst completes there. Exactly-once means each phone's
//! i-th text is answered "message number i", whether it was applied before the kill (its reply
//! is sent again) or after. With Redis, two replicas share one Redis and take alternate texts;
//! and Redis itself is stopped and started again under load.

mod common;
mod common_spawn;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::redis_server::RedisServer;
use common::{SECRET, TOKEN, count_of, inbound_pairs, message_text, try_post_signed};
use common_spawn::{Server, TempDir};

const TWILIO: &str = "+14155550100";
const PHONES: usize = 20;
const TEXTS: usize = 25;
/// The kill comes once this many texts were answered (of 500).
const KILL_AFTER: usize = 150;

fn from(phone: usize) -> String {
    format!("+1415555{phone:04}")
}

fn sid(phone: usize, text: usize) -> String {
    format!("SM{phone:016x}{text:016x}")
}

/// Sends text `text` of `phone` to `url`: `Some(count)` when answered 200, `None` when the
/// exchange failed (the server died); any other status fails the test.
async fn text_once(url: &str, phone: usize, text: usize) -> Option<usize> {
    let (from, sid) = (from(phone), sid(phone, text));
    let pairs = inbound_pairs(&sid, &from, TWILIO, "burst");
    let reply = try_post_signed(url, &pairs, TOKEN).await.ok()?;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    Some(count_of(&message_text(&reply)))
}

/// Phase one: every phone texts `urls` in turn (text i to `urls[i % len]`) until a text goes
/// unanswered; returns, per phone, the first text not answered (`TEXTS + 1` if none).
async fn burst_until_failure(urls: Vec<String>, answered: Arc<AtomicUsize>) -> Vec<usize> {
    let urls = Arc::new(urls);
    let tasks: Vec<_> = (0..PHONES)
        .map(|phone| {
            let (urls, answered) = (urls.clone(), answered.clone());
            tokio::spawn(async move {
                for text in 1..=TEXTS {
                    let url = &urls[text % urls.len()];
                    match text_once(url, phone, text).await {
                        Some(count) => {
                            assert_eq!(count, text, "phone {phone}: text {text} applied once");
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        None => return text,
                    }
                }
                TEXTS + 1
            })
        })
        .collect();
    let mut first_unanswered = Vec::new();
    for task in tasks {
        first_unanswered.push(task.await.expect("no panic"));
    }
    first_unanswered
}

/// Phase two: from each phone's first unanswered text on (resent as Twilio retries it), every
/// text to `url`, each answered with its own count.
async fn finish_burst(url: &str, first_unanswered: &[usize]) {
    for (phone, first) in first_unanswered.iter().enumerate() {
        for text in *first..=TEXTS {
            let count = text_once(url, phone, text).await;
            assert_eq!(
                count,
                Some(text),
                "phone {phone}: text {text} after the kill"
            );
        }
    }
}

/// Kills `server` with SIGKILL once `answered` reaches [`KILL_AFTER`].
fn kill_when(server: Server, answered: Arc<AtomicUsize>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        // Bounded, so a burst that ends early (a bug) fails its assertions instead of hanging.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while answered.load(Ordering::SeqCst) < KILL_AFTER && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        server.kill();
    })
}

fn store_env(store: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TWILIO_AUTH_TOKEN", TOKEN.to_owned()),
        ("SMS_SESSIONS_SECRET", SECRET.to_owned()),
        ("SMS_SESSIONS_STORE", store.to_owned()),
    ]
}

fn start(env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start(&env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_mid_burst_and_restarted_on_its_file_loses_and_repeats_nothing() {
    let dir = TempDir::new("store-crash-sqlite");
    let file = format!("{}/state.db", dir.display());
    let env = store_env(&format!("sqlite:{file}"));

    let first = start(&env);
    let url = first.url("/sms");
    let answered = Arc::new(AtomicUsize::new(0));
    let killer = kill_when(first, answered.clone());
    let unanswered = burst_until_failure(vec![url], answered.clone()).await;
    killer.join().expect("killed");
    assert!(
        unanswered.iter().any(|first| *first <= TEXTS),
        "the kill came mid-burst"
    );

    let second = start(&env);
    finish_burst(&second.url("/sms"), &unanswered).await;
    second.stop();

    let db = rusqlite::Connection::open(&file).expect("open the file");
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity_check runs");
    assert_eq!(check, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_redis_behave_as_one_server_and_a_retry_on_the_other_is_the_same_reply()
{
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let env = store_env(&redis.url());
    let (a, b) = (start(&env), start(&env));
    let urls = vec![a.url("/sms"), b.url("/sms")];
    let answered = Arc::new(AtomicUsize::new(0));
    let unanswered = burst_until_failure(urls.clone(), answered).await;
    assert!(
        unanswered.iter().all(|first| *first == TEXTS + 1),
        "all answered"
    );

    // Twilio retries a text on the other replica (the same URL behind a balancer, the same
    // signature): the reply is byte for byte the first one, and nothing moves.
    let (from, sid) = (from(0), sid(0, TEXTS));
    let pairs = inbound_pairs(&sid, &from, TWILIO, "burst");
    let on_a = try_post_signed(&urls[0], &pairs, TOKEN)
        .await
        .expect("A answers");
    let on_b = try_post_signed(&urls[1], &pairs, TOKEN)
        .await
        .expect("B answers");
    assert_eq!(on_a.body, on_b.body);
    assert_eq!(count_of(&message_text(&on_b)), TEXTS);
    assert_eq!(text_once(&urls[0], 0, TEXTS + 1).await, Some(TEXTS + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_burst_leaves_the_other_to_finish_every_count_exact() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let env = store_env(&redis.url());
    let (a, b) = (start(&env), start(&env));
    let urls = vec![a.url("/sms"), b.url("/sms")];
    let answered = Arc::new(AtomicUsize::new(0));
    let killer = kill_when(a, answered.clone());
    // Texts alternate between the replicas; each phone stops at its first unanswered text.
    let unanswered = burst_until_failure(urls, answered).await;
    killer.join().expect("killed");
    assert!(
        unanswered.iter().any(|first| *first <= TEXTS),
        "the kill came mid-burst"
    );
    // A step A held when it died keeps its pair leased for at most a few seconds; B waits.
    finish_burst(&b.url("/sms"), &unanswered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_under_load_costs_503s_and_after_its_restart_every_count_is_exact() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    // Redis keeps nothing across this restart (no persistence in tests): each phone's count
    // starts again, so the texts after it are checked from 1.
    let env = store_env(&redis.url());
    let server = start(&env);
    let url = server.url("/sms");
    for phone in 0..PHONES {
        for text in 1..=3 {
            assert_eq!(text_once(&url, phone, text).await, Some(text));
        }
    }
    redis.stop();
    let started = std::time::Instant::now();
    let (down_sid, down_from) = (sid(0, 4), from(0));
    let pairs = inbound_pairs(&down_sid, &down_from, TWILIO, "down");
    let down = try_post_signed(&url, &pairs, TOKEN).await.expect("answers");
    assert_eq!(down.status, 503, "{}", String::from_utf8_lossy(&down.body));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "a 503 within the store timeout, not a hang: {:?}",
        started.elapsed()
    );
    let ready = sms_sessions::client::http::get_status(&server.url("/readyz")).await;
    assert_eq!(ready.ok(), Some(503), "not ready while Redis is down");
    let live = sms_sessions::client::http::get_status(&server.url("/healthz")).await;
    assert_eq!(live.ok(), Some(200), "still live");

    redis.restart();
    // The server reconnects by itself; the 503'd text is retried by Twilio and now applied.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ready = sms_sessions::client::http::get_status(&server.url("/readyz")).await;
        if ready.ok() == Some(200) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ready again after the restart"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let retried = try_post_signed(&url, &pairs, TOKEN).await.expect("answers");
    assert_eq!(retried.status, 200);
    assert_eq!(
        count_of(&message_text(&retried)),
        1,
        "Redis came back empty"
    );
    assert_eq!(text_once(&url, 0, 5).await, Some(2));
}

#[test]
fn a_start_with_an_unreachable_redis_exits_naming_session_store() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }; // closed again: nothing listens there
    let store = format!("redis://127.0.0.1:{port}/0");
    let output = common_spawn::run_within(
        &["serve"],
        &[
            ("TWILIO_AUTH_TOKEN", TOKEN),
            ("SMS_SESSIONS_SECRET", SECRET),
            ("SMS_SESSIONS_STORE", &store),
            ("SMS_SESSIONS_LISTEN", "127.0.0.1:0"),
        ],
        std::time::Duration::from_secs(10),
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("session.store"), "{stderr}");
}
