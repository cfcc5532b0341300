//! The environment a reply is read in: today's date, the date order, the default country.

use jiff::civil::Date;

use super::phone::Country;

/// How a numeric date like `1/2/2026` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DateOrder {
    /// `1/2/2026` is 2 January (most of the world).
    DayMonthYear,
    /// `1/2/2026` is 1 February (the US).
    #[default]
    MonthDayYear,
    /// `2026/2/1` is 1 February (China, Japan, ISO).
    YearMonthDay,
}

/// What a test or an `expect` needs to know besides the text.
///
/// `today` is the date in the flow's time zone when the text arrived; the caller computes it
/// (e.g. `now.to_zoned(tz).date()`), so nothing here reads the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub today: Date,
    pub date_order: DateOrder,
    /// The country a phone number without `+` belongs to.
    pub country: Country,
}

impl Env {
    /// US defaults: month before day, phone numbers in the NANP.
    pub fn new(today: Date) -> Env {
        Env {
            today,
            date_order: DateOrder::default(),
            country: Country::default(),
        }
    }
}
