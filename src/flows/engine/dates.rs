//! Dates and times in a text.
//!
//! Dates, first found wins in this order:
//! 1. year first, `2026-12-01` (also `/` or `.`), anywhere (goflow reads ISO only at the start);
//! 2. day, month and year in the environment's [`DateOrder`] with separators `-./\_ ` and a
//!    2- or 4-digit year (goflow `envs/dates.go`); a 2-digit year is the one within 80 years
//!    before and 20 after today (goflow flips at this year, so `27` would be 1927);
//! 3. `M/D` (`D/M` in day-first order), no year: the next such date from today on, so in
//!    December `1/5` is next January;
//! 4. the words `today`/`tonight`, `tomorrow`/`tmrw`, and weekday names or their short forms
//!    (`fri`, `thurs`): the next such day after today, never today itself.
//!
//! Invalid dates (`31/02/2022`, `33.2.99`) are skipped, as in goflow. Month names are not read.
//!
//! Times (goflow `patternTime`): `10:30`, `10:30:45`, `1030`, `10 PM`, `3pm`, `3 p.m.`, a bare
//! hour `10`, and the words `noon`, `midday`, `midnight`. A time is *explicit* when it has a
//! colon, am/pm or is a word; `expect = "time"` takes only those, so `3` or `2026` is not a time.

use std::sync::LazyLock;

use jiff::ToSpan;
use jiff::civil::{Date, Time, Weekday};
use regex::{Captures, Regex};

use super::env::{DateOrder, Env};
use super::text::{ascii_digits, folded_words};

static YEAR_FIRST_ISO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})(?:[^0-9]|$)")
        .expect("iso date pattern compiles")
});
static THREE_PART: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([0-9]{1,2})[-./\\_ ]([0-9]{1,2})[-./\\_ ]([0-9]{4}|[0-9]{2})\b")
        .expect("date pattern compiles")
});
static YEAR_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([0-9]{4}|[0-9]{2})[-./\\_ ]([0-9]{1,2})[-./\\_ ]([0-9]{1,2})\b")
        .expect("date pattern compiles")
});
static TWO_PART: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([0-9]{1,2})/([0-9]{1,2})\b").expect("month/day pattern compiles")
});
static TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b([0-9]{1,2})(?:(:)?([0-9]{2})(?::([0-9]{2})(?:\.[0-9]+)?)?)?\W*([aApP]\.?[mM]\.?)?\b",
    )
    .expect("time pattern compiles")
});

/// The first date in `text` (see the module docs for what counts).
pub(crate) fn find_date(text: &str, env: &Env) -> Option<Date> {
    let text = ascii_digits(text);
    let ordered = match env.date_order {
        DateOrder::DayMonthYear => first_valid(&THREE_PART, &text, [3, 2, 1], env.today),
        DateOrder::MonthDayYear => first_valid(&THREE_PART, &text, [3, 1, 2], env.today),
        DateOrder::YearMonthDay => first_valid(&YEAR_FIRST, &text, [1, 2, 3], env.today),
    };
    first_valid(&YEAR_FIRST_ISO, &text, [1, 2, 3], env.today)
        .or(ordered)
        .or_else(|| without_year(&text, env))
        .or_else(|| date_word(&text, env.today))
}

/// The first match of `pattern` whose groups `[year, month, day]` make a real date.
fn first_valid(pattern: &Regex, text: &str, ymd: [usize; 3], today: Date) -> Option<Date> {
    pattern.captures_iter(text).find_map(|caps| {
        let [year, month, day] = ymd.map(|i| group_number(&caps, i));
        let year = if caps[ymd[0]].len() == 2 {
            full_year(year, today.year())
        } else {
            year
        };
        Date::new(year, i8::try_from(month).ok()?, i8::try_from(day).ok()?).ok()
    })
}

fn group_number(caps: &Captures<'_>, i: usize) -> i16 {
    caps.get(i)
        .and_then(|m| m.as_str().parse().ok())
        .unwrap_or(0)
}

/// A 2-digit year as the year within 80 years before and 20 after `this_year`.
fn full_year(two_digits: i16, this_year: i16) -> i16 {
    let year = this_year - this_year % 100 + two_digits;
    if year > this_year + 20 {
        year - 100
    } else if year < this_year - 80 {
        year + 100
    } else {
        year
    }
}

/// `M/D` (or `D/M`) not inside a longer `a/b/c`: the next such date from today on.
fn without_year(text: &str, env: &Env) -> Option<Date> {
    TWO_PART.captures_iter(text).find_map(|caps| {
        let whole = caps.get(0)?;
        let before = text[..whole.start()].chars().next_back();
        let after = text[whole.end()..].chars().next();
        if before == Some('/') || after == Some('/') {
            return None;
        }
        let (a, b) = (group_number(&caps, 1), group_number(&caps, 2));
        let (month, day) = match env.date_order {
            DateOrder::DayMonthYear => (b, a),
            _ => (a, b),
        };
        next_on_or_after(
            env.today,
            i8::try_from(month).ok()?,
            i8::try_from(day).ok()?,
        )
    })
}

/// This year's `month`/`day` if it is not past, else next year's (if that one exists).
fn next_on_or_after(today: Date, month: i8, day: i8) -> Option<Date> {
    (0..2).find_map(|ahead| {
        let date = Date::new(today.year().checked_add(ahead)?, month, day).ok()?;
        (date >= today).then_some(date)
    })
}

fn date_word(text: &str, today: Date) -> Option<Date> {
    folded_words(text)
        .iter()
        .find_map(|word| match word.as_str() {
            "today" | "tonight" => Some(today),
            "tomorrow" | "tmrw" | "tmw" => today.tomorrow().ok(),
            other => today.nth_weekday(1, weekday(other)?).ok(),
        })
}

fn weekday(word: &str) -> Option<Weekday> {
    Some(match word {
        "monday" | "mon" => Weekday::Monday,
        "tuesday" | "tue" | "tues" => Weekday::Tuesday,
        "wednesday" | "wed" => Weekday::Wednesday,
        "thursday" | "thu" | "thur" | "thurs" => Weekday::Thursday,
        "friday" | "fri" => Weekday::Friday,
        "saturday" | "sat" => Weekday::Saturday,
        "sunday" | "sun" => Weekday::Sunday,
        _ => return None,
    })
}

/// A date argument of `has_date_lt|eq|gt`: fixed, or relative to the day of the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateArg {
    On(Date),
    Today,
    Tomorrow,
}

impl DateArg {
    /// `2026-12-01`, `today` or `tomorrow`.
    pub fn parse(s: &str) -> Option<DateArg> {
        match s.trim().to_lowercase().as_str() {
            "today" => Some(DateArg::Today),
            "tomorrow" => Some(DateArg::Tomorrow),
            iso => iso.parse::<Date>().ok().map(DateArg::On),
        }
    }

    pub fn resolve(self, today: Date) -> Date {
        match self {
            DateArg::On(date) => date,
            DateArg::Today => today,
            DateArg::Tomorrow => today.checked_add(1.day()).unwrap_or(today),
        }
    }
}

/// A time of day found in a text, and whether it was written unmistakably as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Clock {
    pub(crate) time: Time,
    pub(crate) explicit: bool,
}

/// Every time of day in `text`: numeric ones in order, then the words.
pub(crate) fn find_times(text: &str) -> Vec<Clock> {
    let text = ascii_digits(text);
    let numeric = TIME
        .captures_iter(&text)
        .filter_map(|caps| numeric_time(&caps));
    let words = folded_words(&text).into_iter().filter_map(|word| {
        let hour = match word.as_str() {
            "noon" | "midday" => 12,
            "midnight" => 0,
            _ => return None,
        };
        Some(Clock {
            time: Time::constant(hour, 0, 0, 0),
            explicit: true,
        })
    });
    numeric.chain(words).collect()
}

fn numeric_time(caps: &Captures<'_>) -> Option<Clock> {
    let mut hour = i8::try_from(group_number(caps, 1)).ok()?;
    let minute = i8::try_from(group_number(caps, 3)).ok()?;
    let second = i8::try_from(group_number(caps, 4)).ok()?;
    let meridiem = caps.get(5).map(|m| m.as_str().to_ascii_lowercase());
    match meridiem.as_deref().map(|m| m.starts_with('p')) {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    if hour == 24 && minute == 0 && second == 0 {
        hour = 0;
    }
    Some(Clock {
        time: Time::new(hour, minute, second, 0).ok()?,
        explicit: caps.get(2).is_some() || meridiem.is_some(),
    })
}

/// `15:30`, or `15:30:45` when there are seconds.
pub(crate) fn clock_text(time: Time) -> String {
    match time.second() {
        0 => format!("{:02}:{:02}", time.hour(), time.minute()),
        s => format!("{:02}:{:02}:{s:02}", time.hour(), time.minute()),
    }
}

#[cfg(test)]
mod unit {
    use jiff::civil::date;

    use super::*;

    /// Thursday 19 November 2026.
    fn env(order: DateOrder) -> Env {
        Env {
            date_order: order,
            ..Env::new(date(2026, 11, 19))
        }
    }

    fn mdy(text: &str) -> Option<String> {
        find_date(text, &env(DateOrder::MonthDayYear)).map(|d| d.to_string())
    }

    fn dmy(text: &str) -> Option<String> {
        find_date(text, &env(DateOrder::DayMonthYear)).map(|d| d.to_string())
    }

    fn time(text: &str) -> Option<String> {
        find_times(text).first().map(|c| clock_text(c.time))
    }

    #[test]
    fn numeric_dates_follow_the_date_order() {
        assert_eq!(mdy("1/2/2026").as_deref(), Some("2026-01-02"));
        assert_eq!(dmy("1/2/2026").as_deref(), Some("2026-02-01"));
        assert_eq!(
            dmy("last date was 1.10.2017").as_deref(),
            Some("2017-10-01")
        );
        assert_eq!(dmy("the date is 15/01/2017").as_deref(), Some("2017-01-15"));
        assert_eq!(mdy("12 01 2026").as_deref(), Some("2026-12-01"));
        let ymd = find_date("2026/2/1", &env(DateOrder::YearMonthDay));
        assert_eq!(ymd, Some(date(2026, 2, 1)));
    }

    #[test]
    fn invalid_dates_are_skipped_as_in_goflow() {
        for text in [
            "31/02/2022",
            "33/11/2022",
            "31/11/2022",
            "30/02/2022",
            "33.2.99",
        ] {
            assert_eq!(dmy(text), None, "{text}");
        }
        assert_eq!(dmy("no date at all"), None);
        assert_eq!(dmy("just a year 2017"), None);
        assert_eq!(dmy("31/02/2022 or 1/3/2022").as_deref(), Some("2022-03-01"));
    }

    #[test]
    fn two_digit_years_land_near_today() {
        assert_eq!(dmy("1.10.99").as_deref(), Some("1999-10-01"));
        assert_eq!(dmy("1.10.27").as_deref(), Some("2027-10-01"));
        assert_eq!(dmy("1.10.46").as_deref(), Some("2046-10-01"));
        assert_eq!(dmy("1.10.47").as_deref(), Some("1947-10-01"));
        assert_eq!(full_year(5, 2095), 2105);
    }

    #[test]
    fn year_first_dates_are_read_anywhere() {
        assert_eq!(mdy("on 2026-12-01 please").as_deref(), Some("2026-12-01"));
        assert_eq!(
            dmy("2017-10-01T23:55:55+02:00").as_deref(),
            Some("2017-10-01")
        );
        assert_eq!(mdy("2026-02-30"), None);
    }

    #[test]
    fn month_day_is_the_next_such_date() {
        assert_eq!(mdy("12/1").as_deref(), Some("2026-12-01"));
        assert_eq!(mdy("11/19").as_deref(), Some("2026-11-19"));
        assert_eq!(mdy("11/18").as_deref(), Some("2027-11-18"));
        assert_eq!(mdy("1/5").as_deref(), Some("2027-01-05"));
        assert_eq!(dmy("5/1").as_deref(), Some("2027-01-05"));
        assert_eq!(mdy("13/1"), None);
        // Part of an invalid full date is not read as a short one.
        assert_eq!(mdy("12/1/20266"), None);
    }

    #[test]
    fn month_day_on_feb_29_waits_for_a_leap_year_only_one_year_ahead() {
        let env = Env::new(date(2027, 3, 1));
        assert_eq!(find_date("2/29", &env), Some(date(2028, 2, 29)));
        assert_eq!(find_date("2/29", &Env::new(date(2026, 3, 1))), None);
    }

    #[test]
    fn words_name_days_after_today() {
        assert_eq!(mdy("today").as_deref(), Some("2026-11-19"));
        assert_eq!(mdy("TOMORROW pls").as_deref(), Some("2026-11-20"));
        assert_eq!(mdy("friday").as_deref(), Some("2026-11-20"));
        assert_eq!(mdy("Mon").as_deref(), Some("2026-11-23"));
        // Today is a Thursday: "thursday" is next week's.
        assert_eq!(mdy("thursday").as_deref(), Some("2026-11-26"));
        assert_eq!(mdy("Thursday is fine").as_deref(), Some("2026-11-26"));
        assert_eq!(mdy("someday"), None);
    }

    #[test]
    fn other_script_digits_read_as_dates() {
        assert_eq!(mdy("١٢/١/٢٠٢٦").as_deref(), Some("2026-12-01"));
    }

    #[test]
    fn date_arguments_are_iso_or_relative() {
        let today = date(2026, 11, 19);
        let on = DateArg::parse(" 2026-12-01 ").map(|d| d.resolve(today));
        assert_eq!(on, Some(date(2026, 12, 1)));
        assert_eq!(
            DateArg::parse("Today").map(|d| d.resolve(today)),
            Some(today)
        );
        let tomorrow = DateArg::parse("tomorrow").map(|d| d.resolve(today));
        assert_eq!(tomorrow, Some(date(2026, 11, 20)));
        assert_eq!(DateArg::parse("1/12/2026"), None);
        assert_eq!(DateArg::parse("2026-13-01"), None);
    }

    #[test]
    fn times_as_goflow_reads_them() {
        assert_eq!(time("last time was 10:30").as_deref(), Some("10:30"));
        assert_eq!(time("the time is 10 PM").as_deref(), Some("22:00"));
        assert_eq!(time("the time is 10:30:45").as_deref(), Some("10:30:45"));
        assert_eq!(time("just the number 25"), None);
        assert_eq!(time("this isn't a valid time 59:77"), None);
        assert_eq!(time("no time at all"), None);
    }

    #[test]
    fn times_people_text() {
        assert_eq!(time("3pm").as_deref(), Some("15:00"));
        assert_eq!(time("3:30 pm").as_deref(), Some("15:30"));
        assert_eq!(time("3 p.m. ok").as_deref(), Some("15:00"));
        assert_eq!(time("12am").as_deref(), Some("00:00"));
        assert_eq!(time("12 pm").as_deref(), Some("12:00"));
        assert_eq!(time("24:00").as_deref(), Some("00:00"));
        assert_eq!(time("noon").as_deref(), Some("12:00"));
        assert_eq!(time("at Midnight").as_deref(), Some("00:00"));
        assert_eq!(time("١٥:٣٠").as_deref(), Some("15:30"));
    }

    #[test]
    fn only_colon_am_pm_or_words_are_explicit() {
        let explicit = |t: &str| find_times(t).iter().map(|c| c.explicit).collect::<Vec<_>>();
        assert_eq!(explicit("3"), [false]);
        assert_eq!(explicit("1530"), [false]);
        assert_eq!(explicit("15:30"), [true]);
        assert_eq!(explicit("3pm"), [true]);
        assert_eq!(explicit("noon"), [true]);
    }
}
