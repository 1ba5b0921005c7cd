//! Reaping and leftovers: orphans are reaped (as PID 1 and as subreaper), and whatever the
//! main child leaves behind is stopped before kai-init exits.
//!
//! As PID 1, "gone after kai-init exits" proves nothing by itself: the kernel kills a
//! whole PID namespace when its init exits. So the PID 1 tests check that kai-init itself
//! stopped the leftovers: a leftover with a TERM handler records that it got TERM, and a
//! leftover that ignores TERM costs kai-init --stop-timeout before SIGKILL. As subreaper
//! there is no namespace to clean up, so there "gone" is the real check.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::util::{self, ppid, python3, start, wait_until, Proc, TempDir};
use crate::{assert_no_sigkill, kai, pid1, T};

/// The main child double-forks 2,000 orphans (they exit at once, reparented to PID 1),
/// then, still running, waits until every orphan pid has left /proc and counts the
/// zombies left in the namespace.
const ORPHANS: &str = r#"
import os, sys, time
N = 2000
r, w = os.pipe()
for _ in range(N):
    mid = os.fork()
    if mid == 0:
        gc = os.fork()
        if gc == 0:
            os._exit(0)
        os.write(w, gc.to_bytes(4, "little"))
        os._exit(0)
    os.waitpid(mid, 0)
os.close(w)
data = b""
while len(data) < 4 * N:
    chunk = os.read(r, 65536)
    if not chunk:
        break
    data += chunk
orphans = [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]
print(f"forked {len(orphans)} orphans", flush=True)

def zombies():
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = open(f"/proc/{name}/stat").read()
            except OSError:
                continue
            if stat[stat.rindex(")") + 2] == "Z":
                found.append(int(name))
    return found

deadline = time.monotonic() + 20
while True:
    left = [p for p in orphans if os.path.exists(f"/proc/{p}")]
    z = zombies()
    if (not left and not z) or time.monotonic() > deadline:
        break
    time.sleep(0.01)
print(f"orphans left={len(left)} zombies={len(z)}", flush=True)
"#;

#[test]
fn pid1_reaps_2000_orphans_while_the_child_runs() {
    let mut r = start(pid1(&["--", python3(), "-c", ORPHANS]));
    r.wait_stdout("forked 2000 orphans", T);
    let verdict = r.wait_stdout("orphans left=", T);
    assert_eq!(
        verdict, "orphans left=0 zombies=0",
        "stderr: {:#?}",
        r.stderr
    );
    assert_eq!(r.wait_exit(T).code(), Some(0), "{:#?}", r.stderr);
}

#[test]
fn subreaper_registers_and_reaps_orphans() {
    let dir = TempDir::new("subreaper");
    let (gate, done) = (dir.file("orphan-may-exit"), dir.file("main-may-exit"));
    let program = r#"
import os, sys, time
gate, done = sys.argv[1], sys.argv[2]
mid = os.fork()
if mid == 0:
    gc = os.fork()
    if gc == 0:
        while not os.path.exists(gate):
            time.sleep(0.01)
        os._exit(0)
    print(f"orphan={gc}", flush=True)
    os._exit(0)
os.waitpid(mid, 0)
print("ready", flush=True)
while not os.path.exists(done):
    time.sleep(0.01)
"#;
    let mut r = start(kai(&[
        "--log-level",
        "debug",
        "--",
        python3(),
        "-c",
        program,
        &gate,
        &done,
    ]));
    r.wait_line("registered as child subreaper", T);
    let line = r.wait_stdout("orphan=", T);
    let orphan: i32 = line["orphan=".len()..].parse().unwrap();
    r.wait_stdout("ready", T);
    let proc_ = Proc::of(orphan).expect("the orphan runs");
    // Its parent died: the orphan now belongs to kai-init, not to the machine's init.
    wait_until("the orphan to be reparented to kai-init", T, || {
        ppid(orphan) == Some(r.pid())
    });
    std::fs::write(&gate, "").unwrap();
    // Reaped (a zombie would still be in /proc) while the main child still runs.
    wait_until("kai-init to reap the orphan", T, || !proc_.exists());
    assert!(r.child.try_wait().unwrap().is_none(), "kai-init still runs");
    std::fs::write(&done, "").unwrap();
    assert_eq!(r.wait_exit(T).code(), Some(0), "{:#?}", r.stderr);
}

/// A leftover that reports SIGTERM in a file, then exits.
const POLITE_LEFTOVER: &str = r#"
import os, signal, sys, time
d = sys.argv[1]
def on_term(n, frame):
    open(os.path.join(d, "leftover-got-term"), "w").write("TERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
open(os.path.join(d, "leftover-ready"), "w").close()
while True:
    time.sleep(0.05)
"#;

#[test]
fn pid1_terms_a_leftover_before_exiting() {
    leftover_gets_term("", pid1);
}

/// PID 1 of a namespace whose /proc is not its own (unshare without --mount-proc: the
/// host's /proc shows other pids) cannot tell its tree from anything else, so it reaches
/// its leftovers with kill(-1), which cannot leave the namespace. They still get TERM.
#[test]
fn pid1_without_its_own_proc_terms_a_leftover_with_kill_minus_one() {
    leftover_gets_term("", |args| {
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(["--pid", "--fork", "--kill-child"])
            .arg(util::bin())
            .args(args);
        crate::hermetic(cmd)
    });
}

/// A process name is whatever bytes a program sets (prctl PR_SET_NAME): /proc shows them
/// raw, and a leftover named so must be found and told like any other (it was skipped
/// when /proc/PID/stat was read as UTF-8).
#[test]
fn pid1_terms_a_leftover_whose_name_is_not_utf8() {
    leftover_gets_term(
        "import ctypes; ctypes.CDLL(None).prctl(15, ctypes.c_char_p(b'\\xff\\xfe-left'), 0, 0, 0)\n",
        pid1,
    );
}

fn leftover_gets_term(prelude: &str, pid1: fn(&[&str]) -> std::process::Command) {
    let program = format!("{prelude}{POLITE_LEFTOVER}");
    let dir = TempDir::new("leftover");
    let d = dir.path().to_string_lossy().into_owned();
    // The main child starts the leftover in the background, waits until it runs, exits.
    let script = format!(
        "{py} -c \"$1\" {d} >/dev/null & \
         while [ ! -e {d}/leftover-ready ]; do sleep 0.01; done; echo ready; exit 5",
        py = python3()
    );
    // A long --stop-timeout: if kai-init did not TERM the leftover, the test fails (no
    // file) rather than pass on the namespace's own SIGKILL.
    let mut r = start(pid1(&[
        "--stop-timeout",
        "60s",
        "--",
        "sh",
        "-c",
        &script,
        "sh",
        &program,
    ]));
    r.wait_stdout("ready", T);
    let status = r.wait_exit(T);
    assert_eq!(
        status.code(),
        Some(5),
        "the main child's code: {:#?}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("leftover-got-term"))
            .ok()
            .as_deref(),
        Some("TERM"),
        "kai-init sent TERM to the leftover before exiting; stderr: {:#?}",
        r.stderr
    );
    assert!(
        r.stderr
            .iter()
            .any(|l| l.contains("stopping the processes it left behind")),
        "{:#?}",
        r.stderr
    );
}

#[test]
fn pid1_kills_a_leftover_that_ignores_term_after_stop_timeout() {
    let dir = TempDir::new("stubborn");
    let d = dir.path().to_string_lossy().into_owned();
    let script = format!(
        "sh -c \"trap '' TERM; touch {d}/leftover-ready; exec sleep 300\" >/dev/null & \
         while [ ! -e {d}/leftover-ready ]; do sleep 0.01; done; echo exiting at $(date +%s%N); exit 0"
    );
    let mut r = start(pid1(&["--stop-timeout", "1s", "--", "sh", "-c", &script]));
    // The main child's last act is to print the time: kai-init's timer starts after it,
    // and the test sees the exit after it happened, so `took` can only overestimate (the
    // test's own view of `ready` may lag on a loaded machine; this clock does not).
    let line = r.wait_stdout("exiting at ", T);
    let exiting_at: u128 = line["exiting at ".len()..].parse().unwrap();
    let status = r.wait_exit(T);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let took = Duration::from_nanos((now - exiting_at) as u64);
    assert_eq!(status.code(), Some(0), "{:#?}", r.stderr);
    assert!(
        took.as_millis() >= 1000,
        "kai-init waited --stop-timeout 1s, not {took:?}"
    );
    assert!(
        r.stderr.iter().any(|l| l.contains("did not stop in time")),
        "{:#?}",
        r.stderr
    );
}

#[test]
fn subreaper_stops_leftovers_in_and_out_of_the_childs_group() {
    let dir = TempDir::new("sub-leftovers");
    let gate = dir.file("main-may-exit");
    // One leftover in the child's process group, one in a session of its own (only the
    // subreaper's list of inherited children finds that one).
    let script = format!(
        "sleep 301 >/dev/null & echo same-group=$!; \
         setsid sleep 302 >/dev/null & echo own-session=$!; \
         echo ready; while [ ! -e {gate} ]; do sleep 0.01; done; exit 7"
    );
    let mut r = start(kai(&["--stop-timeout", "60s", "--", "sh", "-c", &script]));
    let mut leftovers = Vec::new();
    for tag in ["same-group=", "own-session="] {
        let line = r.wait_stdout(tag, T);
        let pid: i32 = line[tag.len()..].parse().unwrap();
        wait_until("the leftover to exec sleep", T, || {
            util::cmdline(pid).is_some_and(|c| c.starts_with("sleep 30"))
        });
        leftovers.push(Proc::of(pid).expect("leftover runs"));
    }
    r.wait_stdout("ready", T);
    let since = Instant::now();
    std::fs::write(&gate, "").unwrap();
    let status = r.wait_exit(T);
    assert_eq!(status.code(), Some(7), "{:#?}", r.stderr);
    for p in &leftovers {
        assert!(
            !p.exists(),
            "leftover {} is gone after kai-init exits",
            p.pid
        );
    }
    // Both died of TERM: no wait for the 60 s --stop-timeout.
    assert!(since.elapsed() < T, "took {:?}", since.elapsed());
    assert_no_sigkill(&r.stderr);
}

#[test]
fn subreaper_kills_a_leftover_that_ignores_term() {
    let dir = TempDir::new("sub-stubborn");
    let gate = dir.file("main-may-exit");
    let script = format!(
        "setsid sh -c \"trap '' TERM; exec sleep 303\" >/dev/null & echo leftover=$!; \
         echo ready; while [ ! -e {gate} ]; do sleep 0.01; done; exit 0"
    );
    let mut r = start(kai(&["--stop-timeout", "500ms", "--", "sh", "-c", &script]));
    let line = r.wait_stdout("leftover=", T);
    let pid: i32 = line["leftover=".len()..].parse().unwrap();
    wait_until("the leftover to exec sleep", T, || {
        util::cmdline(pid).is_some_and(|c| c == "sleep 303")
    });
    let leftover = Proc::of(pid).unwrap();
    r.wait_stdout("ready", T);
    std::fs::write(&gate, "").unwrap();
    let status = r.wait_exit(T);
    assert_eq!(status.code(), Some(0), "{:#?}", r.stderr);
    assert!(!leftover.exists(), "the TERM-ignoring leftover was killed");
    assert!(
        r.stderr.iter().any(|l| l.contains("did not stop in time")),
        "{:#?}",
        r.stderr
    );
}

/// A leftover in the child's process group with a graceful TERM handler that takes a
/// second to finish: it writes how many TERMs it got by then. Many servers and worker
/// pools take a second TERM as "give up the graceful shutdown, quit now", so kai-init
/// must send each process one TERM, not one per code path (the subreaper code promises
/// this in a comment: "so that a graceful handler is not interrupted by repeats").
const GRACEFUL_WORKER: &str = r#"
import os, select, signal, sys, time
d = sys.argv[1]
# Count deliveries, not handler runs: the C-level handler writes one byte per delivered
# signal to the wake-up fd, where Python would run its handler once for several.
r, w = os.pipe()
os.set_blocking(w, False)
signal.set_wakeup_fd(w)
signal.signal(signal.SIGTERM, lambda n, frame: None)
open(os.path.join(d, "worker-ready"), "w").close()
got = b""
select.select([r], [], [])
end = time.monotonic() + 1.0
while True:
    left = end - time.monotonic()
    if left <= 0:
        break
    if select.select([r], [], [], left)[0]:
        got += os.read(r, 512)
got += os.read(r, 512) if select.select([r], [], [], 0)[0] else b""
open(os.path.join(d, "worker-terms"), "w").write(str(got.count(bytes([signal.SIGTERM]))))
"#;

fn worker_terms(dir: &TempDir) -> String {
    std::fs::read_to_string(dir.join("worker-terms")).unwrap_or_else(|_| "no report".into())
}

/// `docker stop`: TERM to kai-init goes to the main child, which dies of it; the worker
/// (same group) gets its one TERM from the cleanup and is still shutting down gracefully.
fn stop_with_graceful_worker(as_pid1: bool) {
    let dir = TempDir::new("graceful");
    let d = dir.path().to_string_lossy().into_owned();
    let script = format!(
        "{py} -c \"$1\" {d} & \
         while [ ! -e {d}/worker-ready ]; do sleep 0.01; done; echo ready; exec sleep 300",
        py = python3()
    );
    let args = [
        "--stop-timeout",
        "20s",
        "--",
        "sh",
        "-c",
        &script,
        "sh",
        GRACEFUL_WORKER,
    ];
    let mut r = start(if as_pid1 { pid1(&args) } else { kai(&args) });
    r.wait_stdout("ready", T);
    let kai_pid = if as_pid1 { r.pid1(T) } else { r.pid() };
    util::signal(kai_pid, libc::SIGTERM);
    assert_eq!(r.wait_exit(T).code(), Some(143), "{:#?}", r.stderr);
    assert_eq!(
        worker_terms(&dir),
        "1",
        "TERMs the graceful worker got; {:#?}",
        r.stderr
    );
}

#[test]
fn pid1_sends_a_group_member_one_term_on_stop() {
    stop_with_graceful_worker(true);
}

#[test]
fn subreaper_sends_a_group_member_one_term_on_stop() {
    stop_with_graceful_worker(false);
}

/// The main child ends on its own, leaving the graceful worker and a plain `sleep` in its
/// group: the sleep's death during the cleanup must not earn the worker another TERM.
#[test]
fn subreaper_cleanup_terms_each_leftover_once() {
    let dir = TempDir::new("graceful-cleanup");
    let d = dir.path().to_string_lossy().into_owned();
    let gate = dir.file("main-may-exit");
    let script = format!(
        "{py} -c \"$1\" {d} & sleep 304 >/dev/null & \
         while [ ! -e {d}/worker-ready ]; do sleep 0.01; done; echo ready; \
         while [ ! -e {gate} ]; do sleep 0.01; done; exit 0",
        py = python3()
    );
    let mut r = start(kai(&[
        "--stop-timeout",
        "20s",
        "--",
        "sh",
        "-c",
        &script,
        "sh",
        GRACEFUL_WORKER,
    ]));
    r.wait_stdout("ready", T);
    std::fs::write(&gate, "").unwrap();
    assert_eq!(r.wait_exit(T).code(), Some(0), "{:#?}", r.stderr);
    assert_eq!(
        worker_terms(&dir),
        "1",
        "TERMs the graceful worker got; {:#?}",
        r.stderr
    );
}

#[test]
fn pid1_cleanup_terms_each_leftover_once() {
    let dir = TempDir::new("graceful-cleanup1");
    let d = dir.path().to_string_lossy().into_owned();
    let script = format!(
        "{py} -c \"$1\" {d} & sleep 304 >/dev/null & \
         while [ ! -e {d}/worker-ready ]; do sleep 0.01; done; echo ready; exit 0",
        py = python3()
    );
    let mut r = start(pid1(&[
        "--stop-timeout",
        "20s",
        "--",
        "sh",
        "-c",
        &script,
        "sh",
        GRACEFUL_WORKER,
    ]));
    r.wait_stdout("ready", T);
    assert_eq!(r.wait_exit(T).code(), Some(0), "{:#?}", r.stderr);
    assert_eq!(
        worker_terms(&dir),
        "1",
        "TERMs the graceful worker got; {:#?}",
        r.stderr
    );
}

/// Issue 11's wrapper that does not exec: `bash -c "app; echo after"`. TERM goes to bash
/// only (the default); bash dies of it, and the leftover app gets TERM exactly once from
/// the cleanup and stops gracefully within --stop-timeout; "after" never runs.
fn shell_wrapper_case(as_pid1: bool) {
    let dir = TempDir::new("wrapper");
    let d = dir.path().to_string_lossy().into_owned();
    let script = format!("{py} -c \"$1\" {d}; echo after", py = python3());
    let args = [
        "--stop-timeout",
        "20s",
        "--",
        "bash",
        "-c",
        &script,
        "bash",
        GRACEFUL_WORKER,
    ];
    let mut r = start(if as_pid1 { pid1(&args) } else { kai(&args) });
    wait_until("the app to be ready", T, || {
        dir.join("worker-ready").exists()
    });
    let kai_pid = if as_pid1 { r.pid1(T) } else { r.pid() };
    let sent = Instant::now();
    util::signal(kai_pid, libc::SIGTERM);
    assert_eq!(r.wait_exit(T).code(), Some(143), "{:#?}", r.stderr);
    let took = sent.elapsed();
    assert_eq!(
        worker_terms(&dir),
        "1",
        "TERMs the app got; {:#?}",
        r.stderr
    );
    assert!(!r.stdout.iter().any(|l| l == "after"), "{:#?}", r.stdout);
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_no_sigkill(&r.stderr);
}

#[test]
fn pid1_shell_wrapper_app_gets_one_term_and_stops_gracefully() {
    shell_wrapper_case(true);
}

#[test]
fn subreaper_shell_wrapper_app_gets_one_term_and_stops_gracefully() {
    shell_wrapper_case(false);
}

/// Issue 8, item 3: as a subreaper, once the main child is reaped its process group's
/// number is free for reuse, and kill(-group) could hit a stranger. Inside a PID namespace
/// whose init is this script (kai-init runs as an ordinary subreaper under it), the main
/// child leaves a TERM-ignoring leftover in a session of its own and exits; while kai-init
/// waits out --stop-timeout, the script forces the next pid to be the main child's old one
/// (ns_last_pid) and starts a stranger there that leads its own group. kai-init's SIGKILL
/// at the deadline must reach the leftover and not the stranger.
const RECYCLED_GROUP: &str = r#"
import os, signal, subprocess, sys, time
kai = sys.argv[1]
main = r'''
import os, signal
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.close(w)
    os.execvp("sleep", ["sleep", "300"])
os.close(w)
os.read(r, 1)
print("main", os.getpid(), flush=True)
'''
env = dict(os.environ, KAI_INIT_HEALTH_SOCKET="off")
k = subprocess.Popen([kai, "--stop-timeout", "3s", "--", sys.executable, "-c", main],
                     stdout=subprocess.PIPE, env=env, text=True)
x = int(k.stdout.readline().split()[1])
deadline = time.monotonic() + 20
while os.path.exists(f"/proc/{x}"):
    if time.monotonic() > deadline:
        print("main child not reaped", flush=True); sys.exit(3)
    time.sleep(0.005)
with open("/proc/sys/kernel/ns_last_pid", "w") as f:
    f.write(str(x - 1))
stranger = os.fork()
if stranger == 0:
    os.setsid()
    time.sleep(300)
    os._exit(0)
if stranger != x:
    print(f"pid {x} not reused (got {stranger})", flush=True); sys.exit(2)
print("kai-init exit", k.wait(timeout=20), flush=True)
pid, status = os.waitpid(stranger, os.WNOHANG)
if pid == 0:
    print("stranger survived", flush=True)
    os.kill(stranger, signal.SIGKILL)
    os.waitpid(stranger, 0)
else:
    print("stranger killed by signal", os.WTERMSIG(status), flush=True)
"#;

#[test]
fn subreaper_never_signals_a_recycled_process_group() {
    let bin = util::bin().to_string_lossy().into_owned();
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .args([python3(), "-c", RECYCLED_GROUP, &bin]);
    let (status, stdout, stderr) = util::run(crate::hermetic(cmd), T);
    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("kai-init exit 0"), "{stdout}\n{stderr}");
    assert!(stdout.contains("stranger survived"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("leftover processes did not stop in time"),
        "the leftover was KILLed at the deadline: {stderr}"
    );
}
