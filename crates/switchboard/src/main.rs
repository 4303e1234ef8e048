//! `switchboard`: the daemon (`switchboard run`) and the operator CLI. Every CLI command works on the database
//! directly, whether or not a daemon runs; a running daemon picks changes up from the change log.

mod calls;
mod cli;
mod numbers;
mod provision;
mod settings;
mod tokens;
mod voicemail;

use std::process::ExitCode;

use clap::Parser;

/// Registration allocates and frees many small objects per message; glibc's allocator cost a quarter of the
/// daemon's CPU at 12,000 registrations/s, and kept freed memory from the OS after bursts.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::dispatch(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The registrar's state lives in one task, so the daemon gains little from a second worker thread and pays for
/// every cross-thread wake-up; `SWITCHBOARD_WORKER_THREADS` (default 1) sets the count. Database drivers keep
/// their own threads either way.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let threads = std::env::var("SWITCHBOARD_WORKER_THREADS").ok().and_then(|v| v.parse::<usize>().ok()).unwrap_or(1);
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    }
}
