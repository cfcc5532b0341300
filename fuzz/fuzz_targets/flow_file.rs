//! A flow file: any bytes (as UTF-8, lossily) through `definition::parse` and `load::build`,
//! alone and beside a shipped flow; a file that loads then has its own `[[tests]]`
//! transcripts run through the step runner, and a few texts stepped through it.
//!
//! Checks: no panic; parse and build agree (a file that fails to parse never loads); every
//! reply is XML-clean and a state left behind names a flow of the set waiting at an ask.
#![no_main]

use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;
use sms_sessions::flows::engine::definition::{Node, parse};
use sms_sessions::flows::engine::load::{FlowSet, LoadOptions, SourceFile, build};
use sms_sessions::flows::engine::routing::Compiled;
use sms_sessions::flows::engine::run::{FLOW, Inbound, NODE, Settings, step_offline};
use sms_sessions::flows::engine::transcript;
use sms_sessions::flows::files::twiml;
use sms_sessions::session::SessionData;
use sms_sessions::twilio::twiml::is_xml_char;

const MENU: &str = include_str!("../../config/flows/menu.toml");

fn source(file: &str, text: &str) -> SourceFile {
    SourceFile {
        file: file.to_owned(),
        text: text.to_owned(),
    }
}

/// Steps the keywords, an empty text and a few answers through the loaded set.
fn step_some(set: &FlowSet<Compiled>, keywords: Vec<String>) {
    let settings = Settings {
        default_flow: set.flows().next().map(|flow| flow.name().to_owned()),
        ..Settings::default()
    };
    let now: Timestamp = "2026-01-05T15:00:00Z".parse().expect("valid");
    let mut state = SessionData::default();
    let answers = ["", "1", "yes", "tomorrow", "2pm", "a@b.co", "HELP", "x"];
    for text in keywords.iter().map(String::as_str).chain(answers) {
        let inbound = Inbound {
            text,
            from: "+14155550199",
            to: "+14155550100",
            opt_out_type: None,
            message_sid: "SM00000000000000000000000000000001",
            now,
        };
        let turn = step_offline(set, &settings, &inbound, &mut state);
        assert!(twiml(&turn).to_xml().chars().all(is_xml_char));
        if let Some(flow) = state.get(FLOW) {
            let node = state.get(NODE).and_then(|node| set.node(flow, node));
            assert!(
                matches!(node.map(|n| n.node), Some(Node::Ask(_))),
                "{state:?}"
            );
        }
    }
}

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let parsed = parse("fuzz.toml", &text);
    let options = LoadOptions::default();
    let alone = build(&[source("fuzz.toml", &text)], &options, &Compiled);
    assert!(
        parsed.is_ok() || alone.is_err(),
        "a file that does not parse loaded"
    );
    let _ = build(
        &[source("menu.toml", MENU), source("fuzz.toml", &text)],
        &options,
        &Compiled,
    );
    let (Ok(def), Ok(set)) = (parsed, alone) else {
        return;
    };
    for test in &def.tests {
        let _ = transcript::run(&set, &Settings::default(), test);
    }
    let keywords = def.triggers.iter().flat_map(|t| t.keywords.clone());
    step_some(&set, keywords.take(4).collect());
});
