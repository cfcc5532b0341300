//! `X-Sms-Sessions-Signature`: `t=<unix seconds>,v1=<lowercase hex HMAC-SHA256>` over
//! `<t>.<METHOD>.<path and query>.<body>`, keyed with the endpoint's secret. Pure functions:
//! the client signs with [`signature`], a service (the example clinic, the tests) checks with
//! [`verify`].

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const HEADER: &str = "x-sms-sessions-signature";

/// How far a signature's time may be from the verifier's clock by default, either way.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("the signature header is not t=<seconds>,v1=<hex>")]
    Malformed,
    #[error("the signature's time is outside the tolerance")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

/// The header value for a request: `t=<t>,v1=<hex>`. `path_and_query` is the request target
/// exactly as sent (`/sms-hooks/slots?date=2026-03-10`), `body` the exact body bytes (empty
/// for none).
pub fn signature(secret: &[u8], t: u64, method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mac = keyed(secret, t, method, path_and_query, body);
    let digest = mac.finalize().into_bytes();
    let mut value = format!("t={t},v1=");
    for byte in digest {
        value.push(char::from(HEX[usize::from(byte >> 4)]));
        value.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    value
}

/// Checks a `t=…,v1=…` header against the request: `now` and `t` at most `tolerance` seconds
/// apart, and one of its `v1` values the HMAC (compared in constant time). Unknown parts
/// (a future `v2=`) are ignored.
pub fn verify(
    secret: &[u8],
    header: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now: u64,
    tolerance: u64,
) -> Result<(), Invalid> {
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = Some(value.parse::<u64>().map_err(|_| Invalid::Malformed)?),
            Some(("v1", value)) => candidates.push(decode_hex(value).ok_or(Invalid::Malformed)?),
            Some(_) => {}
            None => return Err(Invalid::Malformed),
        }
    }
    let t = t.ok_or(Invalid::Malformed)?;
    if candidates.is_empty() {
        return Err(Invalid::Malformed);
    }
    if now.abs_diff(t) > tolerance {
        return Err(Invalid::Stale);
    }
    let mac = keyed(secret, t, method, path_and_query, body);
    let matched = candidates
        .iter()
        .any(|candidate| mac.clone().verify_slice(candidate).is_ok());
    if matched {
        Ok(())
    } else {
        Err(Invalid::Mismatch)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The HMAC over `<t>.<METHOD>.<path and query>.<body>`, not yet finalised.
fn keyed(secret: &[u8], t: u64, method: &str, path_and_query: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(method.as_bytes());
    mac.update(b".");
    mac.update(path_and_query.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"clinic-secret-0123456789";

    #[test]
    fn the_signature_is_hmac_sha256_over_time_method_target_and_body() {
        let value = signature(
            SECRET,
            1_773_000_000,
            "POST",
            "/sms-hooks/book?x=1",
            b"{\"a\":1}",
        );
        let expected = {
            let mut mac = HmacSha256::new_from_slice(SECRET).expect("key");
            mac.update(b"1773000000.POST./sms-hooks/book?x=1.{\"a\":1}");
            let digest = mac.finalize().into_bytes();
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("t=1773000000,v1={hex}")
        };
        assert_eq!(value, expected);
        assert_eq!(value.len(), "t=1773000000,v1=".len() + 64);
    }

    #[test]
    fn known_vectors_match_pythons_hmac() {
        // python3: hmac.new(key, b"1700000000.GET./slots?date=2026-03-10.", hashlib.sha256)
        let key = b"0123456789abcdef";
        assert_eq!(
            signature(key, 1_700_000_000, "GET", "/slots?date=2026-03-10", b""),
            "t=1700000000,v1=35dcd91db901b857e51fd9894a43b0bd7ab9a13b02caf75307433a88cfca495f"
        );
        assert_eq!(
            signature(
                key,
                1_700_000_000,
                "POST",
                "/sms-hooks/book",
                b"{\"slot\":\"s9\"}"
            ),
            "t=1700000000,v1=a44c3d3a8e98979b2065af9384d1914dfc0e0bce39795b819ba5aa14a0eddb9f"
        );
    }

    #[test]
    fn verify_accepts_its_own_and_refuses_any_change() {
        let t = 1_773_000_000;
        let header = signature(SECRET, t, "GET", "/slots?date=2026-03-10", b"");
        let check = |secret: &[u8], method, target, body: &[u8], now| {
            verify(
                secret,
                &header,
                method,
                target,
                body,
                now,
                DEFAULT_TOLERANCE_SECS,
            )
        };
        assert_eq!(
            check(SECRET, "GET", "/slots?date=2026-03-10", b"", t + 10),
            Ok(())
        );
        assert_eq!(
            check(SECRET, "GET", "/slots?date=2026-03-10", b"", t - 300),
            Ok(())
        );
        assert_eq!(
            check(
                b"another-secret-000000",
                "GET",
                "/slots?date=2026-03-10",
                b"",
                t
            ),
            Err(Invalid::Mismatch)
        );
        assert_eq!(
            check(SECRET, "POST", "/slots?date=2026-03-10", b"", t),
            Err(Invalid::Mismatch)
        );
        assert_eq!(
            check(SECRET, "GET", "/slots?date=2026-03-11", b"", t),
            Err(Invalid::Mismatch)
        );
        assert_eq!(
            check(SECRET, "GET", "/slots?date=2026-03-10", b"x", t),
            Err(Invalid::Mismatch)
        );
        assert_eq!(
            check(SECRET, "GET", "/slots?date=2026-03-10", b"", t + 301),
            Err(Invalid::Stale)
        );
    }

    #[test]
    fn verify_refuses_malformed_headers_and_takes_any_v1() {
        let t = 1_773_000_000;
        let good = signature(SECRET, t, "GET", "/", b"");
        let v1 = &good[good.find("v1=").expect("v1")..];
        let rotated = format!("t={t},v1={},{v1},v2=whatever", "00".repeat(32));
        assert_eq!(verify(SECRET, &rotated, "GET", "/", b"", t, 0), Ok(()));
        for bad in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=0g",
            "t=1,v1=abc",
            "t=1;v1=00",
        ] {
            assert_eq!(
                verify(SECRET, bad, "GET", "/", b"", 1, 0),
                Err(Invalid::Malformed),
                "{bad:?}"
            );
        }
    }
}
