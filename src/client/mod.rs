//! The client side: what `sign`, `send`, `chat` and `healthcheck` use to talk to a server the
//! way Twilio does.
//!
//! It reuses the server's own rules rather than restating them: signatures come from
//! [`crate::twilio::signature`], the (To, From) pair from [`crate::session::Pair`], and
//! `Set-Cookie` parsing from the `cookie` crate behind tower-cookies.
//!
//! - [`webhook`] posts one text as Twilio would and reads the answer;
//! - [`params`] and [`segments`] build the parameters Twilio sends;
//! - [`jar`] holds cookies by Twilio's rules, [`jar_file`] keeps them on disk;
//! - [`reply`] reads TwiML back into messages; [`curl`] writes `sign --curl` commands;
//! - [`http`] is the bare HTTP/1.1 client.

pub mod curl;
pub mod http;
pub mod jar;
pub mod jar_file;
pub mod params;
pub mod reply;
pub mod segments;
pub mod webhook;
