//! Every case of `tests/data/signature_vectors.json` (produced by Twilio's official SDKs) must
//! get the answer in its `expect_valid` field.

use serde::Deserialize;
use sms_sessions::twilio::signature::{AuthToken, Payload, verify};

#[derive(Deserialize)]
struct Case {
    name: String,
    auth_token: String,
    url: String,
    params: Option<Vec<(String, String)>>,
    body: Option<String>,
    signature: String,
    expect_valid: bool,
    signed_url: Option<String>,
}

fn cases() -> Vec<Case> {
    let text = include_str!("data/signature_vectors.json");
    serde_json::from_str(text).expect("vectors parse")
}

fn check(case: &Case) -> bool {
    let token = AuthToken::new(&case.auth_token).expect("vector tokens are non-empty");
    let payload = match (&case.body, &case.params) {
        (Some(body), _) => Payload::Body(body.as_bytes()),
        (None, Some(params)) => Payload::Form(params.as_slice()),
        (None, None) => Payload::Form(&[]),
    };
    verify(&[token], &case.url, payload, &case.signature).is_ok()
}

#[test]
fn every_sdk_vector_gets_the_expected_answer() {
    let cases = cases();
    assert_eq!(cases.len(), 100, "the vector file holds 100 cases");
    let wrong: Vec<&str> = cases
        .iter()
        .filter(|case| check(case) != case.expect_valid)
        .map(|case| case.name.as_str())
        .collect();
    assert!(wrong.is_empty(), "wrong answer for: {wrong:?}");
}

#[test]
fn sign_reproduces_every_valid_form_vector_over_its_signed_url() {
    let mut reproduced = 0;
    for case in cases()
        .iter()
        .filter(|c| c.expect_valid && c.body.is_none())
    {
        let token = AuthToken::new(&case.auth_token).expect("non-empty");
        let params = case.params.clone().unwrap_or_default();
        let url = case.signed_url.as_deref().unwrap_or(&case.url);
        assert_eq!(token.sign(url, &params), case.signature, "{}", case.name);
        reproduced += 1;
    }
    assert_eq!(reproduced, 58);
}
