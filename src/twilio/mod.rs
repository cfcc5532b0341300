//! Everything that speaks Twilio's wire formats: signatures, inbound parameters, TwiML.

pub mod inbound;
pub mod signature;
pub mod twiml;
