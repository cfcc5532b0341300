//! `POST /sms` (and `GET /sms`, for numbers configured to use GET): one inbound text in, one
//! TwiML reply out, with the conversation's cookie re-issued.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::WebhookLog;
use crate::app::AppState;
use crate::logging::{mask_phone, request_id};
use crate::session::{Outcome, Pair};
use crate::twilio::fields::Kind;
use crate::twilio::inbound::InboundMessage;
use crate::twilio::webhook::{Webhook, plain};

/// Answers one inbound text from the session in its cookie.
///
/// # Overlapping webhooks of one pair
///
/// The server keeps no per-pair state and takes no lock: each webhook is answered from the
/// cookie it carried. When texts of one pair overlap, Twilio sends each the cookie it held
/// then (possibly stale, as its docs warn); every webhook still gets a valid reply computed
/// from that cookie, and Twilio keeps whichever `Set-Cookie` it processes last — last writer
/// wins, so N overlapping texts advance the conversation by one step. Pinned by
/// `tests/overlap.rs`; see SECURITY.md, "Overlapping webhooks".
pub async fn inbound(State(state): State<Arc<AppState>>, webhook: Webhook) -> Response {
    if let Err(rejection) = state.gate.check_fields(&webhook, Kind::Inbound) {
        return rejection.into_response();
    }
    let message = match InboundMessage::from_params(webhook.params.iter()) {
        Ok(message) => message,
        Err(missing) => {
            return (StatusCode::BAD_REQUEST, plain(format!("{missing}\n"))).into_response();
        }
    };
    let pair = Pair {
        to: message.to,
        from: message.from,
    };
    let now = unix_now();
    let cookies = webhook
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let mut session = state.sessions.open(cookies, pair, now);
    let outcome = session.outcome;
    log_fresh_start(outcome, &message, &webhook.headers);
    if session.valid_cookies() > 1 {
        tracing::info!(
            request_id = request_id(&webhook.headers),
            valid_cookies = session.valid_cookies(),
            "several valid session cookies for the pair; the newest was used"
        );
    }

    let reply = state.flow.respond(&message, &mut session.data);
    let cookie = match state.sessions.save(&session, now) {
        Ok(value) => state.sessions.set_cookie(&value, webhook.secure),
        Err(too_large) => {
            let request_id = request_id(&webhook.headers);
            tracing::error!(request_id, error = %too_large, "the flow's state does not fit in a cookie");
            let reason = plain("session state too large for a cookie\n".to_owned());
            return (StatusCode::INTERNAL_SERVER_ERROR, reason).into_response();
        }
    };
    let mut response = reply.response.into_response();
    if let Ok(value) = HeaderValue::try_from(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response.extensions_mut().insert(WebhookLog {
        session: Some(outcome.as_str()),
        trace: reply.trace,
        ..WebhookLog::new(message.message_sid, message.from, message.to)
    });
    response
}

fn log_fresh_start(outcome: Outcome, message: &InboundMessage, headers: &HeaderMap) {
    // The masks are made only for the two outcomes that log (most webhooks resume). They are
    // logged as strings, so a number that is not one is escaped like any other value.
    let masked = || (mask_phone(message.from), mask_phone(message.to));
    let request_id = request_id(headers);
    match outcome {
        Outcome::Expired => {
            let (from, to) = masked();
            let (from, to) = (from.as_str(), to.as_str());
            tracing::info!(
                request_id,
                from,
                to,
                "session expired; starting a fresh conversation"
            )
        }
        Outcome::Rejected(why) => {
            let (from, to) = masked();
            let (from, to) = (from.as_str(), to.as_str());
            tracing::warn!(request_id, from, to, reason = %why, "session cookie rejected; starting a fresh conversation")
        }
        Outcome::New | Outcome::Resumed => {}
    }
}

/// Seconds since the Unix epoch (0 if the clock is before 1970, which only makes cookies expire).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
