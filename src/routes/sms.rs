//! `POST /sms` (and `GET /sms`, for numbers configured to use GET): one inbound text in, one
//! TwiML reply out — with the conversation's cookie re-issued, or in a store mode with the
//! conversation's step committed to the server-side store.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use std::time::Instant;

use super::WebhookLog;
use crate::app::AppState;
use crate::logging::{mask_phone, request_id};
use crate::relay::route::Relayed;
use crate::session::{Outcome, Pair};
use crate::store::{CommitError, Found, Seen, Started, Store, StoreError, Unavailable};
use crate::twilio::fields::Kind;
use crate::twilio::inbound::InboundMessage;
use crate::twilio::twiml::{self, MessagingResponse};
use crate::twilio::webhook::{Webhook, plain};

/// Answers one inbound text, from the session in its cookie or from the store.
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
    match &state.store {
        Some(store) => from_store(&state, store, &webhook, &message).await,
        None => from_cookie(&state, &webhook, &message).await,
    }
}

/// Cookie mode.
///
/// # Overlapping webhooks of one pair
///
/// The server keeps no per-pair state and takes no lock: each webhook is answered from the
/// cookie it carried. When texts of one pair overlap, Twilio sends each the cookie it held
/// then (possibly stale, as its docs warn); every webhook still gets a valid reply computed
/// from that cookie, and Twilio keeps whichever `Set-Cookie` it processes last — last writer
/// wins, so N overlapping texts advance the conversation by one step. Pinned by
/// `tests/overlap.rs`; see SECURITY.md, "Overlapping webhooks". A store mode applies them all.
async fn from_cookie(
    state: &AppState,
    webhook: &Webhook,
    message: &InboundMessage<'_>,
) -> Response {
    let pair = Pair {
        to: message.to,
        from: message.from,
    };
    let now = unix_now();
    let cookies = cookie_headers(&webhook.headers);
    let mut session = state.sessions.open(cookies, pair, now);
    let outcome = session.outcome;
    log_fresh_start(outcome, message, &webhook.headers);
    if session.valid_cookies() > 1 {
        tracing::info!(
            request_id = request_id(&webhook.headers),
            valid_cookies = session.valid_cookies(),
            "several valid session cookies for the pair; the newest was used"
        );
    }

    // The flow's call-outs end before the request's deadline, with a moment left to answer.
    let deadline = tokio::time::Instant::now() + state.config.server.request_timeout - REPLY_MARGIN;
    let reply = state
        .flow
        .respond_boxed(message, &mut session.data, deadline)
        .await;
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

/// Store mode: the text is one [`Step`](crate::store::Step) on the pair's conversation,
/// applied once per MessageSid, one at a time per pair.
async fn from_store(
    state: &AppState,
    store: &Arc<Store>,
    webhook: &Webhook,
    message: &InboundMessage<'_>,
) -> Response {
    let pair = Pair {
        to: message.to,
        from: message.from,
    };
    let log = |session: &'static str| WebhookLog {
        session: Some(session),
        ..WebhookLog::new(message.message_sid, message.from, message.to)
    };
    let request_id = request_id(&webhook.headers);
    // Leave a commit its store.timeout before the request's own deadline.
    let budget = state.config.server.request_timeout - state.config.store.timeout;
    let deadline = Instant::now() + budget;
    let mut step = match store.begin(pair, message.message_sid, deadline).await {
        Ok(Started::Step(step)) => step,
        Ok(Started::Seen(seen)) => return answer_seen(seen, log, request_id),
        Err(why) => return unavailable(&why, log("unavailable"), request_id),
    };
    let cookies = || cookie_headers(&webhook.headers);
    // A cookie left from cookie mode: its state, if there is none stored, and in any case a
    // Set-Cookie that makes Twilio drop it.
    let had_cookie = crate::session::cookie_values(cookies(), state.sessions.cookie_name())
        .next()
        .is_some();
    if had_cookie && step.found == Found::New {
        let session = state.sessions.open(cookies(), pair, unix_now());
        if session.outcome == Outcome::Resumed {
            step.import(session.data);
        }
    }
    let found = step.found;
    // A text bound to a relay session is the relay's: forwarded, applied once like any step.
    if let Some(relay) = &state.relay {
        let status_url = state.relay_status_url(&webhook.headers);
        let routed = crate::relay::route::route(relay, message, status_url.as_deref());
        let routed = match tokio::time::timeout_at(deadline.into(), routed).await {
            Ok(routed) => routed.map_err(|e| StoreError::Unavailable(e.to_string())),
            Err(_) => Err(StoreError::Timeout(state.config.store.timeout)),
        };
        match routed {
            Ok(Relayed::NotBound) => {}
            Ok(Relayed::Reply {
                response,
                outcome,
                session,
            }) => {
                let body = response.to_xml();
                if let Err(CommitError::Unavailable(why)) = step.commit(body.as_bytes()).await {
                    return unavailable(&why, log("unavailable"), request_id);
                }
                tracing::info!(
                    request_id,
                    session = session.as_deref(),
                    outcome,
                    messages = response.len(),
                    "relay"
                );
                if let Some(metrics) = &state.metrics {
                    metrics.relay_text(outcome);
                }
                if outcome == "opted_out"
                    && let Some(files) = &state.files
                {
                    files.relay_opted_out(message);
                }
                let mut answer = twiml(body);
                answer.extensions_mut().insert(log("relay"));
                return answer;
            }
            Err(error) => {
                return unavailable(&Unavailable::Store(error), log("unavailable"), request_id);
            }
        }
    }
    let reply = state
        .flow
        .respond_boxed(message, &mut step.data, deadline.into())
        .await;
    let body = reply.response.to_xml();
    let committed = step.commit(body.as_bytes()).await;
    if committed.is_err()
        && let (Some(relay), Some(id)) = (
            &state.relay,
            reply.trace.as_ref().and_then(|t| t.handoff.as_deref()),
        )
    {
        // The hand-off is not stored: Twilio's retry must find the flow where it was, not a
        // session that would forward the text to the agent without a greeting.
        if let Err(error) = relay.close(id, "failed").await {
            tracing::error!(request_id, session = id, %error, "could not close the hand-off of a step that was not stored");
        }
    }
    match committed {
        Ok(()) => {}
        Err(CommitError::Unavailable(why)) => {
            return unavailable(&why, log("unavailable"), request_id);
        }
        Err(CommitError::TooLarge(too_large)) => {
            tracing::error!(request_id, error = %too_large, "the flow's state is too large to keep");
            let reason = plain("session state too large to keep\n".to_owned());
            return (StatusCode::INTERNAL_SERVER_ERROR, reason).into_response();
        }
    }
    let mut response = twiml(body);
    if had_cookie {
        let clear = state.sessions.clear_cookie(webhook.secure);
        if let Ok(value) = HeaderValue::try_from(clear) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response.extensions_mut().insert(WebhookLog {
        trace: reply.trace,
        ..log(found.as_str())
    });
    response
}

/// What a flow leaves of `server.request_timeout` to encode and send its reply.
const REPLY_MARGIN: std::time::Duration = std::time::Duration::from_millis(100);

/// A MessageSid applied already: within the retry horizon Twilio lost our reply and gets the
/// same bytes again; after it, the request is a replay and gets nothing.
fn answer_seen(seen: Seen, log: impl Fn(&'static str) -> WebhookLog, request_id: &str) -> Response {
    let (mut response, session) = match seen.reply {
        Some(reply) => {
            tracing::info!(
                request_id,
                "a MessageSid applied already; its reply is sent again"
            );
            (twiml(reply), "duplicate")
        }
        None => {
            tracing::warn!(
                request_id,
                applied_ms = seen.applied_ms,
                "a replay of a MessageSid applied before the retry horizon; answered with nothing"
            );
            (MessagingResponse::new().into_response(), "replay")
        }
    };
    response.extensions_mut().insert(log(session));
    response
}

/// 503: the store did not answer, or the pair stayed busy. Twilio retries the webhook (or
/// calls the fallback URL) with the same MessageSid; nothing was applied, or the retry finds
/// the marker of what was.
fn unavailable(why: &Unavailable, log: WebhookLog, request_id: &str) -> Response {
    tracing::warn!(request_id, reason = why.label(), error = %why, "store: answered 503");
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        plain(format!("conversation store unavailable: {}\n", why.label())),
    )
        .into_response();
    response.extensions_mut().insert(log);
    response
}

/// The request's `Cookie` headers that are text.
fn cookie_headers(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
}

fn twiml(body: impl Into<axum::body::Body>) -> Response {
    ([(header::CONTENT_TYPE, twiml::CONTENT_TYPE)], body.into()).into_response()
}

fn log_fresh_start(outcome: Outcome, message: &InboundMessage<'_>, headers: &HeaderMap) {
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
