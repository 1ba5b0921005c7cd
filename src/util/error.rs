//! kai-init's own failures, each with the exit code it documents, and how text that
//! kai-init did not write (names, values, file contents) is shown in a message.
//!
//! Messages are lower-case, name the cause, and do not repeat their source: `main`
//! prints one line, `kai-init: <message>`.
//!
//! Exit codes, all of kai-init's own (the child's code passes through otherwise, 128+N
//! when it died of signal N, see `supervise::exit`):
//! - 2: usage error of `kai-init` (unknown flag, missing value, no COMMAND);
//! - 125: kai-init could not start: a setting that does not parse or cannot be read
//!   (a flag's value, a `KAI_INIT_*` variable, /etc/passwd, /etc/group), an unknown user
//!   or group, a privilege step or a system call that failed, a listener it cannot bind,
//!   arguments and environment (secrets included) too big for exec together;
//! - 124: a `--wait-for` target was not up within `--wait-timeout` (COMMAND never ran);
//! - 126: COMMAND exists but cannot be executed; 127: COMMAND not found;
//! - 69 ([`UNHEALTHY`]): `--exit-on-unhealthy` stopped the child because /livez failed;
//! - `kai-init check`: 0 healthy, 1 unhealthy or unreachable, 64 usage or invalid value.

use std::{fmt, io};

use super::text::short;

/// kai-init stopped the child because it was unhealthy (`--exit-on-unhealthy`): sysexits'
/// EX_UNAVAILABLE, "a service is unavailable". Not 2, 64 or 124-127 (kai-init's other
/// codes), and not 128+N: a restart policy restarts on it, and a person reading the exit
/// code can tell it from the child's own failures (which pass through unchanged).
pub const UNHEALTHY: u8 = 69;

#[derive(Debug)]
pub enum Error {
    /// A setting that cannot be honoured (125): `--user` names nobody, a `--file-env`
    /// secret cannot be read, an `--expand-env` reference is unset. `about` names the
    /// feature, `why` what is wrong (its type's own message, see [`Error::setting`]).
    Setting { about: &'static str, why: String },
    /// A file kai-init needs exists but cannot be read (125): fail closed, never "empty".
    Read { path: &'static str, err: io::Error },
    /// A system call needed before the child could start failed (125).
    Setup { about: &'static str, err: io::Error },
    /// setgroups/setgid/setuid refused (125).
    Privileges {
        spec: String,
        err: nix::errno::Errno,
    },
    /// A health listener could not be bound (125).
    Bind { addr: String, err: io::Error },
    /// A `--wait-for` target was still down at `--wait-timeout` (124).
    WaitTimeout {
        target: String,
        error: String,
        after: std::time::Duration,
    },
    /// argv and the environment together are over the kernel's limit for exec (125): the
    /// environment kai-init built (`--file-env` secrets, most often) is at fault, not
    /// COMMAND. `largest` names the largest variable, or the argument by its position;
    /// never a value. Sizes in bytes.
    TooBig {
        command: String,
        size: usize,
        limit: usize,
        largest: String,
    },
    /// COMMAND was not found (127).
    NotFound { command: String },
    /// COMMAND exists but cannot be executed (126).
    NotExecutable { command: String, err: io::Error },
}

impl Error {
    pub fn setup(about: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |err| Error::Setup { about, err }
    }

    /// A refused setting (125), from its own error type's message: `about` names the
    /// feature (`--file-env`), so this file needs none of those types.
    pub fn setting<E: fmt::Display>(about: &'static str) -> impl FnOnce(E) -> Error {
        move |e| Error::Setting {
            about,
            why: e.to_string(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::NotFound { .. } => 127,
            Error::NotExecutable { .. } => 126,
            Error::WaitTimeout { .. } => 124,
            Error::Setting { .. }
            | Error::Read { .. }
            | Error::Setup { .. }
            | Error::Privileges { .. }
            | Error::Bind { .. }
            | Error::TooBig { .. } => 125,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Setting { about, why } => write!(f, "{about}: {why}"),
            Error::Read { path, err } => write!(f, "cannot read {path}: {}", short(err)),
            Error::Setup { about, err } => write!(f, "cannot {about}: {err}"),
            Error::Privileges { spec, err } => {
                write!(f, "cannot switch to user '{spec}': {}", err.desc())
            }
            Error::Bind { addr, err } => write!(f, "cannot listen on {addr}: {err}"),
            Error::WaitTimeout {
                target,
                error,
                after,
            } => write!(
                f,
                "{target} not up after {}: {error}",
                crate::util::duration::format(*after)
            ),
            Error::TooBig {
                command,
                size,
                limit,
                largest,
            } => write!(
                f,
                "cannot start '{command}': its arguments and environment ({} KiB) do not \
                 fit the kernel's limit for exec ({} KiB); the largest is {largest}",
                size.div_ceil(1024),
                limit / 1024
            ),
            Error::NotFound { command } => {
                write!(f, "cannot run '{command}': command not found")
            }
            Error::NotExecutable { command, err } => {
                write!(f, "cannot execute '{command}': {err}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_as_phrases() {
        let err = io::Error::from_raw_os_error(libc::EISDIR);
        let e = Error::Read {
            path: "/etc/group",
            err,
        };
        assert_eq!(e.to_string(), "cannot read /etc/group: is a directory");
        assert_eq!(e.exit_code(), 125);
    }
}
