//! Conversation state in a signed cookie, one per (To, From) pair.
//!
//! Twilio keeps one cookie jar per (To, From) pair and drops it after 4 hours of inactivity,
//! but the server never relies on that: the signed value carries the time of the last message
//! and the pair it belongs to, and [`SessionCodec::load`] refuses anything it did not issue
//! for this pair within the TTL.
//!
//! Wire format of the cookie value (every character is in the cookie octet set):
//!
//! ```text
//! 1.<payload>.<mac>          payload = base64url("<last-seen unix secs>|<pair tag>|<data>")
//!                            mac     = base64url(HMAC-SHA256(key, "<cookie name>." + payload))
//! ```
//!
//! The pair tag is a keyed hash of To and From, so the cookie binds to the pair without
//! carrying phone numbers in the clear; `data` is the flow's key/value state, form-encoded.
//! Old secrets listed in `session.previous_secrets` still verify; new cookies always use the
//! current secret.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::{DecodeSliceError, Engine as _};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The format version this build writes and reads.
const VERSION: &str = "1";

/// Browsers and Twilio cap a cookie (name, value and attributes) at 4096 bytes; leave room for
/// the attributes.
pub const MAX_COOKIE_BYTES: usize = 3800;

/// Secrets shorter than this are refused: the MAC is only as strong as its key.
pub const MIN_SECRET_BYTES: usize = 32;

/// The flow's state: a small ordered map of strings, wherever it is stored.
///
/// Flows read and write it without knowing whether it travels in a cookie or lives in a
/// server-side store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionData {
    entries: BTreeMap<String, String>,
}

impl SessionData {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// Parses a value, treating an unparsable one as absent.
    pub fn get_parsed<T: std::str::FromStr>(&self, key: &str) -> Option<T> {
        self.get(key)?.parse().ok()
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl ToString) {
        self.entries.insert(key.into(), value.to_string());
    }

    /// [`set`](Self::set), reusing the entry's allocations when `key` is there already.
    pub fn put(&mut self, key: &str, value: impl fmt::Display) {
        use fmt::Write as _;
        match self.entries.get_mut(key) {
            Some(slot) => {
                slot.clear();
                let _ = write!(slot, "{value}");
            }
            None => {
                self.entries.insert(key.to_owned(), value.to_string());
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.entries.remove(key)
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether this state fits in a session cookie called `cookie_name` (at most
    /// [`MAX_COOKIE_BYTES`]): what a flow checks before it keeps more, so an overflow is a
    /// reply to the texter rather than a failed save.
    pub fn fits_a_cookie(&self, cookie_name: &str) -> bool {
        let size = |entries: usize| {
            // As `encode_tagged` lays it out: a 10-digit time, `|`, the 16-byte tag, `|`, the
            // entries; base64 without padding; then `.` and the 43 characters of the MAC.
            let payload = 10 + 1 + 16 + 1 + entries;
            cookie_name.len() + 1 + VERSION.len() + 1 + (payload * 4).div_ceil(3) + 1 + 43
        };
        // Form-encoding makes a byte at most three: when even that fits, no need to count.
        let raw: usize = self
            .entries
            .iter()
            .map(|(k, v)| k.len() + 1 + v.len() + 1)
            .sum();
        if size(3 * raw) <= MAX_COOKIE_BYTES {
            return true;
        }
        size(self.encoded_len()) <= MAX_COOKIE_BYTES
    }

    /// The entries, form-encoded: how a server-side store keeps them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = String::new();
        self.encode_into(&mut text);
        text.into_bytes()
    }

    /// Reads [`to_bytes`](Self::to_bytes)' output; `None` when it is not UTF-8.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        std::str::from_utf8(bytes).ok().map(Self::decode)
    }

    /// The size of [`to_bytes`](Self::to_bytes)' output, counted without writing it.
    pub fn encoded_len(&self) -> usize {
        let encoded_len = |text: &str| -> usize {
            form_urlencoded::byte_serialize(text.as_bytes())
                .map(str::len)
                .sum()
        };
        self.entries
            .iter()
            .map(|(key, value)| encoded_len(key) + 1 + encoded_len(value))
            .sum::<usize>()
            + self.entries.len().saturating_sub(1)
    }

    /// Appends the entries, form-encoded.
    fn encode_into(&self, out: &mut String) {
        let start = out.len();
        form_urlencoded::Serializer::for_suffix(out, start).extend_pairs(&self.entries);
    }

    fn decode(text: &str) -> Self {
        let entries = form_urlencoded::parse(text.as_bytes())
            .into_owned()
            .collect();
        Self { entries }
    }
}

/// A conversation's state between [`SessionCodec::open`] and [`SessionCodec::save`].
#[derive(Debug)]
pub struct Session {
    pub data: SessionData,
    pub outcome: Outcome,
    /// The pair's tag under the current secret.
    tag: [u8; 16],
    /// How many of the request's cookies verified for the pair within the TTL.
    valid_cookies: usize,
}

impl Session {
    fn new(data: SessionData, outcome: Outcome, tag: [u8; 16], valid_cookies: usize) -> Self {
        Self {
            data,
            outcome,
            tag,
            valid_cookies,
        }
    }

    /// How many valid cookies for the pair the request carried; with more than one, the state
    /// is that of the one with the latest last message.
    pub fn valid_cookies(&self) -> usize {
        self.valid_cookies
    }
}

/// The (To, From) pair a conversation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair<'a> {
    pub to: &'a str,
    pub from: &'a str,
}

/// A cookie-signing secret of at least [`MIN_SECRET_BYTES`]; `Debug` redacts it.
#[derive(Clone)]
pub struct SessionSecret(Vec<u8>);

impl SessionSecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, ShortSecret> {
        let secret = secret.into();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ShortSecret(secret.len()));
        }
        Ok(Self(secret))
    }

    /// The secret's bytes, for keying other MACs (the store's conversation keys).
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }

    /// A random secret for this process only: cookies die with the process.
    pub fn random() -> Self {
        Self(rand::random::<[u8; 32]>().to_vec())
    }
}

impl fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSecret(<redacted>)")
    }
}

/// The error for a secret below [`MIN_SECRET_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("is {0} bytes; at least {MIN_SECRET_BYTES} are required")]
pub struct ShortSecret(pub usize);

/// How the request's session was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No cookie: a new conversation.
    New,
    /// A valid cookie: the conversation goes on.
    Resumed,
    /// A valid cookie whose last message is older than the TTL.
    Expired,
    /// A cookie that this server did not issue for this pair.
    Rejected(Rejection),
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Resumed => "resumed",
            Self::Expired => "expired",
            Self::Rejected(_) => "rejected",
        }
    }
}

/// Why a cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed cookie value")]
    Malformed,
    #[error("unknown cookie format version")]
    UnknownVersion,
    #[error("bad signature (tampered, unsigned or signed with an unknown secret)")]
    BadSignature,
    #[error("cookie belongs to another (To, From) pair")]
    OtherPair,
}

/// The state does not fit in a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("session state needs a {0}-byte cookie; the limit is {MAX_COOKIE_BYTES}")]
pub struct TooLarge(pub usize);

/// Encodes and decodes session cookies.
#[derive(Clone)]
pub struct SessionCodec {
    name: String,
    ttl: Duration,
    /// The current key first, then previous ones (verification only).
    keys: Vec<HmacSha256>,
}

impl fmt::Debug for SessionCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCodec")
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl SessionCodec {
    pub fn new(
        name: impl Into<String>,
        ttl: Duration,
        current: &SessionSecret,
        previous: &[SessionSecret],
    ) -> Self {
        let keys = std::iter::once(current)
            .chain(previous)
            .map(|secret| {
                HmacSha256::new_from_slice(&secret.0).expect("HMAC takes keys of any length")
            })
            .collect();
        Self {
            name: name.into(),
            ttl,
            keys,
        }
    }

    pub fn cookie_name(&self) -> &str {
        &self.name
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Finds this pair's session among the request's `Cookie` header values.
    ///
    /// Of the cookies of our name that verify, the one with the latest last message wins (the
    /// first listed of equals): a client may hold a stale one too, say under a longer `Path`,
    /// which it lists first. With none, the first one's failure is the outcome, and the
    /// session starts empty.
    pub fn load<'h>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'h str>,
        pair: Pair<'_>,
        now: u64,
    ) -> (SessionData, Outcome) {
        let session = self.open(cookie_headers, pair, now);
        (session.data, session.outcome)
    }

    /// [`load`](Self::load) for a webhook that will [`save`](Self::save) the session again:
    /// the pair's tag under the current secret, which both need, is worked out once.
    ///
    /// Only the winner's state is decoded; [`Session::valid_cookies`] says how many were valid
    /// (the `/sms` handler logs it when more than one was).
    pub fn open<'h>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'h str>,
        pair: Pair<'_>,
        now: u64,
    ) -> Session {
        let tag = pair_tag(&self.keys[0], pair);
        let (mut newest, mut valid) = (None::<Verified>, 0);
        let mut first_failure = None;
        for value in cookie_values(cookie_headers, &self.name) {
            match self.verify(value, pair, &tag, now) {
                Ok(cookie) => {
                    valid += 1;
                    if newest
                        .as_ref()
                        .is_none_or(|n| cookie.last_seen > n.last_seen)
                    {
                        newest = Some(cookie);
                    }
                }
                Err(outcome) => {
                    first_failure.get_or_insert(outcome);
                }
            }
        }
        let Some(newest) = newest else {
            let outcome = first_failure.unwrap_or(Outcome::New);
            return Session::new(SessionData::default(), outcome, tag, 0);
        };
        Session::new(newest.data(), Outcome::Resumed, tag, valid)
    }

    /// The signed cookie value for an [`open`](Self::open)ed session's state, stamped `now`.
    pub fn save(&self, session: &Session, now: u64) -> Result<String, TooLarge> {
        self.encode_tagged(&session.data, &session.tag, now)
    }

    /// Decodes one cookie value; the error is [`Outcome::Expired`] or [`Outcome::Rejected`].
    pub fn decode(&self, value: &str, pair: Pair<'_>, now: u64) -> Result<SessionData, Outcome> {
        let tag = pair_tag(&self.keys[0], pair);
        self.verify(value, pair, &tag, now)
            .map(|cookie| cookie.data())
    }

    /// Checks one cookie value and reads its last-message time, leaving its state encoded.
    fn verify(
        &self,
        value: &str,
        pair: Pair<'_>,
        current_tag: &[u8; 16],
        now: u64,
    ) -> Result<Verified, Outcome> {
        let reject = |why| Outcome::Rejected(why);
        let mut parts = value.split('.');
        let (Some(version), Some(payload), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(reject(Rejection::Malformed));
        };
        if version != VERSION {
            return Err(reject(Rejection::UnknownVersion));
        }
        let mut claimed = [0; 32];
        let mac = match URL_SAFE_NO_PAD.decode_slice(mac, &mut claimed) {
            Ok(length) => &claimed[..length],
            // Longer than any MAC: no key signed it.
            Err(DecodeSliceError::OutputSliceTooSmall) => {
                return Err(reject(Rejection::BadSignature));
            }
            Err(DecodeSliceError::DecodeError(_)) => return Err(reject(Rejection::Malformed)),
        };
        let key = self
            .verifying_key(payload, mac)
            .ok_or(reject(Rejection::BadSignature))?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| reject(Rejection::Malformed))?;
        let payload = String::from_utf8(payload).map_err(|_| reject(Rejection::Malformed))?;
        let mut fields = payload.splitn(3, '|');
        let (Some(last_seen), Some(tag), Some(data)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(reject(Rejection::Malformed));
        };
        let last_seen: u64 = last_seen
            .parse()
            .map_err(|_| reject(Rejection::Malformed))?;
        let expected = if std::ptr::eq(key, &self.keys[0]) {
            *current_tag
        } else {
            pair_tag(key, pair) // a cookie signed with a previous secret
        };
        if !bool::from(tag.as_bytes().ct_eq(&expected)) {
            return Err(reject(Rejection::OtherPair));
        }
        if now.saturating_sub(last_seen) > self.ttl.as_secs() {
            return Err(Outcome::Expired);
        }
        let data_at = payload.len() - data.len();
        Ok(Verified {
            last_seen,
            payload,
            data_at,
        })
    }

    /// The signed cookie value for this state, stamped `now`, with the current secret.
    pub fn encode(&self, data: &SessionData, pair: Pair<'_>, now: u64) -> Result<String, TooLarge> {
        self.encode_tagged(data, &pair_tag(&self.keys[0], pair), now)
    }

    fn encode_tagged(
        &self,
        data: &SessionData,
        tag: &[u8; 16],
        now: u64,
    ) -> Result<String, TooLarge> {
        let key = &self.keys[0];
        let mut payload = now.to_string();
        payload.push('|');
        payload.push_str(std::str::from_utf8(tag).expect("base64 is ASCII"));
        payload.push('|');
        data.encode_into(&mut payload);
        let mut value = String::with_capacity(VERSION.len() + 2 + payload.len() * 4 / 3 + 44);
        value.push_str(VERSION);
        value.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut value);
        let mac = self.mac(key, &value[VERSION.len() + 1..]);
        value.push('.');
        URL_SAFE_NO_PAD.encode_string(mac, &mut value);
        let size = self.name.len() + 1 + value.len();
        if size > MAX_COOKIE_BYTES {
            return Err(TooLarge(size));
        }
        Ok(value)
    }

    /// The `Set-Cookie` header value that stores `value` for the TTL.
    pub fn set_cookie(&self, value: &str, secure: bool) -> String {
        let secure = if secure { "; Secure" } else { "" };
        format!(
            "{}={value}; Max-Age={}; Path=/; HttpOnly{secure}",
            self.name,
            self.ttl.as_secs()
        )
    }

    /// The `Set-Cookie` header value that makes Twilio drop the session cookie (a store mode
    /// keeps the state on the server instead).
    pub fn clear_cookie(&self, secure: bool) -> String {
        let secure = if secure { "; Secure" } else { "" };
        format!("{}=; Max-Age=0; Path=/; HttpOnly{secure}", self.name)
    }

    fn mac(&self, key: &HmacSha256, payload: &str) -> [u8; 32] {
        let mut mac = key.clone();
        mac.update(self.name.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn verifying_key(&self, payload: &str, claimed: &[u8]) -> Option<&HmacSha256> {
        self.keys
            .iter()
            .find(|key| bool::from(self.mac(key, payload).as_slice().ct_eq(claimed)))
    }
}

/// A cookie value that verified for the pair within the TTL, its state not decoded yet.
struct Verified {
    last_seen: u64,
    /// The decoded payload; the state is `payload[data_at..]`.
    payload: String,
    data_at: usize,
}

impl Verified {
    fn data(&self) -> SessionData {
        SessionData::decode(&self.payload[self.data_at..])
    }
}

/// A keyed, truncated hash of the pair: binds the cookie without revealing the numbers.
fn pair_tag(key: &HmacSha256, pair: Pair<'_>) -> [u8; 16] {
    let mut mac = key.clone();
    mac.update(b"pair\0");
    mac.update(pair.to.as_bytes());
    mac.update(b"\0");
    mac.update(pair.from.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut tag = [0; 16];
    URL_SAFE_NO_PAD
        .encode_slice(&digest[..12], &mut tag)
        .expect("12 bytes are 16 base64 characters");
    tag
}

/// The values of every cookie called `name` in these `Cookie` header values, in order.
pub fn cookie_values<'h>(
    headers: impl IntoIterator<Item = &'h str>,
    name: &str,
) -> impl Iterator<Item = &'h str> {
    headers
        .into_iter()
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(4 * 3600);
    const PAIR: Pair<'static> = Pair {
        to: "+14155550100",
        from: "+14155550199",
    };

    fn secret(byte: u8) -> SessionSecret {
        SessionSecret::new(vec![byte; 32]).expect("32 bytes")
    }

    fn codec() -> SessionCodec {
        SessionCodec::new("sms_session", TTL, &secret(1), &[])
    }

    fn counted(n: u32) -> SessionData {
        let mut data = SessionData::default();
        data.set("count", n);
        data
    }

    #[test]
    fn round_trips_within_the_ttl() {
        let value = codec().encode(&counted(3), PAIR, 1_000).expect("fits");
        let header = format!("other=1; sms_session={value}");
        let (data, outcome) = codec().load([header.as_str()], PAIR, 1_000 + TTL.as_secs());
        assert_eq!((data, outcome), (counted(3), Outcome::Resumed));
    }

    #[test]
    fn a_session_opened_and_saved_is_issued_under_the_current_secret() {
        let old = SessionCodec::new("sms_session", TTL, &secret(1), &[]);
        let rotated = SessionCodec::new("sms_session", TTL, &secret(2), &[secret(1)]);
        let fresh = SessionCodec::new("sms_session", TTL, &secret(2), &[]);
        let header = format!(
            "sms_session={}",
            old.encode(&counted(3), PAIR, 1_000).expect("fits")
        );
        let mut session = rotated.open([header.as_str()], PAIR, 1_001);
        assert_eq!(
            (&session.data, session.outcome),
            (&counted(3), Outcome::Resumed)
        );
        session.data.set("count", 4);
        let saved = rotated.save(&session, 1_002).expect("fits");
        assert_eq!(fresh.decode(&saved, PAIR, 1_002), Ok(counted(4)));
        assert_eq!(saved, fresh.encode(&counted(4), PAIR, 1_002).expect("fits"));
        let other = Pair {
            to: PAIR.to,
            from: "+14155550123",
        };
        let stranger = rotated.open([header.as_str()], other, 1_001);
        assert_eq!(stranger.outcome, Outcome::Rejected(Rejection::OtherPair));
    }

    #[test]
    fn expires_one_second_after_the_ttl() {
        let value = codec().encode(&counted(3), PAIR, 1_000).expect("fits");
        let late = codec().decode(&value, PAIR, 1_001 + TTL.as_secs());
        assert_eq!(late, Err(Outcome::Expired));
    }

    #[test]
    fn another_pair_is_rejected() {
        let value = codec().encode(&counted(3), PAIR, 1_000).expect("fits");
        let other = Pair {
            to: PAIR.to,
            from: "+14155550123",
        };
        assert_eq!(
            codec().decode(&value, other, 1_000),
            Err(Outcome::Rejected(Rejection::OtherPair))
        );
    }

    #[test]
    fn any_changed_character_is_rejected() {
        let value = codec().encode(&counted(3), PAIR, 1_000).expect("fits");
        for i in 0..value.len() {
            let mut bytes = value.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).expect("ascii");
            assert!(
                matches!(
                    codec().decode(&tampered, PAIR, 1_000),
                    Err(Outcome::Rejected(_))
                ),
                "{i}"
            );
        }
    }

    #[test]
    fn unknown_version_and_garbage_are_named() {
        let value = codec().encode(&counted(3), PAIR, 1_000).expect("fits");
        let v2 = format!("2{}", &value[1..]);
        assert_eq!(
            codec().decode(&v2, PAIR, 1_000),
            Err(Outcome::Rejected(Rejection::UnknownVersion))
        );
        assert_eq!(
            codec().decode("garbage", PAIR, 1_000),
            Err(Outcome::Rejected(Rejection::Malformed))
        );
    }

    #[test]
    fn previous_secret_still_verifies_and_new_cookies_use_the_current_one() {
        let old = SessionCodec::new("sms_session", TTL, &secret(9), &[]);
        let rotated = SessionCodec::new("sms_session", TTL, &secret(1), &[secret(9)]);
        let value = old.encode(&counted(2), PAIR, 1_000).expect("fits");
        assert_eq!(rotated.decode(&value, PAIR, 1_000), Ok(counted(2)));
        let reissued = rotated.encode(&counted(3), PAIR, 1_000).expect("fits");
        assert!(old.decode(&reissued, PAIR, 1_000).is_err());
        assert_eq!(codec().decode(&reissued, PAIR, 1_000), Ok(counted(3)));
    }

    #[test]
    fn fits_a_cookie_agrees_with_the_encoder_at_the_edge() {
        let codec = codec();
        let mut data = SessionData::default();
        let mut flipped = 0;
        for length in 2_500..3_000 {
            data.set("k", "v".repeat(length));
            let fits = data.fits_a_cookie("sms_session");
            let encoded = codec.encode(&data, PAIR, 1_764_000_000);
            assert_eq!(fits, encoded.is_ok(), "a value of {length} bytes");
            flipped += usize::from(!fits);
        }
        assert!(flipped > 0 && flipped < 500, "the edge is inside the range");
    }

    #[test]
    fn oversized_state_is_an_error_not_a_truncation() {
        let mut data = SessionData::default();
        data.set("notes", "x".repeat(4000));
        assert!(matches!(
            codec().encode(&data, PAIR, 1_000),
            Err(TooLarge(_))
        ));
    }

    #[test]
    fn values_stay_in_the_cookie_octet_set() {
        let mut data = SessionData::default();
        data.set("text", "tab\there\r\n; \"quoted\" \\ ünïcode 👍 ,=");
        let value = codec().encode(&data, PAIR, 1_000).expect("fits");
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{value}"
        );
        assert_eq!(codec().decode(&value, PAIR, 1_000), Ok(data));
    }

    #[test]
    fn set_cookie_carries_the_ttl_and_flags() {
        assert_eq!(
            codec().clear_cookie(false),
            "sms_session=; Max-Age=0; Path=/; HttpOnly"
        );
        assert_eq!(
            codec().set_cookie("v", true),
            "sms_session=v; Max-Age=14400; Path=/; HttpOnly; Secure"
        );
        assert_eq!(
            codec().set_cookie("v", false),
            "sms_session=v; Max-Age=14400; Path=/; HttpOnly"
        );
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(SessionSecret::new("short").err(), Some(ShortSecret(5)));
    }

    /// `count` = `n`, last message at `at`, as a `name=value` cookie.
    fn cookie(n: u32, at: u64) -> String {
        format!(
            "sms_session={}",
            codec().encode(&counted(n), PAIR, at).expect("fits")
        )
    }

    /// The session opened from these cookies (in one header and in one header each, which
    /// must agree) at `now`: its state, outcome and count of valid cookies.
    fn opened(cookies: &[&str], now: u64) -> (SessionData, Outcome, usize) {
        let one_header = cookies.join("; ");
        let seen = |session: Session| {
            let valid = session.valid_cookies();
            (session.data, session.outcome, valid)
        };
        let together = seen(codec().open([one_header.as_str()], PAIR, now));
        let apart = seen(codec().open(cookies.iter().copied(), PAIR, now));
        assert_eq!(together, apart);
        together
    }

    #[test]
    fn of_two_valid_cookies_the_one_with_the_later_message_wins_in_either_order() {
        let (stale, fresh) = (cookie(2, 1_000), cookie(5, 2_000));
        for cookies in [[&stale, &fresh], [&fresh, &stale]] {
            let cookies = cookies.map(String::as_str);
            assert_eq!(opened(&cookies, 2_001), (counted(5), Outcome::Resumed, 2));
        }
        let one = [fresh.as_str()];
        assert_eq!(opened(&one, 2_001), (counted(5), Outcome::Resumed, 1));
    }

    #[test]
    fn a_tampered_cookie_claiming_a_later_message_neither_wins_nor_counts() {
        let (stale, fresh) = (cookie(2, 1_000), cookie(5, 2_000));
        let mut tampered = cookie(9, 3_000).into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        for cookies in [[&stale, &tampered], [&tampered, &stale]] {
            let cookies = cookies.map(String::as_str);
            assert_eq!(opened(&cookies, 3_001), (counted(2), Outcome::Resumed, 1));
        }
        for cookies in [[&stale, &tampered, &fresh], [&tampered, &fresh, &stale]] {
            let cookies = cookies.map(String::as_str);
            assert_eq!(opened(&cookies, 3_001), (counted(5), Outcome::Resumed, 2));
        }
    }

    #[test]
    fn an_expired_cookie_neither_wins_nor_counts() {
        let now = 10_000 + TTL.as_secs();
        let (expired, stale, fresh) = (cookie(7, 9_000), cookie(2, 10_000), cookie(5, 10_500));
        for cookies in [[&expired, &stale], [&stale, &expired]] {
            let cookies = cookies.map(String::as_str);
            assert_eq!(opened(&cookies, now), (counted(2), Outcome::Resumed, 1));
        }
        let cookies = [&expired, &stale, &fresh].map(String::as_str);
        assert_eq!(opened(&cookies, now), (counted(5), Outcome::Resumed, 2));
        let alone = [expired.as_str()];
        assert_eq!(
            opened(&alone, now),
            (SessionData::default(), Outcome::Expired, 0)
        );
    }
}
