//! The conformance suite every server-side [`Backend`] must pass: the protocol of
//! `src/store/backend.rs`, checked through the trait alone.
//!
//! Use it from a test binary with
//! `#[path = "common/store_suite.rs"] mod store_suite;` and call [`conformance`] on a backend
//! (or the checks one by one). Each check uses keys of its own (random) and a time base of its
//! own (`now_ms` is the caller's in every call, so time is simulated, never waited for), so
//! the checks can share one backend instance; [`sweep_removes_expired`] cannot (it sweeps
//! everything) and needs an empty backend of its own. A failed check panics naming itself.
//! Depends on `sms_sessions`, tokio and rand only.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sms_sessions::store::{Backend, Begin, Commit, ConvKey, Limits, Seen, Stored, Write};

/// The limits every check runs with (the defaults, with a 10 s lease).
pub const LIMITS: Limits = Limits {
    ttl: Duration::from_secs(4 * 3600),
    retry_horizon: Duration::from_secs(120),
    replay_window: Duration::from_secs(24 * 3600),
    lease: Duration::from_secs(10),
};

const HORIZON: u64 = 120_000;
const WINDOW: u64 = 24 * 3600 * 1000;
const LEASE: u64 = 10_000;
const TTL: u64 = 4 * 3600 * 1000;

/// Runs every check but [`sweep_removes_expired`] against `backend`, one after the other.
pub async fn conformance<B: Backend>(backend: Arc<B>) {
    begin_commit_begin(&*backend).await;
    retry_then_replay_then_new(&*backend).await;
    busy_until_the_lease_expires(&*backend).await;
    late_commit_writes_nothing(&*backend).await;
    release_needs_the_token(&*backend).await;
    commit_without_data_deletes(&*backend).await;
    peek_and_delete(&*backend).await;
    large_and_binary_values(&*backend).await;
    keys_are_isolated(&*backend).await;
    concurrent_steps_count_exactly(backend).await;
}

/// A key no other check (or run) uses.
pub fn fresh_key() -> ConvKey {
    ConvKey::from_bytes(rand::random())
}

/// A time base of its own for a check: late 2023 plus up to about a year.
pub fn base_ms() -> u64 {
    1_700_000_000_000 + rand::random_range(0..30_000_000_000)
}

/// A MessageSid of Twilio's shape.
pub fn sid() -> String {
    format!("SM{:032x}", rand::random::<u128>())
}

fn write<'a>(data: &'a [u8], reply: &'a [u8]) -> Write<'a> {
    Write {
        data: Some(data),
        reply,
    }
}

/// `begin` that must answer `Owned`; returns the conversation it found.
async fn owned<B: Backend>(
    check: &str,
    b: &B,
    key: &ConvKey,
    sid: &str,
    token: u64,
    now: u64,
) -> Option<Stored> {
    match b.begin(key, sid, token, now, &LIMITS).await {
        Ok(Begin::Owned(stored)) => stored,
        other => panic!("{check}: begin({sid}) at {now} should be Owned, was {other:?}"),
    }
}

async fn begin<B: Backend>(
    check: &str,
    b: &B,
    key: &ConvKey,
    sid: &str,
    token: u64,
    now: u64,
) -> Begin {
    b.begin(key, sid, token, now, &LIMITS)
        .await
        .unwrap_or_else(|e| panic!("{check}: begin({sid}) at {now} failed: {e}"))
}

async fn commit<B: Backend>(
    check: &str,
    b: &B,
    key: &ConvKey,
    sid: &str,
    token: u64,
    write: Write<'_>,
    now: u64,
) -> Commit {
    b.commit(key, sid, token, write, now, &LIMITS)
        .await
        .unwrap_or_else(|e| panic!("{check}: commit({sid}) at {now} failed: {e}"))
}

/// One whole step: begin (must be Owned) and commit (must be Done) at `now`.
async fn step<B: Backend>(
    check: &str,
    b: &B,
    key: &ConvKey,
    sid: &str,
    data: Option<&[u8]>,
    reply: &[u8],
    now: u64,
) {
    let token = rand::random();
    owned(check, b, key, sid, token, now).await;
    let write = Write { data, reply };
    let done = commit(check, b, key, sid, token, write, now).await;
    assert_eq!(done, Commit::Done, "{check}: commit({sid}) at {now}");
}

async fn peek<B: Backend>(check: &str, b: &B, key: &ConvKey) -> Option<Stored> {
    b.peek(key)
        .await
        .unwrap_or_else(|e| panic!("{check}: peek failed: {e}"))
}

/// 1. A new key is owned with no conversation; the commit is found by the next step, stamped
///    with the commit's time.
pub async fn begin_commit_begin<B: Backend>(b: &B) {
    const CHECK: &str = "begin_commit_begin";
    let (key, now) = (fresh_key(), base_ms());
    let (first, second) = (sid(), sid());
    let token = rand::random();
    assert_eq!(
        owned(CHECK, b, &key, &first, token, now).await,
        None,
        "{CHECK}: a new key"
    );
    let done = commit(
        CHECK,
        b,
        &key,
        &first,
        token,
        write(b"count=1", b"<Response/>"),
        now + 5,
    )
    .await;
    assert_eq!(done, Commit::Done, "{CHECK}: the commit");
    let found = owned(CHECK, b, &key, &second, rand::random(), now + 10).await;
    let expected = Stored {
        data: b"count=1".to_vec(),
        touched_ms: now + 5,
    };
    assert_eq!(
        found,
        Some(expected),
        "{CHECK}: the next step finds the commit"
    );
}

/// 2. The same MessageSid again: its reply within the retry horizon, no reply after it until
///    the replay window ends, then a step like any other. A `Seen` takes no lease.
pub async fn retry_then_replay_then_new<B: Backend>(b: &B) {
    const CHECK: &str = "retry_then_replay_then_new";
    let (key, now, sms) = (fresh_key(), base_ms(), sid());
    let reply = b"<Response><Message>hi</Message></Response>";
    step(CHECK, b, &key, &sms, Some(b"a=1"), reply, now).await;
    let retry = Begin::Seen(Seen {
        applied_ms: now,
        reply: Some(reply.to_vec()),
    });
    let replay = Begin::Seen(Seen {
        applied_ms: now,
        reply: None,
    });
    for (at, expected) in [
        (now, &retry),
        (now + HORIZON - 1, &retry),
        (now + HORIZON, &replay),
        (now + WINDOW - 1, &replay),
    ] {
        let got = begin(CHECK, b, &key, &sms, rand::random(), at).await;
        assert_eq!(&got, expected, "{CHECK}: the same sid {}ms later", at - now);
    }
    // No lease was taken by those: another text of the pair is owned at once.
    owned(CHECK, b, &key, &sid(), rand::random(), now + HORIZON).await;
    let later = now + WINDOW;
    let found = owned(CHECK, b, &key, &sms, rand::random(), later).await;
    assert!(
        found.is_some(),
        "{CHECK}: past the replay window the sid is a new step"
    );
}

/// 3. A leased pair is busy for every other token until the lease's end, then another step
///    takes it; the first step's commit then loses, writes nothing, and leaves the new lease.
pub async fn busy_until_the_lease_expires<B: Backend>(b: &B) {
    const CHECK: &str = "busy_until_the_lease_expires";
    let (key, now) = (fresh_key(), base_ms());
    step(CHECK, b, &key, &sid(), Some(b"v=0"), b"r0", now).await;
    let (sid_a, sid_b) = (sid(), sid());
    let (token_a, token_b) = (rand::random(), rand::random());
    let t = now + 1;
    owned(CHECK, b, &key, &sid_a, token_a, t).await;
    for at in [t, t + 1, t + LEASE - 1] {
        let got = begin(CHECK, b, &key, &sid_b, token_b, at).await;
        assert_eq!(
            got,
            Begin::Busy,
            "{CHECK}: begin {}ms into A's lease",
            at - t
        );
    }
    let stored = owned(CHECK, b, &key, &sid_b, token_b, t + LEASE).await;
    let v0 = Some(Stored {
        data: b"v=0".to_vec(),
        touched_ms: now,
    });
    assert_eq!(stored, v0, "{CHECK}: B finds the state before A");
    let late = commit(
        CHECK,
        b,
        &key,
        &sid_a,
        token_a,
        write(b"v=A", b"rA"),
        t + LEASE + 1,
    )
    .await;
    assert_eq!(
        late,
        Commit::LeaseLost,
        "{CHECK}: A's commit after B took the pair"
    );
    assert_eq!(
        peek(CHECK, b, &key).await,
        v0,
        "{CHECK}: A's commit wrote nothing"
    );
    let other = begin(CHECK, b, &key, &sid(), rand::random(), t + LEASE + 2).await;
    assert_eq!(
        other,
        Begin::Busy,
        "{CHECK}: B still holds the pair after A's commit"
    );
    let done = commit(
        CHECK,
        b,
        &key,
        &sid_b,
        token_b,
        write(b"v=B", b"rB"),
        t + LEASE + 3,
    )
    .await;
    assert_eq!(done, Commit::Done, "{CHECK}: B's commit");
    let again = begin(CHECK, b, &key, &sid_a, rand::random(), t + LEASE + 4).await;
    assert!(
        matches!(again, Begin::Owned(Some(ref s)) if s.data == b"v=B"),
        "{CHECK}: A's sid left no marker and B's state stands, got {again:?}"
    );
}

/// 3b. A commit after the step's own lease ran out loses even if no one took the pair.
pub async fn late_commit_writes_nothing<B: Backend>(b: &B) {
    const CHECK: &str = "late_commit_writes_nothing";
    let (key, now, sms) = (fresh_key(), base_ms(), sid());
    let token = rand::random();
    owned(CHECK, b, &key, &sms, token, now).await;
    let late = commit(
        CHECK,
        b,
        &key,
        &sms,
        token,
        write(b"x=1", b"r"),
        now + LEASE,
    )
    .await;
    assert_eq!(
        late,
        Commit::LeaseLost,
        "{CHECK}: commit at the lease's end"
    );
    assert_eq!(
        peek(CHECK, b, &key).await,
        None,
        "{CHECK}: nothing was written"
    );
    let found = owned(CHECK, b, &key, &sms, rand::random(), now + LEASE + 1).await;
    assert_eq!(found, None, "{CHECK}: no marker either");
}

/// 4. Only the token holding the lease releases it.
pub async fn release_needs_the_token<B: Backend>(b: &B) {
    const CHECK: &str = "release_needs_the_token";
    let (key, now) = (fresh_key(), base_ms());
    let holder: u64 = rand::random();
    let other = holder.wrapping_add(1);
    owned(CHECK, b, &key, &sid(), holder, now).await;
    b.release(&key, other)
        .await
        .unwrap_or_else(|e| panic!("{CHECK}: release failed: {e}"));
    let got = begin(CHECK, b, &key, &sid(), other, now + 1).await;
    assert_eq!(
        got,
        Begin::Busy,
        "{CHECK}: a wrong token's release keeps the lease"
    );
    b.release(&key, holder)
        .await
        .unwrap_or_else(|e| panic!("{CHECK}: release failed: {e}"));
    owned(CHECK, b, &key, &sid(), other, now + 2).await;
}

/// 5. A commit without data deletes the conversation and still records the MessageSid.
pub async fn commit_without_data_deletes<B: Backend>(b: &B) {
    const CHECK: &str = "commit_without_data_deletes";
    let (key, now, sms) = (fresh_key(), base_ms(), sid());
    step(CHECK, b, &key, &sid(), Some(b"a=1"), b"r1", now).await;
    step(CHECK, b, &key, &sms, None, b"bye", now + 1).await;
    assert_eq!(
        peek(CHECK, b, &key).await,
        None,
        "{CHECK}: the conversation is gone"
    );
    let got = begin(CHECK, b, &key, &sms, rand::random(), now + 2).await;
    let seen = Begin::Seen(Seen {
        applied_ms: now + 1,
        reply: Some(b"bye".to_vec()),
    });
    assert_eq!(got, seen, "{CHECK}: the marker stays");
}

/// 6. `peek` reads without a lease; `delete` removes the conversation, not the markers.
pub async fn peek_and_delete<B: Backend>(b: &B) {
    const CHECK: &str = "peek_and_delete";
    let (key, now, sms) = (fresh_key(), base_ms(), sid());
    assert_eq!(peek(CHECK, b, &key).await, None, "{CHECK}: a new key");
    step(CHECK, b, &key, &sms, Some(b"k=v"), b"r", now).await;
    let stored = Some(Stored {
        data: b"k=v".to_vec(),
        touched_ms: now,
    });
    assert_eq!(peek(CHECK, b, &key).await, stored, "{CHECK}: peek");
    let token = rand::random();
    owned(CHECK, b, &key, &sid(), token, now + 1).await;
    assert_eq!(
        peek(CHECK, b, &key).await,
        stored,
        "{CHECK}: peek under a lease"
    );
    b.release(&key, token)
        .await
        .unwrap_or_else(|e| panic!("{CHECK}: release failed: {e}"));
    b.delete(&key)
        .await
        .unwrap_or_else(|e| panic!("{CHECK}: delete failed: {e}"));
    assert_eq!(peek(CHECK, b, &key).await, None, "{CHECK}: deleted");
    b.delete(&key)
        .await
        .unwrap_or_else(|e| panic!("{CHECK}: deleting nothing failed: {e}"));
    let got = begin(CHECK, b, &key, &sms, rand::random(), now + 2).await;
    assert!(
        matches!(got, Begin::Seen(_)),
        "{CHECK}: the marker outlives delete, got {got:?}"
    );
}

/// 7. State and replies are bytes: 64 KiB, every byte value, and empty state, exactly.
pub async fn large_and_binary_values<B: Backend>(b: &B) {
    const CHECK: &str = "large_and_binary_values";
    let large: Vec<u8> = (0..64 * 1024).map(|_| rand::random()).collect();
    let every: Vec<u8> = (0..=255).collect();
    for (name, data, reply) in [
        ("64 KiB", &large, &every),
        ("every byte", &every, &large),
        ("empty state", &Vec::new(), &Vec::new()),
    ] {
        let (key, now, sms) = (fresh_key(), base_ms(), sid());
        step(CHECK, b, &key, &sms, Some(data), reply, now).await;
        let stored = peek(CHECK, b, &key).await;
        assert!(
            stored.as_ref().is_some_and(|s| &s.data == data),
            "{CHECK}: {name} state round-trips"
        );
        let found = owned(CHECK, b, &key, &sid(), rand::random(), now + 1).await;
        assert_eq!(found, stored, "{CHECK}: {name} state through begin");
        let got = begin(CHECK, b, &key, &sms, rand::random(), now + 2).await;
        assert!(
            matches!(&got, Begin::Seen(Seen { reply: Some(r), .. }) if r == reply),
            "{CHECK}: the reply with {name} state round-trips"
        );
    }
}

/// 8. Keys share nothing: the same MessageSid applies to each, and each has its own lease.
pub async fn keys_are_isolated<B: Backend>(b: &B) {
    const CHECK: &str = "keys_are_isolated";
    let (one, two, now, sms) = (fresh_key(), fresh_key(), base_ms(), sid());
    let (t1, t2) = (rand::random(), rand::random());
    owned(CHECK, b, &one, &sms, t1, now).await;
    owned(CHECK, b, &two, &sms, t2, now).await;
    let done = commit(CHECK, b, &one, &sms, t1, write(b"n=1", b"r1"), now).await;
    assert_eq!(done, Commit::Done, "{CHECK}: commit on the first key");
    let got = begin(CHECK, b, &two, &sid(), rand::random(), now + 1).await;
    assert_eq!(got, Begin::Busy, "{CHECK}: the second key is still leased");
    let done = commit(CHECK, b, &two, &sms, t2, write(b"n=2", b"r2"), now + 1).await;
    assert_eq!(
        done,
        Commit::Done,
        "{CHECK}: the same sid commits on the second key"
    );
    let (a, z) = (peek(CHECK, b, &one).await, peek(CHECK, b, &two).await);
    assert_eq!(
        a.map(|s| s.data),
        Some(b"n=1".to_vec()),
        "{CHECK}: the first key's state"
    );
    assert_eq!(
        z.map(|s| s.data),
        Some(b"n=2".to_vec()),
        "{CHECK}: the second key's state"
    );
}

/// 9. 64 steps of one key at once, each retrying while busy: each applies once, in some
///    order, none lost; each MessageSid is then seen with its own reply.
pub async fn concurrent_steps_count_exactly<B: Backend>(b: Arc<B>) {
    const CHECK: &str = "concurrent_steps_count_exactly";
    const STEPS: u64 = 64;
    let (key, now) = (fresh_key(), base_ms());
    let sids: Vec<String> = (0..STEPS).map(|_| sid()).collect();
    let tasks: Vec<_> = sids
        .iter()
        .map(|sms| tokio::spawn(count_once(b.clone(), key, sms.clone(), now)))
        .collect();
    for task in tasks {
        task.await
            .unwrap_or_else(|e| panic!("{CHECK}: a step panicked: {e}"));
    }
    let stored = peek(CHECK, &*b, &key).await;
    let expected = format!("n={STEPS}").into_bytes();
    assert_eq!(stored.map(|s| s.data), Some(expected), "{CHECK}: the count");
    let mut replies = BTreeSet::new();
    for sms in &sids {
        match begin(CHECK, &*b, &key, sms, rand::random(), now).await {
            Begin::Seen(Seen {
                reply: Some(reply), ..
            }) => replies.insert(reply),
            other => panic!("{CHECK}: {sms} should be seen with its reply, was {other:?}"),
        };
    }
    let all: BTreeSet<Vec<u8>> = (1..=STEPS).map(|n| n.to_string().into_bytes()).collect();
    assert_eq!(replies, all, "{CHECK}: each count was replied once");
}

/// One step of the counter flow: retries while the pair is busy; state `n=<count>`, reply
/// the new count.
async fn count_once<B: Backend>(b: Arc<B>, key: ConvKey, sms: String, now: u64) {
    const CHECK: &str = "concurrent_steps_count_exactly";
    let token = rand::random();
    for _ in 0..20_000 {
        let stored = match begin(CHECK, &*b, &key, &sms, token, now).await {
            Begin::Busy => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            Begin::Owned(stored) => stored,
            Begin::Seen(seen) => panic!("{CHECK}: {sms} seen before it was applied: {seen:?}"),
        };
        let count = stored.map_or(0, |s| counter(&s.data)) + 1;
        let data = format!("n={count}");
        let reply = count.to_string();
        let done = commit(
            CHECK,
            &*b,
            &key,
            &sms,
            token,
            write(data.as_bytes(), reply.as_bytes()),
            now,
        )
        .await;
        assert_eq!(done, Commit::Done, "{CHECK}: {sms}'s commit");
        return;
    }
    panic!("{CHECK}: {sms} stayed busy for 20000 tries");
}

fn counter(data: &[u8]) -> u64 {
    std::str::from_utf8(data)
        .ok()
        .and_then(|text| text.strip_prefix("n="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!("concurrent_steps_count_exactly: state {data:?} is not n=<count>")
        })
}

/// 10. `sweep` removes conversations idle for the TTL and markers past the replay window,
///     and counts them. Needs an empty backend of its own: it sweeps everything.
pub async fn sweep_removes_expired<B: Backend>(b: Arc<B>) {
    const CHECK: &str = "sweep_removes_expired";
    let b = &*b;
    let (a, z, leased, t0) = (fresh_key(), fresh_key(), fresh_key(), base_ms());
    let (sid_a, sid_z) = (sid(), sid());
    let half = TTL / 2;
    step(CHECK, b, &a, &sid_a, Some(b"a=1"), b"ra", t0).await;
    step(CHECK, b, &z, &sid_z, Some(b"z=1"), b"rz", t0 + half).await;
    owned(CHECK, b, &leased, &sid(), rand::random(), t0).await;
    let sweep = |at: u64| async move {
        b.sweep(at, &LIMITS)
            .await
            .unwrap_or_else(|e| panic!("{CHECK}: sweep at {at} failed: {e}"))
    };
    assert_eq!(
        sweep(t0 + half).await,
        0,
        "{CHECK}: nothing has expired yet"
    );
    assert!(peek(CHECK, b, &a).await.is_some(), "{CHECK}: a is kept");
    assert_eq!(
        sweep(t0 + TTL).await,
        1,
        "{CHECK}: a's conversation expires"
    );
    assert_eq!(
        peek(CHECK, b, &a).await,
        None,
        "{CHECK}: a's conversation is gone"
    );
    assert!(peek(CHECK, b, &z).await.is_some(), "{CHECK}: z's is kept");
    let got = begin(CHECK, b, &a, &sid_a, rand::random(), t0 + TTL).await;
    let replay = Begin::Seen(Seen {
        applied_ms: t0,
        reply: None,
    });
    assert_eq!(
        got, replay,
        "{CHECK}: a's marker is kept, its reply is past the horizon"
    );
    assert_eq!(
        sweep(t0 + WINDOW).await,
        2,
        "{CHECK}: z's conversation and a's marker"
    );
    assert_eq!(
        peek(CHECK, b, &z).await,
        None,
        "{CHECK}: z's conversation is gone"
    );
    assert_eq!(sweep(t0 + half + WINDOW).await, 1, "{CHECK}: z's marker");
    assert_eq!(
        sweep(t0 + half + WINDOW).await,
        0,
        "{CHECK}: nothing is left"
    );
}
