//! What `send` and `chat` share: their options, and one conversation between a phone and a
//! Twilio number whose cookies live in the jar file.
//!
//! The jar file is read before and written after every text, so a `send` in another shell
//! (or the next invocation) continues the same conversation. The write merges: under the jar's
//! lock it re-reads the file and replaces only this pair's cookies, so runs for other pairs
//! that finished while this text was in flight keep theirs. The lock is not held while waiting
//! for the server.

use std::path::PathBuf;

use clap::Args;

use super::token::{TokenArg, TokenError};
use crate::client::jar::{self, Jar};
use crate::client::jar_file::{self, JarError};
use crate::client::params::{self, Text};
use crate::client::reply::Readable;
use crate::client::webhook::{DeliverError, Webhook};
use crate::session::Pair;
use crate::twilio::twiml::MAX_MEDIA;

#[derive(Debug, Clone, Args)]
pub struct ConversationArgs {
    /// The server's webhook, e.g. http://127.0.0.1:8080/sms (plain http)
    #[arg(long)]
    pub url: String,
    /// The texting phone's number
    #[arg(long, value_name = "NUM")]
    pub from: String,
    /// Your Twilio number
    #[arg(long, value_name = "NUM")]
    pub to: String,
    #[command(flatten)]
    pub token: TokenArg,
    /// Cookie jar [default: $XDG_CACHE_HOME/sms-sessions/jar.toml, else ~/.cache/sms-sessions/jar.toml]
    #[arg(long, value_name = "FILE")]
    pub jar: Option<PathBuf>,
    /// Attach a media URL, as an MMS (repeatable, up to 10)
    #[arg(long = "media", value_name = "URL")]
    pub media: Vec<String>,
    /// The public URL Twilio calls, to sign for instead of --url (behind a proxy or tunnel);
    /// without a path, --url's path and query are appended
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Print the reply as received (TwiML) instead of its messages
    #[arg(long)]
    pub raw: bool,
}

/// Why a conversation cannot start, or a text got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Jar(#[from] JarError),
    #[error(transparent)]
    Deliver(#[from] DeliverError),
    #[error("{0} media given; a message carries at most {MAX_MEDIA}")]
    TooManyMedia(usize),
}

/// One (To, From) pair talking to one server.
#[derive(Debug)]
pub struct Conversation {
    pub from: String,
    pub to: String,
    webhook: Webhook,
    jar_path: PathBuf,
    media: Vec<String>,
    raw: bool,
}

impl Conversation {
    pub fn open(args: &ConversationArgs) -> Result<Self, ConversationError> {
        if args.media.len() > MAX_MEDIA {
            return Err(ConversationError::TooManyMedia(args.media.len()));
        }
        let jar_path = match &args.jar {
            Some(path) => path.clone(),
            None => jar_file::default_path()?,
        };
        let webhook = Webhook {
            url: args.url.clone(),
            signed_url: signed_url(&args.url, args.public_url.as_deref()),
            token: args.token.resolve()?,
            account_sid: params::account_sid_from_env(),
        };
        Ok(Self {
            from: args.from.clone(),
            to: args.to.clone(),
            webhook,
            jar_path,
            media: args.media.clone(),
            raw: args.raw,
        })
    }

    fn pair(&self) -> Pair<'_> {
        Pair {
            to: &self.to,
            from: &self.from,
        }
    }

    /// Sends one text and prints the reply on stdout (warnings on stderr).
    pub async fn send(&self, body: &str) -> Result<(), ConversationError> {
        let mut jar = jar_file::load(&self.jar_path)?;
        let text = Text {
            from: &self.from,
            to: &self.to,
            body,
            media: &self.media,
        };
        let now = jar::unix_now();
        let delivered = self.webhook.deliver(&text, &mut jar, now).await?;
        self.merge(&jar, now)?;
        for warning in &delivered.warnings {
            eprintln!("sms-sessions: {warning}");
        }
        if self.raw {
            println!("{}", delivered.body.trim_end());
        } else {
            print!("{}", Readable(&delivered.replies));
        }
        Ok(())
    }

    /// Forgets this pair's cookies: its next text starts a new conversation.
    pub fn reset(&self) -> Result<(), ConversationError> {
        self.merge(&Jar::default(), jar::unix_now())
    }

    /// Writes this pair's cookies from `mine` into the jar file as it is now, under its lock.
    fn merge(&self, mine: &Jar, now: u64) -> Result<(), ConversationError> {
        jar_file::update(&self.jar_path, |disk| {
            disk.adopt(self.pair(), mine);
            disk.prune(now);
        })?;
        Ok(())
    }
}

/// `public_url` as given, or with `url`'s path and query when it has no path of its own.
fn signed_url(url: &str, public_url: Option<&str>) -> String {
    let Some(public) = public_url else {
        return url.to_owned();
    };
    let has_path = public
        .split_once("://")
        .is_some_and(|(_, rest)| rest.contains(['/', '?']));
    if has_path {
        return public.to_owned();
    }
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find(['/', '?']).map(|at| &rest[at..]))
        .unwrap_or("");
    format!("{public}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_without_a_path_borrows_the_target_path() {
        let url = "http://127.0.0.1:8080/sms?x=1";
        assert_eq!(signed_url(url, None), url);
        assert_eq!(
            signed_url(url, Some("https://sms.example.com")),
            "https://sms.example.com/sms?x=1"
        );
        assert_eq!(
            signed_url(url, Some("https://example.com/twilio/sms")),
            "https://example.com/twilio/sms"
        );
    }
}
