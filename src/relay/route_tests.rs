//! Golden TwiML of forwarded texts.

use super::*;
use crate::relay::model::{Participant, State};
use crate::twilio::inbound::Media;

const STATUS: &str = "https://sms.example.com/sms/status";

fn person(address: &str, label: Option<&str>, proxy: &str) -> Participant {
    Participant {
        address: address.into(),
        label: label.map(Into::into),
        proxy: proxy.into(),
        opted_out: false,
    }
}

fn session(participants: Vec<Participant>) -> RelaySession {
    RelaySession {
        id: "RS0123456789abcdef0123456789abcdef".into(),
        state: State::Open,
        participants,
        ttl_secs: 3600,
        expires_at_ms: None,
        created_at_ms: 0,
        last_activity_ms: 0,
        closed_reason: None,
        handoff_from: None,
    }
}

fn text<'a>(from: &'a str, to: &'a str, body: &'a str, media: &[&'a str]) -> InboundMessage<'a> {
    InboundMessage {
        message_sid: "SM1",
        from,
        to,
        body,
        media: media
            .iter()
            .map(|url| Media {
                url,
                content_type: Some("image/jpeg"),
            })
            .collect(),
        ..InboundMessage::default()
    }
}

fn xml(response: &MessagingResponse) -> String {
    response
        .to_xml()
        .trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .to_owned()
}

#[test]
fn two_people_each_get_the_others_text_from_their_own_proxy_with_media() {
    let pair = session(vec![
        person("+14155550001", Some("Buyer"), "+14155550100"),
        person("+14155550002", Some("Seller"), "+14155550101"),
    ]);
    let buyer = text(
        "+14155550001",
        "+14155550100",
        "Is it still <available> & blue?",
        &["https://api.twilio.com/m/1", "https://api.twilio.com/m/2"],
    );
    assert_eq!(
        xml(&forwards(&pair, &buyer, Some(STATUS), "n/a")),
        "<Response><Message from=\"+14155550101\" statusCallback=\"https://sms.example.com/sms/status?relay=RS0123456789abcdef0123456789abcdef\" to=\"+14155550002\">\
         <Body>Is it still &lt;available&gt; &amp; blue?</Body>\
         <Media>https://api.twilio.com/m/1</Media><Media>https://api.twilio.com/m/2</Media></Message></Response>"
    );
    let seller = text("+14155550002", "+14155550101", "Yes!", &[]);
    assert_eq!(
        xml(&forwards(&pair, &seller, Some(STATUS), "n/a")),
        "<Response><Message from=\"+14155550100\" statusCallback=\"https://sms.example.com/sms/status?relay=RS0123456789abcdef0123456789abcdef\" to=\"+14155550001\">Yes!</Message></Response>"
    );
}

#[test]
fn three_people_see_who_spoke_and_the_sender_gets_nothing() {
    let group = session(vec![
        person("+14155550001", Some("Ana"), "+14155550100"),
        person("+14155550002", None, "+14155550100"),
        person("whatsapp:+14155550003", Some("Bo"), "whatsapp:+14155238886"),
    ]);
    let from_second = text(
        "+14155550002",
        "+14155550100",
        "On my way",
        &["https://m/1"],
    );
    let out = xml(&forwards(&group, &from_second, None, "n/a"));
    assert_eq!(
        out,
        "<Response><Message from=\"+14155550100\" to=\"+14155550001\">\
         <Body>Participant 2: On my way</Body><Media>https://m/1</Media></Message>\
         <Message from=\"whatsapp:+14155238886\" to=\"whatsapp:+14155550003\">\
         <Body>Participant 2: On my way</Body><Media>https://m/1</Media></Message></Response>"
    );
    assert!(
        !out.contains("to=\"+14155550002\""),
        "never back to the sender"
    );
}

#[test]
fn an_opted_out_participant_is_skipped_and_the_sender_told() {
    let mut pair = session(vec![
        person("+14155550001", Some("Buyer"), "+14155550100"),
        person("+14155550002", Some("Seller"), "+14155550101"),
    ]);
    pair.participants[1].opted_out = true;
    let buyer = text("+14155550001", "+14155550100", "Hello?", &[]);
    assert_eq!(
        xml(&forwards(
            &pair,
            &buyer,
            Some(STATUS),
            "They can't receive messages right now."
        )),
        "<Response><Message>They can't receive messages right now.</Message></Response>"
    );
}

#[test]
fn eleven_people_make_ten_messages_and_nothing_is_sent_for_an_empty_text() {
    let many: Vec<Participant> = (0..11)
        .map(|i| person(&format!("+1415555{:04}", i), None, "+14155550100"))
        .collect();
    let group = session(many);
    let out = forwards(
        &group,
        &text("+14155550000", "+14155550100", "hi", &[]),
        Some(STATUS),
        "x",
    );
    assert_eq!(out.len(), MAX_MESSAGES);
    let empty = forwards(
        &group,
        &text("+14155550000", "+14155550100", "  ", &[]),
        Some(STATUS),
        "x",
    );
    assert!(empty.is_empty());
}

#[test]
fn a_long_text_with_a_label_is_cut_to_twilios_limit() {
    let group = session(vec![
        person("+14155550001", Some("A"), "+14155550100"),
        person("+14155550002", Some("B"), "+14155550100"),
        person("+14155550003", Some("C"), "+14155550100"),
    ]);
    let long = "x".repeat(1_600);
    let out = forwards(
        &group,
        &text("+14155550001", "+14155550100", &long, &[]),
        Some(STATUS),
        "x",
    );
    let body = xml(&out);
    let first = body.split("<Message").nth(1).expect("a message");
    let text = &first[first.find('>').unwrap() + 1..first.find("</Message>").unwrap()];
    assert_eq!(text.chars().count(), 1_600);
    assert!(text.starts_with("A: xx") && text.ends_with("x…"));
}
