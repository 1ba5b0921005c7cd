//! The lifecycle test's second table (issue 17): the events that are not stop signals,
//! at each phase — waiting, a pre step, running, draining — as PID 1 and not:
//!
//! - **exit**: the process of the phase (the step, or COMMAND) exits 3;
//! - **probe failure**: with `--exit-on-unhealthy`, the probe that passed starts failing;
//! - **notify from a stranger**: READY=1 from a process outside kai-init's tree;
//! - **notify from the tree**: READY=1 from COMMAND's grandchild.
//!
//! Invariants, each case: the exit code is the documented one (a step's or COMMAND's own
//! status; 69 only for a child that was ready and then failed while nothing else was
//! stopping it; a stop already under way keeps its own code); COMMAND never starts when
//! the phase before it ends badly; a stranger never makes kai-init ready, and neither
//! does anything while it drains; kai-init never calls anything an OOM kill and never
//! panics. Cases that end by themselves end so; the others are then ended with INT,
//! whose code is checked too. (The stop signals' table is `tests/core/lifecycle.rs`; OOM
//! kills at each phase are in `oom.rs`, which needs a cgroup of its own per case.)

use crate::util::{self, TempDir};
use crate::{hermetic_pid1, kai, metrics, request, socket_name, wait_status, At, T};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `--wait-for file:` a file that never appears.
    Waiting,
    /// A pre step runs.
    Pre,
    /// COMMAND runs (and is ready, where readiness is the point).
    Running,
    /// A TERM came with `--drain-delay 5s`: the stop signal is held back.
    Draining,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Exit,
    ProbeFails,
    NotifyStranger,
    NotifyFromTree,
}

/// COMMAND: writes the probe's file, says it is ready (with its pid), exits 3 on USR1,
/// and when `DIR/notify` appears starts a grandchild that sends READY=1 to its
/// NOTIFY_SOCKET.
const MAIN: &str = r#"
import os, signal, subprocess, sys, time
d = sys.argv[1]
signal.signal(signal.SIGUSR1, lambda *a: os._exit(3))
open(os.path.join(d, 'ready'), 'w').close()
print('main ready', os.getpid(), flush=True)
sent = False
while True:
    if not sent and os.path.exists(os.path.join(d, 'notify')):
        g = subprocess.Popen([sys.executable, '-c', sys.argv[2], os.environ['NOTIFY_SOCKET']],
                             stdout=subprocess.PIPE)
        g.stdout.readline()
        print('tree sent', flush=True)
        sent = True
    time.sleep(0.02)
"#;

/// Sends READY=1 to the abstract socket `argv[1]` (`@name`), says `sent`, and stays while
/// its parent lives (kai-init places a sender through /proc, and one that has exited
/// cannot be placed and is refused whoever it was: fail closed, see `health::notify`).
/// Ends once orphaned, so it never outlives the case, even where no subreaper adopts it.
const SEND: &str = r#"
import os, socket, sys, time
parent = os.getppid()
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b'READY=1', '\0' + sys.argv[1][1:])
print('sent', flush=True)
while os.getppid() == parent: time.sleep(0.05)
"#;

/// A pre step: says it runs (with its pid), exits 3 on USR1, dies of what else it gets.
const STEP: &str = r#"
import os, signal, time
signal.signal(signal.SIGUSR1, lambda *a: os._exit(3))
print('step ready', os.getpid(), flush=True)
while True: time.sleep(1)
"#;

/// Whether the table has the case: an exit needs a process (none runs while waiting);
/// READY=1 from the tree needs COMMAND.
fn applies(phase: Phase, event: Event) -> bool {
    match event {
        Event::Exit => phase != Phase::Waiting,
        Event::NotifyFromTree => matches!(phase, Phase::Running | Phase::Draining),
        Event::ProbeFails | Event::NotifyStranger => true,
    }
}

/// The code kai-init must exit with after `event` in `phase`, or `None` when the event
/// must change nothing (the case then ends with INT).
fn expected(phase: Phase, event: Event) -> Option<i32> {
    match (phase, event) {
        (_, Event::Exit) => Some(3),
        // Ready, then failing, and nothing else stopping it: stopped as unhealthy.
        (Phase::Running, Event::ProbeFails) => Some(69),
        // The TERM that started the drain is what ends it: the child dies of it.
        (Phase::Draining, _) => Some(143),
        _ => None,
    }
}

fn case(phase: Phase, event: Event, as_pid1: bool) {
    let label = format!("{phase:?} {event:?} pid1={as_pid1}");
    let dir = TempDir::new("lc-events");
    let at = At::Unix(socket_name("lc-events"));
    let step = format!("{} -c {}", util::python3(), quote(STEP));
    let mut args: Vec<String> = vec![at.flag(), "--log-level=debug".into()];
    match event {
        Event::ProbeFails => args.extend([
            format!("--probe=file:{}", dir.file("ready")),
            "--probe-interval=50ms".into(),
            "--probe-failures=1".into(),
            "--exit-on-unhealthy".into(),
        ]),
        Event::NotifyStranger | Event::NotifyFromTree => args.push("--notify=sd".into()),
        Event::Exit => {}
    }
    match phase {
        Phase::Waiting => args.push(format!("--wait-for=file:{}", dir.file("never"))),
        Phase::Pre => args.push(format!("--pre={step}")),
        Phase::Running => {}
        Phase::Draining => args.push("--drain-delay=5s".into()),
    }
    args.extend([
        "--".into(),
        util::python3().into(),
        "-c".into(),
        MAIN.into(),
        dir.path().display().to_string(),
        SEND.into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut r = util::start(match as_pid1 {
        true => hermetic_pid1(&args),
        false => kai(&args),
    });
    let target = if as_pid1 { r.pid1(T) } else { r.pid() };

    // Reach the phase; `busy` is the process of the phase, as the host sees it.
    let host_pid = |ns_pid: i32| match as_pid1 {
        // COMMAND's and the step's pids as printed are the namespace's; find them
        // among kai-init's children on the host.
        true => util::children(target)
            .into_iter()
            .find(|p| ns_pid_of(*p) == Some(ns_pid))
            .unwrap_or_else(|| panic!("{label}: no process {ns_pid} under kai-init")),
        false => ns_pid,
    };
    let printed_pid = |line: String| -> i32 { line.rsplit(' ').next().unwrap().parse().unwrap() };
    let busy = match phase {
        Phase::Waiting => {
            r.wait_line("waiting", T);
            None
        }
        Phase::Pre => Some(host_pid(printed_pid(r.wait_stdout("step ready", T)))),
        Phase::Running | Phase::Draining => {
            let pid = host_pid(printed_pid(r.wait_stdout("main ready", T)));
            if event == Event::ProbeFails {
                wait_status(&at, "/readyz", 200, T);
            }
            if phase == Phase::Draining {
                assert!(util::signal(target, libc::SIGTERM), "{label}");
                r.wait_line("draining before stop", T);
            }
            Some(pid)
        }
    };

    // The event.
    match event {
        Event::Exit => assert!(util::signal(busy.unwrap(), libc::SIGUSR1), "{label}"),
        Event::ProbeFails => {
            let _ = std::fs::remove_file(dir.join("ready"));
            if phase == Phase::Running {
                r.wait_line("unhealthy", T);
            }
        }
        Event::NotifyStranger => {
            // As a stranger finds it: bound before the waits and steps, listed in
            // /proc/net/unix.
            let socket = notify_socket_of(target);
            // Alive until refused (as Outside, not merely gone), killed when the case ends.
            let mut sender = std::process::Command::new(util::python3());
            sender.args(["-c", SEND, &socket]);
            let mut stranger = util::start(sender);
            stranger.wait_stdout("sent", T);
            if matches!(phase, Phase::Running | Phase::Draining) {
                util::wait_until("the stranger's READY=1 to be refused", T, || {
                    metrics(&at).value("kai_init_notify_refused_total") >= 1.0
                });
                let refused = r.wait_line("not the main child or its descendant", T);
                assert!(refused.contains("refused=1"), "{label}: {refused}");
            }
        }
        Event::NotifyFromTree => {
            std::fs::write(dir.join("notify"), "").unwrap();
            r.wait_stdout("tree sent", T);
            if phase == Phase::Running {
                // Believed: COMMAND's own grandchild.
                wait_status(&at, "/readyz", 200, T);
            }
        }
    }

    // Readiness: nothing a stranger says, and nothing at all while draining, makes
    // kai-init ready (asked while it still answers).
    let never_ready = event == Event::NotifyStranger || phase == Phase::Draining;
    if never_ready && r.child.try_wait().unwrap().is_none() {
        // A drain that ended meanwhile closes the endpoint: no answer is no "ready"
        // either, and the exit code below is checked all the same.
        if let Ok(readyz) = request(&at, "GET", "/readyz", "") {
            assert_eq!(readyz.status, 503, "{label}: {}", readyz.body);
        }
    }

    let code = match expected(phase, event) {
        Some(code) => code,
        None => {
            assert!(
                r.child.try_wait().unwrap().is_none(),
                "{label}: ended by an event that must change nothing: {:?}",
                r.stderr
            );
            assert!(util::signal(target, libc::SIGINT), "{label}");
            130
        }
    };
    let status = r.wait_exit(T);
    assert_eq!(status.code(), Some(code), "{label}: {:?}", r.stderr);
    let before_command = matches!(phase, Phase::Waiting | Phase::Pre);
    if before_command {
        assert!(
            !dir.join("ready").exists() && !r.stderr.iter().any(|l| l.contains("started child")),
            "{label}: COMMAND started: {:?}",
            r.stderr
        );
    }
    for bad in ["panicked", "OOM killer", "out of memory"] {
        assert!(
            !r.stderr.iter().any(|l| l.contains(bad)),
            "{label}: {bad}: {:?}",
            r.stderr
        );
    }
    if code == 69 {
        let line = r.stderr.iter().find(|l| l.contains("unhealthy")).unwrap();
        assert!(line.contains("no such file"), "{label}: {line}");
    }
}

/// The abstract datagram socket (`@name`) among `pid`'s descriptors: kai-init's notify
/// socket, found the way any process of the network namespace can (/proc/net/unix).
fn notify_socket_of(pid: i32) -> String {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/unix").unwrap();
    // Num RefCount Protocol Flags Type St Inode Path; Type 0002 is SOCK_DGRAM.
    table
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (kind, inode, path) = (f.get(4)?, f.get(6)?, f.get(7)?);
            (*kind == "0002" && inodes.iter().any(|i| i == inode) && path.starts_with('@'))
                .then(|| path.to_string())
        })
        .expect("kai-init's notify socket in /proc/net/unix")
}

/// A process's pid in its innermost PID namespace (`NSpid` in /proc/PID/status).
fn ns_pid_of(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

/// `text` as one word for kai-init's word splitting.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Every event at `phase`, as PID 1 or not; fails listing each case that broke.
fn all(phase: Phase, as_pid1: bool) {
    let events = [
        Event::Exit,
        Event::ProbeFails,
        Event::NotifyStranger,
        Event::NotifyFromTree,
    ];
    util::every_case(
        events
            .into_iter()
            .filter(|&event| applies(phase, event))
            .map(|event| Box::new(move || case(phase, event, as_pid1)) as Box<dyn FnOnce()>),
    );
}

#[test]
fn events_while_waiting_as_pid1() {
    all(Phase::Waiting, true);
}

#[test]
fn events_while_waiting_as_subreaper() {
    all(Phase::Waiting, false);
}

#[test]
fn events_during_a_pre_step_as_pid1() {
    all(Phase::Pre, true);
}

#[test]
fn events_during_a_pre_step_as_subreaper() {
    all(Phase::Pre, false);
}

#[test]
fn events_while_running_as_pid1() {
    all(Phase::Running, true);
}

#[test]
fn events_while_running_as_subreaper() {
    all(Phase::Running, false);
}

#[test]
fn events_while_draining_as_pid1() {
    all(Phase::Draining, true);
}

#[test]
fn events_while_draining_as_subreaper() {
    all(Phase::Draining, false);
}
