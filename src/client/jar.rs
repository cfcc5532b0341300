//! Twilio's cookie jar: one per (To, From) pair, by its published rules.
//!
//! Twilio stores what the webhook's `Set-Cookie` says and sends it back with that pair's next
//! text. A cookie without an expiry lives 4 hours from when it was set; `Max-Age` (which wins
//! over `Expires`, as in RFC 6265) or `Expires` may shorten that but never lengthen it; an
//! expired cookie is never sent. `Set-Cookie` is parsed by the `cookie` crate that
//! tower-cookies re-exports, so the client and the server's ecosystem read it the same way.
//!
//! The jar is plain data (serde) so [`super::jar_file`] can keep it between invocations.

use serde::{Deserialize, Serialize};
use tower_cookies::cookie::Cookie;

use crate::session::Pair;

/// Twilio keeps a cookie at most this long after it was set.
pub const TWILIO_COOKIE_LIFETIME_SECS: u64 = 4 * 3600;

/// Seconds since the Unix epoch: the clock cookie expiry is measured on.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Every pair's cookies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jar {
    #[serde(default, rename = "pair")]
    pairs: Vec<PairCookies>,
}

/// The cookies of one (To, From) pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PairCookies {
    to: String,
    from: String,
    #[serde(default, rename = "cookie")]
    cookies: Vec<StoredCookie>,
}

/// A cookie and the Unix time (seconds) from which it is no longer sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCookie {
    pub name: String,
    pub value: String,
    pub expires: u64,
}

impl StoredCookie {
    fn is_live(&self, now: u64) -> bool {
        self.expires > now
    }
}

/// A `Set-Cookie` header the `cookie` crate could not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ignoring unparsable Set-Cookie {header:?}: {reason}")]
pub struct BadSetCookie {
    pub header: String,
    pub reason: String,
}

impl Jar {
    /// The `Cookie` header for this pair's next request: its live cookies, or `None`.
    pub fn cookie_header(&self, pair: Pair<'_>, now: u64) -> Option<String> {
        let live: Vec<String> = self
            .find(pair)?
            .cookies
            .iter()
            .filter(|cookie| cookie.is_live(now))
            .map(|cookie| format!("{}={}", cookie.name, cookie.value))
            .collect();
        (!live.is_empty()).then(|| live.join("; "))
    }

    /// Stores (or, when already expired, deletes) the cookie of one `Set-Cookie` header.
    pub fn store(
        &mut self,
        pair: Pair<'_>,
        set_cookie: &str,
        now: u64,
    ) -> Result<(), BadSetCookie> {
        let cookie = Cookie::parse(set_cookie).map_err(|error| BadSetCookie {
            header: set_cookie.to_owned(),
            reason: error.to_string(),
        })?;
        let stored = StoredCookie {
            name: cookie.name().to_owned(),
            value: cookie.value().to_owned(),
            expires: expiry(&cookie, now),
        };
        let cookies = &mut self.entry(pair).cookies;
        cookies.retain(|existing| existing.name != stored.name);
        if stored.is_live(now) {
            cookies.push(stored);
        }
        Ok(())
    }

    /// Forgets every cookie of this pair.
    pub fn forget(&mut self, pair: Pair<'_>) {
        self.pairs.retain(|entry| !entry.is(pair));
    }

    /// Gives this pair the cookies it has in `other` (none if it has none there), leaving every
    /// other pair as it is: how one run merges what it learnt into the jar another run may have
    /// changed meanwhile.
    pub fn adopt(&mut self, pair: Pair<'_>, other: &Jar) {
        let here = self.pairs.iter().position(|entry| entry.is(pair));
        match (here, other.find(pair)) {
            (Some(index), Some(theirs)) => self.pairs[index] = theirs.clone(),
            (Some(index), None) => {
                self.pairs.remove(index);
            }
            (None, Some(theirs)) => self.pairs.push(theirs.clone()),
            (None, None) => {}
        }
    }

    /// Drops expired cookies and pairs left without any, so the file does not grow forever.
    pub fn prune(&mut self, now: u64) {
        for entry in &mut self.pairs {
            entry.cookies.retain(|cookie| cookie.is_live(now));
        }
        self.pairs.retain(|entry| !entry.cookies.is_empty());
    }

    fn find(&self, pair: Pair<'_>) -> Option<&PairCookies> {
        self.pairs.iter().find(|entry| entry.is(pair))
    }

    fn entry(&mut self, pair: Pair<'_>) -> &mut PairCookies {
        let index = match self.pairs.iter().position(|entry| entry.is(pair)) {
            Some(index) => index,
            None => {
                self.pairs.push(PairCookies {
                    to: pair.to.to_owned(),
                    from: pair.from.to_owned(),
                    cookies: Vec::new(),
                });
                self.pairs.len() - 1
            }
        };
        &mut self.pairs[index]
    }
}

impl PairCookies {
    fn is(&self, pair: Pair<'_>) -> bool {
        self.to == pair.to && self.from == pair.from
    }
}

/// When a cookie received at `now` stops being sent: its own `Max-Age` or `Expires`, capped
/// at Twilio's 4 hours.
fn expiry(cookie: &Cookie<'_>, now: u64) -> u64 {
    let cap = now.saturating_add(TWILIO_COOKIE_LIFETIME_SECS);
    let own = if let Some(max_age) = cookie.max_age() {
        i64::try_from(now)
            .unwrap_or(i64::MAX)
            .saturating_add(max_age.whole_seconds())
    } else if let Some(expires) = cookie.expires_datetime() {
        expires.unix_timestamp()
    } else {
        return cap;
    };
    u64::try_from(own).unwrap_or(0).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAIR: Pair<'static> = Pair {
        to: "+14155550100",
        from: "+14155550199",
    };
    const OTHER: Pair<'static> = Pair {
        to: "+14155550100",
        from: "+14155550123",
    };
    const NOW: u64 = 1_700_000_000;
    const FOUR_HOURS: u64 = TWILIO_COOKIE_LIFETIME_SECS;

    fn stored(set_cookie: &str) -> Jar {
        let mut jar = Jar::default();
        jar.store(PAIR, set_cookie, NOW).expect("parsable");
        jar
    }

    #[test]
    fn cookies_go_back_to_their_own_pair_only() {
        let jar = stored("sms_session=1.abc.def; Max-Age=14400; Path=/; HttpOnly");
        assert_eq!(
            jar.cookie_header(PAIR, NOW + 1).as_deref(),
            Some("sms_session=1.abc.def")
        );
        assert_eq!(jar.cookie_header(OTHER, NOW + 1), None);
    }

    #[test]
    fn no_expiry_means_four_hours_and_longer_ones_are_capped() {
        for header in [
            "a=1",
            "a=1; Max-Age=86400",
            "a=1; Expires=Wed, 01 Jan 2098 00:00:00 GMT",
        ] {
            let jar = stored(header);
            assert!(
                jar.cookie_header(PAIR, NOW + FOUR_HOURS - 1).is_some(),
                "{header}"
            );
            assert_eq!(jar.cookie_header(PAIR, NOW + FOUR_HOURS), None, "{header}");
        }
    }

    #[test]
    fn shorter_max_age_wins_over_expires() {
        let jar = stored("a=1; Max-Age=90; Expires=Wed, 01 Jan 2098 00:00:00 GMT");
        assert!(jar.cookie_header(PAIR, NOW + 89).is_some());
        assert_eq!(jar.cookie_header(PAIR, NOW + 90), None);
    }

    #[test]
    fn shorter_expires_is_honoured() {
        // 2023-11-14T22:13:20Z is NOW; one minute later:
        let jar = stored("a=1; Expires=Tue, 14 Nov 2023 22:14:20 GMT");
        assert!(jar.cookie_header(PAIR, NOW + 59).is_some());
        assert_eq!(jar.cookie_header(PAIR, NOW + 60), None);
    }

    #[test]
    fn zero_max_age_or_past_expires_deletes() {
        let mut jar = stored("a=1");
        jar.store(PAIR, "b=2", NOW).expect("parsable");
        jar.store(PAIR, "a=; Max-Age=0", NOW).expect("parsable");
        assert_eq!(jar.cookie_header(PAIR, NOW).as_deref(), Some("b=2"));
        jar.store(PAIR, "b=; Expires=Thu, 01 Jan 1970 00:00:00 GMT", NOW)
            .expect("parsable");
        assert_eq!(jar.cookie_header(PAIR, NOW), None);
    }

    #[test]
    fn a_new_value_replaces_the_old_one() {
        let mut jar = stored("a=1");
        jar.store(PAIR, "a=2", NOW + 10).expect("parsable");
        assert_eq!(jar.cookie_header(PAIR, NOW + 10).as_deref(), Some("a=2"));
        assert!(jar.cookie_header(PAIR, NOW + 10 + FOUR_HOURS - 1).is_some());
    }

    #[test]
    fn forget_and_prune() {
        let mut jar = stored("a=1; Max-Age=60");
        jar.store(OTHER, "b=2", NOW).expect("parsable");
        jar.prune(NOW + 60);
        assert_eq!(jar.cookie_header(PAIR, NOW), None, "pruned");
        jar.forget(OTHER);
        assert_eq!(jar, Jar::default());
    }

    #[test]
    fn adopt_takes_one_pair_and_keeps_the_others() {
        let mut disk = stored("a=disk");
        disk.store(OTHER, "b=other", NOW).expect("parsable");
        let mut mine = stored("a=mine");
        mine.store(OTHER, "b=stale", NOW).expect("parsable");
        disk.adopt(PAIR, &mine);
        assert_eq!(disk.cookie_header(PAIR, NOW).as_deref(), Some("a=mine"));
        assert_eq!(disk.cookie_header(OTHER, NOW).as_deref(), Some("b=other"));
    }

    #[test]
    fn adopt_adds_a_new_pair_and_drops_a_forgotten_one() {
        let mut disk = Jar::default();
        disk.store(OTHER, "b=other", NOW).expect("parsable");
        disk.adopt(PAIR, &stored("a=new"));
        assert_eq!(disk.cookie_header(PAIR, NOW).as_deref(), Some("a=new"));
        disk.adopt(OTHER, &Jar::default());
        assert_eq!(disk.cookie_header(OTHER, NOW), None);
        assert_eq!(disk, stored("a=new"));
    }

    #[test]
    fn garbage_is_reported_not_stored() {
        let mut jar = Jar::default();
        assert!(jar.store(PAIR, "no equals sign", NOW).is_err());
        assert_eq!(jar, Jar::default());
    }
}
