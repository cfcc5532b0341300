//! `POST /sms/status`: message status callbacks, logged and acknowledged with 204.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::WebhookLog;
use crate::app::AppState;
use crate::logging::request_id;
use crate::twilio::fields::Kind;
use crate::twilio::inbound::StatusCallback;
use crate::twilio::webhook::{Webhook, plain};

pub async fn status(State(state): State<Arc<AppState>>, webhook: Webhook) -> Response {
    if let Err(rejection) = state.gate.check_fields(&webhook, Kind::Status) {
        return rejection.into_response();
    }
    let callback = match StatusCallback::from_pairs(&webhook.params.to_vec()) {
        Ok(callback) => callback,
        Err(missing) => {
            return (StatusCode::BAD_REQUEST, plain(format!("{missing}\n"))).into_response();
        }
    };
    if let Some(code) = &callback.error_code {
        tracing::warn!(
            request_id = request_id(&webhook.headers),
            message_sid = callback.message_sid.as_str(),
            message_status = callback.message_status.as_str(),
            error_code = code.as_str(),
            "message delivery reported an error"
        );
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let from = callback.from.as_deref().unwrap_or_default();
    let to = callback.to.as_deref().unwrap_or_default();
    let log = WebhookLog::new(&callback.message_sid, from, to);
    response.extensions_mut().insert(WebhookLog {
        message_status: Some(callback.message_status),
        ..log
    });
    response
}
