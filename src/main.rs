//! The `sms-sessions` binary: parse the command line, then hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use sms_sessions::cli::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    run(Cli::parse()).await
}
