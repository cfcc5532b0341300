//! `chat`: `send`, one line at a time. Each line read from stdin is one text; lines starting
//! with `/` are commands (`//` sends a text that starts with `/`).
//!
//! Replies go to stdout, everything else (prompts, confirmations, errors) to stderr, and the
//! banner and prompts only appear when stdin is a terminal — so piping a script in gives a
//! clean transcript of replies.

use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;

use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::conversation::{Conversation, ConversationArgs};
use super::send::exit_code;

#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub conversation: ConversationArgs,
}

const HELP: &str = "each line is one text; /reset forgets this pair's cookies, /from NUM and \
                    /to NUM switch the pair, /quit (or end of input) leaves; //text sends /text";

/// One line of input.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Text(String),
    Reset,
    From(String),
    To(String),
    Quit,
    Help,
    Blank,
    /// A command it does not know, or one missing its argument.
    Invalid(String),
}

impl Line {
    fn parse(raw: &str) -> Self {
        let line = raw.trim_end_matches(['\r', '\n']);
        if let Some(text) = line.strip_prefix("//") {
            return Self::Text(format!("/{text}"));
        }
        let Some(command) = line.strip_prefix('/') else {
            return if line.trim().is_empty() {
                Self::Blank
            } else {
                Self::Text(line.to_owned())
            };
        };
        let (name, argument) = command
            .trim()
            .split_once(char::is_whitespace)
            .map_or((command.trim(), ""), |(n, a)| (n, a.trim()));
        match (name, argument) {
            ("reset", "") => Self::Reset,
            ("quit" | "exit", "") => Self::Quit,
            ("help", "") => Self::Help,
            ("from", number) if !number.is_empty() => Self::From(number.to_owned()),
            ("to", number) if !number.is_empty() => Self::To(number.to_owned()),
            _ => Self::Invalid(line.to_owned()),
        }
    }
}

/// Exit 0 when every text got a reply, 1 when one did not, 2 when chat could not start.
pub async fn run(args: &ChatArgs) -> ExitCode {
    let mut conversation = match Conversation::open(&args.conversation) {
        Ok(conversation) => conversation,
        Err(error) => {
            eprintln!("sms-sessions chat: {error}");
            return exit_code(&error);
        }
    };
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!(
            "texting {} from {}; {HELP}",
            conversation.to, conversation.from
        );
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut failed = false;
    loop {
        if interactive {
            prompt(&conversation);
        }
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(error) => {
                eprintln!("sms-sessions chat: cannot read stdin: {error}");
                return ExitCode::from(2);
            }
        };
        match step(&mut conversation, Line::parse(&line)).await {
            Step::Continue => {}
            Step::Failed => failed = true,
            Step::Quit => break,
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

enum Step {
    Continue,
    Failed,
    Quit,
}

async fn step(conversation: &mut Conversation, line: Line) -> Step {
    let result = match line {
        Line::Text(text) => conversation.send(&text).await,
        Line::Reset => conversation.reset().map(|()| {
            eprintln!(
                "(cookies for {} → {} forgotten)",
                conversation.from, conversation.to
            );
        }),
        Line::From(number) => {
            conversation.from = number;
            switched(conversation);
            Ok(())
        }
        Line::To(number) => {
            conversation.to = number;
            switched(conversation);
            Ok(())
        }
        Line::Quit => return Step::Quit,
        Line::Help => {
            eprintln!("{HELP}");
            Ok(())
        }
        Line::Blank => Ok(()),
        Line::Invalid(line) => {
            eprintln!("unknown command {line:?}; {HELP}");
            Ok(())
        }
    };
    match result {
        Ok(()) => Step::Continue,
        Err(error) => {
            eprintln!("sms-sessions chat: {error}");
            Step::Failed
        }
    }
}

fn switched(conversation: &Conversation) {
    eprintln!(
        "(now texting {} from {})",
        conversation.to, conversation.from
    );
}

fn prompt(conversation: &Conversation) {
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{} > ", conversation.from);
    let _ = stderr.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_texts() {
        let cases = [
            ("hello", Line::Text("hello".into())),
            ("  spaced  \r", Line::Text("  spaced  ".into())),
            ("//etc", Line::Text("/etc".into())),
            ("/reset", Line::Reset),
            ("/quit", Line::Quit),
            ("/from  +1555 ", Line::From("+1555".into())),
            ("/to whatsapp:+1666", Line::To("whatsapp:+1666".into())),
            ("/from", Line::Invalid("/from".into())),
            ("/dance", Line::Invalid("/dance".into())),
            ("   ", Line::Blank),
        ];
        for (raw, expected) in cases {
            assert_eq!(Line::parse(raw), expected, "{raw:?}");
        }
    }
}
