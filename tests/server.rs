//! Black-box tests of the core (issue 2): the real server on port 0, spoken to like Twilio.

mod common;

use std::time::Duration;

use common::{
    ACCOUNT_SID, Phone, SECRET, SID, TOKEN, TestServer, codec, counted, form, inbound_pairs,
    message_text, post_raw, post_signed, set_cookie, test_config, text,
};
use sms_sessions::routes::sms::unix_now;
use sms_sessions::session::{Pair, SessionCodec, SessionSecret};

const ME: &str = "+14155550199";
const TWILIO: &str = "+14155550100";
const FIRST: &str = "Hello, thanks for the new message.";

#[tokio::test]
async fn a_conversation_counts_one_two_three() {
    let server = TestServer::start(&[]).await;
    let mut phone = Phone::new(ME, TWILIO);
    let mut replies = Vec::new();
    for body in ["hi", "again", "and again"] {
        replies.push(message_text(&phone.text(&server, body).await));
    }
    assert_eq!(
        replies,
        [
            FIRST,
            "Hello, thanks for message number 2",
            "Hello, thanks for message number 3"
        ]
    );
}

#[tokio::test]
async fn reply_is_twiml_with_a_sliding_http_only_cookie() {
    let server = TestServer::start(&[]).await;
    let reply = Phone::new(ME, TWILIO).text(&server, "hi").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "text/xml; charset=utf-8");
    assert_eq!(
        text(&reply),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{FIRST}</Message></Response>"
        )
    );
    let cookie = reply.headers["set-cookie"].to_str().expect("ascii");
    assert!(cookie.starts_with("sms_session=1."), "{cookie}");
    assert!(
        cookie.ends_with("; Max-Age=14400; Path=/; HttpOnly"),
        "no Secure on plain http: {cookie}"
    );
    assert!(reply.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn pairs_are_isolated() {
    let server = TestServer::start(&[]).await;
    let mut alice = Phone::new(ME, TWILIO);
    let mut bob = Phone::new("+14155550123", TWILIO);
    let mut alice_other_number = Phone::new(ME, "+14155550111");
    alice.text(&server, "1").await;
    alice.text(&server, "2").await;
    assert_eq!(message_text(&bob.text(&server, "1").await), FIRST);
    assert_eq!(
        message_text(&alice_other_number.text(&server, "1").await),
        FIRST
    );
    assert_eq!(
        message_text(&alice.text(&server, "3").await),
        "Hello, thanks for message number 3"
    );
}

#[tokio::test]
async fn tampered_cookie_starts_a_fresh_session() {
    let server = TestServer::start(&[]).await;
    let mut phone = Phone::new(ME, TWILIO);
    phone.text(&server, "1").await;
    let cookie = phone.cookie.clone().expect("cookie set");
    // Flip one character of the payload: the MAC no longer matches.
    let at = cookie.find('.').expect("versioned") + 3;
    let mut bytes = cookie.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    phone.cookie = Some(String::from_utf8(bytes).expect("ascii"));
    assert_eq!(message_text(&phone.text(&server, "2").await), FIRST);
    assert_eq!(
        message_text(&phone.text(&server, "3").await),
        "Hello, thanks for message number 2"
    );
}

#[tokio::test]
async fn unsigned_and_foreign_secret_cookies_start_fresh() {
    let server = TestServer::start(&[]).await;
    let other_secret = SessionSecret::new("another-secret-another-secret-0123").expect("32+ bytes");
    let foreign = SessionCodec::new(
        "sms_session",
        Duration::from_secs(14400),
        &other_secret,
        &[],
    );
    let pair = Pair {
        to: TWILIO,
        from: ME,
    };
    let forged = foreign
        .encode(&counted(41), pair, unix_now())
        .expect("fits");
    for cookie in [
        format!("sms_session={forged}"),
        "sms_session=count=41".to_owned(),
    ] {
        let mut phone = Phone::new(ME, TWILIO);
        phone.cookie = Some(cookie);
        assert_eq!(message_text(&phone.text(&server, "hi").await), FIRST);
    }
}

#[tokio::test]
async fn cookie_of_another_pair_starts_fresh() {
    let server = TestServer::start(&[]).await;
    let mut alice = Phone::new(ME, TWILIO);
    for _ in 0..3 {
        alice.text(&server, "hi").await;
    }
    let mut mallory = Phone::new("+14155550666", TWILIO);
    mallory.cookie = alice.cookie.clone();
    assert_eq!(message_text(&mallory.text(&server, "hi").await), FIRST);
}

#[tokio::test]
async fn expired_cookie_starts_fresh_even_if_the_client_still_sends_it() {
    let server = TestServer::start(&[]).await;
    let pair = Pair {
        to: TWILIO,
        from: ME,
    };
    let stale = codec(SECRET)
        .encode(&counted(7), pair, unix_now() - 4 * 3600 - 5)
        .expect("fits");
    let fresh = codec(SECRET)
        .encode(&counted(7), pair, unix_now() - 4 * 3600 + 60)
        .expect("fits");
    let mut phone = Phone::new(ME, TWILIO);
    phone.cookie = Some(format!("sms_session={stale}"));
    assert_eq!(message_text(&phone.text(&server, "hi").await), FIRST);
    phone.cookie = Some(format!("sms_session={fresh}"));
    assert_eq!(
        message_text(&phone.text(&server, "hi").await),
        "Hello, thanks for message number 8"
    );
}

#[tokio::test]
async fn configured_ttl_is_enforced_and_advertised() {
    let server = TestServer::start(&[("SMS_SESSIONS_SESSION_TTL", "90s")]).await;
    let pair = Pair {
        to: TWILIO,
        from: ME,
    };
    let stale = codec(SECRET)
        .encode(&counted(2), pair, unix_now() - 120)
        .expect("fits");
    let mut phone = Phone::new(ME, TWILIO);
    phone.cookie = Some(format!("sms_session={stale}"));
    let reply = phone.text(&server, "hi").await;
    assert_eq!(message_text(&reply), FIRST);
    assert!(
        reply.headers["set-cookie"]
            .to_str()
            .expect("ascii")
            .contains("Max-Age=90;")
    );
}

#[tokio::test]
async fn named_counter_speaks_the_flask_tutorial_lines() {
    let server = TestServer::start(&[("SMS_SESSIONS_FLOW", "named-counter")]).await;
    let mut rey = Phone::new("+14158675308", TWILIO);
    rey.text(&server, "hi").await;
    assert_eq!(
        message_text(&rey.text(&server, "hi").await),
        format!("Rey has messaged {TWILIO} 2 times.")
    );
    let mut stranger = Phone::new("+19995550000", TWILIO);
    assert_eq!(
        message_text(&stranger.text(&server, "hi").await),
        format!("Friend has messaged {TWILIO} 1 times.")
    );
}

#[tokio::test]
async fn public_url_is_what_gets_signed_and_https_makes_the_cookie_secure() {
    let server =
        TestServer::start(&[("SMS_SESSIONS_PUBLIC_URL", "https://sms.example.com/twilio")]).await;
    let pairs = inbound_pairs(SID, ME, TWILIO, "hi");
    let local = server.url("/sms?tenant=a+b");
    let reply = post_signed(
        &local,
        "https://sms.example.com/twilio/sms?tenant=a+b",
        &pairs,
        TOKEN,
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert!(
        reply.headers["set-cookie"]
            .to_str()
            .expect("ascii")
            .ends_with("; HttpOnly; Secure")
    );
    let signed_for_local = post_signed(&local, &local, &pairs, TOKEN, &[]).await;
    assert_eq!(signed_for_local.status, 403);
}

#[tokio::test]
async fn forwarded_headers_count_only_when_trusted() {
    let pairs = inbound_pairs(SID, ME, TWILIO, "hi");
    let headers = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "sms.example.com"),
    ];
    let public = "https://sms.example.com/sms";
    let trusting = TestServer::start(&[("SMS_SESSIONS_TRUST_FORWARDED", "true")]).await;
    let reply = post_signed(&trusting.url("/sms"), public, &pairs, TOKEN, &headers).await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    let wary = TestServer::start(&[]).await;
    let reply = post_signed(&wary.url("/sms"), public, &pairs, TOKEN, &headers).await;
    assert_eq!(reply.status, 403);
}

#[tokio::test]
async fn secondary_token_is_accepted_for_rotation() {
    let server = TestServer::start(&[("TWILIO_AUTH_TOKEN_SECONDARY", "the-old-token")]).await;
    let url = server.url("/sms");
    let pairs = inbound_pairs(SID, ME, TWILIO, "");
    assert_eq!(
        post_signed(&url, &url, &pairs, "the-old-token", &[])
            .await
            .status,
        200
    );
    assert_eq!(
        post_signed(&url, &url, &pairs, "a-third-token", &[])
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn get_webhooks_are_signed_over_the_url_alone() {
    let server = TestServer::start(&[]).await;
    let url = server.url(&format!(
        "/sms?{}",
        form(&inbound_pairs(SID, ME, TWILIO, "hi"))
    ));
    let signature = sms_sessions::twilio::signature::AuthToken::new(TOKEN)
        .expect("token")
        .sign(&url, &[] as &[(&str, &str)]);
    let request = hyper::Request::get(&url)
        .header("x-twilio-signature", signature)
        .body(http_body_util::Full::new(axum::body::Bytes::new()))
        .expect("request");
    let reply = sms_sessions::client::http::send(request)
        .await
        .expect("answer");
    assert_eq!(
        (reply.status, message_text(&reply)),
        (200, FIRST.to_owned())
    );
}

#[tokio::test]
async fn status_callbacks_are_signed_and_acknowledged_with_204() {
    let server = TestServer::start(&[]).await;
    let url = server.url("/sms/status");
    let pairs = [
        ("MessageSid", SID),
        ("AccountSid", ACCOUNT_SID),
        ("MessageStatus", "delivered"),
        ("From", TWILIO),
        ("To", ME),
    ];
    let reply = post_signed(&url, &url, &pairs, TOKEN, &[]).await;
    assert_eq!((reply.status, reply.body.len()), (204, 0));
    assert!(
        set_cookie(&reply).is_none(),
        "status callbacks carry no session"
    );
    let unsigned = post_raw(
        &url,
        form(&pairs),
        &[("content-type", "application/x-www-form-urlencoded")],
    )
    .await;
    assert_eq!(unsigned.status, 403);
    let incomplete = [("MessageSid", SID), ("AccountSid", ACCOUNT_SID)];
    let incomplete = post_signed(&url, &url, &incomplete, TOKEN, &[]).await;
    assert_eq!(
        (incomplete.status, text(&incomplete)),
        (400, "missing required parameter MessageStatus\n".to_owned())
    );
}

#[tokio::test]
async fn healthz_needs_no_signature() {
    let server = TestServer::start(&[]).await;
    let status = sms_sessions::client::http::get_status(&server.url("/healthz"))
        .await
        .expect("answer");
    assert_eq!(status, 200);
}

/// A bad request: name, body, headers, expected status and reason.
type BadCase<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, u16, &'a str);

/// Each bad request gets its status and a one-line `text/plain` reason.
#[tokio::test]
async fn bad_input_gets_a_clear_answer_and_the_server_keeps_serving() {
    let server = TestServer::start(&[]).await;
    let url = server.url("/sms");
    let good = inbound_pairs(SID, ME, TWILIO, "hi");
    let signature = sms_sessions::twilio::signature::AuthToken::new(TOKEN)
        .expect("token")
        .sign(&url, &good);
    let form_type = ("content-type", "application/x-www-form-urlencoded");
    let signed = ("x-twilio-signature", signature.as_str());
    let cases: Vec<BadCase> = vec![
        (
            "no signature",
            form(&good),
            vec![form_type],
            403,
            "missing X-Twilio-Signature header\n",
        ),
        (
            "wrong signature",
            form(&good),
            vec![
                form_type,
                ("x-twilio-signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            ],
            403,
            "invalid signature: signature does not match\n",
        ),
        (
            "garbage signature",
            form(&good),
            vec![form_type, ("x-twilio-signature", "%%%")],
            403,
            "invalid signature: malformed X-Twilio-Signature\n",
        ),
        (
            "tampered body",
            form(&inbound_pairs(SID, ME, TWILIO, "hj")),
            vec![form_type, signed],
            403,
            "invalid signature: signature does not match\n",
        ),
        (
            "json body",
            "{}".into(),
            vec![("content-type", "application/json"), signed],
            415,
            "expected Content-Type application/x-www-form-urlencoded\n",
        ),
        (
            "no content type",
            form(&good),
            vec![signed],
            415,
            "expected Content-Type application/x-www-form-urlencoded\n",
        ),
        (
            "over the body limit",
            "Body=".to_owned() + &"x".repeat(70_000),
            vec![form_type, signed],
            413,
            "request body is larger than 65536 bytes\n",
        ),
    ];
    for (name, body, headers, status, reason) in cases {
        let reply = post_raw(&url, body, &headers).await;
        assert_eq!(
            (reply.status, text(&reply).as_str()),
            (status, reason),
            "{name}"
        );
        assert_eq!(
            reply.headers["content-type"], "text/plain; charset=utf-8",
            "{name}"
        );
    }
    for missing in ["MessageSid", "AccountSid", "From", "To", "Body", "NumMedia"] {
        let mut pairs = inbound_pairs(SID, ME, TWILIO, "hi");
        pairs.retain(|(key, _)| *key != missing);
        let reply = post_signed(&url, &url, &pairs, TOKEN, &[]).await;
        assert_eq!(
            (reply.status, text(&reply)),
            (400, format!("missing required parameter {missing}\n"))
        );
    }
    assert_eq!(
        message_text(&Phone::new(ME, TWILIO).text(&server, "still there?").await),
        FIRST
    );
}

#[tokio::test]
async fn validation_off_accepts_unsigned_webhooks() {
    let server = TestServer::start(&[("SMS_SESSIONS_VALIDATE_SIGNATURES", "false")]).await;
    let form_type = ("content-type", "application/x-www-form-urlencoded");
    let reply = post_raw(
        &server.url("/sms"),
        form(&inbound_pairs(SID, ME, TWILIO, "")),
        &[form_type],
    )
    .await;
    assert_eq!(
        (reply.status, message_text(&reply)),
        (200, FIRST.to_owned())
    );
}

#[tokio::test]
async fn graceful_shutdown_finishes_and_returns() {
    let server = TestServer::start(&[]).await;
    Phone::new(ME, TWILIO).text(&server, "hi").await;
    tokio::time::timeout(Duration::from_secs(5), server.stop())
        .await
        .expect("stops promptly")
        .expect("clean exit");
}

#[tokio::test]
async fn a_stalled_upload_gets_408_at_the_request_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(&[("SMS_SESSIONS_REQUEST_TIMEOUT", "300ms")]).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let head = "POST /sms HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                Content-Length: 100\r\nX-Twilio-Signature: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\nFrom=";
    stream.write_all(head.as_bytes()).await.expect("send head");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    read.expect("answered before the client gave up")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.ends_with("request body not received within 0.3 s\n"),
        "{answer}"
    );
}

/// The gate stops reading a body once its Content-Length is in, without waiting for hyper's
/// end of body; the connection must stay usable for the next webhook, whether the body came
/// with the head, in pieces, or not at all (a GET).
#[tokio::test]
async fn webhooks_one_after_another_on_one_connection_are_all_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(&[]).await;
    let url = server.url("/sms");
    let token = sms_sessions::twilio::signature::AuthToken::new(TOKEN).expect("token");
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let mut cookie = String::new();
    for (n, split) in [(1, false), (2, true), (3, false), (4, true)] {
        let pairs = inbound_pairs(SID, ME, TWILIO, "hi");
        let body = form(&pairs);
        let head = format!(
            "POST /sms HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nX-Twilio-Signature: {}\r\n{cookie}\r\n",
            server.addr,
            body.len(),
            token.sign(&url, &pairs)
        );
        if split {
            // The head and half the body, a pause, then the rest.
            let (first, rest) = body.split_at(body.len() / 2);
            stream
                .write_all(format!("{head}{first}").as_bytes())
                .await
                .expect("send");
            tokio::time::sleep(Duration::from_millis(50)).await;
            stream.write_all(rest.as_bytes()).await.expect("send");
        } else {
            stream
                .write_all(format!("{head}{body}").as_bytes())
                .await
                .expect("send");
        }
        let mut answer = Vec::new();
        while !answer.ends_with(b"</Response>") {
            let mut chunk = [0; 4096];
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
                .await
                .expect("answered")
                .expect("read");
            assert!(read > 0, "webhook {n}: the server closed the connection");
            answer.extend_from_slice(&chunk[..read]);
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "webhook {n}: {answer}");
        let expected = if n == 1 {
            FIRST.to_owned()
        } else {
            format!("message number {n}")
        };
        assert!(answer.contains(&expected), "webhook {n}: {answer}");
        let set_cookie = answer
            .lines()
            .find_map(|line| line.strip_prefix("set-cookie: "))
            .expect("a cookie");
        cookie = format!(
            "Cookie: {}\r\n",
            set_cookie.split(';').next().expect("name=value")
        );
    }
}

/// Counts like `counter`, but a text saying "panic" hits a bug.
struct Buggy;

impl sms_sessions::flows::Flow for Buggy {
    async fn reply(
        &self,
        message: &sms_sessions::twilio::inbound::InboundMessage<'_>,
        state: &mut sms_sessions::session::SessionData,
    ) -> sms_sessions::twilio::twiml::MessagingResponse {
        assert_ne!(message.body, "panic", "a bug in a flow");
        let count = state.get_parsed::<u32>("counter").unwrap_or(0) + 1;
        state.set("counter", count);
        let mut response = sms_sessions::twilio::twiml::MessagingResponse::new();
        response.message(format!("count {count}"));
        response
    }
}

#[tokio::test]
async fn a_panicking_flow_costs_one_500_and_the_server_carries_on() {
    let state =
        sms_sessions::app::AppState::with_flow(test_config(&[]), std::sync::Arc::new(Buggy));
    let server = TestServer::with_state(state).await;
    let mut phone = Phone::new(ME, TWILIO);
    assert_eq!(message_text(&phone.text(&server, "one").await), "count 1");
    let reply = phone.text(&server, "panic").await;
    assert_eq!(reply.status, 500);
    assert_eq!(text(&reply), "internal error\n");
    // The conversation is where it was before the failed text.
    assert_eq!(message_text(&phone.text(&server, "two").await), "count 2");
    server.stop().await.expect("clean shutdown");
}
