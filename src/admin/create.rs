//! `POST /v1/relay/sessions`: the JSON body → a [`NewSession`], or the first rule it breaks,
//! naming the field (`participants[1].address`).
//!
//! Pure: the pool, the TTL bounds and the clock are passed in. The body is walked as a JSON
//! value rather than derived, so a wrong type or an unknown key is named by its path.

use std::time::Duration;

use serde_json::{Map, Value};

use super::error::ApiError;
use crate::config::is_address;
use crate::relay::model::is_whatsapp;
use crate::relay::{NewParticipant, NewSession};

/// A reply carries at most 10 `<Message>`s, one per other participant.
pub const MAX_PARTICIPANTS: usize = 11;
/// The longest label, in characters.
pub const MAX_LABEL: usize = 40;

/// What a new session is checked against.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    /// `relay.numbers`.
    pub pool: &'a [String],
    /// `relay.ttl`: a session's TTL when the body gives none.
    pub default_ttl: Duration,
    /// `relay.max_ttl`.
    pub max_ttl: Duration,
    /// Unix ms, for `expires_at`.
    pub now_ms: u64,
}

/// Parses and checks a create body.
pub fn parse(body: &[u8], rules: &Rules<'_>) -> Result<NewSession, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("is not JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    };
    only_keys(&object, "", &["participants", "ttl", "expires_at"])?;
    let participants = participants(object.get("participants"), rules)?;
    Ok(NewSession {
        participants,
        ttl_secs: ttl(optional_str(&object, "ttl", "ttl")?, rules)?,
        expires_at_ms: expires_at(optional_str(&object, "expires_at", "expires_at")?, rules)?,
        handoff_from: None,
    })
}

/// Refuses the first key of `object` not in `known`, named with its path (a long key cut
/// short: the answer need not carry a large one back).
fn only_keys(object: &Map<String, Value>, prefix: &str, known: &[&str]) -> Result<(), ApiError> {
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => {
            let key: String = key.chars().take(MAX_KEY_SHOWN).collect();
            Err(ApiError::invalid(
                format!("{prefix}{key}"),
                format!("is not a known key (expected {})", known.join(", ")),
            ))
        }
        None => Ok(()),
    }
}

/// How much of an unknown key an error shows.
const MAX_KEY_SHOWN: usize = 64;

/// The string at `key`, `None` when absent or `null`.
fn optional_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'a str>, ApiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(ApiError::invalid(field, "must be a string")),
    }
}

fn participants(value: Option<&Value>, rules: &Rules<'_>) -> Result<Vec<NewParticipant>, ApiError> {
    let Some(Value::Array(items)) = value else {
        return Err(ApiError::invalid(
            "participants",
            "is required: an array of {\"address\", \"label\"?, \"proxy\"?}",
        ));
    };
    if !(2..=MAX_PARTICIPANTS).contains(&items.len()) {
        let detail = format!(
            "has {} participants; a session has 2 to {MAX_PARTICIPANTS} (one reply carries at \
             most 10 messages)",
            items.len()
        );
        return Err(ApiError::invalid("participants", detail));
    }
    let mut parsed: Vec<NewParticipant> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let participant = participant(i, item, rules)?;
        if let Some(j) = parsed.iter().position(|p| p.address == participant.address) {
            let detail = format!("is also participants[{j}].address");
            return Err(ApiError::invalid(
                format!("participants[{i}].address"),
                detail,
            ));
        }
        parsed.push(participant);
    }
    Ok(parsed)
}

fn participant(i: usize, item: &Value, rules: &Rules<'_>) -> Result<NewParticipant, ApiError> {
    let prefix = format!("participants[{i}].");
    let Value::Object(object) = item else {
        return Err(ApiError::invalid(
            format!("participants[{i}]"),
            "must be an object",
        ));
    };
    only_keys(object, &prefix, &["address", "label", "proxy"])?;
    let field = |key: &str| format!("{prefix}{key}");
    let address = optional_str(object, "address", &field("address"))?
        .ok_or_else(|| ApiError::invalid(field("address"), "is required"))?;
    check_address(address, rules.pool).map_err(|e| ApiError::invalid(field("address"), e))?;
    let label = match optional_str(object, "label", &field("label"))? {
        Some(label) => check_label(label).map_err(|e| ApiError::invalid(field("label"), e))?,
        None => None,
    };
    let proxy = optional_str(object, "proxy", &field("proxy"))?;
    if let Some(proxy) = proxy {
        check_proxy(proxy, address, rules.pool)
            .map_err(|e| ApiError::invalid(field("proxy"), e))?;
    }
    Ok(NewParticipant {
        address: address.to_owned(),
        label,
        proxy: proxy.map(str::to_owned),
    })
}

/// A participant's address: a person's E.164 number (or WhatsApp one), not one of the pool's
/// on either channel (the relay would text itself).
pub fn check_address(address: &str, pool: &[String]) -> Result<(), &'static str> {
    if !is_address(address) {
        return Err("is not E.164 (+ and 8 to 15 digits) or whatsapp:+E.164");
    }
    if pool.iter().any(|number| bare(number) == bare(address)) {
        return Err("is a pool number; a participant is a person's phone");
    }
    Ok(())
}

/// The number of an address, without its `whatsapp:` channel.
fn bare(address: &str) -> &str {
    address.strip_prefix("whatsapp:").unwrap_or(address)
}

/// A label: at most 40 characters, none of them control characters; `""` is no label.
fn check_label(label: &str) -> Result<Option<String>, String> {
    if label.chars().count() > MAX_LABEL {
        return Err(format!("is longer than {MAX_LABEL} characters"));
    }
    if label.chars().any(char::is_control) {
        return Err("has a control character".into());
    }
    Ok((!label.is_empty()).then(|| label.to_owned()))
}

/// A proxy the caller chose: a pool number of the address's channel.
fn check_proxy(proxy: &str, address: &str, pool: &[String]) -> Result<(), &'static str> {
    if !pool.iter().any(|number| number == proxy) {
        return Err("is not a number of the pool (relay.numbers)");
    }
    if is_whatsapp(proxy) != is_whatsapp(address) {
        return Err("is not on the address's channel (SMS or whatsapp:)");
    }
    Ok(())
}

fn ttl(text: Option<&str>, rules: &Rules<'_>) -> Result<u64, ApiError> {
    let Some(text) = text else {
        return Ok(rules.default_ttl.as_secs().max(1));
    };
    let ttl = humantime::parse_duration(text)
        .map_err(|_| ApiError::invalid("ttl", "is not a duration such as \"4h\" or \"30m\""))?;
    if ttl.as_secs() == 0 {
        return Err(ApiError::invalid("ttl", "must be at least 1s"));
    }
    if ttl > rules.max_ttl {
        let max = humantime::format_duration(rules.max_ttl);
        return Err(ApiError::invalid(
            "ttl",
            format!("is more than relay.max_ttl ({max})"),
        ));
    }
    Ok(ttl.as_secs())
}

fn expires_at(text: Option<&str>, rules: &Rules<'_>) -> Result<Option<u64>, ApiError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let at: jiff::Timestamp = text.parse().map_err(|_| {
        ApiError::invalid(
            "expires_at",
            "is not an RFC 3339 time such as \"2026-12-01T18:00:00Z\"",
        )
    })?;
    match u64::try_from(at.as_millisecond()) {
        Ok(ms) if ms > rules.now_ms => Ok(Some(ms)),
        _ => Err(ApiError::invalid("expires_at", "is in the past")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn pool() -> Vec<String> {
        vec!["+14155550100".into(), "whatsapp:+14155550101".into()]
    }

    fn parse_with(body: &str) -> Result<NewSession, ApiError> {
        let pool = pool();
        let rules = Rules {
            pool: &pool,
            default_ttl: Duration::from_secs(4 * 3600),
            max_ttl: Duration::from_secs(30 * 86_400),
            now_ms: NOW,
        };
        parse(body.as_bytes(), &rules)
    }

    fn field_of(body: &str) -> String {
        match parse_with(body) {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("{body}: expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_body_becomes_a_new_session() {
        let new = parse_with(
            r#"{"participants":[{"address":"+14155550001","label":"Buyer"},
                {"address":"whatsapp:+14155550002","proxy":"whatsapp:+14155550101","label":""}],
                "ttl":"2h","expires_at":"2027-01-16T08:00:00Z"}"#,
        )
        .expect("valid");
        assert_eq!(new.ttl_secs, 7200);
        assert_eq!(new.expires_at_ms, Some(NOW + 86_400_000));
        assert_eq!(new.participants[0].label.as_deref(), Some("Buyer"));
        assert_eq!(new.participants[1].label, None, "an empty label is none");
        assert_eq!(
            new.participants[1].proxy.as_deref(),
            Some("whatsapp:+14155550101")
        );
        let default = parse_with(
            r#"{"participants":[{"address":"+14155550001"},{"address":"+14155550002"}]}"#,
        );
        assert_eq!(default.expect("valid").ttl_secs, 4 * 3600);
    }

    #[test]
    fn every_error_names_its_field() {
        let two =
            |second: &str| format!(r#"{{"participants":[{{"address":"+14155550001"}},{second}]}}"#);
        let cases = [
            (
                two(r#"{"address":"14155550002"}"#),
                "participants[1].address",
            ),
            (
                two(r#"{"address":"+14155550001"}"#),
                "participants[1].address",
            ),
            (
                two(r#"{"address":"+14155550100"}"#),
                "participants[1].address",
            ),
            (
                two(r#"{"address":"+14155550101"}"#),
                "participants[1].address",
            ),
            (two(r#"{"label":"x"}"#), "participants[1].address"),
            (
                two(r#"{"address":"+14155550002","label":"a\u0007b"}"#),
                "participants[1].label",
            ),
            (
                two(&format!(
                    r#"{{"address":"+14155550002","label":"{}"}}"#,
                    "x".repeat(41)
                )),
                "participants[1].label",
            ),
            (
                two(r#"{"address":"+14155550002","proxy":"+14155550199"}"#),
                "participants[1].proxy",
            ),
            (
                two(r#"{"address":"+14155550002","proxy":"whatsapp:+14155550101"}"#),
                "participants[1].proxy",
            ),
            (
                two(r#"{"address":"+14155550002","nickname":"x"}"#),
                "participants[1].nickname",
            ),
            (two(r#""+14155550002""#), "participants[1]"),
            (two(r#"{"address":14155550002}"#), "participants[1].address"),
            (
                r#"{"participants":[{"address":"+14155550001"}]}"#.into(),
                "participants",
            ),
            (r#"{"participants":{}}"#.into(), "participants"),
            (r#"{}"#.into(), "participants"),
            (r#"[]"#.into(), "body"),
            (r#"{"participants":"#.into(), "body"),
            (r#"{"participants":[],"color":"red"}"#.into(), "color"),
        ];
        for (body, field) in cases {
            assert_eq!(field_of(&body), field, "{body}");
        }
        let many: Vec<String> = (0..12)
            .map(|i| format!(r#"{{"address":"+1415555{i:04}"}}"#))
            .collect();
        assert_eq!(
            field_of(&format!(r#"{{"participants":[{}]}}"#, many.join(","))),
            "participants"
        );
    }

    #[test]
    fn ttl_and_expiry_are_bounded() {
        let with = |extra: &str| {
            format!(
                r#"{{"participants":[{{"address":"+14155550001"}},{{"address":"+14155550002"}}],{extra}}}"#
            )
        };
        for bad in [
            r#""ttl":"soon""#,
            r#""ttl":"0s""#,
            r#""ttl":"500ms""#,
            r#""ttl":"31d""#,
            r#""ttl":3600"#,
        ] {
            assert_eq!(field_of(&with(bad)), "ttl", "{bad}");
        }
        let now = r#""expires_at":"2027-01-15T08:00:00Z""#;
        for bad in [
            r#""expires_at":"tomorrow""#,
            r#""expires_at":"2020-01-01T00:00:00Z""#,
            now,
        ] {
            assert_eq!(field_of(&with(bad)), "expires_at", "{bad}");
        }
        assert!(parse_with(&with(r#""ttl":"30d""#)).is_ok());
        assert!(parse_with(&with(r#""ttl":null"#)).is_ok());
    }
}
