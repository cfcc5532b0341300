//! Every case of `tests/data/signature_vectors.json` (produced by Twilio's official SDKs) must
//! get the answer in its `expect_valid` field.

mod common;

use common::vectors::{SignatureCase, signature_cases as cases};
use sms_sessions::twilio::signature::{AuthToken, Payload, verify};

fn check(case: &SignatureCase) -> bool {
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
    for case in cases().iter().filter(|c| c.is_valid_form()) {
        let token = AuthToken::new(&case.auth_token).expect("non-empty");
        let params = case.params.clone().unwrap_or_default();
        assert_eq!(
            token.sign(case.signed_url(), &params),
            case.signature,
            "{}",
            case.name
        );
        reproduced += 1;
    }
    assert_eq!(reproduced, 58);
}
