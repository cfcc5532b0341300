//! The routing seam of [`check`](super::check) filled in: each case's test compiled by
//! [`tests`](super::tests), each ask's `expect` by [`input`](super::input), once, at load.

use jiff::civil::Weekday;

use super::check::Routing;
use super::definition::{Ask, Bound, Case};
use super::input::Expect;
use super::tests::Test;

/// Compiles the routing of a flow set for the step runner.
#[derive(Debug, Clone, Copy, Default)]
pub struct Compiled;

/// What an ask expects of a reply, compiled.
#[derive(Debug, Clone)]
pub struct AskExpect {
    pub kind: ExpectKind,
    /// `weekdays`: a date answer must fall on one of these.
    pub weekdays: Option<Vec<Weekday>>,
    /// `max_length`: a longer reply is not usable (characters).
    pub max_length: Option<usize>,
}

/// An expect whose bounds are known at load, or one whose bounds are templates rendered when
/// the reply arrives (`max = "{{ slots | length }}"`).
#[derive(Debug, Clone)]
pub enum ExpectKind {
    /// No `expect`: any reply goes to the cases (or `next`).
    Any,
    Fixed(Expect),
    Templated {
        kind: String,
        min: Option<Bound>,
        max: Option<Bound>,
    },
}

impl Routing for Compiled {
    type Test = Test;
    type Expect = AskExpect;

    fn test(&self, case: &Case) -> Result<Test, String> {
        Test::parse(&case.test, &case.args).map_err(|e| e.to_string())
    }

    fn expect(&self, ask: &Ask) -> Result<AskExpect, String> {
        let weekdays = ask
            .weekdays
            .as_ref()
            .map(|days| days.iter().map(|day| weekday(day)).collect())
            .transpose()?;
        let kind = match ask.expect.as_deref() {
            None => {
                if ask.min.is_some() || ask.max.is_some() || ask.within.is_some() {
                    return Err("min, max and within need an expect".into());
                }
                ExpectKind::Any
            }
            Some(kind) => {
                let templated = matches!(ask.min, Some(Bound::Template(_)))
                    || matches!(ask.max, Some(Bound::Template(_)));
                if templated {
                    // Checked as far as it can be now: the kind, and the fixed bound if any.
                    Expect::parse(kind, fixed(&ask.min), fixed(&ask.max), None)
                        .map_err(|e| e.to_string())?;
                    ExpectKind::Templated {
                        kind: kind.to_owned(),
                        min: ask.min.clone(),
                        max: ask.max.clone(),
                    }
                } else {
                    let within = ask.within.map(days).transpose()?;
                    let expect =
                        Expect::parse(kind, fixed(&ask.min), fixed(&ask.max), within.as_deref())
                            .map_err(|e| e.to_string())?;
                    ExpectKind::Fixed(expect)
                }
            }
        };
        if weekdays.is_some() && ask.expect.as_deref() != Some("date") {
            return Err("weekdays needs expect = \"date\"".into());
        }
        if ask.max_length.is_some() && ask.expect.as_deref().is_some_and(|kind| kind != "text") {
            return Err("max_length needs expect = \"text\" (or no expect)".into());
        }
        Ok(AskExpect {
            kind,
            weekdays,
            max_length: ask.max_length.map(|n| n as usize),
        })
    }
}

fn fixed(bound: &Option<Bound>) -> Option<f64> {
    match bound {
        Some(Bound::Number(n)) => Some(*n),
        _ => None,
    }
}

/// `within` as whole days, the unit date answers are judged in.
fn days(within: std::time::Duration) -> Result<String, String> {
    const DAY: u64 = 86_400;
    let seconds = within.as_secs();
    if seconds == 0 || !seconds.is_multiple_of(DAY) {
        return Err(format!(
            "within = {:?} is not a whole number of days (e.g. \"60d\")",
            humantime::format_duration(within).to_string()
        ));
    }
    Ok(format!("{}d", seconds / DAY))
}

fn weekday(name: &str) -> Result<Weekday, String> {
    let lower = name.trim().to_ascii_lowercase();
    let days = [
        ("mon", Weekday::Monday),
        ("tue", Weekday::Tuesday),
        ("wed", Weekday::Wednesday),
        ("thu", Weekday::Thursday),
        ("fri", Weekday::Friday),
        ("sat", Weekday::Saturday),
        ("sun", Weekday::Sunday),
    ];
    days.iter()
        .find(|(short, _)| lower.len() >= 3 && lower.starts_with(short))
        .map(|(_, day)| *day)
        .ok_or_else(|| format!("weekdays: {name:?} is not a weekday (mon … sun)"))
}

/// The expect an ask with templated bounds has once they are rendered.
pub fn with_bounds(kind: &str, min: Option<f64>, max: Option<f64>) -> Option<Expect> {
    Expect::parse(kind, min, max, None).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_is_taken_in_whole_days() {
        assert_eq!(
            days(std::time::Duration::from_secs(60 * 86_400)),
            Ok("60d".into())
        );
        assert!(days(std::time::Duration::from_secs(3_600)).is_err());
    }

    #[test]
    fn weekday_names_are_read_by_their_first_three_letters() {
        assert_eq!(weekday("Tue"), Ok(Weekday::Tuesday));
        assert_eq!(weekday("saturday"), Ok(Weekday::Saturday));
        assert!(weekday("tu").is_err() && weekday("funday").is_err());
    }
}
