//! Prometheus metrics: webhooks by route and status, gate rejections by reason, sessions by
//! outcome, status callbacks by `MessageStatus`, call-outs and hooks, and a latency histogram — served as Prometheus
//! text on `GET /metrics` (main listener by default, or `server.metrics_listen`).
//!
//! Recording sits on the webhook hot path, so it is a handful of atomic operations: every label
//! value the server can produce is a `&'static str` mapped to a handle resolved once (at start-up,
//! or on its first use for the sparse route × status grid), so a request never hashes, locks,
//! formats a label or allocates. The `prometheus` crate is used because its counters are one
//! `fetch_add` and its histogram is lock-free (`prometheus-client`'s takes a mutex per
//! observation; `metrics`' exporter queues every sample until the next scrape).

use std::sync::OnceLock;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use std::sync::Arc;

/// The `Content-Type` of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Route label values: the two webhooks, and everything else (404s, scanners).
const ROUTES: [&str; 3] = ["/sms", "/sms/status", "other"];
/// Statuses with a cached counter per route; any other status still counts, via a lookup.
const STATUSES: [StatusCode; 12] = [
    StatusCode::OK,
    StatusCode::NO_CONTENT,
    StatusCode::BAD_REQUEST,
    StatusCode::FORBIDDEN,
    StatusCode::NOT_FOUND,
    StatusCode::METHOD_NOT_ALLOWED,
    StatusCode::REQUEST_TIMEOUT,
    StatusCode::PAYLOAD_TOO_LARGE,
    StatusCode::UNSUPPORTED_MEDIA_TYPE,
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
];
/// Gate rejection reasons (`twilio::webhook::Rejection::label`), exported from the start at 0.
const REASONS: [&str; 10] = [
    "missing_signature",
    "malformed_signature",
    "signature_mismatch",
    "body_hash",
    "bad_url",
    "not_form",
    "too_large",
    "body_read",
    "body_timeout",
    "bad_field",
];
/// Session outcomes (`session::Outcome::as_str`), exported from the start at 0.
/// In a store mode also `rotated` and `imported` (`store::Found`), and the texts answered
/// without a step: `duplicate` (a retry, answered with its reply), `replay` (answered empty),
/// `unavailable` (503).
const OUTCOMES: [&str; 9] = [
    "new",
    "resumed",
    "expired",
    "rejected",
    "rotated",
    "imported",
    "duplicate",
    "replay",
    "unavailable",
];
/// The store's operations, for `store_duration_seconds{op}`.
const STORE_OPS: [&str; 5] = ["begin", "commit", "release", "peek", "ping"];
/// Store calls take well under a millisecond on loopback; `store.timeout` is 1 s by default.
const STORE_BUCKETS: [f64; 12] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];
/// Call-outs take milliseconds on a private network; an endpoint's timeout is 3 s by default
/// and always under `server.request_timeout`.
const CALLOUT_BUCKETS: [f64; 12] = [
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// The hooks (`callout::Hooks`) and what became of their events, exported from the start at 0.
const HOOKS: [&str; 2] = ["results", "opt_out"];
const HOOK_OUTCOMES: [&str; 3] = ["delivered", "failed", "dropped"];
/// Twilio's documented `MessageStatus` values; anything else counts as `other`, so a caller
/// cannot grow the number of series.
const MESSAGE_STATUSES: [&str; 14] = [
    "accepted",
    "scheduled",
    "canceled",
    "queued",
    "sending",
    "sent",
    "failed",
    "delivered",
    "undelivered",
    "receiving",
    "received",
    "read",
    "partially_delivered",
    "other",
];
/// Latency buckets in seconds: a webhook normally takes well under a millisecond; Twilio gives
/// up at 15 s.
const LATENCY_BUCKETS: [f64; 15] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
    15.0,
];

/// One answered webhook, as the request log sees it.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub path: &'a str,
    pub status: StatusCode,
    /// `Rejection::label` when the gate refused the request.
    pub rejected: Option<&'static str>,
    /// `Outcome::as_str` when a session was loaded.
    pub session: Option<&'static str>,
    pub message_status: Option<&'a str>,
    /// Where a flow from a file went.
    pub trace: Option<&'a crate::flows::Trace>,
    pub latency_us: u64,
}

/// The registry and pre-resolved handles. Shared as `Arc<Metrics>`.
pub struct Metrics {
    registry: Registry,
    webhooks: IntCounterVec,
    webhook_slots: [[OnceLock<IntCounter>; STATUSES.len()]; ROUTES.len()],
    rejections: IntCounterVec,
    rejection_handles: [IntCounter; REASONS.len()],
    session_handles: [IntCounter; OUTCOMES.len()],
    callbacks: IntCounterVec,
    callback_slots: [OnceLock<IntCounter>; MESSAGE_STATUSES.len()],
    latency: [Histogram; ROUTES.len()],
    accept_errors: IntCounter,
    flow_steps: IntCounterVec,
    flow_call_errors: IntCounterVec,
    relay_texts: IntCounterVec,
    relay_deliveries: IntCounterVec,
    relay_sessions: IntCounterVec,
    relay_live: IntGauge,
    relay_numbers_in_use: IntGauge,
    timed_out: [IntCounter; 2],
    open: IntGauge,
    store_latency: [Histogram; STORE_OPS.len()],
    store_errors: IntCounterVec,
    store_waits: IntCounter,
    callouts: IntCounterVec,
    callout_latency: HistogramVec,
    hooks: [[IntCounter; HOOK_OUTCOMES.len()]; HOOKS.len()],
}

/// Counts one open connection for as long as it lives.
pub struct OpenConnection(IntGauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics { .. }")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter_vec(registry: &Registry, name: &str, help: &str, label: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), label).expect("valid metric definition");
    registry
        .register(Box::new(vec.clone()))
        .expect("metric names are unique");
    vec
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("sms_sessions".into()), None).expect("valid registry prefix");
        let webhooks = counter_vec(
            &registry,
            "webhooks_total",
            "Webhook requests answered, by route and HTTP status.",
            &["route", "status"],
        );
        let rejections = counter_vec(
            &registry,
            "webhook_rejections_total",
            "Webhooks refused before any handler ran (signature, URL, body checks), by reason.",
            &["reason"],
        );
        let sessions = counter_vec(
            &registry,
            "sessions_total",
            "Inbound messages by session outcome: new, resumed, expired, rejected (bad cookie).",
            &["outcome"],
        );
        let callbacks = counter_vec(
            &registry,
            "status_callbacks_total",
            "Message status callbacks, by MessageStatus (unknown values count as other).",
            &["message_status"],
        );
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "webhook_duration_seconds",
                "Time from request to response, by route.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )
        .expect("valid histogram definition");
        registry
            .register(Box::new(latency.clone()))
            .expect("metric names are unique");
        let build = IntGauge::with_opts(
            Opts::new("build_info", "Always 1; the version is a label.")
                .const_label("version", env!("CARGO_PKG_VERSION")),
        )
        .expect("valid gauge");
        build.set(1);
        registry
            .register(Box::new(build))
            .expect("metric names are unique");
        let accept_errors = IntCounter::new(
            "accept_errors_total",
            "Connections the listener failed to accept (EMFILE and the like).",
        )
        .expect("valid counter");
        registry
            .register(Box::new(accept_errors.clone()))
            .expect("metric names are unique");
        let timed_out = counter_vec(
            &registry,
            "connections_timed_out_total",
            "Connections closed for sending no request head in time (head) or idling (idle).",
            &["phase"],
        );
        let flow_steps = counter_vec(
            &registry,
            "flow_steps_total",
            "Steps of flows from files, by flow, node (where it waits or ended) and outcome.",
            &["flow", "node", "outcome"],
        );
        let flow_call_errors = counter_vec(
            &registry,
            "flow_call_errors_total",
            "Call-outs of flows that went to their on_error, by flow, call node and reason \
             (status, timeout, connect, too_large, not_json, missing, too_many, path, …).",
            &["flow", "node", "reason"],
        );
        let open =
            IntGauge::new("connections_open", "Client connections open now.").expect("valid gauge");
        registry
            .register(Box::new(open.clone()))
            .expect("metric names are unique");
        let store_latency = HistogramVec::new(
            HistogramOpts::new(
                "store_duration_seconds",
                "Time of the server-side store's calls, by operation (failed ones included).",
            )
            .buckets(STORE_BUCKETS.to_vec()),
            &["op"],
        )
        .expect("valid histogram definition");
        registry
            .register(Box::new(store_latency.clone()))
            .expect("metric names are unique");
        let store_errors = counter_vec(
            &registry,
            "store_errors_total",
            "Store calls that failed or timed out, by operation.",
            &["op"],
        );
        let relay_texts = counter_vec(
            &registry,
            "relay_texts_total",
            "Texts to relay numbers, by what happened: forwarded, empty, stranger, closed, \
             opted_out, rate_limited, closed_by_agent.",
            &["outcome"],
        );
        let relay_deliveries = counter_vec(
            &registry,
            "relay_delivery_errors_total",
            "Status callbacks of forwarded messages that report an error, by Twilio's code \
             (21610: the recipient opted out, who is then marked so).",
            &["code"],
        );
        let relay_sessions = counter_vec(
            &registry,
            "relay_sessions_total",
            "Relay sessions created (admin API or a flow's connect) and closed, by reason.",
            &["event"],
        );
        let relay_live = IntGauge::new(
            "relay_pool_sessions",
            "Open relay sessions summed over the pool numbers they use (a session counts once \
             per number), refreshed every 15 s.",
        )
        .expect("valid gauge");
        registry
            .register(Box::new(relay_live.clone()))
            .expect("metric names are unique");
        let relay_numbers_in_use = IntGauge::new(
            "relay_pool_numbers_in_use",
            "Pool numbers that at least one open relay session uses, refreshed every 15 s.",
        )
        .expect("valid gauge");
        registry
            .register(Box::new(relay_numbers_in_use.clone()))
            .expect("metric names are unique");
        let store_waits = IntCounter::new(
            "store_waits_total",
            "Times a step found its pair held by another replica's step and waited.",
        )
        .expect("valid counter");
        registry
            .register(Box::new(store_waits.clone()))
            .expect("metric names are unique");
        let callouts = counter_vec(
            &registry,
            "callouts_total",
            "Call-outs of flows' call nodes, by endpoint and outcome: ok (2xx), status (any \
             other status), or why no answer came (timeout, connect, too_large, budget, io, \
             unknown_endpoint).",
            &["endpoint", "outcome"],
        );
        let callout_latency = HistogramVec::new(
            HistogramOpts::new(
                "callout_duration_seconds",
                "Time of flows' call-outs, by endpoint (failed ones included).",
            )
            .buckets(CALLOUT_BUCKETS.to_vec()),
            &["endpoint"],
        )
        .expect("valid histogram definition");
        registry
            .register(Box::new(callout_latency.clone()))
            .expect("metric names are unique");
        let hooks = counter_vec(
            &registry,
            "hooks_total",
            "Results and opt-out hook events: delivered, failed (after its retries) or dropped \
             (queue full).",
            &["hook", "outcome"],
        );
        Self {
            registry,
            hooks: HOOKS
                .map(|hook| HOOK_OUTCOMES.map(|outcome| hooks.with_label_values(&[hook, outcome]))),
            callouts,
            callout_latency,
            store_latency: STORE_OPS.map(|op| store_latency.with_label_values(&[op])),
            store_errors,
            store_waits,
            accept_errors,
            flow_steps,
            flow_call_errors,
            relay_texts,
            relay_deliveries,
            relay_sessions,
            relay_live,
            relay_numbers_in_use,
            timed_out: ["head", "idle"].map(|phase| timed_out.with_label_values(&[phase])),
            open,
            webhook_slots: std::array::from_fn(|_| std::array::from_fn(|_| OnceLock::new())),
            rejection_handles: REASONS.map(|reason| rejections.with_label_values(&[reason])),
            session_handles: OUTCOMES.map(|outcome| sessions.with_label_values(&[outcome])),
            callback_slots: std::array::from_fn(|_| OnceLock::new()),
            latency: ROUTES.map(|route| latency.with_label_values(&[route])),
            webhooks,
            rejections,
            callbacks,
        }
    }

    /// Counts one answered webhook (not `/healthz` or `/metrics`: they are not webhooks).
    pub fn record(&self, seen: &Observation<'_>) {
        let route = route_index(seen.path);
        self.count_webhook(route, seen.status);
        self.latency[route].observe(seen.latency_us as f64 / 1e6);
        if let Some(label) = seen.rejected {
            self.count_rejection(label);
        }
        if let Some(outcome) = seen.session.and_then(outcome_index) {
            self.session_handles[outcome].inc();
        }
        if let Some(trace) = seen.trace {
            let flow = trace.flow.as_deref().unwrap_or("");
            let node = trace.node.as_deref().unwrap_or("");
            self.flow_steps
                .with_label_values(&[flow, node, trace.outcome])
                .inc();
            for (node, reason) in &trace.call_errors {
                self.flow_call_errors
                    .with_label_values(&[flow, node, reason])
                    .inc();
            }
        }
        if let Some(status) = seen.message_status {
            let index = message_status_index(status);
            self.callback_slots[index]
                .get_or_init(|| self.callbacks.with_label_values(&[MESSAGE_STATUSES[index]]))
                .inc();
        }
    }

    /// Times one store call (`op` one of `STORE_OPS`; others, `delete`, are not timed) and
    /// counts it when it failed.
    pub fn store_call(&self, op: &str, took: std::time::Duration, ok: bool) {
        if let Some(index) = STORE_OPS.iter().position(|known| *known == op) {
            self.store_latency[index].observe(took.as_secs_f64());
        }
        if !ok {
            self.store_errors.with_label_values(&[op]).inc();
        }
    }

    /// Counts and times one call-out of a flow: `outcome` is `ok`, `status` or a failure reason.
    /// Endpoint names come from the configuration, so they cannot grow the series.
    pub fn callout(&self, endpoint: &str, outcome: &str, took: std::time::Duration) {
        self.callouts.with_label_values(&[endpoint, outcome]).inc();
        self.callout_latency
            .with_label_values(&[endpoint])
            .observe(took.as_secs_f64());
    }

    /// Counts one hook event: `hook` is `results` or `opt_out`; `outcome` is `delivered`,
    /// `failed` or `dropped`.
    pub fn hook(&self, hook: &str, outcome: &str) {
        let hook = HOOKS.iter().position(|known| *known == hook);
        let outcome = HOOK_OUTCOMES.iter().position(|known| *known == outcome);
        if let (Some(hook), Some(outcome)) = (hook, outcome) {
            self.hooks[hook][outcome].inc();
        }
    }

    /// Counts a text the relay answered, by outcome.
    pub fn relay_text(&self, outcome: &str) {
        self.relay_texts.with_label_values(&[outcome]).inc();
    }

    /// Counts a forwarded message's delivery error, by Twilio's error code.
    pub fn relay_delivery_error(&self, code: &str) {
        let code = if code.len() <= 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            code
        } else {
            "other"
        };
        self.relay_deliveries.with_label_values(&[code]).inc();
    }

    /// Counts a relay session `created` or closed (`closed`, `ttl`, `agent`).
    pub fn relay_session(&self, event: &str) {
        self.relay_sessions.with_label_values(&[event]).inc();
    }

    /// Sets the relay gauges from the pool's status.
    pub fn relay_pool(&self, sessions: usize, numbers_in_use: usize) {
        self.relay_live
            .set(i64::try_from(sessions).unwrap_or(i64::MAX));
        self.relay_numbers_in_use
            .set(i64::try_from(numbers_in_use).unwrap_or(i64::MAX));
    }

    /// Counts a step that waited for another replica's step of its pair.
    pub fn store_wait(&self) {
        self.store_waits.inc();
    }

    /// Counts a failed `accept`.
    pub fn accept_error(&self) {
        self.accept_errors.inc();
    }

    /// Counts a connection closed by its deadline: `"head"` or `"idle"`.
    pub fn connection_timed_out(&self, phase: &str) {
        self.timed_out[usize::from(phase == "idle")].inc();
    }

    /// Counts an open connection until the returned guard is dropped.
    pub fn connection_open(&self) -> OpenConnection {
        self.open.inc();
        OpenConnection(self.open.clone())
    }

    fn count_webhook(&self, route: usize, status: StatusCode) {
        match STATUSES.iter().position(|known| *known == status) {
            Some(index) => self.webhook_slots[route][index]
                .get_or_init(|| self.webhook_counter(route, status))
                .inc(),
            None => self.webhook_counter(route, status).inc(),
        }
    }

    fn webhook_counter(&self, route: usize, status: StatusCode) -> IntCounter {
        self.webhooks
            .with_label_values(&[ROUTES[route], status.as_str()])
    }

    fn count_rejection(&self, label: &'static str) {
        match REASONS.iter().position(|known| *known == label) {
            Some(index) => self.rejection_handles[index].inc(),
            None => self.rejections.with_label_values(&[label]).inc(),
        }
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(8 * 1024);
        if let Err(error) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut text) {
            tracing::error!(%error, "cannot encode metrics");
        }
        text
    }
}

fn route_index(path: &str) -> usize {
    match path {
        "/sms" => 0,
        "/sms/status" => 1,
        _ => 2,
    }
}

fn outcome_index(outcome: &str) -> Option<usize> {
    OUTCOMES.iter().position(|known| *known == outcome)
}

fn message_status_index(status: &str) -> usize {
    MESSAGE_STATUSES
        .iter()
        .position(|known| *known == status)
        .unwrap_or(MESSAGE_STATUSES.len() - 1)
}

/// `GET /metrics`.
pub async fn handler(State(metrics): State<Arc<Metrics>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render()).into_response()
}

/// `GET /metrics` alone: merged into the main router, or served by [`serve`].
pub fn router<S: Clone + Send + Sync + 'static>(metrics: Arc<Metrics>) -> Router<S> {
    Router::new()
        .route("/metrics", get(handler))
        .with_state(metrics)
}

/// Serves `GET /metrics` on its own listener (`server.metrics_listen`) until the task is dropped
/// or aborted; the main server's shutdown ends it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    axum::serve(listener, router::<()>(metrics)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twilio::public_url::UrlError;
    use crate::twilio::signature::Invalid;
    use crate::twilio::webhook::Rejection;

    fn seen(path: &str, status: u16) -> Observation<'_> {
        Observation {
            path,
            status: StatusCode::from_u16(status).expect("valid status"),
            rejected: None,
            session: None,
            message_status: None,
            trace: None,
            latency_us: 250,
        }
    }

    #[test]
    fn every_rejection_label_has_a_pre_made_series() {
        let all = [
            Rejection::MissingSignature,
            Rejection::BadSignature(Invalid::Malformed),
            Rejection::BadSignature(Invalid::Mismatch),
            Rejection::BadSignature(Invalid::MissingBodyHash),
            Rejection::BadSignature(Invalid::BodyHashMismatch),
            Rejection::Url(UrlError::MissingHost),
            Rejection::NotForm,
            Rejection::TooLarge(1),
            Rejection::BodyRead,
            Rejection::BodyTimeout(std::time::Duration::from_secs(1)),
        ];
        for rejection in all {
            assert!(
                REASONS.contains(&rejection.label()),
                "{}",
                rejection.label()
            );
        }
    }

    #[test]
    fn one_inbound_message_counts_everywhere_once() {
        let metrics = Metrics::new();
        metrics.record(&Observation {
            session: Some("resumed"),
            ..seen("/sms", 200)
        });
        metrics.record(&Observation {
            rejected: Some("signature_mismatch"),
            ..seen("/sms", 403)
        });
        let text = metrics.render();
        for line in [
            "sms_sessions_webhooks_total{route=\"/sms\",status=\"200\"} 1",
            "sms_sessions_webhooks_total{route=\"/sms\",status=\"403\"} 1",
            "sms_sessions_webhook_rejections_total{reason=\"signature_mismatch\"} 1",
            "sms_sessions_webhook_rejections_total{reason=\"missing_signature\"} 0",
            "sms_sessions_sessions_total{outcome=\"resumed\"} 1",
            "sms_sessions_sessions_total{outcome=\"new\"} 0",
            "sms_sessions_webhook_duration_seconds_bucket{route=\"/sms\",le=\"0.00025\"} 2",
            "sms_sessions_webhook_duration_seconds_count{route=\"/sms\"} 2",
            "sms_sessions_build_info{version=\"",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn unusual_statuses_and_message_statuses_still_count_without_new_series_from_input() {
        let metrics = Metrics::new();
        metrics.record(&seen("/nope", 418));
        metrics.record(&Observation {
            message_status: Some("delivered"),
            ..seen("/sms/status", 204)
        });
        metrics.record(&Observation {
            message_status: Some("made-up-by-a-caller"),
            ..seen("/sms/status", 204)
        });
        let text = metrics.render();
        for line in [
            "sms_sessions_webhooks_total{route=\"other\",status=\"418\"} 1",
            "sms_sessions_webhooks_total{route=\"/sms/status\",status=\"204\"} 2",
            "sms_sessions_status_callbacks_total{message_status=\"delivered\"} 1",
            "sms_sessions_status_callbacks_total{message_status=\"other\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("made-up"));
    }

    #[test]
    fn callouts_and_hooks_are_counted_by_endpoint_outcome_and_hook() {
        let metrics = Metrics::new();
        let took = std::time::Duration::from_millis(3);
        metrics.callout("clinic", "ok", took);
        metrics.callout("clinic", "timeout", took);
        metrics.hook("results", "delivered");
        metrics.hook("opt_out", "dropped");
        metrics.hook("made-up", "delivered");
        let text = metrics.render();
        for line in [
            "sms_sessions_callouts_total{endpoint=\"clinic\",outcome=\"ok\"} 1",
            "sms_sessions_callouts_total{endpoint=\"clinic\",outcome=\"timeout\"} 1",
            "sms_sessions_callout_duration_seconds_bucket{endpoint=\"clinic\",le=\"0.005\"} 2",
            "sms_sessions_hooks_total{hook=\"results\",outcome=\"delivered\"} 1",
            "sms_sessions_hooks_total{hook=\"opt_out\",outcome=\"dropped\"} 1",
            "sms_sessions_hooks_total{hook=\"results\",outcome=\"failed\"} 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("made-up"));
    }
}
