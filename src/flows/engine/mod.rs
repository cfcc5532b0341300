//! The flow engine: conversations written as TOML files (`config/flows/*.toml`, spec 1).
//!
//! Split like goflow's definition / routers / engine, arrows pointing down:
//! - [`definition`]: the file format, serde types and the parser with located problems;
//! - [`template`]: MiniJinja templates of a flow set, compiled at load, fuel-limited;
//! - [`check`]: the static checks over parsed flows (routes, reachability, loops, variables,
//!   opt-out words), every problem at once;
//! - [`load`]: reading a directory into a checked, compiled [`load::FlowSet`];
//! - [`problem`]: `FILE:LINE:COLUMN: node NAME: reason`;
//! - [`routing`]: each case's test and each ask's expect, compiled at load;
//! - [`run`]: one step of a conversation over its state, the clock passed in;
//! - [`transcript`]: `[[tests]]` run offline through `run`; [`graph`]: a flow as Mermaid;
//! - [`tests`]: the case tests of `ask`/`branch` nodes, with nyaruka/goflow's names and meaning
//!   (`has_any_word`, `has_number_between`, `has_date_lt`, …);
//! - [`input`]: typed `expect` for `ask` nodes (`number`, `date`, `yes_no`, …) and the value
//!   saved;
//! - `text`, `number`, `dates`, `phone`: the one implementation of word tokens, numbers, dates
//!   and times, emails and phone numbers that both of the above use.
//!
//! All of it is pure over plain data: "today", the date order and the default country arrive
//! in an [`Env`] built by the caller, the step gets `now`, and the loader reads files and
//! nothing else. It may use `crate::flows::compliance` and the session's `SessionData` (the
//! state a step reads and writes); the server wiring (`crate::flows::files`) sits on top.

pub mod call;
pub mod check;
mod dates;
pub mod definition;
mod env;
pub mod graph;
pub mod input;
pub mod load;
mod number;
mod phone;
pub mod problem;
#[cfg(test)]
mod props;
pub mod routing;
pub mod run;
pub mod template;
pub mod tests;
mod text;
pub mod transcript;

pub use dates::DateArg;
pub use env::{DateOrder, Env};
pub use number::Number;
pub use phone::Country;
