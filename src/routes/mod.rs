//! HTTP handlers: they move data between the wire and the pure core, nothing more.

pub mod health;
pub mod sms;
pub mod status;

use crate::logging::mask_phone;

/// The fields a handler reports for the one log line per webhook (see [`crate::front`]).
#[derive(Debug, Clone, Default)]
pub struct WebhookLog {
    pub message_sid: String,
    /// Masked already (see [`mask_phone`]): what the log holds is never a number.
    pub from: String,
    /// Masked already.
    pub to: String,
    pub session: Option<&'static str>,
    pub message_status: Option<String>,
    /// Where a flow from a file went (flow, node, outcome); never the text or the variables.
    pub trace: Option<crate::flows::Trace>,
}

impl WebhookLog {
    /// The log fields of a webhook from `from` to `to`, the numbers masked.
    pub fn new(message_sid: &str, from: &str, to: &str) -> Self {
        Self {
            message_sid: message_sid.to_owned(),
            from: mask_phone(from),
            to: mask_phone(to),
            ..Self::default()
        }
    }
}
