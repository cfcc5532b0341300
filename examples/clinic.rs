//! A stand-in for a clinic's booking system: the service the README's "Call your own service"
//! walkthrough runs against. The flow in `config/flows/clinic/booking.toml` asks it for the free
//! slots of a day and books one; sms-sessions signs every request (`config/clinic.toml` points
//! the `clinic` endpoint here, with the same secret).
//!
//! ```text
//! cargo run --example clinic                           # http://127.0.0.1:8090
//! cargo run --example clinic -- --listen 127.0.0.1:9000
//! CLINIC_SECRET=... cargo run --example clinic         # the endpoint's secret (default: the demo one)
//! ```
//!
//! Every request must carry a valid `X-Sms-Sessions-Signature` (else 401):
//! - `GET /slots?date=2026-03-10&service=cleaning` → `{"slots":[{"id":"…","label":"9:00 AM"},…]}`:
//!   3 or 4 on a weekday, none at weekends, booked ones left out;
//! - `POST /bookings` `{"slot":"…","name":"…","service":"…"}` → 201 `{"reference":"A7K2"}`; the
//!   same `Idempotency-Key` again gets the same answer and books nothing; a slot booked under
//!   another key → 409 `{"error":"taken"}`;
//! - `POST /results`, `POST /opt-outs` (the hooks) → 204.
//!
//! It prints one line per request (method, target, Idempotency-Key, whether the signature
//! holds) and keeps its bookings in memory only.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use jiff::civil::{Date, Weekday};
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const DEFAULT_LISTEN: &str = "127.0.0.1:8090";
/// The secret `config/clinic.toml` gives the `clinic` endpoint. A real service reads its own.
const DEMO_SECRET: &str = "clinic-demo-secret-0123456789";
/// A signature older or newer than this is refused, so a captured request cannot be replayed later.
const TOLERANCE_SECS: u64 = 300;
/// The times a weekday may offer (id suffix, label); each day offers 3 or 4 of them.
const TIMES: [(&str, &str); 6] = [
    ("0900", "9:00 AM"),
    ("1030", "10:30 AM"),
    ("1130", "11:30 AM"),
    ("1300", "1:00 PM"),
    ("1430", "2:30 PM"),
    ("1600", "4:00 PM"),
];

struct App {
    secret: Vec<u8>,
    bookings: Mutex<Bookings>,
}

#[derive(Default)]
struct Bookings {
    /// The ids of the booked slots.
    taken: HashSet<String>,
    /// Idempotency-Key → the answer it got, given again when the same key comes back.
    answers: HashMap<String, (StatusCode, Value)>,
}

impl App {
    fn bookings(&self) -> MutexGuard<'_, Bookings> {
        self.bookings.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = listen_arg().unwrap_or_else(|usage| {
        eprintln!("{usage}");
        std::process::exit(2);
    });
    let secret = std::env::var("CLINIC_SECRET").unwrap_or_else(|_| {
        println!("CLINIC_SECRET is not set: using the demo secret {DEMO_SECRET:?} (config/clinic.toml has it too)");
        DEMO_SECRET.to_owned()
    });
    let app = Arc::new(App {
        secret: secret.into_bytes(),
        bookings: Mutex::default(),
    });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("clinic listening on http://{}", listener.local_addr()?);
    axum::serve(listener, Router::new().fallback(handle).with_state(app)).await?;
    Ok(())
}

/// `--listen ADDR`, or the default.
fn listen_arg() -> Result<SocketAddr, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = match args.as_slice() {
        [] => DEFAULT_LISTEN,
        [flag, addr] if flag == "--listen" => addr,
        _ => return Err("usage: clinic [--listen ADDR]".into()),
    };
    addr.parse().map_err(|e| format!("--listen {addr}: {e}"))
}

/// Every request: check the signature, log it, then route it.
async fn handle(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The target exactly as it came on the wire: the signature covers it byte for byte.
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let key = text("idempotency-key");
    let signature = text("x-sms-sessions-signature");
    let line = format!(
        "{method} {target} Idempotency-Key: {}",
        if key.is_empty() { "(none)" } else { key }
    );
    if !verify(&app.secret, signature, method.as_str(), target, &body) {
        println!("{line} signature BAD -> 401");
        return (
            StatusCode::UNAUTHORIZED,
            "bad or missing X-Sms-Sessions-Signature\n",
        )
            .into_response();
    }
    println!("{line} signature ok");
    match (&method, uri.path()) {
        (&Method::GET, "/slots") => slots(&app, uri.query().unwrap_or("")),
        (&Method::POST, "/bookings") => book(&app, key, &body),
        (&Method::POST, "/results" | "/opt-outs") => event(&body),
        _ => answer(StatusCode::NOT_FOUND, json!({ "error": "no such route" })),
    }
}

/// Whether `header` (`t=<unix seconds>,v1=<hex>`) is HMAC-SHA256 with `secret` over
/// `<t>.<METHOD>.<target>.<body>`, made within [`TOLERANCE_SECS`] of now.
fn verify(secret: &[u8], header: &str, method: &str, target: &str, body: &[u8]) -> bool {
    let field = |name: &str| {
        header
            .split(',')
            .find_map(|part| part.split_once('=').filter(|(k, _)| *k == name))
            .map(|(_, value)| value)
    };
    let (Some(t), Some(given)) = (field("t"), field("v1").and_then(hex)) else {
        return false;
    };
    let fresh = t
        .parse::<u64>()
        .is_ok_and(|at| at.abs_diff(unix_now()) <= TOLERANCE_SECS);
    if !fresh {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(format!("{t}.{method}.{target}.").as_bytes());
    mac.update(body);
    // Constant time: how long the comparison takes says nothing about the expected bytes.
    mac.finalize().into_bytes().as_slice().ct_eq(&given).into()
}

/// `GET /slots?date=YYYY-MM-DD`: the free slots of that day.
fn slots(app: &App, query: &str) -> Response {
    let date = form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "date")
        .and_then(|(_, value)| value.parse::<Date>().ok());
    let Some(day) = date else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "date=YYYY-MM-DD is required" }),
        );
    };
    let bookings = app.bookings();
    let free: Vec<Value> = timetable(day)
        .into_iter()
        .filter(|(id, _)| !bookings.taken.contains(id))
        .map(|(id, label)| json!({ "id": id, "label": label }))
        .collect();
    answer(StatusCode::OK, json!({ "slots": free }))
}

/// The clinic's hours: nothing at weekends; on a weekday 3 or 4 of [`TIMES`], picked by the date.
fn timetable(day: Date) -> Vec<(String, &'static str)> {
    if matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday) {
        return Vec::new();
    }
    let seed = usize::from(day.day().unsigned_abs()) + usize::from(day.month().unsigned_abs());
    let count = 3 + seed % 2;
    TIMES
        .iter()
        .enumerate()
        .filter(|(i, _)| (i + seed) % TIMES.len() < count)
        .map(|(_, (hhmm, label))| (format!("{day}-{hhmm}"), *label))
        .collect()
}

/// `POST /bookings`: books the slot once per Idempotency-Key.
fn book(app: &App, key: &str, body: &[u8]) -> Response {
    let request: Value = serde_json::from_slice(body).unwrap_or_default();
    let slot = request["slot"].as_str().unwrap_or_default();
    if slot.is_empty() || key.is_empty() {
        let error = "a JSON body with \"slot\", and an Idempotency-Key header, are required";
        return answer(StatusCode::BAD_REQUEST, json!({ "error": error }));
    }
    let mut bookings = app.bookings();
    if let Some((status, body)) = bookings.answers.get(key) {
        println!("  a retry of {key}: the same answer again, nothing booked");
        return answer(*status, body.clone());
    }
    let (status, body) = if bookings.taken.contains(slot) {
        println!("  {slot} is taken");
        (StatusCode::CONFLICT, json!({ "error": "taken" }))
    } else {
        let reference = reference(slot);
        println!("  booked {slot}, reference {reference}");
        bookings.taken.insert(slot.to_owned());
        (StatusCode::CREATED, json!({ "reference": reference }))
    };
    bookings
        .answers
        .insert(key.to_owned(), (status, body.clone()));
    answer(status, body)
}

/// A short booking reference made from the slot (letters and digits that cannot be misread).
fn reference(slot: &str) -> String {
    const CHARS: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut hash = slot.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (0..4)
        .map(|_| {
            let c = char::from(CHARS[(hash % 32) as usize]);
            hash /= 32;
            c
        })
        .collect()
}

/// `POST /results`, `POST /opt-outs`: a hook. Only the event's name and flow are printed; the
/// rest (numbers, answers) is the texter's.
fn event(body: &[u8]) -> Response {
    let event: Value = serde_json::from_slice(body).unwrap_or_default();
    let name = event["event"].as_str().unwrap_or("?");
    match event["flow"].as_str() {
        Some(flow) => println!("  event {name}, flow {flow}"),
        None => println!("  event {name}"),
    }
    StatusCode::NO_CONTENT.into_response()
}

fn answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Lowercase or uppercase hex → bytes; `None` for anything else.
fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
