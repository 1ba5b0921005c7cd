//! Command-line and environment interface: clap definitions and value parsers only, no I/O.
//!
//! Every supervisor option also reads `KAI_INIT_<NAME>` so that an image can set it with
//! `ENV`; a flag on the command line wins over the variable.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, ValueEnum};

use crate::user::UserSpec;

const EXAMPLES: &str = "\
Examples:
  kai-init -- node server.js                      run Node as PID 1: signals forwarded, zombies reaped
  kai-init --user node -- node server.js          drop root to the node user first (gosu semantics)
  kai-init --probe http://127.0.0.1:3000/health -- node server.js
  kai-init --signal-map TERM:QUIT -- nginx -g 'daemon off;'
  kai-init -- npm run dev                         a local debugging wrapper: Ctrl-C and Ctrl-Z behave
  kai-init check                                  the HEALTHCHECK command: asks the running kai-init

Exit codes: the child's code; 128+N if it died of signal N; 125 kai-init could not start;
126 COMMAND cannot be executed; 127 COMMAND not found; 2 usage error.";

const USAGE: &str = "\
kai-init [OPTIONS] [--] COMMAND [ARGS...]
       kai-init run [OPTIONS] [--] COMMAND [ARGS...]
       kai-init check [OPTIONS] [TARGET...]   (see kai-init check --help)";

/// The supervisor's command line. `run` and `check` are dispatched in `main` before this
/// parser is built: building clap's argument table is most of kai-init's start-up work, so
/// it is built once, for the options that are actually being parsed.
#[derive(Debug, Parser)]
#[command(
    name = "kai-init",
    version,
    about = "A tiny PID 1 for containers: drops root, forwards signals, reaps zombies, serves health probes.",
    override_usage = USAGE,
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// How the child tells kai-init it is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// systemd's sd_notify datagrams on a NOTIFY_SOCKET kai-init creates.
    Sd,
    /// s6's protocol: a newline written on this file descriptor.
    Fd(i32),
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Drop root to USER[:GROUP] (names or numbers) before starting COMMAND
    #[arg(short, long, env = "KAI_INIT_USER", value_name = "USER[:GROUP]", value_parser = UserSpec::parse)]
    pub user: Option<UserSpec>,

    /// Set PR_SET_NO_NEW_PRIVS so neither COMMAND nor its children can gain privileges
    #[arg(long, env = "KAI_INIT_NO_NEW_PRIVS")]
    pub no_new_privs: bool,

    /// After a stop signal, how long to wait before SIGKILL to the child's process group
    #[arg(long, env = "KAI_INIT_STOP_TIMEOUT", value_name = "DURATION", default_value = "8s", value_parser = crate::duration::parse)]
    pub stop_timeout: Duration,

    /// Rewrite a signal before forwarding it, e.g. TERM:QUIT; TO=0 drops it (repeatable)
    #[arg(long, env = "KAI_INIT_SIGNAL_MAP", value_name = "FROM:TO", value_delimiter = ',', value_parser = parse_signal_map)]
    pub signal_map: Vec<(i32, i32)>,

    /// Forward signals to the child only, not to its whole process group
    #[arg(long, env = "KAI_INIT_SINGLE_CHILD")]
    pub single_child: bool,

    /// Report this exit code as 0, e.g. 143 for JVMs (repeatable)
    #[arg(
        long,
        env = "KAI_INIT_SUCCESS_CODE",
        value_name = "N",
        value_delimiter = ','
    )]
    pub success_code: Vec<u8>,

    /// Format of kai-init's own log lines on stderr
    #[arg(long, env = "KAI_INIT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Least severe level of kai-init's own log lines
    #[arg(long, env = "KAI_INIT_LOG_LEVEL", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Abstract Unix socket for the health endpoint ("off" disables it)
    #[arg(
        long,
        env = "KAI_INIT_HEALTH_SOCKET",
        value_name = "NAME|off",
        default_value = "@kai-init"
    )]
    pub health_socket: String,

    /// Also serve the health endpoint on TCP, e.g. 0.0.0.0:8081 (for Kubernetes httpGet probes)
    #[arg(long, env = "KAI_INIT_HEALTH_LISTEN", value_name = "ADDR")]
    pub health_listen: Option<SocketAddr>,

    /// Probe the child: http://HOST:PORT/PATH, tcp://HOST:PORT, exec:COMMAND or file:PATH
    #[arg(long, env = "KAI_INIT_PROBE", value_name = "URL", value_parser = crate::health::probe::Target::parse_probe)]
    pub probe: Option<crate::health::probe::Target>,

    /// Time between probes
    #[arg(long, env = "KAI_INIT_PROBE_INTERVAL", value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    pub probe_interval: Duration,

    /// How long one probe may take
    #[arg(long, env = "KAI_INIT_PROBE_TIMEOUT", value_name = "DURATION", default_value = "1s", value_parser = parse_positive_duration)]
    pub probe_timeout: Duration,

    /// Failed probes in a row before /livez fails
    #[arg(long, env = "KAI_INIT_PROBE_FAILURES", value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub probe_failures: u32,

    /// Wait this long after start before the first probe
    #[arg(long, env = "KAI_INIT_PROBE_INITIAL_DELAY", value_name = "DURATION", default_value = "0s", value_parser = crate::duration::parse)]
    pub probe_initial_delay: Duration,

    /// Readiness notification from the child: sd (NOTIFY_SOCKET) or fd:N (s6 style)
    #[arg(long, env = "KAI_INIT_NOTIFY", value_name = "sd|fd:N", value_parser = parse_notify)]
    pub notify: Option<Notify>,

    /// On SIGTERM, fail /readyz at once but wait this long before forwarding the stop signal
    #[arg(long, env = "KAI_INIT_DRAIN_DELAY", value_name = "DURATION", default_value = "0s", value_parser = crate::duration::parse)]
    pub drain_delay: Duration,

    /// The program to run and its arguments
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Path to ask the running kai-init for
    #[arg(long, default_value = "/healthz")]
    pub path: String,

    /// Give up after this long
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_positive_duration)]
    pub timeout: Duration,

    /// HTTP statuses that pass, e.g. 200-399 or 200,204
    #[arg(long, value_name = "RANGES", default_value = "200-399")]
    pub expect_status: String,

    /// Extra request header for http:// targets (repeatable)
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub header: Vec<String>,

    /// Check these instead of kai-init: http://HOST:PORT/PATH or tcp://HOST:PORT (all must pass)
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
}

fn parse_signal_map(text: &str) -> Result<(i32, i32), String> {
    let (from, to) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not FROM:TO (e.g. TERM:QUIT)"))?;
    Ok((
        crate::signal_names::parse(from, false)?,
        crate::signal_names::parse(to, true)?,
    ))
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match crate::duration::parse(text)? {
        Duration::ZERO => Err(format!("duration '{text}' must be greater than zero")),
        d => Ok(d),
    }
}

fn parse_notify(text: &str) -> Result<Notify, String> {
    if text == "sd" {
        return Ok(Notify::Sd);
    }
    match text.strip_prefix("fd:").map(str::parse::<i32>) {
        Some(Ok(fd)) if fd >= 3 => Ok(Notify::Fd(fd)),
        Some(Ok(_)) => Err("fd:N needs N >= 3 (0-2 are the child's stdio)".into()),
        _ => Err(format!("'{text}' is not sd or fd:N")),
    }
}

/// Turns a clap error into kai-init's one-line message and exit code: help and version
/// print as usual (0); a value that does not parse is a start-up failure (125, like an
/// unknown user); anything else is a usage error (2).
pub fn report(err: clap::Error) -> u8 {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            0
        }
        kind => {
            let rendered = err.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            let code = match kind {
                ErrorKind::ValueValidation | ErrorKind::InvalidValue => 125,
                _ => 2,
            };
            eprintln!("kai-init: {first} (see kai-init --help)");
            code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn signal_maps_parse() {
        assert_eq!(parse_signal_map("TERM:QUIT"), Ok((15, 3)));
        assert_eq!(parse_signal_map("SIGHUP:0"), Ok((1, 0)));
        assert!(parse_signal_map("TERM").is_err());
        assert!(parse_signal_map("BOGUS:TERM").is_err());
    }

    #[test]
    fn notify_parses() {
        assert_eq!(parse_notify("sd"), Ok(Notify::Sd));
        assert_eq!(parse_notify("fd:3"), Ok(Notify::Fd(3)));
        assert!(parse_notify("fd:1").is_err());
        assert!(parse_notify("pipe").is_err());
    }
}
