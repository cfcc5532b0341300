//! The front door under a connection flood (issue 14): the real binary, hundreds of hostile
//! connections that send half a request head or trickle one, and a signed webhook that must be
//! answered throughout. Also: the open-file limit is raised at start, and SIGTERM ends within
//! its deadline while a client holds a half-sent request.
//!
//! Each test prints its figures (`cargo test --test flood -- --nocapture` shows them).

mod common_spawn;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::Full;
use hyper::Request;
use sms_sessions::client::http;
use sms_sessions::twilio::signature::AuthToken;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common_spawn::Server;

const TOKEN: &str = "flood-test-auth-token-0123456789";
const SECRET: &str = "flood-test-session-secret-0123456789abcdef";

fn env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("SMS_SESSIONS_SECRET", SECRET),
        ("SMS_SESSIONS_HEADER_TIMEOUT", "1s"),
        ("SMS_SESSIONS_IDLE_TIMEOUT", "2s"),
        ("RUST_LOG", "info"),
    ];
    env.extend_from_slice(extra);
    env
}

/// One signed inbound text, on a connection of its own; the time to its answer.
async fn webhook(addr: SocketAddr, n: u32) -> Duration {
    let url = format!("http://{addr}/sms");
    let sid = format!("SM{n:032x}");
    let pairs = [
        ("MessageSid", sid.as_str()),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("From", "+14155550199"),
        ("To", "+14155550100"),
        ("Body", "still there?"),
        ("NumMedia", "0"),
        ("ApiVersion", "2010-04-01"),
    ];
    let signature = AuthToken::new(TOKEN).expect("token").sign(&url, &pairs);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let request = Request::post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(Full::new(Bytes::from(body)))
        .expect("valid request");
    let started = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(10), http::send(request))
        .await
        .expect("a signed webhook is answered within 10 s during the flood")
        .expect("the server answers");
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    started.elapsed()
}

/// Resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A hostile client: half a request head, then nothing (`trickle = false`), or headers
/// trickled 4 KiB at a time for as long as the server listens.
async fn attacker(addr: SocketAddr, trickle: bool) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(b"POST /sms HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-")
        .await
        .ok()?;
    if trickle {
        tokio::spawn(async move {
            let line = format!("X-Pad: {}\r\n", "a".repeat(4_088));
            for _ in 0..90 {
                if stream.write_all(line.as_bytes()).await.is_err() {
                    return; // closed by the server: what we want
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("the server took 360 KiB of request head without closing the connection");
        });
        return None;
    }
    Some(stream)
}

/// Whether the server has closed `stream` (EOF, reset, or a final answer such as 431/408).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0; 1024];
    loop {
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_and_trickling_connections_are_closed_and_a_webhook_is_answered_throughout() {
    let server = Server::start(&env(&[]));
    let addr = server.addr;
    let pid = server.pid();
    let idle_rss = rss_kib(pid);
    webhook(addr, 0).await;

    let flood_started = Instant::now();
    let mut held = Vec::new();
    for i in 0..600 {
        if let Some(stream) = attacker(addr, i % 2 == 1).await {
            held.push(stream);
        }
    }
    let mut answers = Vec::new();
    let mut peak_rss = rss_kib(pid);
    while flood_started.elapsed() < Duration::from_millis(2_500) {
        answers.push(webhook(addr, answers.len() as u32 + 1).await);
        peak_rss = peak_rss.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut still_open = 0;
    for stream in &mut held {
        if !closed_by_server(stream).await {
            still_open += 1;
        }
    }
    let slowest = answers.iter().max().copied().unwrap_or_default();
    eprintln!(
        "flood: 300 half-sent + 300 trickling connections; RSS idle {idle_rss} KiB, peak \
         {peak_rss} KiB; {} webhooks answered during the flood, slowest {slowest:?}; \
         half-sent still open after 2.5 s: {still_open}",
        answers.len()
    );
    assert_eq!(
        still_open, 0,
        "every half-sent head is closed after the 1 s header timeout"
    );
    assert!(answers.len() >= 10, "webhooks kept being answered");
    assert!(
        slowest < Duration::from_secs(1),
        "slowest answer {slowest:?}"
    );
    assert!(
        peak_rss < idle_rss + 64 * 1024,
        "memory stays bounded: {idle_rss} KiB idle, {peak_rss} KiB at the peak"
    );
    let finished = server.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_wait_and_twilio_still_gets_through() {
    let server = Server::start(&env(&[("SMS_SESSIONS_MAX_CONNECTIONS", "50")]));
    let addr = server.addr;
    let mut held = Vec::new();
    for _ in 0..200 {
        held.extend(attacker(addr, false).await);
    }
    // The webhook's connection queues behind 150 others in the backlog; each batch of 50
    // is closed after the 1 s header timeout.
    let waited = webhook(addr, 1).await;
    eprintln!("cap 50, 200 half-sent connections ahead: webhook answered after {waited:?}");
    assert!(waited < Duration::from_secs(8), "{waited:?}");
    let finished = server.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
}

/// Reads what the server sends next, failing the test after 10 s of silence.
async fn read_within(stream: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    tokio::time::timeout(Duration::from_secs(10), stream.read(buf))
        .await
        .expect("the server answers or closes within 10 s")
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start(&env(&[]));
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0; 512];
    let n = read_within(&mut stream, &mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let started = Instant::now();
    // Past the 1 s header timeout, the connection is still open: it is idle, not half-sent.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let n = read_within(&mut stream, &mut buf).await.expect("read");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "kept alive past the header timeout"
    );
    let idle_from = Instant::now();
    let closed = read_within(&mut stream, &mut buf)
        .await
        .map_or(true, |n| n == 0);
    let idled = idle_from.elapsed();
    eprintln!("idle connection closed after {idled:?} (idle timeout 2 s)");
    assert!(closed);
    assert!(
        idled >= Duration::from_secs(2) && idled < Duration::from_secs(4),
        "{idled:?}, {:?} since the first request",
        started.elapsed()
    );
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let hard = std::fs::read_to_string("/proc/self/limits")
        .expect("limits")
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(4).map(str::to_owned))
        .expect("hard limit");
    if hard == "512" {
        return; // nothing to raise to
    }
    let server = Server::start_with_soft_nofile(&env(&[]), 512);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).expect("limits");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        fields[3], fields[4],
        "soft limit raised to the hard one: {line}"
    );
    assert_eq!(fields[4], hard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_within_its_deadline_while_clients_hold_half_sent_requests() {
    let server = Server::start(&env(&[
        ("SMS_SESSIONS_REQUEST_TIMEOUT", "2s"),
        ("SMS_SESSIONS_HEADER_TIMEOUT", "10s"),
    ]));
    let addr = server.addr;
    let mut half_head = attacker(addr, false).await.expect("connected");
    let mut half_body = TcpStream::connect(addr).await.expect("connect");
    half_body
        .write_all(
            b"POST /sms HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 100\r\n\r\nFrom=%2B1",
        )
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopped = Instant::now();
    server.terminate();
    let finished = tokio::task::spawn_blocking(move || server.finish())
        .await
        .expect("join");
    let took = stopped.elapsed();
    eprintln!("SIGTERM with a half-sent head and a half-sent body: exited after {took:?}");
    assert!(finished.status.success(), "exit 0: {}", finished.stderr);
    // The half-sent body gets its 408 at the request timeout; the drain deadline is 2 s + 2 s.
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(closed_by_server(&mut half_head).await);
    assert!(closed_by_server(&mut half_body).await);
}
