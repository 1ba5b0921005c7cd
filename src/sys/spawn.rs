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
    // Built for every spawn, the terminal's too (std builds its own there): the size
    // check needs them, and a NUL byte is refused here as it would be there.
    let (argv, envp) = c_strings(spec.argv, &spec.env).map_err(|err| exec_error(program, err))?;
    // Counted before the spawn only when kai-init changes the environment (secrets, the
    // user's HOME, the notify socket): its own environment, with fewer arguments than its
    // own, passed kai-init's own exec.
    if envp.is_some() {
        let (size, limit) = (exec_size(&argv, envp.as_deref()), exec_limit());
        if size.total > limit {
            return Err(too_big(program, size, limit));
        }
    }
    // E2BIG from exec itself (the estimate leaves out the program's path as exec found it,
    // which the kernel counts too; an --expand-env argument that grew): the same answer.
    let spawn_error = |err: io::Error| match err.raw_os_error() {
        Some(libc::E2BIG) => too_big(program, exec_size(&argv, envp.as_deref()), exec_limit()),
        _ => exec_error(program, err),
    };
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
        let actions: Vec<FileAction> = dup_fd
            .map(|(from, to)| FileAction::Dup2 { from, to })
            .into_iter()
            .collect();
        return posix_spawnp(&argv, envp.as_deref(), &actions).map_err(spawn_error);
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
        TerminalSpawnError::Spawn(err) => spawn_error(err),
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

/// What exec copies onto the new program's stack, as the kernel counts it (fs/exec.c): each
/// string with its NUL and a pointer to it. `largest` says which string is the largest,
/// by name or position, never by value.
#[derive(Debug, PartialEq)]
struct ExecSize {
    total: usize,
    largest: String,
}

fn exec_size(argv: &[CString], envp: Option<&[CString]>) -> ExecSize {
    let own: Vec<CString>;
    let envp = match envp {
        Some(envp) => envp,
        None => {
            // kai-init's own environment passes through: count that.
            own = std::env::vars_os()
                .filter_map(|(k, v)| CString::new([k.as_bytes(), b"=", v.as_bytes()].concat()).ok())
                .collect();
            &own
        }
    };
    let cost = |s: &CString| s.as_bytes_with_nul().len() + std::mem::size_of::<usize>();
    let total = argv.iter().chain(envp).map(cost).sum();
    // The first of equals: max_by_key keeps the last, so search backwards.
    let arg = argv
        .iter()
        .enumerate()
        .rev()
        .max_by_key(|(_, a)| a.as_bytes().len());
    let var = envp.iter().rev().max_by_key(|v| v.as_bytes().len());
    let largest = match (arg, var) {
        (Some((i, a)), Some(v)) if a.as_bytes().len() > v.as_bytes().len() => {
            format!("argument {i}")
        }
        (_, Some(v)) => {
            let name = v
                .as_bytes()
                .split(|b| *b == b'=')
                .next()
                .unwrap_or_default();
            format!("variable {}", crate::util::text::Shown(name))
        }
        (Some((i, _)), None) => format!("argument {i}"),
        (None, None) => "nothing".into(),
    };
    ExecSize { total, largest }
}

/// Linux's limit on argv and the environment together (execve(2), "Limits on size of
/// arguments and environment"; fs/exec.c since 4.13): a quarter of the stack's soft limit,
/// at most three quarters of the kernel's 8 MiB default stack (6 MiB), at least 128 KiB.
/// The child inherits kai-init's limit, so this is the one its exec meets.
fn exec_limit() -> usize {
    use nix::sys::resource::{getrlimit, Resource};
    const MIB: u64 = 1024 * 1024;
    let stack = getrlimit(Resource::RLIMIT_STACK).map_or(8 * MIB, |(soft, _)| soft);
    (stack / 4).clamp(128 * 1024, 6 * MIB) as usize
}

fn too_big(program: &OsString, size: ExecSize, limit: usize) -> Error {
    Error::TooBig {
        command: program.to_string_lossy().into_owned(),
        size: size.total,
        limit,
        largest: size.largest,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn c(list: &[&str]) -> Vec<CString> {
        list.iter().map(|s| CString::new(*s).unwrap()).collect()
    }

    #[test]
    fn exec_size_counts_strings_nuls_and_pointers_and_names_the_largest() {
        let p = std::mem::size_of::<usize>();
        let argv = c(&["sh", "-c", "true"]);
        let envp = c(&["A=1", "BIG=12345678", "PATH=/bin"]);
        let size = exec_size(&argv, Some(&envp));
        assert_eq!(size.total, (3 + 3 + 5) + (4 + 13 + 10) + 6 * p);
        assert_eq!(size.largest, "variable BIG");
        // An argument larger than every variable (a secret expanded into it, say) is
        // named by position only.
        let argv = c(&["sh", "-c", "a very long script, longer than any variable"]);
        assert_eq!(exec_size(&argv, Some(&envp)).largest, "argument 2");
    }

    /// An argument exactly as long as the largest variable: the variable is named, as
    /// when it is the longer (a name says more than a position).
    #[test]
    fn a_tie_between_an_argument_and_a_variable_names_the_variable() {
        let argv = c(&["sh", "123456"]);
        let envp = c(&["A=1", "BIG=56"]);
        assert_eq!(exec_size(&argv, Some(&envp)).largest, "variable BIG");
    }

    /// Variables of 100 kB each (under the 128 KiB limit for one) and one more that
    /// brings the estimate for `/bin/sh -c 'exit 0'` to `limit - gap` exactly.
    fn filled_to(limit: usize, gap: usize) -> Vec<(&'static str, Option<OsString>)> {
        let argv = [OsString::from("/bin/sh"), "-c".into(), "exit 0".into()];
        let per_var = 100_000;
        let mut env: Vec<(&'static str, Option<OsString>)> = Vec::new();
        let size = |env: &[(&str, Option<OsString>)]| {
            let (a, e) = c_strings(&argv, env).unwrap();
            exec_size(&a, e.as_deref()).total
        };
        // 60 bytes to spare past the gap, so that KAI_LAST's own name and pointer fit.
        while size(&env) + per_var + gap + 60 < limit {
            let name: &'static str = Box::leak(format!("KAI_T{:02}", env.len()).into_boxed_str());
            env.push((name, Some("v".repeat(per_var).into())));
        }
        env.push(("KAI_LAST", Some(OsString::new())));
        let rest = limit - gap - size(&env);
        env.pop();
        env.push(("KAI_LAST", Some("w".repeat(rest).into())));
        assert_eq!(size(&env), limit - gap);
        env
    }

    /// The other side of the limit: an estimate 64 bytes under it, room for the program's
    /// path the kernel adds, really runs. With the test below, this holds `exec_limit`
    /// to the kernel's own limit from both sides.
    #[test]
    fn an_environment_just_under_the_limit_runs() {
        use nix::sys::wait::{waitpid, WaitStatus};
        let argv = [OsString::from("/bin/sh"), "-c".into(), "exit 0".into()];
        let spec = Spec {
            argv: &argv,
            env: filled_to(exec_limit(), 64),
            pre: PreExec {
                take_terminal: false,
                dup_fd: None,
            },
        };
        let pid = spawn(spec).expect("spawned");
        let pid = nix::unistd::Pid::from_raw(pid);
        assert_eq!(waitpid(pid, None), Ok(WaitStatus::Exited(pid, 0)));
    }

    /// Under the estimate's limit, over the kernel's once it adds the program's path: the
    /// E2BIG from exec itself is the same 125 naming the largest variable, not 126.
    #[test]
    fn e2big_from_exec_is_too_big_not_command_s_fault() {
        let argv = [OsString::from("/bin/sh"), "-c".into(), "exit 0".into()];
        // 4 bytes under the limit: "/bin/sh" and its NUL (8 bytes) are over it.
        let spec = Spec {
            argv: &argv,
            env: filled_to(exec_limit(), 4),
            pre: PreExec {
                take_terminal: false,
                dup_fd: None,
            },
        };
        match spawn(spec) {
            Err(e @ Error::TooBig { .. }) => {
                assert_eq!(e.exit_code(), 125);
                assert!(
                    e.to_string().contains("the largest is variable KAI_T00"),
                    "{e}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_exec_limit_is_within_the_kernels_bounds() {
        let limit = exec_limit();
        assert!((128 * 1024..=6 * 1024 * 1024).contains(&limit), "{limit}");
    }
}
