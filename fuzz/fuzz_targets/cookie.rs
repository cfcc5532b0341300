//! The session cookie decoder, three ways, chosen by the first input byte:
//!
//! - `0`: the rest, as a `Cookie` header, goes through `load` and `decode` as an attacker
//!   would send it: it must never panic and never resume a session (that would be a forgery);
//! - `1`: the rest becomes the payload of a correctly signed cookie (the documented format
//!   `1.<base64url payload>.<base64url HMAC-SHA256(name "." payload)>`), so the code behind
//!   the MAC check is reached too: it must never panic;
//! - otherwise: the rest, as form pairs, is session state: encode → decode must give it back
//!   (or encode must say it is too large).
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use sms_sessions::session::{Outcome, Pair, SessionCodec, SessionData, SessionSecret};

const NAME: &str = "sms_session";
const SECRET: &[u8] = b"fuzz-session-secret-0123456789abcdef";
const NOW: u64 = 1_800_000_000;
const PAIR: Pair<'static> = Pair {
    to: "+14155550100",
    from: "+14155550199",
};

static CODEC: LazyLock<SessionCodec> = LazyLock::new(|| {
    let secret = SessionSecret::new(SECRET).expect("long enough");
    SessionCodec::new(NAME, Duration::from_secs(4 * 3600), &secret, &[])
});

fn hostile(header: &str) {
    let _ = CODEC.decode(header, PAIR, NOW);
    let (data, outcome) = CODEC.load([header], PAIR, NOW);
    assert_ne!(
        outcome,
        Outcome::Resumed,
        "forged cookie accepted: {header:?}"
    );
    assert!(data.is_empty());
}

fn signed_payload(payload: &[u8]) {
    let payload = URL_SAFE_NO_PAD.encode(payload);
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
    mac.update(NAME.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    let mac = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    let _ = CODEC.decode(&format!("1.{payload}.{mac}"), PAIR, NOW);
}

fn round_trip(form: &[u8]) {
    let mut data = SessionData::default();
    for (key, value) in form_urlencoded::parse(form) {
        data.set(key, value);
    }
    if let Ok(value) = CODEC.encode(&data, PAIR, NOW) {
        assert_eq!(CODEC.decode(&value, PAIR, NOW), Ok(data));
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    match mode {
        0 => hostile(&String::from_utf8_lossy(rest)),
        1 => signed_payload(rest),
        _ => round_trip(rest),
    }
});
