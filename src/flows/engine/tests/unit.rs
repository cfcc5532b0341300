//! Unit tests of `tests.rs`.

use jiff::civil::date;

use super::*;
use crate::flows::engine::DateOrder;

/// Thursday 19 November 2026, US defaults.
fn env() -> Env {
    Env::new(date(2026, 11, 19))
}

fn test(name: &str, args: &[&str]) -> Test {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    Test::parse(name, &args).unwrap_or_else(|e| panic!("{name} {args:?}: {e}"))
}

/// The match of `name(args)` on `text`, or `None`.
fn run(name: &str, args: &[&str], text: &str) -> Option<String> {
    test(name, args).eval(text, &env()).map(|m| m.value)
}

fn yes(value: &str) -> Option<String> {
    Some(value.to_owned())
}

#[test]
fn has_text_needs_more_than_white_space() {
    assert_eq!(run("has_text", &[], "  quick brown \n"), yes("quick brown"));
    assert_eq!(run("has_text", &[], " \n\t"), None);
    assert_eq!(run("has_text", &[], ""), None);
    assert_eq!(run("has_value", &[], "x"), yes("x"));
    assert_eq!(run("has_text", &[], "\u{0}\u{7}"), yes("\u{0}\u{7}"));
}

#[test]
fn has_only_text_is_exact() {
    assert_eq!(
        run("has_only_text", &["hello-world"], "hello-world"),
        yes("hello-world")
    );
    assert_eq!(run("has_only_text", &["hello"], "HELLO"), None);
    assert_eq!(run("has_only_text", &["foo"], " foo "), None);
}

#[test]
fn has_any_word_matches_words_not_substrings() {
    assert_eq!(
        run("has_any_word", &["WORD word2 word"], "this.is.my.word"),
        yes("word")
    );
    assert_eq!(
        run("has_any_word", &["fox quick"], "The Quick Brown Fox"),
        yes("Quick Fox")
    );
    assert_eq!(
        run("has_any_word", &["world"], "this World too"),
        yes("World")
    );
    assert_eq!(
        run("has_any_word", &["don't dont"], "I don't like it"),
        yes("don't")
    );
    assert_eq!(run("has_any_word", &["city"], "cityscape"), None);
    assert_eq!(
        run("has_any_word", &["city"], "the city, please"),
        yes("city")
    );
    assert_eq!(run("has_any_word", &["1 city"], "1"), yes("1"));
    assert_eq!(run("has_any_word", &["1 city"], "10"), None);
    assert_eq!(run("has_any_word", &["world"], ""), None);
}

#[test]
fn has_any_word_in_other_scripts_and_emoji() {
    assert_eq!(
        run("has_any_word", &["βήτα"], "this.is.my.βήτα"),
        yes("βήτα")
    );
    assert_eq!(
        run("has_any_word", &["ünïcödé"], "ÜNÏCÖDÉ!"),
        yes("ÜNÏCÖDÉ")
    );
    assert_eq!(run("has_any_word", &["📴"], "I say to you📴"), yes("📴"));
    assert_eq!(run("has_any_word", &["👍"], "ok👍"), yes("👍"));
    assert_eq!(run("has_any_word", &["👍"], "👎"), None);
    // Right-to-left text: words are compared in logical order, marks and all.
    assert_eq!(
        run("has_any_word", &["نعم"], "\u{200F}نعم، شكرا"),
        yes("نعم")
    );
    assert_eq!(run("has_any_word", &["בסדר"], "כן בסדר"), yes("בסדר"));
    // goflow's default collation: no Persian/Arabic variant folding.
    assert_eq!(run("has_any_word", &["بلی"], "بلي"), None);
}

#[test]
fn has_all_words_in_any_order() {
    assert_eq!(
        run("has_all_words", &["the fox"], "the quick brown FOX"),
        yes("the FOX")
    );
    assert_eq!(
        run("has_all_words", &["WORD word"], "this.is.my.word"),
        yes("word")
    );
    assert_eq!(
        run("has_all_words", &["red fox"], "the quick brown fox"),
        None
    );
}

#[test]
fn has_phrase_needs_the_words_together_in_order() {
    assert_eq!(
        run("has_phrase", &["must resist"], "you Must resist"),
        yes("Must resist")
    );
    assert_eq!(
        run("has_phrase", &["world too"], "this world Too"),
        yes("world Too")
    );
    assert_eq!(
        run("has_phrase", &["this world"], "this is not world"),
        None
    );
    assert_eq!(
        run("has_phrase", &["quick fox"], "the Quick Brown fox"),
        None
    );
    assert_eq!(run("has_phrase", &["a b"], "a a b"), yes("a b"));
}

#[test]
fn has_only_phrase_is_the_whole_text() {
    assert_eq!(
        run("has_only_phrase", &["quick brown"], "Quick Brown"),
        yes("Quick Brown")
    );
    assert_eq!(
        run("has_only_phrase", &["world too"], " world, Too! "),
        yes("world Too")
    );
    assert_eq!(
        run("has_only_phrase", &["quick brown"], "The Quick Brown Fox"),
        None
    );
    assert_eq!(
        run("has_only_phrase", &["this world"], "this world is my world"),
        None
    );
}

#[test]
fn has_beginning_is_a_trimmed_case_insensitive_prefix() {
    assert_eq!(run("has_beginning", &["hell"], "hello"), yes("hell"));
    assert_eq!(
        run("has_beginning", &["hello"], "  HelloThere"),
        yes("Hello")
    );
    assert_eq!(
        run("has_beginning", &["the quick"], "The Quick Brown"),
        yes("The Quick")
    );
    assert_eq!(
        run("has_beginning", &["the   quick"], "The Quick Brown"),
        None
    );
    assert_eq!(
        run("has_beginning", &["quick brown"], "The Quick Brown"),
        None
    );
    assert_eq!(run("has_beginning", &["hello"], "hel"), None);
    assert_eq!(run("has_beginning", &["206"], " 2061212"), yes("206"));
    assert_eq!(run("has_beginning", &["ünï"], "ÜNÏCÖDÉ"), yes("ÜNÏ"));
    assert_eq!(run("has_beginning", &["x"], ""), None);
}

#[test]
fn has_pattern_is_case_insensitive_with_groups() {
    let m = test("has_pattern", &[r"buy (\w+)"]).eval("Buy cheese please", &env());
    let m = m.expect("matches");
    assert_eq!(
        (m.value.as_str(), m.groups.as_slice()),
        (
            "Buy cheese",
            &["Buy cheese".to_owned(), "cheese".to_owned()][..]
        )
    );
    assert_eq!(run("has_pattern", &["HTML"], "<html>x</html>"), yes("html"));
    assert_eq!(run("has_pattern", &["(?-i)HTML"], "<html>x</html>"), None);
    assert_eq!(run("has_pattern", &[r"\A\d{5}\z"], "12345"), yes("12345"));
    assert_eq!(run("has_pattern", &[r"\A\d{5}\z"], "12345 "), None);
    assert_eq!(run("has_pattern", &["^b"], "a\nb"), yes("b"));
    assert_eq!(run("has_pattern", &["[😀-🙏]"], "hi there 😂"), yes("😂"));
    let unmatched = test("has_pattern", &["a(x)?"])
        .eval("a", &env())
        .map(|m| m.groups);
    assert_eq!(unmatched, Some(vec!["a".to_owned(), String::new()]));
}

#[test]
fn has_number_finds_the_first_number() {
    assert_eq!(run("has_number", &[], "the number is 42"), yes("42"));
    assert_eq!(run("has_number", &[], "O número é 500"), yes("500"));
    assert_eq!(run("has_number", &[], "1,000 please"), yes("1000"));
    assert_eq!(run("has_number", &[], "the number is forty two"), None);
    assert_eq!(run("has_number", &[], "العدد ٤٢"), yes("42"));
    assert_eq!(run("has_number", &[], "٣"), yes("3"));
    assert_eq!(run("has_number", &[], ""), None);
}

#[test]
fn the_first_passing_number_wins() {
    assert_eq!(run("has_number_lt", &["10"], "I want 20 not 5"), yes("5"));
    assert_eq!(
        run("has_number_gt", &["10"], "I want 5 no 20 no 30"),
        yes("20")
    );
    assert_eq!(
        run("has_number_between", &["1", "14"], "0 or 15 or 7 or 8"),
        yes("7")
    );
}

#[test]
fn number_comparisons_as_goflow() {
    assert_eq!(run("has_number_lt", &["11"], "the number 10"), yes("10"));
    assert_eq!(run("has_number_lt", &["12"], "too big 15"), None);
    assert_eq!(run("has_number_lt", &["42"], "the number is 42"), None);
    assert_eq!(
        run("has_number_gte", &["42"], "the number is 42"),
        yes("42")
    );
    assert_eq!(
        run("has_number_between", &["42", "42"], "41 42 43"),
        yes("42")
    );
    assert_eq!(
        run("has_number_lt", &["12"], "another is -12.51"),
        yes("-12.51")
    );
    assert_eq!(
        run("has_number_lte", &["42"], "the number is 42"),
        yes("42")
    );
    assert_eq!(run("has_number_lte", &["40"], "the number is 42"), None);
    assert_eq!(
        run("has_number_eq", &["-12.51"], "another is -12.51"),
        yes("-12.51")
    );
    assert_eq!(run("has_number_eq", &[".61"], "wrong .51"), None);
    assert_eq!(run("has_number_eq", &["10"], "١٠"), yes("10"));
    assert_eq!(run("has_number_eq", &["3"], "3.0"), yes("3"));
    assert_eq!(
        run("has_number_gte", &["-13"], "another is -12.51"),
        yes("-12.51")
    );
    assert_eq!(run("has_number_gte", &["-11"], "too small -12"), None);
    assert_eq!(run("has_number_gt", &["-12.51"], "not great -12.51"), None);
    assert_eq!(run("has_number_gt", &["40"], "the number is 42"), yes("42"));
    assert_eq!(run("has_number_between", &["20", "24"], "24ans"), yes("24"));
    assert_eq!(
        run("has_number_between", &["-12.51", "-10"], "is -12.51"),
        yes("-12.51")
    );
    assert_eq!(
        run("has_number_between", &["50", "60"], "the number is 42"),
        None
    );
}

#[test]
fn has_date_reads_the_environment_order_and_words() {
    assert_eq!(
        run("has_date", &[], "the date is 1/2/2026"),
        yes("2026-01-02")
    );
    let dmy = Env {
        date_order: DateOrder::DayMonthYear,
        ..env()
    };
    let m = test("has_date", &[])
        .eval("the date is 15/01/2017", &dmy)
        .map(|m| m.value);
    assert_eq!(m, yes("2017-01-15"));
    assert_eq!(
        run("has_date", &[], "there is no date here, just a year 2017"),
        None
    );
    assert_eq!(run("has_date", &[], "tomorrow"), yes("2026-11-20"));
    assert_eq!(run("has_date", &[], "sat"), yes("2026-11-21"));
    assert_eq!(run("has_date", &[], "12/25"), yes("2026-12-25"));
}

#[test]
fn date_comparisons_fixed_and_relative() {
    assert_eq!(
        run("has_date_lt", &["2017-06-01"], "the date is 1/15/2017"),
        yes("2017-01-15")
    );
    assert_eq!(
        run("has_date_lt", &["2017-01-15"], "the date is 1/15/2017"),
        None
    );
    assert_eq!(
        run("has_date_eq", &["2017-01-15"], "1/15/2017 15:00"),
        yes("2017-01-15")
    );
    assert_eq!(run("has_date_gt", &["2017-03-15"], "1/15/2017"), None);
    assert_eq!(run("has_date_gt", &["today"], "friday"), yes("2026-11-20"));
    assert_eq!(run("has_date_gt", &["today"], "today"), None);
    assert_eq!(
        run("has_date_eq", &["tomorrow"], "Tomorrow!"),
        yes("2026-11-20")
    );
    assert_eq!(
        run("has_date_lt", &["today"], "11/18/2026"),
        yes("2026-11-18")
    );
    assert_eq!(run("has_date_lt", &["2030-01-01"], "no date"), None);
}

#[test]
fn has_time_email_and_phone() {
    assert_eq!(run("has_time", &[], "the time is 10:30"), yes("10:30"));
    assert_eq!(run("has_time", &[], "the time is 10 PM"), yes("22:00"));
    assert_eq!(run("has_time", &[], "just the number 25"), None);
    assert_eq!(
        run("has_email", &[], "my email is foo1@bar.com, please respond"),
        yes("foo1@bar.com")
    );
    assert_eq!(run("has_email", &[], "i'm not sharing my email"), None);
    assert_eq!(
        run("has_phone", &[], "my number is 206 779 9294"),
        yes("+12067799294")
    );
    assert_eq!(
        run("has_phone", &["RW"], "my number is 0788123123"),
        yes("+250788123123")
    );
    assert_eq!(run("has_phone", &["US"], "none of your business"), None);
}

#[test]
fn has_phone_without_a_country_uses_the_environment() {
    let rw = Env {
        country: Country::parse("RW").expect("known"),
        ..env()
    };
    let m = test("has_phone", &[])
        .eval("0788123123", &rw)
        .map(|m| m.value);
    assert_eq!(m, yes("+250788123123"));
}

fn error(name: &str, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    Test::parse(name, &args)
        .map(|_| ())
        .expect_err("refused")
        .to_string()
}

#[test]
fn bad_tests_are_refused_naming_test_and_reason() {
    assert_eq!(error("has_colour", &[]), r#"unknown test "has_colour""#);
    assert_eq!(
        error("has_text", &["x"]),
        "has_text takes no argument(s), got 1"
    );
    assert_eq!(
        error("has_any_word", &[]),
        "has_any_word takes 1 argument(s), got 0"
    );
    assert_eq!(
        error("has_number_between", &["1"]),
        "has_number_between takes 2 argument(s), got 1"
    );
    assert_eq!(
        error("has_phone", &["US", "x"]),
        "has_phone takes 0 or 1 argument(s), got 2"
    );
    assert_eq!(
        error("has_number_lt", &["ten"]),
        r#"has_number_lt: "ten" is not a number"#
    );
    assert_eq!(
        error("has_number_lt", &["1,000"]),
        r#"has_number_lt: "1,000" is not a number"#
    );
    assert_eq!(
        error("has_number_between", &["9", "1"]),
        "has_number_between: min 9 is greater than max 1"
    );
    assert_eq!(
        error("has_date_lt", &["1/2/2026"]),
        r#"has_date_lt: "1/2/2026" is not a date (use YYYY-MM-DD, today or tomorrow)"#
    );
    assert!(error("has_pattern", &["["]).starts_with("has_pattern: bad regular expression: "));
    assert!(
        error("has_phone", &["XX"])
            .starts_with(r#"has_phone: unknown country "XX" (known: US, CA"#)
    );
    assert_eq!(
        error("has_phrase", &[" ,. "]),
        "has_phrase: needs at least one word"
    );
    assert_eq!(
        error("has_beginning", &["  "]),
        "has_beginning: needs at least one word"
    );
}

#[test]
fn a_huge_pattern_is_refused() {
    assert!(error("has_pattern", &[r"\w{1000}\w{1000}"]).contains("bad regular expression"));
}

#[test]
fn every_name_parses_with_suitable_args() {
    for name in NAMES {
        let args: &[&str] = match name {
            "has_number_between" => &["1", "2"],
            n if n.starts_with("has_number_") => &["1"],
            n if n.starts_with("has_date_") => &["today"],
            "has_only_text" | "has_any_word" | "has_all_words" | "has_phrase"
            | "has_only_phrase" | "has_beginning" | "has_pattern" => &["a"],
            _ => &[],
        };
        test(name, args);
    }
}

#[test]
fn long_texts_are_read_to_the_end() {
    let text = format!("{} 7", "word ".repeat(320));
    assert_eq!(text.chars().count(), 1602);
    assert_eq!(run("has_number", &[], &text), yes("7"));
    assert_eq!(run("has_any_word", &["7"], &text), yes("7"));
    assert_eq!(run("has_phrase", &["word 7"], &text), yes("word 7"));
}

#[test]
fn control_characters_split_words() {
    assert_eq!(
        run(
            "has_only_phrase",
            &["yes please"],
            "yes\u{0}\u{1b}please\r\n"
        ),
        yes("yes please")
    );
    assert_eq!(run("has_number", &[], "\u{7f}12\u{0}"), yes("12"));
}
