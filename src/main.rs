//! kai-init: a tiny PID 1 for containers. This file only parses the command line,
//! sets up logging and dispatches; nothing below it calls `process::exit`.
#![deny(unsafe_code)]

use kai_init::config::cli;
use kai_init::health::check;
use kai_init::start;
use kai_init::util::log::{self, LogLevel};

use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    // `check` runs every few seconds in every container: dispatch it before building the
    // supervisor's parser, and with a parser of its own whose errors exit 64, not 2.
    match args.get(1).and_then(|a| a.to_str()) {
        Some("check") => return ExitCode::from(check::main(&args[1..])),
        Some("run") => drop(args.remove(1)),
        _ => {}
    }
    let run = match cli::parse(&args[1..]) {
        Ok(run) => run,
        Err(stop) => return ExitCode::from(stop.report()),
    };
    if run.command.is_empty() {
        eprintln!("kai-init: no command given (usage: kai-init [OPTIONS] [--] COMMAND [ARGS...])");
        return ExitCode::from(2);
    }
    log::init(run.log_format, run.log_level);
    let quiet = run.log_level == LogLevel::Off;
    match start::run(run) {
        Ok(code) => ExitCode::from(code),
        // A start-up failure is always reported, even with --log-level off.
        Err(e) if quiet => {
            eprintln!(
                "kai-init: {}",
                kai_init::util::text::printable(&e.to_string())
            );
            ExitCode::from(e.exit_code())
        }
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
