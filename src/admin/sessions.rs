//! The admin handlers: create, list, get and close relay sessions, and the pool's use.
//!
//! Each one moves data between HTTP and [`Relay`](crate::relay::Relay): the rules are in [`create`](super::create)
//! and [`query`](super::query), the store's answers become JSON or an [`ApiError`]. Every answer
//! carries a [`Logged`] for the request's log line.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;

use super::create::{self, Rules};
use super::error::{ApiError, json};
use super::log::Logged;
use super::query::{self, is_session_id};
use super::{AdminState, BODY_LIMIT};
use crate::logging::mask_phone;
use crate::relay::{PoolEntry, RelaySession, now_ms};

type Admin = State<Arc<AdminState>>;

/// `POST /v1/relay/sessions` → 201 and the session.
pub async fn create(State(state): Admin, body: Body) -> Result<Response, ApiError> {
    let body = read_body(body).await?;
    let config = state.relay.config();
    let rules = Rules {
        pool: state.relay.pool_numbers(),
        default_ttl: config.ttl,
        max_ttl: config.max_ttl,
        now_ms: now_ms(),
    };
    let new = create::parse(&body, &rules)?;
    let session = state.relay.create(new).await?;
    Ok(session_answer(StatusCode::CREATED, &session))
}

/// The whole body, up to [`BODY_LIMIT`].
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|error| {
            let mut causes = std::iter::successors(
                Some(&error as &(dyn std::error::Error + 'static)),
                |cause| cause.source(),
            );
            if causes.any(|cause| cause.is::<http_body_util::LengthLimitError>()) {
                ApiError::TooLarge
            } else {
                ApiError::invalid("body", "could not be read")
            }
        })
}

/// A page of sessions and the cursor of the next one.
#[derive(Serialize)]
struct Page {
    sessions: Vec<RelaySession>,
    /// The `after` of the next page; `None` on the last.
    next: Option<String>,
}

/// `GET /v1/relay/sessions?state=&address=&limit=&after=` → 200 and a page.
pub async fn list(State(state): Admin, uri: Uri) -> Result<Response, ApiError> {
    let list = query::parse(uri.query())?;
    // One more than asked for says whether another page follows.
    let filter = &list.filter;
    let mut sessions = state
        .relay
        .list(filter, list.after.as_deref(), list.limit + 1)
        .await?;
    let next = if sessions.len() > list.limit {
        sessions.truncate(list.limit);
        sessions.last().map(|session| session.id.clone())
    } else {
        None
    };
    let mut response = json(StatusCode::OK, &Page { sessions, next });
    let address = filter.address.as_deref().map(mask_phone);
    response
        .extensions_mut()
        .insert(Logged { id: None, address });
    Ok(response)
}

/// `GET /v1/relay/sessions/{id}` → 200 and the session, or 404.
pub async fn get(State(state): Admin, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = known_form(id)?;
    match state.relay.get(&id).await? {
        Some(session) => Ok(session_answer(StatusCode::OK, &session)),
        None => Err(ApiError::NotFound),
    }
}

/// `DELETE /v1/relay/sessions/{id}` → 200 and the session as closed (reason `closed`, unless
/// it had already ended otherwise), or 404.
pub async fn close(State(state): Admin, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = known_form(id)?;
    match state.relay.close(&id, "closed").await? {
        Some(session) => Ok(session_answer(StatusCode::OK, &session)),
        None => Err(ApiError::NotFound),
    }
}

/// An id that cannot name a session is not looked up: 404 at once.
fn known_form(id: String) -> Result<String, ApiError> {
    if is_session_id(&id) {
        Ok(id)
    } else {
        Err(ApiError::NotFound)
    }
}

#[derive(Serialize)]
struct Pool {
    numbers: Vec<PoolEntry>,
}

/// `GET /v1/relay/pool` → 200 and each pool number with its count of live sessions.
pub async fn pool(State(state): Admin) -> Result<Response, ApiError> {
    let numbers = state.relay.pool().await?;
    Ok(json(StatusCode::OK, &Pool { numbers }))
}

fn session_answer(status: StatusCode, session: &RelaySession) -> Response {
    let mut response = json(status, session);
    let logged = Logged {
        id: Some(session.id.clone()),
        address: None,
    };
    response.extensions_mut().insert(logged);
    response
}
