//! One conversation over the shipped flows (`config/flows`, built once): the input is lines of
//! texts stepped through one state.
//!
//! The first byte sets the server: bit 0 `flows.default = "menu"`, bit 1 a `help_reply`. Each
//! further line is one text, except that a leading `~` waits 31 minutes first (past the
//! flows' `expire_after`), a leading `!` sends it with `OptOutType=STOP` and a leading `?` with
//! `OptOutType=HELP`. At most 32 texts.
//!
//! Checks: no panic; every reply is XML-clean; an opt-out answers nothing and clears the
//! state; after every step the state is empty or names a flow of the set waiting at one of its
//! asks, and fits a cookie.
#![no_main]

use std::sync::LazyLock;

use jiff::{SignedDuration, Timestamp};
use libfuzzer_sys::fuzz_target;
use sms_sessions::flows::engine::definition::Node;
use sms_sessions::flows::engine::load::{FlowSet, LoadOptions, SourceFile, build};
use sms_sessions::flows::engine::routing::Compiled;
use sms_sessions::flows::engine::run::{FLOW, Inbound, NODE, Outcome, Settings, step_offline};
use sms_sessions::flows::files::twiml;
use sms_sessions::session::SessionData;
use sms_sessions::twilio::twiml::is_xml_char;

const SHIPPED: [(&str, &str); 3] = [
    (
        "booking.toml",
        include_str!("../../config/flows/booking.toml"),
    ),
    ("menu.toml", include_str!("../../config/flows/menu.toml")),
    (
        "survey.toml",
        include_str!("../../config/flows/survey.toml"),
    ),
];

static SET: LazyLock<FlowSet<Compiled>> = LazyLock::new(|| {
    let sources: Vec<SourceFile> = SHIPPED
        .iter()
        .map(|(file, text)| SourceFile {
            file: (*file).to_owned(),
            text: (*text).to_owned(),
        })
        .collect();
    build(&sources, &LoadOptions::default(), &Compiled).expect("the shipped flows load")
});

fn assert_sound(state: &SessionData) {
    if state.is_empty() {
        return;
    }
    let flow = state.get(FLOW).expect("a state names its flow");
    let node = state.get(NODE).expect("and the node it waits at");
    let node = SET.node(flow, node).expect("a node of a flow of the set");
    assert!(
        matches!(node.node, Node::Ask(_)),
        "waits at an ask: {state:?}"
    );
    assert!(state.fits_a_cookie("sms_session"), "{state:?}");
}

fuzz_target!(|bytes: &[u8]| {
    let Some((&flags, rest)) = bytes.split_first() else {
        return;
    };
    let settings = Settings {
        default_flow: (flags & 1 == 1).then(|| "menu".to_owned()),
        help_reply: (flags & 2 == 2).then(|| "Smile Dental: call (555) 010-0100.".to_owned()),
        ..Settings::default()
    };
    let mut now: Timestamp = "2026-03-09T14:00:00Z".parse().expect("valid");
    let mut state = SessionData::default();
    let input = String::from_utf8_lossy(rest);
    for line in input.split('\n').take(32) {
        let (text, opt_out_type) = match line.chars().next() {
            Some('~') => {
                now += SignedDuration::from_mins(31);
                (&line[1..], None)
            }
            Some('!') => (&line[1..], Some("STOP")),
            Some('?') => (&line[1..], Some("HELP")),
            _ => (line, None),
        };
        let inbound = Inbound {
            text,
            from: "+14155550199",
            to: "+14155550100",
            opt_out_type,
            message_sid: "SM00000000000000000000000000000001",
            now,
        };
        let turn = step_offline(&SET, &settings, &inbound, &mut state);
        let xml = twiml(&turn).to_xml();
        assert!(xml.chars().all(is_xml_char), "{xml:?}");
        if turn.outcome == Outcome::OptedOut {
            assert!(turn.texts.is_empty() && state.is_empty());
        }
        assert_sound(&state);
        now += SignedDuration::from_secs(20);
    }
});
