//! The admin API: create, list, read and close relay sessions, and see the pool's use, as JSON
//! over HTTP on a listener of its own (`server.admin_listen`), never on the webhooks' one.
//!
//! - [`auth`]: the bearer check, in constant time, against every configured token;
//! - [`create`] and [`query`]: pure parsing of a create body and a list query, each error
//!   naming its field;
//! - [`sessions`]: the handlers, over [`Relay`];
//! - [`error`]: the one error type and its JSON;
//! - [`log`]: one line per request, numbers masked.
//!
//! It uses the relay facade, the configuration's address rule and the log's masking; nothing
//! in the crate uses it but the `serve` command, which binds its listener.

pub mod auth;
pub mod create;
pub mod error;
pub mod log;
pub mod query;
pub mod sessions;

use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::config::Secret;
use crate::relay::Relay;
use error::ApiError;

/// The largest request body read.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the handlers share: the relay, whose configuration gives the pool and the TTLs.
#[derive(Debug)]
pub struct AdminState {
    pub relay: Arc<Relay>,
}

/// The admin routes, with JSON 404 and 405 answers, behind the check of `tokens`
/// (`admin.tokens`: any one opens it) and the log line.
pub fn router(relay: Arc<Relay>, tokens: &[Secret]) -> Router {
    let tokens = auth::Tokens::new(tokens);
    let state = Arc::new(AdminState { relay });
    Router::new()
        .route(
            "/v1/relay/sessions",
            post(sessions::create).get(sessions::list),
        )
        .route(
            "/v1/relay/sessions/{id}",
            get(sessions::get).delete(sessions::close),
        )
        .route("/v1/relay/pool", get(sessions::pool))
        // After the routes: it is set on each route's method router.
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .fallback(|| async { ApiError::NoRoute })
        .with_state(state)
        // The last layer is the outermost. The log line sees every answer, 401s included; the
        // token is checked before routing answers anything, so a caller without one cannot
        // tell a route from a 404 or a 405.
        .layer(from_fn_with_state(tokens, auth::require_token))
        .layer(from_fn(log::log_request))
}

/// Serves `router` on its own listener until the task is dropped or aborted (as the metrics
/// listener is); the main server's shutdown ends it.
pub async fn serve(listener: TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(listener, router).await
}
