//! One log line per admin request: method, route (its template, never the raw path), status,
//! the session id, the list filter's address masked, and the latency. Never a token, never a
//! body, never a whole number.

use std::time::Instant;

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

/// What a handler adds to the line, carried in the response's extensions.
#[derive(Debug, Clone, Default)]
pub struct Logged {
    /// The session created, read or closed.
    pub id: Option<String>,
    /// The list filter's address, already masked.
    pub address: Option<String>,
}

/// Middleware: runs the request, then logs its line.
pub async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = route_of(request.uri().path());
    let response = next.run(request).await;
    let logged = response.extensions().get::<Logged>();
    tracing::info!(
        method = method_name(&method),
        route,
        status = response.status().as_u16(),
        id = logged.and_then(|l| l.id.as_deref()),
        address = logged.and_then(|l| l.address.as_deref()),
        latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "admin request"
    );
    response
}

/// A standard method by name; any other (a method is any token, digits included) as `other`.
fn method_name(method: &Method) -> &str {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    if STANDARD.contains(method) {
        method.as_str()
    } else {
        "other"
    }
}

/// The route template a path falls under; anything else is `unknown` (a raw path could hold
/// a number).
pub fn route_of(path: &str) -> &'static str {
    const SESSIONS: &str = "/v1/relay/sessions";
    match path {
        SESSIONS => SESSIONS,
        "/v1/relay/pool" => "/v1/relay/pool",
        _ => match path.strip_prefix("/v1/relay/sessions/") {
            Some(id) if !id.is_empty() && !id.contains('/') => "/v1/relay/sessions/{id}",
            _ => "unknown",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_logged_as_their_templates() {
        assert_eq!(route_of("/v1/relay/sessions"), "/v1/relay/sessions");
        assert_eq!(
            route_of("/v1/relay/sessions/RS00"),
            "/v1/relay/sessions/{id}"
        );
        assert_eq!(route_of("/v1/relay/pool"), "/v1/relay/pool");
        assert_eq!(route_of("/v1/relay/sessions/+14155550100/x"), "unknown");
        assert_eq!(route_of("/+14155550100"), "unknown");
        assert_eq!(method_name(&Method::DELETE), "DELETE");
        let odd = Method::from_bytes(b"+14155550100").expect("a token");
        assert_eq!(method_name(&odd), "other");
    }
}
