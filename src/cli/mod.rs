//! The command line: `serve` (default), `sign`, `send`, `chat`, `healthcheck`, `check-config`,
//! `flow check|test|graph`.

mod chat;
mod conversation;
mod flow;
mod relay;
mod send;
mod serve;
mod sign;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, ProcessEnv};

#[derive(Debug, Parser)]
#[command(
    name = "sms-sessions",
    version,
    about = "Signed, cookie-scoped SMS conversations over Twilio webhooks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// A TOML file layered over the embedded default (environment variables still win).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    pub fn load(&self) -> Result<Config, ConfigError> {
        Config::load(self.config.as_deref(), &ProcessEnv)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the webhook server (the default).
    Serve,
    /// Check and print the effective configuration, secrets redacted.
    CheckConfig,
    /// Exit 0 when the server's /healthz answers 200 (for Docker's HEALTHCHECK).
    Healthcheck {
        /// The health URL, or a base URL to which /healthz is added [default: the configured
        /// listen address]
        #[arg(long)]
        url: Option<String>,
    },
    /// Print the X-Twilio-Signature for a form POST of NAME=VALUE params to URL.
    Sign(sign::SignArgs),
    /// Send one text exactly as Twilio would, keeping the pair's cookies in a jar; print the reply.
    Send(send::SendArgs),
    /// Like send, one text per line of stdin (/reset, /from NUM, /to NUM, /quit).
    Chat(chat::ChatArgs),
    /// Check, test or graph conversation flows written as files.
    Flow(flow::FlowArgs),
    /// Open, list and close masked-number relay sessions through the admin API.
    Relay(relay::RelayArgs),
}

/// Runs the chosen command and returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::serve(&cli.config).await,
        Command::CheckConfig => check_config(&cli.config),
        Command::Healthcheck { url } => {
            serve::healthcheck(&cli.config, url.as_deref().map(health_url)).await
        }
        Command::Sign(args) => sign::run(&args),
        Command::Send(args) => send::run(&args).await,
        Command::Chat(args) => chat::run(&args).await,
        Command::Flow(args) => flow::run(&cli.config, &args),
        Command::Relay(args) => relay::run(&args).await,
    }
}

/// `--url` as given, or with `/healthz` added when it names only the server
/// (`http://127.0.0.1:8080` or `…:8080/`).
fn health_url(url: &str) -> String {
    let path_start = url
        .split_once("://")
        .map_or(0, |(scheme, _)| scheme.len() + 3);
    match url[path_start..].find('/') {
        None => format!("{url}/healthz"),
        Some(at) if path_start + at + 1 == url.len() => format!("{url}healthz"),
        Some(_) => url.to_owned(),
    }
}

fn check_config(config: &ConfigArg) -> ExitCode {
    match config.load() {
        Ok(config) => {
            for warning in &config.warnings {
                eprintln!("sms-sessions: warning: {warning}");
            }
            if let Err(error) = crate::flows::from_config(&config, None) {
                eprint!("sms-sessions: invalid configuration: {error}");
                return ExitCode::from(2);
            }
            print!("{}", config.redacted_toml());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("sms-sessions: invalid configuration: {error}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::health_url;

    #[test]
    fn a_bare_server_url_gets_healthz() {
        assert_eq!(health_url("http://h:1"), "http://h:1/healthz");
        assert_eq!(health_url("http://h:1/"), "http://h:1/healthz");
        assert_eq!(health_url("http://h:1/healthz"), "http://h:1/healthz");
        assert_eq!(health_url("http://h:1/x/healthz"), "http://h:1/x/healthz");
    }
}
