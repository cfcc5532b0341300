//! The text log's timestamps and fields: tracing-subscriber's defaults, byte for byte, at a
//! fraction of the cost per line (`cargo bench -- router_logged` measures what a line costs).

use std::cell::Cell;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};
use tracing_subscriber::fmt::time::FormatTime;

/// UTC timestamps as tracing-subscriber's `SystemTime` writes them (`2026-11-21T06:05:06.081283Z`),
/// with the date and time of day worked out once per second per thread instead of on every line.
#[derive(Debug, Clone, Copy, Default)]
pub struct UtcMicros;

thread_local! {
    /// The second last formatted on this thread, and its `YYYY-MM-DDTHH:MM:SS`.
    static LAST_SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
}

impl FormatTime for UtcMicros {
    fn format_time(&self, writer: &mut Writer<'_>) -> fmt::Result {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let seconds = now.as_secs();
        let (cached, text) = LAST_SECOND.get();
        let text = if cached == seconds {
            text
        } else {
            let text = date_time(seconds);
            LAST_SECOND.set((seconds, text));
            text
        };
        let text = std::str::from_utf8(&text).map_err(|_| fmt::Error)?;
        write!(writer, "{text}.{:06}Z", now.subsec_micros())
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time, in UTC (years 1970 to 9999).
fn date_time(unix_seconds: u64) -> [u8; 19] {
    let (days, second_of_day) = (unix_seconds / 86_400, unix_seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    let mut text = [0; 19];
    let mut put = |at: usize, value: u64, width: usize| {
        let mut value = value;
        for i in (at..at + width).rev() {
            text[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year.min(9999), 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, second_of_day / 3600, 2);
    put(14, second_of_day / 60 % 60, 2);
    put(17, second_of_day % 60, 2);
    for (at, separator) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
        text[at] = separator;
    }
    text
}

/// The proleptic Gregorian date of a day counted from 1970-01-01: Howard Hinnant's
/// `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>), for days on or
/// after the epoch. Years are counted from March, so the leap day ends a year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let days = days + 719_468; // from 0000-03-01
    let era = days / 146_097; // 400-year cycles
    let day_of_era = days % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Fields as tracing-subscriber's `DefaultFields` writes them, byte for byte. The one
/// difference is speed: a string value is `Debug`-quoted there, one character at a time, to
/// escape what needs it; here a string of printable ASCII without `"` or `\` (phone masks,
/// sids, paths: nearly all of them) is copied between quotes whole, which is what the
/// escaping would have produced.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainFields;

impl<'a> MakeVisitor<Writer<'a>> for PlainFields {
    type Visitor = PlainVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> PlainVisitor<'a> {
        PlainVisitor(DefaultVisitor::new(target, true))
    }
}

/// The visitor of [`PlainFields`]: `DefaultVisitor` with the fast path for plain strings.
pub struct PlainVisitor<'a>(DefaultVisitor<'a>);

/// Whether `{:?}` of `text` is `text` between double quotes.
fn quotes_as_is(text: &str) -> bool {
    text.bytes()
        .all(|byte| matches!(byte, b' '..=b'~') && byte != b'"' && byte != b'\\')
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() != "message" && quotes_as_is(value) {
            self.0.record_debug(field, &format_args!("\"{value}\""));
        } else {
            self.0.record_str(field, value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.record_error(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.record_debug(field, value);
    }
}

impl VisitOutput<fmt::Result> for PlainVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.0.finish()
    }
}

impl VisitFmt for PlainVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        self.0.writer()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use proptest::prelude::*;

    use super::*;

    fn formatted(unix_seconds: u64) -> String {
        String::from_utf8(date_time(unix_seconds).to_vec()).expect("ASCII")
    }

    #[test]
    fn dates_and_times_of_known_instants() {
        assert_eq!(formatted(0), "1970-01-01T00:00:00");
        assert_eq!(formatted(951_782_399), "2000-02-28T23:59:59");
        assert_eq!(formatted(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(formatted(951_868_800), "2000-03-01T00:00:00");
        assert_eq!(formatted(1_763_701_506), "2025-11-21T05:05:06");
        assert_eq!(formatted(4_107_542_399), "2100-02-28T23:59:59");
        assert_eq!(formatted(4_107_542_400), "2100-03-01T00:00:00");
        assert_eq!(formatted(253_402_300_799), "9999-12-31T23:59:59");
    }

    /// The timestamp of a line matches tracing-subscriber's own, to the microsecond's
    /// neighbourhood: both read the clock, so only the date and time of day are compared,
    /// away from a second's end.
    #[test]
    fn agrees_with_tracing_subscriber() {
        let (mut ours, mut theirs) = (String::new(), String::new());
        for _ in 0..100 {
            ours.clear();
            theirs.clear();
            UtcMicros
                .format_time(&mut Writer::new(&mut ours))
                .expect("formats");
            tracing_subscriber::fmt::time::SystemTime
                .format_time(&mut Writer::new(&mut theirs))
                .expect("formats");
            if ours[..19] == theirs[..19] && ours.len() == theirs.len() {
                return;
            }
        }
        panic!("{ours} vs {theirs}");
    }

    /// One line logged through `fields`, without its timestamp.
    fn line_with<F>(fields: F, log: impl FnOnce()) -> String
    where
        F: for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static,
    {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .without_time()
            .with_ansi(false)
            .fmt_fields(fields)
            .with_writer(move || WriteTo(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = "abc-1", note = "a \"b\"");
            let _entered = span.enter();
            log();
        });
        let bytes = buffer.lock().expect("not poisoned").clone();
        String::from_utf8(bytes).expect("UTF-8")
    }

    /// A log writer into a shared buffer, for tests that read what was logged.
    pub(in crate::logging) struct WriteTo(
        pub(in crate::logging) std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    );

    impl std::io::Write for WriteTo {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .expect("not poisoned")
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_those_of_default_fields() {
        let log = || {
            let error = std::io::Error::other("disk full");
            tracing::warn!(
                plain = "+14*******99",
                quoted = "say \"hi\"",
                newline = "a\nb",
                unicode = "café",
                empty = "",
                number = 42u64,
                negative = -1i64,
                flag = true,
                shown = %"as is",
                debugged = ?Some("x"),
                error = &error as &(dyn std::error::Error + 'static),
                "the message with \"quotes\" and \u{1b}[31m an escape"
            );
        };
        let default = line_with(tracing_subscriber::fmt::format::DefaultFields::new(), log);
        assert!(default.contains("plain=\"+14*******99\""), "{default}");
        assert_eq!(line_with(PlainFields, log), default);
    }

    proptest! {
        #[test]
        fn days_count_like_a_calendar(days in 0u64..2_932_896) {
            // Each day's successor is the next day of the month, or the 1st of the next month.
            let (y, m, d) = civil_from_days(days);
            let (ny, nm, nd) = civil_from_days(days + 1);
            prop_assert!(
                (ny, nm, nd) == (y, m, d + 1)
                    || (ny, nm, nd) == (y, m + 1, 1)
                    || (ny, nm, nd) == (y + 1, 1, 1) && (m, d) == (12, 31)
            );
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            let last = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            prop_assert!(d >= 1 && d <= last[(m - 1) as usize]);
        }

        #[test]
        fn plain_strings_quote_as_debug_does(text in "\\PC{0,16}|[ -~]{0,16}") {
            if quotes_as_is(&text) {
                prop_assert_eq!(format!("{text:?}"), format!("\"{text}\""));
            }
        }
    }
}
