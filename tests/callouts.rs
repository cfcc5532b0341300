//! Call-outs over the wire (issue 12, "Must include" 1–3, 6, 7 and 9): the real binary, started
//! with a config file whose `[flows.endpoints.*]` point at a stand-in service this test runs on
//! 127.0.0.1:0, and a flows dir written to a temp dir. The stand-in records each request raw, so
//! the tests pin what a service receives: method, target, body, `X-Sms-Sessions-Signature`
//! (recomputed here as DESIGN.md defines it) and `Idempotency-Key`; what a `call` saves reaching
//! the next reply; every failure (500, timeout, refused, not JSON, over 256 KiB, no such
//! pointer, a redirect) taking `on_error`; templated values that cannot leave the endpoint; no
//! second call for a retried MessageSid in a store mode; the results and opt-out hooks; the
//! shipped clinic flow booking end to end; the Python verifier accepting a real request; and
//! `flow test` / `check-config` on the walkthrough's files.

mod common;
mod common_spawn;

use std::process::Command;
use std::time::{Duration, Instant};

use common::stand_in::{Answer, Recorded, StandIn};
use common::{SECRET, TOKEN, inbound_pairs, message_text, post_signed, set_cookie, text};
use common_spawn::{Server, TempDir, assert_flow_tests_passed, run_within};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use sms_sessions::client::http::Reply;

const ME: &str = "+14155550199";
const TWILIO: &str = "+14155550100";

/// The `clinic` endpoint's secret in the test config.
const ENDPOINT_SECRET: &str = "callout-test-secret-0123456789";
/// An extra header the `clinic` endpoint adds to every request.
const API_KEY: &str = "k-0123456789";
/// The `clinic` endpoint's base path: every target starts with it.
const BASE: &str = "/sms-hooks";

const SORRY: &str = "Sorry, the calendar is not answering.";
const SLOTS: &str = r#"{"slots":[{"id":"s9","label":"9:00 AM"},{"id":"s14","label":"2:30 PM"}]}"#;

/// Hooks are delivered in the background: this long at most.
const HOOK_WAIT: Duration = Duration::from_secs(5);

// ------------------------------------------------------------------------------ the flows

/// `SLOTS <day>`: one GET with the day in the path and the query; saves into the reply.
const PROBE: &str = r#"
spec = 1
name = "probe"
start = "fetch"

[[triggers]]
keywords = ["SLOTS"]

[nodes.fetch]
type = "call"
endpoint = "clinic"
method = "GET"
path = "/days/{{ trigger.rest }}/slots"
query = { day = "{{ trigger.rest }}", service = "cleaning" }
save = { slots = "/slots", first = "/slots/0/label" }
next = "show"
on_error = "sorry"

[nodes.show]
type = "end"
text = "{{ slots | length }} openings, the first at {{ first }}."

[nodes.sorry]
type = "end"
text = "Sorry, the calendar is not answering."
"#;

/// `RESERVE <slot>`: one POST with a JSON body of every TOML kind.
const RESERVE: &str = r#"
spec = 1
name = "reserve"
start = "book"

[[triggers]]
keywords = ["RESERVE"]

[nodes.book]
type = "call"
endpoint = "clinic"
method = "POST"
path = "/bookings"
json = { slot = "{{ trigger.rest }}", name = "Ana", party = 2, sms = true, tags = ["sms", "{{ contact.from }}"], who = { from = "{{ contact.from }}" } }
save = { reference = "/reference" }
next = "done"
on_error = "sorry"

[nodes.done]
type = "end"
text = "Booked, reference {{ reference }}."

[nodes.sorry]
type = "end"
text = "Sorry, no booking."
"#;

/// `TWO <note>`: two calls in one step, the second a PUT of a form to a path made of what the
/// first saved.
const TWO: &str = r#"
spec = 1
name = "two"
start = "first"

[[triggers]]
keywords = ["TWO"]

[nodes.first]
type = "call"
endpoint = "clinic"
method = "GET"
path = "/first"
save = { token = "/token" }
next = "second"
on_error = "sorry"

[nodes.second]
type = "call"
endpoint = "clinic"
method = "PUT"
path = "/second/{{ token }}"
form = { note = "{{ trigger.rest }}", from = "{{ contact.from }}" }
save = { status = "/status" }
next = "done"
on_error = "sorry"

[nodes.done]
type = "end"
text = "{{ token }} is {{ status }}."

[nodes.sorry]
type = "end"
text = "Sorry, not both."
"#;

/// `DOWN`: a call to an endpoint where nothing listens.
const DOWN: &str = r#"
spec = 1
name = "down"
start = "fetch"

[[triggers]]
keywords = ["DOWN"]

[nodes.fetch]
type = "call"
endpoint = "down"
method = "GET"
path = "/slots"
save = { slots = "/slots" }
next = "show"
on_error = "sorry"

[nodes.show]
type = "end"
text = "{{ slots | length }} openings."

[nodes.sorry]
type = "end"
text = "Sorry, the calendar is not answering."
"#;

/// `INTAKE`: a question, then the end (for the hooks).
const INTAKE: &str = r#"
spec = 1
name = "intake"
start = "ask_name"

[[triggers]]
keywords = ["INTAKE"]

[nodes.ask_name]
type = "ask"
text = "Your name?"
save = "name"
next = "done"

[nodes.done]
type = "end"
text = "Thanks, {{ name }}."
"#;

// ------------------------------------------------------------------------------ the harness

/// The server's config: the `clinic` endpoint at the stand-in (1 s timeout, an extra header),
/// `down` at a port where nothing listens, both hooks to the stand-in, a 3 s request timeout.
fn config_text(flows_dir: &str, service: &StandIn, refused: u16) -> String {
    let url = service.url(BASE);
    format!(
        r#"
[server]
request_timeout = "3s"

[flow]
kind = "flows"

[flows]
dir = "{flows_dir}"

[flows.endpoints.clinic]
url = "{url}"
secret = "{ENDPOINT_SECRET}"
timeout = "1s"
headers = {{ "X-Api-Key" = "{API_KEY}" }}

[flows.endpoints.down]
url = "http://127.0.0.1:{refused}"
secret = "{ENDPOINT_SECRET}"
timeout = "1s"

[flows.results]
endpoint = "clinic"
path = "/results"

[compliance]
on_opt_out = {{ endpoint = "clinic", path = "/opt-outs" }}
"#
    )
}

/// A port nothing listens on (bound, then let go).
fn refused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("bound").port()
}

/// A server on the test flows (or the flows dir `env` names) with its stand-in service.
struct Fixture {
    service: StandIn,
    server: Server,
    _flows: TempDir,
    _config: TempDir,
}

impl Fixture {
    /// `env` is added to the test token and session secret, and wins over the config file.
    fn start(env: &[(&str, &str)]) -> Self {
        let service = StandIn::start();
        service.answer(&format!("{BASE}/results"), Answer::status(204));
        service.answer(&format!("{BASE}/opt-outs"), Answer::status(204));
        let flows = TempDir::new("callout-flows");
        for (name, text) in [
            ("probe.toml", PROBE),
            ("reserve.toml", RESERVE),
            ("two.toml", TWO),
            ("down.toml", DOWN),
            ("intake.toml", INTAKE),
        ] {
            flows.write(name, text);
        }
        let config = TempDir::new("callout-config");
        let file = config.write(
            "sms-sessions.toml",
            &config_text(&flows.display(), &service, refused_port()),
        );
        let mut all = vec![
            ("TWILIO_AUTH_TOKEN", TOKEN),
            ("SMS_SESSIONS_SECRET", SECRET),
        ];
        all.extend_from_slice(env);
        let server = Server::start_with_config(&file, &all);
        Fixture {
            service,
            server,
            _flows: flows,
            _config: config,
        }
    }

    fn phone(&self) -> Texter {
        Texter {
            url: self.server.url("/sms"),
            cookie: None,
            sent: 0,
        }
    }

    /// `BASE` + `path`: where the stand-in sees a call to the endpoint's `path`.
    fn script(&self, path: &str, answer: Answer) {
        self.service.answer(&format!("{BASE}{path}"), answer);
    }

    fn calls_to(&self, path: &str) -> Vec<Recorded> {
        self.service.requests_to(&format!("{BASE}{path}"))
    }

    /// The requests from the `from`th on, but for the results hook's.
    fn calls_since(&self, from: usize) -> Vec<Recorded> {
        let mut calls = self.service.requests().split_off(from);
        calls.retain(|r| !r.path().ends_with("/results"));
        calls
    }
}

/// One phone (ME) texting the Twilio number, keeping its cookie; MessageSids it chooses.
struct Texter {
    url: String,
    cookie: Option<String>,
    sent: u32,
}

impl Texter {
    /// Sends one text with a fresh MessageSid; returns the reply and the sid.
    async fn send(&mut self, body: &str) -> (Reply, String) {
        self.sent += 1;
        let sid = format!("SM{:032x}", 0xca11_0000_u64 + u64::from(self.sent));
        (self.send_as(&sid, body).await, sid)
    }

    /// Sends one text as message `sid` (the same sid twice is Twilio retrying it).
    async fn send_as(&mut self, sid: &str, body: &str) -> Reply {
        let pairs = inbound_pairs(sid, ME, TWILIO, body);
        let cookie = self.cookie.clone();
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("cookie", c.as_str())).collect();
        let reply = post_signed(&self.url, &self.url, &pairs, TOKEN, &headers).await;
        assert_eq!(reply.status, 200, "{}", text(&reply));
        if let Some(cookie) = set_cookie(&reply) {
            self.cookie = Some(cookie);
        }
        reply
    }

    /// [`Texter::send`], returning the reply's message text and the sid.
    async fn says(&mut self, body: &str) -> (String, String) {
        let (reply, sid) = self.send(body).await;
        (message_text(&reply), sid)
    }
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The request carries `X-Sms-Sessions-Signature: t=<unix seconds>,v1=<lowercase hex
/// HMAC-SHA256(secret, "<t>.<METHOD>.<target>.<body>")>`, made just now, with `target` exactly
/// what arrived on the wire.
#[track_caller]
fn assert_signed(request: &Recorded, secret: &str) {
    let header = request.header("x-sms-sessions-signature");
    let t = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no t= in {header:?}"));
    let at: u64 = t
        .parse()
        .unwrap_or_else(|_| panic!("t is not unix seconds: {header:?}"));
    assert!(
        at.abs_diff(unix_now()) <= 30,
        "t={at} is not now: {header:?}"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.{}.{}.", request.method, request.target).as_bytes());
    mac.update(&request.body);
    let expected = format!("t={t},v1={}", hex(&mac.finalize().into_bytes()));
    assert_eq!(header, expected, "signature of {request:?}");
}

/// The headers every call-out carries besides its signature.
#[track_caller]
fn assert_call_headers(request: &Recorded, service: &StandIn, idempotency_key: &str) {
    let agent = format!("sms-sessions/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(request.header("user-agent"), agent);
    assert_eq!(request.header("idempotency-key"), idempotency_key);
    assert_eq!(request.header("x-api-key"), API_KEY);
    assert_eq!(request.header("host"), service.addr.to_string());
    assert_signed(request, ENDPOINT_SECRET);
}

/// A hook's request: a signed POST to `target` with an idempotency key, its event about ME's
/// text `sid` to TWILIO. Returns the event.
#[track_caller]
fn assert_hook(hook: &Recorded, target: &str, sid: &str) -> serde_json::Value {
    assert_eq!(
        (hook.method.as_str(), hook.target.as_str()),
        ("POST", target)
    );
    assert!(!hook.header("idempotency-key").is_empty());
    assert_signed(hook, ENDPOINT_SECRET);
    let event = hook.json();
    assert_eq!(event["from"], ME, "{event}");
    assert_eq!(event["to"], TWILIO, "{event}");
    assert_eq!(event["message_sid"], sid, "{event}");
    event
}

// ---------------------------------------------------------------------- the request's shape

#[tokio::test]
async fn a_get_carries_its_path_query_signature_and_key_and_what_it_saves_is_in_the_reply() {
    let fx = Fixture::start(&[]);
    fx.script("/days/2026-03-10/slots", Answer::json(200, SLOTS));
    let mut phone = fx.phone();
    let (reply, sid) = phone.says("SLOTS 2026-03-10").await;
    assert_eq!(reply, "2 openings, the first at 9:00 AM.");
    let calls = fx.calls_to("/days/2026-03-10/slots");
    let [call] = calls.as_slice() else {
        panic!("one call expected: {calls:#?}")
    };
    assert_eq!(call.method, "GET");
    assert_eq!(
        call.target,
        "/sms-hooks/days/2026-03-10/slots?day=2026-03-10&service=cleaning"
    );
    assert!(call.body.is_empty(), "{call:?}");
    assert_call_headers(call, &fx.service, &sid);
}

#[tokio::test]
async fn a_post_sends_the_json_body_it_signs() {
    let fx = Fixture::start(&[]);
    fx.script("/bookings", Answer::json(201, r#"{"reference":"A7K2"}"#));
    let mut phone = fx.phone();
    let (reply, sid) = phone.says("RESERVE s-42").await;
    assert_eq!(reply, "Booked, reference A7K2.");
    let calls = fx.calls_to("/bookings");
    let [call] = calls.as_slice() else {
        panic!("one call expected: {calls:#?}")
    };
    assert_eq!(call.method, "POST");
    assert_eq!(call.target, "/sms-hooks/bookings");
    assert!(
        call.header("content-type").starts_with("application/json"),
        "{call:?}"
    );
    let expected = json!({
        "slot": "s-42",
        "name": "Ana",
        "party": 2,
        "sms": true,
        "tags": ["sms", ME],
        "who": { "from": ME },
    });
    assert_eq!(call.json(), expected);
    assert_call_headers(call, &fx.service, &sid);
}

#[tokio::test]
async fn two_calls_in_one_step_are_keyed_sid_then_sid_dot_node_and_the_first_feeds_the_second() {
    let fx = Fixture::start(&[]);
    fx.script("/first", Answer::json(200, r#"{"token":"t/1"}"#));
    fx.script("/second/t%2F1", Answer::json(200, r#"{"status":"held"}"#));
    let mut phone = fx.phone();
    let (reply, sid) = phone.says("TWO 50%&more=yes").await;
    assert_eq!(reply, "t/1 is held.");
    let calls = fx.calls_since(0);
    let [first, second] = calls.as_slice() else {
        panic!("two calls expected: {calls:#?}")
    };
    assert_eq!(
        (first.method.as_str(), first.target.as_str()),
        ("GET", "/sms-hooks/first")
    );
    assert_call_headers(first, &fx.service, &sid);
    assert_eq!(second.method, "PUT");
    assert_eq!(second.target, "/sms-hooks/second/t%2F1");
    assert_call_headers(second, &fx.service, &format!("{sid}.second"));
    assert!(
        second
            .header("content-type")
            .starts_with("application/x-www-form-urlencoded"),
        "{second:?}"
    );
    let mut form: Vec<(String, String)> = form_urlencoded::parse(&second.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    form.sort();
    let expected =
        [("from", ME), ("note", "50%&more=yes")].map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(form, expected);
}

#[tokio::test]
async fn the_endpoint_secret_from_the_environment_signs_instead_of_the_files() {
    let from_env = "callout-secret-from-the-environment";
    let fx = Fixture::start(&[("SMS_SESSIONS_ENDPOINT_CLINIC_SECRET", from_env)]);
    fx.script("/days/2026-03-10/slots", Answer::json(200, SLOTS));
    let mut phone = fx.phone();
    phone.says("SLOTS 2026-03-10").await;
    let calls = fx.calls_to("/days/2026-03-10/slots");
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_signed(&calls[0], from_env);
}

// ----------------------------------------------------------------- templated values stay put

/// `%XX` → that byte; anything else as it is.
fn percent_decode(text: &str) -> String {
    let mut out = Vec::new();
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        let escaped = tail
            .get(..2)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (byte, escaped) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                rest = &tail[2..];
            }
            _ => {
                out.push(byte);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_templated_value_cannot_leave_the_endpoint_through_the_path_or_the_query() {
    let fx = Fixture::start(&[]);
    let hostile = [
        "../../admin",
        "a/b?c=d#e",
        "@evil.example.com",
        "x@evil.example.com:81/p?q#f",
        "%2e%2e%2fadmin",
        "\\..\\admin",
        "..",
        ".",
    ];
    let mut phone = fx.phone();
    for value in hostile {
        let before = fx.service.requests().len();
        let (reply, _) = phone.says(&format!("SLOTS {value}")).await;
        let new = fx.calls_since(before);
        // A value of dots alone may be refused before sending (it could only be a dot
        // segment); then the flow takes on_error. Any other value is sent, encoded.
        if new.is_empty() && value.chars().all(|c| c == '.') {
            assert_eq!(reply, SORRY, "{value:?}");
            continue;
        }
        let [call] = new.as_slice() else {
            panic!("{value:?}: one call to this service expected, got {new:#?}")
        };
        // It reached this service (so no scheme, host or port changed), as this one request.
        assert_eq!(
            call.header("host"),
            fx.service.addr.to_string(),
            "{value:?}"
        );
        let segments: Vec<&str> = call.path().split('/').collect();
        let ["", "sms-hooks", "days", segment, "slots"] = segments.as_slice() else {
            panic!("{value:?} changed the path's shape: {}", call.target)
        };
        assert!(
            segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_~%".contains(&b)),
            "{value:?} is not percent-encoded in {}",
            call.target
        );
        assert_eq!(percent_decode(segment), value, "{}", call.target);
        let query =
            [("day", value), ("service", "cleaning")].map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(call.query(), query, "{}", call.target);
    }
}

// --------------------------------------------------------------------------------- on_error

/// Runs `SLOTS 2026-03-10` against `answer`: the reply must be the on_error text, after one
/// request. Returns how long the reply took.
async fn probe_fails_with(fx: &Fixture, answer: Answer) -> Duration {
    fx.script("/days/2026-03-10/slots", answer);
    let mut phone = fx.phone();
    let started = Instant::now();
    let (reply, _) = phone.says("SLOTS 2026-03-10").await;
    let took = started.elapsed();
    assert_eq!(reply, SORRY);
    let calls = fx.calls_to("/days/2026-03-10/slots");
    assert_eq!(calls.len(), 1, "{calls:#?}");
    took
}

#[tokio::test]
async fn a_500_goes_to_on_error() {
    let fx = Fixture::start(&[]);
    probe_fails_with(&fx, Answer::json(500, SLOTS)).await;
}

#[tokio::test]
async fn a_timeout_goes_to_on_error_and_the_reply_still_arrives_within_the_request_timeout() {
    let fx = Fixture::start(&[]);
    let slow = Answer::json(200, SLOTS).after(Duration::from_secs(8));
    let took = probe_fails_with(&fx, slow).await;
    // The endpoint's timeout (1 s) ends the call; server.request_timeout (3 s) + 1 s bounds all.
    assert!(took >= Duration::from_millis(900), "gave up after {took:?}");
    assert!(took < Duration::from_secs(4), "the reply took {took:?}");
}

#[tokio::test]
async fn a_refused_connection_goes_to_on_error() {
    let fx = Fixture::start(&[]);
    let mut phone = fx.phone();
    let started = Instant::now();
    let (reply, _) = phone.says("DOWN").await;
    assert_eq!(reply, SORRY);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_answer_that_is_not_json_goes_to_on_error() {
    let fx = Fixture::start(&[]);
    let html = Answer::status(200)
        .body(b"<html>Service Unavailable</html>".to_vec())
        .header("content-type", "text/html");
    probe_fails_with(&fx, html).await;
}

#[tokio::test]
async fn an_answer_over_256_kib_goes_to_on_error_and_one_under_it_does_not() {
    let fx = Fixture::start(&[]);
    let padded = |size: usize| {
        let head = r#"{"slots":[{"id":"s9","label":"9:00 AM"}],"pad":""#;
        let pad = "x".repeat(size - head.len() - 2);
        Answer::json(200, &format!("{head}{pad}\"}}"))
    };
    fx.script("/days/2026-03-10/slots", padded(250 * 1024));
    let mut phone = fx.phone();
    let (reply, _) = phone.says("SLOTS 2026-03-10").await;
    assert_eq!(reply, "1 openings, the first at 9:00 AM.");

    fx.script("/days/2026-03-10/slots", padded(256 * 1024 + 1));
    let (reply, _) = phone.says("SLOTS 2026-03-10").await;
    assert_eq!(reply, SORRY);
}

#[tokio::test]
async fn an_answer_without_a_saved_pointer_goes_to_on_error() {
    let fx = Fixture::start(&[]);
    // `/slots/0/label` points at nothing in an empty list.
    probe_fails_with(&fx, Answer::json(200, r#"{"slots":[]}"#)).await;
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_goes_to_on_error() {
    let fx = Fixture::start(&[]);
    fx.script("/elsewhere", Answer::json(200, SLOTS));
    let to = fx.service.url("/sms-hooks/elsewhere");
    probe_fails_with(&fx, Answer::status(302).header("location", &to)).await;
    assert!(fx.calls_to("/elsewhere").is_empty());
}

// ------------------------------------------------------------------------------ idempotency

#[tokio::test]
async fn a_retried_message_sid_makes_no_second_call_in_a_store_mode() {
    let fx = Fixture::start(&[("SMS_SESSIONS_STORE", "memory")]);
    fx.script("/days/2026-03-10/slots", Answer::json(200, SLOTS));
    let mut phone = fx.phone();
    let sid = "SM5e1ec7ed0000000000000000000000aa";
    let first = phone.send_as(sid, "SLOTS 2026-03-10").await;
    let retry = phone.send_as(sid, "SLOTS 2026-03-10").await;
    assert_eq!(message_text(&first), "2 openings, the first at 9:00 AM.");
    assert_eq!(retry.body, first.body, "a retry gets the same reply");
    let calls = fx.calls_to("/days/2026-03-10/slots");
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0].header("idempotency-key"), sid);
    // Nor does the flow end twice.
    fx.service.wait_for("/sms-hooks/results", HOOK_WAIT);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fx.calls_to("/results").len(), 1);
}

#[tokio::test]
async fn a_retried_message_sid_in_cookie_mode_calls_again_with_the_same_key() {
    // No store, no memory of the sid: the service's Idempotency-Key is what dedupes.
    let fx = Fixture::start(&[]);
    fx.script("/bookings", Answer::json(201, r#"{"reference":"A7K2"}"#));
    let mut phone = fx.phone();
    let sid = "SM5e1ec7ed0000000000000000000000bb";
    phone.send_as(sid, "RESERVE s-42").await;
    phone.cookie = None; // Twilio's retry carries the cookie the first attempt had: none
    phone.send_as(sid, "RESERVE s-42").await;
    let calls = fx.calls_to("/bookings");
    assert_eq!(calls.len(), 2, "{calls:#?}");
    for call in &calls {
        assert_eq!(call.header("idempotency-key"), sid);
    }
    assert_eq!(calls[0].body, calls[1].body);
}

// ------------------------------------------------------------------------------------ hooks

#[tokio::test]
async fn the_results_hook_arrives_after_a_flow_ends_without_delaying_the_reply() {
    let fx = Fixture::start(&[]);
    // A slow results service: the reply must not wait for it.
    fx.service.answer(
        "/sms-hooks/results",
        Answer::status(204).after(Duration::from_secs(3)),
    );
    let mut phone = fx.phone();
    assert_eq!(phone.says("INTAKE").await.0, "Your name?");
    assert!(fx.calls_to("/results").is_empty(), "the flow has not ended");
    let started = Instant::now();
    let (reply, sid) = phone.says("Ana").await;
    assert_eq!(reply, "Thanks, Ana.");
    // Well under the results service's 3 s.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "the reply took {took:?}");

    let hook = fx.service.wait_for("/sms-hooks/results", HOOK_WAIT);
    assert!(hook.header("content-type").starts_with("application/json"));
    let event = assert_hook(&hook, "/sms-hooks/results", &sid);
    assert_eq!(event["event"], "flow.ended", "{event}");
    assert_eq!(event["flow"], "intake", "{event}");
    assert_eq!(event["outcome"], "completed", "{event}");
    assert_eq!(event["variables"]["name"], "Ana", "{event}");
    let ended = event["ended_at"].as_str().expect("ended_at");
    assert!(ended.parse::<jiff::Timestamp>().is_ok(), "{event}");
}

#[tokio::test]
async fn the_opt_out_hook_arrives_after_stop_and_the_waiting_flow_ends_opted_out() {
    let fx = Fixture::start(&[]);
    let mut phone = fx.phone();
    assert_eq!(phone.says("INTAKE").await.0, "Your name?");
    let (reply, sid) = phone.send("STOP").await;
    assert!(!text(&reply).contains("<Message>"), "{}", text(&reply));

    let hook = fx.service.wait_for("/sms-hooks/opt-outs", HOOK_WAIT);
    let event = assert_hook(&hook, "/sms-hooks/opt-outs", &sid);
    assert_eq!(event["event"], "opt_out", "{event}");
    assert!(
        event["at"]
            .as_str()
            .is_some_and(|at| at.parse::<jiff::Timestamp>().is_ok()),
        "{event}"
    );

    let ended = fx.service.wait_for("/sms-hooks/results", HOOK_WAIT).json();
    assert_eq!(ended["flow"], "intake", "{ended}");
    assert_eq!(ended["outcome"], "opted_out", "{ended}");
}

// ----------------------------------------------------------------- the verifier a user pastes

#[tokio::test]
async fn the_python_verifier_accepts_a_request_the_server_sent_and_refuses_it_altered() {
    let python = Command::new("python3").arg("--version").output();
    if !python.is_ok_and(|o| o.status.success()) {
        common::tool_missing("python3 is not installed: examples/verify/verify.py is not run");
        return;
    }
    let fx = Fixture::start(&[]);
    fx.script("/bookings", Answer::json(201, r#"{"reference":"A7K2"}"#));
    let mut phone = fx.phone();
    phone.says("RESERVE s-42").await;
    let calls = fx.calls_to("/bookings");
    let call = calls.first().expect("a booking call");
    let dir = TempDir::new("verify-py");
    let body = dir.0.join("body");
    std::fs::write(&body, &call.body).expect("write the body");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/verify/verify.py");
    let verify = |method: &str, target: &str, body: &std::path::Path| {
        let header = call.header("x-sms-sessions-signature");
        let output = Command::new("python3")
            .args([script, ENDPOINT_SECRET, header, method, target])
            .arg(body)
            .output()
            .expect("run python3");
        output.status.code()
    };
    assert_eq!(
        verify(&call.method, &call.target, &body),
        Some(0),
        "{call:?}"
    );
    assert_eq!(verify("PUT", &call.target, &body), Some(1));
    assert_eq!(
        verify(&call.method, "/sms-hooks/bookings?x=1", &body),
        Some(1)
    );
    let altered = dir.0.join("altered");
    let mut bytes = call.body.clone();
    bytes.extend_from_slice(b" ");
    std::fs::write(&altered, bytes).expect("write the altered body");
    assert_eq!(verify(&call.method, &call.target, &altered), Some(1));
}

// ------------------------------------------------------------------- the shipped clinic flow

fn clinic_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/config/flows/clinic").to_owned()
}

#[tokio::test]
async fn the_clinic_flow_books_a_slot_and_a_409_brings_fresh_slots() {
    let dir = clinic_dir();
    let fx = Fixture::start(&[("SMS_SESSIONS_FLOWS_DIR", dir.as_str())]);
    let two = r#"{"slots":[{"id":"S1","label":"9:00 AM"},{"id":"S2","label":"10:30 AM"}]}"#;
    fx.script("/slots", Answer::json(200, two));
    // A week from today, where the flow's clock is.
    let day = jiff::Timestamp::now()
        .in_tz("America/New_York")
        .expect("the flow's time zone")
        .date()
        .checked_add(jiff::Span::new().days(7))
        .expect("a date");
    let iso = day.to_string();
    let shown = day.strftime("%a %b %-d").to_string();
    let mut phone = fx.phone();

    let (reply, _) = phone.says("BOOK").await;
    assert!(
        reply.ends_with("What is the visit for? Reply 1 Cleaning, 2 Check-up, 3 Tooth pain"),
        "{reply}"
    );
    assert_eq!(
        phone.says("1").await.0,
        "What name should the booking be under?"
    );
    assert!(
        phone
            .says("Ana")
            .await
            .0
            .starts_with("Which day suits you?")
    );
    let (reply, sid) = phone.says(&iso).await;
    assert_eq!(
        reply,
        format!("Openings on {shown}:\n1) 9:00 AM\n2) 10:30 AM\nReply with the number.")
    );
    let fetched = fx.calls_to("/slots");
    assert_eq!(fetched.len(), 1, "{fetched:#?}");
    assert_eq!(
        fetched[0].target,
        format!("/sms-hooks/slots?date={iso}&service=cleaning")
    );
    assert_call_headers(&fetched[0], &fx.service, &sid);

    let (reply, _) = phone.says("2").await;
    assert_eq!(
        reply,
        format!("Book a cleaning for Ana on {shown} at 10:30 AM? Reply YES or NO")
    );

    // Someone else took 10:30 meanwhile.
    fx.script("/bookings", Answer::json(409, r#"{"error":"taken"}"#));
    fx.script(
        "/slots",
        Answer::json(200, r#"{"slots":[{"id":"S1","label":"9:00 AM"}]}"#),
    );
    let (reply, sid) = phone.says("yes").await;
    assert_eq!(
        reply,
        format!(
            "Sorry, I couldn't book 10:30 AM: it may have just been taken.\n\nOpenings on {shown}:\n1) 9:00 AM\nReply with the number."
        )
    );
    let booked = fx.calls_to("/bookings");
    assert_eq!(booked.len(), 1, "{booked:#?}");
    assert_eq!(
        booked[0].json(),
        json!({ "slot": "S2", "name": "Ana", "service": "cleaning" })
    );
    assert_call_headers(&booked[0], &fx.service, &sid);
    let fetched = fx.calls_to("/slots");
    assert_eq!(fetched.len(), 2, "{fetched:#?}");
    assert_call_headers(&fetched[1], &fx.service, &format!("{sid}.fetch_slots"));

    fx.script("/bookings", Answer::json(201, r#"{"reference":"A7K2"}"#));
    let (reply, _) = phone.says("1").await;
    assert_eq!(
        reply,
        format!("Book a cleaning for Ana on {shown} at 9:00 AM? Reply YES or NO")
    );
    let (reply, sid) = phone.says("yes").await;
    assert_eq!(
        reply,
        format!(
            "Booked! Cleaning on {shown} at 9:00 AM, under Ana. Your reference is A7K2. Text BOOK to book again."
        )
    );
    let booked = fx.calls_to("/bookings");
    assert_eq!(booked.len(), 2, "{booked:#?}");
    assert_eq!(booked[1].json()["slot"], "S1");
    assert_call_headers(&booked[1], &fx.service, &sid);

    let ended = fx.service.wait_for("/sms-hooks/results", HOOK_WAIT).json();
    assert_eq!(ended["flow"], "booking", "{ended}");
    assert_eq!(ended["outcome"], "completed", "{ended}");
    assert_eq!(ended["variables"]["reference"], "A7K2", "{ended}");
}

const LIMIT: Duration = Duration::from_secs(30);

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn flow_test_passes_the_clinic_flows_offline() {
    let dir = clinic_dir();
    let run = run_within(&["flow", "test", &dir], &[], LIMIT);
    let out = stdout(&run);
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{out}\n{err}");
    let file = std::fs::read_to_string(format!("{dir}/booking.toml")).expect("the clinic flow");
    let file: toml::Table = toml::from_str(&file).expect("valid TOML");
    let tests = file["tests"].as_array().expect("[[tests]]");
    assert!(tests.len() >= 4, "{tests:?}");
    let names: Vec<String> = tests
        .iter()
        .map(|test| format!("booking / {}", test["name"].as_str().expect("a name")))
        .collect();
    assert_flow_tests_passed(&out, &names);
}

#[test]
fn the_walkthrough_config_checks_with_its_endpoint_and_never_prints_the_secret() {
    // Relative paths in config/clinic.toml are from the repository's root, as in the README.
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config/clinic.toml");
    let check = run_within(&["--config", config, "check-config"], &[], LIMIT);
    let (out, err) = (stdout(&check), String::from_utf8_lossy(&check.stderr));
    assert_eq!(check.status.code(), Some(0), "{out}\n{err}");
    let secret = "clinic-demo-secret-0123456789";
    assert!(
        !out.contains(secret) && !err.contains(secret),
        "{out}\n{err}"
    );

    let flows = run_within(
        &["--config", config, "flow", "check", &clinic_dir()],
        &[],
        LIMIT,
    );
    let out = stdout(&flows);
    assert_eq!(
        flows.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&flows.stderr)
    );
    assert!(out.contains("1 flow OK (booking)"), "{out}");
}
