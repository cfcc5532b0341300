//! The shapes Twilio gives its webhook parameters, checked before a webhook is used.
//!
//! Twilio signs the sorted keys and values concatenated without separators, so characters can
//! move between adjacent parameters without changing the signature: `MessageSid` could absorb
//! `MessagingServiceSid…`, `ApiVersion` could absorb `Body…`, `From` could absorb `FromCity…`.
//! Every parameter whose shape Twilio defines is held to it here, and the ones an inbound text
//! always carries must be present, so such a re-split is a 400 naming the field, never a new
//! webhook: the identifiers are two letters and 32 hex digits, `ApiVersion` is a date, the
//! counts are small numbers and `From`/`To` are addresses.
//!
//! Pure functions over plain data: the gate calls them with the decoded pairs.

/// A parameter that is missing or has the wrong shape; the message names the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("missing required parameter {0}")]
    Missing(&'static str),
    #[error("parameter {0} is not {1}")]
    Malformed(&'static str, &'static str),
    #[error("parameter {0} is repeated")]
    Repeated(&'static str),
    #[error("AccountSid is not this server's account (twilio.account_sid)")]
    OtherAccount,
}

impl FieldError {
    /// The parameter named, for the log.
    pub fn field(self) -> &'static str {
        match self {
            Self::Missing(field) | Self::Malformed(field, _) | Self::Repeated(field) => field,
            Self::OtherAccount => "AccountSid",
        }
    }
}

/// What a shape check accepts, with the words a 400 uses for it.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Two uppercase letters (these, when given) and 32 hex digits.
    Sid(Option<[u8; 2]>),
    /// `YYYY-MM-DD`.
    Date,
    /// A decimal count up to this.
    Count(u32),
    /// E.164, a short code, an alphanumeric sender, or `channel:` and one of those.
    Address,
}

impl Shape {
    fn describe(self) -> &'static str {
        match self {
            Self::Sid(Some(prefix)) if &prefix == b"AC" => "AC followed by 32 hex digits",
            Self::Sid(Some(prefix)) if &prefix == b"MG" => "MG followed by 32 hex digits",
            Self::Sid(_) => "two letters followed by 32 hex digits",
            Self::Date => "a date like 2010-04-01",
            Self::Count(_) => "a small whole number",
            Self::Address => "a phone number, short code, sender id or channel address",
        }
    }

    fn accepts(self, value: &str) -> bool {
        match self {
            Self::Sid(prefix) => is_sid_with(value, prefix),
            Self::Date => is_date(value),
            Self::Count(max) => is_count(value, max),
            Self::Address => is_address(value),
        }
    }
}

/// The parameters this module knows: each one's index (its bit in the seen-once and required
/// masks) and its shape, if Twilio gives it one. A `match`, not a table scan: it runs for every
/// parameter of every webhook.
fn known(key: &str) -> Option<(u32, Option<Shape>)> {
    Some(match key {
        "MessageSid" => (0, Some(Shape::Sid(None))),
        "SmsSid" => (1, Some(Shape::Sid(None))),
        "SmsMessageSid" => (2, Some(Shape::Sid(None))),
        "AccountSid" => (3, Some(Shape::Sid(Some(*b"AC")))),
        "MessagingServiceSid" => (4, Some(Shape::Sid(Some(*b"MG")))),
        "ApiVersion" => (5, Some(Shape::Date)),
        "NumMedia" => (6, Some(Shape::Count(100))),
        "NumSegments" => (7, Some(Shape::Count(1_000))),
        "From" => (8, Some(Shape::Address)),
        "To" => (9, Some(Shape::Address)),
        "Body" => (10, None),
        "MessageStatus" => (11, None),
        _ => return None,
    })
}

/// The names of [`known`]'s indexes.
const KNOWN: [&str; 12] = [
    "MessageSid",
    "SmsSid",
    "SmsMessageSid",
    "AccountSid",
    "MessagingServiceSid",
    "ApiVersion",
    "NumMedia",
    "NumSegments",
    "From",
    "To",
    "Body",
    "MessageStatus",
];

/// The bit of [`known`]'s index for `name`.
const fn bit(index: u32) -> u32 {
    1 << index
}

/// Which webhook the parameters claim to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Inbound,
    Status,
}

impl Kind {
    /// What such a webhook always carries, as bits of [`known`]'s indexes (an inbound `Body`
    /// may be empty, but it is there).
    fn required(self) -> u32 {
        match self {
            // MessageSid, AccountSid, From, To, Body, NumMedia
            Self::Inbound => bit(0) | bit(3) | bit(8) | bit(9) | bit(10) | bit(6),
            // MessageSid, AccountSid, MessageStatus
            Self::Status => bit(0) | bit(3) | bit(11),
        }
    }
}

/// Checks every shaped parameter, that no known one is repeated, that the required ones are
/// present, and, when `account` is set, that the webhook is for that account.
pub fn check<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    kind: Kind,
    account: Option<&str>,
) -> Result<(), FieldError> {
    let mut seen = 0u32;
    for (key, value) in pairs {
        let Some((index, shape)) = known(key) else {
            continue;
        };
        let name = KNOWN[index as usize];
        if seen & bit(index) != 0 {
            return Err(FieldError::Repeated(name));
        }
        seen |= bit(index);
        if let Some(shape) = shape
            && !shape.accepts(value)
        {
            return Err(FieldError::Malformed(name, shape.describe()));
        }
        if index == 3 && account.is_some_and(|expected| expected != value) {
            return Err(FieldError::OtherAccount);
        }
    }
    let missing = kind.required() & !seen;
    match missing {
        0 => Ok(()),
        _ => Err(FieldError::Missing(
            KNOWN[missing.trailing_zeros() as usize],
        )),
    }
}

/// `prefix` and 32 hex digits, e.g. an `AC…` account SID.
pub fn is_sid(value: &str, prefix: [u8; 2]) -> bool {
    is_sid_with(value, Some(prefix))
}

fn is_sid_with(value: &str, prefix: Option<[u8; 2]>) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 34
        && match prefix {
            Some(prefix) => bytes[..2] == prefix,
            None => bytes[..2].iter().all(u8::is_ascii_uppercase),
        }
        && bytes[2..].iter().all(u8::is_ascii_hexdigit)
}

fn is_date(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

fn is_count(value: &str, max: u32) -> bool {
    !value.is_empty()
        && value.len() <= 4
        && value.bytes().all(|b| b.is_ascii_digit())
        && value.parse::<u32>().is_ok_and(|n| n <= max)
}

/// E.164 (`+` and up to 15 digits), a short code (3 to 8 digits), an alphanumeric sender id
/// (up to 11 letters, digits and spaces, at least one letter), or a channel address such as
/// `whatsapp:+14155550100` or `messenger:1234567890` (a channel id of up to 64 letters, digits,
/// `_`, `-` and `.`, or a `+` number held to E.164).
pub fn is_address(value: &str) -> bool {
    if let Some((channel, address)) = value.split_once(':') {
        let channel_ok = (1..=16).contains(&channel.len())
            && channel.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
        return channel_ok && (is_e164(address) || is_channel_id(address));
    }
    is_e164(value) || is_short_code(value) || is_alphanumeric_sender(value)
}

fn is_e164(value: &str) -> bool {
    value.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

fn is_short_code(value: &str) -> bool {
    (3..=8).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit())
}

fn is_alphanumeric_sender(value: &str) -> bool {
    (1..=11).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && value.bytes().any(|b| b.is_ascii_alphabetic())
}

fn is_channel_id(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && !value.starts_with('+')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SM: &str = "SM0123456789abcdef0123456789abcdef";
    const AC: &str = "AC0123456789abcdef0123456789abcdef";
    const MG: &str = "MG0123456789abcdef0123456789abcdef";

    fn inbound(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut pairs = vec![
            ("MessageSid", SM),
            ("AccountSid", AC),
            ("From", "+14155550199"),
            ("To", "+14155550100"),
            ("Body", "hello"),
            ("NumMedia", "0"),
            ("ApiVersion", "2010-04-01"),
        ];
        pairs.extend_from_slice(extra);
        pairs
    }

    fn checked(pairs: &[(&str, &str)]) -> Result<(), FieldError> {
        check(pairs.iter().copied(), Kind::Inbound, None)
    }

    #[test]
    fn a_whole_inbound_text_passes() {
        assert_eq!(checked(&inbound(&[("MessagingServiceSid", MG)])), Ok(()));
        assert_eq!(
            checked(&inbound(&[
                ("NumSegments", "2"),
                ("FromCity", "SAN FRANCISCO")
            ])),
            Ok(())
        );
    }

    /// The reviewer's three re-splits: each keeps the signature, each is now refused.
    #[test]
    fn re_split_parameters_are_refused_naming_the_field() {
        let absorbed_service = format!("{SM}MessagingServiceSid{MG}");
        let mut pairs = inbound(&[]);
        pairs[0].1 = absorbed_service.as_str();
        assert_eq!(
            checked(&pairs),
            Err(FieldError::Malformed(
                "MessageSid",
                "two letters followed by 32 hex digits"
            ))
        );
        let mut pairs = inbound(&[]);
        pairs.retain(|(key, _)| *key != "Body");
        pairs[5].1 = "2010-04-01Bodyhello";
        assert_eq!(
            checked(&pairs).map_err(FieldError::field),
            Err("ApiVersion")
        );
        let mut pairs = inbound(&[]);
        pairs[2].1 = "+14155550199FromCitySAN FRANCISCO";
        assert_eq!(checked(&pairs).map_err(FieldError::field), Err("From"));
        let mut pairs = inbound(&[]);
        pairs[2].1 = "whatsapp:+14155550199FromCityOAKLAND";
        assert_eq!(checked(&pairs).map_err(FieldError::field), Err("From"));
    }

    #[test]
    fn required_parameters_must_be_present_and_single() {
        for required in ["MessageSid", "AccountSid", "From", "To", "Body", "NumMedia"] {
            let mut pairs = inbound(&[]);
            pairs.retain(|(key, _)| *key != required);
            assert_eq!(
                checked(&pairs),
                Err(FieldError::Missing(required)),
                "{required}"
            );
        }
        let pairs = inbound(&[("From", "+14155550111")]);
        assert_eq!(checked(&pairs), Err(FieldError::Repeated("From")));
    }

    #[test]
    fn every_known_index_names_its_parameter() {
        for (index, name) in KNOWN.iter().enumerate() {
            assert_eq!(known(name).map(|(i, _)| i), Some(index as u32), "{name}");
        }
    }

    #[test]
    fn the_pinned_account_is_the_only_one_accepted() {
        let pairs = inbound(&[]);
        let other = "AC00000000000000000000000000000000";
        assert_eq!(
            check(pairs.iter().copied(), Kind::Inbound, Some(AC)),
            Ok(())
        );
        assert_eq!(
            check(pairs.iter().copied(), Kind::Inbound, Some(other)),
            Err(FieldError::OtherAccount)
        );
    }

    #[test]
    fn addresses_take_every_shape_twilio_sends() {
        for good in [
            "+14155550100",
            "+447700900123",
            "22395",
            "MyShop",
            "Acme Co",
            "whatsapp:+14155238886",
            "messenger:1234567890123",
            "rcs:acme_agent",
        ] {
            assert!(is_address(good), "{good}");
        }
        for bad in [
            "",
            "+",
            "+1415555010012345",
            "14",
            "TooLongSenderId",
            "12 34",
            "whatsapp:",
            "WhatsApp:+14155238886",
            "whatsapp:+1415FromCity",
            "sip:alice@example.com",
        ] {
            assert!(!is_address(bad), "{bad}");
        }
    }

    #[test]
    fn counts_and_versions_are_held_to_their_shapes() {
        assert!(is_count("0", 100) && is_count("10", 100));
        assert!(!is_count("", 100) && !is_count("-1", 100) && !is_count("101", 100));
        assert!(!is_count("+1", 100) && !is_count("1e2", 100));
        assert!(is_date("2010-04-01"));
        assert!(!is_date("2010-04-01Body") && !is_date("2010/04/01"));
    }

    #[test]
    fn status_callbacks_need_their_own_fields() {
        let pairs = [("MessageSid", SM), ("AccountSid", AC)];
        assert_eq!(
            check(pairs.iter().copied(), Kind::Status, None),
            Err(FieldError::Missing("MessageStatus"))
        );
        let pairs = [
            ("MessageSid", SM),
            ("AccountSid", AC),
            ("MessageStatus", "delivered"),
        ];
        assert_eq!(check(pairs.iter().copied(), Kind::Status, None), Ok(()));
    }
}
