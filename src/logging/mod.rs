//! Tracing set-up, the one-line-per-webhook request log, and phone-number masking.
//!
//! Every request gets an id, echoed in the response and logged as `request_id` on the lines
//! the request causes (at debug level a span carries it to every line). The server makes it,
//! unless `server.trust_request_id` says a proxy in front sets `X-Request-Id`; an untrusted
//! client's own id, when plain, is logged beside it as `client_request_id`, never in its place.
//! After the response, one line at info records what an operator needs and nothing they must
//! not see: the MessageSid, masked numbers, the session outcome, the status and the latency.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::Response;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

mod format;

pub use format::{PlainFields, UtcMicros};

use crate::config::LogFormat;
use crate::metrics::{Metrics, Observation};
use crate::routes::WebhookLog;
use crate::twilio::webhook::Rejection;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global subscriber: `RUST_LOG` filters (default `info`), text or JSON lines on
/// stdout, one `write` per line. Safe to call twice (the second call does nothing).
pub fn init(format: LogFormat) {
    install(format, std::io::stdout);
}

/// Like [`init`], but lines are written to stdout in batches: the caller must run [`flush`]
/// from its runtime's `on_thread_park` hook and before exiting (the binary's `main` does).
pub fn init_batched(format: LogFormat) {
    install(format, || BatchedStdout);
}

fn install<W>(format: LogFormat, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(UtcMicros)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        // Plain text even on a terminal: colours (tracing-subscriber's `ansi` feature) cost
        // every line's fields a round of styling.
        LogFormat::Text => builder.with_ansi(false).fmt_fields(PlainFields).try_init(),
    };
}

/// Replaces the panic hook for the server: a panic is logged as one error line with where it
/// happened, and its message is left out, because a message like "byte index 49 is not a char
/// boundary; it is inside … of `…`" can quote a webhook body, phone numbers included. The
/// request that panicked gets a 500 (see [`crate::front`]); the server carries on.
pub fn log_panics_without_their_message() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map_or_else(String::new, ToString::to_string);
        tracing::error!(%location, "panic (message withheld: it may quote request data)");
    }));
}

/// Log lines waiting for stdout. One `write` per line cost a fifth of the server's CPU under
/// load (a system call, and into a pipe a wake-up of the reader); appended here instead, they
/// go out together when a runtime worker runs out of work, or once [`FLUSH_AT`] bytes pile up.
/// The formatter hands over each line whole, so text and JSON stay one line per event.
static PENDING: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Bytes of pending lines that are written at once, busy or not.
const FLUSH_AT: usize = 64 * 1024;

/// Writes the pending log lines of [`init_batched`] to stdout. `main` runs it whenever a runtime
/// worker is about to go idle (tokio's `on_thread_park`) and before exiting; code that logs
/// outside a worker and must be seen at once (the start-up lines) calls it too.
pub fn flush() {
    let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
    write_out(&mut pending);
}

fn write_out(pending: &mut Vec<u8>) {
    if !pending.is_empty() {
        // Nowhere to report a failed write to stdout; the lines are dropped.
        let _ = std::io::stdout().lock().write_all(pending);
        pending.clear();
    }
}

/// The subscriber's writer: appends to [`PENDING`].
struct BatchedStdout;

impl Write for BatchedStdout {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
        pending.extend_from_slice(line);
        if pending.len() >= FLUSH_AT {
            write_out(&mut pending);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `+14155550199` → `+14*******99`; `whatsapp:+14155550199` → `whatsapp:+14*******99`.
/// Enough to tell numbers apart in a log, not enough to call them.
pub fn mask_phone(address: &str) -> String {
    let (channel, number) = match address.split_once(':') {
        Some((channel, number)) => (&address[..=channel.len()], number),
        None => ("", address),
    };
    let count = number.chars().count();
    let shown = |i: usize| count > 6 && (i < 3 || i + 2 >= count);
    let mut masked = String::with_capacity(address.len());
    masked.push_str(channel);
    masked.extend(
        number
            .chars()
            .enumerate()
            .map(|(i, c)| if shown(i) { c } else { '*' }),
    );
    masked
}

/// Makes request ids: a random per-process prefix and a counter (cheap, unique, sortable).
///
/// An incoming `X-Request-Id` is kept only when the operator trusts it
/// (`server.trust_request_id`: a proxy in front sets it); otherwise anyone could choose the id
/// that a line is filed under, one that already names another request included.
#[derive(Debug)]
pub struct RequestIds {
    prefix: u32,
    next: AtomicU64,
    trust_incoming: bool,
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new(false)
    }
}

/// The id a request got, and the client's own `X-Request-Id` when it was not used (and is plain
/// enough to log): the log line carries it as `client_request_id`.
#[derive(Debug)]
pub(crate) struct RequestId {
    pub id: HeaderValue,
    pub client: Option<HeaderValue>,
}

impl RequestIds {
    /// Ids made here; incoming ones kept too when `trust_incoming`.
    pub fn new(trust_incoming: bool) -> Self {
        Self {
            prefix: rand::random(),
            next: AtomicU64::new(1),
            trust_incoming,
        }
    }

    fn make(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::try_from(format!("{:08x}-{n:06}", self.prefix))
            .expect("hex and digits are valid")
    }

    /// Gives a request its id, in `headers` (where [`request_id`] finds it): a trusted plain
    /// incoming id, else a new one, which replaces the client's. Without an incoming header this
    /// costs what making the id costs, nothing more.
    fn assign(&self, headers: &mut HeaderMap) -> RequestId {
        if self.trust_incoming
            && let Some(id) = headers.get(REQUEST_ID).filter(|id| plain(id))
        {
            let id = id.clone();
            return RequestId { id, client: None };
        }
        let id = self.make();
        let client = headers.insert(REQUEST_ID, id.clone()).filter(plain);
        RequestId { id, client }
    }
}

/// Short and plain: fit for a log line (an id ends up in every line of its request).
fn plain(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// What the request-log middleware holds: the id maker and, unless turned off, the metrics
/// (recorded next to the log line, from the same response extensions).
#[derive(Debug, Default)]
pub struct Observer {
    pub ids: RequestIds,
    pub metrics: Option<Arc<Metrics>>,
}

impl Observer {
    /// Gives the request its id (see [`RequestIds`]) and sets it on the request, where
    /// [`request_id`] finds it for the lines a handler logs.
    pub(crate) fn request_id(&self, request: &mut Request) -> RequestId {
        self.ids.assign(request.headers_mut())
    }

    /// Echoes the id in the response, then writes the request's log line and metrics.
    pub(crate) fn record(
        &self,
        method: &Method,
        path: &str,
        response: &mut Response,
        ids: RequestId,
        latency: Duration,
    ) {
        record(
            self.metrics.as_deref(),
            ids.id.to_str().unwrap_or_default(),
            ids.client.as_ref().and_then(|id| id.to_str().ok()),
            method,
            path,
            response,
            latency.as_micros(),
        );
        response.headers_mut().insert(REQUEST_ID, ids.id);
    }
}

/// The id the front gave this request, for a line a handler logs (see [`Observer`]).
pub fn request_id(headers: &HeaderMap) -> &str {
    headers
        .get(REQUEST_ID)
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default()
}

fn record(
    metrics: Option<&Metrics>,
    request_id: &str,
    client_request_id: Option<&str>,
    method: &Method,
    path: &str,
    response: &Response,
    latency_us: u128,
) {
    // A u64 is a JSON number; a u128 would be logged as a string.
    let latency_us = u64::try_from(latency_us).unwrap_or(u64::MAX);
    let status = response.status().as_u16();
    if path == "/healthz" || path == "/metrics" {
        tracing::debug!(
            request_id,
            client_request_id,
            %method,
            path,
            status,
            latency_us,
            "health check or scrape"
        );
        return;
    }
    let rejected = response.extensions().get::<Rejection>();
    let log = response.extensions().get::<WebhookLog>();
    if let Some(metrics) = metrics {
        metrics.record(&Observation {
            path,
            status: response.status(),
            rejected: rejected.map(|r| r.label()),
            session: log.and_then(|l| l.session),
            message_status: log.and_then(|l| l.message_status.as_deref()),
            trace: log.and_then(|l| l.trace.as_ref()),
            latency_us,
        });
    }
    // Field values are only evaluated when the line is enabled; a `None` field is left out, so a
    // line carries only what applies (no empty `rejected=""` on every accepted webhook).
    let present = |text: &str| !text.is_empty();
    let trace = log.and_then(|l| l.trace.as_ref());
    tracing::info!(
        request_id,
        client_request_id,
        %method,
        path,
        status,
        latency_us,
        message_sid = log.map(|l| l.message_sid.as_str()).filter(|sid| present(sid)),
        from = log.map(|l| l.from.as_str()).filter(|from| present(from)),
        to = log.map(|l| l.to.as_str()).filter(|to| present(to)),
        session = log.and_then(|l| l.session),
        message_status = log.and_then(|l| l.message_status.as_deref()),
        flow = trace.and_then(|t| t.flow.as_deref()),
        node = trace.and_then(|t| t.node.as_deref()),
        step = trace.map(|t| t.outcome),
        rejected = rejected.map(|r| r.label()),
        reason = rejected.map(tracing::field::display),
        "webhook"
    );
}

#[cfg(test)]
mod tests {
    use super::format::tests::WriteTo;
    use super::*;

    #[test]
    fn masks_keep_only_the_ends() {
        assert_eq!(mask_phone("+14155550199"), "+14*******99");
        assert_eq!(mask_phone("whatsapp:+14155550199"), "whatsapp:+14*******99");
        assert_eq!(mask_phone("12345"), "*****");
        assert_eq!(mask_phone("1234567"), "123**67");
        assert_eq!(mask_phone("ünïcödé+1"), "ünï****+1");
        assert_eq!(mask_phone(""), "");
    }

    fn with_incoming(id: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static(id));
        headers
    }

    #[test]
    fn an_untrusted_incoming_id_is_replaced_and_kept_apart_for_the_log() {
        let ids = RequestIds::default();
        let mut headers = with_incoming("abc-123");
        let given = ids.assign(&mut headers);
        assert_ne!(given.id, "abc-123");
        assert_eq!(
            given.client.as_ref().map(HeaderValue::as_bytes),
            Some(&b"abc-123"[..])
        );
        assert_eq!(request_id(&headers), given.id);
    }

    #[test]
    fn an_incoming_id_is_kept_only_when_trusted_and_plain() {
        let long = "x".repeat(65);
        for trust in [false, true] {
            let ids = RequestIds::new(trust);
            let mut headers = with_incoming("abc-123");
            let given = ids.assign(&mut headers);
            assert_eq!(given.id == "abc-123", trust);
            assert_eq!(request_id(&headers), given.id);
            for evil in ["a b\" injected=1", "", long.as_str()] {
                let mut headers = HeaderMap::new();
                headers.insert(REQUEST_ID, HeaderValue::try_from(evil).expect("visible"));
                let given = ids.assign(&mut headers);
                assert_ne!(given.id, evil);
                assert_eq!(given.client, None, "not plain: not logged at all");
                assert_eq!(request_id(&headers), given.id);
            }
            let (mut first, mut second) = (HeaderMap::new(), HeaderMap::new());
            let (first, second) = (ids.assign(&mut first), ids.assign(&mut second));
            assert_ne!(first.id, second.id);
            assert_eq!((first.client, second.client), (None, None));
        }
    }

    /// The request log line `record` writes for `ids`, without its timestamp.
    fn logged(ids: RequestId) -> String {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .without_time()
            .with_ansi(false)
            .with_writer(move || WriteTo(sink.clone()))
            .finish();
        let mut response = Response::new(axum::body::Body::empty());
        tracing::subscriber::with_default(subscriber, || {
            let observer = Observer::default();
            observer.record(&Method::POST, "/sms", &mut response, ids, Duration::ZERO);
        });
        let bytes = buffer.lock().expect("not poisoned").clone();
        String::from_utf8(bytes).expect("UTF-8")
    }

    #[test]
    fn the_log_line_names_the_client_id_apart_from_the_one_used() {
        let ids = RequestIds::default();
        let given = ids.assign(&mut with_incoming("abc-123"));
        let id = given.id.to_str().expect("ascii").to_owned();
        let line = logged(given);
        assert!(line.contains(&format!(" request_id=\"{id}\"")), "{line}");
        assert!(line.contains(" client_request_id=\"abc-123\""), "{line}");
        let line = logged(ids.assign(&mut HeaderMap::new()));
        assert!(line.contains(" request_id="), "{line}");
        assert!(!line.contains("client_request_id"), "{line}");
    }
}
