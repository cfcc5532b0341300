//! Unit tests of `input.rs`.

use jiff::civil::date;

use super::*;
use crate::flows::engine::Country;

/// Thursday 19 November 2026, US defaults.
fn env() -> Env {
    Env::new(date(2026, 11, 19))
}

fn expect(kind: &str) -> Expect {
    Expect::parse(kind, None, None, None).expect("known kind")
}

/// The saved value of `expect` reading `text`.
fn saved(expect: &Expect, text: &str) -> Option<String> {
    expect.read(text, &env()).map(|p| p.to_string())
}

fn yes(value: &str) -> Option<String> {
    Some(value.to_owned())
}

#[test]
fn text_is_anything_but_white_space() {
    assert_eq!(saved(&expect("text"), "  Ünïcödé 👍 "), yes("Ünïcödé 👍"));
    assert_eq!(saved(&expect("text"), " \n "), None);
    assert_eq!(saved(&expect("text"), ""), None);
}

#[test]
fn numbers_are_saved_in_shortest_form_within_bounds() {
    let nights = Expect::parse("number", Some(1.0), Some(14.0), None).expect("valid");
    assert_eq!(saved(&nights, "3.0 nights"), yes("3"));
    assert_eq!(saved(&nights, "about 2.50"), yes("2.5"));
    assert_eq!(saved(&nights, "I want 20 not 5"), yes("5"));
    assert_eq!(saved(&nights, "15"), None);
    assert_eq!(saved(&nights, "0"), None);
    assert_eq!(saved(&nights, "٣"), yes("3"));
    assert_eq!(saved(&nights, "three"), None);
    assert_eq!(saved(&expect("number"), "-1,500.25"), yes("-1500.25"));
    let at_least = Expect::parse("number", Some(0.5), None, None).expect("valid");
    assert_eq!(saved(&at_least, "0.4 or 0.5"), yes("0.5"));
}

#[test]
fn integers_skip_fractions() {
    let guests = Expect::parse("integer", Some(1.0), Some(8.0), None).expect("valid");
    assert_eq!(saved(&guests, "2.5 or 3"), yes("3"));
    assert_eq!(saved(&guests, "4.0"), yes("4"));
    assert_eq!(saved(&guests, "2.5"), None);
    assert_eq!(saved(&expect("integer"), "-7"), yes("-7"));
}

#[test]
fn dates_in_every_form_are_saved_iso() {
    let day = expect("date");
    assert_eq!(saved(&day, "today"), yes("2026-11-19"));
    assert_eq!(saved(&day, "Tomorrow please"), yes("2026-11-20"));
    assert_eq!(saved(&day, "tuesday"), yes("2026-11-24"));
    assert_eq!(saved(&day, "12/1"), yes("2026-12-01"));
    assert_eq!(saved(&day, "12/1/2026"), yes("2026-12-01"));
    assert_eq!(saved(&day, "2026-12-01"), yes("2026-12-01"));
    assert_eq!(saved(&day, "whenever"), None);
}

#[test]
fn within_bounds_dates_from_today() {
    let soon = Expect::parse("date", None, None, Some("60d")).expect("valid");
    assert_eq!(saved(&soon, "today"), yes("2026-11-19"));
    assert_eq!(saved(&soon, "1/18/2027"), yes("2027-01-18"));
    assert_eq!(saved(&soon, "1/19/2027"), None);
    assert_eq!(saved(&soon, "11/18/2026"), None);
    let week = Expect::parse("date", None, None, Some("1 week")).expect("valid");
    assert_eq!(saved(&week, "thursday"), yes("2026-11-26"));
    assert_eq!(saved(&week, "11/27"), None);
    let month = Expect::parse("date", None, None, Some("P1M")).expect("valid");
    assert_eq!(saved(&month, "12/19"), yes("2026-12-19"));
    assert_eq!(saved(&month, "12/20"), None);
}

#[test]
fn times_must_be_unmistakable() {
    let at = expect("time");
    assert_eq!(saved(&at, "3pm"), yes("15:00"));
    assert_eq!(saved(&at, "15:30"), yes("15:30"));
    assert_eq!(saved(&at, "3:30 pm"), yes("15:30"));
    assert_eq!(saved(&at, "noon"), yes("12:00"));
    assert_eq!(saved(&at, "around 3 or 4pm"), yes("16:00"));
    assert_eq!(saved(&at, "3"), None);
    assert_eq!(saved(&at, "25:00"), None);
}

#[test]
fn email_and_phone() {
    assert_eq!(
        saved(&expect("email"), "it's <Ann@Example.org>."),
        yes("Ann@Example.org")
    );
    assert_eq!(saved(&expect("email"), "ann at example"), None);
    assert_eq!(
        saved(&expect("phone"), "call (415) 555-0100"),
        yes("+14155550100")
    );
    assert_eq!(saved(&expect("phone"), "555-0100"), None);
    let gb = Env {
        country: Country::parse("GB").expect("known"),
        ..env()
    };
    let m = expect("phone")
        .read("020 7946 0018", &gb)
        .map(|p| p.to_string());
    assert_eq!(m, yes("+442079460018"));
}

#[test]
fn yes_no_needs_one_side_only() {
    let yn = expect("yes_no");
    for text in [
        "yes",
        "Y",
        "Yes please!",
        "ok",
        "Sure thing",
        "👍",
        "yep 👍",
    ] {
        assert_eq!(saved(&yn, text), yes("yes"), "{text}");
    }
    for text in ["no", "N", "nope", "No thanks", "👎", "nah."] {
        assert_eq!(saved(&yn, text), yes("no"), "{text}");
    }
    for text in [
        "not sure",
        "yes no",
        "maybe",
        "",
        "yesterday",
        "know",
        "👍👎",
    ] {
        assert_eq!(saved(&yn, text), None, "{text}");
    }
}

fn error(kind: &str, min: Option<f64>, max: Option<f64>, within: Option<&str>) -> String {
    Expect::parse(kind, min, max, within)
        .map(|_| ())
        .expect_err("refused")
        .to_string()
}

#[test]
fn bad_expects_are_refused_with_the_reason() {
    assert!(error("colour", None, None, None).starts_with(r#"unknown expect "colour""#));
    assert_eq!(
        error("text", Some(1.0), None, None),
        r#"expect = "text" takes no `min`"#
    );
    assert_eq!(
        error("date", None, Some(1.0), None),
        r#"expect = "date" takes no `max`"#
    );
    assert_eq!(
        error("number", None, None, Some("3d")),
        r#"expect = "number" takes no `within`"#
    );
    assert_eq!(
        error("number", Some(f64::NAN), None, None),
        "`min` = NaN is not a usable number"
    );
    assert_eq!(
        error("integer", Some(5.0), Some(1.0), None),
        "`min` = 5 is greater than `max` = 1"
    );
    assert!(error("date", None, None, Some("soon")).starts_with(r#"`within` = "soon": "#));
    assert_eq!(
        error("date", None, None, Some("12h")),
        r#"`within` = "12h": use days, weeks, months or years"#
    );
    assert_eq!(
        error("date", None, None, Some("-3d")),
        r#"`within` = "-3d": must not be negative"#
    );
}

#[test]
fn every_kind_parses() {
    for kind in KINDS {
        expect(kind);
    }
}
