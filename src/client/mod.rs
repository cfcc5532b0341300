//! The client side: what `sign`, `send`, `chat` and `healthcheck` use to talk to a server the
//! way Twilio does.

pub mod http;
