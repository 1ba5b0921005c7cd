//! Exit status under a real PID 1: the child's code passes through unchanged, exec
//! failures are 126 (cannot execute) and 127 (not found), --success-code remaps.

use crate::util::{run, start, TempDir};
use crate::{assert_one_line, non_executable_script, pid1, T};

#[test]
fn child_exit_codes_pass_through_as_pid1() {
    // All at once: each is its own namespace, and together they take one start-up's time.
    let codes = [0, 1, 2, 42, 126, 127, 255];
    let mut runs: Vec<_> = codes
        .iter()
        .map(|c| {
            let script = format!("exit {c}");
            (*c, start(pid1(&["--", "sh", "-c", &script])))
        })
        .collect();
    for (code, r) in &mut runs {
        let status = r.wait_exit(T);
        assert_eq!(
            status.code(),
            Some(*code),
            "exit {code}; stderr: {:#?}",
            r.stderr
        );
        assert!(
            r.stdout.is_empty(),
            "nothing of kai-init on stdout: {:#?}",
            r.stdout
        );
    }
}

#[test]
fn non_executable_file_is_126_as_pid1() {
    let dir = TempDir::new("noexec");
    let path = non_executable_script(&dir, "script.sh");
    let (status, stdout, stderr) = run(pid1(&["--", &path]), T);
    assert_eq!(status.code(), Some(126), "{stderr}");
    assert!(!stdout.contains("should-not-run"));
    // The kernel's reason, as it gave it: a file is never said to be a directory.
    assert_one_line(&stderr, &[&path, "cannot execute", "Permission denied"]);
    assert!(!stderr.contains("directory"), "{stderr}");
}

#[test]
fn directory_is_126_as_pid1() {
    let dir = TempDir::new("dir-cmd");
    let path = dir.path().to_string_lossy().into_owned();
    let (status, _, stderr) = run(pid1(&["--", &path]), T);
    assert_eq!(status.code(), Some(126), "{stderr}");
    assert_one_line(&stderr, &[&path, "directory"]);
}

#[test]
fn command_not_found_is_127_as_pid1() {
    for missing in [
        "kai-init-test-no-such-command",
        "/nonexistent/kai-init-test/cmd",
    ] {
        let (status, _, stderr) = run(pid1(&["--", missing]), T);
        assert_eq!(status.code(), Some(127), "{missing}: {stderr}");
        assert_one_line(&stderr, &[missing, "not found"]);
    }
}

#[test]
fn success_code_reports_143_as_zero() {
    // An exit code of 143 and a death by SIGTERM (128+15) both become 0; others stay.
    let (status, _, stderr) = run(
        pid1(&["--success-code", "143", "--", "sh", "-c", "exit 143"]),
        T,
    );
    assert_eq!(status.code(), Some(0), "{stderr}");
    let (status, _, stderr) = run(
        pid1(&["--success-code", "143", "--", "sh", "-c", "exit 1"]),
        T,
    );
    assert_eq!(status.code(), Some(1), "{stderr}");

    let mut r = start(pid1(&[
        "--success-code",
        "143",
        "--",
        "sh",
        "-c",
        "echo ready; exec sleep 300",
    ]));
    r.wait_stdout("ready", T);
    crate::util::signal(r.pid1(T), 15);
    assert_eq!(r.wait_exit(T).code(), Some(0), "{:#?}", r.stderr);
}

#[test]
fn success_code_from_environment_is_a_list() {
    let mut cmd = pid1(&["--", "sh", "-c", "exit 3"]);
    cmd.env("KAI_INIT_SUCCESS_CODE", "143,3");
    let (status, _, stderr) = run(cmd, T);
    assert_eq!(status.code(), Some(0), "{stderr}");
}

/// `--notify fd:N` must not disturb how a failed exec is reported, whatever N: it used to
/// be dup2'ed between fork and exec onto whatever descriptor std had picked for its
/// exec-error pipe (fd:11 gave "started child" and exit 1 instead of 127). And the child
/// gets the descriptor: a pipe at N that it can write its readiness line on.
#[test]
fn notify_fd_keeps_126_and_127_exact_for_every_n() {
    let dir = TempDir::new("notify-fd");
    let noexec = non_executable_script(&dir, "noexec.sh");
    // The child finds a pipe (kai-init's read end) at N and can write its line on it.
    let writer = "import os, stat, sys; n = int(sys.argv[1]); \
                  assert stat.S_ISFIFO(os.fstat(n).st_mode); \
                  os.write(n, b'\\n'); print('wrote', flush=True)";
    let ns: Vec<i32> = (3..=20).chain([64, 100, 255, 1000]).collect();
    for n in ns {
        let fd = format!("fd:{n}");
        let n_arg = n.to_string();
        let cases: [(&[&str], i32); 3] = [
            (&["/nonexistent/kai-init-test"], 127),
            (&[noexec.as_str()], 126),
            (&[crate::util::python3(), "-c", writer, &n_arg], 0),
        ];
        for (argv, want) in cases {
            let mut args = vec!["--log-level", "debug", "--notify", &fd, "--"];
            args.extend(argv);
            let (status, stdout, stderr) = run(crate::kai(&args), T);
            assert_eq!(
                status.code(),
                Some(want),
                "--notify {fd} {argv:?}: {stderr}"
            );
            if want == 0 {
                assert_eq!(stdout, "wrote", "{stderr}");
            } else {
                assert!(!stderr.contains("started child"), "{fd}: {stderr}");
            }
        }
    }
}

/// Python: installs a seccomp filter that makes prctl(PR_SET_NO_NEW_PRIVS) fail with
/// EPERM (root may install one without no_new_privs), then execs argv[1:].
const DENY_NO_NEW_PRIVS: &str = r#"
import ctypes, os, platform, sys
class Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Insn))]
nr_prctl = {"x86_64": 157, "aarch64": 167}[platform.machine()]
LD, JEQ, RET = 0x20, 0x15, 0x06   # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K
insns = (Insn * 6)(
    Insn(LD, 0, 0, 0),             # seccomp_data.nr
    Insn(JEQ, 0, 3, nr_prctl),
    Insn(LD, 0, 0, 16),            # args[0], low word
    Insn(JEQ, 0, 1, 38),           # PR_SET_NO_NEW_PRIVS
    Insn(RET, 0, 0, 0x00050000 | 1),  # SECCOMP_RET_ERRNO | EPERM
    Insn(RET, 0, 0, 0x7fff0000),   # SECCOMP_RET_ALLOW
)
prog = Prog(6, insns)
libc = ctypes.CDLL(None, use_errno=True)
# prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)
if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:
    raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")
os.execv(sys.argv[1], sys.argv[1:])
"#;

/// `--no-new-privs` is a security setting: if it cannot be put in force, kai-init refuses
/// to start the child (125, one line), instead of warning and running it without.
#[test]
fn no_new_privs_that_cannot_be_set_is_125() {
    let bin = crate::util::bin().to_string_lossy().into_owned();
    let mut cmd = std::process::Command::new(crate::util::python3());
    cmd.args([
        "-c",
        DENY_NO_NEW_PRIVS,
        &bin,
        "--no-new-privs",
        "--",
        "sh",
        "-c",
        "echo ran",
    ]);
    let (status, stdout, stderr) = run(crate::hermetic(cmd), T);
    assert_eq!(status.code(), Some(125), "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "the child must not run: {stdout}");
    assert_one_line(&stderr, &["no_new_privs"]);
    // The same launcher without the flag runs the child: the filter alone is harmless.
    let mut cmd = std::process::Command::new(crate::util::python3());
    cmd.args(["-c", DENY_NO_NEW_PRIVS, &bin, "--", "sh", "-c", "echo ran"]);
    let (status, stdout, stderr) = run(crate::hermetic(cmd), T);
    assert_eq!(
        (status.code(), stdout.as_str()),
        (Some(0), "ran"),
        "{stderr}"
    );
}
