//! Hostile peers on the sd_notify socket (issue 8, item 11): its name is listed in
//! /proc/net/unix and every container of a pod shares the network namespace, so anyone
//! may send to it. Only the main child and its descendants are believed; a process of
//! another uid, a same-uid process outside the child's tree (as from another container
//! sharing the PID namespace) and a flood of them change nothing and cost a bounded log.

use std::process::{Command, Stdio};
use std::time::Instant;

use crate::util::{self, wait_until, TempDir};
use crate::{get, kai, metrics, socket_name, wait_status, wait_status_saying, At, T};

/// The main child: prints its NOTIFY_SOCKET, then on `go` in `argv[1]` starts a
/// grandchild that sends READY=1 (and STATUS=) and stays alive until `exit` appears.
const MAIN: &str = r#"
import os, subprocess, sys, time
d = sys.argv[1]
print('NOTIFY_SOCKET=' + os.environ['NOTIFY_SOCKET'], flush=True)
while not os.path.exists(os.path.join(d, 'go')): time.sleep(0.02)
g = subprocess.Popen([sys.executable, '-c', sys.argv[2], os.environ['NOTIFY_SOCKET'], 'STATUS=from the grandchild\nREADY=1', '1'])
print('grandchild pid', g.pid, flush=True)
while not os.path.exists(os.path.join(d, 'exit')): time.sleep(0.02)
g.kill(); g.wait()
"#;

/// Sends `argv[2]` to `argv[1]` `argv[3]` times (blocking sends: the receiver reads them
/// all), prints `sent N`, then stays alive (so the receiver can still look it up in
/// /proc) until stdin closes.
const SENDER: &str = r#"
import socket, sys
addr, msg, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for _ in range(n): s.sendto(msg, '\0' + addr[1:])
print('sent', n, flush=True)
sys.stdin.read()
"#;

/// A sender the test starts itself: a same-uid process outside kai-init's tree, or (with
/// `setpriv`) one of another uid. Killed and reaped on drop.
struct Stranger(std::process::Child);

impl Stranger {
    fn send(prefix: &[&str], socket: &str, msg: &str, count: u32) -> Stranger {
        Stranger::run(prefix, SENDER, socket, msg, count)
    }

    /// `script` (a sender with SENDER's arguments and output) run under `prefix`.
    fn run(prefix: &[&str], script: &str, socket: &str, msg: &str, count: u32) -> Stranger {
        let mut cmd = Command::new(prefix.first().copied().unwrap_or(util::python3()));
        if !prefix.is_empty() {
            cmd.args(&prefix[1..]).arg(util::python3());
        }
        cmd.args(["-c", script, socket, msg, &count.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("start a sender");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).expect("sender output");
        assert_eq!(line.trim(), format!("sent {count}"), "sender failed");
        Stranger(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn refused(at: &At) -> f64 {
    metrics(at).value("kai_init_notify_refused_total")
}

fn stranger_lines(running: &util::Running) -> usize {
    running
        .stderr
        .iter()
        .filter(|l| l.contains("ignoring NOTIFY_SOCKET datagrams"))
        .count()
}

/// kai-init with `--notify=sd` over MAIN, whose grandchild runs `sender`: its control
/// directory, health socket, the running kai-init and the child's NOTIFY_SOCKET.
fn start_main(tag: &str, sender: &str) -> (TempDir, At, util::Running, String) {
    let dir = TempDir::new(tag);
    let at = At::Unix(socket_name(tag));
    let mut running = util::start(kai(&[
        &at.flag(),
        "--notify=sd",
        "--",
        util::python3(),
        "-c",
        MAIN,
        &dir.file(""),
        sender,
    ]));
    let line = running.wait_stdout("NOTIFY_SOCKET=", T);
    let socket = line.trim_start_matches("NOTIFY_SOCKET=").to_owned();
    (dir, at, running, socket)
}

/// Tells MAIN to start its grandchild, whose READY=1 (and STATUS=) is believed.
fn grandchild_makes_it_ready(dir: &TempDir, at: &At, running: &mut util::Running) {
    std::fs::write(dir.join("go"), "").unwrap();
    running.wait_stdout("grandchild pid", T);
    wait_status_saying(
        at,
        "/readyz?verbose",
        200,
        "[+]notify ok: from the grandchild",
    );
}

#[test]
fn only_the_main_child_and_its_descendants_are_believed() {
    let started = Instant::now();
    let (dir, at, mut running, socket) = start_main("strangers", SENDER);
    wait_status(&at, "/readyz", 503, T);

    // Another uid (nobody), as from a sidecar container sharing the network namespace.
    let nobody = Stranger::send(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
        ],
        &socket,
        "READY=1",
        1,
    );
    let logged = running.wait_line("ignoring NOTIFY_SOCKET datagrams", T);
    assert!(
        logged.contains(&format!("pid={}", nobody.pid())) && logged.contains("uid=65534"),
        "{logged}"
    );
    wait_until("the datagram to be counted", T, || refused(&at) == 1.0);
    assert_eq!(get(&at, "/readyz").status, 503, "a stranger made it ready");

    // The same uid, but not in the main child's tree.
    let sibling = Stranger::send(&[], &socket, "READY=1\nSTATUS=impostor", 1);
    wait_until("the sibling's datagram to be counted", T, || {
        refused(&at) == 2.0
    });
    let r = get(&at, "/readyz?verbose");
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(!r.body.contains("impostor"), "{}", r.body);
    drop((nobody, sibling));

    // A flood that, if believed, would fail /livez (trigger) and /readyz for good
    // (STOPPING): nothing changes, and the log stays bounded.
    const FLOOD: u32 = 5000;
    let _flood = Stranger::send(
        &[],
        &socket,
        "WATCHDOG=trigger\nSTOPPING=1\nWATCHDOG_USEC=1",
        FLOOD,
    );
    wait_until("the flood to be counted", T, || {
        refused(&at) == 2.0 + f64::from(FLOOD)
    });
    assert_eq!(get(&at, "/livez").status, 200, "a stranger failed /livez");

    // A descendant (a grandchild of kai-init) is believed.
    grandchild_makes_it_ready(&dir, &at, &mut running);
    assert_eq!(
        refused(&at),
        2.0 + f64::from(FLOOD),
        "the grandchild was refused"
    );
    std::fs::write(dir.join("exit"), "").unwrap();
    assert_eq!(running.wait_exit(T).code(), Some(0));
    // 5002 datagrams refused, one log line per 10 s at most (all output is in now).
    let allowed = 1 + (started.elapsed().as_secs() / 10) as usize;
    let lines = stranger_lines(&running);
    assert!(
        (1..=allowed).contains(&lines),
        "{lines} lines, {allowed} allowed: {:#?}",
        running.stderr
    );
}

/// As PID 1 of its own PID namespace (a container), a sender from outside it (another
/// container of the pod, sharing the network namespace) has no pid kai-init can see: the
/// kernel reports 0, and that is refused.
#[test]
fn a_sender_from_another_pid_namespace_is_refused() {
    let at = At::Unix(socket_name("strangers-ns"));
    let mut running = util::start(crate::hermetic_pid1(&[
        &at.flag(),
        "--notify=sd",
        "--",
        "sh",
        "-c",
        "echo NOTIFY_SOCKET=$NOTIFY_SOCKET; exec sleep 60",
    ]));
    let line = running.wait_stdout("NOTIFY_SOCKET=", T);
    let socket = line.trim_start_matches("NOTIFY_SOCKET=").to_owned();
    let _outsider = Stranger::send(&[], &socket, "READY=1", 1);
    let logged = running.wait_line("ignoring NOTIFY_SOCKET datagrams", T);
    assert!(logged.contains("pid=0"), "{logged}");
    wait_until("the datagram to be counted", T, || refused(&at) == 1.0);
    assert_eq!(get(&at, "/readyz").status, 503);
}

/// Sends `argv[2]` to `argv[1]` `argv[3]` times, each datagram carrying 8 open descriptors
/// (SCM_RIGHTS), prints `sent N`, then stays alive until stdin closes.
const SENDER_WITH_FDS: &str = r#"
import array, os, socket, sys
addr, msg, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
fds = array.array('i', [os.open('/dev/null', os.O_RDONLY) for _ in range(8)])
# sendmsg, not socket.send_fds: Python 3.11's send_fds drops its address argument.
for _ in range(n): s.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)], 0, '\0' + addr[1:])
print('sent', n, flush=True)
sys.stdin.read()
"#;

/// A peer that floods datagrams each carrying descriptors (SCM_RIGHTS) must neither end
/// the notify loop nor exhaust kai-init's descriptors. The first such datagram used to
/// end it (the control message came back truncated, read as an error): from then on the
/// socket was gone and the child could never report ready. 2,000 datagrams with 8
/// descriptors each (16,000, over the usual limit of 1,024) are all refused, kai-init holds
/// as many descriptors after as before, and the child's own READY=1, sent with
/// descriptors too, still counts.
#[test]
fn descriptors_passed_with_datagrams_neither_end_the_loop_nor_are_kept() {
    let (dir, at, mut running, socket) = start_main("strangers-fds", SENDER_WITH_FDS);
    let pid = running.pid();
    let descriptors = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    // Before any health request: no connection is open.
    let before = descriptors();

    const COUNT: u32 = 2000;
    let _flood = Stranger::run(&[], SENDER_WITH_FDS, &socket, "READY=1", COUNT);
    wait_until("the flood to be counted", T, || {
        refused(&at) == f64::from(COUNT)
    });
    assert_eq!(get(&at, "/readyz").status, 503, "a stranger made it ready");
    // The health requests' own connections close once answered.
    wait_until("kai-init's descriptors to be as before", T, || {
        descriptors() <= before
    });

    // The child's grandchild sends READY=1 with 8 descriptors: believed, none kept.
    grandchild_makes_it_ready(&dir, &at, &mut running);
    wait_until("kai-init's descriptors to be as before", T, || {
        descriptors() <= before
    });
    std::fs::write(dir.join("exit"), "").unwrap();
    assert_eq!(running.wait_exit(T).code(), Some(0));
    assert!(
        !running.stderr.iter().any(|l| l.contains("cannot read")),
        "{:#?}",
        running.stderr
    );
}

/// SENDER from the bottom of a chain of `argv[4]` processes, each the parent of the next
/// (each waits for its child): prints `sent N` from the bottom, then stays alive (and the
/// chain with it) until stdin closes.
const DEEP_SENDER: &str = r#"
import os, socket, sys
addr, msg, n, depth = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), int(sys.argv[4])
for _ in range(depth):
    child = os.fork()
    if child:
        os.waitpid(child, 0)
        os._exit(0)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for _ in range(n): s.sendto(msg, '\0' + addr[1:])
print('sent', n, flush=True)
sys.stdin.read()
"#;

/// The read system calls a process has made (/proc/PID/io, `syscr`): each /proc record
/// kai-init reads to place a sender costs at least one.
fn read_calls(pid: i32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("syscr: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("syscr in /proc/PID/io")
}

/// Issue 17, item 6: a stranger 300 processes deep flooding the socket used to make
/// kai-init walk 300 parents in /proc for every datagram (100 % CPU, /livez at 0.9 s).
/// Now a refused sender is remembered (by pid and start time), so its further datagrams
/// cost one /proc read each, and the walks are bounded per second. Measured in read
/// system calls, not time: the old walk made over 300 per datagram. A descendant just as
/// deep is still believed.
#[test]
fn a_deep_strangers_flood_is_cheap_and_a_deep_descendant_is_still_believed() {
    const DEPTH: &str = "300";
    const FLOOD: u32 = 3000;
    // The main child's grandchild sends READY=1 from 300 levels further down.
    // Its stdin is kai-init's (/dev/null): it sleeps instead, so the chain stays in /proc
    // until its datagram is read, and kai-init stops it with the rest of the tree.
    let deep_grandchild = DEEP_SENDER
        .replace("int(sys.argv[4])", DEPTH)
        .replace("sys.stdin.read()", "__import__('time').sleep(3600)");
    let (dir, at, mut running, socket) = start_main("strangers-deep", &deep_grandchild);
    let pid = running.pid();
    wait_status(&at, "/readyz", 503, T);
    let before = read_calls(pid);
    let chain = Command::new(util::python3())
        .args([
            "-c",
            DEEP_SENDER,
            &socket,
            "READY=1",
            &FLOOD.to_string(),
            DEPTH,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // The chain ends on its own once stdin closes (the guard's drop): none of it may
        // hold the test's stderr meanwhile.
        .stderr(Stdio::null())
        .spawn()
        .expect("start the chain");
    let mut chain = Stranger(chain);
    let mut out = std::io::BufReader::new(chain.0.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("chain output");
    assert_eq!(line.trim(), format!("sent {FLOOD}"));
    wait_until("the flood to be counted", T, || {
        refused(&at) == f64::from(FLOOD)
    });
    let spent = read_calls(pid) - before;
    eprintln!("{spent} read calls for {FLOOD} datagrams from {DEPTH} deep");
    assert_eq!(get(&at, "/livez").status, 200);
    assert_eq!(get(&at, "/readyz").status, 503, "a stranger made it ready");
    // About 7 per datagram now (reading one /proc record takes several read calls, and the
    // health requests above make their own); the old walk made about 1,850 per datagram.
    assert!(
        spent < 30 * u64::from(FLOOD),
        "{spent} read calls for {FLOOD} datagrams"
    );
    drop(chain);
    grandchild_makes_it_ready(&dir, &at, &mut running);
    std::fs::write(dir.join("exit"), "").unwrap();
    assert_eq!(running.wait_exit(T).code(), Some(0));
}
