//! The relay's store ([`RelayBackend`]) against every backend: one conformance suite run on
//! memory, SQLite (a scratch file, beside the conversation store as a server opens it) and
//! Redis (a `redis-server` of the test's own, see `common/redis_server.rs`); random
//! create/close sequences against an allocation model; 32 creates racing for the last free
//! number (on SQLite and Redis through two separately opened stores, as two replicas); and no
//! phone number in any Redis key.

#[path = "common/ci.rs"]
mod ci;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use redis_server::RedisServer;
use sms_sessions::relay::{
    AnyRelay, Filter, NewParticipant, NewSession, PoolEntry, RelayBackend, RelayError, RelayKeys,
    RelaySession, State,
};
use sms_sessions::store::{SqliteStore, StoreUrl};

const T0: u64 = 1_700_000_000_000;
const HOUR: u64 = 3600;

// The pool: SMS numbers and WhatsApp senders.
const S1: &str = "+15005550101";
const S2: &str = "+15005550102";
const S3: &str = "+15005550103";
const W1: &str = "whatsapp:+15005550201";
const W2: &str = "whatsapp:+15005550202";

// Participants.
const A: &str = "+447700900301";
const B: &str = "+447700900302";
const C: &str = "+447700900303";
const D: &str = "+447700900304";
const E: &str = "+447700900305";
const F: &str = "+447700900306";
const WA: &str = "whatsapp:+33612345607";
const WB: &str = "whatsapp:+33612345608";

fn keys() -> RelayKeys {
    RelayKeys::new(b"relay-store-test-secret-0123456789abcdef")
}

fn pool(numbers: &[&str]) -> Vec<String> {
    numbers.iter().map(|n| (*n).to_owned()).collect()
}

fn person(address: &str) -> NewParticipant {
    NewParticipant {
        address: address.into(),
        label: None,
        proxy: None,
    }
}

fn via(address: &str, proxy: &str) -> NewParticipant {
    NewParticipant {
        proxy: Some(proxy.into()),
        ..person(address)
    }
}

fn new(participants: Vec<NewParticipant>, ttl_secs: u64) -> NewSession {
    NewSession {
        participants,
        ttl_secs,
        expires_at_ms: None,
        handoff_from: None,
    }
}

fn pair(a: &str, b: &str) -> NewSession {
    new(vec![person(a), person(b)], HOUR)
}

fn proxies(session: &RelaySession) -> Vec<&str> {
    session
        .participants
        .iter()
        .map(|p| p.proxy.as_str())
        .collect()
}

async fn create(relay: &AnyRelay, new: NewSession, pool: &[String], now: u64) -> RelaySession {
    relay.create(new, pool, now).await.expect("create")
}

async fn all(relay: &AnyRelay, now: u64) -> Vec<RelaySession> {
    let filter = Filter::default();
    relay
        .list(&filter, None, usize::MAX, now)
        .await
        .expect("list")
}

// ---- Backends -----------------------------------------------------------------------------

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!(
            "sms-sessions-relay-store-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&path).expect("create the scratch directory");
        Self(path)
    }

    fn file(&self) -> PathBuf {
        self.0.join(format!("state-{:x}.db", rand::random::<u64>()))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where each check gets a fresh, empty relay store.
enum Fresh {
    Memory,
    /// A new file per relay, the conversation store opened on it first (as a server does),
    /// and kept open beside it.
    Sqlite(Scratch, Mutex<Vec<SqliteStore>>),
    /// A new prefix per relay on one server.
    Redis(String),
}

impl Fresh {
    fn sqlite() -> Self {
        Self::Sqlite(Scratch::new(), Mutex::default())
    }

    async fn relay(&self) -> AnyRelay {
        match self {
            Self::Memory => AnyRelay::open(&StoreUrl::Memory, keys(), "unused").await,
            Self::Sqlite(scratch, stores) => {
                let path = scratch.file();
                let store = SqliteStore::open(&path).expect("the conversation store opens");
                stores.lock().expect("not poisoned").push(store);
                AnyRelay::open(&StoreUrl::Sqlite(path), keys(), "unused").await
            }
            Self::Redis(url) => {
                let prefix = format!("t{:x}", rand::random::<u32>());
                AnyRelay::open(&StoreUrl::Redis(url.clone()), keys(), &prefix).await
            }
        }
        .expect("the relay store opens")
    }
}

// ---- The suite ----------------------------------------------------------------------------

/// Every check, each on a fresh store.
async fn conformance(fresh: &Fresh) {
    allocates_by_channel_in_pool_order(&fresh.relay().await).await;
    the_same_address_takes_the_next_number(&fresh.relay().await).await;
    exhaustion_claims_nothing(&fresh.relay().await).await;
    a_proxy_in_use_is_refused(&fresh.relay().await).await;
    close_frees_the_bindings_and_lookup_still_finds_it(&fresh.relay().await).await;
    a_session_past_its_end_frees_its_bindings(&fresh.relay().await).await;
    touch_slides_the_ttl(&fresh.relay().await).await;
    opting_out_marks_the_participant(&fresh.relay().await).await;
    unknown_ids_and_pairs_are_none(&fresh.relay().await).await;
    list_filters_and_pages_in_id_order(&fresh.relay().await).await;
    pool_counts_live_sessions(&fresh.relay().await).await;
}

async fn allocates_by_channel_in_pool_order(relay: &AnyRelay) {
    let pool = pool(&[W1, S1, W2, S2]);
    let mut asked = new(vec![person(A), person(WA)], HOUR);
    asked.participants[0].label = Some("Buyer".into());
    asked.expires_at_ms = Some(T0 + 2 * HOUR * 1000);
    asked.handoff_from = Some(A.into());
    let s = create(relay, asked, &pool, T0).await;
    assert_eq!(
        proxies(&s),
        [S1, W1],
        "the first number of each address's channel"
    );
    assert!(s.id.starts_with("RS") && s.id.len() == 34, "{}", s.id);
    assert!(
        s.id[2..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(s.state, State::Open);
    assert_eq!(s.participants[0].label.as_deref(), Some("Buyer"));
    assert!(!s.participants.iter().any(|p| p.opted_out));
    assert_eq!(
        (s.ttl_secs, s.expires_at_ms),
        (HOUR, Some(T0 + 2 * HOUR * 1000))
    );
    assert_eq!((s.created_at_ms, s.last_activity_ms), (T0, T0));
    assert_eq!(
        (s.closed_reason.as_deref(), s.handoff_from.as_deref()),
        (None, Some(A))
    );
    assert_eq!(relay.get(&s.id).await, Ok(Some(s.clone())));
    assert_eq!(relay.lookup(S1, A).await, Ok(Some(s.clone())));
    assert_eq!(relay.lookup(W1, WA).await, Ok(Some(s.clone())));
    assert_eq!(relay.lookup(S1, WA).await, Ok(None), "never bound");
    // Never a participant's own number, even when it is in the pool and its binding free.
    let own = create(relay, pair(S1, B), &pool, T0).await;
    assert_eq!(proxies(&own), [S2, S1]);
}

async fn the_same_address_takes_the_next_number(relay: &AnyRelay) {
    let pool = pool(&[S1, S2, S3]);
    let first = create(relay, pair(A, B), &pool, T0).await;
    assert_eq!(
        proxies(&first),
        [S1, S1],
        "one number serves different addresses"
    );
    let second = create(relay, pair(A, C), &pool, T0).await;
    assert_eq!(
        proxies(&second),
        [S2, S1],
        "A's binding to S1 is taken; C's is free"
    );
    let third = create(relay, pair(C, A), &pool, T0).await;
    assert_eq!(proxies(&third), [S2, S3]);
    assert_eq!(relay.lookup(S1, A).await, Ok(Some(first)));
    assert_eq!(relay.lookup(S2, A).await, Ok(Some(second)));
    assert_eq!(relay.lookup(S3, A).await, Ok(Some(third)));
}

async fn exhaustion_claims_nothing(relay: &AnyRelay) {
    let pool = pool(&[S1, S2]);
    create(relay, pair(A, B), &pool, T0).await;
    create(relay, pair(A, C), &pool, T0).await;
    // D would get S1; A has no number left: nothing of it may stay.
    let refused = relay.create(pair(D, A), &pool, T0).await;
    assert_eq!(refused, Err(RelayError::PoolExhausted(1)));
    let refused = relay.create(pair(A, E), &pool, T0).await;
    assert_eq!(refused, Err(RelayError::PoolExhausted(0)));
    assert_eq!(
        relay.lookup(S1, D).await,
        Ok(None),
        "a partial claim survived"
    );
    assert_eq!(all(relay, T0).await.len(), 2);
    let counts = relay.pool(&pool, T0).await.expect("pool");
    assert_eq!(counts, entries(&[(S1, 2), (S2, 1)]));
    let d = create(relay, pair(D, E), &pool, T0).await;
    assert_eq!(proxies(&d), [S1, S1], "D's binding to S1 was left free");
    // A WhatsApp address finds no number in an SMS-only pool.
    let refused = relay.create(pair(F, WA), &pool, T0).await;
    assert_eq!(refused, Err(RelayError::PoolExhausted(1)));
}

async fn a_proxy_in_use_is_refused(relay: &AnyRelay) {
    let pool = pool(&[S1, S2]);
    let first = create(relay, new(vec![via(A, S2), person(B)], HOUR), &pool, T0).await;
    assert_eq!(proxies(&first), [S2, S1]);
    let refused = relay
        .create(new(vec![person(C), via(A, S2)], HOUR), &pool, T0)
        .await;
    assert_eq!(refused, Err(RelayError::ProxyInUse(1)));
    assert_eq!(
        relay.lookup(S1, C).await,
        Ok(None),
        "a partial claim survived"
    );
    let other = create(relay, new(vec![person(C), via(A, S1)], HOUR), &pool, T0).await;
    assert_eq!(proxies(&other), [S1, S1]);
}

async fn close_frees_the_bindings_and_lookup_still_finds_it(relay: &AnyRelay) {
    let pool = pool(&[S1]);
    let open = create(relay, pair(A, B), &pool, T0).await;
    let closed = relay
        .close(&open.id, "closed", T0 + 10)
        .await
        .expect("close");
    let closed = closed.expect("the session exists");
    assert_eq!(closed.state, State::Closed);
    assert_eq!(closed.closed_reason.as_deref(), Some("closed"));
    assert_eq!(closed.participants, open.participants);
    assert_eq!(relay.get(&open.id).await, Ok(Some(closed.clone())));
    assert_eq!(
        relay.lookup(S1, A).await,
        Ok(Some(closed.clone())),
        "told it ended"
    );
    let again = relay.close(&open.id, "agent", T0 + 20).await;
    assert_eq!(
        again,
        Ok(Some(closed.clone())),
        "closing twice changes nothing"
    );
    let next = create(relay, pair(A, C), &pool, T0 + 30).await;
    assert_eq!(proxies(&next), [S1, S1], "the bindings are free again");
    assert_eq!(relay.lookup(S1, A).await, Ok(Some(next)));
    assert_eq!(relay.lookup(S1, B).await, Ok(Some(closed)));
}

async fn a_session_past_its_end_frees_its_bindings(relay: &AnyRelay) {
    let pool = pool(&[S1, S2, S3]);
    let short = create(relay, new(vec![person(A), person(B)], 60), &pool, T0).await;
    let during = create(relay, pair(A, C), &pool, T0 + 59_999).await;
    assert_eq!(
        proxies(&during),
        [S2, S1],
        "still live a millisecond before its end"
    );
    let after = create(relay, pair(A, D), &pool, T0 + 60_000).await;
    assert_eq!(proxies(&after), [S1, S1], "ended at last_activity + ttl");
    assert_eq!(relay.lookup(S1, B).await, Ok(Some(short)), "still findable");
    // The absolute expiry wins when it is earlier.
    let mut until = new(vec![person(E), person(F)], HOUR);
    until.expires_at_ms = Some(T0 + 1_000);
    create(relay, until, &pool, T0).await;
    let before = create(relay, pair(E, B), &pool, T0 + 999).await;
    assert_eq!(proxies(&before)[0], S2);
    let once_expired = create(relay, pair(E, C), &pool, T0 + 1_000).await;
    assert_eq!(proxies(&once_expired)[0], S1);
}

async fn touch_slides_the_ttl(relay: &AnyRelay) {
    let pool = pool(&[S1, S2, S3]);
    let s = create(relay, new(vec![person(A), person(B)], 60), &pool, T0).await;
    relay.touch(&s.id, T0 + 50_000).await.expect("touch");
    let touched = relay.get(&s.id).await.expect("get").expect("there");
    assert_eq!(touched.last_activity_ms, T0 + 50_000);
    assert_eq!(touched.ends_at_ms(), T0 + 110_000);
    relay
        .touch(&s.id, T0 + 40_000)
        .await
        .expect("an older touch");
    let kept = relay.get(&s.id).await.expect("get").expect("there");
    assert_eq!(kept.last_activity_ms, T0 + 50_000, "time never goes back");
    let counts = relay.pool(&pool, T0 + 100_000).await.expect("pool");
    assert_eq!(
        counts,
        entries(&[(S1, 1), (S2, 0), (S3, 0)]),
        "still in use"
    );
    let during = create(relay, pair(A, C), &pool, T0 + 100_000).await;
    assert_eq!(proxies(&during)[0], S2, "live past its first end");
    let after = create(relay, pair(A, D), &pool, T0 + 110_000).await;
    assert_eq!(proxies(&after)[0], S1);
    // An ended session is not revived (its bindings may be someone else's by now).
    relay.touch(&s.id, T0 + 120_000).await.expect("touch");
    let ended = relay.get(&s.id).await.expect("get").expect("there");
    assert_eq!(ended.last_activity_ms, T0 + 50_000);
}

async fn opting_out_marks_the_participant(relay: &AnyRelay) {
    let s = create(relay, pair(A, B), &pool(&[S1]), T0).await;
    relay.set_opted_out(&s.id, B, true).await.expect("opt out");
    let got = relay.get(&s.id).await.expect("get").expect("there");
    let flags: Vec<bool> = got.participants.iter().map(|p| p.opted_out).collect();
    assert_eq!(flags, [false, true]);
    assert_eq!(relay.lookup(S1, A).await, Ok(Some(got.clone())));
    relay.set_opted_out(&s.id, B, true).await.expect("again");
    relay.set_opted_out(&s.id, B, false).await.expect("opt in");
    assert_eq!(relay.get(&s.id).await, Ok(Some(s.clone())));
    // On a closed session too (STOP after the end still counts).
    let closed = relay.close(&s.id, "closed", T0 + 1).await.expect("close");
    relay.set_opted_out(&s.id, A, true).await.expect("opt out");
    let got = relay.get(&s.id).await.expect("get").expect("there");
    assert!(got.participants[0].opted_out);
    assert_eq!(got.state, State::Closed);
    assert_eq!(got.closed_reason, closed.and_then(|c| c.closed_reason));
}

async fn unknown_ids_and_pairs_are_none(relay: &AnyRelay) {
    let nobody = "RS00000000000000000000000000000000";
    assert_eq!(relay.get(nobody).await, Ok(None));
    assert_eq!(relay.close(nobody, "closed", T0).await, Ok(None));
    assert_eq!(relay.touch(nobody, T0).await, Ok(()));
    assert_eq!(relay.set_opted_out(nobody, A, true).await, Ok(()));
    assert_eq!(relay.lookup(S1, A).await, Ok(None));
    assert!(all(relay, T0).await.is_empty());
    let counts = relay.pool(&pool(&[S1, W1]), T0).await;
    assert_eq!(counts, Ok(entries(&[(S1, 0), (W1, 0)])));
    let s = create(relay, new(Vec::new(), HOUR), &pool(&[]), T0).await;
    assert!(
        s.participants.is_empty(),
        "an empty session needs no number"
    );
}

async fn list_filters_and_pages_in_id_order(relay: &AnyRelay) {
    let pool = pool(&[S1, S2, S3]);
    let mut made = Vec::new();
    for (a, b) in [(A, B), (A, C), (D, E), (A, F), (C, D)] {
        made.push(create(relay, pair(a, b), &pool, T0).await);
    }
    for i in [1, 4] {
        let closed = relay
            .close(&made[i].id, "closed", T0 + 1)
            .await
            .expect("close");
        made[i] = closed.expect("there");
    }
    made.sort_by(|x, y| x.id.cmp(&y.id));
    let now = T0 + 2;
    // Pages of two, each after the last id of the one before: all of them, once, in order.
    let everything = Filter::default();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = relay
            .list(&everything, after.as_deref(), 2, now)
            .await
            .expect("list");
        let again = relay.list(&everything, after.as_deref(), 2, now).await;
        assert_eq!(again.as_ref(), Ok(&page), "the same page twice");
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        seen.extend(page);
    }
    assert_eq!(seen, made);
    let by = |state: Option<State>, address: Option<&str>| Filter {
        state,
        address: address.map(str::to_owned),
    };
    let ids = |sessions: Vec<RelaySession>| -> Vec<String> {
        sessions.into_iter().map(|s| s.id).collect()
    };
    let open: Vec<String> = made
        .iter()
        .filter(|s| s.state == State::Open)
        .map(|s| s.id.clone())
        .collect();
    let list = |f: Filter, after: Option<String>, limit: usize| async move {
        relay
            .list(&f, after.as_deref(), limit, now)
            .await
            .expect("list")
    };
    assert_eq!(ids(list(by(Some(State::Open), None), None, 50).await), open);
    assert_eq!(
        ids(list(by(Some(State::Open), None), None, 1).await),
        open[..1]
    );
    let rest = list(by(Some(State::Open), None), Some(open[0].clone()), 50).await;
    assert_eq!(ids(rest), open[1..]);
    assert_eq!(list(by(Some(State::Closed), None), None, 50).await.len(), 2);
    let with_a: Vec<String> = made
        .iter()
        .filter(|s| s.participants.iter().any(|p| p.address == A))
        .map(|s| s.id.clone())
        .collect();
    assert_eq!(with_a.len(), 3);
    assert_eq!(ids(list(by(None, Some(A)), None, 50).await), with_a);
    let a_open = list(by(Some(State::Open), Some(A)), None, 50).await;
    assert_eq!(a_open.len(), 2);
    let a_page = list(by(None, Some(A)), Some(with_a[0].clone()), 1).await;
    assert_eq!(ids(a_page), with_a[1..2]);
    assert!(list(by(None, Some(WA)), None, 50).await.is_empty());
    assert!(list(everything.clone(), None, 0).await.is_empty());
    let last = made.last().map(|s| s.id.clone());
    assert!(list(everything.clone(), last, 50).await.is_empty());
    // A session past its end without being closed lists as closed, not open.
    let mut short = new(vec![person(E), person(F)], 1);
    short.expires_at_ms = None;
    let ended = create(relay, short, &pool, T0).await;
    let later = T0 + 1_000;
    let open_later = relay
        .list(&by(Some(State::Open), None), None, 50, later)
        .await
        .expect("list");
    assert!(!open_later.iter().any(|s| s.id == ended.id));
    let closed_later = relay
        .list(&by(Some(State::Closed), None), None, 50, later)
        .await
        .expect("list");
    assert!(closed_later.iter().any(|s| s.id == ended.id));
}

fn entries(counts: &[(&str, usize)]) -> Vec<PoolEntry> {
    counts
        .iter()
        .map(|(number, in_use)| PoolEntry {
            number: (*number).to_owned(),
            in_use: *in_use,
        })
        .collect()
}

async fn pool_counts_live_sessions(relay: &AnyRelay) {
    let pool = pool(&[S1, S2, S3, W1]);
    let first = create(relay, pair(A, B), &pool, T0).await;
    create(relay, pair(A, C), &pool, T0).await;
    create(relay, new(vec![person(D), via(E, S3)], HOUR), &pool, T0).await;
    create(relay, new(vec![person(WA), person(WB)], 60), &pool, T0).await;
    let counts = relay.pool(&pool, T0).await.expect("pool");
    assert_eq!(counts, entries(&[(S1, 3), (S2, 1), (S3, 1), (W1, 1)]));
    relay
        .close(&first.id, "closed", T0 + 1)
        .await
        .expect("close");
    let counts = relay.pool(&pool, T0 + 60_000).await.expect("pool");
    assert_eq!(counts, entries(&[(S1, 2), (S2, 1), (S3, 1), (W1, 0)]));
}

// ---- Random sequences ---------------------------------------------------------------------

const ADDRESSES: [&str; 5] = [A, B, C, WA, WB];
const POOL: [&str; 4] = [S1, S2, W1, S3];

#[derive(Debug, Clone)]
enum Op {
    /// Participants (indexes into [`ADDRESSES`]; duplicates dropped), a TTL in seconds, and a
    /// pool number the first one asks for.
    Create(Vec<usize>, u64, Option<usize>),
    /// Closes the n-th session created so far (modulo).
    Close(usize),
    Touch(usize),
    /// Moves the clock on by this many seconds.
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            proptest::collection::vec(0..ADDRESSES.len(), 2..=3),
            1u64..=90,
            proptest::option::weighted(0.2, 0..POOL.len())
        )
            .prop_map(|(who, ttl, proxy)| Op::Create(who, ttl, proxy)),
        2 => any::<usize>().prop_map(Op::Close),
        1 => any::<usize>().prop_map(Op::Touch),
        2 => (0u64..=40).prop_map(Op::Wait),
    ]
}

/// What `create` must answer, from the live sessions as `list` shows them: each participant's
/// own proxy if its binding is free, else the first free pool number of its channel that is
/// not its address.
fn expected(live: &[RelaySession], asked: &NewSession) -> Result<Vec<String>, RelayError> {
    let mut taken: HashSet<(String, String)> = live
        .iter()
        .flat_map(|s| &s.participants)
        .map(|p| (p.proxy.clone(), p.address.clone()))
        .collect();
    let mut chosen = Vec::new();
    for (i, p) in asked.participants.iter().enumerate() {
        let whatsapp = p.address.starts_with("whatsapp:");
        let free = |n: &str| !taken.contains(&(n.to_owned(), p.address.clone()));
        let proxy = match &p.proxy {
            Some(proxy) if free(proxy) => proxy.clone(),
            Some(_) => return Err(RelayError::ProxyInUse(i)),
            None => POOL
                .iter()
                .find(|n| n.starts_with("whatsapp:") == whatsapp && **n != p.address && free(n))
                .map(|n| (*n).to_owned())
                .ok_or(RelayError::PoolExhausted(i))?,
        };
        taken.insert((proxy.clone(), p.address.clone()));
        chosen.push(proxy);
    }
    Ok(chosen)
}

/// Runs `ops`, checking every create against [`expected`] and, after each step, that no two
/// live sessions share a (proxy, address) and that each live binding finds its session.
async fn run_ops(relay: &AnyRelay, ops: &[Op]) {
    let pool = pool(&POOL);
    let mut now = T0;
    let mut ids: Vec<String> = Vec::new();
    for op in ops {
        match op {
            Op::Create(who, ttl, proxy) => {
                let mut once = HashSet::new();
                let who: Vec<usize> = who.iter().copied().filter(|i| once.insert(*i)).collect();
                let mut participants: Vec<NewParticipant> =
                    who.iter().map(|&i| person(ADDRESSES[i])).collect();
                if let Some(proxy) = proxy {
                    participants[0].proxy = Some(POOL[*proxy].to_owned());
                }
                let asked = new(participants, *ttl);
                let live: Vec<RelaySession> = all(relay, now)
                    .await
                    .into_iter()
                    .filter(|s| s.is_live(now))
                    .collect();
                let want = expected(&live, &asked);
                let got = relay.create(asked, &pool, now).await;
                let got_proxies = got
                    .as_ref()
                    .map(|s| proxies(s).into_iter().map(str::to_owned).collect())
                    .map_err(Clone::clone);
                assert_eq!(got_proxies, want, "create at {now} with {live:?}");
                if let Ok(s) = got {
                    ids.push(s.id);
                }
            }
            Op::Close(n) if !ids.is_empty() => {
                let closed = relay.close(&ids[n % ids.len()], "closed", now).await;
                assert!(closed.is_ok_and(|s| s.is_some()));
            }
            Op::Touch(n) if !ids.is_empty() => {
                relay.touch(&ids[n % ids.len()], now).await.expect("touch");
            }
            Op::Wait(secs) => now += secs * 1000,
            Op::Close(_) | Op::Touch(_) => {}
        }
        let live: Vec<RelaySession> = all(relay, now)
            .await
            .into_iter()
            .filter(|s| s.is_live(now))
            .collect();
        let mut bound = HashSet::new();
        for s in &live {
            for p in &s.participants {
                let fresh = bound.insert((p.proxy.clone(), p.address.clone()));
                assert!(
                    fresh,
                    "two live sessions share ({}, {})",
                    p.proxy, p.address
                );
                let found = relay.lookup(&p.proxy, &p.address).await.expect("lookup");
                assert_eq!(found.as_ref().map(|f| &f.id), Some(&s.id));
            }
        }
    }
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn memory_never_binds_a_pair_to_two_live_sessions(ops in proptest::collection::vec(op(), 1..60)) {
        block_on(async {
            let relay = Fresh::Memory.relay().await;
            run_ops(&relay, &ops).await;
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn sqlite_never_binds_a_pair_to_two_live_sessions(ops in proptest::collection::vec(op(), 1..30)) {
        block_on(async {
            let fresh = Fresh::sqlite();
            let relay = fresh.relay().await;
            run_ops(&relay, &ops).await;
        });
    }
}

// ---- Races --------------------------------------------------------------------------------

/// How many times each race runs, on fresh stores: one round may happen not to interleave.
const ROUNDS: usize = 32;

/// 32 creates at once, each wanting A's last free number (S2; C's number is S1, free for each
/// of them): exactly one wins, the others claim nothing. Alternates between `one` and `two`.
async fn race_for_the_last_number(one: Arc<AnyRelay>, two: Arc<AnyRelay>) {
    let pool = pool(&[S1, S2]);
    create(&one, pair(A, B), &pool, T0).await;
    let others: Vec<String> = (0..32).map(|i| format!("+4477009005{i:02}")).collect();
    let start = Arc::new(tokio::sync::Barrier::new(others.len()));
    let mut tasks = Vec::new();
    for (i, other) in others.iter().enumerate() {
        let relay = if i % 2 == 0 { one.clone() } else { two.clone() };
        let (start, pool, asked) = (start.clone(), pool.clone(), pair(A, other));
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            relay.create(asked, &pool, T0 + 1).await
        }));
    }
    let mut won = Vec::new();
    for (task, other) in tasks.into_iter().zip(&others) {
        match task.await.expect("the task ran") {
            Ok(s) => won.push(s),
            Err(e) => {
                assert_eq!(e, RelayError::PoolExhausted(0));
                assert_eq!(one.lookup(S1, other).await, Ok(None), "a loser claimed");
            }
        }
    }
    assert_eq!(won.len(), 1, "exactly one create wins the last number");
    assert_eq!(proxies(&won[0]), [S2, S1]);
    assert_eq!(two.lookup(S2, A).await, Ok(Some(won[0].clone())));
    let counts = two.pool(&pool, T0 + 2).await.expect("pool");
    assert_eq!(counts, entries(&[(S1, 2), (S2, 1)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_race() {
    for _ in 0..ROUNDS {
        let relay = Arc::new(Fresh::Memory.relay().await);
        race_for_the_last_number(relay.clone(), relay).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_race_between_two_connections_to_one_file() {
    let scratch = Scratch::new();
    for _ in 0..ROUNDS {
        let path = scratch.file();
        let _conversations = SqliteStore::open(&path).expect("the conversation store opens");
        let url = StoreUrl::Sqlite(path);
        let one = AnyRelay::open(&url, keys(), "unused").await.expect("open");
        let two = AnyRelay::open(&url, keys(), "unused").await.expect("open");
        race_for_the_last_number(Arc::new(one), Arc::new(two)).await;
    }
}

// ---- Per backend --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_conformance() {
    conformance(&Fresh::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_conformance() {
    conformance(&Fresh::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_is_refused_naming_session_store() {
    let refused = AnyRelay::open(&StoreUrl::Cookie, keys(), "p").await;
    assert!(refused.is_err_and(|e| e.contains("session.store")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_conformance() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    conformance(&Fresh::Redis(server.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_race_between_two_replicas() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = StoreUrl::Redis(server.url());
    for round in 0..ROUNDS {
        let prefix = format!("race{round}");
        let one = AnyRelay::open(&url, keys(), &prefix).await.expect("open");
        let two = AnyRelay::open(&url, keys(), &prefix).await.expect("open");
        race_for_the_last_number(Arc::new(one), Arc::new(two)).await;
    }
}

/// Every key name in the database (SCAN), with its PTTL.
async fn keys_and_ttls(url: &str) -> Vec<(String, i64)> {
    let mut connection = redis_server::connection(url).await;
    let names = redis_server::key_names(&mut connection).await;
    let mut all = Vec::new();
    for name in names {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(&name)
            .query_async(&mut connection)
            .await
            .expect("PTTL");
        all.push((name, pttl));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_keys_hold_no_number_and_expire_a_week_after_the_end() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    conformance(&Fresh::Redis(server.url())).await;
    let url = StoreUrl::Redis(server.url());
    let one = AnyRelay::open(&url, keys(), "race").await.expect("open");
    let two = AnyRelay::open(&url, keys(), "race").await.expect("open");
    race_for_the_last_number(Arc::new(one), Arc::new(two)).await;
    let relay = AnyRelay::open(&url, keys(), "ttl").await.expect("open");
    let s = create(
        &relay,
        new(vec![person(A), person(B)], 60),
        &pool(&[S1]),
        T0,
    )
    .await;

    let week: i64 = 7 * 24 * 3600 * 1000;
    let keys = keys_and_ttls(&server.url()).await;
    assert!(keys.len() > 50, "the suite wrote keys: {}", keys.len());
    let mut numbers: Vec<String> = [S1, S2, S3, W1, W2, A, B, C, D, E, F, WA, WB]
        .iter()
        .map(|n| (*n).to_owned())
        .collect();
    numbers.extend((0..32).map(|i| format!("+4477009005{i:02}")));
    for (key, pttl) in &keys {
        assert!(key.contains(":relay:"), "{key}");
        assert!(*pttl > 0, "{key} has no expiry ({pttl})");
        for number in &numbers {
            let digits: String = number.chars().filter(char::is_ascii_digit).collect();
            for run in digits.as_bytes().windows(7) {
                let run = std::str::from_utf8(run).expect("digits");
                assert!(!key.contains(run), "{key} holds digits of {number}");
            }
        }
    }
    // The record, its bindings and indexes last a week past the session's end (60 s away).
    let ttl = |name: &str| -> i64 {
        keys.iter()
            .find(|(k, _)| k == name)
            .map_or_else(|| panic!("no key {name}"), |(_, pttl)| *pttl)
    };
    let session = ttl(&format!("ttl:relay:s:{}", s.id));
    assert!(session > week && session <= week + 60_000, "{session}");
    let mine: Vec<&(String, i64)> = keys.iter().filter(|(k, _)| k.starts_with("ttl:")).collect();
    let names: HashSet<String> = mine.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        mine.len(),
        7,
        "session, 2 bindings, 2 address sets, ids, live: {names:?}"
    );
    assert!(names.contains("ttl:relay:ids") && names.contains("ttl:relay:live"));
    assert!(mine.iter().all(|(_, pttl)| *pttl > week));
    let mut connection = redis_server::connection(&server.url()).await;
    let mut score = async |id: &str| -> Option<f64> {
        redis::cmd("ZSCORE")
            .arg("ttl:relay:live")
            .arg(id)
            .query_async(&mut connection)
            .await
            .expect("ZSCORE")
    };
    assert_eq!(
        score(&s.id).await,
        Some((T0 + 60_000) as f64),
        "scored by its end"
    );
    // Closed now, it is kept a week from now and is no longer live; the bindings are not
    // shortened (they expire by themselves; a lookup finds nothing once the record is gone).
    relay.close(&s.id, "closed", T0 + 10).await.expect("close");
    assert_eq!(score(&s.id).await, None);
    let keys = keys_and_ttls(&server.url()).await;
    let closed = keys
        .iter()
        .find(|(k, _)| k == &format!("ttl:relay:s:{}", s.id))
        .map(|(_, pttl)| *pttl);
    assert!(closed.is_some_and(|pttl| pttl <= week && pttl > week - 60_000));
    let bindings = keys.iter().filter(|(k, _)| k.starts_with("ttl:relay:b:"));
    assert!(bindings.clone().count() == 2 && bindings.into_iter().all(|(_, t)| *t > week));
}
