//! The flow engine: conversations written as TOML files (`config/flows/*.toml`, spec 1).
//!
//! Split like goflow's definition / routers / engine, arrows pointing down:
//! - [`definition`]: the file format, serde types and the parser with located problems;
//! - [`template`]: MiniJinja templates of a flow set, compiled at load, fuel-limited;
//! - [`check`]: the static checks over parsed flows (routes, reachability, loops, variables,
//!   opt-out words), every problem at once;
//! - [`load`]: reading a directory into a checked, compiled [`load::FlowSet`];
//! - [`problem`]: `FILE:LINE:COLUMN: node NAME: reason`.
//!
//! All of it is pure over plain data (the loader reads files and nothing else); the step
//! runner, compliance and the server wiring sit on top and may use everything here.

pub mod check;
pub mod definition;
pub mod load;
pub mod problem;
pub mod template;
