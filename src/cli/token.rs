//! Which auth token the client tools sign with.
//!
//! `--token`, else `TWILIO_AUTH_TOKEN` (or the file named by `TWILIO_AUTH_TOKEN_FILE`), the
//! same variables `serve` reads — so in one shell the client signs with what the server
//! checks. With neither, the server runs in development mode and accepts
//! [`DEV_AUTH_TOKEN`], so that is used, with a one-line note on stderr.

use clap::Args;

use crate::config::DEV_AUTH_TOKEN;
use crate::twilio::signature::AuthToken;

#[derive(Debug, Clone, Args)]
pub struct TokenArg {
    /// Auth token to sign with [default: TWILIO_AUTH_TOKEN, else the development token]
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// No usable token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}: the auth token is empty")]
    Empty(&'static str),
    #[error("TWILIO_AUTH_TOKEN_FILE: cannot read {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

impl TokenArg {
    /// The token to sign with; notes on stderr when falling back to the development token.
    pub fn resolve(&self) -> Result<AuthToken, TokenError> {
        let (token, origin) = match self.token.clone() {
            Some(token) => (token, "--token"),
            None => match from_env()? {
                Some(token) => (token, "TWILIO_AUTH_TOKEN"),
                None => {
                    eprintln!(
                        "sms-sessions: TWILIO_AUTH_TOKEN is not set; signing with the \
                         development token that `sms-sessions serve` accepts without one"
                    );
                    (DEV_AUTH_TOKEN.to_owned(), "development token")
                }
            },
        };
        AuthToken::new(&token).map_err(|_| TokenError::Empty(origin))
    }
}

/// `TWILIO_AUTH_TOKEN`, else the contents of `TWILIO_AUTH_TOKEN_FILE` (empty means unset, as
/// for the server).
fn from_env() -> Result<Option<String>, TokenError> {
    let var = |name| std::env::var(name).ok().filter(|value| !value.is_empty());
    if let Some(token) = var("TWILIO_AUTH_TOKEN") {
        return Ok(Some(token));
    }
    let Some(path) = var("TWILIO_AUTH_TOKEN_FILE") else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned())),
        Err(source) => Err(TokenError::File { path, source }),
    }
}
