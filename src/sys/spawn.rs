//! Starting the main child: posix_spawn when nothing has to happen between fork and
//! exec, else std's `Command` with a pre-exec step (never tokio's: tokio reaps its own
//! children and would race kai-init's `waitpid(-1)` reaper).

use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

pub use super::unsafe_ops::PreExec;
use crate::error::Error;

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
    if !spec.pre.take_terminal && spec.pre.dup_fd.is_none() {
        let (argv, envp) = c_strings(&spec).map_err(|err| exec_error(program, err))?;
        return super::unsafe_ops::posix_spawnp(&argv, envp.as_deref(), spec.pre.no_new_privs)
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
    super::unsafe_ops::install(&mut cmd, spec.pre);
    // std reports exec failures through a CLOEXEC pipe and reaps the failed child itself.
    let child = cmd.spawn().map_err(|err| exec_error(program, err))?;
    // Dropping `Child` neither waits nor kills: the reaper owns its exit status.
    Ok(child.id() as i32)
}

/// argv, and kai-init's environment with `spec.env` applied, as C strings; no environment
/// (pass kai-init's own through) when there is nothing to apply.
type CStrings = (Vec<CString>, Option<Vec<CString>>);
fn c_strings(spec: &Spec<'_>) -> io::Result<CStrings> {
    let c = |bytes: &[u8]| CString::new(bytes).map_err(io::Error::from);
    let argv = spec
        .argv
        .iter()
        .map(|a| c(a.as_bytes()))
        .collect::<io::Result<_>>()?;
    if spec.env.is_empty() {
        return Ok((argv, None));
    }
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| !spec.env.iter().any(|(key, _)| k == key))
        .collect();
    env.extend(
        spec.env
            .iter()
            .filter_map(|(k, v)| Some((OsString::from(k), v.clone()?))),
    );
    let envp = env
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
/// (variables set with `Some`, removed with `None`). Returns the pid; the supervisor's
/// reaper collects its status (see `state::Claims`).
pub fn spawn_probe(argv: &[String], env: &[(&str, Option<OsString>)]) -> io::Result<i32> {
    use std::process::Stdio;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in env {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    super::unsafe_ops::install(
        &mut cmd,
        PreExec {
            take_terminal: false,
            no_new_privs: false,
            dup_fd: None,
        },
    );
    Ok(cmd.spawn()?.id() as i32)
}
