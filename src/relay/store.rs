//! Where relay sessions and their bindings live: the same place as conversations
//! (`session.store`: memory, SQLite or Redis; a relay needs one of them).
//!
//! The one invariant: a (proxy, address) pair is bound to at most one live session, across
//! every replica. [`RelayBackend::create`] allocates proxies and claims every binding of the
//! new session in one atomic operation, or claims none and answers
//! [`RelayError::PoolExhausted`]. A binding whose session has closed or ended counts as free.
//!
//! No phone number is in any key: bindings and address indexes are keyed by
//! [`RelayKeys`] (HMAC-SHA256 under `session.secret`). Session records (values) hold the
//! numbers, as they must to forward texts.
//!
//! # Layout
//! - here: the trait, [`AnyRelay`] (the backend `session.store` names), and the pure pieces
//!   every backend shares: [`allocate`] (which number each participant gets), and how a
//!   session opens, closes, slides and counts;
//! - [`memory`]: one mutex; [`sqlite`]: a connection of its own to the conversations' file,
//!   one `BEGIN IMMEDIATE` transaction per create; [`redis`]: reads, then one Lua script that
//!   claims only what is still as read.
//!
//! A closed session keeps its bindings (they now count as free, and still tell its
//! participants that it ended) until its record goes, [`GRACE_MS`] after its end.

pub mod memory;
pub mod redis;
pub mod sqlite;

use std::future::Future;

use super::model::{NewSession, Participant, RelaySession, State, is_whatsapp};

pub use self::memory::MemoryRelay;
pub use self::redis::RedisRelay;
pub use self::sqlite::SqliteRelay;
use crate::store::StoreUrl;

/// Why a relay store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// Some participant has no pool number free for their address.
    #[error("the pool has no free proxy number for participant {0}")]
    PoolExhausted(usize),
    /// A proxy the caller chose is bound to another live session for that address.
    #[error("participant {0}'s proxy is in use for that address")]
    ProxyInUse(usize),
    /// The store did not answer or failed (no secret, no number in the message).
    #[error("relay store unavailable: {0}")]
    Unavailable(String),
}

/// Which sessions `list` gives. `state: Open`: live ones (open, not past their end);
/// `Closed`: the others, those that ended without being closed included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub state: Option<State>,
    /// Sessions with a participant at this address.
    pub address: Option<String>,
}

/// One pool number and how many live sessions use it as a proxy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PoolEntry {
    pub number: String,
    pub in_use: usize,
}

/// The operations of a relay store. Every one is atomic on its own.
pub trait RelayBackend: Send + Sync {
    /// Creates a session: each participant without a `proxy` gets a pool number (in pool order,
    /// the first whose (number, address) binding is free; never the participant's own address;
    /// the same channel as the address), every binding is claimed, all or nothing.
    fn create(
        &self,
        new: NewSession,
        pool: &[String],
        now_ms: u64,
    ) -> impl Future<Output = Result<RelaySession, RelayError>> + Send;

    /// The session bound to (proxy, address), live or not (a closed one is kept until its
    /// record expires, so its participants are told it ended). `None`: never bound, or long gone.
    fn lookup(
        &self,
        proxy: &str,
        address: &str,
    ) -> impl Future<Output = Result<Option<RelaySession>, RelayError>> + Send;

    fn get(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<RelaySession>, RelayError>> + Send;

    /// Up to `limit` sessions matching `filter` after the id `after` (the previous page's
    /// last), in a stable order (by id).
    fn list(
        &self,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> impl Future<Output = Result<Vec<RelaySession>, RelayError>> + Send;

    /// Closes a session (`reason`: `closed`, `ttl`, `agent`, …) and frees its bindings; the
    /// session as closed, or `None` if there is no such session. Closing a closed session
    /// changes nothing and returns it.
    fn close(
        &self,
        id: &str,
        reason: &str,
        now_ms: u64,
    ) -> impl Future<Output = Result<Option<RelaySession>, RelayError>> + Send;

    /// A forwarded text: `last_activity_ms = now_ms` (the sliding TTL starts again), for a
    /// live session and a later `now_ms` only (an ended one is not revived: its bindings may
    /// be another session's by now). An unknown id is no error.
    fn touch(&self, id: &str, now_ms: u64) -> impl Future<Output = Result<(), RelayError>> + Send;

    /// Marks (or clears) the participant at `address` opted out.
    fn set_opted_out(
        &self,
        id: &str,
        address: &str,
        opted_out: bool,
    ) -> impl Future<Output = Result<(), RelayError>> + Send;

    /// Each pool number with the count of live sessions that use it.
    fn pool(
        &self,
        pool: &[String],
        now_ms: u64,
    ) -> impl Future<Output = Result<Vec<PoolEntry>, RelayError>> + Send;
}

/// Keyed hashes for relay keys, so no number is in a key.
#[derive(Clone)]
pub struct RelayKeys {
    secret: Vec<u8>,
}

impl std::fmt::Debug for RelayKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelayKeys(..)")
    }
}

impl RelayKeys {
    pub fn new(secret: &[u8]) -> Self {
        RelayKeys {
            secret: secret.to_vec(),
        }
    }

    /// The binding of (proxy, address): 22 characters of base64url.
    pub fn binding(&self, proxy: &str, address: &str) -> String {
        self.hash(&["bind", proxy, address])
    }

    /// The index of an address's sessions.
    pub fn address(&self, address: &str) -> String {
        self.hash(&["addr", address])
    }

    fn hash(&self, parts: &[&str]) -> String {
        use base64::Engine as _;
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.secret).expect("any key length");
        for part in parts {
            mac.update(part.as_bytes());
            mac.update(b"\0");
        }
        let digest = mac.finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
    }
}

/// How long a session's record (and its bindings) outlives the session's end: its
/// participants are told it ended rather than that they text an unknown number.
pub const GRACE_MS: u64 = 7 * 24 * 3600 * 1000;

/// How often (in the callers' time) the memory and SQLite backends sweep the records past
/// their grace (Redis expires its keys by itself).
const SWEEP_EVERY_MS: u64 = 60_000;

/// Which pool number each participant gets, given which (number, address) bindings are free:
/// the caller's proxy if it is free, else the first pool number of the address's channel that
/// is not the address itself and whose binding is free. Pure: the backends pass `is_free`
/// over their own state, inside their atomic operation.
///
/// Two participants of one session never get the same binding (the admin API refuses
/// duplicate addresses; this holds even without that).
pub fn allocate(
    new: &NewSession,
    pool: &[String],
    mut is_free: impl FnMut(&str, &str) -> Result<bool, RelayError>,
) -> Result<Vec<String>, RelayError> {
    let mut chosen: Vec<(String, &str)> = Vec::with_capacity(new.participants.len());
    for (i, participant) in new.participants.iter().enumerate() {
        let address = participant.address.as_str();
        let mut free = |number: &str| -> Result<bool, RelayError> {
            let ours = chosen.iter().any(|(p, a)| p == number && *a == address);
            Ok(!ours && is_free(number, address)?)
        };
        let proxy = match &participant.proxy {
            Some(proxy) if free(proxy)? => proxy.clone(),
            Some(_) => return Err(RelayError::ProxyInUse(i)),
            None => {
                let mut candidates = pool
                    .iter()
                    .filter(|n| is_whatsapp(n) == is_whatsapp(address) && *n != address);
                let mut found = None;
                for number in &mut candidates {
                    if free(number)? {
                        found = Some(number.clone());
                        break;
                    }
                }
                found.ok_or(RelayError::PoolExhausted(i))?
            }
        };
        chosen.push((proxy, address));
    }
    Ok(chosen.into_iter().map(|(proxy, _)| proxy).collect())
}

/// The pool numbers [`allocate`] may look at for a session: what a backend reads before it
/// allocates (each participant's own proxy, or the pool numbers of its channel).
pub fn candidates<'a>(
    new: &'a NewSession,
    pool: &'a [String],
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    new.participants.iter().flat_map(move |participant| {
        let address = participant.address.as_str();
        let own = participant.proxy.as_deref().map(|proxy| (proxy, address));
        let pooled = participant.proxy.is_none().then(|| {
            pool.iter()
                .filter(move |n| is_whatsapp(n) == is_whatsapp(address) && *n != address)
                .map(move |n| (n.as_str(), address))
        });
        own.into_iter().chain(pooled.into_iter().flatten())
    })
}

/// A new session's id: `RS` and 128 random bits in lowercase hex.
pub fn new_id() -> String {
    format!("RS{:032x}", rand::random::<u128>())
}

/// The session `create` stores, once every participant has its proxy.
pub fn open_session(
    new: NewSession,
    proxies: Vec<String>,
    id: String,
    now_ms: u64,
) -> RelaySession {
    let participants = new
        .participants
        .into_iter()
        .zip(proxies)
        .map(|(p, proxy)| Participant {
            address: p.address,
            label: p.label,
            proxy,
            opted_out: false,
        })
        .collect();
    RelaySession {
        id,
        state: State::Open,
        participants,
        ttl_secs: new.ttl_secs,
        expires_at_ms: new.expires_at_ms,
        created_at_ms: now_ms,
        last_activity_ms: now_ms,
        closed_reason: None,
        handoff_from: new.handoff_from,
    }
}

/// When a session ended (or will end) as its record's lifetime counts it: [`RelaySession::ends_at_ms`]
/// while open; the earlier of that and `closed_at_ms` for one closed then.
pub fn record_end(session: &RelaySession, closed_at_ms: Option<u64>) -> u64 {
    let ends = session.ends_at_ms();
    closed_at_ms.map_or(ends, |closed| closed.min(ends))
}

/// Closes `session` at `now_ms` (nothing if closed already); its new record end if it changed.
pub fn close_session(session: &mut RelaySession, reason: &str, now_ms: u64) -> Option<u64> {
    if session.state == State::Closed {
        return None;
    }
    session.state = State::Closed;
    session.closed_reason = Some(reason.to_owned());
    Some(record_end(session, Some(now_ms)))
}

/// A forwarded text at `now_ms`: slides a live session's TTL; whether it changed.
/// A session that ended stays ended (its bindings may belong to another one by now).
pub fn touch_session(session: &mut RelaySession, now_ms: u64) -> bool {
    if !session.is_live(now_ms) || now_ms <= session.last_activity_ms {
        return false;
    }
    session.last_activity_ms = now_ms;
    true
}

/// Sets `opted_out` on the participants at `address`; whether anything changed.
pub fn opt_out(session: &mut RelaySession, address: &str, opted_out: bool) -> bool {
    let mut changed = false;
    for p in session
        .participants
        .iter_mut()
        .filter(|p| p.address == address)
    {
        changed |= p.opted_out != opted_out;
        p.opted_out = opted_out;
    }
    changed
}

/// Whether `session` is in `filter` at `now_ms`. `State::Open` means live (open and not past
/// its end); `State::Closed` the rest, sessions that ended without being closed included.
pub fn matches(filter: &Filter, session: &RelaySession, now_ms: u64) -> bool {
    let state_ok = match filter.state {
        None => true,
        Some(State::Open) => session.is_live(now_ms),
        Some(State::Closed) => !session.is_live(now_ms),
    };
    let address_ok = filter
        .address
        .as_ref()
        .is_none_or(|a| session.participants.iter().any(|p| &p.address == a));
    state_ok && address_ok
}

/// Adds the live sessions among `sessions` to the pool counts (each session once per number).
pub fn count_pool<'a>(
    counts: &mut [PoolEntry],
    sessions: impl IntoIterator<Item = &'a RelaySession>,
    now_ms: u64,
) {
    let at: std::collections::HashMap<String, usize> = counts
        .iter()
        .enumerate()
        .map(|(i, entry)| (entry.number.clone(), i))
        .collect();
    let mut seen = Vec::new();
    for session in sessions.into_iter().filter(|s| s.is_live(now_ms)) {
        seen.clear();
        seen.extend(session.participants.iter().filter_map(|p| at.get(&p.proxy)));
        seen.sort_unstable();
        seen.dedup();
        for &&i in &seen {
            counts[i].in_use += 1;
        }
    }
}

/// Every pool number with a count of 0.
pub fn empty_pool(pool: &[String]) -> Vec<PoolEntry> {
    pool.iter()
        .map(|number| PoolEntry {
            number: number.clone(),
            in_use: 0,
        })
        .collect()
}

/// A session record that does not parse: never echoed (it holds numbers).
fn corrupt(what: &str) -> RelayError {
    RelayError::Unavailable(format!("a relay session record is unreadable ({what})"))
}

/// A session record as the SQLite and Redis backends store it: its JSON.
fn to_json(session: &RelaySession) -> Result<String, RelayError> {
    serde_json::to_string(session).map_err(|e| RelayError::Unavailable(e.to_string()))
}

/// A stored record read back; `what` names where it was kept if it does not parse.
fn from_json(body: &str, what: &str) -> Result<RelaySession, RelayError> {
    serde_json::from_str(body).map_err(|_| corrupt(what))
}

/// `list`'s visitor, for a backend that visits sessions in id order: keeps in `page` those in
/// `filter`, and answers whether to go on (until `page` holds `limit`; a `limit` of 0 is the
/// caller's to answer without a scan).
fn keep_page<'a>(
    filter: &'a Filter,
    limit: usize,
    now_ms: u64,
    page: &'a mut Vec<RelaySession>,
) -> impl FnMut(RelaySession) -> bool + 'a {
    move |session| {
        if matches(filter, &session, now_ms) {
            page.push(session);
        }
        page.len() < limit
    }
}

/// The relay store `session.store` names.
pub enum AnyRelay {
    Memory(Box<MemoryRelay>),
    Sqlite(SqliteRelay),
    Redis(Box<RedisRelay>),
}

impl std::fmt::Debug for AnyRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory(_) => "AnyRelay::Memory",
            Self::Sqlite(_) => "AnyRelay::Sqlite",
            Self::Redis(_) => "AnyRelay::Redis",
        })
    }
}

impl AnyRelay {
    /// Opens the relay's store beside the conversations' (`session.store`): its own state in
    /// the process, its own connection to the SQLite file (open the conversation store
    /// first), or its own Redis connection with keys under `prefix`. The error never holds
    /// a Redis URL; refusing `cookie`, it names `session.store`.
    pub async fn open(url: &StoreUrl, keys: RelayKeys, prefix: &str) -> Result<AnyRelay, String> {
        match url {
            StoreUrl::Cookie => Err("session.store = \"cookie\" keeps nothing on the server; \
                 a relay (relay.numbers) needs session.store = \"memory\", \"sqlite:PATH\" \
                 or \"redis://…\""
                .into()),
            StoreUrl::Memory => Ok(Self::Memory(Box::new(MemoryRelay::new(keys)))),
            StoreUrl::Sqlite(path) => SqliteRelay::open(path, keys)
                .await
                .map(Self::Sqlite)
                .map_err(|e| format!("{}: the relay's tables: {e}", path.display())),
            StoreUrl::Redis(url) => RedisRelay::connect(url, keys, prefix, redis::TIMEOUT)
                .await
                .map(|r| Self::Redis(Box::new(r)))
                .map_err(|e| format!("the relay's Redis connection: {e}")),
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $backend:ident => $call:expr) => {
        match $self {
            AnyRelay::Memory($backend) => $call.await,
            AnyRelay::Sqlite($backend) => $call.await,
            AnyRelay::Redis($backend) => $call.await,
        }
    };
}

impl RelayBackend for AnyRelay {
    async fn create(
        &self,
        new: NewSession,
        pool: &[String],
        now_ms: u64,
    ) -> Result<RelaySession, RelayError> {
        dispatch!(self, b => b.create(new, pool, now_ms))
    }

    async fn lookup(&self, proxy: &str, address: &str) -> Result<Option<RelaySession>, RelayError> {
        dispatch!(self, b => b.lookup(proxy, address))
    }

    async fn get(&self, id: &str) -> Result<Option<RelaySession>, RelayError> {
        dispatch!(self, b => b.get(id))
    }

    async fn list(
        &self,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<RelaySession>, RelayError> {
        dispatch!(self, b => b.list(filter, after, limit, now_ms))
    }

    async fn close(
        &self,
        id: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<Option<RelaySession>, RelayError> {
        dispatch!(self, b => b.close(id, reason, now_ms))
    }

    async fn touch(&self, id: &str, now_ms: u64) -> Result<(), RelayError> {
        dispatch!(self, b => b.touch(id, now_ms))
    }

    async fn set_opted_out(
        &self,
        id: &str,
        address: &str,
        opted_out: bool,
    ) -> Result<(), RelayError> {
        dispatch!(self, b => b.set_opted_out(id, address, opted_out))
    }

    async fn pool(&self, pool: &[String], now_ms: u64) -> Result<Vec<PoolEntry>, RelayError> {
        dispatch!(self, b => b.pool(pool, now_ms))
    }
}

/// What the backends' unit tests share.
#[cfg(test)]
mod testing {
    use super::RelayKeys;
    use crate::relay::model::{NewParticipant, NewSession};

    pub const T0: u64 = 1_700_000_000_000;

    pub fn keys() -> RelayKeys {
        RelayKeys::new(b"a-test-relay-secret-0123456789abcdef")
    }

    /// A pool of two numbers.
    pub fn pool() -> Vec<String> {
        vec!["+15550000001".into(), "+15550000002".into()]
    }

    /// A 60 s session of `participants` (address, and the proxy asked for if any).
    pub fn asked(participants: &[(&str, Option<&str>)]) -> NewSession {
        NewSession {
            participants: participants
                .iter()
                .map(|(address, proxy)| NewParticipant {
                    address: (*address).into(),
                    label: None,
                    proxy: proxy.map(str::to_owned),
                })
                .collect(),
            ttl_secs: 60,
            expires_at_ms: None,
            handoff_from: None,
        }
    }

    /// A 60 s session of `addresses`, the pool choosing every proxy.
    pub fn new(addresses: &[&str]) -> NewSession {
        let participants: Vec<(&str, Option<&str>)> =
            addresses.iter().map(|a| (*a, None)).collect();
        asked(&participants)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{T0, asked};
    use super::*;

    fn pool(numbers: &[&str]) -> Vec<String> {
        numbers.iter().map(|n| (*n).to_owned()).collect()
    }

    const POOL: [&str; 4] = [
        "whatsapp:+15550001",
        "+15550002",
        "+15550003",
        "whatsapp:+15550004",
    ];

    #[test]
    fn allocation_takes_the_first_free_number_of_the_channel() {
        let new = asked(&[("+1A", None), ("whatsapp:+1B", None)]);
        let taken = [("+15550002", "+1A"), ("whatsapp:+15550001", "whatsapp:+1B")];
        let got = allocate(&new, &pool(&POOL), |p, a| Ok(!taken.contains(&(p, a))));
        assert_eq!(got, Ok(pool(&["+15550003", "whatsapp:+15550004"])));
    }

    #[test]
    fn allocation_never_gives_an_address_its_own_number() {
        let new = asked(&[("+15550002", None), ("+15550003", None)]);
        let got = allocate(&new, &pool(&POOL), |_, _| Ok(true));
        assert_eq!(got, Ok(pool(&["+15550003", "+15550002"])));
    }

    #[test]
    fn allocation_names_the_participant_it_cannot_serve() {
        let new = asked(&[("+1A", None), ("+1B", Some("+15550003")), ("+1C", None)]);
        let all_free = allocate(&new, &pool(&POOL), |_, _| Ok(true));
        assert_eq!(all_free, Ok(pool(&["+15550002", "+15550003", "+15550002"])));
        let in_use = allocate(
            &new,
            &pool(&POOL),
            |p, a| Ok((p, a) != ("+15550003", "+1B")),
        );
        assert_eq!(in_use, Err(RelayError::ProxyInUse(1)));
        let no_c = allocate(&new, &pool(&POOL), |_, a| Ok(a != "+1C"));
        assert_eq!(no_c, Err(RelayError::PoolExhausted(2)));
        let failing = allocate(&new, &pool(&POOL), |_, _| {
            Err(RelayError::Unavailable("down".into()))
        });
        assert_eq!(failing, Err(RelayError::Unavailable("down".into())));
    }

    #[test]
    fn one_session_never_claims_a_binding_twice() {
        let new = asked(&[("+1A", None), ("+1A", None), ("+1A", Some("+15550002"))]);
        let got = allocate(&new, &pool(&POOL), |_, _| Ok(true));
        assert_eq!(got, Err(RelayError::ProxyInUse(2)));
        let two = asked(&[("+1A", None), ("+1A", None)]);
        let got = allocate(&two, &pool(&POOL), |_, _| Ok(true));
        assert_eq!(got, Ok(pool(&["+15550002", "+15550003"])));
    }

    #[test]
    fn candidates_are_every_binding_allocation_may_look_at() {
        let new = asked(&[("+1A", None), ("whatsapp:+1B", Some("whatsapp:+15550004"))]);
        let pool = pool(&POOL);
        let all: Vec<(&str, &str)> = candidates(&new, &pool).collect();
        let want = [
            ("+15550002", "+1A"),
            ("+15550003", "+1A"),
            ("whatsapp:+15550004", "whatsapp:+1B"),
        ];
        assert_eq!(all, want);
    }

    #[test]
    fn a_session_opens_with_its_proxies_and_the_time() {
        let new = asked(&[("+1A", None), ("+1B", None)]);
        let id = new_id();
        assert!(id.starts_with("RS") && id.len() == 34 && id != new_id());
        let s = open_session(new, pool(&["+1P", "+1Q"]), id.clone(), T0);
        assert_eq!((s.id.as_str(), s.state), (id.as_str(), State::Open));
        assert_eq!((s.created_at_ms, s.last_activity_ms), (T0, T0));
        let proxies: Vec<&str> = s.participants.iter().map(|p| p.proxy.as_str()).collect();
        assert_eq!(proxies, ["+1P", "+1Q"]);
        assert_eq!(record_end(&s, None), T0 + 60_000);
        assert_eq!(record_end(&s, Some(T0 + 5)), T0 + 5);
        assert_eq!(record_end(&s, Some(T0 + 90_000)), T0 + 60_000);
    }

    #[test]
    fn close_touch_and_opt_out_change_what_they_should() {
        let mut s = open_session(
            asked(&[("+1A", None), ("+1B", None)]),
            pool(&["+1P", "+1P"]),
            new_id(),
            T0,
        );
        assert!(touch_session(&mut s, T0 + 10_000));
        assert!(!touch_session(&mut s, T0 + 5_000), "never back");
        assert!(!touch_session(&mut s, T0 + 70_000), "never revived");
        assert_eq!(s.last_activity_ms, T0 + 10_000);
        assert!(opt_out(&mut s, "+1B", true));
        assert!(!opt_out(&mut s, "+1B", true));
        assert!(!opt_out(&mut s, "+1Z", true));
        assert_eq!(
            close_session(&mut s, "agent", T0 + 20_000),
            Some(T0 + 20_000)
        );
        assert_eq!(close_session(&mut s, "closed", T0 + 30_000), None);
        assert_eq!(s.closed_reason.as_deref(), Some("agent"));
        assert!(!touch_session(&mut s, T0 + 25_000));
    }

    #[test]
    fn filters_and_pool_counts_go_by_liveness() {
        let open = open_session(
            asked(&[("+1A", None), ("+1B", None)]),
            pool(&["+1P", "+1P"]),
            new_id(),
            T0,
        );
        let mut closed = open_session(
            asked(&[("+1A", None), ("+1C", None)]),
            pool(&["+1Q", "+1P"]),
            new_id(),
            T0,
        );
        close_session(&mut closed, "closed", T0);
        let filter = |state, address: Option<&str>| Filter {
            state,
            address: address.map(str::to_owned),
        };
        assert!(matches(&filter(Some(State::Open), Some("+1B")), &open, T0));
        assert!(!matches(&filter(Some(State::Open), Some("+1C")), &open, T0));
        assert!(matches(
            &filter(Some(State::Closed), None),
            &open,
            T0 + 60_000
        ));
        assert!(matches(&filter(Some(State::Closed), None), &closed, T0));
        let mut counts = empty_pool(&pool(&["+1P", "+1Q", "+1R"]));
        count_pool(&mut counts, [&open, &closed], T0);
        let in_use: Vec<usize> = counts.iter().map(|e| e.in_use).collect();
        assert_eq!(in_use, [1, 0, 0], "once per session, live ones only");
    }

    #[test]
    fn keys_are_keyed_hashes_of_22_characters() {
        let keys = RelayKeys::new(b"one-secret");
        let binding = keys.binding("+14155550100", "+14155550199");
        assert_eq!(binding.len(), 22);
        assert_ne!(binding, keys.binding("+14155550199", "+14155550100"));
        assert_ne!(
            binding,
            RelayKeys::new(b"another").binding("+14155550100", "+14155550199")
        );
        assert_ne!(
            keys.address("+14155550199"),
            keys.binding("+14155550199", "")
        );
        assert_eq!(format!("{keys:?}"), "RelayKeys(..)");
    }

    #[tokio::test]
    async fn cookie_is_no_store_for_a_relay() {
        let refused = AnyRelay::open(&StoreUrl::Cookie, RelayKeys::new(b"k"), "p").await;
        assert!(refused.is_err_and(|e| e.contains("session.store")));
        let memory = AnyRelay::open(&StoreUrl::Memory, RelayKeys::new(b"k"), "p").await;
        assert!(matches!(memory, Ok(AnyRelay::Memory(_))));
    }
}
