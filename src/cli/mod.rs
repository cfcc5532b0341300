//! The command line: `serve` (default), `sign`, `send`, `chat`, `healthcheck`, `check-config`.

mod serve;

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
        /// Default: the configured listen address.
        #[arg(long)]
        url: Option<String>,
    },
}

/// Runs the chosen command and returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::serve(&cli.config).await,
        Command::CheckConfig => check_config(&cli.config),
        Command::Healthcheck { url } => serve::healthcheck(&cli.config, url).await,
    }
}

fn check_config(config: &ConfigArg) -> ExitCode {
    match config.load() {
        Ok(config) => {
            print!("{}", config.redacted_toml());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("sms-sessions: invalid configuration: {error}");
            ExitCode::from(2)
        }
    }
}
