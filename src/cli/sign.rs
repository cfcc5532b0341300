//! `sign`: the X-Twilio-Signature for a form post, or a ready curl command carrying it.
//!
//! A hand-written curl against the server fails with 403 because the signature covers the
//! URL and every parameter; this prints exactly what Twilio would send, computed by the same
//! [`AuthToken::sign`](crate::twilio::signature::AuthToken::sign) the server verifies with.

use std::process::ExitCode;

use clap::Args;

use super::token::TokenArg;
use crate::client::curl;

#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// The full URL Twilio requests (signed byte for byte, query included)
    #[arg(long)]
    pub url: String,
    #[command(flatten)]
    pub token: TokenArg,
    /// Print a curl command that posts the signed form instead of the signature alone
    #[arg(long)]
    pub curl: bool,
    /// Form parameters, decoded (split at the first `=`; a name may repeat). Put `--` before
    /// them if a name starts with `-`.
    #[arg(value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
}

/// `NAME=VALUE`, split at the first `=`.
fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) => Ok((name.to_owned(), value.to_owned())),
        None => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

pub fn run(args: &SignArgs) -> ExitCode {
    let token = match args.token.resolve() {
        Ok(token) => token,
        Err(error) => {
            eprintln!("sms-sessions sign: {error}");
            return ExitCode::from(2);
        }
    };
    let signature = token.sign(&args.url, &args.params);
    if args.curl {
        println!("{}", curl::command(&args.url, &signature, &args.params));
    } else {
        println!("{signature}");
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_equals_only() {
        assert_eq!(parse_param("Body=a=b"), Ok(("Body".into(), "a=b".into())));
        assert_eq!(parse_param("=x"), Ok((String::new(), "x".into())));
        assert_eq!(parse_param("Empty="), Ok(("Empty".into(), String::new())));
        assert!(parse_param("Body").is_err());
    }
}
