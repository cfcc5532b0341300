//! `GET /healthz` (liveness) and `GET /readyz` (readiness).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;

use crate::app::AppState;

/// Always 200 while the server accepts connections; no signature, no session. For Docker's
/// HEALTHCHECK and a load balancer's liveness probe: a store outage must not get the process
/// restarted.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 while the server can answer texts: always in cookie mode, and in a store mode only
/// while the store answers within `store.timeout` (a balancer then sends texts elsewhere).
pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, String) {
    let Some(store) = &state.store else {
        return (StatusCode::OK, "ok\n".into());
    };
    match store.ready().await {
        Ok(()) => (StatusCode::OK, "ok\n".into()),
        Err(error) => {
            tracing::warn!(%error, "readyz: the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, format!("store: {error}\n"))
        }
    }
}
