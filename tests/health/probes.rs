//! Probes other than http: exec (statuses handed over by kai-init's reaper, also as PID 1;
//! a command that overruns is killed with everything it started), file, and the
//! start-up errors of the health side.

use std::time::Duration;

use crate::util::{self, wait_until};
use crate::{get, kai, metrics, socket_name, wait_body, wait_status, wait_status_saying, At, T};

/// A probe script whose behaviour the test changes by rewriting `mode`.
fn probe_script(dir: &util::TempDir) -> String {
    let script = dir.file("probe.sh");
    std::fs::write(&script, format!(". {}\n", dir.file("mode"))).unwrap();
    script
}

fn set_mode(dir: &util::TempDir, mode: &str) {
    let tmp = dir.file("mode.tmp");
    std::fs::write(&tmp, mode).unwrap();
    std::fs::rename(tmp, dir.file("mode")).unwrap();
}

fn exec_probe_statuses(pid1: bool) {
    let dir = util::TempDir::new("exec-probe");
    set_mode(&dir, "exit 0");
    let at = At::Unix(socket_name("exec"));
    let probe = format!("--probe=exec:/bin/sh {}", probe_script(&dir));
    let flag = at.flag();
    let args: [&str; 8] = [
        &flag,
        &probe,
        "--probe-interval=100ms",
        "--probe-timeout=300ms",
        "--probe-failures=1000",
        "--",
        "sleep",
        "60",
    ];
    let mut running = if pid1 {
        util::start(crate::hermetic_pid1(&args))
    } else {
        util::start(kai(&args))
    };
    let r = wait_status(&at, "/readyz?verbose", 200, T);
    assert!(r.body.contains("[+]probe ok: exit 0"), "{}", r.body);

    set_mode(&dir, "exit 3");
    wait_status_saying(&at, "/readyz?verbose", 503, "[-]probe failed: exit 3");

    set_mode(&dir, "kill -TERM $$");
    wait_body(
        &at,
        "/readyz?verbose",
        "[-]probe failed: killed by SIGTERM",
        T,
    );

    // A command that overruns is killed, with what it started (its own process group).
    set_mode(
        &dir,
        &format!("sleep 30 & echo $! > {}; wait", dir.file("sleeper")),
    );
    wait_body(
        &at,
        "/readyz?verbose",
        "[-]probe failed: timed out after 300ms",
        T,
    );
    assert!(dir.join("sleeper").exists(), "the overrunning probe ran");
    set_mode(&dir, "exit 0");
    wait_status(&at, "/readyz", 200, T);
    let kai_pid = if pid1 { running.pid1(T) } else { running.pid() };
    // Seen from the host: the pid the script wrote is the namespace's own as PID 1.
    wait_until("the overrunning probe's sleep to be gone", T, || {
        !util::descendants(kai_pid)
            .iter()
            .any(|p| util::cmdline(*p).as_deref() == Some("sleep 30"))
    });

    // No zombie is left over, and kai-init reaped every probe command: each probe run,
    // plus the overrunning probe's orphaned `sleep 30`, plus at most one probe reaped but
    // not yet recorded when the metrics were taken (the main child still runs).
    wait_until("no zombie among kai-init's children", T, || {
        util::children(kai_pid)
            .iter()
            .all(|p| util::state(*p) != Some('Z'))
    });
    let m = metrics(&at);
    let probes = m.value("kai_init_probe_duration_seconds_count");
    let reaped = m.value("kai_init_zombies_reaped_total");
    assert!(probes >= 4.0);
    assert!(
        (probes + 1.0..=probes + 2.0).contains(&reaped),
        "{probes} probes run (and one orphan), {reaped} reaped"
    );
    // The main child is untouched by all of it.
    assert!(get(&at, "/livez/child").status == 200);
    // The stop signal goes to kai-init itself (as PID 1: its host pid, not unshare's).
    assert!(util::signal(kai_pid, 15));
    assert_eq!(running.wait_exit(T).code(), Some(143));
}

#[test]
fn exec_probe_statuses_come_from_the_reaper() {
    exec_probe_statuses(false);
}

#[test]
fn exec_probe_statuses_come_from_the_reaper_as_pid1() {
    exec_probe_statuses(true);
}

#[test]
fn file_probe_follows_the_file() {
    let dir = util::TempDir::new("file-probe");
    let at = At::Unix(socket_name("file"));
    let flag = format!("--probe=file:{}", dir.file("ready"));
    let _running = util::start(kai(&[
        &at.flag(),
        &flag,
        "--probe-interval=100ms",
        "--",
        "sleep",
        "60",
    ]));
    // The first answer may come before the first probe has run: wait for its result.
    let r = wait_body(&at, "/readyz?verbose", "no such file", T);
    assert_eq!(r.status, 503, "{}", r.body);
    std::fs::write(dir.join("ready"), "").unwrap();
    wait_status(&at, "/readyz", 200, T);
    std::fs::remove_file(dir.join("ready")).unwrap();
    wait_status(&at, "/readyz", 503, T);
}

#[test]
fn initial_delay_holds_the_first_probe() {
    let at = At::Unix(socket_name("delay"));
    let _running = util::start(kai(&[
        &at.flag(),
        "--probe=exec:true",
        "--probe-initial-delay=1s",
        "--",
        "sleep",
        "60",
    ]));
    wait_status_saying(
        &at,
        "/readyz?verbose",
        503,
        "[-]probe failed: no result yet",
    );
    assert_eq!(
        get(&at, "/livez").status,
        200,
        "live before the first probe"
    );
    wait_status(&at, "/readyz", 200, T);
}

#[test]
fn a_port_that_cannot_be_bound_is_a_start_up_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, _, stderr) = util::run(kai(&["--health-listen", &addr, "--", "true"]), T);
    assert_eq!(status.code(), Some(125));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains(&addr) && lines[0].contains("cannot listen"),
        "{stderr}"
    );
}

/// A name given explicitly is a start-up error when taken (issue 8; the default name's
/// case, a warning, is in hostile.rs).
#[test]
fn a_taken_socket_name_is_a_start_up_error() {
    let at = At::Unix(socket_name("taken"));
    let _first = util::start(kai(&[&at.flag(), "--", "sleep", "60"]));
    wait_status(&at, "/livez", 200, T);
    let (status, _, stderr) = util::run(kai(&[&at.flag(), "--", "sh", "-c", "exit 7"]), T);
    assert_eq!(status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("cannot listen on @kai-test-taken"),
        "{stderr}"
    );
    assert_eq!(get(&at, "/livez").status, 200, "the first one still serves");
}

#[test]
fn probe_flags_are_checked_at_start_up() {
    for (flag, needle) in [
        ("--probe=http://db:80/", "IP address or localhost"),
        ("--probe=ftp://x", "is not a probe"),
        ("--probe-interval=0s", "greater than zero"),
        ("--probe-start-interval=0s", "greater than zero"),
        ("--probe-failures=0", "0"),
        ("--notify=fd:1", "N >= 3"),
    ] {
        let (status, _, stderr) = util::run(kai(&[flag, "--", "true"]), T);
        assert_eq!(status.code(), Some(125), "{flag}: {stderr}");
        assert!(stderr.contains(needle), "{flag}: {stderr}");
    }
}

/// With no probe and no watchdog, an idle kai-init with both listeners makes no wake-ups
/// at all (and runs one thread). The only fixed wait in these tests: it measures that
/// nothing happens in it.
#[test]
fn idle_means_no_wakeups() {
    let at = At::Tcp(crate::free_port());
    let sock = socket_name("idle");
    let running = util::start(kai(&[
        &at.flag(),
        &format!("--health-socket=@{sock}"),
        "--",
        "sleep",
        "60",
    ]));
    wait_status(&at, "/livez", 200, T);
    wait_status(&At::Unix(sock), "/livez", 200, T);
    let pid = running.pid();
    wait_until("the served connections to be closed", T, || {
        metrics(&at).value("kai_init_http_connections_open") <= 1.0
    });
    assert_eq!(util::status_line(pid, "Threads").as_deref(), Some("1"));
    let switches = || {
        let v = util::status_line(pid, "voluntary_ctxt_switches").unwrap();
        let n = util::status_line(pid, "nonvoluntary_ctxt_switches").unwrap();
        (v, n)
    };
    // Let the last answer's socket close and the loop settle.
    std::thread::sleep(Duration::from_millis(200));
    let before = switches();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(switches(), before, "an idle kai-init woke up");
}

/// An exec: probe's arguments may carry a secret; the endpoint has no authentication, so
/// no answer (text, verbose, health+json, metrics) and no log line shows them: the
/// program's name only.
#[test]
fn a_probe_commands_arguments_are_never_shown() {
    let dir = util::TempDir::new("secret-probe");
    set_mode(&dir, "exit 0");
    let at = At::Tcp(crate::free_port());
    let probe = format!("--probe=exec:/bin/sh {} --token=s3cr3t", probe_script(&dir));
    let mut running = util::start(kai(&[
        &at.flag(),
        &probe,
        "--probe-interval=100ms",
        "--probe-failures=1",
        "--",
        "sleep",
        "60",
    ]));
    let every_answer = || {
        let mut all = vec![get(&at, "/metrics").body];
        for path in [
            "/livez",
            "/readyz",
            "/healthz",
            "/startupz",
            "/livez/probe",
            "/readyz/probe",
        ] {
            for query in ["", "?verbose", "?format=json", "?verbose&format=json"] {
                all.push(get(&at, &format!("{path}{query}")).body);
            }
        }
        all
    };
    wait_status(&at, "/readyz", 200, T);
    let json = get(&at, "/readyz?format=json").body;
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        doc["checks"]["probe:responseTime"][0]["componentId"], "exec:/bin/sh",
        "{json}"
    );
    let passing = every_answer();
    set_mode(&dir, "exit 3");
    wait_body(&at, "/livez?verbose", "[-]probe failed: exit 3", T);
    let failing = every_answer();
    for body in passing.iter().chain(&failing) {
        assert!(!body.contains("s3cr3t"), "{body}");
    }
    running.signal(15);
    running.wait_exit(T);
    assert!(
        !running.stderr.iter().any(|l| l.contains("s3cr3t")),
        "{:#?}",
        running.stderr
    );
}

/// `kai-init ARGS` in a mount namespace of its own with a hung FUSE mount on `mnt`
/// (the mount vanishes with the test's processes); as PID 1 of a PID namespace too when
/// `pid1`, so that everything stuck on the mount dies with the namespace.
fn on_hung_mount(mnt: &std::path::Path, pid1: bool, args: &[&str]) -> util::Running {
    let inner = kai(args);
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private"]);
    if pid1 {
        cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"]);
    }
    cmd.args([util::python3(), "-c", util::HUNG_MOUNT]).arg(mnt);
    util::start(crate::wrapped(cmd, &inner))
}

/// Ten more probes, each failing at its timeout, while /livez answers throughout.
fn ten_more_failed_probes_while_live(at: &At) {
    let first = metrics(at).value("kai_init_probe_duration_seconds_count");
    wait_until("ten more probes", T, || {
        assert_eq!(get(at, "/livez").status, 200);
        metrics(at).value("kai_init_probe_duration_seconds_count") >= first + 10.0
    });
    assert_eq!(
        metrics(at).get("kai_init_probes_total", &[("result", "success")]),
        Some(0.0)
    );
}

/// What a probe on a hung mount waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hung {
    /// A `file:` probe: stat(2) of a path on the mount never returns.
    File,
    /// An `exec:` probe of a program on the mount: execve(2) never returns, and std's
    /// spawn waits for it.
    Exec,
}

/// The loop thread must not wait on a probe stuck on a hung mount (issue 8, item 10):
/// /livez keeps answering, the probe fails at its timeout, one stat or spawn thread at most
/// is outstanding whatever the number of probes, and SIGTERM still ends kai-init.
fn a_probe_on_a_hung_mount_never_blocks_the_loop(hung: Hung) {
    let dir = util::TempDir::new(match hung {
        Hung::File => "hung-mount",
        Hung::Exec => "hung-exec",
    });
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let at = At::Tcp(crate::free_port());
    let m = mnt.display();
    let (probe, failure) = match hung {
        Hung::File => (
            format!("--probe=file:{m}/ready"),
            format!("[-]probe failed: {m}/ready: timed out after 200ms"),
        ),
        Hung::Exec => (
            format!("--probe=exec:{m}/check --token=s3cr3t"),
            format!("[-]probe failed: timed out after 200ms: exec {m}/check\n"),
        ),
    };
    // The exec probe runs kai-init as PID 1 of its own PID namespace, so that the command
    // stuck in exec dies with it.
    let pid1 = hung == Hung::Exec;
    let mut running = on_hung_mount(
        &mnt,
        pid1,
        &[
            &at.flag(),
            &probe,
            "--probe-interval=100ms",
            "--probe-timeout=200ms",
            "--probe-failures=1000",
            "--",
            "sleep",
            "60",
        ],
    );
    wait_status(&at, "/livez", 200, T);
    let r = wait_body(&at, "/readyz?verbose", "timed out after 200ms", T);
    assert!(r.body.contains(&failure), "{}", r.body);
    ten_more_failed_probes_while_live(&at);
    let kai_pid = if pid1 { running.pid1(T) } else { running.pid() };
    // The loop's thread and the one stat or spawn still waiting on the mount: no thread
    // per probe.
    let threads = util::status_line(kai_pid, "Threads").unwrap();
    assert_eq!(threads, "2", "threads of kai-init");
    assert!(util::signal(kai_pid, 15));
    assert_eq!(running.wait_exit(T).code(), Some(143));
}

#[test]
fn a_file_probe_on_a_hung_mount_never_blocks_the_loop() {
    a_probe_on_a_hung_mount_never_blocks_the_loop(Hung::File);
}

#[test]
fn an_exec_probe_on_a_hung_mount_never_blocks_the_loop() {
    a_probe_on_a_hung_mount_never_blocks_the_loop(Hung::Exec);
}
