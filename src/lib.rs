//! sms-sessions: hold real conversations over SMS with Twilio webhooks.
//!
//! Every inbound text is its own signed HTTP webhook. The server proves it came from Twilio,
//! finds the conversation's state in a signed cookie scoped to the (To, From) pair (Twilio keeps
//! one cookie jar per pair) or in a server-side store, lets a [`flows::Flow`] decide the reply
//! (a flow may call the operator's service first), or forwards the text to the other people of
//! a masked-number relay, and answers with TwiML.
//!
//! # Layout
//!
//! | module | holds |
//! |---|---|
//! | [`twilio::signature`] | pure: Twilio's `X-Twilio-Signature` (server and client tools share it) |
//! | [`twilio::public_url`] | rebuilding the URL Twilio signed, behind proxies too |
//! | [`twilio::webhook`] | the gate: body limit, form decode, signature check, rejections |
//! | [`twilio::form`] | form parameters decoded once, into one buffer |
//! | [`twilio::inbound`] | typed inbound message and status callback |
//! | [`twilio::twiml`] | the `MessagingResponse` builder (byte-compatible with twilio-python) |
//! | [`session`] | the signed, pair-bound, time-stamped cookie codec and the flow-visible state |
//! | [`toml_spans`] | line, column and key path of a byte in TOML text, for config and flow errors |
//! | [`flows`] | the async `Flow` trait, the tutorial flows, and flows from files (the engine) |
//! | [`store`] | conversations on the server: memory, SQLite or Redis, once per MessageSid |
//! | [`callout`] | signed HTTP call-outs to configured endpoints: flows' `call` nodes, result and opt-out hooks |
//! | [`config`] | typed configuration: embedded default, file, environment |
//! | [`app`] | state, the routes, serve with graceful shutdown |
//! | [`connections`] | the accept loop: connection cap, head and idle deadlines, shutdown deadline |
//! | [`front`] | what every request passes through: id, log line, metrics, panic → 500, 503 backstop |
//! | [`deadline`] | deadlines whose timer is armed only for work that waits |
//! | [`routes`] | thin handlers: `/sms`, `/sms/status`, `/healthz` |
//! | [`logging`] | tracing set-up, the one line per webhook, phone-number masking |
//! | [`metrics`] | Prometheus counters and latency histogram, recorded beside the log line |
//! | [`client`] | the Twilio-like client behind `sign`, `send`, `chat`, `healthcheck` |
//! | [`cli`] | the command line |
//! | [`relay`] | masked-number relays: sessions, bindings on the store, forwarding |
//! | [`admin`] | the admin API of relays: bearer tokens, sessions and the pool as JSON, on its own listener |

pub mod admin;
pub mod app;
pub mod callout;
pub mod cli;
pub mod client;
pub mod config;
pub mod connections;
pub mod deadline;
pub mod flows;
pub mod front;
pub mod logging;
pub mod metrics;
pub mod relay;
pub mod routes;
pub mod session;
pub mod store;
pub mod toml_spans;
pub mod twilio;

/// The README's Rust examples compile as doctests, so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
