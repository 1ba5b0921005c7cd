//! Issue 17, item 16: kai-init must not pin the caller's working directory (`/proc/1/cwd`
//! on the volume the container started in, as dumb-init's own test checks), yet the
//! child, `exec:` probes and relative `file:` probes still work in that directory,
//! reached by its path.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::util::{self, wait_until};
use crate::{hermetic, hermetic_pid1, kai, socket_name, wait_status, At, T};

/// The child prints its own directory, then waits (from inside the namespace, through
/// /proc) until PID 1 has left its directory for `/`.
const CHILD: &str = r#"pwd -P; echo started; until [ "$(readlink /proc/1/cwd)" = / ]; do sleep 0.01; done; echo "pid 1 is in /"; exec sleep 300"#;

fn cwd_of(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

/// kai-init started in `dir` with `probe` (and a pre step), as PID 1 or not; waits until
/// /readyz passes (the probe worked from `dir`) and checks where the pre step, the child
/// and kai-init are.
fn run_in(dir: &util::TempDir, probe: &str, as_pid1: bool, with_pre: bool) {
    let real = std::fs::canonicalize(dir.path()).unwrap();
    let at = At::Unix(socket_name("workdir"));
    let (flag, probe) = (at.flag(), format!("--probe={probe}"));
    // A pre step says where it ran, relative to its own directory. (Without one, COMMAND
    // starts before the event loop exists: the other path to the same spawn.)
    let pre = "--pre=sh -c 'pwd -P > pre-ran-in'";
    let mut args = vec![flag.as_str(), &probe];
    if with_pre {
        args.push(pre);
    }
    args.extend(["--probe-interval=100ms", "--", "sh", "-c", CHILD]);
    let mut cmd = if as_pid1 {
        hermetic_pid1(&args)
    } else {
        kai(&args)
    };
    cmd.current_dir(dir.path());
    let mut r = util::start(cmd);
    r.wait_stdout("started", T);
    assert_eq!(
        r.stdout[0],
        real.to_string_lossy(),
        "the child starts in the caller's directory"
    );
    let kai_pid = if as_pid1 { r.pid1(T) } else { r.pid() };
    wait_until("kai-init to leave the caller's directory", T, || {
        cwd_of(kai_pid).as_deref() == Some(Path::new("/"))
    });
    if as_pid1 {
        r.wait_stdout("pid 1 is in /", T);
    }
    wait_status(&at, "/readyz", 200, T);
    assert_eq!(cwd_of(kai_pid).as_deref(), Some(Path::new("/")));
    if with_pre {
        let pre_ran_in = std::fs::read_to_string(dir.join("pre-ran-in")).unwrap();
        assert_eq!(pre_ran_in.trim_end(), real.to_string_lossy(), "pre step");
    }
}

/// An `exec:` probe named by a relative path runs in the caller's directory (it writes
/// where it ran), from a kai-init that has left it.
fn exec_probe_case(as_pid1: bool) {
    let dir = util::TempDir::new("workdir-exec");
    let script = dir.join("probe.sh");
    // The probe repeats every 100 ms: it writes beside the file and renames, so a read
    // never sees one truncated by the next run.
    let out = dir.file("ran-in");
    std::fs::write(
        &script,
        format!("#!/bin/sh\npwd -P > {out}.$$ && mv {out}.$$ {out}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    run_in(&dir, "exec:./probe.sh", as_pid1, true);
    let ran_in = std::fs::read_to_string(dir.join("ran-in")).unwrap();
    let real = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(ran_in.trim_end(), real.to_string_lossy());
}

#[test]
fn kai_init_leaves_the_callers_directory_and_exec_probes_run_in_it_as_pid1() {
    exec_probe_case(true);
}

#[test]
fn kai_init_leaves_the_callers_directory_and_exec_probes_run_in_it_as_subreaper() {
    exec_probe_case(false);
}

/// A `file:` probe with a relative path still finds its file in the caller's directory.
#[test]
fn a_relative_file_probe_is_found_in_the_callers_directory() {
    let dir = util::TempDir::new("workdir-file");
    std::fs::write(dir.join("ready-flag"), "").unwrap();
    run_in(&dir, "file:ready-flag", true, false);
}

/// A directory the dropped user cannot search (`WORKDIR /root` with `--user nobody`) could
/// not be reached again by its path: kai-init stays in it, as before, and its `exec:`
/// probes still start (a spawn that changed into it would fail with EACCES).
#[test]
fn kai_init_stays_where_the_dropped_user_could_not_come_back() {
    let dir = util::TempDir::new("workdir-private");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let at = At::Unix(socket_name("workdir-private"));
    let flag = at.flag();
    let args = [
        flag.as_str(),
        "--user=nobody",
        "--probe=exec:/bin/true",
        "--probe-interval=100ms",
        "--",
        "sleep",
        "300",
    ];
    let mut cmd = kai(&args);
    cmd.current_dir(dir.path());
    let r = util::start(cmd);
    wait_status(&at, "/readyz", 200, T);
    let real = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(cwd_of(r.pid()), Some(real));
}

/// The caller's directory covered since by a bind mount of another directory of the same
/// filesystem (same device, another inode): its path now names that other directory, so
/// kai-init stays, and its `exec:` probe runs in the covered directory it inherited, never
/// in the one on top. (Comparing the device alone, or the inode alone, would have left.)
#[test]
fn kai_init_stays_in_a_directory_its_path_no_longer_names() {
    let dir = util::TempDir::new("workdir-covered");
    let (under, over) = (dir.join("under"), dir.join("over"));
    std::fs::create_dir(&under).unwrap();
    std::fs::create_dir(&over).unwrap();
    let at = At::Unix(socket_name("workdir-covered"));
    let flag = at.flag();
    let kai_args = [
        flag.as_str(),
        "--probe=exec:sh -c 'touch probe-ran'",
        "--probe-interval=100ms",
        "--",
        "sleep",
        "300",
    ];
    // unshare execs the shell, which execs kai-init: one pid throughout.
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"cd "$1" && mount --bind "$2" "$1" && shift 2 && exec "$@""#)
        .args([Path::new("sh"), &under, &over, &util::bin()])
        .args(kai_args);
    let r = util::start(hermetic(cmd));
    wait_status(&at, "/readyz", 200, T);
    let kai_pid = r.pid();
    let here = PathBuf::from(format!("/proc/{kai_pid}/cwd"));
    assert!(
        here.join("probe-ran").exists(),
        "the probe ran in the covered directory kai-init stayed in"
    );
    assert!(
        !over.join("probe-ran").exists(),
        "the probe never ran in the directory on top"
    );
    assert_ne!(cwd_of(kai_pid).as_deref(), Some(Path::new("/")));
}
