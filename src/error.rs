//! kai-init's own failures, each with the exit code it documents, and how text that
//! kai-init did not write (names, values, file contents) is shown in a message.
//!
//! Messages are lower-case, name the cause, and do not repeat their source: `main`
//! prints one line, `kai-init: <message>`.
//!
//! Exit codes, all of kai-init's own (the child's code passes through otherwise, 128+N
//! when it died of signal N, see `exit`):
//! - 2: usage error of `kai-init` (unknown flag, missing value, no COMMAND);
//! - 125: kai-init could not start: a setting that does not parse or cannot be read
//!   (a flag's value, a `KAI_INIT_*` variable, /etc/passwd, /etc/group), an unknown user
//!   or group, a privilege step or a system call that failed, a listener it cannot bind;
//! - 124: a `--wait-for` target was not up within `--wait-timeout` (COMMAND never ran);
//! - 126: COMMAND exists but cannot be executed; 127: COMMAND not found;
//! - `kai-init check`: 0 healthy, 1 unhealthy or unreachable, 64 usage or invalid value.

use std::{fmt, io};

use crate::user::{UserError, UserSpec};

#[derive(Debug)]
pub enum Error {
    /// `--user` names nobody in /etc/passwd or /etc/group (125).
    User(UserError),
    /// A file kai-init needs exists but cannot be read (125): fail closed, never "empty".
    Read { path: &'static str, err: io::Error },
    /// A system call needed before the child could start failed (125).
    Setup { about: &'static str, err: io::Error },
    /// setgroups/setgid/setuid refused (125).
    Privileges {
        spec: UserSpec,
        err: nix::errno::Errno,
    },
    /// A health listener could not be bound (125).
    Bind { addr: String, err: io::Error },
    /// `--file-env` could not turn a `NAME_FILE` into `NAME` (125).
    FileEnv(crate::file_env::FileEnvError),
    /// `--expand-env` met an unset `${NAME}` or a malformed `${...}` (125).
    Expand(crate::expand::ExpandError),
    /// A `--wait-for` target was still down at `--wait-timeout` (124).
    WaitTimeout {
        target: String,
        error: String,
        after: std::time::Duration,
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

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::NotFound { .. } => 127,
            Error::NotExecutable { .. } => 126,
            Error::WaitTimeout { .. } => 124,
            Error::User(_)
            | Error::Read { .. }
            | Error::Setup { .. }
            | Error::Privileges { .. }
            | Error::Bind { .. }
            | Error::FileEnv(_)
            | Error::Expand(_) => 125,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::User(e) => write!(f, "cannot switch user: {e}"),
            Error::Read { path, err } => write!(f, "cannot read {path}: {}", Io(err)),
            Error::Setup { about, err } => write!(f, "cannot {about}: {err}"),
            Error::Privileges { spec, err } => {
                write!(f, "cannot switch to user '{spec}': {}", err.desc())
            }
            Error::Bind { addr, err } => write!(f, "cannot listen on {addr}: {err}"),
            Error::FileEnv(e) => write!(f, "--file-env: {e}"),
            Error::Expand(e) => write!(f, "--expand-env: {e}"),
            Error::WaitTimeout {
                target,
                error,
                after,
            } => write!(
                f,
                "{target} not up after {}: {error}",
                crate::duration::format(*after)
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

impl From<UserError> for Error {
    fn from(e: UserError) -> Self {
        Error::User(e)
    }
}

/// An I/O error as a short lower-case phrase: "is a directory", not "Is a directory (os
/// error 21)".
struct Io<'a>(&'a io::Error);

impl fmt::Display for Io<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        let text = text.split(" (os error").next().unwrap_or_default();
        let mut chars = text.chars();
        if let Some(first) = chars.next() {
            write!(f, "{}{}", first.to_lowercase(), chars.as_str())?;
        }
        Ok(())
    }
}

/// Bytes from outside shown in a one-line message: UTF-8 as it is, control characters
/// escaped (`\n`, `\u{1b}`: a name must not move the cursor or forge a log line), and
/// bytes that are not UTF-8 as `\xNN`.
pub struct Shown<'a>(pub &'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c.is_control() {
                    true => write!(f, "{}", c.escape_default())?,
                    false => write!(f, "{c}")?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shows_bytes_on_one_line() {
        assert_eq!(Shown(b"caf\xe9").to_string(), r"caf\xe9");
        assert_eq!(Shown("ü ✓".as_bytes()).to_string(), "ü ✓");
        assert_eq!(Shown(b"a\nb\x1b[31m\r").to_string(), r"a\nb\u{1b}[31m\r");
    }

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

    proptest! {
        #[test]
        fn shown_bytes_have_no_control_characters(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let shown = Shown(&bytes).to_string();
            prop_assert!(!shown.chars().any(char::is_control), "{:?}", shown);
        }
    }
}
