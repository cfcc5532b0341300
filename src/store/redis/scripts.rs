//! The Lua scripts that make `begin`, `commit` and `release` atomic, and how their arguments
//! and replies are encoded.
//!
//! A script runs as one command: nothing else touches the keys while it runs, on any
//! connection, which is why the store uses scripts and never WATCH/MULTI (unsafe over the
//! shared, multiplexed connection; research/stores.md §3). Every key a script touches is
//! passed in `KEYS` (required for Redis Cluster; all share one hash tag, see [`super::keys`]).
//!
//! Times are the caller's `now_ms`, never Redis' clock, so every replica and every test
//! decides by the same numbers. They are written as 20-digit zero-padded decimals and compared
//! as strings: exact for every `u64`, where Lua's numbers (doubles) are exact only to 2^53.
//! Redis' own expiry (`PX`, `PEXPIRE`) only frees memory, never decides anything, and is set
//! at least as long as the logical lifetime.

use std::time::Duration;

use redis::{Script, Value};

use crate::store::backend::{Begin, Commit, Limits, Seen, StoreError, Stored};

/// KEYS: conversation, marker, reply, lease.
/// ARGV: seen_from, reply_from, now, lease value, lease px.
///
/// A marker applied at or after `seen_from` is within the replay window (its reply, if at or
/// after `reply_from`, within the retry horizon); else a lease until after `now` is busy; else
/// the lease is taken and the conversation returned (`t` and `d`, or nils).
const BEGIN: &str = r"
local applied = redis.call('GET', KEYS[2])
if applied and applied >= ARGV[1] then
  local reply = false
  if applied >= ARGV[2] then reply = redis.call('GET', KEYS[3]) end
  return {'seen', applied, reply}
end
local lease = redis.call('GET', KEYS[4])
if lease and string.sub(lease, 22) > ARGV[3] then return {'busy'} end
redis.call('SET', KEYS[4], ARGV[4], 'PX', ARGV[5])
local c = redis.call('HMGET', KEYS[1], 't', 'd')
return {'owned', c[1], c[2]}
";

/// KEYS: conversation, marker, reply, lease.
/// ARGV: holder (`<token>:`), now, '1' to write the state or '0' to delete it, state,
/// conversation px, marker px, reply, reply px.
const COMMIT: &str = r"
local lease = redis.call('GET', KEYS[4])
if not lease or string.sub(lease, 1, 21) ~= ARGV[1] or string.sub(lease, 22) <= ARGV[2] then
  return 'lost'
end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 't', ARGV[2], 'd', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
else
  redis.call('DEL', KEYS[1])
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[6])
redis.call('SET', KEYS[3], ARGV[7], 'PX', ARGV[8])
redis.call('DEL', KEYS[4])
return 'done'
";

/// KEYS: lease. ARGV: holder (`<token>:`). Deletes the lease only if the token holds it.
const RELEASE: &str = r"
local lease = redis.call('GET', KEYS[1])
if lease and string.sub(lease, 1, 21) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 'done'
";

/// The store's scripts, hashed once; run by EVALSHA (redis-rs loads a script Redis does not
/// have — after a restart, on a new replica — and retries).
pub(super) struct Scripts {
    pub(super) begin: Script,
    pub(super) commit: Script,
    pub(super) release: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            begin: Script::new(BEGIN),
            commit: Script::new(COMMIT),
            release: Script::new(RELEASE),
        }
    }
}

/// The longest expiry Redis is asked for (about 31,000 years): `PX` must not overflow Redis'
/// clock, and anything longer is forever for our purposes.
const MAX_EXPIRY_MS: u64 = 1_000_000_000_000_000;

/// A time as the scripts compare it: 20 digits, zero-padded.
pub(super) fn time(ms: u64) -> String {
    format!("{ms:020}")
}

/// The lease's value: `<token>:<until_ms>`, each 20 digits.
pub(super) fn lease(token: u64, until_ms: u64) -> String {
    format!("{token:020}:{until_ms:020}")
}

/// The start of the lease's value when `token` holds it.
pub(super) fn holder(token: u64) -> String {
    format!("{token:020}:")
}

/// A Redis expiry for `span`: at least 1 ms (`PX 0` is an error), at most [`MAX_EXPIRY_MS`].
pub(super) fn expiry(span: Duration) -> u64 {
    Limits::ms(span).clamp(1, MAX_EXPIRY_MS)
}

/// The earliest `applied_ms` still within `span` of `now_ms` (`now - applied < span`, as the
/// memory backend counts it, a marker from the future being 0 old).
pub(super) fn earliest(now_ms: u64, span: Duration) -> u64 {
    match Limits::ms(span) {
        0 => u64::MAX, // nothing is within an empty span (an applied_ms of u64::MAX aside)
        span => now_ms.saturating_sub(span - 1),
    }
}

/// Reads the begin script's reply.
pub(super) fn begin_reply(value: &Value) -> Result<Begin, StoreError> {
    let Value::Array(items) = value else {
        return Err(unexpected("begin", value));
    };
    match items.as_slice() {
        [tag, applied, reply] if is(tag, "seen") => Ok(Begin::Seen(Seen {
            applied_ms: number(applied).ok_or_else(|| unexpected("begin", value))?,
            reply: match reply {
                Value::Nil => None,
                Value::BulkString(bytes) => Some(bytes.clone()),
                _ => return Err(unexpected("begin", value)),
            },
        })),
        [tag] if is(tag, "busy") => Ok(Begin::Busy),
        [tag, touched, data] if is(tag, "owned") => Ok(Begin::Owned(stored(touched, data)?)),
        _ => Err(unexpected("begin", value)),
    }
}

/// Reads the commit script's reply.
pub(super) fn commit_reply(value: &Value) -> Result<Commit, StoreError> {
    if is(value, "done") {
        Ok(Commit::Done)
    } else if is(value, "lost") {
        Ok(Commit::LeaseLost)
    } else {
        Err(unexpected("commit", value))
    }
}

/// A conversation from its hash fields `t` and `d` (both missing: there is none).
pub(super) fn stored(touched: &Value, data: &Value) -> Result<Option<Stored>, StoreError> {
    match (touched, data) {
        (Value::Nil, Value::Nil) => Ok(None),
        (touched, Value::BulkString(data)) => {
            let touched_ms = number(touched).ok_or_else(|| {
                StoreError::Corrupt("a conversation's touched time is not a number".into())
            })?;
            Ok(Some(Stored {
                data: data.clone(),
                touched_ms,
            }))
        }
        _ => Err(StoreError::Corrupt(
            "a conversation hash lacks its state (field d)".into(),
        )),
    }
}

/// Whether a reply is the string `text`.
pub(super) fn is(value: &Value, text: &str) -> bool {
    match value {
        Value::BulkString(bytes) => bytes == text.as_bytes(),
        Value::SimpleString(s) => s == text,
        _ => false,
    }
}

/// A decimal number the scripts wrote (zero-padding allowed).
fn number(value: &Value) -> Option<u64> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

/// A reply no script of this version gives: another writer's keys, or a different version.
fn unexpected(script: &str, value: &Value) -> StoreError {
    // The shape only: values hold conversation state.
    let shape = match value {
        Value::Array(items) => format!("an array of {}", items.len()),
        Value::BulkString(bytes) => format!("a string of {} bytes", bytes.len()),
        Value::Nil => "nil".into(),
        _ => "another type".into(),
    };
    StoreError::Corrupt(format!("the {script} script answered {shape}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_compare_as_strings_the_way_they_do_as_numbers() {
        let samples = [
            0,
            1,
            9,
            10,
            999,
            1_000,
            1 << 53,
            (1 << 53) + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        for a in samples {
            for b in samples {
                assert_eq!(time(a).cmp(&time(b)), a.cmp(&b), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn lease_splits_at_fixed_places() {
        let value = lease(42, 1_700_000_000_123);
        assert_eq!(&value[..21], holder(42));
        assert_eq!(&value[21..], time(1_700_000_000_123)); // Lua: string.sub(lease, 22)
        assert_eq!(lease(u64::MAX, u64::MAX).len(), 41);
    }

    #[test]
    fn earliest_matches_the_memory_backends_age_rule() {
        for now in [0_u64, 5, 100, 1_000, 1_700_000_000_000] {
            for span in [0_u64, 1, 2, 100, 1_000] {
                for applied in [
                    0,
                    1,
                    now.saturating_sub(span),
                    now.saturating_sub(1),
                    now,
                    now + 1,
                ] {
                    let within = now.saturating_sub(applied) < span;
                    let from = earliest(now, Duration::from_millis(span));
                    assert_eq!(
                        applied >= from,
                        within,
                        "now {now} span {span} applied {applied}"
                    );
                }
            }
        }
    }

    #[test]
    fn expiry_is_never_zero_nor_overflowing() {
        assert_eq!(expiry(Duration::ZERO), 1);
        assert_eq!(expiry(Duration::from_millis(1500)), 1500);
        assert_eq!(expiry(Duration::MAX), MAX_EXPIRY_MS);
    }

    #[test]
    fn unexpected_replies_are_corrupt_and_name_only_their_shape() {
        let odd = Value::Array(vec![Value::BulkString(b"secret state".to_vec())]);
        match begin_reply(&odd) {
            Err(StoreError::Corrupt(why)) => assert!(!why.contains("secret"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            commit_reply(&Value::Int(1)),
            Err(StoreError::Corrupt(_))
        ));
        let half = stored(&Value::BulkString(b"12".to_vec()), &Value::Nil);
        assert!(matches!(half, Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn owned_and_seen_replies_read_back() {
        let owned = Value::Array(vec![
            Value::BulkString(b"owned".to_vec()),
            Value::BulkString(time(77).into_bytes()),
            Value::BulkString(vec![0, 255]),
        ]);
        let expected = Stored {
            data: vec![0, 255],
            touched_ms: 77,
        };
        assert_eq!(begin_reply(&owned).ok(), Some(Begin::Owned(Some(expected))));
        let seen = Value::Array(vec![
            Value::BulkString(b"seen".to_vec()),
            Value::BulkString(time(5).into_bytes()),
            Value::Nil,
        ]);
        let expected = Seen {
            applied_ms: 5,
            reply: None,
        };
        assert_eq!(begin_reply(&seen).ok(), Some(Begin::Seen(expected)));
    }
}
