//! The case tests of `ask` and `branch` nodes: nyaruka/goflow's router tests, same names, same
//! meaning (`flows/routers/cases/tests.go`), over plain data.
//!
//! A flow file names a test and its arguments; [`Test::parse`] checks them once at load (regexes
//! compile there) and [`Test::eval`] runs per reply, giving goflow's `match`: the words, number,
//! date, time, email or phone found. Texts are compared as words (see `text.rs`) in any case, so
//! `"cityscape"` has no word `city`; numbers and dates are found as in `number.rs`/`dates.rs`, and
//! for numbers the first one that passes wins (`"I want 20 not 5"` is `has_number_lt 10` by 5).
//!
//! Differences from goflow, on purpose: an empty word list or beginning is refused at load
//! (goflow lets `has_phrase ""` match everything and `has_any_word ""` nothing); date arguments
//! are `YYYY-MM-DD`, `today` or `tomorrow` (no template expressions); `has_pattern` uses Rust
//! regex syntax, where `\d`, `\w` and `\b` are Unicode-aware; `has_phrase` finds a phrase that
//! starts inside a broken partial match (`"a b"` in `"a a b"`, which goflow misses); matches of
//! dates and times are `2026-12-01` and `15:30`, not goflow's full datetimes.

use std::ops::RangeInclusive;

use regex::{Regex, RegexBuilder};

use super::dates::{DateArg, clock_text, find_date, find_times};
use super::env::Env;
use super::number::Number;
use super::phone::{Country, find_phone};
use super::text::{find_email, fold, folded_words, words};

/// A compiled pattern may use this much memory (a flow file is config, not code).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One case test with its arguments, ready to run.
#[derive(Debug, Clone)]
pub enum Test {
    /// `has_text`: anything but white space (match: the trimmed text). `has_value` is an alias.
    HasText,
    /// `has_only_text(t)`: exactly `t`, case and spaces included.
    HasOnlyText(String),
    /// `has_any_word(words)`: any of the words (match: every such word of the text).
    HasAnyWord(Vec<String>),
    /// `has_all_words(words)`: all of the words, any order (match: every such word of the text).
    HasAllWords(Vec<String>),
    /// `has_phrase(phrase)`: the words next to each other, in order.
    HasPhrase(Vec<String>),
    /// `has_only_phrase(phrase)`: the text is those words and nothing else.
    HasOnlyPhrase(Vec<String>),
    /// `has_beginning(b)`: the trimmed text starts with `b` in any case, no word splitting.
    HasBeginning(String),
    /// `has_pattern(regex)`: case-insensitive, multi-line (match: the whole match).
    HasPattern(Regex),
    /// `has_number` and `has_number_between|lt|lte|eq|gte|gt`.
    HasNumber(NumberCheck),
    /// `has_date` and `has_date_lt|eq|gt`.
    HasDate(DateCheck),
    /// `has_time`.
    HasTime,
    /// `has_email`.
    HasEmail,
    /// `has_phone(country?)`: without a country, the environment's.
    HasPhone(Option<Country>),
}

/// Which numbers pass a number test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberCheck {
    Any,
    Between(Number, Number),
    Lt(Number),
    Lte(Number),
    Eq(Number),
    Gte(Number),
    Gt(Number),
}

/// Which dates pass a date test (compared as dates, no time of day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateCheck {
    Any,
    Lt(DateArg),
    Eq(DateArg),
    Gt(DateArg),
}

/// What a passing test found: goflow's `match`, and for `has_pattern` the capture groups
/// (`groups[0]` is the whole match; a group that took no part is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub value: String,
    pub groups: Vec<String>,
}

impl Match {
    fn of(value: impl Into<String>) -> Match {
        Match {
            value: value.into(),
            groups: Vec::new(),
        }
    }
}

/// Why a test in a flow file cannot be used; each names the test.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TestError {
    #[error("unknown test {0:?}")]
    Unknown(String),
    #[error("{test} takes {expected} argument(s), got {got}")]
    ArgCount {
        test: &'static str,
        expected: &'static str,
        got: usize,
    },
    #[error("{test}: {arg:?} is not a number")]
    BadNumber { test: &'static str, arg: String },
    #[error("{test}: {arg:?} is not a date (use YYYY-MM-DD, today or tomorrow)")]
    BadDate { test: &'static str, arg: String },
    #[error("{test}: bad regular expression: {reason}")]
    BadRegex { test: &'static str, reason: String },
    #[error("{test}: unknown country {arg:?} (known: {known})")]
    BadCountry {
        test: &'static str,
        arg: String,
        known: String,
    },
    #[error("{test}: needs at least one word")]
    NoWords { test: &'static str },
    #[error("{test}: min {min} is greater than max {max}")]
    MinOverMax {
        test: &'static str,
        min: String,
        max: String,
    },
}

/// Every test name [`Test::parse`] knows, for `flow check` and the docs.
pub const NAMES: [&str; 23] = [
    "has_text",
    "has_value",
    "has_only_text",
    "has_any_word",
    "has_all_words",
    "has_phrase",
    "has_only_phrase",
    "has_beginning",
    "has_pattern",
    "has_number",
    "has_number_between",
    "has_number_lt",
    "has_number_lte",
    "has_number_eq",
    "has_number_gte",
    "has_number_gt",
    "has_date",
    "has_date_lt",
    "has_date_eq",
    "has_date_gt",
    "has_time",
    "has_email",
    "has_phone",
];

impl Test {
    /// Builds the test `name` with the arguments a flow file gives it (the text is not one).
    pub fn parse(name: &str, args: &[String]) -> Result<Test, TestError> {
        let Some(&test) = NAMES.iter().find(|n| **n == name) else {
            return Err(TestError::Unknown(name.to_owned()));
        };
        let a = Args { test, args };
        Ok(match test {
            "has_text" | "has_value" => a.count(0..=0).map(|()| Test::HasText)?,
            "has_only_text" => Test::HasOnlyText(a.one()?.to_owned()),
            "has_any_word" => Test::HasAnyWord(a.words()?),
            "has_all_words" => Test::HasAllWords(a.words()?),
            "has_phrase" => Test::HasPhrase(a.words()?),
            "has_only_phrase" => Test::HasOnlyPhrase(a.words()?),
            "has_beginning" => Test::HasBeginning(a.beginning()?),
            "has_pattern" => Test::HasPattern(a.regex()?),
            "has_date" | "has_time" | "has_email" | "has_number" => a.no_arg_test()?,
            "has_phone" => Test::HasPhone(a.country()?),
            date if date.starts_with("has_date_") => Test::HasDate(a.date_check()?),
            _ => Test::HasNumber(a.number_check()?),
        })
    }

    /// Runs the test on a reply; `None` when it does not pass.
    pub fn eval(&self, input: &str, env: &Env) -> Option<Match> {
        match self {
            Test::HasText => Some(input.trim()).filter(|t| !t.is_empty()).map(Match::of),
            Test::HasOnlyText(t) => (input == t).then(|| Match::of(input)),
            Test::HasAnyWord(pins) => any_word(input, pins),
            Test::HasAllWords(pins) => all_words(input, pins),
            Test::HasPhrase(pins) => phrase(input, pins),
            Test::HasOnlyPhrase(pins) => only_phrase(input, pins),
            Test::HasBeginning(b) => beginning(input, b),
            Test::HasPattern(regex) => pattern(input, regex),
            Test::HasNumber(check) => Number::find_all(input)
                .into_iter()
                .find(|n| check.passes(n))
                .map(|n| Match::of(n.to_string())),
            Test::HasDate(check) => find_date(input, env)
                .filter(|d| check.passes(*d, env))
                .map(|d| Match::of(d.to_string())),
            Test::HasTime => find_times(input)
                .first()
                .map(|c| Match::of(clock_text(c.time))),
            Test::HasEmail => find_email(input).map(Match::of),
            Test::HasPhone(country) => {
                find_phone(input, country.unwrap_or(env.country)).map(Match::of)
            }
        }
    }
}

impl NumberCheck {
    pub fn passes(&self, n: &Number) -> bool {
        match self {
            NumberCheck::Any => true,
            NumberCheck::Between(min, max) => min <= n && n <= max,
            NumberCheck::Lt(x) => n < x,
            NumberCheck::Lte(x) => n <= x,
            NumberCheck::Eq(x) => n == x,
            NumberCheck::Gte(x) => n >= x,
            NumberCheck::Gt(x) => n > x,
        }
    }
}

impl DateCheck {
    pub fn passes(&self, date: jiff::civil::Date, env: &Env) -> bool {
        match self {
            DateCheck::Any => true,
            DateCheck::Lt(x) => date < x.resolve(env.today),
            DateCheck::Eq(x) => date == x.resolve(env.today),
            DateCheck::Gt(x) => date > x.resolve(env.today),
        }
    }
}

/// A test's name and its arguments, read one way or another.
struct Args<'a> {
    test: &'static str,
    args: &'a [String],
}

impl Args<'_> {
    fn count(&self, expected: RangeInclusive<usize>) -> Result<(), TestError> {
        if expected.contains(&self.args.len()) {
            return Ok(());
        }
        Err(TestError::ArgCount {
            test: self.test,
            expected: match (expected.start(), expected.end()) {
                (0, 0) => "no",
                (1, 1) => "1",
                (2, 2) => "2",
                _ => "0 or 1",
            },
            got: self.args.len(),
        })
    }

    fn one(&self) -> Result<&str, TestError> {
        self.count(1..=1).map(|()| self.args[0].as_str())
    }

    fn no_arg_test(&self) -> Result<Test, TestError> {
        self.count(0..=0)?;
        Ok(match self.test {
            "has_date" => Test::HasDate(DateCheck::Any),
            "has_time" => Test::HasTime,
            "has_email" => Test::HasEmail,
            _ => Test::HasNumber(NumberCheck::Any),
        })
    }

    fn words(&self) -> Result<Vec<String>, TestError> {
        let words = folded_words(self.one()?);
        if words.is_empty() {
            return Err(TestError::NoWords { test: self.test });
        }
        Ok(words)
    }

    fn beginning(&self) -> Result<String, TestError> {
        let beginning = self.one()?.trim();
        if beginning.is_empty() {
            return Err(TestError::NoWords { test: self.test });
        }
        Ok(beginning.to_owned())
    }

    fn regex(&self) -> Result<Regex, TestError> {
        let source = format!("(?mi){}", self.one()?.trim());
        RegexBuilder::new(&source)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| TestError::BadRegex {
                test: self.test,
                reason: one_line(&e.to_string()),
            })
    }

    fn country(&self) -> Result<Option<Country>, TestError> {
        self.count(0..=1)?;
        let Some(arg) = self.args.first() else {
            return Ok(None);
        };
        Country::parse(arg)
            .map(Some)
            .ok_or_else(|| TestError::BadCountry {
                test: self.test,
                arg: arg.clone(),
                known: Country::supported().collect::<Vec<_>>().join(", "),
            })
    }

    fn number(&self, arg: &str) -> Result<Number, TestError> {
        Number::parse(arg).ok_or_else(|| TestError::BadNumber {
            test: self.test,
            arg: arg.to_owned(),
        })
    }

    fn number_check(&self) -> Result<NumberCheck, TestError> {
        if self.test == "has_number_between" {
            self.count(2..=2)?;
            let (min, max) = (self.number(&self.args[0])?, self.number(&self.args[1])?);
            if min > max {
                let (min, max) = (min.to_string(), max.to_string());
                return Err(TestError::MinOverMax {
                    test: self.test,
                    min,
                    max,
                });
            }
            return Ok(NumberCheck::Between(min, max));
        }
        let n = self.number(self.one()?)?;
        Ok(match self.test {
            "has_number_lt" => NumberCheck::Lt(n),
            "has_number_lte" => NumberCheck::Lte(n),
            "has_number_eq" => NumberCheck::Eq(n),
            "has_number_gte" => NumberCheck::Gte(n),
            _ => NumberCheck::Gt(n),
        })
    }

    fn date_check(&self) -> Result<DateCheck, TestError> {
        let arg = self.one()?;
        let date = DateArg::parse(arg).ok_or_else(|| TestError::BadDate {
            test: self.test,
            arg: arg.to_owned(),
        })?;
        Ok(match self.test {
            "has_date_lt" => DateCheck::Lt(date),
            "has_date_eq" => DateCheck::Eq(date),
            _ => DateCheck::Gt(date),
        })
    }
}

/// The words of `input` that are among `pins`, joined by spaces, if any.
fn any_word(input: &str, pins: &[String]) -> Option<Match> {
    let found: Vec<&str> = words(input.trim())
        .into_iter()
        .filter(|w| {
            let folded = fold(w);
            pins.iter().any(|pin| *pin == *folded)
        })
        .collect();
    (!found.is_empty()).then(|| Match::of(found.join(" ")))
}

fn all_words(input: &str, pins: &[String]) -> Option<Match> {
    let hays = words(input.trim());
    let folded: Vec<String> = hays.iter().map(|w| fold(w).into_owned()).collect();
    if !pins.iter().all(|p| folded.contains(p)) {
        return None;
    }
    let found: Vec<&str> = hays
        .iter()
        .zip(&folded)
        .filter(|(_, f)| pins.contains(f))
        .map(|(w, _)| *w)
        .collect();
    Some(Match::of(found.join(" ")))
}

/// The first run of words equal to `pins`. (goflow's scan does not retry the word that broke a
/// partial match, so it misses `"a b"` in `"a a b"`; this does not.)
fn phrase(input: &str, pins: &[String]) -> Option<Match> {
    let hays = words(input.trim());
    let folded: Vec<String> = hays.iter().map(|w| fold(w).into_owned()).collect();
    let start = folded.windows(pins.len()).position(|w| w == pins)?;
    Some(Match::of(hays[start..start + pins.len()].join(" ")))
}

fn only_phrase(input: &str, pins: &[String]) -> Option<Match> {
    let hays = words(input.trim());
    let same = hays.len() == pins.len() && hays.iter().zip(pins).all(|(h, p)| *fold(h) == **p);
    same.then(|| Match::of(hays.join(" ")))
}

/// `beginning` is trimmed and non-empty (checked in `parse`).
fn beginning(input: &str, beginning: &str) -> Option<Match> {
    let hay = input.trim();
    let len = beginning.chars().count();
    let end = hay.char_indices().nth(len).map_or(hay.len(), |(i, _)| i);
    let prefix = &hay[..end];
    let same = prefix.chars().count() == len && prefix.to_lowercase() == beginning.to_lowercase();
    same.then(|| Match::of(prefix))
}

fn pattern(input: &str, regex: &Regex) -> Option<Match> {
    let caps = regex.captures(input)?;
    let groups: Vec<String> = caps
        .iter()
        .map(|g| g.map_or_else(String::new, |m| m.as_str().to_owned()))
        .collect();
    Some(Match {
        value: groups[0].clone(),
        groups,
    })
}

/// A regex syntax error is several lines (the pattern, a caret, `error: why`); a problem is
/// one line (`FILE:LINE:COL: node NAME: reason`), and the line already says where.
fn one_line(reason: &str) -> String {
    match reason.lines().last() {
        Some(last) if reason.contains('\n') => last.trim_start_matches("error: ").trim().to_owned(),
        _ => reason.to_owned(),
    }
}

#[cfg(test)]
mod unit;
