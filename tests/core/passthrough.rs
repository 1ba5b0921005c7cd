//! What the child inherits untouched: its arguments verbatim (flags after COMMAND are the
//! child's, not kai-init's), the environment, the working directory, and no file
//! descriptor of kai-init's own (signalfd, event loop, health sockets).

use crate::util::{run, TempDir};
use crate::{kai, pid1, T};

#[test]
fn arguments_after_the_command_belong_to_the_child() {
    let args = [
        "a b",
        "",
        "ü ✓",
        "--user",
        "root",
        "--stop-timeout",
        "--",
        "-V",
        "--help",
    ];
    let mut argv = vec!["printf", "[%s]"];
    argv.extend(args);
    let (status, stdout, stderr) = run(pid1(&argv), T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    let want: String = args.iter().map(|a| format!("[{a}]")).collect();
    assert_eq!(stdout, want);
}

#[test]
fn run_subcommand_is_the_same() {
    let (status, stdout, stderr) = run(
        kai(&[
            "run",
            "--stop-timeout",
            "1s",
            "--",
            "sh",
            "-c",
            "echo $0 $1; exit 9",
            "x",
            "--version",
        ]),
        T,
    );
    assert_eq!(status.code(), Some(9), "{stderr}");
    assert_eq!(stdout, "x --version");
}

/// Words that are not UTF-8 reach the child byte for byte, whether they look like
/// options or not, with and without `--` (kai-init parses only what precedes COMMAND).
#[test]
fn arguments_that_are_not_utf8_reach_the_child_verbatim() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    let bytes = |b: &[u8]| OsString::from_vec(b.to_vec());
    let show = "import os, sys; print([os.fsencode(a) for a in sys.argv[1:]])";
    for dashes in [false, true] {
        let mut cmd = kai(if dashes { &["--"] } else { &[] });
        cmd.args([crate::util::python3(), "-c", show]).args([
            bytes(b"-\xff"),
            bytes(b"--user=caf\xe9"),
            bytes(b"\xe9"),
            "--".into(),
        ]);
        let (status, stdout, stderr) = run(cmd, T);
        assert_eq!(status.code(), Some(0), "{stderr}");
        assert_eq!(stdout, r"[b'-\xff', b'--user=caf\xe9', b'\xe9', b'--']");
    }
}

#[test]
fn environment_and_working_directory_pass_through() {
    let dir = TempDir::new("cwd");
    let mut cmd = pid1(&["--", "sh", "-c", "pwd; echo \"$KAI_TEST_VALUE\""]);
    cmd.current_dir(dir.path())
        .env("KAI_TEST_VALUE", "x=1 y='2' ü");
    let (status, stdout, stderr) = run(cmd, T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    let want = format!("{}\nx=1 y='2' ü", dir.path().display());
    assert_eq!(stdout, want);
}

/// The descriptors `ls /proc/self/fd` sees, as printed.
fn fds(stdout: &str) -> Vec<u32> {
    let mut fds: Vec<u32> = stdout
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    fds.sort_unstable();
    fds
}

/// The descriptors a process started by this test gets without kai-init in between (0-2
/// plus whatever the test's own environment passes down, plus the one ls opens): the child
/// under kai-init must see exactly the same numbers.
fn baseline() -> Vec<u32> {
    let mut ls = std::process::Command::new("ls");
    ls.arg("/proc/self/fd");
    let (status, stdout, _) = run(ls, T);
    assert!(status.success());
    fds(&stdout)
}

#[test]
fn child_gets_no_descriptor_of_kai_init_as_pid1() {
    let (status, stdout, stderr) = run(pid1(&["--", "ls", "/proc/self/fd"]), T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        fds(&stdout),
        baseline(),
        "kai-init leaked descriptors: {stdout}"
    );
}

#[test]
fn child_gets_no_descriptor_of_kai_init_with_the_health_endpoint_on() {
    // A unique abstract name: the endpoint is on, and parallel tests cannot collide.
    let name = format!("@kai-init-core-test-{}-fds", std::process::id());
    let (status, stdout, stderr) = run(
        kai(&[
            "--health-socket",
            &name,
            "--health-listen",
            "127.0.0.1:0",
            "--",
            "ls",
            "/proc/self/fd",
        ]),
        T,
    );
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        fds(&stdout),
        baseline(),
        "kai-init leaked descriptors: {stdout}"
    );
}
