//! Call-outs: signed HTTP requests to the operator's configured services, for flows' `call`
//! nodes and the results and opt-out hooks.
//!
//! A flow names an endpoint (`[flows.endpoints.NAME]`), never a URL: the request goes to that
//! endpoint's scheme, host and port, under its base path, whatever a texter sent. Every request
//! carries `User-Agent`, `Idempotency-Key` and `X-Sms-Sessions-Signature` (see [`sign`]), and
//! ends by the earlier of the endpoint's timeout and the webhook's deadline, its answer capped
//! at 256 KiB. One pooled HTTP/1.1 client (rustls with ring for `https://`) serves them all.
//!
//! # Layout
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | [`Callouts`]: the endpoints and the client; one request, signed and bounded |
//! | [`sign`] | pure: the signature and its check |
//! | `client.rs` | the shared client, the capped answer, errors as failure reasons |
//! | `step.rs` | [`StepCalls`]: the engine's `Calls` for one webhook, with metrics and log lines |
//! | `hooks.rs` | [`Hooks`]: the background queue of results and opt-out hooks, with retries |
//!
//! It uses the configuration, the engine's call types and the metrics; nothing here imports
//! a handler or the flows that use it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::{Method as HttpMethod, Request, Uri};
use tokio::time::Instant;

use crate::config::{EndpointConfig, FlowConfig};
use crate::flows::engine::call::{Body, CallFailure, CallRequest, CallResponse, Method};
use crate::metrics::Metrics;

mod client;
mod hooks;
pub mod sign;
mod step;

pub use client::MAX_RESPONSE_BYTES;
pub use hooks::{FlowEnded, HookSettings, Hooks};
pub use sign::{signature, verify};
pub use step::{Handoff, StepCalls};

/// `User-Agent` of every call-out and hook.
pub const USER_AGENT_VALUE: &str = concat!("sms-sessions/", env!("CARGO_PKG_VERSION"));

/// The configured endpoints and the one client that reaches them. Cheap to share in an `Arc`;
/// `Debug` shows no secret.
pub struct Callouts {
    endpoints: BTreeMap<String, EndpointConfig>,
    client: client::HttpClient,
    metrics: Option<Arc<Metrics>>,
}

impl fmt::Debug for Callouts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callouts")
            .field("endpoints", &self.endpoints.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Callouts {
    /// The endpoints of `flows.endpoints`, reached with rustls (ring) and the Mozilla roots.
    /// Needs no runtime until the first call.
    pub fn new(flows: &FlowConfig) -> Self {
        Self::with_tls(flows, client::default_tls())
    }

    /// As [`new`](Self::new), with a TLS configuration of your own (a private CA, a test's
    /// self-signed certificate).
    pub fn with_tls(flows: &FlowConfig, tls: rustls::ClientConfig) -> Self {
        Callouts {
            endpoints: flows.endpoints.clone(),
            client: client::build(tls),
            metrics: None,
        }
    }

    /// Counts calls and hooks in `metrics` (`sms_sessions_callouts_total` and friends).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_deref()
    }

    /// The endpoint called `name`, if configured.
    pub fn endpoint(&self, name: &str) -> Option<&EndpointConfig> {
        self.endpoints.get(name)
    }

    /// Sends `request` to its endpoint and reads the answer, all by the earlier of the
    /// endpoint's timeout and `deadline`. Any status is an answer (a 3xx is not followed);
    /// no answer is a [`CallFailure`]: `unknown_endpoint`, `budget` (`deadline` has passed),
    /// `timeout`, `connect`, `too_large` or `io`.
    pub async fn call(
        &self,
        request: &CallRequest,
        deadline: Instant,
    ) -> Result<CallResponse, CallFailure> {
        let Some(endpoint) = self.endpoints.get(&request.endpoint) else {
            return Err(CallFailure {
                reason: "unknown_endpoint",
                detail: format!("no endpoint {:?} is configured", request.endpoint),
            });
        };
        let now = Instant::now();
        if deadline <= now {
            return Err(CallFailure {
                reason: "budget",
                detail: "no time was left before the webhook's deadline".into(),
            });
        }
        let until = deadline.min(now + endpoint.timeout);
        let http = prepare(endpoint, request, unix_now())?;
        match tokio::time::timeout_at(until, client::send(&self.client, http)).await {
            Ok(answer) => answer,
            Err(_) => Err(CallFailure {
                reason: "timeout",
                detail: format!("no whole answer within {} ms", (until - now).as_millis()),
            }),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The HTTP request on the wire: the endpoint's base and `request`'s path and query, the
/// signature over exactly that target and body, and the headers.
fn prepare(
    endpoint: &EndpointConfig,
    request: &CallRequest,
    t: u64,
) -> Result<Request<Full<Bytes>>, CallFailure> {
    let target = format!("{}{}", endpoint.url.base_path(), request.path_and_query());
    let body = request.body.as_ref().map_or(&[][..], Body::bytes);
    let method = request.method.as_str();
    let signature = sign::signature(
        endpoint.secret.expose().as_bytes(),
        t,
        method,
        &target,
        body,
    );
    let uri = Uri::builder()
        .scheme(endpoint.url.scheme().clone())
        .authority(endpoint.url.authority().clone())
        .path_and_query(target)
        .build()
        .map_err(|e| unusable("the path or query", &e))?;
    let key = HeaderValue::from_str(&request.idempotency_key)
        .map_err(|e| unusable("the idempotency key", &e))?;
    let mut http = Request::builder()
        .method(http_method(request.method))
        .uri(uri)
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header("idempotency-key", key)
        .header(sign::HEADER, signature);
    if let Some(body) = &request.body {
        http = http.header(CONTENT_TYPE, body.content_type());
    }
    for (name, value) in &endpoint.headers {
        http = http.header(name, value);
    }
    http.body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| unusable("the request", &e))
}

fn unusable(what: &str, error: &dyn fmt::Display) -> CallFailure {
    CallFailure {
        reason: "io",
        detail: format!("{what} cannot be sent: {error}"),
    }
}

fn http_method(method: Method) -> HttpMethod {
    match method {
        Method::Get => HttpMethod::GET,
        Method::Post => HttpMethod::POST,
        Method::Put => HttpMethod::PUT,
        Method::Patch => HttpMethod::PATCH,
        Method::Delete => HttpMethod::DELETE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const SECRET: &str = "clinic-secret-0123456789";

    fn flows(url: &str) -> FlowConfig {
        let dir = std::env::temp_dir().join(format!("sms-sessions-callout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(format!("{:x}.toml", rand::random::<u64>()));
        let text = format!(
            "[flows.endpoints.clinic]\nurl = {url:?}\nsecret = {SECRET:?}\n\
             headers = {{ \"X-Api-Key\" = \"k1\" }}\n"
        );
        std::fs::write(&path, text).expect("write");
        let config = Config::load(Some(&path), &[("TWILIO_AUTH_TOKEN", "t")]).expect("valid");
        let _ = std::fs::remove_file(&path);
        config.flow
    }

    fn request(body: Option<Body>) -> CallRequest {
        CallRequest {
            node: "book".into(),
            endpoint: "clinic".into(),
            method: Method::Post,
            path: "/slots/s%2F9".into(),
            query: vec![("date".into(), "2026-03-10".into())],
            body,
            idempotency_key: "SM123.book".into(),
        }
    }

    #[test]
    fn the_request_goes_under_the_base_path_signed_over_the_exact_target() {
        let flows = flows("https://clinic.example.com/sms-hooks/");
        let endpoint = &flows.endpoints["clinic"];
        let body = Body::Json(b"{\"slot\":\"s9\"}".to_vec());
        let http = prepare(endpoint, &request(Some(body)), 1_773_000_000).expect("valid");
        assert_eq!(http.method(), HttpMethod::POST);
        assert_eq!(
            http.uri().to_string(),
            "https://clinic.example.com/sms-hooks/slots/s%2F9?date=2026-03-10"
        );
        let headers = http.headers();
        assert_eq!(headers["user-agent"], USER_AGENT_VALUE);
        assert_eq!(headers["idempotency-key"], "SM123.book");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["x-api-key"], "k1");
        let expected = signature(
            SECRET.as_bytes(),
            1_773_000_000,
            "POST",
            "/sms-hooks/slots/s%2F9?date=2026-03-10",
            b"{\"slot\":\"s9\"}",
        );
        assert_eq!(headers[sign::HEADER], expected.as_str());
    }

    #[test]
    fn a_request_without_a_body_has_no_content_type() {
        let flows = flows("http://127.0.0.1:9");
        let http = prepare(&flows.endpoints["clinic"], &request(None), 1).expect("valid");
        assert_eq!(
            http.uri().path_and_query().map(|p| p.as_str()),
            Some("/slots/s%2F9?date=2026-03-10")
        );
        assert!(!http.headers().contains_key("content-type"));
    }

    #[test]
    fn callouts_are_built_outside_a_runtime_and_debug_hides_secrets() {
        let callouts = Callouts::new(&flows("https://clinic.example.com"));
        let shown = format!("{callouts:?}");
        assert!(
            shown.contains("clinic") && !shown.contains(SECRET),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn unknown_endpoints_and_spent_budgets_fail_at_once() {
        let callouts = Callouts::new(&flows("http://127.0.0.1:9"));
        let mut unknown = request(None);
        unknown.endpoint = "billing".into();
        let far = Instant::now() + std::time::Duration::from_secs(60);
        let failure = callouts.call(&unknown, far).await.expect_err("unknown");
        assert_eq!(failure.reason, "unknown_endpoint");
        let failure = callouts
            .call(&request(None), Instant::now())
            .await
            .expect_err("no time");
        assert_eq!(failure.reason, "budget");
    }
}
