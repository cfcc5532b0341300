//! What a phone texts and what it expects back: the counter's count, a conversation walked
//! over and over (the shipped booking flow; the order flow of the call-out runs), or nothing
//! (the baseline's constant reply).

use sms_sessions::flows::engine::transcript;

/// One text of a conversation and the reply it must get (`*` stands for any run of
/// characters, as in a flow file's `[[tests]]`).
pub struct Exchange {
    pub send: &'static str,
    pub expect: &'static str,
}

/// A conversation a phone walks: `exchanges` in turn, then again from `again_from`, over and
/// over. After a wrong reply or a failed text it starts over at the first exchange, which must
/// (re)start the flow wherever the conversation stands (a trigger with `interrupt = true`).
pub struct Conversation {
    pub exchanges: &'static [Exchange],
    /// Where the walk goes on after the last exchange.
    pub again_from: usize,
    /// A reply that means the server failed (a call-out went to its `on_error`): counted as
    /// an error, not a wrong reply.
    pub failure: Option<&'static str>,
}

/// config/flows/booking.toml, happy path, over and over from the top.
pub const BOOKING: Conversation = Conversation {
    exchanges: &BOOKING_EXCHANGES,
    again_from: 0,
    failure: None,
};

/// config/flows/booking.toml, happy path. It starts with "book", which also restarts a
/// booking under way (an interrupt), so a phone that lost track starts over from the top.
/// The day is "wed", the next Wednesday (always a weekday the clinic opens, within its 60
/// days), whose date depends on today: the replies match it with `*`.
const BOOKING_EXCHANGES: [Exchange; 6] = [
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

/// The endpoint of the `calls` run's `call` node (`[flows.endpoints.shop]`).
pub const SHOP_ENDPOINT: &str = "shop";
/// What the stand-in shop answers every request with, and so what the `calls-local` run's
/// `set` node sets.
pub const SHOP_ANSWER: &str = r#"{"status":"shipped","eta":"Tue"}"#;
/// The order flow's `end` when its call-out fails: any reply with it is an error of the run.
pub const SHOP_DOWN: &str = "Sorry, the shop is not answering. Text ORDER to try again.";

/// The order flow of the `calls` and `calls-local` runs, as a flow file: "order" starts it (and
/// restarts it wherever it stands), then every order number is looked up and the answer
/// told, and the number asked for again. `lookup` is the node `lookup` (its `type` and the
/// rest), which goes on to `show`, and any node only it leads to: [`ORDER_CALL`] or
/// [`ORDER_SET`].
pub fn order_flow(lookup: &str) -> String {
    format!(
        r#"spec = 1
name = "order"
description = "Where is my order? (the load tool's call-out runs)"
start = "ask_number"

[[triggers]]
keywords = ["ORDER"]
interrupt = true

[nodes.ask_number]
type = "ask"
text = "Order number?"
expect = "integer"
save = "number"
next = "lookup"

[nodes.lookup]
{lookup}
[nodes.show]
type = "say"
text = "Order {{{{ number }}}}: {{{{ status }}}}, arriving {{{{ eta }}}}."
next = "ask_number"
"#
    )
}

/// The `calls` run's lookup: one GET to the stand-in per order number, saving from its JSON;
/// when the call fails in any way, [`SHOP_DOWN`] (the text in `down` is `SHOP_DOWN`'s).
pub const ORDER_CALL: &str = r#"type = "call"
endpoint = "shop"
method = "GET"
path = "/orders/{{ number }}"
save = { status = "/status", eta = "/eta" }
next = "show"
on_error = "down"

[nodes.down]
type = "end"
text = "Sorry, the shop is not answering. Text ORDER to try again."
"#;

/// The `calls-local` run's lookup: the same variables set to the same values ([`SHOP_ANSWER`]'s),
/// with no call: the only difference between the two runs.
pub const ORDER_SET: &str = r#"type = "set"
values = { status = "shipped", eta = "Tue" }
next = "show"
"#;

/// The order flow, walked: "order" once, then order numbers over and over, each of which makes
/// one call-out in the `calls` run (so the measured webhooks, which come after every phone's
/// "order" in the warm-up, each make exactly one).
pub const ORDER: Conversation = Conversation {
    exchanges: &[
        Exchange {
            send: "order",
            expect: "Order number?",
        },
        Exchange {
            send: "1001",
            expect: "Order 1001: shipped, arriving Tue.\n\nOrder number?",
        },
        Exchange {
            send: "20417",
            expect: "Order 20417: shipped, arriving Tue.\n\nOrder number?",
        },
        Exchange {
            send: "3",
            expect: "Order 3: shipped, arriving Tue.\n\nOrder number?",
        },
    ],
    again_from: 1,
    failure: Some(SHOP_DOWN),
};

/// How a run's replies are checked.
#[derive(Clone, Copy)]
pub enum Script {
    /// The payload's own text; the reply is not checked (the baseline's is constant).
    Unchecked,
    /// The payload's own text; reply k must count k texts (the counter flow).
    Counter,
    /// The exchanges in turn, over and over; every reply must match.
    Conversation(&'static Conversation),
}

impl Script {
    /// The text to send at `step` of a conversation (`None`: the payload's own `Body`).
    pub fn text(self, step: usize) -> Option<&'static str> {
        match self {
            Script::Conversation(conversation) => {
                let exchanges = conversation.exchanges;
                Some(exchanges[step % exchanges.len()].send)
            }
            Script::Unchecked | Script::Counter => None,
        }
    }
}

impl Conversation {
    /// The exchange after `step`.
    pub fn next(&self, step: usize) -> usize {
        if step + 1 >= self.exchanges.len() {
            self.again_from
        } else {
            step + 1
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
            for exchange in BOOKING.exchanges {
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
        assert!(!replied(&BOOKING.exchanges[1], "Please reply 1, 2 or 3."));
    }

    /// The stand-in shop as the engine sees it: every call recorded, each answered at once
    /// with [`SHOP_ANSWER`].
    struct Shop(std::sync::Mutex<Vec<String>>);

    impl sms_sessions::flows::engine::call::Calls for Shop {
        fn call<'a>(
            &'a self,
            request: &'a sms_sessions::flows::engine::call::CallRequest,
        ) -> sms_sessions::flows::engine::call::CallFuture<'a> {
            use sms_sessions::flows::engine::call::CallResponse;
            let line = format!(
                "{} {} {}",
                request.endpoint,
                request.method.as_str(),
                request.path_and_query()
            );
            self.0.lock().expect("calls lock").push(line);
            let answer = CallResponse {
                status: 200,
                body: SHOP_ANSWER.as_bytes().to_vec(),
            };
            Box::pin(std::future::ready(Ok(answer)))
        }
    }

    /// The order flow with `lookup`, loaded and checked as the server loads it (with the
    /// `shop` endpoint configured).
    fn order_set(
        lookup: &str,
    ) -> sms_sessions::flows::engine::load::FlowSet<sms_sessions::flows::engine::routing::Compiled>
    {
        use sms_sessions::flows::engine::load::{LoadOptions, SourceFile, build};
        use sms_sessions::flows::engine::routing::Compiled;

        let file = SourceFile {
            file: "order.toml".into(),
            text: order_flow(lookup),
        };
        let mut options = LoadOptions::default();
        options.check.endpoints = Some([SHOP_ENDPOINT.to_owned()].into());
        build(&[file], &options, &Compiled).expect("the order flow loads")
    }

    /// The `calls` and `calls-local` runs' scripts against the flows they write: every reply
    /// matches, twice round the loop, and only `calls` calls, once per order number, to
    /// `GET /orders/NUMBER` on the `shop` endpoint.
    #[test]
    fn the_order_script_walks_the_written_flows_with_and_without_calls() {
        use futures_util::FutureExt;
        use sms_sessions::flows::engine::run::{Inbound, Settings, step};
        use sms_sessions::session::SessionData;

        for (lookup, calls) in [(ORDER_CALL, true), (ORDER_SET, false)] {
            let set = order_set(lookup);
            let shop = Shop(Default::default());
            let mut state = SessionData::default();
            let mut at = 0;
            for _ in 0..2 * ORDER.exchanges.len() {
                let exchange = &ORDER.exchanges[at];
                let inbound = Inbound {
                    text: exchange.send,
                    from: "+15550000001",
                    to: "+15550000000",
                    opt_out_type: None,
                    message_sid: "SM00000000000000000000000000000001",
                    now: "2026-03-09T15:00:00Z".parse().expect("timestamp"),
                };
                let before = shop.0.lock().expect("calls lock").len();
                let turn = step(&set, &Settings::default(), &inbound, &mut state, &shop)
                    .now_or_never()
                    .expect("the shop answers at once");
                let reply = turn.body();
                assert!(replied(exchange, &reply), "{:?}: {reply:?}", exchange.send);
                assert!(turn.call_errors.is_empty(), "{:?}", turn.call_errors);
                let made = &shop.0.lock().expect("calls lock")[before..];
                if calls && at > 0 {
                    let expected = format!("shop GET /orders/{}", exchange.send);
                    assert_eq!(made, [expected], "{:?}", exchange.send);
                } else {
                    assert!(made.is_empty(), "{:?}: {made:?}", exchange.send);
                }
                at = ORDER.next(at);
            }
        }
    }

    /// A failed call-out gets the one reply a phone counts as an error (offline, every call
    /// fails), and "order" restarts the flow after it, as a phone that starts over sends it.
    #[test]
    fn a_failed_call_out_replies_the_down_text_and_order_starts_over() {
        use sms_sessions::flows::engine::run::{Inbound, Settings, step_offline};
        use sms_sessions::session::SessionData;

        let set = order_set(ORDER_CALL);
        let mut state = SessionData::default();
        let mut say = |text| {
            let inbound = Inbound {
                text,
                from: "+15550000001",
                to: "+15550000000",
                opt_out_type: None,
                message_sid: "SM00000000000000000000000000000001",
                now: "2026-03-09T15:00:00Z".parse().expect("timestamp"),
            };
            step_offline(&set, &Settings::default(), &inbound, &mut state).body()
        };
        assert!(replied(&ORDER.exchanges[0], &say("order")));
        assert_eq!(say("1001"), SHOP_DOWN);
        assert_eq!(ORDER.failure, Some(SHOP_DOWN));
        assert!(replied(&ORDER.exchanges[0], &say("order")));
        // An interrupt in the middle of the walk, too.
        assert!(replied(&ORDER.exchanges[0], &say("order")));
    }
}
