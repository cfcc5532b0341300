//! HTTP handlers: they move data between the wire and the pure core, nothing more.

pub mod health;
pub mod sms;
pub mod status;

/// The fields a handler reports for the one log line per webhook (see [`crate::front`]).
#[derive(Debug, Clone, Default)]
pub struct WebhookLog {
    pub message_sid: String,
    pub from: String,
    pub to: String,
    pub session: Option<&'static str>,
    pub message_status: Option<String>,
}
