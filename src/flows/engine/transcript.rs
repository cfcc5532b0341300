//! `[[tests]]` transcripts, run offline: each `send` goes through [`step`](super::run::step)
//! from an empty state, and the turn's text must match `expect`, where `*` stands for any run
//! of characters (newlines included). A `call` node's request never leaves: the transcript's
//! `mock.NODE` answers it (one answer for every call, or a list answered in order), and a call
//! without a mock fails the test, naming the node.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::FutureExt;
use jiff::Timestamp;

use super::call::{
    CallFailure, CallFuture, CallRequest, CallResponse, Calls, ConnectFuture, ConnectRequest,
    Connected,
};
use super::definition::{Mocks, Transcript};
use super::load::FlowSet;
use super::routing::Compiled;
use super::run::{Inbound, Settings, step};
use crate::session::SessionData;

/// The texter and the Twilio number of every transcript.
pub const FROM: &str = "+15555550123";
pub const TO: &str = "+15555550100";
/// The clock of a transcript without `now`: Monday 5 January 2026, 15:00 UTC.
pub const DEFAULT_NOW: &str = "2026-01-05T15:00:00Z";

/// A transcript that did not go as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 1-based: the exchange that went wrong.
    pub exchange: usize,
    pub sent: String,
    pub expected: String,
    pub got: String,
}

impl Failure {
    /// The failure as a few lines: what was sent, then expected and got side by side, line
    /// by line, with the first differing line marked.
    pub fn explain(&self) -> String {
        let mut out = format!("exchange {}: sent {:?}\n", self.exchange, self.sent);
        let expected: Vec<&str> = self.expected.split('\n').collect();
        let got: Vec<&str> = self.got.split('\n').collect();
        let mut marked = false;
        for line in 0..expected.len().max(got.len()) {
            let (want, have) = (expected.get(line), got.get(line));
            let differs = match (want, have) {
                (Some(want), Some(have)) => !matches(want, have),
                _ => true,
            };
            let mark = if differs && !marked {
                marked = true;
                ">"
            } else {
                " "
            };
            if let Some(want) = want {
                out.push_str(&format!("{mark} - expected: {want}\n"));
            }
            if let Some(have) = have {
                out.push_str(&format!("{mark} +      got: {have}\n"));
            }
        }
        out
    }
}

/// Runs `transcript` against `set`; `Err` names the first exchange whose reply did not match.
pub fn run(
    set: &FlowSet<Compiled>,
    settings: &Settings,
    transcript: &Transcript,
) -> Result<(), Failure> {
    let mut now = transcript
        .now
        .unwrap_or_else(|| DEFAULT_NOW.parse().expect("a valid timestamp"));
    let mut state = SessionData::default();
    let calls = MockCalls::new(&transcript.mock);
    for (index, exchange) in transcript.chat.iter().enumerate() {
        now = advance(now, exchange.after);
        let sid = format!("SM{:032}", index + 1);
        let inbound = Inbound {
            text: &exchange.send,
            from: FROM,
            to: TO,
            opt_out_type: None,
            message_sid: &sid,
            now,
        };
        let turn = step(set, settings, &inbound, &mut state, &calls)
            .now_or_never()
            .expect("mocked calls answer at once");
        let got = match calls.unmocked() {
            Some(node) => format!(
                "(node {node} made a call-out or hand-off, and the test has no mock.{node} to answer it)"
            ),
            None => turn.body(),
        };
        if !matches(&exchange.expect, &got) {
            return Err(Failure {
                exchange: index + 1,
                sent: exchange.send.clone(),
                expected: exchange.expect.clone(),
                got,
            });
        }
    }
    Ok(())
}

/// Answers call-outs from a transcript's mocks.
struct MockCalls<'t> {
    mocks: &'t BTreeMap<String, Mocks>,
    /// Calls answered so far, by node; and the first node called without a mock.
    made: Mutex<(BTreeMap<String, usize>, Option<String>)>,
}

impl<'t> MockCalls<'t> {
    fn new(mocks: &'t BTreeMap<String, Mocks>) -> Self {
        MockCalls {
            mocks,
            made: Mutex::new((BTreeMap::new(), None)),
        }
    }

    fn unmocked(&self) -> Option<String> {
        self.made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    fn answer(&self, node: &str) -> Result<CallResponse, CallFailure> {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        let count = made.0.entry(node.to_owned()).or_default();
        let mock = self.mocks.get(node).and_then(|mocks| mocks.nth(*count));
        *count += 1;
        let Some(mock) = mock else {
            made.1.get_or_insert_with(|| node.to_owned());
            return Err(CallFailure {
                reason: "connect",
                detail: "no mock".into(),
            });
        };
        if let Some(error) = &mock.error {
            return Err(CallFailure {
                reason: mock_reason(error),
                detail: format!("mock.{node}: {error}"),
            });
        }
        Ok(CallResponse {
            status: mock.status,
            body: mock.json.clone().unwrap_or_default().into_bytes(),
        })
    }
}

/// A mock's `error` as a call's failure reason.
fn mock_reason(error: &str) -> &'static str {
    match error {
        "timeout" => "timeout",
        "connect" => "connect",
        "too_large" => "too_large",
        _ => "io",
    }
}

impl Calls for MockCalls<'_> {
    fn call<'a>(&'a self, request: &'a CallRequest) -> CallFuture<'a> {
        Box::pin(std::future::ready(self.answer(&request.node)))
    }

    /// A `connect` node's mock: any status opens the session (an `error` does not).
    fn connect<'a>(&'a self, request: &'a ConnectRequest) -> ConnectFuture<'a> {
        let answer = self.answer(&request.node).map(|_| Connected {
            session: "RS00000000000000000000000000000000".into(),
            agent_address: format!("(agent {})", request.agent),
            agent_proxy: "(a pool number)".into(),
        });
        Box::pin(std::future::ready(answer))
    }
}

fn advance(now: Timestamp, by: Option<Duration>) -> Timestamp {
    let Some(by) = by else {
        return now;
    };
    jiff::SignedDuration::try_from(by)
        .ok()
        .and_then(|by| now.checked_add(by).ok())
        .unwrap_or(now)
}

/// Whether `text` matches `pattern`, in which `*` stands for any run of characters.
pub fn matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let middle: Vec<&str> = parts.collect();
    let Some((last, middle)) = middle.split_last() else {
        return rest.is_empty(); // no `*` at all: the whole text
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_match_any_run_of_characters() {
        assert!(matches("Hello", "Hello"));
        assert!(!matches("Hello", "Hello!"));
        assert!(matches("Hello*", "Hello, world"));
        assert!(matches("*world", "Hello, world"));
        assert!(matches("H*o*d", "Hello, world"));
        assert!(matches("*", ""));
        assert!(matches("a*\n\n*b", "a x\n\ny b"));
        assert!(!matches("a*b*c", "acb"));
        assert!(!matches("ab*ba", "aba"), "the two ends may not overlap");
        assert!(matches("**", "anything"));
    }

    #[test]
    fn a_failure_marks_the_first_line_that_differs() {
        let failure = Failure {
            exchange: 2,
            sent: "3".into(),
            expected: "Thanks*\n\nNext?".into(),
            got: "Thanks!\n\nAgain?".into(),
        };
        let text = failure.explain();
        assert!(text.starts_with("exchange 2: sent \"3\"\n"), "{text}");
        assert!(
            text.contains("> - expected: Next?\n> +      got: Again?"),
            "{text}"
        );
        assert!(
            text.contains("  - expected: Thanks*\n  +      got: Thanks!"),
            "{text}"
        );
    }

    const CALLING: &str = r#"
spec = 1
name = "c"
start = "fetch"
[[triggers]]
keywords = ["go"]
[nodes.fetch]
type = "call"
endpoint = "svc"
path = "/n"
save = { n = "/n" }
next = "show"
on_error = "down"
[nodes.show]
type = "ask"
text = "n={{ n }}"
next = "fetch"
[nodes.down]
type = "end"
text = "down"
"#;

    fn run_with(tests: &str) -> Vec<Result<(), Failure>> {
        use super::super::load::{LoadOptions, SourceFile, build};
        let text = format!("{CALLING}{tests}");
        let source = SourceFile {
            file: "c.toml".into(),
            text,
        };
        let set = build(
            &[source],
            &LoadOptions::default(),
            &super::super::routing::Compiled,
        )
        .expect("the flow loads");
        let flow = set.flow("c").expect("the flow");
        let settings = Settings::default();
        flow.def
            .tests
            .iter()
            .map(|test| run(&set, &settings, test))
            .collect()
    }

    #[test]
    fn mocks_answer_calls_in_order_and_the_last_one_repeats() {
        let results = run_with(
            r#"
[[tests]]
name = "in order"
mock.fetch = [ { json = '{"n":1}' }, { json = '{"n":2}' }, { status = 503 } ]
chat = [
  { send = "go", expect = "n=1" },
  { send = "x", expect = "n=2" },
  { send = "x", expect = "down" },
  { send = "go", expect = "down" },
]

[[tests]]
name = "one for all, and a failure"
mock.fetch = { error = "timeout" }
chat = [ { send = "go", expect = "down" } ]
"#,
        );
        assert_eq!(results, [Ok(()), Ok(())]);
    }

    #[test]
    fn a_call_without_a_mock_fails_the_test_naming_the_node() {
        let results = run_with(
            r#"
[[tests]]
name = "forgot"
chat = [ { send = "go", expect = "down" } ]
"#,
        );
        let failure = results[0].clone().expect_err("no mock");
        assert_eq!(
            failure.got,
            "(node fetch made a call-out or hand-off, and the test has no mock.fetch to answer it)"
        );
    }
}
