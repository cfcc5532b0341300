//! The `sms-sessions` binary: parse the command line, then hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use sms_sessions::cli::{Cli, run};
use sms_sessions::logging;
use tokio::runtime::{Builder, Runtime};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match workers() {
        Ok(workers) => runtime(workers),
        Err(error) => {
            eprintln!("sms-sessions: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
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

/// `SMS_SESSIONS_WORKERS`, else one per core this process may use (affinity and cgroup quota
/// count, so `taskset -c 0` or `--cpus=1` mean one).
fn workers() -> Result<usize, String> {
    let Some(value) = std::env::var("SMS_SESSIONS_WORKERS")
        .ok()
        .filter(|value| !value.trim().is_empty())
    else {
        return Ok(std::thread::available_parallelism().map_or(1, |n| n.get()));
    };
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "SMS_SESSIONS_WORKERS: expected a number of worker threads (1 or more), got {value:?}"
        )),
    }
}

/// With one worker, a single-threaded runtime: accepting connections and answering them on
/// one thread, without hand-offs between threads.
fn runtime(workers: usize) -> std::io::Result<Runtime> {
    let mut builder = if workers == 1 {
        Builder::new_current_thread()
    } else {
        let mut builder = Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    builder
        .enable_all()
        // `serve` batches its log lines; a worker about to go idle writes them out.
        .on_thread_park(logging::flush)
        .build()
}
