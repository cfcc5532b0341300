//! Phone numbers in a text, as E.164 (`+14155550100`).
//!
//! Candidates are found like goflow (`utils/phone.go`: `\+?[\d .\-()]{5,}`); goflow then asks
//! libphonenumber. The `phonenumber` crate carries all of libphonenumber's metadata, so this is a
//! smaller, hand-written normaliser that checks number *shape*, not assignment:
//! - `+` (or `00`, or `011` in the NANP) then 7–15 digits with no leading 0; `+1` numbers must be
//!   NANP-shaped, and a country in the table below must have one of its national lengths;
//! - otherwise a national number of the default [`Country`]: in the NANP ten digits (an optional
//!   leading 1) with area code and exchange starting 2–9 and no N11 area code; elsewhere one
//!   trunk `0` dropped and the national length checked.

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::LazyLock;

use regex::Regex;

use super::text::ascii_digits;

static CANDIDATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+?[0-9 .\-()]{5,}").expect("phone pattern compiles"));

/// How one country writes its numbers.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    iso: &'static str,
    code: &'static str,
    /// Numbers written nationally start with this trunk prefix, dropped in E.164.
    trunk_zero: bool,
    /// Lengths of the national significant number (after the trunk prefix).
    lengths: RangeInclusive<usize>,
}

const fn plan(
    iso: &'static str,
    code: &'static str,
    trunk: bool,
    lengths: RangeInclusive<usize>,
) -> Plan {
    Plan {
        iso,
        code,
        trunk_zero: trunk,
        lengths,
    }
}

/// The countries a national number can belong to. A `+` number of any other country is checked
/// for E.164 length only.
static PLANS: [Plan; 20] = [
    plan("US", "1", false, 10..=10),
    plan("CA", "1", false, 10..=10),
    plan("GB", "44", true, 9..=10),
    plan("IE", "353", true, 7..=9),
    plan("AU", "61", true, 9..=9),
    plan("NZ", "64", true, 8..=10),
    plan("IN", "91", true, 10..=10),
    plan("ZA", "27", true, 9..=9),
    plan("KE", "254", true, 9..=9),
    plan("NG", "234", true, 8..=10),
    plan("RW", "250", true, 9..=9),
    plan("UG", "256", true, 9..=9),
    plan("DE", "49", true, 6..=13),
    plan("FR", "33", true, 9..=9),
    plan("NL", "31", true, 9..=9),
    plan("BE", "32", true, 8..=9),
    plan("BR", "55", true, 10..=11),
    plan("ES", "34", false, 9..=9),
    plan("MX", "52", false, 10..=10),
    // Italian landlines keep their leading 0 in E.164.
    plan("IT", "39", false, 6..=11),
];

/// The country a phone number written without `+` belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country(&'static Plan);

impl Country {
    /// An ISO 3166 alpha-2 code from the supported list, any case (`"us"`, `"GB"`).
    pub fn parse(iso: &str) -> Option<Country> {
        PLANS
            .iter()
            .find(|p| p.iso.eq_ignore_ascii_case(iso.trim()))
            .map(Country)
    }

    /// The codes [`Country::parse`] accepts, for error messages.
    pub fn supported() -> impl Iterator<Item = &'static str> {
        PLANS.iter().map(|p| p.iso)
    }

    fn is_nanp(self) -> bool {
        self.0.code == "1"
    }
}

impl Default for Country {
    fn default() -> Country {
        Country(&PLANS[0])
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.iso)
    }
}

/// The first phone number in `text`, as E.164.
pub(crate) fn find_phone(text: &str, country: Country) -> Option<String> {
    let text = ascii_digits(text);
    CANDIDATE
        .find_iter(&text)
        .find_map(|m| parse_phone(m.as_str().trim(), country))
}

fn parse_phone(candidate: &str, country: Country) -> Option<String> {
    let digits: String = candidate.chars().filter(char::is_ascii_digit).collect();
    let exit_code = if country.is_nanp() { "011" } else { "00" };
    if candidate.starts_with('+') {
        international(&digits)
    } else if let Some(rest) = digits.strip_prefix(exit_code) {
        international(rest)
    } else {
        national(&digits, country.0)
    }
}

fn international(digits: &str) -> Option<String> {
    if !(7..=15).contains(&digits.len()) || digits.starts_with('0') {
        return None;
    }
    if let Some(rest) = digits.strip_prefix('1') {
        return nanp(rest);
    }
    match PLANS.iter().find(|p| digits.starts_with(p.code)) {
        Some(plan) => national(&digits[plan.code.len()..], plan),
        None => Some(format!("+{digits}")),
    }
}

fn national(digits: &str, plan: &Plan) -> Option<String> {
    if plan.code == "1" {
        let ten = if digits.len() == 11 {
            digits.strip_prefix('1')?
        } else {
            digits
        };
        return nanp(ten);
    }
    let nsn = match digits.strip_prefix('0') {
        Some(rest) if plan.trunk_zero => rest,
        _ => digits,
    };
    let zero_ok = plan.iso == "IT";
    let shaped = plan.lengths.contains(&nsn.len()) && (zero_ok || !nsn.starts_with('0'));
    shaped.then(|| format!("+{}{nsn}", plan.code))
}

/// Ten NANP digits: `NXX NXX XXXX`, area code not `N11`.
fn nanp(ten: &str) -> Option<String> {
    let d = ten.as_bytes();
    let shaped = d.len() == 10
        && (b'2'..=b'9').contains(&d[0])
        && !(d[1] == b'1' && d[2] == b'1')
        && (b'2'..=b'9').contains(&d[3]);
    shaped.then(|| format!("+1{ten}"))
}

#[cfg(test)]
mod unit {
    use super::*;

    fn us(text: &str) -> Option<String> {
        find_phone(text, Country::default())
    }

    fn in_country(text: &str, iso: &str) -> Option<String> {
        find_phone(text, Country::parse(iso).expect("supported country"))
    }

    #[test]
    fn goflow_examples() {
        assert_eq!(
            us("my number is +12067799294 thanks").as_deref(),
            Some("+12067799294")
        );
        assert_eq!(
            us("my number is 2067799294").as_deref(),
            Some("+12067799294")
        );
        assert_eq!(
            us("my number is 206 779 9294").as_deref(),
            Some("+12067799294")
        );
        assert_eq!(
            in_country("my number is 0788123123", "RW").as_deref(),
            Some("+250788123123")
        );
        assert_eq!(us("my number is none of your business"), None);
    }

    #[test]
    fn us_numbers_in_the_ways_people_write_them() {
        for text in [
            "(415) 555-0100",
            "415.555.0100",
            "1 415 555 0100",
            "+1 (415) 555-0100",
        ] {
            assert_eq!(us(text).as_deref(), Some("+14155550100"), "{text}");
        }
        assert_eq!(us("011 44 20 7946 0018").as_deref(), Some("+442079460018"));
    }

    #[test]
    fn numbers_that_are_not_nanp_shaped_are_refused() {
        for text in [
            "12345",
            "555-0100",
            "(015) 555-0100",
            "(911) 555-0100",
            "415 155 0100",
        ] {
            assert_eq!(us(text), None, "{text}");
        }
        assert_eq!(us("2 4155550100"), None);
        assert_eq!(us("+1 415 555 01000"), None);
    }

    #[test]
    fn international_numbers_from_any_country() {
        assert_eq!(us("+44 20 7946 0018").as_deref(), Some("+442079460018"));
        assert_eq!(us("+44 (0)20 7946 0018").as_deref(), Some("+442079460018"));
        assert_eq!(us("+44 20 79").as_deref(), None);
        // A calling code outside the table: E.164 length only.
        assert_eq!(us("+972 50 123 4567").as_deref(), Some("+972501234567"));
        assert_eq!(us("+0123456789"), None);
        assert_eq!(us("+1234567890123456"), None);
    }

    #[test]
    fn national_numbers_use_the_default_country() {
        assert_eq!(
            in_country("020 7946 0018", "gb").as_deref(),
            Some("+442079460018")
        );
        assert_eq!(
            in_country("0044 20 7946 0018", "FR").as_deref(),
            Some("+442079460018")
        );
        assert_eq!(
            in_country("06 12 34 56 78", "FR").as_deref(),
            Some("+33612345678")
        );
        assert_eq!(
            in_country("06 1234 5678", "IT").as_deref(),
            Some("+390612345678")
        );
        assert_eq!(
            in_country("612 345 678", "ES").as_deref(),
            Some("+34612345678")
        );
        assert_eq!(in_country("0612 345 678", "ES"), None);
    }

    #[test]
    fn dates_and_small_numbers_are_not_phones() {
        assert_eq!(us("on 2026-12-01"), None);
        assert_eq!(us("I want 20 not 5"), None);
        assert_eq!(in_country("12/01/2026", "GB"), None);
    }

    #[test]
    fn arabic_indic_digits_are_read() {
        assert_eq!(us("٤١٥٥٥٥٠١٠٠").as_deref(), Some("+14155550100"));
    }

    #[test]
    fn countries_parse_by_iso_code() {
        assert_eq!(
            Country::parse(" us ").map(|c| c.to_string()).as_deref(),
            Some("US")
        );
        assert_eq!(Country::parse("XX"), None);
        assert!(Country::supported().any(|c| c == "RW"));
    }
}
