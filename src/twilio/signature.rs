//! Twilio's request signature (`X-Twilio-Signature`), as a pure function of bytes.
//!
//! The rule, matched against Twilio's own SDKs in `tests/data/signature_vectors.json`:
//!
//! 1. Start from the URL Twilio requested, byte for byte (query not re-ordered or re-encoded).
//! 2. For a form post, append every parameter as `key` + `value` (decoded, no separators), keys
//!    in code-point order and, for a repeated key, each distinct value in sorted order.
//! 3. HMAC-SHA1 with the auth token, standard base64.
//!
//! Validation also accepts the URL with its port removed, or (when it has none) with the
//! scheme's default port added, because Twilio's SDKs do. JSON bodies sign the URL alone and
//! carry `bodySHA256` (lowercase hex SHA-256 of the raw body) in its query.
//!
//! This module is used by the server's webhook layer and by the client tools (`sign`, `send`),
//! so there is exactly one implementation of the algorithm.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha1 = Hmac<Sha1>;

/// A Twilio auth token, with its HMAC key schedule prepared once.
///
/// `Debug` never shows the token.
#[derive(Clone)]
pub struct AuthToken {
    mac: HmacSha1,
}

impl AuthToken {
    /// Wraps a token; empty tokens are refused because they sign nothing.
    pub fn new(token: &str) -> Result<Self, EmptyToken> {
        if token.is_empty() {
            return Err(EmptyToken);
        }
        let mac = HmacSha1::new_from_slice(token.as_bytes()).map_err(|_| EmptyToken)?;
        Ok(Self { mac })
    }

    /// The raw 20-byte HMAC-SHA1 of `url` followed by the canonical parameter string.
    pub fn digest<K, V>(&self, url: &str, params: &[(K, V)]) -> [u8; 20]
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut mac = self.mac.clone();
        mac.update(url.as_bytes());
        for_each_canonical(params, |chunk| mac.update(chunk.as_bytes()));
        mac.finalize().into_bytes().into()
    }

    /// The `X-Twilio-Signature` value for a request to `url` with these form parameters.
    pub fn sign<K, V>(&self, url: &str, params: &[(K, V)]) -> String
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        STANDARD.encode(self.digest(url, params))
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

/// The error for an empty auth token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the auth token is empty")]
pub struct EmptyToken;

/// What was signed besides the URL.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a, K, V> {
    /// Decoded form parameters (POST `application/x-www-form-urlencoded`). Use an empty slice
    /// for GET requests, whose parameters are in the URL.
    Form(&'a [(K, V)]),
    /// A raw body (JSON): the URL must carry `bodySHA256` for it.
    Body(&'a [u8]),
}

/// Why a request failed validation; the one-line text is safe to send to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// The header was not valid base64 of 20 bytes, so it cannot be any token's signature.
    #[error("malformed X-Twilio-Signature")]
    Malformed,
    /// A raw body was signed, but the URL has no `bodySHA256` parameter.
    #[error("body sent without bodySHA256 in the URL")]
    MissingBodyHash,
    /// `bodySHA256` does not match the body.
    #[error("bodySHA256 does not match the body")]
    BodyHashMismatch,
    /// No token and no URL variant produced this signature.
    #[error("signature does not match")]
    Mismatch,
}

/// Checks `signature` against every token and every URL variant, in constant time per compare.
pub fn verify<K, V>(
    tokens: &[AuthToken],
    url: &str,
    payload: Payload<'_, K, V>,
    signature: &str,
) -> Result<(), Invalid>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let expected = decode_signature(signature).ok_or(Invalid::Malformed)?;
    let params: &[(K, V)] = match payload {
        Payload::Form(params) => params,
        Payload::Body(body) => {
            check_body_hash(url, body)?;
            &[]
        }
    };
    let matches = |candidate: &str| {
        tokens.iter().fold(false, |found, token| {
            found | bool::from(token.digest(candidate, params).ct_eq(&expected))
        })
    };
    // The port variants are only built when the URL as given does not match.
    let matched = matches(url) || url_variants(url).iter().skip(1).any(|v| matches(v));
    if matched {
        Ok(())
    } else {
        Err(Invalid::Mismatch)
    }
}

fn decode_signature(signature: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    match STANDARD.decode_slice(signature.trim().as_bytes(), &mut out) {
        Ok(20) => Some(out),
        _ => None,
    }
}

fn check_body_hash(url: &str, body: &[u8]) -> Result<(), Invalid> {
    let claimed = query_param(url, "bodySHA256").ok_or(Invalid::MissingBodyHash)?;
    let actual = hex_lower(&Sha256::digest(body));
    if bool::from(claimed.as_bytes().ct_eq(actual.as_bytes())) {
        Ok(())
    } else {
        Err(Invalid::BodyHashMismatch)
    }
}

/// The first value of `name` in the URL's query, percent-decoded.
pub fn query_param<'a>(url: &'a str, name: &str) -> Option<Cow<'a, str>> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

/// Feeds the canonical parameter string to `sink` in pieces: sorted keys, and for each key its
/// distinct values in sorted order.
fn for_each_canonical<K, V>(params: &[(K, V)], mut sink: impl FnMut(&str))
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    // Sorted by the keys' first eight bytes as one number before the keys themselves: a
    // webhook's 20 to 40 keys mostly differ there, so one integer compare settles most
    // comparisons instead of a string compare (`cargo bench -- signature/verify/sms`: 0.73 →
    // 0.61 µs).
    let mut sorted: Vec<(u64, &str, &str)> = params
        .iter()
        .map(|(k, v)| (leading_bytes(k.as_ref()), k.as_ref(), v.as_ref()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    for (_, key, value) in sorted {
        sink(key);
        sink(value);
    }
}

/// The first eight bytes of `text` as a big-endian number, zero-padded: when two texts' numbers
/// differ, they order the texts as the texts order themselves.
fn leading_bytes(text: &str) -> u64 {
    let mut bytes = [0; 8];
    let length = text.len().min(8);
    bytes[..length].copy_from_slice(&text.as_bytes()[..length]);
    u64::from_be_bytes(bytes)
}

/// The URL as given, then without its port, or with the scheme's default port added.
pub fn url_variants(url: &str) -> Vec<Cow<'_, str>> {
    let mut variants = vec![Cow::Borrowed(url)];
    let Some(parts) = Authority::find(url) else {
        return variants;
    };
    match parts.port {
        Some(port) => variants.push(Cow::Owned(format!(
            "{}{}",
            &url[..port.start - 1],
            &url[port.end..]
        ))),
        None => {
            if let Some(default) = default_port(&url[..parts.scheme_end]) {
                let at = parts.host_end;
                variants.push(Cow::Owned(format!(
                    "{}:{default}{}",
                    &url[..at],
                    &url[at..]
                )));
            }
        }
    }
    variants
}

fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("https") {
        Some(443)
    } else if scheme.eq_ignore_ascii_case("http") {
        Some(80)
    } else {
        None
    }
}

/// Byte offsets of the parts of `scheme://[userinfo@]host[:port]` that the port rule needs.
struct Authority {
    scheme_end: usize,
    host_end: usize,
    /// The digits after the `:`, when present (possibly empty).
    port: Option<std::ops::Range<usize>>,
}

impl Authority {
    fn find(url: &str) -> Option<Self> {
        let scheme_end = url.find("://")?;
        let start = scheme_end + 3;
        let end = url[start..]
            .find(['/', '?', '#'])
            .map_or(url.len(), |i| start + i);
        let authority = &url[start..end];
        let host_start = authority.rfind('@').map_or(start, |i| start + i + 1);
        let host = &url[host_start..end];
        // An IPv6 literal's colons are inside the brackets; the port follows `]`.
        let search_from = host.find(']').map_or(0, |i| i + 1);
        let host_end = host[search_from..]
            .find(':')
            .map_or(end, |i| host_start + search_from + i);
        let port = (host_end < end).then(|| host_end + 1..end);
        Some(Self {
            scheme_end,
            host_end,
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> AuthToken {
        AuthToken::new("12345").expect("non-empty")
    }

    const PARAMS: [(&str, &str); 5] = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ];

    #[test]
    fn signs_the_canonical_twilio_example() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(token().sign(url, &PARAMS), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    }

    #[test]
    fn port_variants_strip_any_port_and_add_only_the_default() {
        let strip: Vec<_> = url_variants("https://u:p@h.com:8443/x?y=1")
            .into_iter()
            .collect();
        assert_eq!(strip[1], "https://u:p@h.com/x?y=1");
        let add: Vec<_> = url_variants("http://h.com?q").into_iter().collect();
        assert_eq!(add[1], "http://h.com:80?q");
        let v6: Vec<_> = url_variants("https://[2001:db8::1]:8443/hook")
            .into_iter()
            .collect();
        assert_eq!(v6[1], "https://[2001:db8::1]/hook");
        let v6_add: Vec<_> = url_variants("https://[::1]/hook").into_iter().collect();
        assert_eq!(v6_add[1], "https://[::1]:443/hook");
    }

    #[test]
    fn no_scheme_means_no_variants() {
        assert_eq!(url_variants("example.com/sms").len(), 1);
        assert_eq!(url_variants("ftp://example.com/sms").len(), 1);
    }

    #[test]
    fn malformed_header_is_reported_as_such() {
        let url = "https://example.com/sms";
        let result = verify(&[token()], url, Payload::Form(&PARAMS), "not base64!");
        assert_eq!(result, Err(Invalid::Malformed));
    }

    #[test]
    fn second_token_is_accepted() {
        let url = "https://example.com/sms";
        let signature = token().sign(url, &PARAMS);
        let other = AuthToken::new("other").expect("non-empty");
        let tokens = [other, token()];
        assert_eq!(
            verify(&tokens, url, Payload::Form(&PARAMS), &signature),
            Ok(())
        );
    }

    #[test]
    fn empty_token_is_refused() {
        assert_eq!(AuthToken::new("").err(), Some(EmptyToken));
    }

    #[test]
    fn debug_redacts_the_token() {
        assert_eq!(format!("{:?}", token()), "AuthToken(<redacted>)");
    }

    fn canonical_pieces(params: &[(&str, &str)]) -> Vec<String> {
        let mut pieces = Vec::new();
        for_each_canonical(params, |piece| pieces.push(piece.to_owned()));
        pieces
    }

    #[test]
    fn keys_that_share_their_first_eight_bytes_are_still_sorted() {
        let params = [
            ("MediaUrl10", "k"),
            ("MediaUrl1", "b"),
            ("MediaUrl1", "a"),
            ("MediaUrl", "x"),
            ("Media\0", "z"),
            ("Media", "y"),
            ("MediaUrl1", "a"),
        ];
        assert_eq!(
            canonical_pieces(&params),
            [
                "Media",
                "y",
                "Media\0",
                "z",
                "MediaUrl",
                "x",
                "MediaUrl1",
                "a",
                "MediaUrl1",
                "b",
                "MediaUrl10",
                "k"
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn leading_bytes_never_contradict_the_order_of_texts(a in ".{0,12}", b in ".{0,12}") {
            if leading_bytes(&a) != leading_bytes(&b) {
                proptest::prop_assert_eq!(leading_bytes(&a).cmp(&leading_bytes(&b)), a.cmp(&b));
            }
        }

        #[test]
        fn canonical_order_is_the_order_of_keys_then_values(
            params in proptest::collection::vec(("(Media|Url|\\PC){0,3}", "[ab]{0,2}"), 0..12)
        ) {
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let mut expected = params.clone();
            expected.sort();
            expected.dedup();
            let expected: Vec<String> = expected.iter().flat_map(|(k, v)| [k.to_string(), v.to_string()]).collect();
            proptest::prop_assert_eq!(canonical_pieces(&params), expected);
        }
    }
}
