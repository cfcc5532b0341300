//! One inbound text through the relay: the session its (To, From) pair is bound to decides
//! the reply, a `<Message to from>` for every other participant; or the text is not the
//! relay's, and goes on to the flows.
//!
//! Never forwarded: a stranger's text (the pool number answers `relay.unknown_reply`, or
//! nothing), a text to a closed or ended session (`relay.closed_reply`), an opt-out word (the
//! sender is marked opted out; Twilio has confirmed it), anything past the rate limits. A
//! sender never gets their own text back, and nothing is addressed to an opted-out participant.

use std::collections::HashMap;
use std::sync::Mutex;

use super::model::RelaySession;
use super::{Relay, RelayError};
use crate::flows::compliance::{self, Verdict};
use crate::twilio::inbound::InboundMessage;
use crate::twilio::twiml::{Message, MessagingResponse, within_body_limit};

/// Twilio sends at most this many `<Message>`s of one reply.
pub const MAX_MESSAGES: usize = 10;

/// What the relay made of a text.
#[derive(Debug)]
pub enum Relayed {
    /// Not a relay text: the flows answer it.
    NotBound,
    /// The relay's answer.
    Reply {
        response: MessagingResponse,
        /// For the log and `sms_sessions_relay_texts_total{outcome}`.
        outcome: &'static str,
        /// The session, if one was found.
        session: Option<String>,
    },
}

impl Relayed {
    fn reply(response: MessagingResponse, outcome: &'static str, session: Option<&str>) -> Self {
        Relayed::Reply {
            response,
            outcome,
            session: session.map(str::to_owned),
        }
    }
}

/// Routes `message`; `status_url` is where forwarded messages report their delivery (the
/// session's id is appended as `?relay=ID`), if anywhere.
pub async fn route(
    relay: &Relay,
    message: &InboundMessage<'_>,
    status_url: Option<&str>,
) -> Result<Relayed, RelayError> {
    let config = relay.config();
    let Some(session) = relay.lookup(message.to, message.from).await? else {
        if relay.pool_numbers().iter().any(|n| n == message.to) {
            let mut response = MessagingResponse::new();
            if let Some(reply) = &config.unknown_reply {
                response.message(reply.as_str());
            }
            return Ok(Relayed::reply(response, "stranger", None));
        }
        return Ok(Relayed::NotBound);
    };
    let id = session.id.as_str();
    let now = super::now_ms();
    let handoff_texter = session.handoff_from.as_deref() == Some(message.from)
        && !relay.pool_numbers().iter().any(|n| n == message.to);
    if !session.is_live(now) {
        if session.state == super::State::Open {
            // Ended by time: close it, so its numbers are free and the API says so.
            relay.close(id, "ttl").await?;
        }
        if handoff_texter {
            return Ok(Relayed::NotBound); // back to the flows
        }
        let mut response = MessagingResponse::new();
        if let Some(reply) = &config.closed_reply {
            response.message(reply.as_str());
        }
        return Ok(Relayed::reply(response, "closed", Some(id)));
    }
    let Some(sender) = session.participant(message.to, message.from) else {
        return Ok(Relayed::NotBound);
    };
    match compliance::classify(message.body, message.opt_out_type) {
        Verdict::OptOut => {
            relay.set_opted_out(id, message.from, true).await?;
            return Ok(Relayed::reply(
                MessagingResponse::new(),
                "opted_out",
                Some(id),
            ));
        }
        Verdict::Help | Verdict::Input => {}
    }
    if sender.opted_out && is_opt_in(message.body, message.opt_out_type) {
        relay.set_opted_out(id, message.from, false).await?;
    }
    let agent_closes = session.handoff_from.is_some()
        && !handoff_texter
        && message.body.trim().eq_ignore_ascii_case(&config.close_word);
    if agent_closes {
        relay.close(id, "agent").await?;
        let mut response = MessagingResponse::new();
        response.message("Closed. Their next text goes back to the automated service.");
        // The texter hears it too, from the number they have been texting.
        let texter = session
            .participants
            .iter()
            .find(|p| Some(p.address.as_str()) == session.handoff_from.as_deref());
        if let (Some(texter), Some(reply)) = (texter, &config.closed_reply)
            && !texter.opted_out
        {
            let mut notice = Message::new(reply.as_str());
            notice
                .to(texter.address.as_str())
                .from(texter.proxy.as_str());
            response.push(notice);
        }
        return Ok(Relayed::reply(response, "closed_by_agent", Some(id)));
    }
    if !relay.limits.allow(id, message.from, config) {
        return Ok(Relayed::reply(
            MessagingResponse::new(),
            "rate_limited",
            Some(id),
        ));
    }
    let response = forwards(&session, message, status_url, &config.unavailable_reply);
    relay.touch(id).await?;
    let outcome = if response.is_empty() {
        "empty"
    } else {
        "forwarded"
    };
    Ok(Relayed::reply(response, outcome, Some(id)))
}

/// START / UNSTOP / YES (or `OptOutType=START`): Twilio's opt-in words; the sender wants
/// texts again.
fn is_opt_in(body: &str, opt_out_type: Option<&str>) -> bool {
    opt_out_type.is_some_and(|kind| kind.trim().eq_ignore_ascii_case("START"))
        || ["START", "UNSTOP", "YES"]
            .iter()
            .any(|word| word.eq_ignore_ascii_case(body.trim()))
}

/// The `<Message>`s of a forwarded text: one per other participant who can receive it (with
/// a `label: ` prefix when more than two take part, and every media URL), and a notice to
/// the sender when someone could not be reached.
pub fn forwards(
    session: &RelaySession,
    message: &InboundMessage<'_>,
    status_url: Option<&str>,
    unavailable: &str,
) -> MessagingResponse {
    let mut response = MessagingResponse::new();
    if message.body.trim().is_empty() && message.media.is_empty() {
        return response;
    }
    // UNSTOP re-subscribes at Twilio and is not meant for the others.
    if message.body.trim().eq_ignore_ascii_case("UNSTOP") {
        return response;
    }
    let group = session.participants.len() > 2;
    let sender = session
        .participants
        .iter()
        .position(|p| p.proxy == message.to && p.address == message.from);
    let body = match (group, sender) {
        (true, Some(index)) => {
            let who = &session.participants[index];
            let label = who
                .label
                .clone()
                .unwrap_or_else(|| format!("Participant {}", index + 1));
            within_limit(format!("{label}: {}", message.body))
        }
        _ => within_limit(message.body.to_owned()),
    };
    let callback = status_url.map(|url| format!("{url}?relay={}", session.id));
    let others = session
        .participants
        .iter()
        .enumerate()
        .filter(|(index, other)| Some(*index) != sender && other.address != message.from)
        .map(|(_, other)| other); // never the sender's own text
    let (reachable, unreachable): (Vec<_>, Vec<_>) = others.partition(|other| !other.opted_out);
    // At most ten messages in all, the notice to the sender included (eleven participants
    // make ten others, so only a session grown past the API's limit is cut).
    let room = MAX_MESSAGES - usize::from(!unreachable.is_empty());
    for other in reachable.into_iter().take(room) {
        let mut forward = if message.media.is_empty() {
            Message::new(body.clone())
        } else {
            let mut with_media = Message::new(String::new());
            with_media.body(body.clone());
            with_media
        };
        forward
            .to(other.address.as_str())
            .from(other.proxy.as_str());
        if let Some(callback) = &callback {
            forward.status_callback(callback.as_str());
        }
        for media in &message.media {
            if forward.media(media.url).is_err() {
                break;
            }
        }
        response.push(forward);
    }
    if !unreachable.is_empty() {
        response.message(unavailable);
    }
    response
}

/// A body within Twilio's 1,600 characters (a label prefix can push a full text over).
fn within_limit(body: String) -> String {
    within_body_limit(body).unwrap_or_else(|(cut, _)| cut)
}

/// Per-minute counters of forwarded texts, per session and per sender, in this process.
#[derive(Debug, Default)]
pub struct Limits {
    counts: Mutex<HashMap<String, (u64, u32)>>,
}

/// Counters kept before old minutes are dropped.
const MAX_COUNTERS: usize = 100_000;

impl Limits {
    /// Counts one text of `sender` in `session`; `false` past either limit.
    fn allow(&self, session: &str, sender: &str, config: &crate::config::RelayConfig) -> bool {
        let minute = super::now_ms() / 60_000;
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() > MAX_COUNTERS {
            counts.retain(|_, (at, _)| *at == minute);
        }
        let mut bump = |key: String, limit: u32| {
            let entry = counts.entry(key).or_insert((minute, 0));
            if entry.0 != minute {
                *entry = (minute, 0);
            }
            entry.1 += 1;
            entry.1 <= limit
        };
        let by_session = bump(format!("s\0{session}"), config.per_session_per_minute);
        let by_sender = bump(format!("a\0{sender}"), config.per_sender_per_minute);
        by_session && by_sender
    }
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
