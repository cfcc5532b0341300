//! Plugging in a flow of your own: a two-step sign-up that asks for a name, then remembers it.
//!
//! ```text
//! cargo run --example custom_flow
//! sms-sessions send --url http://127.0.0.1:8080/sms --from +14155550199 --to +14155550100 hello
//! ```
//!
//! The flow only sees the inbound message and the session state; the server does the rest
//! (signature, cookie, TwiML response, logging).

use std::sync::Arc;

use sms_sessions::app::{AppState, serve, shutdown_signal};
use sms_sessions::config::{Config, ProcessEnv};
use sms_sessions::flows::Flow;
use sms_sessions::session::SessionData;
use sms_sessions::twilio::inbound::InboundMessage;
use sms_sessions::twilio::twiml::MessagingResponse;

/// Asks for a name once, then greets by name and counts visits.
struct SignUp;

impl Flow for SignUp {
    async fn reply(
        &self,
        message: &InboundMessage<'_>,
        state: &mut SessionData,
    ) -> MessagingResponse {
        let mut response = MessagingResponse::new();
        let text = message.body.trim();
        match (state.get("name").map(str::to_owned), state.get("step")) {
            (Some(name), _) => {
                let visits = state.get_parsed::<u32>("visits").unwrap_or(0) + 1;
                state.set("visits", visits);
                response.message(format!("Welcome back, {name} (visit {visits})."));
            }
            (None, Some("asked")) if !text.is_empty() => {
                state.set("name", text);
                state.remove("step");
                response.message(format!("Nice to meet you, {text}!"));
            }
            (None, _) => {
                state.set("step", "asked");
                response.message("Hi! What's your name?");
            }
        }
        response
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::load(None, &ProcessEnv)?;
    sms_sessions::logging::init(config.log_format);
    let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
    println!(
        "custom flow listening on http://{}/sms",
        listener.local_addr()?
    );
    serve(
        listener,
        AppState::with_flow(config, Arc::new(SignUp)),
        shutdown_signal(),
    )
    .await?;
    Ok(())
}
