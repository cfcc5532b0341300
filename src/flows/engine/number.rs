//! Numbers in a text: found like goflow (`testNumber`, `ParseNumber`), kept exact.
//!
//! A number is an optional sign, digits with optional `,` thousands groups, and an optional `.`
//! fraction (`42`, `-12.51`, `.5`, `1,000,000`). It may sit inside a word (`24ans` has 24, as in
//! goflow). Other-script digits (`٤٢`) read as ASCII first. Two deliberate differences from
//! goflow: a comma only groups thousands (`1,2` is 1 then 2, where goflow reads 12), and a
//! leading `+` is a sign (goflow skips `+5`). At most 36 significant digits, as goflow.

use std::cmp::Ordering;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use super::text::ascii_digits;

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[-+]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|[-+]?\.[0-9]+")
        .expect("number pattern compiles")
});

/// goflow `types.MaxNumberDigits`.
const MAX_DIGITS: usize = 36;

/// An exact decimal number, in its shortest form (`3`, not `3.0`; `0.5`, not `.50`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    /// Integer digits without leading zeros (empty for zero).
    int: String,
    /// Fraction digits without trailing zeros.
    frac: String,
}

impl Number {
    /// A number written plainly: `42`, `-1.5`, `.5`, `+3` (surrounding spaces allowed). This is
    /// how test arguments and `min`/`max` are read; no grouping commas, no other text.
    pub fn parse(s: &str) -> Option<Number> {
        let s = s.trim();
        let found = NUMBER.find(s)?;
        (found.range() == (0..s.len()) && !s.contains(',')).then(|| from_match(s))?
    }

    /// Every number in `text`, in order.
    pub(crate) fn find_all(text: &str) -> Vec<Number> {
        // The commonest reply to a number question is a bare number: no search needed.
        let bare = text.trim();
        if !bare.is_empty() && bare.len() <= MAX_DIGITS && bare.bytes().all(|b| b.is_ascii_digit())
        {
            return from_match(bare).into_iter().collect();
        }
        let text = ascii_digits(text);
        NUMBER
            .find_iter(&text)
            .filter_map(|m| {
                let after_word = text[..m.start()]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_');
                let s = m.as_str();
                // `hi.51` is 51, not 0.51: a dot after a letter is punctuation, as in goflow.
                match s.find('.') {
                    Some(0) if after_word => from_match(&s[1..]),
                    _ => from_match(s),
                }
            })
            .collect()
    }

    /// Whether there is no fraction part.
    pub fn is_integer(&self) -> bool {
        self.frac.is_empty()
    }

    /// The nearest `f64`, for arithmetic in templates.
    pub fn to_f64(&self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    fn is_zero(&self) -> bool {
        self.int.is_empty() && self.frac.is_empty()
    }

    fn cmp_magnitude(&self, other: &Number) -> Ordering {
        self.int
            .len()
            .cmp(&other.int.len())
            .then_with(|| cmp_digits(&self.int, &other.int))
            .then_with(|| cmp_digits(&self.frac, &other.frac))
    }
}

/// `a.cmp(b)` for the few digits a reply's number has: a loop, where `str::cmp` calls
/// `memcmp` (a tenth of a templated step's time went there).
fn cmp_digits(a: &str, b: &str) -> Ordering {
    for (x, y) in a.bytes().zip(b.bytes()) {
        if x != y {
            return x.cmp(&y);
        }
    }
    a.len().cmp(&b.len())
}

/// Builds a number from text the pattern matched (sign, digits, commas, one dot).
fn from_match(s: &str) -> Option<Number> {
    let (negative, unsigned) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let int: String = int
        .bytes()
        .filter(u8::is_ascii_digit)
        .skip_while(|&b| b == b'0')
        .map(char::from)
        .collect();
    let frac = frac.trim_end_matches('0');
    // Significant digits: the integer part (no leading zeros) and the fraction, or the
    // fraction alone from its first non-zero digit.
    let significant = if int.is_empty() {
        frac.trim_start_matches('0').len()
    } else {
        int.len() + frac.len()
    };
    if significant > MAX_DIGITS {
        return None;
    }
    let frac = frac.to_owned();
    let number = Number {
        negative,
        int,
        frac,
    };
    Some(Number {
        negative: negative && !number.is_zero(),
        ..number
    })
}

impl TryFrom<f64> for Number {
    type Error = NotFinite;

    /// For `min`/`max` read from TOML: `1.0` is `1`. Rust prints every finite `f64` without an
    /// exponent, so the text always parses.
    fn try_from(value: f64) -> Result<Number, NotFinite> {
        if value.is_finite() {
            from_match(&value.to_string()).ok_or(NotFinite(value))
        } else {
            Err(NotFinite(value))
        }
    }
}

/// A `min`/`max` that is NaN, infinite or has more than 36 significant digits.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{0} is not a usable number")]
pub struct NotFinite(pub f64);

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.negative { "-" } else { "" };
        let int = if self.int.is_empty() { "0" } else { &self.int };
        match self.frac.as_str() {
            "" => write!(f, "{sign}{int}"),
            frac => write!(f, "{sign}{int}.{frac}"),
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn found(text: &str) -> Vec<String> {
        Number::find_all(text)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn n(s: &str) -> Number {
        Number::parse(s).expect("a plain number")
    }

    #[test]
    fn finds_numbers_as_goflow_does() {
        assert_eq!(found("the number -10"), ["-10"]);
        assert_eq!(found("1-15"), ["1", "-15"]);
        assert_eq!(found("24ans"), ["24"]);
        assert_eq!(found("J'AI 20ANS"), ["20"]);
        assert_eq!(found("1,000,000"), ["1000000"]);
        assert_eq!(found("another is -12.51"), ["-12.51"]);
        assert_eq!(found("hi.51"), ["51"]);
        assert_eq!(found("hi .51"), ["0.51"]);
        assert_eq!(found(".51"), ["0.51"]);
        assert_eq!(found("lOO"), Vec::<String>::new());
    }

    #[test]
    fn other_script_digits_are_numbers() {
        assert_eq!(found("العدد ٤٢"), ["42"]);
        assert_eq!(found("۱۲۳۴"), ["1234"]);
        assert_eq!(found("٠.٥"), ["0.5"]);
        assert_eq!(found("৩"), ["3"]);
    }

    #[test]
    fn a_comma_groups_only_thousands() {
        assert_eq!(found("1,2 or 3"), ["1", "2", "3"]);
        assert_eq!(found("10,000.50 each"), ["10000.5"]);
        assert_eq!(found("12,345,67"), ["12345", "67"]);
    }

    #[test]
    fn numbers_print_in_shortest_form() {
        assert_eq!(n("3.0").to_string(), "3");
        assert_eq!(n("007").to_string(), "7");
        assert_eq!(n(".50").to_string(), "0.5");
        assert_eq!(n("-0").to_string(), "0");
        assert_eq!(n("+4").to_string(), "4");
    }

    #[test]
    fn plain_parse_refuses_anything_else() {
        for bad in ["", "1,000", "12abc", "1.2.3", "--1", "one", "1e5", "."] {
            assert_eq!(Number::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn too_many_digits_is_not_a_number() {
        let long = "9".repeat(37);
        assert_eq!(found(&long), Vec::<String>::new());
        assert_eq!(found(&"9".repeat(36)), ["9".repeat(36)]);
        assert_eq!(found(&format!("000{}", "1".repeat(36))), ["1".repeat(36)]);
    }

    #[test]
    fn comparison_is_exact() {
        assert!(n("-12.51") < n("-12.5"));
        assert!(n("-1") < n("0"));
        assert!(n("0.05") < n("0.5"));
        assert!(n("0.5") < n("0.51"));
        assert!(n("9.99") < n("10"));
        assert!(n("100000000000000000000001") > n("100000000000000000000000"));
        assert_eq!(n("2.50").cmp(&n("2.5")), Ordering::Equal);
    }

    #[test]
    fn floats_from_config_become_numbers() {
        assert_eq!(
            Number::try_from(1.0).map(|n| n.to_string()),
            Ok("1".to_owned())
        );
        assert_eq!(
            Number::try_from(-2.5).map(|n| n.to_string()),
            Ok("-2.5".to_owned())
        );
        assert!(Number::try_from(f64::NAN).is_err());
        assert!(Number::try_from(f64::INFINITY).is_err());
        assert!(Number::try_from(1e300).is_err());
        assert_eq!(n("-2.5").to_f64(), -2.5);
    }
}
