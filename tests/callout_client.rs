//! The call-out client against a real local HTTP service started here (hyper on 127.0.0.1:0):
//! what arrives on the wire (method, target, headers, signature), connection reuse, the time
//! and size bounds, redirects, and the hooks' retries and queue.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Instant;

use sms_sessions::callout::{
    Callouts, FlowEnded, HookSettings, Hooks, MAX_RESPONSE_BYTES, StepCalls, USER_AGENT_VALUE,
    verify,
};
use sms_sessions::config::{Config, FlowConfig, HookTarget};
use sms_sessions::flows::engine::call::{Body, CallRequest, Calls, Method};
use sms_sessions::metrics::Metrics;

const SECRET: &str = "clinic-secret-0123456789";
const FROM: &str = "+14155550101";
const TO: &str = "+14155550199";

/// One request as the service saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: hyper::HeaderMap,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
    }

    /// The signature checks out with `secret`, within a minute of now.
    fn signed_with(&self, secret: &str) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let header = self.header("x-sms-sessions-signature");
        verify(
            secret.as_bytes(),
            header,
            &self.method,
            &self.target,
            &self.body,
            now,
            60,
        )
        .is_ok()
    }
}

/// What the service answers: a status, a body (chunked when `chunked`), after a delay.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: Vec<u8>,
    chunked: bool,
    delay: Duration,
    location: Option<&'static str>,
}

fn answer(status: u16, body: &[u8]) -> Answer {
    Answer {
        status,
        body: body.to_vec(),
        chunked: false,
        delay: Duration::ZERO,
        location: None,
    }
}

type Script = dyn Fn(&Seen, usize) -> Answer + Send + Sync;

/// The stand-in service: every request recorded, every accepted connection counted.
struct Service {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
}

impl Service {
    /// Answers the n-th request (from 0) with `script(request, n)`.
    async fn start(script: impl Fn(&Seen, usize) -> Answer + Send + Sync + 'static) -> Service {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("bound");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let script: Arc<Script> = Arc::new(script);
        let (recorded, counted) = (seen.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let (seen, script) = (recorded.clone(), script.clone());
                let service =
                    service_fn(move |request| respond(request, seen.clone(), script.clone()));
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Service {
            addr,
            seen,
            connections,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits (up to 5 s) until `count` requests have arrived.
    async fn wait_for(&self, count: usize) {
        let until = Instant::now() + Duration::from_secs(5);
        while self.seen().len() < count && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn respond(
    request: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Script>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, hyper::Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes().to_vec();
    let request = Seen {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map_or("", |p| p.as_str())
            .to_owned(),
        headers: parts.headers,
        body,
    };
    let answer = {
        let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.push(request.clone());
        script(&request, seen.len() - 1)
    };
    tokio::time::sleep(answer.delay).await;
    let body = if answer.chunked {
        let chunks: Vec<Result<Frame<Bytes>, Infallible>> = answer
            .body
            .chunks(16 * 1024)
            .map(|chunk| Ok(Frame::data(Bytes::copy_from_slice(chunk))))
            .collect();
        BoxBody::new(StreamBody::new(stream::iter(chunks)))
    } else {
        BoxBody::new(Full::new(Bytes::from(answer.body)))
    };
    let mut response = Response::builder().status(answer.status);
    if let Some(location) = answer.location {
        response = response.header("location", location);
    }
    Ok(response.body(body).expect("a valid response"))
}

/// A config file with endpoint `clinic` at `url` (and any `extra` lines), loaded.
fn flows(url: &str, extra: &str) -> FlowConfig {
    let dir = std::env::temp_dir().join(format!(
        "sms-sessions-callout-client-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path: PathBuf = dir.join(format!("{:x}.toml", rand::random::<u64>()));
    let text = format!(
        "[flows.endpoints.clinic]\nurl = {url:?}\nsecret = {SECRET:?}\n\
         headers = {{ \"X-Api-Key\" = \"key-1\" }}\n{extra}"
    );
    std::fs::write(&path, text).expect("write");
    let config = Config::load(Some(&path), &[("TWILIO_AUTH_TOKEN", "t")]);
    let _ = std::fs::remove_file(&path);
    config.expect("a valid config").flow
}

fn callouts(service: &Service, extra: &str) -> Callouts {
    Callouts::new(&flows(&format!("http://{}/base/", service.addr), extra))
}

fn get(path: &str) -> CallRequest {
    CallRequest {
        node: "fetch".into(),
        endpoint: "clinic".into(),
        method: Method::Get,
        path: path.into(),
        query: Vec::new(),
        body: None,
        idempotency_key: "SM0123".into(),
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test]
async fn a_call_arrives_signed_under_the_base_path_with_every_header() {
    let service = Service::start(|_, _| answer(200, b"{\"slots\":[\"s9\"]}")).await;
    let callouts = callouts(&service, "");
    let request = CallRequest {
        method: Method::Post,
        path: "/slots/a%2Fb".into(),
        query: vec![
            ("date".into(), "2026-03-10".into()),
            ("who".into(), "+1 415".into()),
        ],
        body: Some(Body::Json(b"{\"slot\":\"s9\"}".to_vec())),
        idempotency_key: "SM0123.book".into(),
        ..get("")
    };
    let response = callouts.call(&request, soon()).await.expect("answered");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"{\"slots\":[\"s9\"]}");
    let [seen] = service.seen().try_into().expect("one request");
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.target,
        "/base/slots/a%2Fb?date=2026-03-10&who=%2B1+415"
    );
    assert_eq!(seen.body, b"{\"slot\":\"s9\"}");
    assert_eq!(seen.header("user-agent"), USER_AGENT_VALUE);
    assert!(USER_AGENT_VALUE.starts_with("sms-sessions/"));
    assert_eq!(seen.header("idempotency-key"), "SM0123.book");
    assert_eq!(seen.header("content-type"), "application/json");
    assert_eq!(seen.header("x-api-key"), "key-1");
    assert_eq!(seen.header("host"), service.addr.to_string());
    assert!(seen.header("x-sms-sessions-signature").starts_with("t="));
    assert!(seen.signed_with(SECRET), "the signature verifies");
    assert!(
        !seen.signed_with("another-secret-0123456789"),
        "not with another secret"
    );
}

#[tokio::test]
async fn a_get_has_no_body_and_no_content_type() {
    let service = Service::start(|_, _| answer(204, b"")).await;
    let response = callouts(&service, "")
        .call(&get("/ping"), soon())
        .await
        .expect("answered");
    assert_eq!((response.status, response.body.len()), (204, 0));
    let [seen] = service.seen().try_into().expect("one request");
    assert_eq!(
        (seen.method.as_str(), seen.target.as_str()),
        ("GET", "/base/ping")
    );
    assert!(seen.body.is_empty() && !seen.headers.contains_key("content-type"));
    assert!(seen.signed_with(SECRET));
}

#[tokio::test]
async fn calls_reuse_one_kept_alive_connection() {
    let service = Service::start(|_, _| answer(200, b"{}")).await;
    let callouts = callouts(&service, "");
    for _ in 0..5 {
        let response = callouts
            .call(&get("/slots"), soon())
            .await
            .expect("answered");
        assert_eq!(response.status, 200);
    }
    assert_eq!(service.seen().len(), 5);
    assert_eq!(service.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_slow_service_times_out_by_the_endpoints_timeout_or_the_deadline() {
    let slow = |_: &Seen, _| Answer {
        delay: Duration::from_secs(3),
        ..answer(200, b"{}")
    };
    let service = Service::start(slow).await;
    let callouts = callouts(&service, "timeout = \"300ms\"\n");
    let started = Instant::now();
    let failure = callouts
        .call(&get("/slow"), soon())
        .await
        .expect_err("too slow");
    let took = started.elapsed();
    assert_eq!(failure.reason, "timeout", "{failure:?}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(400),
        "{took:?}"
    );
    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_millis(150);
    let failure = callouts
        .call(&get("/slow"), deadline)
        .await
        .expect_err("too slow");
    let took = started.elapsed();
    assert_eq!(failure.reason, "timeout", "{failure:?}");
    assert!(
        took < Duration::from_millis(250),
        "the deadline is earlier: {took:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("bound");
    drop(listener);
    let callouts = Callouts::new(&flows(&format!("http://{addr}"), ""));
    let failure = callouts
        .call(&get("/slots"), soon())
        .await
        .expect_err("refused");
    assert_eq!(failure.reason, "connect", "{failure:?}");
    assert!(!failure.detail.is_empty());
}

#[tokio::test]
async fn a_spent_deadline_is_budget_without_a_request() {
    let service = Service::start(|_, _| answer(200, b"{}")).await;
    let failure = callouts(&service, "")
        .call(&get("/slots"), Instant::now())
        .await
        .expect_err("no time left");
    assert_eq!(failure.reason, "budget");
    assert!(service.seen().is_empty());
}

#[tokio::test]
async fn answers_are_capped_at_256_kib_with_or_without_a_length() {
    let sized = |seen: &Seen, _| {
        let (size, chunked) = match seen.target.as_str() {
            "/base/exact" => (MAX_RESPONSE_BYTES, false),
            "/base/over" => (MAX_RESPONSE_BYTES + 1, false),
            "/base/exact-chunked" => (MAX_RESPONSE_BYTES, true),
            _ => (MAX_RESPONSE_BYTES + 1, true),
        };
        Answer {
            chunked,
            ..answer(200, &vec![b'x'; size])
        }
    };
    let service = Service::start(sized).await;
    let callouts = callouts(&service, "");
    assert_eq!(MAX_RESPONSE_BYTES, 256 * 1024);
    for path in ["/exact", "/exact-chunked"] {
        let response = callouts.call(&get(path), soon()).await.expect(path);
        assert_eq!(response.body.len(), MAX_RESPONSE_BYTES, "{path}");
    }
    for path in ["/over", "/over-chunked"] {
        let failure = callouts.call(&get(path), soon()).await.expect_err(path);
        assert_eq!(failure.reason, "too_large", "{path}");
    }
}

#[tokio::test]
async fn a_redirect_is_an_answer_and_is_not_followed() {
    let redirect = |_: &Seen, _| Answer {
        location: Some("/elsewhere"),
        ..answer(302, b"")
    };
    let service = Service::start(redirect).await;
    let response = callouts(&service, "")
        .call(&get("/slots"), soon())
        .await
        .expect("answered");
    assert_eq!(response.status, 302);
    assert_eq!(service.seen().len(), 1);
}

#[tokio::test]
async fn step_calls_count_and_time_every_call_by_endpoint_and_outcome() {
    let script = |seen: &Seen, _| match seen.target.as_str() {
        "/base/ok" => answer(200, b"{}"),
        _ => answer(500, b""),
    };
    let service = Service::start(script).await;
    let metrics = Arc::new(Metrics::new());
    let callouts = callouts(&service, "").with_metrics(metrics.clone());
    let calls = StepCalls::new(&callouts, soon());
    assert_eq!(calls.call(&get("/ok")).await.expect("ok").status, 200);
    assert_eq!(
        calls.call(&get("/broken")).await.expect("answered").status,
        500
    );
    let spent = StepCalls::new(&callouts, Instant::now());
    assert_eq!(
        spent.call(&get("/ok")).await.expect_err("late").reason,
        "budget"
    );
    let text = metrics.render();
    for line in [
        "sms_sessions_callouts_total{endpoint=\"clinic\",outcome=\"ok\"} 1",
        "sms_sessions_callouts_total{endpoint=\"clinic\",outcome=\"status\"} 1",
        "sms_sessions_callouts_total{endpoint=\"clinic\",outcome=\"budget\"} 1",
        "sms_sessions_callout_duration_seconds_count{endpoint=\"clinic\"} 3",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

/// Hooks to `/results` and `/opt-outs` of `service`, retried after 10 ms and 20 ms.
fn hooks(service: &Service, metrics: &Arc<Metrics>, settings: HookSettings) -> Hooks {
    let callouts = Arc::new(callouts(service, "").with_metrics(metrics.clone()));
    let target = |path: &str| {
        Some(HookTarget {
            endpoint: "clinic".into(),
            path: path.into(),
        })
    };
    Hooks::start_with(callouts, target("/results"), target("/opt-outs"), settings)
}

fn quick() -> HookSettings {
    HookSettings {
        backoff: [Duration::from_millis(10), Duration::from_millis(20)],
        ..HookSettings::default()
    }
}

fn ended() -> FlowEnded {
    FlowEnded {
        flow: "booking".into(),
        outcome: "completed",
        from: FROM.into(),
        to: TO.into(),
        message_sid: "SM0123".into(),
        variables: vec![
            ("slot".into(), serde_json::json!("s9")),
            ("nights".into(), serde_json::json!(3)),
        ],
    }
}

#[track_caller]
fn assert_counted(metrics: &Metrics, hook: &str, outcome: &str, count: u64) {
    let line =
        format!("sms_sessions_hooks_total{{hook=\"{hook}\",outcome=\"{outcome}\"}} {count}\n");
    let text = metrics.render();
    assert!(text.contains(&line), "missing {line:?} in\n{text}");
}

#[tokio::test]
async fn a_results_hook_is_retried_after_a_503_with_the_same_key() {
    let script = |_: &Seen, n| answer(if n == 0 { 503 } else { 204 }, b"");
    let service = Service::start(script).await;
    let metrics = Arc::new(Metrics::new());
    let hooks = hooks(&service, &metrics, quick());
    hooks.flow_ended(ended());
    assert!(
        hooks.drain(Duration::from_secs(5)).await,
        "delivered in time"
    );
    let [first, second] = service.seen().try_into().expect("two attempts");
    for seen in [&first, &second] {
        assert_eq!(
            (seen.method.as_str(), seen.target.as_str()),
            ("POST", "/base/results")
        );
        assert_eq!(seen.header("content-type"), "application/json");
        assert!(seen.signed_with(SECRET));
    }
    // The text's MessageSid and the hook: the same for a retry of the text, too.
    let key = first.header("idempotency-key");
    assert_eq!(key, "SM0123.results");
    assert_eq!(second.header("idempotency-key"), key);
    let json: serde_json::Value = serde_json::from_slice(&second.body).expect("JSON");
    assert_eq!(json["event"], "flow.ended");
    assert_eq!(json["flow"], "booking");
    assert_eq!(json["outcome"], "completed");
    assert_eq!(
        (json["from"].as_str(), json["to"].as_str()),
        (Some(FROM), Some(TO))
    );
    assert_eq!(json["message_sid"], "SM0123");
    assert_eq!(
        json["variables"],
        serde_json::json!({"slot": "s9", "nights": 3})
    );
    let ended_at = json["ended_at"].as_str().expect("ended_at");
    assert!(ended_at.parse::<jiff::Timestamp>().is_ok(), "{ended_at}");
    assert!(json.get("started_at").is_none());
    assert_counted(&metrics, "results", "delivered", 1);
    assert_counted(&metrics, "results", "failed", 0);
}

#[tokio::test]
async fn an_opt_out_hook_gives_up_after_three_attempts_or_at_a_4xx() {
    let script = |seen: &Seen, _| {
        answer(
            if seen.body.windows(4).any(|w| w == b"SM4x") {
                400
            } else {
                503
            },
            b"",
        )
    };
    let service = Service::start(script).await;
    let metrics = Arc::new(Metrics::new());
    let hooks = hooks(&service, &metrics, quick());
    hooks.opted_out(FROM, TO, "SM5x");
    hooks.opted_out(FROM, TO, "SM4x");
    assert!(hooks.drain(Duration::from_secs(5)).await);
    let seen = service.seen();
    let sids: Vec<String> = seen
        .iter()
        .map(|s| {
            serde_json::from_slice::<serde_json::Value>(&s.body).expect("JSON")["message_sid"]
                .to_string()
        })
        .collect();
    assert_eq!(
        sids.iter().filter(|sid| sid.contains("SM5x")).count(),
        3,
        "{sids:?}"
    );
    assert_eq!(
        sids.iter().filter(|sid| sid.contains("SM4x")).count(),
        1,
        "{sids:?}"
    );
    let json: serde_json::Value = serde_json::from_slice(&seen[0].body).expect("JSON");
    assert_eq!(json["event"], "opt_out");
    assert_eq!(
        (json["from"].as_str(), json["to"].as_str()),
        (Some(FROM), Some(TO))
    );
    assert!(
        json["at"]
            .as_str()
            .is_some_and(|at| at.parse::<jiff::Timestamp>().is_ok())
    );
    assert_eq!(seen[0].target, "/base/opt-outs");
    assert_counted(&metrics, "opt_out", "failed", 2);
    assert_counted(&metrics, "opt_out", "delivered", 0);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_and_never_waits() {
    let slow = |_: &Seen, _| Answer {
        delay: Duration::from_millis(300),
        ..answer(204, b"")
    };
    let service = Service::start(slow).await;
    let metrics = Arc::new(Metrics::new());
    let settings = HookSettings {
        queue: 1,
        concurrency: 1,
        ..quick()
    };
    let hooks = hooks(&service, &metrics, settings);
    hooks.opted_out(FROM, TO, "SM1");
    service.wait_for(1).await;
    let started = Instant::now();
    hooks.opted_out(FROM, TO, "SM2");
    hooks.opted_out(FROM, TO, "SM3");
    hooks.flow_ended(ended());
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "queuing never waits"
    );
    assert_counted(&metrics, "opt_out", "dropped", 1);
    assert_counted(&metrics, "results", "dropped", 1);
    assert!(hooks.drain(Duration::from_secs(5)).await);
    assert_eq!(service.seen().len(), 2);
    assert_counted(&metrics, "opt_out", "delivered", 2);
}

#[tokio::test]
async fn unset_hooks_do_nothing() {
    let service = Service::start(|_, _| answer(204, b"")).await;
    let metrics = Arc::new(Metrics::new());
    let callouts = Arc::new(callouts(&service, "").with_metrics(metrics.clone()));
    let hooks = Hooks::start(callouts, None, None);
    hooks.flow_ended(ended());
    hooks.opted_out(FROM, TO, "SM1");
    assert!(hooks.drain(Duration::from_millis(100)).await);
    assert!(service.seen().is_empty());
    assert_counted(&metrics, "results", "dropped", 0);
}

/// A self-signed certificate for 127.0.0.1, a TLS listener that answers every request 200, and
/// a client that trusts only that certificate.
#[tokio::test]
async fn https_endpoints_are_reached_over_rustls() {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    let cert = issued.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(issued.signing_key.serialize_der())
        .expect("a key");
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("bound");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script: Arc<Script> = Arc::new(|_, _| answer(200, b"{\"tls\":true}"));
    let recorded = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let Ok(stream) = acceptor.accept(stream).await else {
                continue;
            };
            let (seen, script) = (recorded.clone(), script.clone());
            let service = service_fn(move |request| respond(request, seen.clone(), script.clone()));
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("a root");
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let flows = flows(&format!("https://{addr}/base"), "");
    let callouts = Callouts::with_tls(&flows, client);
    let response = callouts
        .call(&get("/slots"), soon())
        .await
        .expect("answered over TLS");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"{\"tls\":true}"[..])
    );
    let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].signed_with(SECRET));
    // The default client trusts the Mozilla roots only: this certificate is refused.
    let failure = Callouts::new(&flows)
        .call(&get("/slots"), soon())
        .await
        .expect_err("an unknown issuer");
    assert_eq!(failure.reason, "connect", "{failure:?}");
}
