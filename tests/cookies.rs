//! Several valid session cookies for one pair (issue 14, item 9): a client that holds a stale
//! cookie beside the current one (say under a longer `Path`, which it lists first) goes on
//! from the one with the latest last message, whatever the order, and the log says so without
//! quoting either cookie.

mod common;
mod common_spawn;

use common::{SECRET, TOKEN, TestServer, codec, counted, message_text, post_text};
use sms_sessions::client::http::Reply;
use sms_sessions::routes::sms::unix_now;
use sms_sessions::session::Pair;

const ME: &str = "+14155550199";
const TWILIO: &str = "+14155550100";

/// `sms_session=…` for the pair, `count` = `n`, last message `ago` seconds ago.
fn cookie(n: u32, ago: u64) -> String {
    let pair = Pair {
        to: TWILIO,
        from: ME,
    };
    let value = codec(SECRET)
        .encode(&counted(n), pair, unix_now() - ago)
        .expect("fits");
    format!("sms_session={value}")
}

/// A signed text from the pair with every parameter Twilio sends, and these `Cookie` headers.
async fn text(url: &str, cookies: &[&str]) -> Reply {
    let headers: Vec<(&str, &str)> = cookies.iter().map(|c| ("cookie", *c)).collect();
    let reply = post_text(url, ME, TWILIO, "again", &headers).await;
    assert_eq!(reply.status, 200);
    reply
}

#[tokio::test]
async fn two_valid_cookies_for_the_pair_go_on_from_the_newer_count() {
    let server = TestServer::start(&[]).await;
    let url = server.url("/sms");
    let (stale, fresh) = (cookie(2, 600), cookie(5, 60));
    let stale_first = format!("{stale}; {fresh}");
    let fresh_first = format!("{fresh}; {stale}");
    let sent: [&[&str]; 4] = [
        &[&stale_first],
        &[&fresh_first],
        &[&stale, &fresh],
        &[&fresh, &stale],
    ];
    for cookies in sent {
        let reply = text(&url, cookies).await;
        assert_eq!(
            message_text(&reply),
            "Hello, thanks for message number 6",
            "{cookies:?}"
        );
    }
}

#[tokio::test]
async fn several_valid_cookies_are_noted_in_the_log_without_their_values() {
    let server = common_spawn::Server::start(&[
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("SMS_SESSIONS_SECRET", SECRET),
    ]);
    let url = server.url("/sms");
    let (stale, fresh) = (cookie(2, 600), cookie(5, 60));
    text(&url, &[&format!("{stale}; {fresh}")]).await;
    text(&url, &[&fresh]).await;
    let finished = server.stop();
    assert!(finished.status.success(), "{:?}", finished.status);
    let output = format!("{}\n{}", finished.stdout.join("\n"), finished.stderr);
    let notes: Vec<&String> = finished
        .stdout
        .iter()
        .filter(|line| line.contains("several valid session cookies"))
        .collect();
    assert_eq!(notes.len(), 1, "{output}");
    assert!(notes[0].contains(" INFO "), "{}", notes[0]);
    assert!(notes[0].contains("valid_cookies=2"), "{}", notes[0]);
    for cookie in [&stale, &fresh] {
        let value = cookie.trim_start_matches("sms_session=");
        for part in value.split('.').filter(|part| part.len() >= 12) {
            assert!(!output.contains(part), "{part} logged:\n{output}");
        }
    }
}
