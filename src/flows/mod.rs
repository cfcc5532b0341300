//! Conversation flows: given the inbound message and the session state, decide the reply.
//!
//! A flow is a pure decision over plain data. It reads and updates [`SessionData`] without
//! knowing where that state lives (a signed cookie today, a server-side store later) and
//! returns the TwiML reply; an empty [`MessagingResponse`] means "send nothing back".
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
//!     fn reply(&self, message: &InboundMessage, state: &mut SessionData) -> MessagingResponse {
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

use std::sync::Arc;

use crate::config::{Config, FlowKind};
use crate::session::SessionData;
use crate::twilio::inbound::InboundMessage;
use crate::twilio::twiml::MessagingResponse;

/// Decides the reply to one inbound message and updates the conversation's state.
pub trait Flow: Send + Sync + 'static {
    fn reply(&self, message: &InboundMessage, state: &mut SessionData) -> MessagingResponse;

    /// The reply, and where the conversation went for the request's log line and metrics.
    /// Flows that have no nodes to name keep the default, which traces nothing.
    fn respond(&self, message: &InboundMessage, state: &mut SessionData) -> Reply {
        Reply {
            response: self.reply(message, state),
            trace: None,
        }
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
}

/// The flow the configuration names: a tutorial flow, or the flows of `flows.dir`, loaded and
/// checked (every problem of every file when they do not pass).
pub fn from_config(config: &Config) -> Result<Loaded, LoadError> {
    Ok(match config.flow.kind {
        FlowKind::Counter => Loaded::Plain(Arc::new(Counter)),
        FlowKind::NamedCounter => {
            Loaded::Plain(Arc::new(NamedCounter::new(config.flow.callers.clone())))
        }
        FlowKind::Flows => Loaded::Files(Arc::new(FileFlows::load(config)?)),
    })
}

/// A configured flow; flows from files can also be reloaded.
pub enum Loaded {
    Plain(Arc<dyn Flow>),
    Files(Arc<FileFlows>),
}

impl Loaded {
    pub fn flow(&self) -> Arc<dyn Flow> {
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
