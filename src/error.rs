//! kai-init's own failures, each with the exit code it documents.
//!
//! Messages are lower-case, name the cause, and do not repeat their source: `main`
//! prints one line, `kai-init: <message>`.

use std::{fmt, io};

use crate::user::{UserError, UserSpec};

#[derive(Debug)]
pub enum Error {
    /// `--user` names nobody in /etc/passwd or /etc/group (125).
    User(UserError),
    /// A system call needed before the child could start failed (125).
    Setup { about: &'static str, err: io::Error },
    /// setgroups/setgid/setuid refused (125).
    Privileges {
        spec: UserSpec,
        err: nix::errno::Errno,
    },
    /// A health listener could not be bound (125).
    Bind { addr: String, err: io::Error },
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
            Error::User(_)
            | Error::Setup { .. }
            | Error::Privileges { .. }
            | Error::Bind { .. } => 125,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::User(e) => write!(f, "cannot switch user: {e}"),
            Error::Setup { about, err } => write!(f, "cannot {about}: {err}"),
            Error::Privileges { spec, err } => {
                write!(f, "cannot switch to user '{spec}': {}", err.desc())
            }
            Error::Bind { addr, err } => write!(f, "cannot listen on {addr}: {err}"),
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
