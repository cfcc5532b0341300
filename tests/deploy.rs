//! The binary as an operator runs it: spawned with env-only configuration, JSON logs on stdout,
//! secrets from files, a separate metrics listener, and SIGTERM draining in-flight webhooks.

mod common;
mod common_spawn;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use common::{
    ACCOUNT_SID, SECRET, TOKEN, TestServer, form, message_text, post_signed, set_cookie, text,
};
use common_spawn::{Finished, Server, TempDir, json, log_line};
use http_body_util::Full;
use hyper::Request;
use sms_sessions::app::AppState;
use sms_sessions::client::http::{self, Reply};
use sms_sessions::config::Config;
use sms_sessions::twilio::signature::AuthToken;

const ME: &str = "+14155550199";
const TWILIO: &str = "+14155550100";
const WAIT: Duration = Duration::from_secs(15);

/// Serves with JSON logs, plus `extra` env, in `dir`; every line up to "listening" is JSON.
fn serve(extra: &[(&str, &str)], dir: &Path) -> Server {
    let mut env = vec![("SMS_SESSIONS_LOG_FORMAT", "json")];
    env.extend_from_slice(extra);
    let server = Server::start_in(&env, dir);
    for line in server.seen() {
        json(line);
    }
    server
}

async fn get(url: &str) -> Reply {
    let request = Request::get(url)
        .body(Full::new(Bytes::new()))
        .expect("valid request");
    http::send(request).await.expect("server answers")
}

/// POSTs one text, signed for the URL requested, optionally with a cookie and a request id.
async fn text_once(addr: SocketAddr, cookie: Option<&str>, request_id: Option<&str>) -> Reply {
    let url = format!("http://{addr}/sms");
    let pairs = [
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("AccountSid", ACCOUNT_SID),
        ("From", ME),
        ("To", TWILIO),
        ("Body", "hello"),
        ("NumMedia", "0"),
    ];
    let mut headers = Vec::new();
    if let Some(cookie) = cookie {
        headers.push(("cookie", cookie));
    }
    if let Some(id) = request_id {
        headers.push(("x-request-id", id));
    }
    post_signed(&url, &url, &pairs, TOKEN, &headers).await
}

fn base_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("SMS_SESSIONS_SECRET", SECRET),
    ]
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_on_stdout_with_masked_numbers_and_no_secrets() {
    let dir = TempDir::new("json-logs");
    let mut server = serve(&base_env(), &dir.0);
    let addr = server.addr;

    let reply = text_once(addr, None, Some("deploy-test-42")).await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    // Not trusted by default: the server makes the id and logs the client's apart.
    let given_id = reply.headers["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_ne!(given_id, "deploy-test-42");
    let made = text_once(addr, None, None).await;
    let made_id = made.headers["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(!made_id.is_empty());
    let url = format!("http://{addr}/sms");
    let forged = post_signed(&url, &url, &[("From", ME), ("To", TWILIO)], "nope", &[]).await;
    assert_eq!(forged.status, 403);
    let webhook = log_line(&mut server, "webhook");
    assert_eq!(webhook["status"], 200);
    assert_eq!(webhook["from"], "+14*******99");
    assert_eq!(webhook["to"], "+14*******00");
    assert_eq!(webhook["session"], "new");
    assert!(webhook["latency_us"].is_u64(), "{webhook}");
    assert_eq!(webhook["request_id"], given_id.as_str());
    assert_eq!(webhook["client_request_id"], "deploy-test-42");
    assert_eq!(log_line(&mut server, "webhook")["request_id"], made_id);
    assert_eq!(
        log_line(&mut server, "webhook")["rejected"],
        "signature_mismatch"
    );

    let Finished {
        status,
        stdout,
        stderr,
    } = server.stop();
    assert!(status.success(), "{status:?}");
    assert_eq!(stderr, "", "stderr stays empty with JSON logs");
    let all = stdout.join("\n");
    for line in &stdout {
        let json = json(line);
        assert!(json.is_object(), "{line}");
        assert!(json["level"].is_string() && json["timestamp"].is_string());
    }
    for secret in [ME, TWILIO, "4155550199", TOKEN, SECRET] {
        assert!(!all.contains(secret), "{secret:?} leaked into\n{all}");
    }
}

#[tokio::test]
async fn sigterm_drains_an_in_flight_webhook_then_exits_zero() {
    let dir = TempDir::new("sigterm");
    let mut server = serve(&base_env(), &dir.0);
    let addr = server.addr;

    let url = format!("http://{addr}/sms");
    let pairs = common::inbound_pairs(common::SID, ME, TWILIO, "slow upload");
    let body = form(&pairs);
    let signature = AuthToken::new(TOKEN).expect("token").sign(&url, &pairs);
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(WAIT))
        .expect("set read timeout");
    let head = format!(
        "POST /sms HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         X-Twilio-Signature: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    stream
        .write_all(format!("{head}{first}").as_bytes())
        .expect("send the first half");
    std::thread::sleep(Duration::from_millis(300));

    server.terminate();
    log_line(&mut server, "shutting down");
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.is_running(), "exited with a request in flight");

    stream.write_all(rest.as_bytes()).expect("send the rest");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the answer");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.ends_with(
            "<Response><Message>Hello, thanks for the new message.</Message></Response>"
        ),
        "{response}"
    );
    let Finished { status, stderr, .. } = server.finish();
    assert_eq!(status.code(), Some(0), "{status:?} {stderr}");
}

#[tokio::test]
async fn secrets_come_from_files_and_a_restart_keeps_the_conversation() {
    let dir = TempDir::new("secret-files");
    let token_file = dir.write("twilio_auth_token", &format!("{TOKEN}\n"));
    let secret_file = dir.write("session_secret", &format!("{SECRET}\r\n"));
    let env = [
        ("TWILIO_AUTH_TOKEN_FILE", token_file.as_str()),
        ("SMS_SESSIONS_SECRET_FILE", secret_file.as_str()),
    ];

    let first = serve(&env, &dir.0);
    let reply = text_once(first.addr, None, None).await;
    assert_eq!(reply.status, 200, "the token came from its file");
    let cookie = set_cookie(&reply).expect("a session cookie");
    let Finished { status, stdout, .. } = first.stop();
    assert!(status.success());
    assert!(
        !stdout.join("\n").contains("random per-process"),
        "the secret came from its file"
    );

    let second = serve(&env, &dir.0);
    let reply = text_once(second.addr, Some(&cookie), None).await;
    assert_eq!(
        message_text(&reply),
        "Hello, thanks for message number 2",
        "a cookie signed before the restart still reads"
    );

    let check = common_spawn::run(&["check-config"], &env);
    let shown = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{shown}");
    assert!(shown.contains("auth_token = \"<redacted>\""), "{shown}");
    assert!(shown.contains("secret = \"<redacted>\""), "{shown}");
    assert!(!shown.contains(TOKEN) && !shown.contains(SECRET), "{shown}");
}

#[tokio::test]
async fn secret_file_errors_name_the_variable_and_plain_env_wins() {
    let dir = TempDir::new("secret-file-errors");
    let missing = dir.0.join("missing").display().to_string();
    let err = Config::load(None, &[("TWILIO_AUTH_TOKEN_FILE", missing.as_str())])
        .expect_err("unreadable file");
    assert_eq!(err.key, "TWILIO_AUTH_TOKEN_FILE");
    assert!(err.message.contains(&missing), "{err}");
    let secret_file_error = |path: &str| {
        let env = [
            ("TWILIO_AUTH_TOKEN", "t"),
            ("SMS_SESSIONS_SECRET_FILE", path),
        ];
        Config::load(None, &env).expect_err("a bad secret file").key
    };
    assert_eq!(secret_file_error(&missing), "SMS_SESSIONS_SECRET_FILE");
    let short = dir.write("short", "too short\n");
    assert_eq!(secret_file_error(&short), "session.secret");

    let file_token = dir.write("token", "token-from-the-file\n");
    let env = [
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("TWILIO_AUTH_TOKEN_FILE", file_token.as_str()),
        ("SMS_SESSIONS_SECRET", SECRET),
    ];
    let config = Config::load(None, &env).expect("valid");
    let server = TestServer::with_state(AppState::new(config).expect("the test flows load")).await;
    let url = server.url("/sms");
    let pairs = common::inbound_pairs(common::SID, ME, TWILIO, "");
    let signed = |token| post_signed(&url, &url, &pairs, token, &[]);
    assert_eq!(signed(TOKEN).await.status, 200, "TWILIO_AUTH_TOKEN wins");
    assert_eq!(signed("token-from-the-file").await.status, 403);
}

#[tokio::test]
async fn metrics_listen_serves_metrics_on_its_own_address() {
    let dir = TempDir::new("metrics-listen");
    let mut env = base_env();
    env.push(("SMS_SESSIONS_METRICS_LISTEN", "127.0.0.1:0"));
    let mut server = serve(&env, &dir.0);
    let main = server.addr;
    let announced = log_line(&mut server, "metrics listening");
    let metrics: SocketAddr = announced["address"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {announced}"));
    assert_ne!(main, metrics);

    assert_eq!(text_once(main, None, None).await.status, 200);
    assert_eq!(get(&format!("http://{main}/metrics")).await.status, 404);
    assert_eq!(get(&format!("http://{metrics}/sms")).await.status, 404);
    let scrape = get(&format!("http://{metrics}/metrics")).await;
    assert_eq!(scrape.status, 200);
    let body = text(&scrape);
    assert!(
        body.contains("sms_sessions_webhooks_total{route=\"/sms\",status=\"200\"} 1"),
        "{body}"
    );
    assert!(server.stop().status.success());
}

#[test]
fn configuration_warnings_are_logged_at_start_naming_no_value() {
    let dir = TempDir::new("config-warnings");
    let mut env = base_env();
    env.push(("SMS_SESSIONS_SECRET_PREVIUOS", SECRET));
    let server = serve(&env, &dir.0);
    let typo = "SMS_SESSIONS_SECRET_PREVIUOS ";
    let warning = server
        .seen()
        .iter()
        .map(|line| json(line))
        .find(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(typo))
        })
        .unwrap_or_else(|| panic!("no warning about the typo in {:?}", server.seen()));
    assert_eq!(warning["level"], "WARN", "{warning}");
    let message = warning["message"].as_str().unwrap_or_default();
    assert!(
        message.ends_with("(did you mean SMS_SESSIONS_SECRET_PREVIOUS?)"),
        "{message}"
    );
    assert!(!server.seen().concat().contains(SECRET));
    assert!(server.stop().status.success());
}
