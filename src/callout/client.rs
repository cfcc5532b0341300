//! The one HTTP client every call-out and hook shares: hyper-util's pooled client (HTTP/1.1,
//! kept-alive connections per host) over rustls with the ring provider for `https://`, and
//! one request sent and its answer read whole within a deadline, capped in size.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_LENGTH;
use hyper_rustls::{ConfigBuilderExt, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::flows::engine::call::{CallFailure, CallResponse};

/// The largest response body read; more is the failure `too_large`.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// A kept-alive connection unused this long is closed (services often close theirs after a
/// few seconds more; a request on a connection the service just closed is retried by hyper).
const POOL_IDLE: Duration = Duration::from_secs(30);
/// Idle connections kept per host: enough for the webhooks in flight at once to call one
/// service without reconnecting (with 32, a load of 64 in flight opened a new connection for
/// 1–3% of its calls).
const POOL_MAX_IDLE_PER_HOST: usize = 256;

pub(super) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// rustls with ring and the Mozilla roots (compiled in: no trust store to find in a
/// container), TLS 1.2 and 1.3. Its own provider, so the process default (which the Redis
/// store may install) does not matter.
pub(super) fn default_tls() -> rustls::ClientConfig {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring offers TLS 1.2 and 1.3")
        .with_webpki_roots()
        .with_no_client_auth()
}

/// The shared client over `tls` (`https://`) and plain TCP (`http://`).
pub(super) fn build(tls: rustls::ClientConfig) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// Sends `request` and reads the whole answer; redirects are answers like any other.
/// The caller bounds the time.
pub(super) async fn send(
    client: &HttpClient,
    request: hyper::Request<Full<Bytes>>,
) -> Result<CallResponse, CallFailure> {
    let response = client.request(request).await.map_err(|e| {
        let reason = if e.is_connect() { "connect" } else { "io" };
        failure(reason, &e)
    })?;
    let status = response.status().as_u16();
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_RESPONSE_BYTES as u64) {
        return Err(too_large());
    }
    let body = read_capped(response.into_body()).await?;
    Ok(CallResponse { status, body })
}

/// The body, or `too_large` as soon as it passes [`MAX_RESPONSE_BYTES`].
async fn read_capped(mut body: Incoming) -> Result<Vec<u8>, CallFailure> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| failure("io", &e))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

fn too_large() -> CallFailure {
    CallFailure {
        reason: "too_large",
        detail: format!("the response body is over {MAX_RESPONSE_BYTES} bytes"),
    }
}

/// The error and its causes, for the log: hyper's and the OS's words, never the request.
pub(super) fn failure(
    reason: &'static str,
    error: &(dyn std::error::Error + 'static),
) -> CallFailure {
    let mut detail = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    CallFailure { reason, detail }
}
