//! Starting the main child and `exec:` probes: posix_spawn with file actions whenever
//! possible (safe with threads, and exec errors stay exact), std's `Command` with a
//! pre-exec step only to hand the terminal over (never tokio's: tokio reaps its own
//! children and would race kai-init's `waitpid(-1)` reaper).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use super::unsafe_ops::{
    dup_cloexec, posix_spawnp, spawn_taking_terminal, FileAction, TerminalSpawnError,
};
use crate::util::error::Error;

/// What the child gets besides argv and environment.
#[derive(Debug, Clone, Copy)]
pub struct PreExec {
    /// Make the child's (new) process group the terminal's foreground group.
    pub take_terminal: bool,
    /// Duplicate this descriptor onto the given number (s6-style readiness fd).
    pub dup_fd: Option<(RawFd, RawFd)>,
}

/// What to start and how.
pub struct Spec<'a> {
    pub argv: &'a [OsString],
    /// Variables to set (`Some`) or remove (`None`) on top of kai-init's environment.
    pub env: Vec<(&'static str, Option<OsString>)>,
    pub pre: PreExec,
}

/// Starts the child in a process group of its own and returns its pid (also its group id).
pub fn spawn(spec: Spec<'_>) -> Result<i32, Error> {
    let program = &spec.argv[0];
    // A descriptor dup2'ed onto its own number keeps FD_CLOEXEC with some libcs: give the
    // child a copy from another number instead (closed here once the spawn is done).
    let moved = match spec.pre.dup_fd {
        Some((from, to)) if from == to => {
            Some(dup_cloexec(from).map_err(Error::setup("prepare the notify descriptor"))?)
        }
        _ => None,
    };
    let dup_fd = spec
        .pre
        .dup_fd
        .map(|(from, to)| (moved.as_ref().map_or(from, AsRawFd::as_raw_fd), to));
    if !spec.pre.take_terminal {
        let (argv, envp) =
            c_strings(spec.argv, &spec.env).map_err(|err| exec_error(program, err))?;
        let actions: Vec<FileAction> = dup_fd
            .map(|(from, to)| FileAction::Dup2 { from, to })
            .into_iter()
            .collect();
        return posix_spawnp(&argv, envp.as_deref(), &actions)
            .map_err(|err| exec_error(program, err));
    }
    let mut cmd = Command::new(program);
    cmd.args(&spec.argv[1..]).process_group(0);
    for (key, value) in &spec.env {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    // std reports exec failures through a CLOEXEC pipe and reaps the failed child itself.
    let child = spawn_taking_terminal(cmd, dup_fd).map_err(|err| match err {
        TerminalSpawnError::NotSingleThreaded(n) => {
            let why = match n {
                Some(n) => format!("{n} threads are running"),
                None => "/proc/self/task cannot be read".into(),
            };
            Error::setup("hand the terminal to the child safely")(io::Error::other(why))
        }
        TerminalSpawnError::Setup(err) => Error::setup("prepare the notify descriptor")(err),
        TerminalSpawnError::Spawn(err) => exec_error(program, err),
    })?;
    // Dropping `Child` neither waits nor kills: the reaper owns its exit status.
    Ok(child.id() as i32)
}

/// argv, and kai-init's environment with `env` applied, as C strings; no environment
/// (pass kai-init's own through) when there is nothing to apply.
type CStrings = (Vec<CString>, Option<Vec<CString>>);
fn c_strings<A: AsRef<OsStr>>(
    argv: &[A],
    env: &[(&str, Option<OsString>)],
) -> io::Result<CStrings> {
    let c = |bytes: &[u8]| CString::new(bytes).map_err(io::Error::from);
    let argv = argv
        .iter()
        .map(|a| c(a.as_ref().as_bytes()))
        .collect::<io::Result<_>>()?;
    if env.is_empty() {
        return Ok((argv, None));
    }
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| !env.iter().any(|(key, _)| k == key))
        .collect();
    vars.extend(
        env.iter()
            .filter_map(|(k, v)| Some((OsString::from(k), v.clone()?))),
    );
    let envp = vars
        .iter()
        .map(|(k, v)| c(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect::<io::Result<_>>()?;
    Ok((argv, Some(envp)))
}

fn exec_error(program: &OsString, err: io::Error) -> Error {
    let command = program.to_string_lossy().into_owned();
    match err.kind() {
        io::ErrorKind::NotFound => Error::NotFound { command },
        _ if std::path::Path::new(program).is_dir() => Error::NotExecutable {
            command,
            err: io::Error::new(err.kind(), "is a directory"),
        },
        _ => Error::NotExecutable { command, err },
    }
}

/// Starts an `exec:` probe command: its own process group (so a timeout can kill
/// everything it started), stdio on /dev/null (probe output must not mix into the
/// application's logs), the same clean signal mask as the main child, and `env` applied
/// (variables set with `Some`, removed with `None`: the user's HOME, USER and LOGNAME, and
/// no NOTIFY_SOCKET or watchdog of kai-init's own supervisor). Returns the pid; the
/// supervisor's reaper collects its status (see `supervise::claims`).
pub fn spawn_probe(argv: &[String], env: &[(&str, Option<OsString>)]) -> io::Result<i32> {
    let (argv, envp) = c_strings(argv, env)?;
    let stdio = [
        FileAction::DevNull {
            fd: 0,
            write: false,
        },
        FileAction::DevNull { fd: 1, write: true },
        FileAction::DevNull { fd: 2, write: true },
    ];
    // In the caller's directory, which kai-init itself has left (see `workdir`).
    let chdir = super::workdir::left().map(FileAction::Chdir);
    let actions: Vec<FileAction> = stdio.into_iter().chain(chdir).collect();
    posix_spawnp(&argv, envp.as_deref(), &actions)
}
