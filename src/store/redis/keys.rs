//! The names of a conversation's Redis keys (research/stores.md §8.2).
//!
//! Every key of one conversation starts `{prefix}:{<ConvKey>}`: the braces are a Redis Cluster
//! hash tag, so the conversation, its lease, markers and replies live in one slot and one
//! script may touch them all. The [`ConvKey`] is a keyed hash of the pair and the rest are
//! MessageSids and fixed suffixes, so no phone number appears in any name (names show up in
//! `SCAN`, `MONITOR`, slow logs and dumps).

use crate::store::ConvKey;

/// The keys of one conversation under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Keys {
    /// `{prefix}:{<ConvKey>}`, which every name below starts with.
    base: String,
}

impl Keys {
    pub(super) fn new(prefix: &str, key: &ConvKey) -> Self {
        Self {
            base: format!("{prefix}:{{{key}}}"),
        }
    }

    /// The conversation: a hash of `t` (touched, ms) and `d` (the state's bytes).
    pub(super) fn conversation(&self) -> String {
        format!("{}:c", self.base)
    }

    /// The lease: `<token>:<until_ms>`, both zero-padded to 20 digits.
    pub(super) fn lease(&self) -> String {
        format!("{}:l", self.base)
    }

    /// A MessageSid's marker: when it was applied (ms, 20 digits).
    pub(super) fn marker(&self, sid: &str) -> String {
        format!("{}:m:{sid}", self.base)
    }

    /// A MessageSid's reply bytes.
    pub(super) fn reply(&self, sid: &str) -> String {
        format!("{}:r:{sid}", self.base)
    }
}

/// Checks `store.prefix`: a brace in it would move the hash tag off the [`ConvKey`] (all of a
/// conversation's keys must share one Cluster slot, and conversations should spread over all).
pub(super) fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.contains(['{', '}']) {
        return Err(format!(
            "store.prefix {prefix:?} must not contain '{{' or '}}' (Redis Cluster hash tags)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Pair, SessionSecret};

    const TO: &str = "+15005550006";
    const FROM: &str = "+447700900123";

    fn key() -> ConvKey {
        let secret =
            SessionSecret::new(*b"a-test-secret-of-at-least-32-bytes!!").expect("long enough");
        ConvKey::derive(&secret, Pair { to: TO, from: FROM })
    }

    #[test]
    fn names_are_prefix_hash_tag_and_suffix() {
        let key = key();
        let keys = Keys::new("sms-sessions", &key);
        let base = format!("sms-sessions:{{{key}}}");
        assert_eq!(keys.conversation(), format!("{base}:c"));
        assert_eq!(keys.lease(), format!("{base}:l"));
        assert_eq!(keys.marker("SM0123"), format!("{base}:m:SM0123"));
        assert_eq!(keys.reply("SM0123"), format!("{base}:r:SM0123"));
    }

    #[test]
    fn hash_tag_is_the_22_character_conv_key() {
        let key = key();
        let keys = Keys::new("deploy-a", &key);
        for name in [
            keys.conversation(),
            keys.lease(),
            keys.marker("SMx"),
            keys.reply("SMx"),
        ] {
            let open = name.find('{').expect("a hash tag opens");
            let close = open + name[open..].find('}').expect("and closes");
            let tag = &name[open + 1..close];
            assert_eq!(tag, key.to_string(), "{name}");
            assert_eq!(tag.len(), 22);
            assert!(
                tag.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "base64url: {tag}"
            );
        }
    }

    #[test]
    fn no_digits_of_the_phone_numbers_leak_into_names() {
        let keys = Keys::new("p", &key());
        for name in [
            keys.conversation(),
            keys.lease(),
            keys.marker("SM1"),
            keys.reply("SM1"),
        ] {
            for number in [TO, FROM] {
                let digits = number.trim_start_matches('+');
                // No run of 5 of a number's digits: a hash, not the number, names the key.
                for run in digits.as_bytes().windows(5) {
                    let run = std::str::from_utf8(run).expect("ASCII");
                    assert!(!name.contains(run), "{name} contains {run} of {number}");
                }
            }
        }
    }

    #[test]
    fn same_pair_same_names_other_pair_other_names() {
        let secret =
            SessionSecret::new(*b"a-test-secret-of-at-least-32-bytes!!").expect("long enough");
        let a = Keys::new("p", &ConvKey::derive(&secret, Pair { to: TO, from: FROM }));
        let b = Keys::new("p", &ConvKey::derive(&secret, Pair { to: TO, from: FROM }));
        let c = Keys::new("p", &ConvKey::derive(&secret, Pair { to: FROM, from: TO }));
        assert_eq!(a, b);
        assert_ne!(a.conversation(), c.conversation());
    }

    #[test]
    fn prefixes_with_braces_are_refused() {
        assert!(check_prefix("sms-sessions").is_ok());
        assert!(check_prefix("team:prod").is_ok());
        assert!(check_prefix("a{}b").is_err());
        assert!(check_prefix("{x").is_err());
        assert!(check_prefix("x}").is_err());
    }
}
