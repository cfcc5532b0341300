//! `[[tests]]` transcripts, run offline: each `send` goes through [`step`](super::run::step)
//! from an empty state, and the turn's text must match `expect`, where `*` stands for any run
//! of characters (newlines included).

use std::time::Duration;

use jiff::Timestamp;

use super::definition::Transcript;
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
    for (index, exchange) in transcript.chat.iter().enumerate() {
        now = advance(now, exchange.after);
        let inbound = Inbound {
            text: &exchange.send,
            from: FROM,
            to: TO,
            opt_out_type: None,
            now,
        };
        let got = step(set, settings, &inbound, &mut state).body();
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
}
