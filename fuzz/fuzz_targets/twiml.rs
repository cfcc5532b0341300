//! The TwiML writer: any messages, bodies, media, attributes and redirects.
//!
//! Checks: no panic; the document holds only characters XML 1.0 allows; it parses back
//! (quick-xml, strictly: elements, text and predefined or numeric references only) with every
//! text and attribute value equal to the input minus the characters XML forbids.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use sms_sessions::twilio::twiml::{MAX_MEDIA, MessagingResponse, Method};

#[derive(Debug, Arbitrary)]
enum Verb {
    Message {
        text: String,
        attributes: Vec<(Attribute, String)>,
        method: Option<bool>,
        children: Vec<(bool, String)>,
    },
    Redirect(String, Option<bool>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Arbitrary)]
enum Attribute {
    Action,
    From,
    StatusCallback,
    To,
}

fn method(get: bool) -> Method {
    if get { Method::Get } else { Method::Post }
}

fn method_name(get: bool) -> String {
    if get { "GET" } else { "POST" }.to_owned()
}

fn allowed_in_xml(c: char) -> bool {
    let c = u32::from(c);
    matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

fn clean(text: &str) -> String {
    text.chars().filter(|&c| allowed_in_xml(c)).collect()
}

/// Builds the response; returns it with all text and all attribute values in document order.
fn build(verbs: &[Verb]) -> (MessagingResponse, String, Vec<String>) {
    let (mut response, mut text, mut values) = (MessagingResponse::new(), String::new(), vec![]);
    for verb in verbs {
        match verb {
            Verb::Message {
                text: body,
                attributes,
                method: m,
                children,
            } => {
                let message = response.message(body.clone());
                let mut set: Vec<(Attribute, String)> = Vec::new();
                for (name, value) in attributes {
                    match name {
                        Attribute::Action => message.action(value.clone()),
                        Attribute::From => message.from(value.clone()),
                        Attribute::StatusCallback => message.status_callback(value.clone()),
                        Attribute::To => message.to(value.clone()),
                    };
                    set.retain(|(n, _)| n != name);
                    set.push((*name, clean(value)));
                }
                if let Some(get) = m {
                    message.method(method(*get));
                }
                set.sort();
                // Written in name order: action, from, method, statusCallback, to.
                let split = set
                    .iter()
                    .position(|(n, _)| *n >= Attribute::StatusCallback);
                let (before, after) = set.split_at(split.unwrap_or(set.len()));
                values.extend(before.iter().map(|(_, v)| v.clone()));
                values.extend(m.map(method_name));
                values.extend(after.iter().map(|(_, v)| v.clone()));
                text.push_str(&clean(body));
                for (is_media, content) in children.iter().take(MAX_MEDIA) {
                    if *is_media {
                        message.media(content.clone()).expect("within the limit");
                    } else {
                        message.body(content.clone());
                    }
                    text.push_str(&clean(content));
                }
            }
            Verb::Redirect(url, m) => {
                response.redirect(url.clone(), m.map(method));
                values.extend(m.map(method_name));
                text.push_str(&clean(url));
            }
        }
    }
    (response, text, values)
}

fn attribute_values(start: &BytesStart<'_>) -> Vec<String> {
    let values = start.attributes().map(|attribute| {
        let attribute = attribute.expect("well-formed attribute");
        let value = attribute.normalized_value(XmlVersion::Explicit1_0);
        value.expect("valid references").into_owned()
    });
    values.collect()
}

/// All text and attribute values of a strictly parsed document, in order.
fn parse(xml: &str) -> (String, Vec<String>) {
    let mut reader = Reader::from_str(xml);
    let (mut text, mut values, mut depth) = (String::new(), Vec::new(), 0usize);
    loop {
        match reader.read_event().expect("well-formed") {
            Event::Decl(_) => {}
            Event::Start(start) => {
                values.extend(attribute_values(&start));
                depth += 1;
            }
            Event::Empty(start) => values.extend(attribute_values(&start)),
            Event::End(_) => depth -= 1,
            Event::Text(raw) => {
                let raw = raw.into_inner();
                assert!(!raw.contains(['&', '<']), "unescaped markup in {raw:?}");
                text.push_str(&raw);
            }
            Event::GeneralRef(reference) => match reference.resolve_char_ref().expect("valid") {
                Some(c) => text.push(c),
                None => text.push_str(resolve_predefined_entity(&reference).expect("known entity")),
            },
            Event::Eof => {
                assert_eq!(depth, 0, "unclosed element in {xml:?}");
                return (text, values);
            }
            other => panic!("unexpected {other:?} in {xml:?}"),
        }
    }
}

fuzz_target!(|verbs: Vec<Verb>| {
    let (response, text, values) = build(&verbs);
    let xml = response.to_xml();
    assert!(xml.chars().all(allowed_in_xml), "{xml:?}");
    assert_eq!(parse(&xml), (text, values), "{xml:?}");
});
