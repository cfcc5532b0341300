//! A server killed with SIGKILL in the middle of a burst loses nothing (issue 11).
//!
//! Twenty phones text the counter 25 times each, their texts in order and overlapping one
//! another's. Mid-burst the server is killed (`kill -9`: no drain, no flush). Every text that
//! got no answer is sent again, with the same MessageSid, as Twilio's retry would, to the
//! server that carries on, and the burst completes there. Exactly-once means each phone's
//! i-th text is answered "message number i", whether it was applied before the kill (its reply
//! is sent again) or after.

mod common;
mod common_spawn;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{SECRET, TOKEN, inbound_pairs, message_text, try_post_signed};
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

/// The count a counter reply states.
fn count_of(message: &str) -> usize {
    match message.strip_prefix("Hello, thanks for message number ") {
        Some(n) => n.parse().expect("a count"),
        None if message == "Hello, thanks for the new message." => 1,
        None => panic!("not a counter reply: {message}"),
    }
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
        while answered.load(Ordering::SeqCst) < KILL_AFTER {
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
        ("RUST_LOG", "warn".to_owned()),
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
