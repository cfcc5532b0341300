//! Conversation flows: given the inbound message and the session state, decide the reply.
//!
//! A flow is a decision over plain data. It reads and updates [`SessionData`] without
//! knowing where that state lives (a signed cookie, or a server-side store) and returns the
//! TwiML reply; an empty [`MessagingResponse`] means "send nothing back". It is async, so it
//! may ask another service first (flows from files do, with their `call` nodes); the server
//! gives up on it at `server.request_timeout`.
//!
//! ```
//! use sms_sessions::flows::Flow;
//! use sms_sessions::session::SessionData;
//! use sms_sessions::twilio::inbound::InboundMessage;
//! use sms_sessions::twilio::twiml::MessagingResponse;
//!
//! /// Replies with the text it was sent, and remembers the previous one.
//! struct Echo;
//!
//! impl Flow for Echo {
//!     async fn reply(&self, message: &InboundMessage<'_>, state: &mut SessionData) -> MessagingResponse {
//!         let mut response = MessagingResponse::new();
//!         let before = state.get("last").unwrap_or("nothing").to_owned();
//!         response.message(format!("You said {:?} (before: {before:?})", message.body));
//!         state.set("last", &message.body);
//!         response
//!     }
//! }
//! ```

pub mod compliance;
mod counter;
pub mod engine;
pub mod files;

pub use counter::{Counter, NamedCounter};
pub use files::{FileFlows, LoadError};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::time::Instant;

use crate::config::{Config, FlowKind};
use crate::session::SessionData;
use crate::twilio::inbound::InboundMessage;
use crate::twilio::twiml::MessagingResponse;

/// Decides the reply to one inbound message and updates the conversation's state.
///
/// Write `async fn reply` in an implementation; the future must be `Send` (hold no `Rc` or
/// `std::sync::MutexGuard` across an `.await`).
pub trait Flow: Send + Sync + 'static {
    fn reply(
        &self,
        message: &InboundMessage<'_>,
        state: &mut SessionData,
    ) -> impl Future<Output = MessagingResponse> + Send;

    /// The reply, and where the conversation went for the request's log line and metrics;
    /// `deadline` is when the server stops waiting for it. Flows that have no nodes to name
    /// keep the default, which traces nothing.
    fn respond(
        &self,
        message: &InboundMessage<'_>,
        state: &mut SessionData,
        deadline: Instant,
    ) -> impl Future<Output = Reply> + Send {
        let _ = deadline;
        async move {
            Reply {
                response: self.reply(message, state).await,
                trace: None,
            }
        }
    }
}

/// A [`Flow`] behind a pointer: what the server holds (`Arc<dyn DynFlow>`). Every `Flow` is
/// one; nothing else needs to implement it.
pub trait DynFlow: Send + Sync + 'static {
    fn respond_boxed<'a>(
        &'a self,
        message: &'a InboundMessage<'a>,
        state: &'a mut SessionData,
        deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Reply> + Send + 'a>>;
}

impl<F: Flow> DynFlow for F {
    fn respond_boxed<'a>(
        &'a self,
        message: &'a InboundMessage<'a>,
        state: &'a mut SessionData,
        deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Reply> + Send + 'a>> {
        Box::pin(self.respond(message, state, deadline))
    }
}

/// A flow's answer to one text.
#[derive(Debug)]
pub struct Reply {
    pub response: MessagingResponse,
    pub trace: Option<Trace>,
}

/// Where a flow from a file went with one text (never the text or the variables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub flow: Option<String>,
    pub node: Option<String>,
    /// [`engine::run::Outcome::as_str`].
    pub outcome: &'static str,
    /// Each call-out that went to its `on_error`: the call node and the reason.
    pub call_errors: Vec<(String, &'static str)>,
    /// The relay session a `connect` node opened: closed again if the step is not stored.
    pub handoff: Option<String>,
}

/// The flow the configuration names: a tutorial flow, or the flows of `flows.dir`, loaded and
/// checked (every problem of every file when they do not pass).
///
/// `metrics` counts the call-outs of flows from files.
pub fn from_config(
    config: &Config,
    metrics: Option<Arc<crate::metrics::Metrics>>,
) -> Result<Loaded, LoadError> {
    Ok(match config.flow.kind {
        FlowKind::Counter => Loaded::Plain(Arc::new(Counter)),
        FlowKind::NamedCounter => {
            Loaded::Plain(Arc::new(NamedCounter::new(config.flow.callers.clone())))
        }
        FlowKind::Flows => Loaded::Files(Arc::new(FileFlows::load(config, metrics)?)),
    })
}

/// A configured flow; flows from files can also be reloaded.
pub enum Loaded {
    Plain(Arc<dyn DynFlow>),
    Files(Arc<FileFlows>),
}

impl Loaded {
    pub fn flow(&self) -> Arc<dyn DynFlow> {
        match self {
            Loaded::Plain(flow) => flow.clone(),
            Loaded::Files(files) => files.clone(),
        }
    }

    /// The flows to reload on SIGHUP, if any.
    pub fn files(&self) -> Option<Arc<FileFlows>> {
        match self {
            Loaded::Plain(_) => None,
            Loaded::Files(files) => Some(files.clone()),
        }
    }
}
