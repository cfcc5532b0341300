//! The webhook form parser: any body bytes → `FormPairs` (the gate's decoder) → `InboundMessage`
//! and `StatusCallback`, then the signature's canonical string over those pairs.
//!
//! Checks: no panic; the gate's decoder agrees with `form_urlencoded::parse`; a parsed message
//! always has From and To and at most 100 media; the signature does not depend on the order the
//! pairs arrived in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sms_sessions::twilio::form::FormPairs;
use sms_sessions::twilio::inbound::{InboundMessage, StatusCallback};
use sms_sessions::twilio::signature::{AuthToken, Payload, verify};

const URL: &str = "https://sms.example.com/sms";

fuzz_target!(|body: &[u8]| {
    let decoded = FormPairs::parse(body);
    let pairs: Vec<(String, String)> = decoded
        .iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let reference: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    assert_eq!(pairs, reference);
    if let Ok(message) = InboundMessage::from_pairs(&pairs) {
        assert!(!message.from.is_empty() && !message.to.is_empty());
        assert!(message.media.len() <= 100);
    }
    if let Ok(status) = StatusCallback::from_pairs(&pairs) {
        assert!(!status.message_sid.is_empty() && !status.message_status.is_empty());
    }
    let token = AuthToken::new("fuzz-token").expect("non-empty");
    let signature = token.sign(URL, &pairs);
    let mut reversed = pairs;
    reversed.reverse();
    assert_eq!(
        verify(&[token], URL, Payload::Form(&reversed), &signature),
        Ok(())
    );
});
