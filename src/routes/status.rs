//! `POST /sms/status`: message status callbacks, logged and acknowledged with 204.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::WebhookLog;
use crate::app::AppState;
use crate::logging::request_id;
use crate::twilio::fields::Kind;
use crate::twilio::inbound::StatusCallback;
use crate::twilio::webhook::{Webhook, plain};

pub async fn status(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    webhook: Webhook,
) -> Response {
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
    if let (Some(relay), Some(code)) = (&state.relay, &callback.error_code)
        && let Some(session) = relay_session(query.as_deref())
    {
        if let Some(metrics) = &state.metrics {
            metrics.relay_delivery_error(code);
        }
        // 21610: the recipient opted out of this number; nothing more is addressed to them.
        if code == "21610"
            && let Some(to) = &callback.to
            && let Err(error) = relay.set_opted_out(&session, to, true).await
        {
            tracing::error!(%error, "could not mark a relay participant opted out");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "1")],
            )
                .into_response();
        }
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

/// The relay session a forwarded message's callback names (`?relay=RS…`).
fn relay_session(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == "relay")
        .map(|(_, id)| id.into_owned())
        .filter(|id| id.len() == 34 && id.starts_with("RS"))
}
