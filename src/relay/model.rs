//! The relay's data: sessions of participants who text each other through proxy numbers.

use serde::{Deserialize, Serialize};

/// A relay session as stored and as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelaySession {
    /// `RS` + 32 lowercase hex digits (128 random bits).
    pub id: String,
    pub state: State,
    pub participants: Vec<Participant>,
    /// Sliding: the session closes this many seconds after its last forwarded text.
    pub ttl_secs: u64,
    /// Absolute end (unix ms), if any: the earlier of the two wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    pub created_at_ms: u64,
    pub last_activity_ms: u64,
    /// Why it closed: `closed` (admin API), `ttl`, `expired`, `agent` (the close word), …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_reason: Option<String>,
    /// The flow hand-off that opened it (`connect` node), if any: the texter's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_from: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Open,
    Closed,
}

/// One person in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// E.164 (`+14155550101`) or `whatsapp:+14155550101`.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The number this participant texts (and is texted from).
    pub proxy: String,
    #[serde(default)]
    pub opted_out: bool,
}

/// What the admin API (or a `connect` node) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub participants: Vec<NewParticipant>,
    pub ttl_secs: u64,
    pub expires_at_ms: Option<u64>,
    pub handoff_from: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewParticipant {
    pub address: String,
    pub label: Option<String>,
    /// A proxy chosen by the caller (a `connect` node gives the texter the number they already
    /// text); `None`: allocated from the pool.
    pub proxy: Option<String>,
}

impl RelaySession {
    /// When it ends by itself (unix ms): the sliding TTL or the absolute expiry, the earlier.
    pub fn ends_at_ms(&self) -> u64 {
        let sliding = self
            .last_activity_ms
            .saturating_add(self.ttl_secs.saturating_mul(1000));
        self.expires_at_ms.map_or(sliding, |at| at.min(sliding))
    }

    /// Open and not past its end at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.state == State::Open && now_ms < self.ends_at_ms()
    }

    /// The participant who texts from `address` to `proxy`.
    pub fn participant(&self, proxy: &str, address: &str) -> Option<&Participant> {
        self.participants
            .iter()
            .find(|p| p.proxy == proxy && p.address == address)
    }
}

/// The channel of an address or number: `whatsapp:` or SMS.
pub fn is_whatsapp(address: &str) -> bool {
    address.starts_with("whatsapp:")
}
