//! Everything that speaks Twilio's wire formats: signatures, inbound parameters, TwiML, and
//! the webhook gate that checks them.

pub mod fields;
pub mod form;
pub mod inbound;
pub mod public_url;
pub mod signature;
pub mod twiml;
pub mod webhook;
