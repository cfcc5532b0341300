//! Properties of the pure core, checked on generated inputs with proptest.
//!
//! - signature: sign → verify round-trips; every change to the URL, a key, a value, the token
//!   or the signature that changes what Twilio signs fails; changes that leave it the same
//!   (reordering, repeating an identical pair) still verify;
//! - session cookie: encode → decode round-trips within the TTL; any mutation of the value is
//!   rejected; foreign pairs and unknown secrets are named as such;
//! - TwiML: always well-formed, and parsing it back gives the input minus the characters XML
//!   forbids;
//! - the form parser, the cookie decoder and the public-URL rebuild never panic on any bytes.
//!
//! Case counts are modest so the whole file runs in a few seconds on two cores; run with
//! `PROPTEST_CASES=10000 cargo test --test properties` for a deeper search.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use proptest::sample::Index;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use sha2::{Digest, Sha256};
use sms_sessions::config::PublicUrl;
use sms_sessions::session::{
    MAX_COOKIE_BYTES, Outcome, Pair, Rejection, SessionCodec, SessionData, SessionSecret,
};
use sms_sessions::twilio::inbound::{InboundMessage, StatusCallback};
use sms_sessions::twilio::public_url::UrlSource;
use sms_sessions::twilio::signature::{AuthToken, Invalid, Payload, verify};
use sms_sessions::twilio::twiml::{MAX_MEDIA, Message, MessagingResponse, Method};

type Params = Vec<(String, String)>;

/// `cases` per property, or `PROPTEST_CASES` when set.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Signature
// ---------------------------------------------------------------------------------------------

/// Printable ASCII, 1–64 bytes. HMAC pads short keys with zero bytes and hashes keys longer
/// than its 64-byte block, so `k` and `k\0`, or a 65-byte key and its SHA-1, are the same
/// key; real Twilio tokens are 32 hex digits, far from both edges.
fn token() -> impl Strategy<Value = String> {
    "[!-~]{1,64}"
}

/// `scheme://host[:port]/path[?query]`: the path always starts with `/`, so every change
/// made after that `/` leaves the authority (and so the port variants) alone.
fn url() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![Just("http"), Just("https")];
    let host = "[a-z0-9]{1,10}(\\.[a-z]{2,5}){0,2}";
    let port = prop::option::of(1u16..);
    let path = "(/[A-Za-z0-9._~%+-]{0,8}){1,3}";
    let query = prop::option::of("[A-Za-z0-9=&%+._~-]{0,24}");
    (scheme, host, port, path, query).prop_map(|(scheme, host, port, path, query)| {
        let port = port.map_or(String::new(), |p| format!(":{p}"));
        let query = query.map_or(String::new(), |q| format!("?{q}"));
        format!("{scheme}://{host}{port}{path}{query}")
    })
}

/// Any characters but a newline, including controls and astral planes.
fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..=max).prop_map(String::from_iter)
}

fn params() -> impl Strategy<Value = Params> {
    prop::collection::vec((text(8), text(8)), 0..8)
}

/// The string Twilio signs, written here from the published rule rather than taken from the
/// crate: URL, then `key` + `value` for each distinct pair in code-point order.
fn string_to_sign(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut out = url.to_owned();
    for (key, value) in sorted {
        out.push_str(key);
        out.push_str(value);
    }
    out
}

fn sign(token: &str, url: &str, params: &[(String, String)]) -> String {
    AuthToken::new(token).expect("non-empty").sign(url, params)
}

fn check(token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let token = AuthToken::new(token).expect("non-empty");
    verify(&[token], url, Payload::Form(params), signature).is_ok()
}

/// A real change to a string: replace, insert or delete one character at or after `from`.
#[derive(Debug, Clone)]
enum Edit {
    Replace(Index, char),
    Insert(Index, char),
    Delete(Index),
}

fn edit(chars: impl Strategy<Value = char> + Clone) -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), chars.clone()).prop_map(|(i, c)| Edit::Replace(i, c)),
        (any::<Index>(), chars).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<Index>().prop_map(Edit::Delete),
    ]
}

impl Edit {
    /// Applies the edit to the characters of `text` from index `from` on; the result always
    /// differs from `text` (a replacement by the same character is turned into an insertion).
    fn apply(&self, text: &str, from: usize) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        let tail = chars.len() - from;
        match *self {
            Edit::Replace(i, c) if tail > 0 => {
                let at = from + i.index(tail);
                if chars[at] == c {
                    chars.insert(at, c);
                } else {
                    chars[at] = c;
                }
            }
            Edit::Delete(i) if tail > 0 => {
                chars.remove(from + i.index(tail));
            }
            Edit::Replace(i, c) | Edit::Insert(i, c) => chars.insert(from + i.index(tail + 1), c),
            Edit::Delete(_) => chars.push('x'),
        }
        chars.into_iter().collect()
    }
}

/// What to change in the parameters.
#[derive(Debug, Clone)]
enum ParamChange {
    Key(Index, Edit),
    Value(Index, Edit),
    Remove(Index),
    Add(String, String),
}

fn param_change() -> impl Strategy<Value = ParamChange> {
    let chars = any::<char>();
    prop_oneof![
        (any::<Index>(), edit(chars.clone())).prop_map(|(i, e)| ParamChange::Key(i, e)),
        (any::<Index>(), edit(chars)).prop_map(|(i, e)| ParamChange::Value(i, e)),
        any::<Index>().prop_map(ParamChange::Remove),
        (text(8), text(8)).prop_map(|(k, v)| ParamChange::Add(k, v)),
    ]
}

impl ParamChange {
    fn apply(&self, params: &[(String, String)]) -> Params {
        let mut out = params.to_vec();
        if out.is_empty() {
            out.push(("Body".into(), "x".into()));
            return out;
        }
        match self {
            Self::Key(i, e) => {
                let pair = &mut out[i.index(params.len())];
                pair.0 = e.apply(&pair.0, 0);
            }
            Self::Value(i, e) => {
                let pair = &mut out[i.index(params.len())];
                pair.1 = e.apply(&pair.1, 0);
            }
            Self::Remove(i) => {
                out.remove(i.index(params.len()));
            }
            Self::Add(k, v) => out.push((k.clone(), v.clone())),
        }
        out
    }
}

/// Index of the `/` that starts the path (the URL strategy always has one).
fn path_start(url: &str) -> usize {
    let after_scheme = url.find("://").expect("scheme") + 3;
    after_scheme + url[after_scheme..].find('/').expect("path")
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn signature_round_trips(token in token(), url in url(), params in params()) {
        let signature = sign(&token, &url, &params);
        prop_assert!(check(&token, &url, &params, &signature));
    }

    #[test]
    fn reordered_or_repeated_identical_pairs_still_verify(
        token in token(),
        url in url(),
        (params, shuffled) in params()
            .prop_flat_map(|p| (Just(p.clone()), Just(p).prop_shuffle())),
        repeat in any::<Index>(),
    ) {
        let signature = sign(&token, &url, &params);
        let mut changed = shuffled;
        if !changed.is_empty() {
            let pair = changed[repeat.index(changed.len())].clone();
            changed.push(pair);
        }
        prop_assert!(check(&token, &url, &changed, &signature));
    }

    #[test]
    fn any_change_to_the_url_path_or_query_fails(
        token in token(),
        url in url(),
        params in params(),
        edit in edit(any::<char>()),
    ) {
        let signature = sign(&token, &url, &params);
        let changed = edit.apply(&url, url[..path_start(&url)].chars().count() + 1);
        prop_assert_ne!(&changed, &url);
        prop_assert!(!check(&token, &changed, &params, &signature), "{changed}");
    }

    #[test]
    fn any_change_to_the_host_fails(
        token in token(),
        url in url(),
        params in params(),
        at in any::<Index>(),
        replacement in "[a-z0-9]",
    ) {
        let signature = sign(&token, &url, &params);
        let start = url.find("://").expect("scheme") + 3;
        let host_len = url[start..].find([':', '/']).expect("authority ends");
        let at = start + at.index(host_len);
        let replacement = replacement.chars().next().expect("one char");
        prop_assume!(url.as_bytes()[at] != replacement as u8);
        let mut changed = url.clone();
        changed.replace_range(at..=at, &replacement.to_string());
        prop_assert!(!check(&token, &changed, &params, &signature), "{changed}");
    }

    #[test]
    fn any_change_to_a_key_or_value_fails(
        token in token(),
        url in url(),
        params in params(),
        change in param_change(),
    ) {
        let signature = sign(&token, &url, &params);
        let changed = change.apply(&params);
        // No separators between keys and values (Twilio's rule), so e.g. ("ab","c") and
        // ("a","bc") sign alike; only changes to the signed string are changes.
        prop_assume!(string_to_sign(&url, &changed) != string_to_sign(&url, &params));
        prop_assert!(!check(&token, &url, &changed, &signature));
    }

    #[test]
    fn another_token_fails_and_rotation_accepts_either(
        token in token(),
        url in url(),
        params in params(),
        edit in edit(proptest::char::range('!', '~')),
    ) {
        let signature = sign(&token, &url, &params);
        let other = edit.apply(&token, 0);
        prop_assume!(!other.is_empty() && other.len() <= 64);
        prop_assert!(!check(&other, &url, &params, &signature));
        let tokens = [
            AuthToken::new(&other).expect("non-empty"),
            AuthToken::new(&token).expect("non-empty"),
        ];
        prop_assert_eq!(verify(&tokens, &url, Payload::Form(&params), &signature), Ok(()));
    }

    #[test]
    fn any_flipped_signature_bit_fails(
        token in token(),
        url in url(),
        params in params(),
        byte in 0usize..20,
        bit in 0u8..8,
    ) {
        let mut raw = STANDARD.decode(sign(&token, &url, &params)).expect("base64");
        raw[byte] ^= 1 << bit;
        let tampered = STANDARD.encode(&raw);
        let token = AuthToken::new(&token).expect("non-empty");
        prop_assert_eq!(
            verify(&[token], &url, Payload::Form(&params), &tampered),
            Err(Invalid::Mismatch)
        );
    }

    #[test]
    fn json_bodies_verify_through_body_sha256_and_any_changed_byte_fails(
        token in token(),
        url in url(),
        body in prop::collection::vec(any::<u8>(), 0..200),
        at in any::<Index>(),
    ) {
        let hash = format!("{:x}", Sha256::digest(&body));
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}bodySHA256={hash}");
        let signature = AuthToken::new(&token).expect("non-empty").sign::<&str, &str>(&url, &[]);
        let tokens = [AuthToken::new(&token).expect("non-empty")];
        let ok = verify::<&str, &str>(&tokens, &url, Payload::Body(&body), &signature);
        prop_assert_eq!(ok, Ok(()));
        let mut changed = body.clone();
        if changed.is_empty() {
            changed.push(0);
        } else {
            let at = at.index(changed.len());
            changed[at] = changed[at].wrapping_add(1);
        }
        let bad = verify::<&str, &str>(&tokens, &url, Payload::Body(&changed), &signature);
        prop_assert_eq!(bad, Err(Invalid::BodyHashMismatch));
    }

    #[test]
    fn verify_never_panics_on_any_header_or_url(
        url in text(60),
        signature in text(40),
        params in params(),
    ) {
        let token = AuthToken::new("t").expect("non-empty");
        let _ = verify(std::slice::from_ref(&token), &url, Payload::Form(&params), &signature);
        let _ = verify::<&str, &str>(&[token], &url, Payload::Body(b"{}"), &signature);
    }
}

// ---------------------------------------------------------------------------------------------
// Session cookie
// ---------------------------------------------------------------------------------------------

const NAME: &str = "sms_session";

fn secret() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 32..80)
}

fn codec(secret: &[u8], ttl: u64) -> SessionCodec {
    let secret = SessionSecret::new(secret.to_vec()).expect("32 bytes or more");
    SessionCodec::new(NAME, Duration::from_secs(ttl), &secret, &[])
}

fn session_data() -> impl Strategy<Value = SessionData> {
    prop::collection::vec((text(10), text(20)), 0..6).prop_map(|entries| {
        let mut data = SessionData::default();
        for (key, value) in entries {
            data.set(key, value);
        }
        data
    })
}

/// Phone-like addresses most of the time, anything some of the time.
fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "(whatsapp:)?\\+[1-9][0-9]{6,14}",
        1 => text(16),
    ]
}

/// A value in the cookie octet set, as a mutation of the value may bring in.
fn cookie_char() -> impl Strategy<Value = char> + Clone {
    prop_oneof![
        4 => proptest::char::range('!', '~'),
        1 => prop::sample::select(vec!['.', '=', '"', ' ', ';', ',', '\\']),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn cookie_round_trips_within_the_ttl(
        secret in secret(),
        data in session_data(),
        (to, from) in (address(), address()),
        now in 0u64..4_000_000_000,
        ttl in 1u64..1_000_000,
        elapsed in any::<Index>(),
    ) {
        let codec = codec(&secret, ttl);
        let pair = Pair { to: &to, from: &from };
        let value = codec.encode(&data, pair, now).expect("small state fits");
        let later = now + elapsed.index(ttl as usize + 1) as u64;
        prop_assert_eq!(codec.decode(&value, pair, later), Ok(data.clone()));
        let header = format!("a=b; {NAME}={value}; c=d");
        prop_assert_eq!(codec.load([header.as_str()], pair, later), (data, Outcome::Resumed));
        prop_assert_eq!(codec.decode(&value, pair, now + ttl + 1), Err(Outcome::Expired));
    }

    #[test]
    fn cookie_values_stay_in_the_cookie_octet_set_and_hide_the_numbers(
        secret in secret(),
        data in session_data(),
        to in "\\+[1-9][0-9]{9,14}",
        from in "\\+[1-9][0-9]{9,14}",
    ) {
        let codec = codec(&secret, 14_400);
        let value = codec.encode(&data, Pair { to: &to, from: &from }, 1).expect("fits");
        prop_assert!(
            value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{}", value
        );
        prop_assert!(NAME.len() + 1 + value.len() <= MAX_COOKIE_BYTES);
        let payload = value.split('.').nth(1).expect("three parts");
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64");
        let decoded = String::from_utf8_lossy(&decoded);
        prop_assert!(!decoded.contains(&to) && !decoded.contains(&from), "{}", decoded);
    }

    #[test]
    fn any_mutation_of_a_cookie_value_is_rejected(
        secret in secret(),
        data in session_data(),
        (to, from) in (address(), address()),
        edit in edit(cookie_char()),
        truncate in any::<Index>(),
        use_truncation in any::<bool>(),
    ) {
        let codec = codec(&secret, 14_400);
        let pair = Pair { to: &to, from: &from };
        let value = codec.encode(&data, pair, 1_000).expect("fits");
        let mutated = if use_truncation {
            value[..truncate.index(value.len())].to_owned()
        } else {
            edit.apply(&value, 0)
        };
        prop_assert_ne!(&mutated, &value);
        let outcome = codec.decode(&mutated, pair, 1_000);
        prop_assert!(matches!(outcome, Err(Outcome::Rejected(_))), "{mutated}: {outcome:?}");
    }

    #[test]
    fn cookie_of_another_pair_or_secret_is_named_as_such(
        secret in secret(),
        other_secret in secret(),
        data in session_data(),
        (to, from, other_from) in (address(), address(), address()),
    ) {
        prop_assume!(from != other_from && secret != other_secret);
        let codec = codec(&secret, 14_400);
        let value = codec.encode(&data, Pair { to: &to, from: &from }, 1).expect("fits");
        let other_pair = Pair { to: &to, from: &other_from };
        prop_assert_eq!(
            codec.decode(&value, other_pair, 1),
            Err(Outcome::Rejected(Rejection::OtherPair))
        );
        let stranger = self::codec(&other_secret, 14_400);
        prop_assert_eq!(
            stranger.decode(&value, Pair { to: &to, from: &from }, 1),
            Err(Outcome::Rejected(Rejection::BadSignature))
        );
    }

    #[test]
    fn previous_secrets_verify_and_the_current_one_signs(
        old in secret(),
        new in secret(),
        data in session_data(),
        (to, from) in (address(), address()),
    ) {
        prop_assume!(old != new);
        let pair = Pair { to: &to, from: &from };
        let ttl = Duration::from_secs(14_400);
        let old_secret = SessionSecret::new(old.clone()).expect("long enough");
        let new_secret = SessionSecret::new(new.clone()).expect("long enough");
        let rotated = SessionCodec::new(NAME, ttl, &new_secret, &[old_secret]);
        let issued_before = codec(&old, 14_400).encode(&data, pair, 1).expect("fits");
        prop_assert_eq!(rotated.decode(&issued_before, pair, 1), Ok(data.clone()));
        let reissued = rotated.encode(&data, pair, 2).expect("fits");
        prop_assert_eq!(codec(&new, 14_400).decode(&reissued, pair, 2), Ok(data));
    }

    #[test]
    fn cookie_decoder_never_panics_on_any_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        headers in prop::collection::vec(text(80), 0..4),
        (to, from) in (text(12), text(12)),
        now in any::<u64>(),
    ) {
        let codec = codec(&[7; 32], 14_400);
        let pair = Pair { to: &to, from: &from };
        let value = String::from_utf8_lossy(&bytes);
        let _ = codec.decode(&value, pair, now);
        let _ = codec.decode(&format!("1.{value}"), pair, now);
        let mut all: Vec<String> = headers.clone();
        all.push(format!("{NAME}={value}"));
        all.push(format!("{NAME}=1.{value}; {NAME}"));
        let (data, outcome) = codec.load(all.iter().map(String::as_str), pair, now);
        prop_assert!(outcome != Outcome::Resumed && data.is_empty());
    }

    #[test]
    fn oversized_state_is_an_error_never_a_panic_or_truncation(
        secret in secret(),
        size in 0usize..6_000,
    ) {
        let codec = codec(&secret, 14_400);
        let mut data = SessionData::default();
        data.set("notes", "n".repeat(size));
        let pair = Pair { to: "+14155550100", from: "+14155550199" };
        match codec.encode(&data, pair, 1) {
            Ok(value) => prop_assert_eq!(codec.decode(&value, pair, 1), Ok(data)),
            Err(too_large) => prop_assert!(too_large.0 > MAX_COOKIE_BYTES),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TwiML
// ---------------------------------------------------------------------------------------------

/// Strings rich in what is hard for XML: markup, quotes, whitespace and forbidden characters.
fn xml_text() -> impl Strategy<Value = String> {
    let hard = prop::sample::select(vec![
        '&',
        '<',
        '>',
        '"',
        '\'',
        '\t',
        '\r',
        '\n',
        '\0',
        '\u{7}',
        '\u{1B}',
        '\u{7F}',
        '\u{85}',
        '\u{D7FF}',
        '\u{E000}',
        '\u{FFFD}',
        '\u{FFFE}',
        '\u{FFFF}',
        '\u{10FFFF}',
        ']',
        ';',
        '#',
    ]);
    let chars = prop_oneof![2 => any::<char>(), 2 => hard, 1 => proptest::char::range('a', 'e')];
    prop::collection::vec(chars, 0..24).prop_map(String::from_iter)
}

/// XML 1.0's `Char` production, written out here independently of the crate.
fn allowed_in_xml(c: char) -> bool {
    let c = u32::from(c);
    matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

fn xml_clean(text: &str) -> String {
    text.chars().filter(|&c| allowed_in_xml(c)).collect()
}

/// What a conforming XML 1.0 parser reports for text: `\r\n` and lone `\r` become `\n`.
fn eol_normalized(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// A document tree, for comparing what was built with what parses back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node {
    name: String,
    attributes: Vec<(String, String)>,
    /// Character data directly inside the element, as written (references resolved).
    text: String,
    /// The same, as a conforming XML 1.0 parser reports it (line ends normalised).
    text_normalized: String,
    children: Vec<Node>,
}

impl Node {
    fn new(name: &str, attributes: Vec<(String, String)>, text: &str) -> Self {
        let text = xml_clean(text);
        Self {
            name: name.into(),
            attributes,
            text_normalized: eol_normalized(&text),
            text,
            children: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
enum Verb {
    Message {
        text: String,
        attributes: Vec<(&'static str, String)>,
        method: Option<Method>,
        children: Vec<(bool, String)>,
    },
    Redirect(String, Option<Method>),
}

fn method() -> impl Strategy<Value = Option<Method>> {
    prop::option::of(prop_oneof![Just(Method::Get), Just(Method::Post)])
}

fn verb() -> impl Strategy<Value = Verb> {
    let names = prop::sample::subsequence(vec!["action", "from", "statusCallback", "to"], 0..=4);
    let attributes = names.prop_flat_map(|names| {
        let n = names.len();
        (Just(names), prop::collection::vec(xml_text(), n))
            .prop_map(|(names, values)| names.into_iter().zip(values).collect::<Vec<_>>())
    });
    let children = prop::collection::vec((any::<bool>(), xml_text()), 0..4);
    prop_oneof![
        3 => (xml_text(), attributes, method(), children).prop_map(
            |(text, attributes, method, children)| Verb::Message { text, attributes, method, children }
        ),
        1 => (xml_text(), method()).prop_map(|(url, method)| Verb::Redirect(url, method)),
    ]
}

fn method_name(method: Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Post => "POST".into(),
    }
}

/// Builds the response and the tree it must parse back to.
fn build(verbs: &[Verb]) -> (MessagingResponse, Node) {
    let mut response = MessagingResponse::new();
    let mut root = Node::new("Response", Vec::new(), "");
    for verb in verbs {
        root.children.push(match verb {
            Verb::Message {
                text,
                attributes,
                method,
                children,
            } => build_message(&mut response, text, attributes, *method, children),
            Verb::Redirect(url, method) => {
                response.redirect(url.clone(), *method);
                let attributes = method.map(|m| vec![("method".into(), method_name(m))]);
                Node::new("Redirect", attributes.unwrap_or_default(), url)
            }
        });
    }
    (response, root)
}

fn build_message(
    response: &mut MessagingResponse,
    text: &str,
    attributes: &[(&'static str, String)],
    method: Option<Method>,
    children: &[(bool, String)],
) -> Node {
    let message = response.push(Message::new(text));
    let mut expected: Vec<(String, String)> = Vec::new();
    for (name, value) in attributes {
        match *name {
            "action" => message.action(value.clone()),
            "from" => message.from(value.clone()),
            "statusCallback" => message.status_callback(value.clone()),
            _ => message.to(value.clone()),
        };
        expected.push(((*name).into(), xml_clean(value)));
    }
    if let Some(method) = method {
        message.method(method);
        expected.push(("method".into(), method_name(method)));
    }
    expected.sort();
    let mut node = Node::new("Message", expected, text);
    for (is_media, content) in children.iter().take(MAX_MEDIA) {
        if *is_media {
            message.media(content.clone()).expect("within the limit");
        } else {
            message.body(content.clone());
        }
        let name = if *is_media { "Media" } else { "Body" };
        node.children.push(Node::new(name, Vec::new(), content));
    }
    node
}

fn parse_attributes(start: &BytesStart<'_>) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        let name = attribute.key.as_ref().to_owned();
        let value = attribute
            .normalized_value(XmlVersion::Explicit1_0)
            .map_err(|e| e.to_string())?;
        out.push((name, value.into_owned()));
    }
    Ok(out)
}

fn open(start: &BytesStart<'_>) -> Result<Node, String> {
    let name = start.name().as_ref().to_owned();
    Ok(Node {
        name,
        attributes: parse_attributes(start)?,
        ..Node::default()
    })
}

/// Adds a finished element to its parent, or makes it the one root.
fn attach(stack: &mut [Node], root: &mut Option<Node>, node: Node) -> Result<(), String> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None if root.is_none() => *root = Some(node),
        None => return Err("a second root element".into()),
    }
    Ok(())
}

/// Parses a whole document strictly: one declaration, one root, only elements, text and the
/// five predefined or numeric references.
fn parse(xml: &str) -> Result<Node, String> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Node> = Vec::new();
    let mut root = None;
    loop {
        let event = reader.read_event().map_err(|e| e.to_string())?;
        match event {
            Event::Decl(_) if root.is_none() && stack.is_empty() => {}
            Event::Start(start) if root.is_none() => stack.push(open(&start)?),
            Event::Empty(start) => attach(&mut stack, &mut root, open(&start)?)?,
            Event::End(_) => {
                let node = stack.pop().ok_or("end without start")?;
                attach(&mut stack, &mut root, node)?;
            }
            Event::Text(text) => {
                let parent = stack.last_mut().ok_or("text outside the root")?;
                let raw = text.clone().into_inner();
                if raw.contains(['&', '<']) {
                    return Err(format!("unescaped markup character in {raw:?}"));
                }
                parent.text.push_str(&raw);
                parent.text_normalized.push_str(&text.xml10_content());
            }
            Event::GeneralRef(reference) => {
                let parent = stack.last_mut().ok_or("reference outside the root")?;
                let resolved = match reference.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => resolve_predefined_entity(&reference)
                        .ok_or_else(|| format!("unknown entity &{};", &*reference))?
                        .to_owned(),
                };
                parent.text.push_str(&resolved);
                parent.text_normalized.push_str(&resolved);
            }
            Event::Eof if stack.is_empty() => return root.ok_or_else(|| "no root".into()),
            other => return Err(format!("unexpected {other:?}")),
        }
    }
}

#[test]
fn the_strict_parser_refuses_what_is_not_well_formed() {
    let decl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
    for bad in [
        "<Response>a & b</Response>",
        "<Response>a < b</Response>",
        "<Response>&bogus;</Response>",
        "<Response><Message></Response>",
        "<Response /><Response />",
        "<Response><!-- c --></Response>",
    ] {
        assert!(parse(&format!("{decl}{bad}")).is_err(), "{bad}");
    }
    let good = parse(&format!(
        "{decl}<Response><Message to=\"a&#10;b\">x&amp;y</Message></Response>"
    ));
    let mut message = Node::new("Message", vec![("to".into(), "a\nb".into())], "x&y");
    message.text_normalized = "x&y".into();
    let mut root = Node::new("Response", Vec::new(), "");
    root.children.push(message);
    assert_eq!(good, Ok(root));
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn twiml_is_well_formed_and_parses_back_to_the_input_minus_illegal_characters(
        verbs in prop::collection::vec(verb(), 0..4),
    ) {
        let (response, expected) = build(&verbs);
        let xml = response.to_xml();
        prop_assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response"));
        prop_assert!(xml.chars().all(allowed_in_xml), "{:?}", xml);
        let parsed = parse(&xml);
        prop_assert_eq!(parsed, Ok(expected), "{:?}", xml);
    }
}

// ---------------------------------------------------------------------------------------------
// Parsers never panic
// ---------------------------------------------------------------------------------------------

/// Bytes that look like a Twilio form often enough to reach the interesting branches.
fn form_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..6),
        prop::sample::select(vec![
            "From",
            "To",
            "Body",
            "MessageSid",
            "SmsSid",
            "NumMedia",
            "NumSegments",
            "MediaUrl",
            "MediaContentType",
            "Latitude",
            "Forwarded",
            "FromCity",
            "ToZip",
            "MessageStatus",
            "=",
            "&",
            "+",
            "%",
            "%2",
            "%2B",
            "%ZZ",
            "%00",
            "%FF",
            "%F0%9F",
            "0",
            "9",
            "99",
            "100",
            "-1",
            "1e400",
            "NaN",
            "true",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

fn pairs(bytes: &[u8]) -> Params {
    form_urlencoded::parse(bytes).into_owned().collect()
}

/// Any header value the HTTP layer could hand us (it refuses control characters).
fn header_value() -> impl Strategy<Value = Option<HeaderValue>> {
    let pieces = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..12),
        prop::sample::select(vec![
            "https",
            "http",
            "wss",
            "gopher",
            "proto=",
            "host=",
            "for=",
            ";",
            ",",
            "\"",
            ":",
            "[::1]",
            "]",
            "+",
            "-",
            "@",
            "/",
            "?",
            "#",
            " ",
            "example.com",
            "443",
            "80",
            "99999",
            "/p/",
            "%2F",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ];
    prop::option::of(prop::collection::vec(pieces, 0..6))
        .prop_map(|pieces| pieces.and_then(|p| HeaderValue::from_bytes(&p.concat()).ok()))
}

const FORWARDING: [&str; 6] = [
    "host",
    "forwarded",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
];

/// Found by the `public_url` fuzz target: `u16::from_str` accepts a sign, so the rebuilt URL
/// was `https://h:+8443/sms`. A port that is not plain digits is now ignored.
#[test]
fn a_forwarded_port_with_a_sign_is_ignored() {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("h"));
    headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    headers.insert("x-forwarded-port", HeaderValue::from_static("+8443"));
    let uri: Uri = "/sms".parse().expect("valid");
    let url = UrlSource::new(None, true).rebuild(&uri, &headers);
    assert_eq!(url.as_deref(), Ok("https://h/sms"));
}

/// A host as the rebuild may emit it: no character that could end or restructure the authority.
fn authority_is_clean(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else { return false };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:[]".contains(c))
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn form_parser_never_panics_on_any_bytes(bytes in form_bytes()) {
        let pairs = pairs(&bytes);
        if let Ok(message) = InboundMessage::from_pairs(&pairs) {
            prop_assert!(!message.from.is_empty() && !message.to.is_empty());
            prop_assert!(message.media.len() <= 100);
        }
        let _ = StatusCallback::from_pairs(&pairs);
    }

    #[test]
    fn form_parser_never_panics_on_raw_random_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let pairs = pairs(&bytes);
        let _ = InboundMessage::from_pairs(&pairs);
        let _ = StatusCallback::from_pairs(&pairs);
    }

    #[test]
    fn public_url_rebuild_never_panics_and_never_lets_headers_restructure_the_authority(
        path in "/[!-~]{0,30}",
        values in prop::collection::vec(header_value(), FORWARDING.len()),
        base in text(30),
    ) {
        let Ok(uri) = path.parse::<Uri>() else { return Ok(()) };
        let mut headers = HeaderMap::new();
        for (name, value) in FORWARDING.iter().zip(values) {
            if let Some(value) = value {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str()).to_owned();
        for source in [UrlSource::new(None, true), UrlSource::new(None, false)] {
            if let Ok(url) = source.rebuild(&uri, &headers) {
                prop_assert!(authority_is_clean(&url), "{}", url);
                prop_assert!(url.ends_with(&path_and_query), "{}", url);
            }
        }
        if let Ok(base) = PublicUrl::parse(&base) {
            let url = UrlSource::new(Some(base.clone()), true).rebuild(&uri, &headers);
            prop_assert_eq!(url, Ok(format!("{}{path_and_query}", base.as_str())));
        }
    }
}
