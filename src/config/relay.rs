//! `[relay]`, `server.admin_listen` and `[admin]`: masked-number relays and the admin API that
//! opens and closes their sessions.
//!
//! Errors name their key and never quote a token.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Env, Secret, duration, env_or_file, error};

/// The shortest admin token accepted.
const MIN_TOKEN_BYTES: usize = 16;

/// `[relay]` as the file gives it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRelay {
    numbers: Option<Vec<String>>,
    ttl: Option<String>,
    max_ttl: Option<String>,
    unknown_reply: Option<String>,
    closed_reply: Option<String>,
    unavailable_reply: Option<String>,
    per_session_per_minute: Option<u32>,
    per_sender_per_minute: Option<u32>,
    close_word: Option<String>,
    /// Name → number, for flows' `connect` nodes.
    agents: Option<BTreeMap<String, String>>,
}

/// `[admin]` as the file gives it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    tokens: Option<Vec<Secret>>,
}

/// The validated `[relay]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// `relay.numbers`: the pool; empty: no relay.
    pub numbers: Vec<String>,
    /// A session's sliding TTL when its creator gives none.
    pub ttl: Duration,
    /// The longest TTL (or time to an absolute expiry) a session may ask for.
    pub max_ttl: Duration,
    /// To a stranger texting a pool number; `None`: no reply.
    pub unknown_reply: Option<String>,
    /// To a participant of a session that has ended.
    pub closed_reply: Option<String>,
    /// To a sender whose text reaches no one (every other participant opted out).
    pub unavailable_reply: String,
    pub per_session_per_minute: u32,
    pub per_sender_per_minute: u32,
    /// An agent of a hand-off texts this alone to close it.
    pub close_word: String,
    /// `relay.agents`: the numbers a flow's `connect` node may hand a texter to.
    pub agents: BTreeMap<String, String>,
}

impl RelayConfig {
    pub fn is_on(&self) -> bool {
        !self.numbers.is_empty()
    }
}

/// The admin API: its own listener and bearer tokens.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// `server.admin_listen`; `None`: the admin API is off.
    pub listen: Option<SocketAddr>,
    /// `admin.tokens` (`SMS_SESSIONS_ADMIN_TOKEN`, comma-separated): any one opens it.
    pub tokens: Vec<Secret>,
}

/// Environment variables of this part: `SMS_SESSIONS_RELAY_NUMBERS`, `SMS_SESSIONS_ADMIN_TOKEN`
/// (or `_FILE`).
pub(super) fn apply_env(
    relay: &mut RawRelay,
    admin: &mut RawAdmin,
    env: &(impl Env + ?Sized),
) -> Result<(), ConfigError> {
    if let Some(numbers) = env.var("SMS_SESSIONS_RELAY_NUMBERS") {
        relay.numbers = Some(split_list(&numbers));
    }
    if let Some(tokens) = env_or_file(env, "SMS_SESSIONS_ADMIN_TOKEN")? {
        admin.tokens = Some(split_list(&tokens).into_iter().map(Secret).collect());
    }
    Ok(())
}

fn split_list(text: &str) -> Vec<String> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `address` is `+` and 8 to 15 digits, or that after `whatsapp:`.
pub fn is_address(address: &str) -> bool {
    let number = address.strip_prefix("whatsapp:").unwrap_or(address);
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

impl RawRelay {
    pub(super) fn validate(self) -> Result<RelayConfig, ConfigError> {
        let numbers = self.numbers.unwrap_or_default();
        for (i, number) in numbers.iter().enumerate() {
            if !is_address(number) {
                return Err(error(
                    "relay.numbers",
                    format!(
                        "number {} is not E.164 (+ and 8 to 15 digits) or whatsapp:+E.164",
                        i + 1
                    ),
                ));
            }
            if numbers[..i].contains(number) {
                return Err(error(
                    "relay.numbers",
                    format!("number {} is listed twice", i + 1),
                ));
            }
        }
        let ttl = duration("relay.ttl", self.ttl.as_deref().unwrap_or("4h"))?;
        let max_ttl = duration("relay.max_ttl", self.max_ttl.as_deref().unwrap_or("30d"))?;
        if ttl.is_zero() || ttl > max_ttl {
            return Err(error(
                "relay.ttl",
                "must be more than 0 and at most relay.max_ttl",
            ));
        }
        let rate = |key: &str, value: Option<u32>, default: u32| match value.unwrap_or(default) {
            0 => Err(error(key, "must be at least 1")),
            n => Ok(n),
        };
        let non_empty = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        let mut agents = BTreeMap::new();
        for (name, number) in self.agents.unwrap_or_default() {
            let key = format!("relay.agents.{name}");
            if !is_address(&number) {
                return Err(error(&key, "is not E.164 (+ and 8 to 15 digits)"));
            }
            if numbers.contains(&number) {
                return Err(error(
                    &key,
                    "is a pool number; an agent is a person's phone",
                ));
            }
            agents.insert(name, number);
        }
        if !agents.is_empty() && numbers.is_empty() {
            return Err(error(
                "relay.numbers",
                "is required with relay.agents: an agent texts through a pool number",
            ));
        }
        let close_word = self.close_word.unwrap_or_else(|| "#close".into());
        if close_word.trim().is_empty() || close_word.contains(char::is_whitespace) {
            return Err(error("relay.close_word", "must be one word"));
        }
        Ok(RelayConfig {
            numbers,
            ttl,
            max_ttl,
            unknown_reply: non_empty(self.unknown_reply),
            closed_reply: match self.closed_reply {
                Some(reply) => non_empty(Some(reply)),
                None => Some("This conversation has ended.".into()),
            },
            unavailable_reply: non_empty(self.unavailable_reply)
                .unwrap_or_else(|| "They can't receive messages right now.".into()),
            per_session_per_minute: rate(
                "relay.per_session_per_minute",
                self.per_session_per_minute,
                20,
            )?,
            per_sender_per_minute: rate(
                "relay.per_sender_per_minute",
                self.per_sender_per_minute,
                30,
            )?,
            close_word,
            agents,
        })
    }
}

impl RawAdmin {
    pub(super) fn validate(self, listen: Option<SocketAddr>) -> Result<AdminConfig, ConfigError> {
        let tokens = self.tokens.unwrap_or_default();
        if listen.is_some() && tokens.is_empty() {
            return Err(error(
                "admin.tokens",
                "is required with server.admin_listen (SMS_SESSIONS_ADMIN_TOKEN: one or more \
                 tokens, comma-separated)",
            ));
        }
        if let Some(i) = tokens
            .iter()
            .position(|t| t.expose().len() < MIN_TOKEN_BYTES)
        {
            return Err(error(
                "admin.tokens",
                format!("token {} is shorter than {MIN_TOKEN_BYTES} bytes", i + 1),
            ));
        }
        Ok(AdminConfig { listen, tokens })
    }
}

/// `[relay]` and `[admin]` for `check-config`: numbers shown, tokens counted.
pub(super) fn redacted(relay: &RelayConfig, admin: &AdminConfig) -> String {
    let list = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|n| format!("{n:?}")).collect();
        format!("[{}]", quoted.join(", "))
    };
    let agents: Vec<String> = relay
        .agents
        .iter()
        .map(|(name, number)| format!("{name} = {number:?}"))
        .collect();
    format!(
        "[relay]\nnumbers = {}\nttl = \"{}\"\nmax_ttl = \"{}\"\nunknown_reply = {:?}\n\
         closed_reply = {:?}\nunavailable_reply = {:?}\nper_session_per_minute = {}\n\
         per_sender_per_minute = {}\nclose_word = {:?}\n\n[relay.agents]\n{}\n\n\
         [admin]\n# server.admin_listen = {:?}\ntokens = {} # count, redacted\n\n",
        list(&relay.numbers),
        humantime::format_duration(relay.ttl),
        humantime::format_duration(relay.max_ttl),
        relay.unknown_reply.as_deref().unwrap_or(""),
        relay.closed_reply.as_deref().unwrap_or(""),
        relay.unavailable_reply,
        relay.per_session_per_minute,
        relay.per_sender_per_minute,
        relay.close_word,
        agents.join("\n"),
        admin.listen.map(|a| a.to_string()).unwrap_or_default(),
        admin.tokens.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_e164_or_whatsapp() {
        for good in ["+14155550100", "whatsapp:+14155550100", "+4930123456"] {
            assert!(is_address(good), "{good}");
        }
        for bad in [
            "14155550100",
            "+1415",
            "+1415555010012345",
            "+0123456789",
            "whatsapp:1",
            "+1 415 555",
        ] {
            assert!(!is_address(bad), "{bad}");
        }
    }

    #[test]
    fn relay_keys_are_checked_by_name() {
        let raw = |numbers: &[&str]| RawRelay {
            numbers: Some(numbers.iter().map(|n| (*n).to_owned()).collect()),
            ..RawRelay::default()
        };
        let config = raw(&["+14155550100", "+14155550101"])
            .validate()
            .expect("valid");
        assert!(config.is_on());
        assert_eq!(config.ttl, Duration::from_secs(4 * 3600));
        assert_eq!(
            config.closed_reply.as_deref(),
            Some("This conversation has ended.")
        );
        assert_eq!(config.unknown_reply, None);
        let e = raw(&["+14155550100", "5550101"]).validate().unwrap_err();
        assert_eq!(e.key, "relay.numbers");
        assert!(!e.to_string().contains("5550101"), "{e}");
        let e = raw(&["+14155550100", "+14155550100"])
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let mut agents = raw(&["+14155550100"]);
        agents.agents = Some(BTreeMap::from([("nurse".into(), "+14155550100".into())]));
        assert_eq!(agents.validate().unwrap_err().key, "relay.agents.nurse");
        let mut ttl = raw(&["+14155550100"]);
        ttl.ttl = Some("40d".into());
        assert_eq!(ttl.validate().unwrap_err().key, "relay.ttl");
    }

    #[test]
    fn the_admin_listener_needs_long_enough_tokens() {
        let listen = Some(SocketAddr::from(([127, 0, 0, 1], 8081)));
        assert_eq!(
            RawAdmin::default().validate(listen).unwrap_err().key,
            "admin.tokens"
        );
        let short = RawAdmin {
            tokens: Some(vec![Secret("short".into())]),
        };
        let e = short.validate(listen).unwrap_err();
        assert!(!e.to_string().contains("short\""), "{e}");
        let ok = RawAdmin {
            tokens: Some(vec![
                Secret("0123456789abcdef".into()),
                Secret("fedcba9876543210".into()),
            ]),
        };
        assert_eq!(ok.validate(listen).expect("valid").tokens.len(), 2);
        assert!(
            RawAdmin::default().validate(None).is_ok(),
            "off without a listener"
        );
    }
}
