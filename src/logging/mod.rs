//! Tracing set-up, the one-line-per-webhook request log, and phone-number masking.
//!
//! Every request gets an id (a sane incoming `X-Request-Id` is kept, else one is made), echoed
//! in the response and logged as `request_id` on the lines the request causes (at debug level
//! a span carries it to every line). After the response, one line at info records what an
//! operator needs and nothing they must not see: the MessageSid, masked numbers, the session
//! outcome, the status and the latency.

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
#[derive(Debug)]
pub struct RequestIds {
    prefix: u32,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        Self {
            prefix: rand::random(),
            next: AtomicU64::new(1),
        }
    }
}

impl RequestIds {
    fn make(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::try_from(format!("{:08x}-{n:06}", self.prefix))
            .expect("hex and digits are valid")
    }

    /// Keeps an incoming id only when it is short and plain (it ends up in logs).
    fn pick(&self, incoming: Option<&HeaderValue>) -> HeaderValue {
        let plain = |v: &&HeaderValue| {
            let bytes = v.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= 64
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
        };
        incoming
            .filter(plain)
            .cloned()
            .unwrap_or_else(|| self.make())
    }
}

/// What the request-log middleware holds: the id maker and, unless turned off, the metrics
/// (recorded next to the log line, from the same response extensions).
#[derive(Debug, Default)]
pub struct Observer {
    pub ids: RequestIds,
    pub metrics: Option<Arc<Metrics>>,
}

impl Observer {
    /// Picks the request's id (see [`RequestIds::pick`]) and sets it on the request, where
    /// [`request_id`] finds it for the lines a handler logs.
    pub(crate) fn request_id(&self, request: &mut Request) -> HeaderValue {
        let id = self.ids.pick(request.headers().get(REQUEST_ID));
        request.headers_mut().insert(REQUEST_ID, id.clone());
        id
    }

    /// Echoes the id in the response, then writes the request's log line and metrics.
    pub(crate) fn record(
        &self,
        method: &Method,
        path: &str,
        response: &mut Response,
        id: HeaderValue,
        latency: Duration,
    ) {
        let request_id = id.to_str().unwrap_or_default();
        record(
            self.metrics.as_deref(),
            request_id,
            method,
            path,
            response,
            latency.as_micros(),
        );
        response.headers_mut().insert(REQUEST_ID, id);
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
    method: &Method,
    path: &str,
    response: &Response,
    latency_us: u128,
) {
    // A u64 is a JSON number; a u128 would be logged as a string.
    let latency_us = u64::try_from(latency_us).unwrap_or(u64::MAX);
    let status = response.status().as_u16();
    if path == "/healthz" || path == "/metrics" {
        tracing::debug!(request_id, %method, path, status, latency_us, "health check or scrape");
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
            latency_us,
        });
    }
    // Field values are only evaluated when the line is enabled; a `None` field is left out, so a
    // line carries only what applies (no empty `rejected=""` on every accepted webhook).
    let present = |text: &str| !text.is_empty();
    tracing::info!(
        request_id,
        %method,
        path,
        status,
        latency_us,
        message_sid = log.map(|l| l.message_sid.as_str()).filter(|sid| present(sid)),
        from = log.map(|l| l.from.as_str()).filter(|from| present(from)),
        to = log.map(|l| l.to.as_str()).filter(|to| present(to)),
        session = log.and_then(|l| l.session),
        message_status = log.and_then(|l| l.message_status.as_deref()),
        rejected = rejected.map(|r| r.label()),
        reason = rejected.map(tracing::field::display),
        "webhook"
    );
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn incoming_request_ids_are_kept_only_when_plain() {
        let ids = RequestIds::default();
        let good = HeaderValue::from_static("abc-123");
        assert_eq!(ids.pick(Some(&good)), good);
        let evil = HeaderValue::from_static("a b\" injected=1");
        assert_ne!(ids.pick(Some(&evil)), evil);
        assert_ne!(ids.pick(None), ids.pick(None));
    }
}
