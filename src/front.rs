//! The front of the server: what every request passes through on its way to the router and
//! back.
//!
//! In order: the request gets its id (made here unless a trusted proxy set one; echoed in
//! `X-Request-Id`, set on the request for the handlers' own lines, and carried by a span at
//! debug level); the router answers it; a panic in a handler (a bug) becomes a 500 for that
//! request alone; a request still unanswered one second after `server.request_timeout` gets
//! the 503 backstop, well before Twilio's own 15 s limit (the gate's 408 for a slow upload
//! comes first); then the one log line and the metrics.
//!
//! This is one service wrapped around the router rather than a stack of axum layers: each
//! `Router::layer` costs every request a boxed service clone (about 0.15 µs apiece), and a
//! timeout layer also a timer (0.4 µs); this front costs one box, and its backstop timer is
//! armed only for a request that is not answered at its first poll (see [`crate::deadline`]).

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;
use tokio::time::Instant;
use tower::{Service, ServiceExt as _};
use tracing::Instrument as _;

use crate::deadline::within;
use crate::logging::Observer;
use crate::twilio::webhook::plain;

/// The whole HTTP surface: the router behind the front. Cheap to clone (two `Arc`s).
#[derive(Clone)]
pub struct Front {
    router: Router,
    observer: Arc<Observer>,
    /// How long a request may take before the 503 backstop.
    backstop: Duration,
}

impl Front {
    pub fn new(router: Router, observer: Observer, backstop: Duration) -> Self {
        Self {
            router,
            observer: Arc::new(observer),
            backstop,
        }
    }

    /// Answers one request: what the [`Service`] impl does, without boxing the future.
    pub(crate) async fn answer(self, mut request: Request) -> Response {
        let started = Instant::now();
        let ids = self.observer.request_id(&mut request);
        let method = request.method().clone();
        let uri = request.uri().clone();
        // At debug level every line a request causes carries its id through this span. At
        // info the span is off: it cost a webhook 0.45 µs (`cargo bench -- router_logged`),
        // and the lines logged at info carry `request_id` themselves.
        let span =
            tracing::debug_span!("request", request_id = %ids.id.to_str().unwrap_or_default());
        async move {
            let routed = AssertUnwindSafe(self.router.oneshot(request)).catch_unwind();
            let request_id = ids.id.to_str().unwrap_or_default();
            let mut response = match within(self.backstop, routed).await {
                Some(Ok(Ok(response))) => response,
                Some(Ok(Err(infallible))) => match infallible {},
                Some(Err(_panic)) => panicked(request_id),
                None => timed_out(request_id, self.backstop),
            };
            self.observer
                .record(&method, uri.path(), &mut response, ids, started.elapsed());
            response
        }
        .instrument(span)
        .await
    }
}

/// The answer to a request whose handler panicked. The panic hook has reported it already
/// (`serve`'s hook logs where it happened); its payload is dropped unread, because it may
/// quote request data.
fn panicked(request_id: &str) -> Response {
    tracing::error!(
        request_id,
        "a handler panicked; answered 500 and carried on"
    );
    let reason = plain("internal error\n".to_owned());
    (StatusCode::INTERNAL_SERVER_ERROR, reason).into_response()
}

fn timed_out(request_id: &str, backstop: Duration) -> Response {
    tracing::error!(
        request_id,
        after_ms = backstop.as_millis() as u64,
        "request not answered in time; answered 503"
    );
    let reason = plain("not answered in time\n".to_owned());
    (StatusCode::SERVICE_UNAVAILABLE, reason).into_response()
}

impl Service<Request> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    /// Always ready, like the router it wraps.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        Box::pin(self.clone().answer(request).map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::HeaderMap;
    use axum::routing::get;
    use http_body_util::BodyExt as _;

    use super::*;
    use crate::logging::{RequestIds, request_id};

    fn front(backstop: Duration) -> Front {
        front_with(Observer::default(), backstop)
    }

    fn front_with(observer: Observer, backstop: Duration) -> Front {
        let router = Router::new()
            .route("/quick", get(|| async { "ok" }))
            .route(
                "/id",
                get(|headers: HeaderMap| async move { request_id(&headers).to_owned() }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "too late"
                }),
            )
            .route(
                "/panics",
                get(|| async {
                    if true {
                        panic!("a bug");
                    }
                    "unreachable"
                }),
            );
        Front::new(router, observer, backstop)
    }

    async fn get_path(front: &Front, path: &str) -> Response {
        let request = Request::get(path).body(Body::empty()).expect("valid");
        front.clone().oneshot(request).await.expect("infallible")
    }

    #[tokio::test(start_paused = true)]
    async fn an_answered_request_gets_its_id_back() {
        let front = front(Duration::from_secs(16));
        let response = get_path(&front, "/quick").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().contains_key("x-request-id"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_not_answered_in_time_gets_503_at_the_backstop() {
        let front = front(Duration::from_secs(16));
        let started = Instant::now();
        let response = get_path(&front, "/slow").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(started.elapsed(), Duration::from_secs(16));
        assert!(response.headers().contains_key("x-request-id"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_handler_costs_its_request_a_500_and_nothing_else() {
        let front = front(Duration::from_secs(16));
        let response = get_path(&front, "/panics").await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(get_path(&front, "/quick").await.status(), StatusCode::OK);
    }

    /// The `X-Request-Id` echoed and the one the handler saw, for a request claiming `claimed`.
    async fn ids_for(front: &Front, claimed: &str) -> (String, String) {
        let request = Request::get("/id")
            .header("x-request-id", claimed)
            .body(Body::empty())
            .expect("valid");
        let response = front.clone().oneshot(request).await.expect("infallible");
        let echoed = response.headers()["x-request-id"].to_str().expect("ascii");
        let echoed = echoed.to_owned();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (echoed, String::from_utf8(body.to_vec()).expect("UTF-8"))
    }

    #[tokio::test]
    async fn an_untrusted_client_id_is_neither_used_nor_echoed() {
        let front = front(Duration::from_secs(16));
        let (echoed, seen) = ids_for(&front, "abc-123").await;
        assert_ne!(echoed, "abc-123");
        assert_eq!(seen, echoed, "the handler logs under the id that is echoed");
    }

    #[tokio::test]
    async fn a_proxy_id_is_used_and_echoed_only_when_trusted() {
        let observer = Observer {
            ids: RequestIds::new(true),
            metrics: None,
        };
        let trusting = front_with(observer, Duration::from_secs(16));
        let (echoed, seen) = ids_for(&trusting, "abc-123").await;
        assert_eq!((echoed.as_str(), seen.as_str()), ("abc-123", "abc-123"));
        let (echoed, _) = ids_for(&front(Duration::from_secs(16)), "abc-123").await;
        assert_ne!(echoed, "abc-123");
        let (echoed, seen) = ids_for(&trusting, "a b\" injected=1").await;
        assert_ne!(echoed, "a b\" injected=1");
        assert_eq!(seen, echoed);
    }
}
