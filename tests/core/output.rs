//! Output integrity: the child's stdout is the very pipe kai-init was given (inherited,
//! not relayed), so every line arrives, in order, unbuffered, and nothing of kai-init's
//! own is mixed into it. (Every test that waits for a `ready` line while the child keeps
//! running also shows that output is not held back until exit.)

use crate::util::{run, start};
use crate::{kai, pid1, T};

fn assert_numbered(stdout: &str, n: usize) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), n, "all {n} lines arrive");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(
            *line,
            (i + 1).to_string(),
            "line {} out of order or foreign",
            i + 1
        );
    }
}

#[test]
fn ten_thousand_lines_in_order_as_pid1() {
    // Debug logging makes kai-init as chatty as it gets: none of it may reach stdout.
    let (status, stdout, stderr) = run(
        pid1(&["--log-level", "debug", "--", "seq", "1", "10000"]),
        T,
    );
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_numbered(&stdout, 10_000);
    assert!(
        stderr.lines().all(|l| l.starts_with("kai-init")),
        "{stderr}"
    );
}

/// The main child starts a writer through an intermediate that exits at once, so the
/// writer is orphaned; it waits until kai-init, the subreaper, has adopted it, writes
/// 10,000 lines, then says who adopted it. The main child waits for it (a pipe only the
/// writer holds open) before exiting.
const ORPHAN_WRITER: &str = r#"
import os, subprocess, sys
r, w = os.pipe()
middle = os.fork()
if middle == 0:
    if os.fork() == 0:
        os.close(r)
        while os.getppid() == middle:
            os.sched_yield()
        subprocess.run(["seq", "1", "10000"], check=True)
        print("adopted by", os.getppid(), flush=True)
        os._exit(0)
    os._exit(0)
os.close(w)
os.waitpid(middle, 0)
os.read(r, 1)
"#;

/// As subreaper, the lines come from an orphan kai-init adopted (not the host's init):
/// all 10,000 arrive in order on the pipe kai-init was given, with nothing of kai-init's
/// own, and kai-init waits for the main child, which waits for the writer.
#[test]
fn ten_thousand_lines_in_order_as_subreaper() {
    let mut r = start(kai(&[
        "--log-level",
        "debug",
        "--",
        crate::util::python3(),
        "-c",
        ORPHAN_WRITER,
    ]));
    let kai_pid = r.pid();
    let status = r.wait_exit(T);
    assert_eq!(status.code(), Some(0), "{:#?}", r.stderr);
    let (last, lines) = r.stdout.split_last().expect("output");
    assert_eq!(
        last,
        &format!("adopted by {kai_pid}"),
        "the writer's parent"
    );
    assert_numbered(&lines.join("\n"), 10_000);
    assert!(
        r.stderr.iter().all(|l| l.starts_with("kai-init")),
        "{:#?}",
        r.stderr
    );
}

#[test]
fn json_logs_stay_on_stderr() {
    let (status, stdout, stderr) = run(
        pid1(&[
            "--log-format",
            "json",
            "--log-level",
            "debug",
            "--",
            "seq",
            "1",
            "10000",
        ]),
        T,
    );
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_numbered(&stdout, 10_000);
    for line in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.is_object(), "{line}");
    }
}

#[test]
fn child_inherits_kai_inits_own_stdio() {
    // The child's fds 1 and 2 are the very pipes kai-init holds: no relay, no buffer.
    let mut r = start(pid1(&[
        "--",
        "sh",
        "-c",
        "readlink /proc/self/fd/1 /proc/self/fd/2; echo ready; exec sleep 300",
    ]));
    r.wait_stdout("ready", T);
    let kai_pid = r.pid1(T);
    let own = |fd: i32| {
        std::fs::read_link(format!("/proc/{kai_pid}/fd/{fd}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(
        r.stdout[..2],
        [own(1), own(2)],
        "child's fd 1 and 2 vs kai-init's"
    );
    assert!(own(1).starts_with("pipe:"), "{}", own(1));
    crate::util::signal(kai_pid, libc::SIGTERM);
    assert_eq!(r.wait_exit(T).code(), Some(143));
}

#[test]
fn stdout_and_stderr_of_the_child_stay_apart() {
    let script = "for i in $(seq 1 2000); do echo out$i; echo err$i >&2; done";
    let (status, stdout, stderr) = run(pid1(&["--", "sh", "-c", script]), T);
    assert_eq!(status.code(), Some(0));
    let out: Vec<&str> = stdout.lines().collect();
    assert_eq!(out.len(), 2000);
    assert!(out
        .iter()
        .enumerate()
        .all(|(i, l)| *l == format!("out{}", i + 1)));
    let err: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("kai-init"))
        .collect();
    assert_eq!(err.len(), 2000);
    assert!(err
        .iter()
        .enumerate()
        .all(|(i, l)| *l == format!("err{}", i + 1)));
}
