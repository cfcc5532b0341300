//! Property tests: no text at all makes a test or an `expect` panic, and numbers round-trip.

use jiff::civil::date;
use proptest::prelude::*;

use super::input::{Expect, KINDS};
use super::tests::{NAMES, Test};
use super::{DateOrder, Env};

fn all_tests() -> Vec<Test> {
    NAMES
        .iter()
        .map(|name| {
            let args: &[&str] = match *name {
                "has_number_between" => &["-5", "5.5"],
                n if n.starts_with("has_number_") => &["3"],
                n if n.starts_with("has_date_") => &["today"],
                "has_pattern" => &[r"(\w+)\s(\d+)?"],
                "has_only_text" | "has_any_word" | "has_all_words" | "has_phrase"
                | "has_only_phrase" | "has_beginning" => &["yes 👍 ünï"],
                _ => &[],
            };
            let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
            Test::parse(name, &args).expect("valid test")
        })
        .collect()
}

fn all_expects() -> Vec<Expect> {
    let mut expects: Vec<Expect> = KINDS
        .iter()
        .map(|k| Expect::parse(k, None, None, None).expect("valid"))
        .collect();
    expects.push(Expect::parse("number", Some(-1.5), Some(14.0), None).expect("valid"));
    expects.push(Expect::parse("date", None, None, Some("60d")).expect("valid"));
    expects
}

/// Texts a phone can send: any characters, weighted towards digits, separators, other-script
/// digits, emoji, RTL marks and control characters, up to 1,600 characters.
fn texts() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<char>().prop_map(String::from),
        "[0-9]{1,5}",
        "[-+.,:/ ()]",
        "[٠-٩۰-۹]{1,3}",
        "(am|pm|noon|today|friday|yes|no|@|\\.com)",
        "[\u{0}-\u{1f}\u{7f}\u{200f}\u{202e}👍🏽😀]",
    ];
    prop::collection::vec(piece, 0..400)
        .prop_map(|parts| parts.concat().chars().take(1600).collect())
}

proptest! {
    #[test]
    fn no_text_panics_a_test_or_an_expect(text in texts(), order in 0..3u8, day in 0..3000i32) {
        let today = date(2020, 1, 1).checked_add(jiff::Span::new().days(day)).expect("in range");
        let date_order = [DateOrder::DayMonthYear, DateOrder::MonthDayYear, DateOrder::YearMonthDay][order as usize];
        let env = Env { date_order, ..Env::new(today) };
        for test in all_tests() {
            if let Some(found) = test.eval(&text, &env) {
                prop_assert!(found.value.len() <= text.len() + 16);
            }
        }
        for expect in all_expects() {
            let _ = expect.read(&text, &env).map(|p| p.to_string());
        }
    }

    #[test]
    fn any_integer_in_a_text_is_found_exactly(n in any::<i64>(), before in "[a-z ]{0,10}", after in "[a-z ]{0,10}") {
        let text = format!("{before} {n} {after}");
        let found = Test::parse("has_number", &[]).expect("valid").eval(&text, &Env::new(date(2026, 1, 1)));
        prop_assert_eq!(found.map(|m| m.value), Some(n.to_string()));
    }

    #[test]
    fn any_valid_date_round_trips_through_iso(day in 0..40_000i32) {
        let d = date(1950, 1, 1).checked_add(jiff::Span::new().days(day)).expect("in range");
        let expect = Expect::parse("date", None, None, None).expect("valid");
        let read = expect.read(&format!("on {d}!"), &Env::new(date(2026, 1, 1)));
        prop_assert_eq!(read.map(|p| p.to_string()), Some(d.to_string()));
    }
}
