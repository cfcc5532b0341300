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

mod counter;
pub mod engine;

pub use counter::{Counter, NamedCounter};

use std::sync::Arc;

use crate::config::{FlowConfig, FlowKind};
use crate::session::SessionData;
use crate::twilio::inbound::InboundMessage;
use crate::twilio::twiml::MessagingResponse;

/// Decides the reply to one inbound message and updates the conversation's state.
pub trait Flow: Send + Sync + 'static {
    fn reply(&self, message: &InboundMessage, state: &mut SessionData) -> MessagingResponse;
}

/// Builds the flow the configuration names.
pub fn from_config(config: &FlowConfig) -> Arc<dyn Flow> {
    match config.kind {
        FlowKind::Counter => Arc::new(Counter),
        FlowKind::NamedCounter => Arc::new(NamedCounter::new(config.callers.clone())),
    }
}
