//! The `sms-sessions` binary: parse the command line, then hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use sms_sessions::cli::{Cli, run};
use sms_sessions::logging;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // `serve` batches its log lines; a worker about to go idle writes them out.
        .on_thread_park(logging::flush)
        .build();
    let code = match runtime {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(error) => {
            eprintln!("sms-sessions: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    };
    logging::flush();
    code
}
