//! Overlapping webhooks of one (To, From) pair (issue 6).
//!
//! The session lives in the cookie Twilio sends back, so the server holds no per-pair state
//! and takes no lock: each webhook is answered from the cookie it carried. When a phone's
//! texts overlap, Twilio sends the same (possibly stale) cookie with each, every one gets a
//! valid reply computed from that cookie, and Twilio keeps whichever `Set-Cookie` it
//! processes last — so N overlapping texts advance a conversation by one step, not N
//! (last writer wins; see SECURITY.md, "Overlapping webhooks"). These tests pin exactly that,
//! and that overlap never costs a 5xx or a panic.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    Phone, SECRET, TOKEN, TestServer, inbound_pairs, message_text, post_signed, set_cookie, text,
};
use sms_sessions::routes::sms::unix_now;
use sms_sessions::session::{Outcome, Pair, SessionCodec, SessionSecret};
use tokio::sync::Barrier;

const ME: &str = "+14155550199";
const TWILIO: &str = "+14155550100";
const OVERLAPPING: usize = 24;

fn codec() -> SessionCodec {
    let secret = SessionSecret::new(SECRET).expect("32+ bytes");
    SessionCodec::new("sms_session", Duration::from_secs(4 * 3600), &secret, &[])
}

/// The count a `name=value` cookie of (TWILIO, ME) holds.
fn count_in(cookie: &str) -> Option<u32> {
    let header = [cookie];
    let pair = Pair {
        to: TWILIO,
        from: ME,
    };
    match codec().load(header, pair, unix_now()) {
        (data, Outcome::Resumed) => data.get_parsed("count"),
        _ => None,
    }
}

/// Sends `OVERLAPPING` webhooks of the pair at once, the i-th carrying `cookies[i % len]`;
/// returns (status, content type, message text, Set-Cookie) per webhook, in send order.
async fn overlap(server: &TestServer, cookies: &[String]) -> Vec<(u16, String, String, String)> {
    let barrier = Arc::new(Barrier::new(OVERLAPPING));
    let url = server.url("/sms");
    let tasks: Vec<_> = (0..OVERLAPPING)
        .map(|i| {
            let (barrier, url) = (barrier.clone(), url.clone());
            let cookie = cookies[i % cookies.len()].clone();
            tokio::spawn(async move {
                let sid = format!("SM{i:032x}");
                let pairs = inbound_pairs(&sid, ME, TWILIO, "overlapping");
                barrier.wait().await;
                post_signed(&url, &url, &pairs, TOKEN, &[("cookie", &cookie)]).await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        let reply = task.await.expect("no panic in the client task");
        let content_type = reply.headers["content-type"]
            .to_str()
            .unwrap_or("")
            .to_owned();
        let message = if reply.status == 200 {
            message_text(&reply)
        } else {
            text(&reply)
        };
        let cookie = set_cookie(&reply).unwrap_or_default();
        replies.push((reply.status, content_type, message, cookie));
    }
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_webhooks_with_one_cookie_each_get_the_next_reply_and_last_writer_wins() {
    let server = TestServer::start(&[]).await;
    let mut phone = Phone::new(ME, TWILIO);
    phone.text(&server, "one").await;
    phone.text(&server, "two").await;
    let cookie = phone.cookie.clone().expect("cookie after two texts");
    assert_eq!(count_in(&cookie), Some(2));

    let replies = overlap(&server, &[cookie]).await;
    for (status, content_type, message, cookie) in &replies {
        assert_eq!(*status, 200, "{message}");
        assert_eq!(content_type, "text/xml; charset=utf-8");
        assert_eq!(message, "Hello, thanks for message number 3");
        assert_eq!(count_in(cookie), Some(3), "every reply stores count 3");
    }
    // Whichever Set-Cookie the jar keeps, the conversation goes on from 3.
    phone.cookie = replies.last().map(|r| r.3.clone());
    assert_eq!(
        message_text(&phone.text(&server, "after").await),
        "Hello, thanks for message number 4"
    );
    assert!(!server.handle.as_ref().expect("running").is_finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_webhooks_with_stale_and_fresh_cookies_are_each_answered_from_their_own() {
    let server = TestServer::start(&[]).await;
    let mut phone = Phone::new(ME, TWILIO);
    phone.text(&server, "one").await;
    let stale = phone.cookie.clone().expect("cookie after one text");
    phone.text(&server, "two").await;
    let fresh = phone.cookie.clone().expect("cookie after two texts");
    let cookies = [stale, fresh, "sms_session=tampered".to_owned()];

    let replies = overlap(&server, &cookies).await;
    for (i, (status, _, message, cookie)) in replies.iter().enumerate() {
        assert_eq!(*status, 200, "{message}");
        let (want_message, want_count) = match i % cookies.len() {
            0 => ("Hello, thanks for message number 2", 2),
            1 => ("Hello, thanks for message number 3", 3),
            _ => ("Hello, thanks for the new message.", 1),
        };
        assert_eq!(
            (message.as_str(), count_in(cookie)),
            (want_message, Some(want_count))
        );
    }
    assert!(!server.handle.as_ref().expect("running").is_finished());
}
