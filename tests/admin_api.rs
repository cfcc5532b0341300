//! The admin API in process (`tower::ServiceExt::oneshot`) over a relay on the memory store:
//! the bearer check, every validation error by field, 409 on an exhausted pool, the session's
//! JSON, pagination, get and close, the pool's counts, JSON 404/405/413, and the log line.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use sms_sessions::config::{Config, Secret};
use sms_sessions::relay::{AnyRelay, Relay, RelayKeys};
use sms_sessions::store::StoreUrl;
use tower::ServiceExt;

const TOKEN: &str = "admin-token-0123456789";
const SECOND_TOKEN: &str = "rotated-token-0123456789";
const POOL: &str = "+14155550100,+14155550101";

fn secret(text: &str) -> Secret {
    serde_json::from_value(json!(text)).expect("a secret")
}

/// A relay with `numbers` as its pool, on the memory store.
async fn relay(numbers: &str) -> Arc<Relay> {
    let env = [
        ("SMS_SESSIONS_STORE", "memory"),
        ("SMS_SESSIONS_RELAY_NUMBERS", numbers),
    ];
    let config = Config::load(None, &env).expect("a valid relay configuration");
    let keys = RelayKeys::new(b"0123456789abcdef0123456789abcdef");
    let backend = AnyRelay::open(&StoreUrl::Memory, keys, "test")
        .await
        .expect("the memory store opens");
    Relay::new(backend, config.relay, None)
}

async fn admin(numbers: &str) -> Router {
    let tokens = [secret(TOKEN), secret(SECOND_TOKEN)];
    sms_sessions::admin::router(relay(numbers).await, &tokens)
}

/// What came back: status, headers and the body as JSON (`Null` when empty).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("a body");
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("a JSON body")
    };
    Answer {
        status: parts.status,
        headers: parts.headers,
        json,
    }
}

async fn call(router: &Router, method: Method, path: &str, body: Option<Value>) -> Answer {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    let body = body.map_or_else(Body::empty, |body| Body::from(body.to_string()));
    send(router, request.body(body).expect("a request")).await
}

async fn create(router: &Router, body: Value) -> Answer {
    call(router, Method::POST, "/v1/relay/sessions", Some(body)).await
}

fn pair(a: &str, b: &str) -> Value {
    json!({"participants": [{"address": a}, {"address": b}]})
}

/// Session `n`'s two participants, distinct from every other session's.
fn nth_pair(n: usize) -> Value {
    pair(
        &format!("+1415555{:04}", 1000 + 2 * n),
        &format!("+1415555{:04}", 1001 + 2 * n),
    )
}

/// The tests of this file run one at a time: tracing caches per call site whether anyone
/// listens, and a test on another thread reaching the admin log line with no subscriber at the
/// moment the log test installs its own could leave that line switched off for it.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn a_missing_or_wrong_token_is_401_and_either_configured_token_opens() {
    let _serial = SERIAL.lock().await;
    let router = admin(POOL).await;
    let with = |authorization: Option<&str>| {
        let request = Request::get("/v1/relay/pool");
        let request = match authorization {
            Some(value) => request.header(header::AUTHORIZATION, value),
            None => request,
        };
        request.body(Body::empty()).expect("a request")
    };
    let second = format!("Bearer {SECOND_TOKEN}");
    let refused = [
        None,
        Some("Bearer wrong-token-0123456789"),
        Some("Bearer admin-token-012345678"),
        Some("Basic YWRtaW4tdG9rZW4tMDEyMzQ1Njc4OQ=="),
        Some(TOKEN),
    ];
    for authorization in refused {
        let answer = send(&router, with(authorization)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(answer.json, json!({"error": "unauthorized"}));
        assert_eq!(answer.headers[header::WWW_AUTHENTICATE], "Bearer");
    }
    for authorization in [format!("Bearer {TOKEN}"), second.clone()] {
        let answer = send(&router, with(Some(&authorization))).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    // Without a token, nothing tells a route from a 404.
    let probe = Request::get("/v1/nowhere")
        .body(Body::empty())
        .expect("a request");
    assert_eq!(send(&router, probe).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_created_session_is_201_with_exactly_the_session_json() {
    let _serial = SERIAL.lock().await;
    let router = admin(POOL).await;
    let body = json!({
        "participants": [
            {"address": "+14155550001", "label": "Buyer"},
            {"address": "+14155550002", "label": "Seller", "proxy": "+14155550101"},
        ],
        "ttl": "2h",
        "expires_at": "2099-01-01T00:00:00Z",
    });
    let answer = create(&router, body).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.json);
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");
    let session = answer.json.as_object().expect("an object");
    let mut keys: Vec<&str> = session.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at_ms",
            "expires_at_ms",
            "id",
            "last_activity_ms",
            "participants",
            "state",
            "ttl_secs"
        ]
    );
    let id = session["id"].as_str().expect("an id");
    assert!(id.len() == 34 && id.starts_with("RS"), "{id}");
    assert_eq!(session["state"], "open");
    assert_eq!(session["ttl_secs"], 7200);
    assert_eq!(session["expires_at_ms"], 4_070_908_800_000_u64);
    assert_eq!(
        session["participants"],
        json!([
            {"address": "+14155550001", "label": "Buyer", "proxy": "+14155550100", "opted_out": false},
            {"address": "+14155550002", "label": "Seller", "proxy": "+14155550101", "opted_out": false},
        ])
    );
    let read = call(
        &router,
        Method::GET,
        &format!("/v1/relay/sessions/{id}"),
        None,
    )
    .await;
    assert_eq!(
        read.json, answer.json,
        "the API shows the session as stored"
    );
    let plain = create(&router, pair("+14155550003", "+14155550004")).await;
    assert_eq!(plain.json["ttl_secs"], 4 * 3600, "relay.ttl by default");
    assert!(plain.json.get("expires_at_ms").is_none());
}

#[tokio::test]
async fn every_validation_error_names_its_field() {
    let _serial = SERIAL.lock().await;
    let router = admin(&format!("{POOL},whatsapp:+14155550102")).await;
    let a = json!({"address": "+14155550001"});
    let with_second = |second: Value| json!({"participants": [a.clone(), second]});
    let with_extra = |key: &str, value: Value| {
        let mut body = pair("+14155550001", "+14155550002");
        body[key] = value;
        body
    };
    let cases = [
        (
            with_second(json!({"address": "14155550002"})),
            "participants[1].address",
        ),
        (
            with_second(json!({"address": "+1415"})),
            "participants[1].address",
        ),
        (
            with_second(json!({"address": "whatsapp:14155550002"})),
            "participants[1].address",
        ),
        (
            with_second(json!({"address": "+14155550001"})),
            "participants[1].address",
        ),
        (
            with_second(json!({"address": "+14155550100"})),
            "participants[1].address",
        ),
        (
            with_second(json!({"label": "Seller"})),
            "participants[1].address",
        ),
        (
            with_second(json!({"address": 14155550002_u64})),
            "participants[1].address",
        ),
        (
            with_second(json!({"address": "+14155550002", "label": "x".repeat(41)})),
            "participants[1].label",
        ),
        (
            with_second(json!({"address": "+14155550002", "label": "a\nb"})),
            "participants[1].label",
        ),
        (
            with_second(json!({"address": "+14155550002", "proxy": "+14155550199"})),
            "participants[1].proxy",
        ),
        (
            with_second(json!({"address": "+14155550002", "proxy": "whatsapp:+14155550102"})),
            "participants[1].proxy",
        ),
        (
            with_second(json!({"address": "+14155550002", "role": "seller"})),
            "participants[1].role",
        ),
        (with_second(json!("+14155550002")), "participants[1]"),
        (json!({"participants": [a.clone()]}), "participants"),
        (json!({"participants": vec![a.clone(); 12]}), "participants"),
        (json!({"participants": "+14155550001"}), "participants"),
        (json!({}), "participants"),
        (with_extra("ttl", json!("forever")), "ttl"),
        (with_extra("ttl", json!("0s")), "ttl"),
        (with_extra("ttl", json!("31d")), "ttl"),
        (with_extra("ttl", json!(3600)), "ttl"),
        (
            with_extra("expires_at", json!("next tuesday")),
            "expires_at",
        ),
        (
            with_extra("expires_at", json!("2001-01-01T00:00:00Z")),
            "expires_at",
        ),
        (with_extra("unique_name", json!("x")), "unique_name"),
        (json!(["not", "an", "object"]), "body"),
    ];
    for (body, field) in cases {
        let answer = create(&router, body.clone()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer.json["error"], "invalid", "{body}");
        assert_eq!(answer.json["field"], field, "{body}: {}", answer.json);
        assert!(
            answer.json["detail"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
    let request = Request::post("/v1/relay/sessions")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::from("{\"participants\": ["))
        .expect("a request");
    assert_eq!(send(&router, request).await.json["field"], "body");
    for (query, field) in [
        ("state=gone", "state"),
        ("address=4155550001", "address"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("after=RS1", "after"),
        ("cursor=x", "cursor"),
    ] {
        let path = format!("/v1/relay/sessions?{query}");
        let answer = call(&router, Method::GET, &path, None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(answer.json["field"], field, "{query}");
    }
}

#[tokio::test]
async fn an_exhausted_pool_is_409_until_a_session_closes() {
    let _serial = SERIAL.lock().await;
    let router = admin("+14155550100").await;
    let first = create(&router, pair("+14155550001", "+14155550002")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let exhausted = create(&router, pair("+14155550003", "+14155550001")).await;
    assert_eq!(exhausted.status, StatusCode::CONFLICT, "{}", exhausted.json);
    assert_eq!(exhausted.json["error"], "pool_exhausted");
    assert_eq!(exhausted.json["field"], "participants[1]");
    assert!(exhausted.json["detail"].is_string());
    let chosen = json!({"participants": [
        {"address": "+14155550002", "proxy": "+14155550100"},
        {"address": "+14155550004"},
    ]});
    let in_use = create(&router, chosen).await;
    assert_eq!(in_use.status, StatusCode::CONFLICT);
    assert_eq!(in_use.json["field"], "participants[0].proxy");
    let id = first.json["id"].as_str().expect("an id");
    let path = format!("/v1/relay/sessions/{id}");
    assert_eq!(
        call(&router, Method::DELETE, &path, None).await.status,
        StatusCode::OK
    );
    let again = create(&router, pair("+14155550003", "+14155550001")).await;
    assert_eq!(
        again.status,
        StatusCode::CREATED,
        "closing freed the binding"
    );
}

#[tokio::test]
async fn pages_after_a_cursor_are_stable_and_complete() {
    let _serial = SERIAL.lock().await;
    let router = admin("+14155550100").await;
    let mut created = Vec::new();
    for n in 0..7 {
        let answer = create(&router, nth_pair(n)).await;
        created.push(answer.json["id"].as_str().expect("an id").to_owned());
    }
    created.sort();
    let page = |after: Option<String>| {
        let router = router.clone();
        async move {
            let path = match after {
                Some(after) => format!("/v1/relay/sessions?limit=3&after={after}"),
                None => "/v1/relay/sessions?limit=3".to_owned(),
            };
            let answer = call(&router, Method::GET, &path, None).await;
            assert_eq!(answer.status, StatusCode::OK);
            answer.json
        }
    };
    let (mut seen, mut after, mut sizes) = (Vec::new(), None, Vec::new());
    loop {
        let json = page(after.clone()).await;
        assert_eq!(page(after.clone()).await, json, "the same page twice");
        let sessions = json["sessions"].as_array().expect("sessions");
        sizes.push(sessions.len());
        seen.extend(
            sessions
                .iter()
                .map(|s| s["id"].as_str().expect("id").to_owned()),
        );
        match json["next"].as_str() {
            Some(next) => {
                assert_eq!(Some(next), seen.last().map(String::as_str));
                after = Some(next.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(sizes, [3, 3, 1]);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, created, "every session once");
    let all = call(&router, Method::GET, "/v1/relay/sessions", None).await;
    assert_eq!(all.json["sessions"].as_array().map(Vec::len), Some(7));
    assert_eq!(all.json["next"], Value::Null);
}

#[tokio::test]
async fn lists_filter_by_state_and_address() {
    let _serial = SERIAL.lock().await;
    let router = admin("+14155550100").await;
    let open = create(&router, pair("+14155550001", "+14155550002"))
        .await
        .json;
    let closed = create(&router, pair("+14155550003", "+14155550004"))
        .await
        .json;
    let path = format!("/v1/relay/sessions/{}", closed["id"].as_str().expect("id"));
    call(&router, Method::DELETE, &path, None).await;
    let ids = |json: &Value| -> Vec<Value> {
        let sessions = json["sessions"].as_array().expect("sessions");
        sessions.iter().map(|s| s["id"].clone()).collect()
    };
    for (query, expected) in [
        ("state=open", &open),
        ("state=closed", &closed),
        ("address=%2B14155550004", &closed),
        ("address=+14155550002", &open),
        ("state=open&address=%2B14155550001", &open),
    ] {
        let answer = call(
            &router,
            Method::GET,
            &format!("/v1/relay/sessions?{query}"),
            None,
        )
        .await;
        assert_eq!(ids(&answer.json), [expected["id"].clone()], "{query}");
    }
    let none = "/v1/relay/sessions?state=closed&address=%2B14155550001";
    assert_eq!(
        ids(&call(&router, Method::GET, none, None).await.json),
        Vec::<Value>::new()
    );
}

#[tokio::test]
async fn get_and_close_a_session_or_404() {
    let _serial = SERIAL.lock().await;
    let router = admin(POOL).await;
    let created = create(&router, pair("+14155550001", "+14155550002"))
        .await
        .json;
    let path = format!("/v1/relay/sessions/{}", created["id"].as_str().expect("id"));
    let read = call(&router, Method::GET, &path, None).await;
    assert_eq!((read.status, &read.json), (StatusCode::OK, &created));
    let closed = call(&router, Method::DELETE, &path, None).await;
    assert_eq!(closed.status, StatusCode::OK);
    assert_eq!(closed.json["state"], "closed");
    assert_eq!(closed.json["closed_reason"], "closed");
    assert_eq!(closed.json["participants"], created["participants"]);
    assert_eq!(
        call(&router, Method::GET, &path, None).await.json,
        closed.json
    );
    let twice = call(&router, Method::DELETE, &path, None).await;
    assert_eq!((twice.status, twice.json), (StatusCode::OK, closed.json));
    for missing in [
        "/v1/relay/sessions/RS00000000000000000000000000000000",
        "/v1/relay/sessions/not-an-id",
        "/v1/relay/sessions/%2B14155550001",
    ] {
        for method in [Method::GET, Method::DELETE] {
            let answer = call(&router, method, missing, None).await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{missing}");
            assert_eq!(answer.json, json!({"error": "not_found"}));
        }
    }
}

#[tokio::test]
async fn the_pool_counts_live_sessions_per_number() {
    let _serial = SERIAL.lock().await;
    let router = admin(POOL).await;
    let pool = |router: Router| async move {
        let answer = call(&router, Method::GET, "/v1/relay/pool", None).await;
        assert_eq!(answer.status, StatusCode::OK);
        answer.json
    };
    let counts = |first: u64, second: u64| {
        json!({"numbers": [
            {"number": "+14155550100", "in_use": first},
            {"number": "+14155550101", "in_use": second},
        ]})
    };
    assert_eq!(pool(router.clone()).await, counts(0, 0));
    let first = create(&router, pair("+14155550001", "+14155550002"))
        .await
        .json;
    assert_eq!(
        pool(router.clone()).await,
        counts(1, 0),
        "one session, both on the first"
    );
    // +14155550001 already texts the first number: the second is its only free one.
    create(&router, pair("+14155550001", "+14155550003")).await;
    assert_eq!(pool(router.clone()).await, counts(2, 1));
    let path = format!("/v1/relay/sessions/{}", first["id"].as_str().expect("id"));
    call(&router, Method::DELETE, &path, None).await;
    assert_eq!(
        pool(router.clone()).await,
        counts(1, 1),
        "closed ones are not in use"
    );
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_in_json() {
    let _serial = SERIAL.lock().await;
    let router = admin(POOL).await;
    for path in ["/", "/v1/relay", "/v1/relay/sessions/RS0/x", "/healthz"] {
        let answer = call(&router, Method::GET, path, None).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.json, json!({"error": "not_found"}), "{path}");
        assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");
    }
    for (method, path) in [
        (Method::PUT, "/v1/relay/sessions"),
        (Method::DELETE, "/v1/relay/sessions"),
        (
            Method::POST,
            "/v1/relay/sessions/RS00000000000000000000000000000000",
        ),
        (Method::POST, "/v1/relay/pool"),
    ] {
        let answer = call(&router, method.clone(), path, None).await;
        assert_eq!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(answer.json, json!({"error": "method_not_allowed"}));
        assert!(
            answer.headers.contains_key(header::ALLOW),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let _serial = SERIAL.lock().await;
    let router = admin(POOL).await;
    let label = "x".repeat(64 * 1024);
    let body = json!({"participants": [{"address": "+14155550001", "label": label}]});
    let answer = create(&router, body).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.json["error"], "too_large");
    let request = Request::post("/v1/relay/sessions")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::from_stream(futures_util::stream::iter(
            (0..65).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])),
        )))
        .expect("a request");
    assert_eq!(
        send(&router, request).await.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "streamed"
    );
}

/// A log writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_request_logs_one_line_with_numbers_masked_and_no_token() {
    let _serial = SERIAL.lock().await;
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .without_time()
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Other tests of this binary may have hit the log's call sites first, with no subscriber
    // at all, and tracing caches that they are off: ask every call site again.
    tracing::callsite::rebuild_interest_cache();
    let router = admin(POOL).await;
    let created = create(&router, pair("+14155550001", "+14155550002"))
        .await
        .json;
    let id = created["id"].as_str().expect("id");
    call(
        &router,
        Method::GET,
        "/v1/relay/sessions?address=%2B14155550001",
        None,
    )
    .await;
    let wrong = Request::get("/v1/relay/sessions/+14155550002")
        .header(header::AUTHORIZATION, "Bearer not-the-token-0123456789")
        .body(Body::empty())
        .expect("a request");
    send(&router, wrong).await;
    let log = String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("UTF-8");
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("admin request"))
        .collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(
        lines[0].contains("method=\"POST\" route=\"/v1/relay/sessions\" status=201"),
        "{log}"
    );
    assert!(lines[0].contains(&format!("id=\"{id}\"")), "{log}");
    assert!(lines[1].contains("address=\"+14*******01\""), "{log}");
    assert!(
        lines[2].contains("route=\"/v1/relay/sessions/{id}\" status=401"),
        "{log}"
    );
    for secret in ["4155550001", "4155550002", "not-the-token", TOKEN] {
        assert!(!log.contains(secret), "{secret} in {log}");
    }
}
