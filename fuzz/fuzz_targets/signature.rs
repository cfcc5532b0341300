//! Signature verification on arbitrary URLs and headers: the port-variant rewriting slices
//! the URL by byte offsets, so it is fuzzed with any string.
//!
//! Checks: no panic; what `sign` produces for a URL and pairs always verifies.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sms_sessions::twilio::signature::{AuthToken, Payload, url_variants, verify};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    url: &'a str,
    header: &'a str,
    body: &'a [u8],
    pairs: Vec<(&'a str, &'a str)>,
}

fuzz_target!(|input: Input<'_>| {
    let token = AuthToken::new("fuzz-token").expect("non-empty");
    let tokens = [token.clone()];
    let variants = url_variants(input.url);
    assert_eq!(variants[0], input.url);
    assert!(variants.len() <= 2);
    let _ = verify(
        &tokens,
        input.url,
        Payload::Form(&input.pairs),
        input.header,
    );
    let _ = verify::<&str, &str>(&tokens, input.url, Payload::Body(input.body), input.header);
    let signature = token.sign(input.url, &input.pairs);
    assert_eq!(
        verify(&tokens, input.url, Payload::Form(&input.pairs), &signature),
        Ok(())
    );
});
