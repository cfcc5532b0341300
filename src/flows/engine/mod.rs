//! The flow engine's pure core: what a reply means.
//!
//! Everything here is a function over plain data — no I/O, no server, no clock. "Today", the date
//! order and the default country arrive in an [`Env`] built by the caller, so a unit test (or
//! `flow test`) can pin them.
//!
//! - [`tests`]: the case tests of `ask`/`branch` nodes, with nyaruka/goflow's names and meaning
//!   (`has_any_word`, `has_number_between`, `has_date_lt`, …).
//! - [`input`]: typed `expect` for `ask` nodes (`number`, `date`, `yes_no`, …) and the value saved.
//! - `text`, `number`, `dates`, `phone`: the one implementation of word tokens, numbers, dates and
//!   times, emails and phone numbers that both of the above use.
//!
//! May use: `std`, `jiff`, `regex`, `thiserror`. Nothing from the server, the config or the
//! session modules: the step runner above calls down into this folder, never the other way.

mod dates;
mod env;
pub mod input;
mod number;
mod phone;
#[cfg(test)]
mod props;
pub mod tests;
mod text;

pub use dates::DateArg;
pub use env::{DateOrder, Env};
pub use number::Number;
pub use phone::Country;
