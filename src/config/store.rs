//! `session.store` and the `[store]` section: where conversations are kept, and the store's
//! deadlines and windows.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, duration, error};
use crate::store::{StoreConfig, StoreUrl};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub(super) timeout: Option<String>,
    pub(super) retry_horizon: Option<String>,
    pub(super) replay_window: Option<String>,
    pub(super) max_state_bytes: Option<usize>,
    pub(super) prefix: Option<String>,
}

/// Twilio gives a webhook 15 s, and retries (the same MessageSid) within that: a reply must be
/// kept at least this long to answer a retry with the same bytes.
const MIN_RETRY_HORIZON: Duration = Duration::from_secs(15);

impl RawStore {
    /// `url`: `session.store`; `request_timeout`: `server.request_timeout`, which a store call
    /// must fit well inside.
    pub(super) fn validate(
        self,
        url: Option<&str>,
        request_timeout: Duration,
    ) -> Result<StoreConfig, ConfigError> {
        let defaults = StoreConfig::default();
        let url = match url {
            Some(text) => StoreUrl::parse(text).map_err(|why| error("session.store", why))?,
            None => defaults.url,
        };
        let timeout = match self.timeout.as_deref() {
            Some(text) => duration("store.timeout", text)?,
            None => defaults.timeout,
        };
        if url != StoreUrl::Cookie && timeout * 2 >= request_timeout {
            return Err(error(
                "store.timeout",
                "must be less than half of server.request_timeout (a step makes two store calls)",
            ));
        }
        let retry_horizon = match self.retry_horizon.as_deref() {
            Some(text) => duration("store.retry_horizon", text)?,
            None => defaults.retry_horizon,
        };
        if retry_horizon < MIN_RETRY_HORIZON {
            return Err(error(
                "store.retry_horizon",
                "must be at least 15s: Twilio retries a webhook within 15 seconds",
            ));
        }
        let replay_window = match self.replay_window.as_deref() {
            Some(text) => duration("store.replay_window", text)?,
            None => defaults.replay_window,
        };
        if replay_window < retry_horizon {
            return Err(error(
                "store.replay_window",
                "must be at least store.retry_horizon",
            ));
        }
        let max_state_bytes = self.max_state_bytes.unwrap_or(defaults.max_state_bytes);
        if !(1_024..=16 * 1024 * 1024).contains(&max_state_bytes) {
            return Err(error(
                "store.max_state_bytes",
                "must be between 1024 and 16777216",
            ));
        }
        let prefix = self.prefix.unwrap_or(defaults.prefix);
        let is_prefix_char = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
        if prefix.is_empty() || prefix.len() > 64 || !prefix.chars().all(is_prefix_char) {
            return Err(error(
                "store.prefix",
                "must be 1 to 64 of the characters A-Z a-z 0-9 - _ . :",
            ));
        }
        Ok(StoreConfig {
            url,
            timeout,
            retry_horizon,
            replay_window,
            max_state_bytes,
            prefix,
        })
    }
}

/// `session.store` for `check-config`: a Redis URL without its password.
pub(super) fn redacted_url(url: &StoreUrl) -> String {
    match url {
        StoreUrl::Cookie => "cookie".into(),
        StoreUrl::Memory => "memory".into(),
        StoreUrl::Sqlite(path) => format!("sqlite:{}", path.display()),
        StoreUrl::Redis(text) => match (text.find("://"), text.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}<redacted>{}", &text[..scheme + 3], &text[at..])
            }
            _ => text.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_password_is_not_shown() {
        let url = StoreUrl::Redis("redis://app:hunter2@redis:6379/0".into());
        assert_eq!(redacted_url(&url), "redis://<redacted>@redis:6379/0");
        let plain = StoreUrl::Redis("redis://redis:6379".into());
        assert_eq!(redacted_url(&plain), "redis://redis:6379");
    }
}
