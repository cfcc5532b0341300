//! What a phone texts and what it expects back: the counter's count, a conversation walked
//! over and over (the shipped booking flow), or nothing (the baseline's constant reply).

use sms_sessions::flows::engine::transcript;

/// One text of a conversation and the reply it must get (`*` stands for any run of
/// characters, as in a flow file's `[[tests]]`).
pub struct Exchange {
    pub send: &'static str,
    pub expect: &'static str,
}

/// config/flows/booking.toml, happy path. It starts with "book", which also restarts a
/// booking under way (an interrupt), so a phone that lost track starts over from the top.
/// The day is "wed", the next Wednesday (always a weekday the clinic opens, within its 60
/// days), whose date depends on today: the replies match it with `*`.
pub const BOOKING: [Exchange; 6] = [
    Exchange {
        send: "book",
        expect: "Smile Dental: let's book*\n\nWhat is the visit for?*",
    },
    Exchange {
        send: "a cleaning please",
        expect: "Which day suits you?*",
    },
    Exchange {
        send: "wed",
        expect: "What time on Wed *? We're open 9am to 5pm.",
    },
    Exchange {
        send: "10am",
        expect: "What name should the booking be under?",
    },
    Exchange {
        send: "Ana",
        expect: "Book a cleaning for Ana on * at 10:00? Reply YES or NO",
    },
    Exchange {
        send: "yes",
        expect: "Booked! Cleaning on * at 10:00, under Ana. Text BOOK to book again.",
    },
];

/// How a run's replies are checked.
#[derive(Clone, Copy)]
pub enum Script {
    /// The payload's own text; the reply is not checked (the baseline's is constant).
    Unchecked,
    /// The payload's own text; reply k must count k texts (the counter flow).
    Counter,
    /// The exchanges in turn, over and over; every reply must match.
    Conversation(&'static [Exchange]),
}

impl Script {
    /// The text to send at `step` of a conversation (`None`: the payload's own `Body`).
    pub fn text(self, step: usize) -> Option<&'static str> {
        match self {
            Script::Conversation(exchanges) => Some(exchanges[step % exchanges.len()].send),
            Script::Unchecked | Script::Counter => None,
        }
    }
}

/// Whether a reply's text matches what `exchange` expects.
pub fn replied(exchange: &Exchange, text: &str) -> bool {
    transcript::matches(exchange.expect, text)
}

/// The counter flow's number: 1 for the new-message greeting, k for "message number k".
pub fn count_in(text: &str) -> Option<u64> {
    if text == "Hello, thanks for the new message." {
        return Some(1);
    }
    text.strip_prefix("Hello, thanks for message number ")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_counter_replies() {
        assert_eq!(count_in("Hello, thanks for the new message."), Some(1));
        assert_eq!(count_in("Hello, thanks for message number 12"), Some(12));
        assert_eq!(count_in("Hello"), None);
    }

    /// The script against the shipped flow itself, on every day of a week: each reply matches.
    #[test]
    fn the_booking_script_walks_the_shipped_flow_on_any_day() {
        use sms_sessions::flows::engine::load::{LoadOptions, SourceFile, build};
        use sms_sessions::flows::engine::routing::Compiled;
        use sms_sessions::flows::engine::run::{Inbound, Settings, step_offline};
        use sms_sessions::session::SessionData;

        let booking = SourceFile {
            file: "booking.toml".into(),
            text: include_str!("../../config/flows/booking.toml").into(),
        };
        let set = build(&[booking], &LoadOptions::default(), &Compiled).expect("the flow loads");
        let monday: jiff::Timestamp = "2026-03-09T15:00:00Z".parse().expect("timestamp");
        for day in 0..7 {
            let now = monday + jiff::SignedDuration::from_hours(24 * day);
            let mut state = SessionData::default();
            for exchange in &BOOKING {
                let inbound = Inbound {
                    text: exchange.send,
                    from: "+15550000001",
                    to: "+15550000000",
                    opt_out_type: None,
                    message_sid: "SM00000000000000000000000000000001",
                    now,
                };
                let reply = step_offline(&set, &Settings::default(), &inbound, &mut state).body();
                assert!(
                    replied(exchange, &reply),
                    "day {day}, {:?}: {reply:?}",
                    exchange.send
                );
            }
        }
        assert!(!replied(&BOOKING[1], "Please reply 1, 2 or 3."));
    }
}
