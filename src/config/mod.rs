//! What kai-init was asked to do: the settings types that `cli` parses into and that the
//! supervisor, the health side and `check` read. The option table and the parsers of
//! single values are in `cli`, the target grammar in `target`, signal names, user specs
//! and word splitting in files of their own. No I/O: everything here is a pure function
//! of its input, so each parser has a fuzz target (fuzz/glue.rs).

pub mod cli;
pub mod env_names;
pub mod signal_names;
pub mod target;
pub mod user;
pub mod words;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use crate::util::log::{LogFormat, LogLevel};
use target::Target;
use user::UserSpec;

/// `kai-init check`'s settings.
#[derive(Debug, Clone)]
pub struct CheckArgs {
    pub path: String,
    pub timeout: Duration,
    pub expect_status: String,
    pub header: Vec<String>,
    pub targets: Vec<String>,
}

/// How the child tells kai-init it is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// systemd's sd_notify datagrams on a NOTIFY_SOCKET kai-init creates.
    Sd,
    /// s6's protocol: a newline written on this file descriptor.
    Fd(i32),
}

/// The supervisor's settings, from flags, variables and defaults.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub user: Option<UserSpec>,
    pub no_new_privs: bool,
    pub stop_timeout: Duration,
    pub signal_map: Vec<(i32, i32)>,
    /// Signals forwarded to the child's whole process group; every other signal goes to
    /// the main child only.
    pub signal_group: Vec<i32>,
    pub success_code: Vec<u8>,
    pub log_format: LogFormat,
    pub log_level: LogLevel,
    pub health_socket: String,
    pub health_listen: Option<SocketAddr>,
    pub probe: Option<Target>,
    pub probe_interval: Duration,
    /// Time between probes until the first success (issue 9: ready when the app is).
    pub probe_start_interval: Duration,
    pub probe_timeout: Duration,
    pub probe_failures: u32,
    pub probe_initial_delay: Duration,
    pub notify: Option<Notify>,
    pub drain_delay: Duration,
    /// `--exit-on-unhealthy`: a failing /livez (after the first pass) stops the child
    /// and kai-init exits [`crate::util::error::UNHEALTHY`].
    pub exit_on_unhealthy: bool,
    /// `--memory-warn`: the share of the memory limit (percent) whose crossing by the
    /// working set is warned about; None: off.
    pub memory_warn: Option<u8>,
    /// Dependencies to wait for, in order, before anything starts (`--wait-for`).
    pub wait_for: Vec<Target>,
    /// How long all the waits together may take (`--wait-timeout`).
    pub wait_timeout: Duration,
    /// Turn `NAME_FILE=PATH` into `NAME` = the file's content (`--file-env`); `None`: off.
    pub file_env: Option<FileEnv>,
    /// Expand `${NAME}` in COMMAND and `--pre` words (`--expand-env`).
    pub expand_env: bool,
    /// Command lines run to completion, in order, before COMMAND (`--pre`), split into words.
    pub pre: Vec<Vec<OsString>>,
    /// The program to run and its arguments (may be empty: `main` reports that).
    pub command: Vec<OsString>,
}

/// Which `NAME_FILE` variables `--file-env` turns into `NAME` (see `file_env`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileEnv {
    /// Bare `--file-env`: every `NAME_FILE` whose path lies under /run/secrets/.
    Every,
    /// `--file-env=A,B`: exactly these NAMEs, each of which must end up set.
    Only(Vec<String>),
}
