//! The two tutorial flows from Twilio's cookie-session guides: a message counter (the
//! Ruby/Sinatra tutorial) and a counter that greets known callers by name (Python/Flask).

use std::collections::BTreeMap;

use super::Flow;
use crate::session::SessionData;
use crate::twilio::inbound::InboundMessage;
use crate::twilio::twiml::MessagingResponse;

const COUNT: &str = "count";

/// Counts this message in the session and returns its number (1 for the first).
fn next_count(state: &mut SessionData) -> u64 {
    let count = state
        .get_parsed::<u64>(COUNT)
        .unwrap_or(0)
        .saturating_add(1);
    state.set(COUNT, count);
    count
}

/// `Hello, thanks for the new message.`, then `Hello, thanks for message number k`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counter;

impl Flow for Counter {
    async fn reply(
        &self,
        _message: &InboundMessage<'_>,
        state: &mut SessionData,
    ) -> MessagingResponse {
        let mut response = MessagingResponse::new();
        match next_count(state) {
            1 => response.message("Hello, thanks for the new message."),
            k => response.message(format!("Hello, thanks for message number {k}")),
        };
        response
    }
}

/// `{name} has messaged {To} {k} times.`, with `name` looked up by the sender's number.
#[derive(Debug, Clone, Default)]
pub struct NamedCounter {
    callers: BTreeMap<String, String>,
}

impl NamedCounter {
    pub fn new(callers: BTreeMap<String, String>) -> Self {
        Self { callers }
    }
}

impl Flow for NamedCounter {
    async fn reply(
        &self,
        message: &InboundMessage<'_>,
        state: &mut SessionData,
    ) -> MessagingResponse {
        let name = self
            .callers
            .get(message.from)
            .map_or("Friend", String::as_str);
        let count = next_count(state);
        let mut response = MessagingResponse::new();
        response.message(format!("{name} has messaged {} {count} times.", message.to));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbound(from: &str) -> InboundMessage<'_> {
        InboundMessage {
            from,
            to: "+15005550006",
            ..InboundMessage::default()
        }
    }

    fn texts(flow: &impl Flow, from: &str, n: usize) -> Vec<String> {
        use futures_util::FutureExt;
        let mut state = SessionData::default();
        (0..n)
            .map(|_| {
                let reply = flow.reply(&inbound(from), &mut state).now_or_never();
                reply.expect("a counter never waits").to_xml()
            })
            .collect()
    }

    #[test]
    fn counter_speaks_the_tutorial_lines() {
        let replies = texts(&Counter, "+1", 3);
        assert!(
            replies[0]
                .ends_with("<Message>Hello, thanks for the new message.</Message></Response>")
        );
        assert!(
            replies[1]
                .ends_with("<Message>Hello, thanks for message number 2</Message></Response>")
        );
        assert!(
            replies[2]
                .ends_with("<Message>Hello, thanks for message number 3</Message></Response>")
        );
    }

    #[test]
    fn named_counter_greets_known_callers_and_friends() {
        let callers = BTreeMap::from([("+14158675308".to_owned(), "Rey".to_owned())]);
        let flow = NamedCounter::new(callers);
        let rey = texts(&flow, "+14158675308", 2);
        assert!(
            rey[1]
                .ends_with("<Message>Rey has messaged +15005550006 2 times.</Message></Response>")
        );
        let stranger = texts(&flow, "+19995550000", 1);
        assert!(
            stranger[0].ends_with(
                "<Message>Friend has messaged +15005550006 1 times.</Message></Response>"
            )
        );
    }

    #[test]
    fn a_garbled_count_restarts_at_one() {
        let mut state = SessionData::default();
        state.set(COUNT, "many");
        assert_eq!(next_count(&mut state), 1);
    }
}
