//! Integration tests of the core supervisor (issue 2), run against the real kai-init binary:
//! as PID 1 of a real PID namespace (`unshare --pid --fork --mount-proc`) and as a plain
//! subreaper, with real sh, node and python3 children, a real pseudo-terminal and, for the
//! privilege matrix, its own /etc/passwd and /etc/group bind-mounted in a private mount
//! namespace (the machine's files are never touched).
//!
//! Rules every test here keeps: wait for facts (a line, a file, a /proc state), never for
//! time; every wait has a deadline; every process a test starts is killed and reaped when
//! its guard drops; temp dirs are unique, so the tests run in parallel with each other and
//! with tests/health.rs.

mod util;

#[path = "core/bad_input.rs"]
mod bad_input;
#[path = "core/entry.rs"]
mod entry;
#[path = "core/exit_codes.rs"]
mod exit_codes;
#[path = "core/file_env.rs"]
mod file_env;
#[path = "core/file_env_size.rs"]
mod file_env_size;
#[path = "core/hostile_signals.rs"]
mod hostile_signals;
#[path = "core/lifecycle.rs"]
mod lifecycle;
#[path = "core/output.rs"]
mod output;
#[path = "core/passthrough.rs"]
mod passthrough;
#[path = "core/privileges.rs"]
mod privileges;
#[path = "core/real_children.rs"]
mod real_children;
#[path = "core/reaping.rs"]
mod reaping;
#[path = "core/seams.rs"]
mod seams;
#[path = "core/secrets.rs"]
mod secrets;
#[path = "core/servers.rs"]
mod servers;
#[path = "core/signals.rs"]
mod signals;
#[path = "core/terminal.rs"]
mod terminal;
#[path = "core/wait_errors.rs"]
mod wait_errors;

use std::process::Command;
use std::time::Duration;

/// The deadline for any single wait. Generous: a loaded 2-core CI machine may be slow, and
/// a passing test never waits this long (it waits for a fact).
pub const T: Duration = Duration::from_secs(30);

/// Makes a command hermetic: no KAI_INIT_* variable from the caller's environment leaks in,
/// and the health endpoint's default abstract socket (`@kai-init`, one per network
/// namespace) is off, so that parallel tests cannot collide on it. The health side has its
/// own tests; these are about the core.
pub fn hermetic(mut cmd: Command) -> Command {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KAI_INIT_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("KAI_INIT_HEALTH_SOCKET", "off");
    cmd
}

/// `kai-init ARGS`, not PID 1 (kai-init registers as subreaper).
pub fn kai(args: &[&str]) -> Command {
    hermetic(util::kai(args))
}

/// `kai-init ARGS` as PID 1 of a new PID namespace.
pub fn pid1(args: &[&str]) -> Command {
    hermetic(util::kai_pid1(args))
}

/// Python prelude for children that wait for signals. A wake-up fd ends the `select` in
/// `wait_forever`, so a handler runs promptly however close to the `ready` line its signal
/// arrives (a plain sleep or pause could miss a signal that lands just before it).
pub const PY_WAIT: &str = r#"
import os, select, signal, sys, time
_r, _w = os.pipe()
os.set_blocking(_w, False)
signal.set_wakeup_fd(_w)
def wait_forever():
    while True:
        select.select([_r], [], [])
        os.read(_r, 512)
"#;

/// A python3 program: [`PY_WAIT`] followed by `body`.
pub fn py(body: &str) -> String {
    format!("{PY_WAIT}\n{body}")
}

/// Python: `reset_signals(ignored)` sets every signal's disposition to default (or to
/// ignored, for the numbers in `ignored`) and empties the mask, as a container runtime
/// starts PID 1. It uses the raw rt_sigaction system call (x86_64 numbering) because
/// glibc refuses to touch its internal signals 32 and 33, which glibc's posix_spawn (and
/// so std's `Command`) leaves ignored in every process it starts.
pub const PY_RESET_SIGNALS: &str = r#"
import ctypes, os, signal

class _KernelSigaction(ctypes.Structure):
    _fields_ = [("handler", ctypes.c_ulong), ("flags", ctypes.c_ulong),
                ("restorer", ctypes.c_ulong), ("mask", ctypes.c_ulong)]

def reset_signals(ignored=()):
    libc = ctypes.CDLL(None, use_errno=True)
    for sig in range(1, 65):
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        act = _KernelSigaction(1 if sig in ignored else 0, 0, 0, 0)  # SIG_IGN / SIG_DFL
        if libc.syscall(13, sig, ctypes.byref(act), None, 8) != 0:  # SYS_rt_sigaction
            raise OSError(ctypes.get_errno(), f"rt_sigaction({sig})")
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
"#;

/// `argv` started the way a container runtime starts PID 1: every signal at its default
/// disposition except `ignored`, nothing blocked.
pub fn launched(ignored: &[i32], argv: &[&str]) -> Command {
    let ignored: Vec<String> = ignored.iter().map(i32::to_string).collect();
    let program = format!(
        "{PY_RESET_SIGNALS}\nimport sys\nreset_signals({{int(s) for s in sys.argv[1].split(',') if s}})\nos.execvp(sys.argv[2], sys.argv[2:])\n"
    );
    let mut cmd = Command::new(util::python3());
    cmd.args(["-c", &program, &ignored.join(",")]).args(argv);
    hermetic(cmd)
}

/// Asserts kai-init's stderr is exactly one line, that it contains every needle, and that
/// nothing panicked.
pub fn assert_one_line(stderr: &str, needles: &[&str]) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one line on stderr, got {lines:#?}"
    );
    assert!(!stderr.contains("panicked"), "kai-init panicked: {stderr}");
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "stderr line {:?} does not name {needle:?}",
            lines[0]
        );
    }
}

/// Asserts that nothing was SIGKILLed: no line of kai-init's stderr mentions SIGKILL.
pub fn assert_no_sigkill(stderr: &[String]) {
    assert!(
        !stderr.iter().any(|l| l.contains("SIGKILL")),
        "nothing may need a SIGKILL: {stderr:#?}"
    );
}

/// A `#!/bin/sh` script `name` in `dir` (it would print "should-not-run") without the
/// execute bit (mode 0644): exec'ing it fails with EACCES, 126.
pub fn non_executable_script(dir: &util::TempDir, name: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.file(name);
    std::fs::write(&path, "#!/bin/sh\necho should-not-run\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}
