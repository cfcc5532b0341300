//! Typed `expect` for `ask` nodes: read a reply as a number, a date, yes or no …, or not at all.
//!
//! One reading of numbers, dates, times, emails and phones serves both this and the case tests
//! ([`super::tests`]), so `expect = "number"` and `has_number` agree on what a number is. A reply
//! that reads as nothing usable gets the node's retry text; a reply that does is saved as the
//! [`Parsed`] value's text: numbers in shortest form (`3`, not `3.0`), dates `2026-12-01`, times
//! `15:30`, phones E.164, yes/no as `yes`/`no`.
//!
//! | expect | takes | saved |
//! |---|---|---|
//! | `text` | anything but white space | the trimmed text |
//! | `number` | the first number within `min`/`max` (both optional, inclusive) | `12.5` |
//! | `integer` | the first whole number within `min`/`max` | `12` |
//! | `date` | the first date (see `dates.rs`); with `within = "60d"` only today … today + 60 days | `2026-12-01` |
//! | `time` | the first time with a colon, am/pm, or `noon`/`midnight` (`3pm`, `15:30`) | `15:00` |
//! | `email` | the first email address | as written |
//! | `phone` | the first phone number, national ones in the environment's country | `+14155550100` |
//! | `yes_no` | words from one of the lists below and none from the other | `yes` / `no` |
//!
//! Yes: yes, y, yeah, yea, yep, yup, ya, yah, ok, okay, k, sure, certainly, definitely,
//! absolutely, correct, right, confirm, confirmed, affirmative, true, 👍, ✅, ✔, ☑.
//! No: no, n, nope, nah, na, nay, not, never, negative, incorrect, wrong, false, 👎, ❌, ✖.
//! So "yes please" is yes, "nope" is no, and "not sure" or "yes no" is neither (asked again).
//! STOP, CANCEL and the other opt-out words never get here: compliance handles them first.

use std::fmt;

use jiff::Span;
use jiff::civil::{Date, Time};

use super::dates::{clock_text, find_date, find_times};
use super::env::Env;
use super::number::Number;
use super::phone::find_phone;
use super::text::{find_email, folded_words};

const YES: [&str; 25] = [
    "yes",
    "y",
    "yeah",
    "yea",
    "yep",
    "yup",
    "ya",
    "yah",
    "ok",
    "okay",
    "k",
    "sure",
    "certainly",
    "definitely",
    "absolutely",
    "correct",
    "right",
    "confirm",
    "confirmed",
    "affirmative",
    "true",
    "👍",
    "✅",
    "✔",
    "☑",
];
const NO: [&str; 15] = [
    "no",
    "n",
    "nope",
    "nah",
    "na",
    "nay",
    "not",
    "never",
    "negative",
    "incorrect",
    "wrong",
    "false",
    "👎",
    "❌",
    "✖",
];

/// What an `ask` node expects, with its bounds.
#[derive(Debug, Clone)]
pub enum Expect {
    Text,
    Number {
        min: Option<Number>,
        max: Option<Number>,
    },
    Integer {
        min: Option<Number>,
        max: Option<Number>,
    },
    /// `within`: the answer must fall between today and today plus this span (calendar units).
    Date {
        within: Option<Span>,
    },
    Time,
    Email,
    Phone,
    YesNo,
}

/// A reply read as what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Text(String),
    Number(Number),
    Date(Date),
    Time(Time),
    Email(String),
    Phone(String),
    YesNo(bool),
}

/// Why an `expect` in a flow file cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExpectError {
    #[error(
        "unknown expect {0:?} (known: text, number, integer, date, time, email, phone, yes_no)"
    )]
    Unknown(String),
    #[error("expect = {kind:?} takes no `{key}`")]
    NotAllowed {
        kind: &'static str,
        key: &'static str,
    },
    #[error("`{key}` = {value} is not a usable number")]
    BadBound { key: &'static str, value: f64 },
    #[error("`min` = {min} is greater than `max` = {max}")]
    MinOverMax { min: String, max: String },
    #[error("`within` = {within:?}: {reason}")]
    BadWithin { within: String, reason: String },
}

/// The `expect` names [`Expect::parse`] knows.
pub const KINDS: [&str; 8] = [
    "text", "number", "integer", "date", "time", "email", "phone", "yes_no",
];

impl Expect {
    /// Builds an `expect` from a flow file's `expect`, `min`, `max` and `within` keys; `min` and
    /// `max` belong to `number`/`integer` only, `within` to `date` only.
    pub fn parse(
        kind: &str,
        min: Option<f64>,
        max: Option<f64>,
        within: Option<&str>,
    ) -> Result<Expect, ExpectError> {
        let Some(&kind) = KINDS.iter().find(|k| **k == kind) else {
            return Err(ExpectError::Unknown(kind.to_owned()));
        };
        let numeric = matches!(kind, "number" | "integer");
        refuse(kind, "min", min.is_some() && !numeric)?;
        refuse(kind, "max", max.is_some() && !numeric)?;
        refuse(kind, "within", within.is_some() && kind != "date")?;
        Ok(match kind {
            "text" => Expect::Text,
            "number" | "integer" => bounded(kind, min, max)?,
            "date" => Expect::Date {
                within: within.map(parse_within).transpose()?,
            },
            "time" => Expect::Time,
            "email" => Expect::Email,
            "phone" => Expect::Phone,
            _ => Expect::YesNo,
        })
    }

    /// Reads a reply; `None` when it holds nothing usable (the node asks again).
    pub fn read(&self, text: &str, env: &Env) -> Option<Parsed> {
        match self {
            Expect::Text => Some(text.trim())
                .filter(|t| !t.is_empty())
                .map(|t| Parsed::Text(t.to_owned())),
            Expect::Number { min, max } => first_number(text, min, max, false),
            Expect::Integer { min, max } => first_number(text, min, max, true),
            Expect::Date { within } => read_date(text, env, *within),
            Expect::Time => find_times(text)
                .into_iter()
                .find(|c| c.explicit)
                .map(|c| Parsed::Time(c.time)),
            Expect::Email => find_email(text).map(|e| Parsed::Email(e.to_owned())),
            Expect::Phone => find_phone(text, env.country).map(Parsed::Phone),
            Expect::YesNo => yes_no(text).map(Parsed::YesNo),
        }
    }
}

fn refuse(kind: &'static str, key: &'static str, present: bool) -> Result<(), ExpectError> {
    if present {
        return Err(ExpectError::NotAllowed { kind, key });
    }
    Ok(())
}

fn bound(key: &'static str, value: Option<f64>) -> Result<Option<Number>, ExpectError> {
    value
        .map(|v| Number::try_from(v).map_err(|_| ExpectError::BadBound { key, value: v }))
        .transpose()
}

fn bounded(kind: &str, min: Option<f64>, max: Option<f64>) -> Result<Expect, ExpectError> {
    let (min, max) = (bound("min", min)?, bound("max", max)?);
    if let (Some(lo), Some(hi)) = (&min, &max)
        && lo > hi
    {
        return Err(ExpectError::MinOverMax {
            min: lo.to_string(),
            max: hi.to_string(),
        });
    }
    Ok(match kind {
        "number" => Expect::Number { min, max },
        _ => Expect::Integer { min, max },
    })
}

/// `60d`, `2 weeks`, `3 months`, `P60D`: whole calendar units, not negative.
fn parse_within(within: &str) -> Result<Span, ExpectError> {
    let bad = |reason: &str| ExpectError::BadWithin {
        within: within.to_owned(),
        reason: reason.to_owned(),
    };
    let span: Span = within
        .trim()
        .parse()
        .map_err(|e: jiff::Error| bad(&e.to_string()))?;
    let clock_units = span.get_hours() != 0
        || span.get_minutes() != 0
        || span.get_seconds() != 0
        || span.get_milliseconds() != 0
        || span.get_microseconds() != 0
        || span.get_nanoseconds() != 0;
    if clock_units {
        return Err(bad("use days, weeks, months or years"));
    }
    if span.is_negative() {
        return Err(bad("must not be negative"));
    }
    Ok(span)
}

/// The first number in `text` inside the bounds (and whole, if asked): the first passing wins.
fn first_number(
    text: &str,
    min: &Option<Number>,
    max: &Option<Number>,
    whole: bool,
) -> Option<Parsed> {
    Number::find_all(text)
        .into_iter()
        .find(|n| {
            (!whole || n.is_integer())
                && min.as_ref().is_none_or(|lo| n >= lo)
                && max.as_ref().is_none_or(|hi| n <= hi)
        })
        .map(Parsed::Number)
}

fn read_date(text: &str, env: &Env, within: Option<Span>) -> Option<Parsed> {
    let date = find_date(text, env)?;
    let inside = match within {
        None => true,
        Some(span) => {
            let last = env.today.checked_add(span).unwrap_or(Date::MAX);
            env.today <= date && date <= last
        }
    };
    inside.then_some(Parsed::Date(date))
}

fn yes_no(text: &str) -> Option<bool> {
    let words = folded_words(text);
    let yes = words.iter().any(|w| YES.contains(&w.as_str()));
    let no = words.iter().any(|w| NO.contains(&w.as_str()));
    match (yes, no) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

impl fmt::Display for Parsed {
    /// The value as it is saved in the conversation's variables.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Parsed::Text(s) | Parsed::Email(s) | Parsed::Phone(s) => f.write_str(s),
            Parsed::Number(n) => write!(f, "{n}"),
            Parsed::Date(d) => write!(f, "{d}"),
            Parsed::Time(t) => f.write_str(&clock_text(*t)),
            Parsed::YesNo(yes) => f.write_str(if *yes { "yes" } else { "no" }),
        }
    }
}

#[cfg(test)]
mod unit;
