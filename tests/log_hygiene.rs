//! Secret and PII hygiene of the logs (issue 6): the real binary, at `RUST_LOG=debug` in text
//! and in JSON, runs a whole conversation (SMS, MMS, WhatsApp, a status callback, a reply
//! resumed from a cookie of the previous secret) and a series of rejected requests (bad
//! signature, unsigned, tampered cookie, another pair's cookie, a foreign secret's cookie, 415,
//! 413, 400). Nothing it writes, on stdout or stderr, may contain an auth token, a session
//! secret, a cookie value or any part of one, or a full phone number in any spelling.

mod common;
mod common_spawn;

use std::time::Duration;

use common::{SID, form, inbound_pairs, post_raw, post_signed, set_cookie};
use common_spawn::Server;
use sms_sessions::client::http::Reply;
use sms_sessions::routes::sms::unix_now;
use sms_sessions::session::{Pair, SessionCodec, SessionData, SessionSecret};

const TOKEN: &str = "hygiene-token-5f2c9e1a7b3d4c6e8f0a1b2c";
const SECONDARY: &str = "hygiene-secondary-9a8b7c6d5e4f3a2b1c0d";
const SECRET: &str = "hygiene-session-secret-0f1e2d3c4b5a6978";
const PREVIOUS: &str = "hygiene-previous-secret-a1b2c3d4e5f60718";
const FOREIGN: &str = "hygiene-foreign-secret-77aa88bb99cc00dd11";

const ME: &str = "+14155550199";
const TWILIO: &str = "+14155550100";
const MALLORY: &str = "+14155550666";
const WHATSAPP: &str = "whatsapp:+14155550177";
const NUMBERS: [&str; 4] = [ME, TWILIO, MALLORY, "+14155550177"];

/// Everything the client saw that must not reach the logs.
#[derive(Default)]
struct Seen {
    cookies: Vec<String>,
}

impl Seen {
    /// Keeps the value of a `name=value` cookie (sent or received).
    fn cookie(&mut self, cookie: &str) {
        let value = cookie.split_once('=').map_or(cookie, |(_, v)| v);
        self.cookies.push(value.to_owned());
    }
}

fn codec(secret: &str) -> SessionCodec {
    let secret = SessionSecret::new(secret).expect("32+ bytes");
    SessionCodec::new("sms_session", Duration::from_secs(4 * 3600), &secret, &[])
}

fn cookie_of(secret: &str, from: &str, count: u32) -> String {
    let mut data = SessionData::default();
    data.set("count", count);
    let pair = Pair { to: TWILIO, from };
    let value = codec(secret).encode(&data, pair, unix_now()).expect("fits");
    format!("sms_session={value}")
}

/// A signed text from `from`, with `extra` parameters and an optional cookie.
async fn text(
    server: &Server,
    seen: &mut Seen,
    from: &str,
    extra: &[(&str, &str)],
    cookie: Option<&str>,
) -> Reply {
    let url = server.url("/sms");
    let mut pairs = vec![
        ("MessageSid", "SM5f2c9e1a7b3d4c6e8f0a1b2c3d4e5f60"),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", from),
        ("To", TWILIO),
        ("Body", "hygiene check, please ignore"),
        ("NumMedia", "0"),
    ];
    pairs.retain(|(key, _)| extra.iter().all(|(extra, _)| extra != key));
    pairs.extend_from_slice(extra);
    let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("cookie", *c)).collect();
    if let Some(cookie) = cookie {
        seen.cookie(cookie);
    }
    let reply = post_signed(&url, &url, &pairs, TOKEN, &headers).await;
    if let Some(cookie) = set_cookie(&reply) {
        seen.cookie(&cookie);
    }
    reply
}

/// The conversation and the rejections; returns what the client saw.
async fn exercise(server: &Server) -> Seen {
    let mut seen = Seen::default();
    let first = text(server, &mut seen, ME, &[], None).await;
    assert_eq!(first.status, 200);
    let mut jar = set_cookie(&first).expect("cookie");
    let mms = [
        ("NumMedia", "1"),
        (
            "MediaUrl0",
            "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM0/Media/ME0",
        ),
        ("MediaContentType0", "image/jpeg"),
        ("FromCity", "SAN FRANCISCO"),
        ("FromZip", "94105"),
    ];
    for extra in [&mms[..], &[]] {
        let reply = text(server, &mut seen, ME, extra, Some(&jar)).await;
        assert_eq!(reply.status, 200);
        jar = set_cookie(&reply).expect("cookie");
    }
    let whatsapp = [("WaId", "14155550177"), ("ProfileName", "Jane Doe")];
    assert_eq!(
        text(server, &mut seen, WHATSAPP, &whatsapp, None)
            .await
            .status,
        200
    );
    let previous = cookie_of(PREVIOUS, ME, 7);
    assert_eq!(
        text(server, &mut seen, ME, &[], Some(&previous))
            .await
            .status,
        200
    );

    // Rejected cookies: each answered with a fresh session, and a warning in the log.
    let mut tampered = jar.clone().into_bytes();
    let at = tampered.len() - 5;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let foreign = cookie_of(FOREIGN, ME, 3);
    for (from, cookie) in [(ME, &tampered), (MALLORY, &jar), (ME, &foreign)] {
        assert_eq!(
            text(server, &mut seen, from, &[], Some(cookie))
                .await
                .status,
            200
        );
    }

    // Rejected requests.
    let url = server.url("/sms");
    let body = form(&inbound_pairs(SID, ME, TWILIO, "x"));
    let form_type = ("content-type", "application/x-www-form-urlencoded");
    let wrong = sms_sessions::twilio::signature::AuthToken::new("not-the-token")
        .expect("non-empty")
        .sign(&url, &inbound_pairs(SID, ME, TWILIO, "x"));
    let rejected = [
        (
            body.clone(),
            vec![form_type, ("x-twilio-signature", wrong.as_str())],
            403,
        ),
        (body.clone(), vec![form_type, ("cookie", jar.as_str())], 403),
        (body.clone(), vec![("content-type", "text/plain")], 415),
        ("x".repeat(70_000), vec![form_type], 413),
    ];
    for (body, headers, status) in rejected {
        assert_eq!(post_raw(&url, body, &headers).await.status, status);
    }
    let only_to = [("To", TWILIO), ("Body", "x")];
    let missing = post_signed(&url, &url, &only_to, TOKEN, &[]).await;
    assert_eq!(missing.status, 400);
    let status_url = server.url("/sms/status");
    let status = [
        ("MessageSid", "SM5f2c9e1a7b3d4c6e8f0a1b2c3d4e5f60"),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30003"),
        ("From", TWILIO),
        ("To", ME),
    ];
    let callback = post_signed(&status_url, &status_url, &status, SECONDARY, &[]).await;
    assert_eq!(callback.status, 204);
    seen
}

/// Every spelling of a number a log could carry: E.164, digits only, national, form-encoded.
fn spellings(number: &str) -> Vec<String> {
    let digits = number.trim_start_matches('+');
    vec![
        number.to_owned(),
        digits.to_owned(),
        digits[1..].to_owned(),
        format!("%2B{digits}"),
    ]
}

/// The forbidden strings found in `output`, named.
fn leaks(output: &str, seen: &Seen) -> Vec<String> {
    let mut forbidden: Vec<(String, String)> = [
        ("auth token", TOKEN),
        ("secondary token", SECONDARY),
        ("session secret", SECRET),
        ("previous secret", PREVIOUS),
    ]
    .iter()
    .map(|(what, value)| ((*what).to_owned(), (*value).to_owned()))
    .collect();
    for value in &seen.cookies {
        forbidden.push(("cookie value".into(), value.clone()));
        for part in value.split('.').filter(|part| part.len() >= 12) {
            forbidden.push(("part of a cookie value".into(), part.to_owned()));
        }
    }
    for number in NUMBERS {
        for spelling in spellings(number) {
            forbidden.push((format!("phone number {number}"), spelling));
        }
    }
    forbidden
        .into_iter()
        .filter(|(_, value)| output.contains(value.as_str()))
        .map(|(what, value)| format!("{what}: {value}"))
        .collect()
}

async fn check(format: &str, level: &str) {
    let server = Server::start(&[
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("TWILIO_AUTH_TOKEN_SECONDARY", SECONDARY),
        ("SMS_SESSIONS_SECRET", SECRET),
        ("SMS_SESSIONS_SECRET_PREVIOUS", PREVIOUS),
        ("SMS_SESSIONS_LOG_FORMAT", format),
        ("RUST_LOG", level),
    ]);
    let seen = exercise(&server).await;
    let finished = server.stop();
    assert!(finished.status.success(), "{:?}", finished.status);
    let output = format!("{}\n{}", finished.stdout.join("\n"), finished.stderr);

    // The logs are there and say what happened, with masked numbers…
    let webhooks = finished
        .stdout
        .iter()
        .filter(|l| l.contains("webhook"))
        .count();
    assert!(webhooks >= 14, "{webhooks} webhook lines in:\n{output}");
    assert!(
        output.contains("+14*******99"),
        "masked From missing:\n{output}"
    );
    assert!(output.contains("session cookie rejected"), "{output}");
    // Every line a request causes names the request, at every level.
    let request_lines: Vec<&String> = finished
        .stdout
        .iter()
        .filter(|l| {
            l.contains("session cookie rejected")
                || l.contains(": webhook ")
                || l.contains("\"message\":\"webhook\"")
        })
        .collect();
    assert!(request_lines.len() > webhooks / 2, "{output}");
    for line in request_lines {
        assert!(line.contains("request_id"), "no request id: {line}");
    }
    if format == "json" {
        for line in &finished.stdout {
            let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
            assert!(parsed.is_ok(), "not JSON: {line}");
        }
    }
    // …and nothing they must not.
    let leaks = leaks(&output, &seen);
    assert!(
        leaks.is_empty(),
        "{format} logs at {level} leak:\n{}\n\n{output}",
        leaks.join("\n")
    );
}

#[tokio::test]
async fn text_logs_at_debug_hold_no_secret_cookie_or_phone_number() {
    check("text", "debug").await;
}

#[tokio::test]
async fn json_logs_at_debug_hold_no_secret_cookie_or_phone_number() {
    check("json", "debug").await;
}

#[tokio::test]
async fn text_logs_at_trace_hold_no_secret_cookie_or_phone_number() {
    check("text", "trace").await;
}

#[test]
fn the_leak_check_finds_every_kind_of_leak() {
    let mut seen = Seen::default();
    seen.cookie("sms_session=1.MTAwMHx0YWd8Y291bnQ9MQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ");
    let planted = [
        TOKEN,
        SECRET,
        "from=14155550199",
        "to=%2B14155550100",
        "MTAwMHx0YWd8Y291bnQ9MQ",
        "national 4155550666",
    ];
    for text in planted {
        assert!(!leaks(&format!("x {text} y"), &seen).is_empty(), "{text}");
    }
    assert!(leaks("from=+14*******99 to=whatsapp:+14*******77", &seen).is_empty());
}
