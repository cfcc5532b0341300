//! Server-side state through the real server (issue 11): every text of a pair applied once
//! and one at a time, retries answered with the same bytes, replays with nothing, a cookie
//! from cookie mode imported once. Each test runs against every in-process store mode.

mod common;
mod common_spawn;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{
    SECRET, TOKEN, TestServer, count_of, inbound_pairs, message_text, post_signed, set_cookie,
    test_config, text,
};
use common_spawn::TempDir;
use sms_sessions::client::http::{Reply, get_status};
use sms_sessions::config::Config;
use sms_sessions::store::StoreUrl;
use tokio::sync::{Barrier, Semaphore};

const TWILIO: &str = "+14155550100";
const ME: &str = "+14155550199";

/// The store modes that run in this process: memory, and SQLite in `dir`.
fn modes(dir: &TempDir) -> Vec<(&'static str, String)> {
    vec![
        ("memory", "memory".to_owned()),
        ("sqlite", format!("sqlite:{}/state.db", dir.display())),
    ]
}

fn config(store: &str) -> Config {
    test_config(&[("SMS_SESSIONS_STORE", store)])
}

/// The counter's reply to its `n`-th text.
fn counted(n: usize) -> String {
    match n {
        1 => "Hello, thanks for the new message.".into(),
        n => format!("Hello, thanks for message number {n}"),
    }
}

async fn send(server: &TestServer, from: &str, sid: &str, body: &str) -> Reply {
    send_with(server, from, sid, body, &[]).await
}

async fn send_with(
    server: &TestServer,
    from: &str,
    sid: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let url = server.url("/sms");
    post_signed(
        &url,
        &url,
        &inbound_pairs(sid, from, TWILIO, body),
        TOKEN,
        headers,
    )
    .await
}

fn sid(n: usize) -> String {
    format!("SM{n:032x}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_overlapping_texts_of_one_pair_are_all_applied_one_after_the_other() {
    let dir = TempDir::new("store-overlap");
    for (mode, store) in modes(&dir) {
        let server = Arc::new(TestServer::with_config(config(&store)).await);
        let barrier = Arc::new(Barrier::new(64));
        let tasks: Vec<_> = (1..=64)
            .map(|i| {
                let (server, barrier) = (server.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    send(&server, ME, &sid(i), "hi").await
                })
            })
            .collect();
        let mut counts = Vec::new();
        for task in tasks {
            let reply = task.await.expect("no panic");
            assert_eq!(reply.status, 200, "{mode}: {}", text(&reply));
            assert_eq!(
                set_cookie(&reply),
                None,
                "{mode}: no cookie in a store mode"
            );
            counts.push(count_of(&message_text(&reply)));
        }
        counts.sort_unstable();
        assert_eq!(
            counts,
            (1..=64).collect::<Vec<_>>(),
            "{mode}: replies 1..=64, each once"
        );
        let next = send(&server, ME, &sid(65), "after").await;
        assert_eq!(message_text(&next), counted(65), "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_pairs_of_five_texts_each_end_at_five() {
    let dir = TempDir::new("store-pairs");
    for (mode, store) in modes(&dir) {
        let server = Arc::new(TestServer::with_config(config(&store)).await);
        let in_flight = Arc::new(Semaphore::new(64));
        let mut tasks = Vec::new();
        // Texts of a pair go out in order but overlap with every other pair's.
        for round in 1..=5 {
            for phone in 0..1_000 {
                let (server, in_flight) = (server.clone(), in_flight.clone());
                tasks.push(tokio::spawn(async move {
                    let _slot = in_flight.acquire().await.expect("open");
                    let from = format!("+1415555{phone:04}");
                    let reply = send(&server, &from, &sid(round * 10_000 + phone), "x").await;
                    (phone, reply.status, message_text(&reply))
                }));
            }
        }
        let mut highest = BTreeMap::new();
        for task in tasks {
            let (phone, status, message) = task.await.expect("no panic");
            assert_eq!(status, 200, "{mode}: {message}");
            let top = highest.entry(phone).or_insert(0);
            *top = (*top).max(count_of(&message));
        }
        assert_eq!(highest.len(), 1_000, "{mode}");
        assert!(
            highest.values().all(|n| *n == 5),
            "{mode}: every pair counted five"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_message_sid_gets_the_same_bytes_and_changes_nothing() {
    let dir = TempDir::new("store-retry");
    for (mode, store) in modes(&dir) {
        let server = TestServer::with_config(config(&store)).await;
        send(&server, ME, &sid(1), "one").await;
        let first = send(&server, ME, &sid(2), "two").await;
        let retry = send(&server, ME, &sid(2), "two").await;
        assert_eq!(first.status, 200, "{mode}");
        assert_eq!(retry.status, 200, "{mode}");
        assert_eq!(retry.body, first.body, "{mode}: byte-identical reply");
        assert_eq!(
            retry.headers["content-type"], first.headers["content-type"],
            "{mode}"
        );
        assert_eq!(message_text(&first), counted(2), "{mode}");
        let next = send(&server, ME, &sid(3), "three").await;
        assert_eq!(
            message_text(&next),
            counted(3),
            "{mode}: the retry changed nothing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_after_the_retry_horizon_gets_an_empty_response_and_changes_nothing() {
    let dir = TempDir::new("store-replay");
    for (mode, store) in modes(&dir) {
        let mut config = config(&store);
        // Below what validation allows (15 s), so the test need not wait that long.
        config.store.retry_horizon = Duration::from_millis(300);
        let server = TestServer::with_config(config).await;
        let first = send(&server, ME, &sid(1), "one").await;
        assert_eq!(message_text(&first), counted(1), "{mode}");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let replay = send(&server, ME, &sid(1), "one").await;
        assert_eq!(replay.status, 200, "{mode}");
        assert_eq!(
            text(&replay),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response />",
            "{mode}"
        );
        let next = send(&server, ME, &sid(2), "two").await;
        assert_eq!(
            message_text(&next),
            counted(2),
            "{mode}: the replay changed nothing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_from_cookie_mode_is_imported_once_and_cleared() {
    let dir = TempDir::new("store-import");
    for (mode, store) in modes(&dir) {
        let cookie_mode = TestServer::start(&[]).await;
        let mut cookie = None;
        for n in 1..=3 {
            let headers: Vec<(&str, &str)> = cookie
                .iter()
                .map(|c: &String| ("cookie", c.as_str()))
                .collect();
            let reply = send_with(&cookie_mode, ME, &sid(n), "x", &headers).await;
            cookie = set_cookie(&reply);
        }
        let cookie = cookie.expect("a cookie after three texts");

        let server = TestServer::with_config(config(&store)).await;
        let reply = send_with(&server, ME, &sid(4), "x", &[("cookie", &cookie)]).await;
        assert_eq!(
            message_text(&reply),
            counted(4),
            "{mode}: the cookie's count went on"
        );
        assert_eq!(
            reply.headers["set-cookie"], "sms_session=; Max-Age=0; Path=/; HttpOnly",
            "{mode}: the cookie is cleared"
        );
        let next = send(&server, ME, &sid(5), "x").await;
        assert_eq!(
            message_text(&next),
            counted(5),
            "{mode}: resumed from the store"
        );
        // A stale copy of the cookie is not imported over the stored conversation.
        let stale = send_with(&server, ME, &sid(6), "x", &[("cookie", &cookie)]).await;
        assert_eq!(message_text(&stale), counted(6), "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_while_the_store_does_and_healthz_stays_liveness() {
    let dir = TempDir::new("store-ready");
    for (mode, store) in modes(&dir) {
        let server = TestServer::with_config(config(&store)).await;
        let ready = get_status(&server.url("/readyz")).await.expect("answers");
        assert_eq!(ready, 200, "{mode}");
        let live = get_status(&server.url("/healthz")).await.expect("answers");
        assert_eq!(live, 200, "{mode}");
    }
    let cookie_mode = TestServer::start(&[]).await;
    assert_eq!(
        get_status(&cookie_mode.url("/readyz")).await.ok(),
        Some(200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_stored_under_a_previous_secret_is_found_after_rotation() {
    let dir = TempDir::new("store-rotation");
    let store = format!("sqlite:{}/state.db", dir.display());
    let old = "old-session-secret-0123456789abcdef-old";
    {
        let server = TestServer::with_config(test_config(&[
            ("SMS_SESSIONS_STORE", store.as_str()),
            ("SMS_SESSIONS_SECRET", old),
        ]))
        .await;
        send(&server, ME, &sid(1), "x").await;
        send(&server, ME, &sid(2), "x").await;
        server.stop().await.expect("stops");
    }
    let server = TestServer::with_config(test_config(&[
        ("SMS_SESSIONS_STORE", store.as_str()),
        ("SMS_SESSIONS_SECRET", SECRET),
        ("SMS_SESSIONS_SECRET_PREVIOUS", old),
    ]))
    .await;
    let reply = send(&server, ME, &sid(3), "x").await;
    assert_eq!(message_text(&reply), counted(3), "found under the old key");
    let next = send(&server, ME, &sid(4), "x").await;
    assert_eq!(message_text(&next), counted(4), "and moved to the new one");
}

#[test]
fn a_durable_store_without_a_session_secret_is_refused_naming_the_key() {
    let error = Config::load(
        None,
        [
            ("TWILIO_AUTH_TOKEN", TOKEN),
            ("SMS_SESSIONS_STORE", "sqlite:/tmp/x.db"),
        ]
        .as_slice(),
    )
    .expect_err("refused");
    let error = error.to_string();
    assert!(error.contains("session.secret"), "{error}");
    let bad = Config::load(
        None,
        [
            ("TWILIO_AUTH_TOKEN", TOKEN),
            ("SMS_SESSIONS_STORE", "postgres://db/x"),
        ]
        .as_slice(),
    )
    .expect_err("refused");
    assert!(bad.to_string().contains("session.store"), "{bad}");
    assert_eq!(
        StoreUrl::parse("sqlite:/var/lib/x.db"),
        Ok(StoreUrl::Sqlite("/var/lib/x.db".into()))
    );
}
