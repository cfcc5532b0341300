//! `send`: one text, exactly as Twilio would deliver it, with the pair's cookies from the jar.

use std::process::ExitCode;

use clap::Args;

use super::conversation::{Conversation, ConversationArgs, ConversationError};

#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub conversation: ConversationArgs,
    /// The text's body
    #[arg(value_name = "BODY")]
    pub body: String,
}

/// Exit 0 on a 200 reply; 1 when the text got no usable answer; 2 when it could not be sent.
pub async fn run(args: &SendArgs) -> ExitCode {
    let result = match Conversation::open(&args.conversation) {
        Ok(conversation) => conversation.send(&args.body).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sms-sessions send: {error}");
            exit_code(&error)
        }
    }
}

/// 1 for what the server (or its absence) did, 2 for what the user or their files did.
pub fn exit_code(error: &ConversationError) -> ExitCode {
    match error {
        ConversationError::Deliver(_) => ExitCode::from(1),
        _ => ExitCode::from(2),
    }
}
