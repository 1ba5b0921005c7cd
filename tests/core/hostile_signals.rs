//! Every signal 1..=64 sent to kai-init, as PID 1 (`unshare`) and not (subreaper): kai-init
//! survives each one it does not forward, the child receives each forwardable one exactly
//! as sent, and the exit status is the child's own. The synchronous signals behave as
//! `sys::signals` documents. (Issue 8, item 1: `kill -34` used to end kai-init and orphan
//! the child, because libc's sigfillset leaves 32..=34 out of the blocked set.)

use std::os::unix::process::ExitStatusExt;

use crate::util::{signal, start, Proc, Running};
use crate::{kai, pid1, T};

/// Signals kai-init forwards to the child: all of 1..=64 but KILL/STOP (cannot be caught),
/// PIPE (ignored by kai-init), CHLD (kai-init's own), 32/33 (libc's) and the synchronous ones.
fn forwardable() -> Vec<i32> {
    (1..=64)
        .filter(|s| !NOT_FORWARDED.contains(s) && !SYNCHRONOUS.contains(s))
        .filter(|s| ![libc::SIGKILL, libc::SIGSTOP].contains(s))
        .collect()
}

/// Read by kai-init and dropped: it must survive each.
const NOT_FORWARDED: [i32; 4] = [libc::SIGPIPE, libc::SIGCHLD, 32, 33];

const SYNCHRONOUS: [i32; 7] = [
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGABRT,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGSEGV,
    libc::SIGSYS,
];

/// A python3 child with a handler for each signal in argv[1]: it prints "got N xK" for the
/// K-th delivery of N, and exits 42 once every signal in argv[2] has arrived.
const REPORTER: &str = r#"
import os, select, signal, sys
handled = [int(s) for s in sys.argv[1].split(",")]
needed = set(int(s) for s in sys.argv[2].split(",") if s)
counts = {}
r, w = os.pipe()
os.set_blocking(w, False)
signal.set_wakeup_fd(w)
def on(n, frame):
    counts[n] = counts.get(n, 0) + 1
    print(f"got {n} x{counts[n]}", flush=True)
    if needed and needed <= set(counts):
        sys.exit(42)
for s in handled:
    signal.signal(s, on)
print("ready", flush=True)
while True:
    select.select([r], [], [])
    os.read(r, 4096)
"#;

fn csv(sigs: &[i32]) -> String {
    sigs.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Starts kai-init (as PID 1 or not) over the reporter; returns it and kai-init's pid.
fn reporter(as_pid1: bool, handled: &[i32], needed: &[i32]) -> (Running, i32) {
    let (handled, needed) = (csv(handled), csv(needed));
    let args = [
        "--stop-timeout",
        "300s",
        "--",
        crate::util::python3(),
        "-c",
        REPORTER,
        &handled,
        &needed,
    ];
    let mut r = start(if as_pid1 { pid1(&args) } else { kai(&args) });
    r.wait_stdout("ready", T);
    let kai_pid = if as_pid1 { r.pid1(T) } else { r.pid() };
    (r, kai_pid)
}

/// Proves kai-init still runs and has handled everything sent before: one more USR1 must
/// come through (the K-th one).
fn round_trip(r: &mut Running, kai_pid: i32, k: usize) {
    assert!(signal(kai_pid, libc::SIGUSR1), "kai-init is gone");
    r.wait_stdout(&format!("got {} x{k}", libc::SIGUSR1), T);
}

fn every_signal(as_pid1: bool) {
    let fwd = forwardable();
    assert_eq!(fwd.len(), 64 - 2 - NOT_FORWARDED.len() - SYNCHRONOUS.len());
    let (mut r, kai_pid) = reporter(as_pid1, &fwd, &fwd);
    let kai = Proc::of(kai_pid).expect("kai-init runs");
    // First the ones kai-init keeps: it survives each and the child (which would die of
    // 32/33 at their default action) hears nothing.
    for (k, sig) in NOT_FORWARDED.iter().enumerate() {
        assert!(signal(kai_pid, *sig), "kill -{sig} kai-init");
        round_trip(&mut r, kai_pid, k + 1);
        assert!(kai.alive(), "kai-init died of signal {sig}");
    }
    // Then every forwardable one, each waited for at the child before the next; the last
    // one makes the child exit 42.
    let usr1_before = NOT_FORWARDED.len();
    for sig in &fwd {
        assert!(signal(kai_pid, *sig), "kill -{sig} kai-init");
        let k = if *sig == libc::SIGUSR1 {
            usr1_before + 1
        } else {
            1
        };
        r.wait_stdout(&format!("got {sig} x{k}"), T);
    }
    let status = r.wait_exit(T);
    assert_eq!(status.code(), Some(42), "{status:?} {:#?}", r.stderr);
    // Only a stop signal starts the stop (INT, the first sent), and only TERM after it
    // counts as a repeat; every other signal is just forwarded.
    let lines = |needle: &str| r.stderr.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(lines("stopping child signal=SIGINT"), 1, "{:#?}", r.stderr);
    assert_eq!(lines("stopping child"), 1, "{:#?}", r.stderr);
    assert_eq!(lines("stop signal repeated"), 1, "{:#?}", r.stderr);
    for sig in &fwd {
        let lines = r
            .stdout
            .iter()
            .filter(|l| l.starts_with(&format!("got {sig} x")))
            .count();
        let want = if *sig == libc::SIGUSR1 {
            usr1_before + 1
        } else {
            1
        };
        assert_eq!(
            lines, want,
            "signal {sig} delivered {lines} times: {:#?}",
            r.stdout
        );
    }
}

#[test]
fn every_signal_1_to_64_as_pid1() {
    every_signal(true);
}

#[test]
fn every_signal_1_to_64_as_subreaper() {
    every_signal(false);
}

/// The case of the issue, not PID 1: 32..=34 are the signals libc's sigfillset leaves
/// out (glibc 32 and 33, musl 32 to 34), so they used to stay unblocked at their default
/// action and `kill -32` (or -34 on musl) ended kai-init, orphaning the child. Now 32 and
/// 33 are dropped, and 34 (glibc's SIGRTMIN) reaches a child with SIG_DFL, which dies of
/// it: kai-init reports it as 162 from its own exit, not killed by the signal itself.
#[test]
fn kill_32_33_34_leave_kai_init_standing_and_34_reaches_the_child() {
    let mut r = start(kai(&["--", "sh", "-c", "echo ready; exec sleep 300"]));
    r.wait_stdout("ready", T);
    let kai = Proc::of(r.pid()).expect("kai-init");
    let child = Proc::of(crate::util::children(r.pid())[0]).expect("child");
    for sig in [32, 33] {
        assert!(signal(r.pid(), sig));
    }
    // kai-init reads its signalfd in order: once the child dies of 34, 32 and 33 have been
    // read too.
    assert!(signal(r.pid(), 34));
    let status = r.wait_exit(T);
    assert_eq!(
        status.signal(),
        None,
        "kai-init itself was killed: {status:?}"
    );
    assert_eq!(status.code(), Some(128 + 34), "{:#?}", r.stderr);
    assert!(
        !child.exists() && !kai.exists(),
        "the child was left behind"
    );
}

/// As PID 1 the kernel drops a synchronous signal sent with kill(2) (init has no handler
/// for it; Rust's SEGV/BUS handler treats one that is not a fault as harmless): kai-init
/// survives each, twice, and never forwards one.
#[test]
fn synchronous_signals_are_dropped_as_pid1() {
    let fwd = forwardable();
    let mut handled = fwd.clone();
    handled.extend(SYNCHRONOUS);
    let (mut r, kai_pid) = reporter(true, &handled, &[]);
    let kai = Proc::of(kai_pid).expect("kai-init runs");
    for (k, sig) in SYNCHRONOUS.iter().enumerate() {
        assert!(signal(kai_pid, *sig));
        assert!(signal(kai_pid, *sig));
        round_trip(&mut r, kai_pid, k + 1);
        assert!(kai.alive(), "kai-init died of signal {sig}");
    }
    assert!(signal(kai_pid, libc::SIGTERM));
    r.wait_stdout(&format!("got {} x1", libc::SIGTERM), T);
    for sig in SYNCHRONOUS {
        assert!(
            !r.stdout
                .iter()
                .any(|l| l.starts_with(&format!("got {sig} x"))),
            "signal {sig} was forwarded: {:#?}",
            r.stdout
        );
    }
}

/// Not PID 1, a synchronous signal sent with kill(2) keeps its default action, as for any
/// program (tini included): kai-init ends with it. SEGV and BUS first reach Rust's
/// stack-overflow handler, which finds no fault, restores the default and returns, so it
/// takes a second one.
#[test]
fn synchronous_signals_keep_their_default_action_as_subreaper() {
    for sig in SYNCHRONOUS {
        let (mut r, kai_pid) = reporter(false, &[libc::SIGUSR1], &[]);
        // kai-init dies here and its child lives on, reparented away from the tree the
        // guard would clean up: this test ends it itself.
        let child = crate::util::child_of(kai_pid)
            .and_then(Proc::of)
            .expect("the reporter runs");
        let rust_handles = sig == libc::SIGSEGV || sig == libc::SIGBUS;
        if rust_handles {
            assert!(signal(kai_pid, sig));
            round_trip(&mut r, kai_pid, 1);
        }
        assert!(signal(kai_pid, sig));
        let status = r.wait_exit(T);
        if child.exists() {
            signal(child.pid, libc::SIGKILL);
        }
        assert_eq!(status.signal(), Some(sig), "signal {sig}: {status:?}");
    }
}

/// kai-init's own signal state once the child runs: 32..=34 blocked (so they reach the
/// signalfd) and ignored (so a moment unblocked cannot be fatal). musl's posix_spawn
/// restores the parent's mask without its reserved signals; kai-init blocks them again.
#[test]
fn kai_init_keeps_32_to_34_blocked_and_ignored_after_spawning() {
    for as_pid1 in [false, true] {
        let args = ["--", "sh", "-c", "echo ready; exec sleep 300"];
        let mut r = start(if as_pid1 { pid1(&args) } else { kai(&args) });
        r.wait_stdout("ready", T);
        let kai_pid = if as_pid1 { r.pid1(T) } else { r.pid() };
        let reserved = 0b111u64 << 31;
        for key in ["SigBlk", "SigIgn"] {
            let value = crate::util::status_line(kai_pid, key).expect(key);
            let bits = u64::from_str_radix(&value, 16).expect("hex");
            assert_eq!(
                bits & reserved,
                reserved,
                "{key}: {value} (pid 1: {as_pid1})"
            );
        }
    }
}
