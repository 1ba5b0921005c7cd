//! Every signal 1..=64 sent to kai-init, as PID 1 (`unshare`) and not (subreaper): kai-init
//! survives each one it does not forward, the child receives each forwardable one exactly
//! as sent, and the exit status is the child's own. (Issue 8, item 1: `kill -34` used to
//! end kai-init and orphan the child, because libc's sigfillset leaves 32..=34 out of the
//! blocked set. Issue 17, item 15: the numbers the kernel also uses for faults, and PIPE,
//! sent with kill(2) used to end kai-init (not PID 1) or vanish (PID 1); they are messages
//! for the child like any other.)

use std::os::unix::process::ExitStatusExt;

use crate::util::{signal, start, Proc, Running};
use crate::{kai, pid1, T};

/// Signals kai-init forwards to the child: all of 1..=64 but KILL/STOP (cannot be caught),
/// CHLD (kai-init's own) and 32/33 (libc's).
fn forwardable() -> Vec<i32> {
    (1..=64)
        .filter(|s| !NOT_FORWARDED.contains(s))
        .filter(|s| ![libc::SIGKILL, libc::SIGSTOP].contains(s))
        .collect()
}

/// Read by kai-init and dropped: it must survive each.
const NOT_FORWARDED: [i32; 3] = [libc::SIGCHLD, 32, 33];

/// The numbers the kernel also raises for a fault (or a write on a broken pipe) in the
/// process itself; sent by another process with kill(2), each is forwarded like any other.
const FAULT_NUMBERED: [i32; 8] = [
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGABRT,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGSEGV,
    libc::SIGSYS,
    libc::SIGPIPE,
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
    assert_eq!(fwd.len(), 64 - 2 - NOT_FORWARDED.len());
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

/// Each fault-numbered signal (and PIPE) sent with kill(2), twice with a round trip in
/// between so the second is not merged into the first: the child gets each exactly twice,
/// kai-init survives all of them and the child's exit status is still its own.
fn fault_numbered_signals_are_forwarded(as_pid1: bool) {
    let mut handled = FAULT_NUMBERED.to_vec();
    handled.push(libc::SIGUSR1);
    let (mut r, kai_pid) = reporter(as_pid1, &handled, &[]);
    let kai = Proc::of(kai_pid).expect("kai-init runs");
    let mut usr1 = 0;
    for sig in FAULT_NUMBERED {
        for k in 1..=2 {
            assert!(signal(kai_pid, sig), "kill -{sig} kai-init");
            r.wait_stdout(&format!("got {sig} x{k}"), T);
            usr1 += 1;
            round_trip(&mut r, kai_pid, usr1);
            assert!(kai.alive(), "kai-init died of signal {sig}");
        }
    }
    assert!(signal(kai_pid, libc::SIGTERM));
    let status = r.wait_exit(T);
    // The reporter has no TERM handler: it dies of the forwarded TERM, 128 + 15.
    assert_eq!(status.code(), Some(143), "{status:?} {:#?}", r.stderr);
    for sig in FAULT_NUMBERED {
        let got = r
            .stdout
            .iter()
            .filter(|l| l.starts_with(&format!("got {sig} x")))
            .count();
        assert_eq!(
            got, 2,
            "signal {sig} delivered {got} times: {:#?}",
            r.stdout
        );
    }
}

#[test]
fn fault_numbered_signals_and_pipe_from_kill_reach_the_child_as_pid1() {
    fault_numbered_signals_are_forwarded(true);
}

#[test]
fn fault_numbered_signals_and_pipe_from_kill_reach_the_child_as_subreaper() {
    fault_numbered_signals_are_forwarded(false);
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
