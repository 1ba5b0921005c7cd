//! Readiness notification: sd_notify from a real Python child (stdlib datagram socket),
//! the watchdog expiring and recovering, STOPPING=1, READY/STOPPING passed up to
//! kai-init's own NOTIFY_SOCKET (which the child never sees), and s6-style fd readiness
//! from a real Node child.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use crate::util::{self, TempDir};
use crate::{
    get, kai, metrics, socket_name, term_exits_143, wait_status, wait_status_saying, At, T,
};

/// Steps through sd_notify as the test creates files in `argv[1]`: STATUS, then READY=1
/// and a 600 ms watchdog fed every 100 ms, then starving the watchdog, feeding it again,
/// and STOPPING=1.
const PY_SD: &str = r#"
import os, socket, sys, time
d = sys.argv[1]
addr = os.environ.get('NOTIFY_SOCKET', '')
print('NOTIFY_SOCKET=' + addr, flush=True)
print('WATCHDOG_USEC in env: ' + str('WATCHDOG_USEC' in os.environ), flush=True)
target = '\0' + addr[1:] if addr.startswith('@') else addr
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def send(m): s.sendto(m.encode(), target)
def has(name): return os.path.exists(os.path.join(d, name))
def wait(name):
    while not has(name): time.sleep(0.02)
def feed_until(name):
    while not has(name):
        send('WATCHDOG=1'); time.sleep(0.1)
send('STATUS=warming up')
print('status sent', flush=True)
wait('ready')
send('READY=1\nSTATUS=serving')
send('WATCHDOG_USEC=600000')
print('ready sent', flush=True)
feed_until('starve')
print('starving', flush=True)
wait('feed')
feed_until('stop')
send('STOPPING=1')
print('stopping sent', flush=True)
wait('exit')
"#;

fn touch(dir: &TempDir, name: &str) {
    std::fs::write(dir.join(name), "").unwrap();
}

#[test]
fn sd_notify_from_python_with_watchdog_and_upstream() {
    let dir = TempDir::new("sd");
    let at = At::Unix(socket_name("sd"));
    // kai-init's own supervisor, as podman --sdnotify=container would give it.
    let upstream_name = socket_name("upstream");
    let upstream =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(upstream_name.as_bytes()).unwrap())
            .unwrap();
    upstream.set_read_timeout(Some(T)).unwrap();
    let recv = || {
        let mut buf = [0u8; 256];
        let n = upstream.recv(&mut buf).expect("a message upstream");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };

    let mut cmd = kai(&[
        &at.flag(),
        "--notify=sd",
        "--",
        util::python3(),
        "-c",
        PY_SD,
        &dir.file(""),
    ]);
    cmd.env("NOTIFY_SOCKET", format!("@{upstream_name}"));
    cmd.env("WATCHDOG_USEC", "123");
    let mut running = util::start(cmd);

    let line = running.wait_stdout("NOTIFY_SOCKET=", T);
    let child_socket = line.trim_start_matches("NOTIFY_SOCKET=");
    assert!(
        child_socket.starts_with('@') && child_socket.len() > 1,
        "{line}"
    );
    assert_ne!(
        child_socket,
        format!("@{upstream_name}"),
        "the upstream socket leaked to the child"
    );
    running.wait_stdout("WATCHDOG_USEC in env: False", T);
    running.wait_stdout("status sent", T);

    // Before READY=1: live, not ready, and the STATUS text is shown.
    wait_status(&at, "/livez", 200, T);
    let mut r = get(&at, "/readyz?verbose");
    let deadline = Instant::now() + T;
    while !r.body.contains("(warming up)") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        r = get(&at, "/readyz?verbose");
    }
    assert_eq!(r.status, 503);
    assert!(
        r.body
            .contains("[-]notify failed: waiting for READY=1 (warming up)"),
        "{}",
        r.body
    );
    assert_eq!(get(&at, "/startupz").status, 503);
    assert_eq!(metrics(&at).value("kai_init_notify_ready"), 0.0);

    touch(&dir, "ready");
    let r = wait_status(&at, "/readyz?verbose", 200, T);
    assert!(r.body.contains("[+]notify ok: serving"), "{}", r.body);
    assert_eq!(get(&at, "/startupz").status, 200);
    assert_eq!(recv(), "READY=1", "READY=1 passed up once ready");
    // Once armed (a datagram after READY=1), the watchdog is a check of its own.
    running.wait_line("child armed the watchdog", T);
    let r = get(&at, "/readyz?verbose");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("[+]watchdog ok\n"), "{}", r.body);
    let r = get(&at, "/livez?verbose");
    assert!(r.body.contains("[+]watchdog ok\n"), "{}", r.body);

    // Fed every 100 ms, a 600 ms watchdog holds over several periods.
    let fed_since = Instant::now();
    while fed_since.elapsed() < Duration::from_millis(1500) {
        assert_eq!(get(&at, "/livez").status, 200, "watchdog failed while fed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let json = get(&at, "/livez?format=json").body;
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let last_ping = doc["checks"]["watchdog:lastPing"][0]["observedValue"]
        .as_f64()
        .unwrap();
    assert!(last_ping < 0.6, "{json}");

    // Starved: /livez fails within the watchdog period (plus slack), and says why.
    touch(&dir, "starve");
    running.wait_stdout("starving", T);
    let starved = Instant::now();
    let r = wait_status(&at, "/livez?verbose", 503, T);
    assert!(
        starved.elapsed() < Duration::from_millis(600 + 1500),
        "{:?}",
        starved.elapsed()
    );
    assert!(
        r.body.contains("[-]watchdog failed: no WATCHDOG=1 for"),
        "{}",
        r.body
    );
    assert!(r.body.contains("WATCHDOG_USEC=600000"), "{}", r.body);
    assert_eq!(get(&at, "/readyz").status, 503, "not live means not ready");
    running.wait_line("watchdog expired", T);
    assert_eq!(metrics(&at).value("kai_init_live"), 0.0);
    // Reported once, the expired watchdog leaves no timer behind: a deadline kept in the
    // past would wake the loop at once, forever (cargo mutants: `&&` made `||` in the
    // timer's condition went unseen). A spinning loop uses about a core; idle, kai-init
    // uses nothing. A measurement of absence, so a fixed window.
    let ticks = || util::cpu_ticks(running.pid()).expect("kai-init runs");
    let before = ticks();
    std::thread::sleep(Duration::from_millis(1000));
    let used = ticks() - before;
    assert!(
        used < 20,
        "kai-init used {used} ticks of CPU in 1 s with an expired watchdog"
    );

    // Fed again: live again.
    touch(&dir, "feed");
    wait_status(&at, "/livez", 200, T);
    wait_status(&at, "/readyz", 200, T);
    running.wait_line("watchdog fed again", T);

    // STOPPING=1 from the child: not ready, and passed up.
    touch(&dir, "stop");
    running.wait_stdout("stopping sent", T);
    wait_status_saying(
        &at,
        "/readyz?verbose",
        503,
        "[-]notify failed: child sent STOPPING=1",
    );
    assert_eq!(recv(), "STOPPING=1");
    touch(&dir, "exit");
    assert_eq!(running.wait_exit(T).code(), Some(0));
}

#[test]
fn ready_and_stopping_go_upstream_and_the_child_never_sees_the_socket() {
    let upstream_name = socket_name("upstream-term");
    let upstream =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(upstream_name.as_bytes()).unwrap())
            .unwrap();
    upstream.set_read_timeout(Some(T)).unwrap();
    let mut buf = [0u8; 64];
    let mut cmd = kai(&["--", "sh", "-c", "env; echo env-done; exec sleep 60"]);
    cmd.env("NOTIFY_SOCKET", format!("@{upstream_name}"));
    cmd.env("WATCHDOG_PID", "1");
    let mut running = util::start(cmd);
    running.wait_stdout("env-done", T);
    for var in ["NOTIFY_SOCKET=", "WATCHDOG_PID="] {
        assert!(
            !running.stdout.iter().any(|l| l.starts_with(var)),
            "{var} leaked to the child"
        );
    }
    // No condition to wait for: ready, and so READY=1, at once.
    let n = upstream.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1");
    running.signal(15);
    let n = upstream.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert_eq!(running.wait_exit(T).code(), Some(143));
}

#[test]
fn stopping_goes_upstream_when_the_child_exits_on_its_own() {
    let upstream_name = socket_name("upstream-exit");
    let upstream =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(upstream_name.as_bytes()).unwrap())
            .unwrap();
    upstream.set_read_timeout(Some(T)).unwrap();
    let mut cmd = kai(&["--", "sh", "-c", "exit 3"]);
    cmd.env("NOTIFY_SOCKET", format!("@{upstream_name}"));
    let (status, _, _) = util::run(cmd, T);
    assert_eq!(status.code(), Some(3));
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    for _ in 0..2 {
        let n = upstream.recv(&mut buf).unwrap();
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(got, ["READY=1", "STOPPING=1"]);
}

#[test]
fn fd_readiness_from_node() {
    let at = At::Tcp(crate::free_port());
    const NODE: &str = r#"
const fs = require('fs');
process.on('SIGUSR2', () => { fs.writeSync(5, 'ready\n'); console.log('node: notified'); });
setInterval(() => {}, 1 << 30);
console.log('node: started');
"#;
    let mut running = util::start(kai(&[
        &at.flag(),
        "--notify=fd:5",
        "--",
        "node",
        "-e",
        NODE,
    ]));
    running.wait_stdout("node: started", T);
    wait_status_saying(
        &at,
        "/readyz?verbose",
        503,
        "[-]notify failed: waiting for a newline on fd 5",
    );
    assert_eq!(get(&at, "/livez").status, 200);
    assert_eq!(get(&at, "/startupz").status, 503);

    running.signal(12);
    running.wait_stdout("node: notified", T);
    wait_status(&at, "/readyz", 200, T);
    assert_eq!(get(&at, "/startupz").status, 200);
    let m = metrics(&at);
    assert_eq!(m.value("kai_init_notify_ready"), 1.0);
    assert_eq!(m.value("kai_init_started"), 1.0);
    running.wait_line("child notified readiness", T);
    term_exits_143(&mut running);
}

/// Bytes without a newline are not a notification (s6's rule), nor is closing the fd.
#[test]
fn fd_closed_without_a_newline_is_never_ready() {
    let at = At::Unix(socket_name("fd-closed"));
    let mut running = util::start(kai(&[
        &at.flag(),
        "--notify=fd:4",
        "--",
        "sh",
        "-c",
        "printf READY >&4; exec 4>&-; echo closed; exec sleep 60",
    ]));
    running.wait_stdout("closed", T);
    running.wait_line("without writing a newline", T);
    assert_eq!(get(&at, "/readyz").status, 503);
    assert_eq!(get(&at, "/livez").status, 200);
}

/// Sends each argument after the first (with `\\n` and `\\xNN` escapes, decoded to
/// bytes) as one datagram once the test creates `go<i>` in the directory `argv[1]` (so
/// the test paces it), printing `sent <i>` after each.
const PY_SEND_PACED: &str = r#"
import os, socket, sys, time
d, addr = sys.argv[1], os.environ['NOTIFY_SOCKET']
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
print('started', flush=True)
for i, m in enumerate(sys.argv[2:]):
    while not os.path.exists(os.path.join(d, 'go%d' % i)): time.sleep(0.02)
    s.sendto(m.encode().decode('unicode_escape').encode('latin-1'), '\0' + addr[1:])
    print('sent', i, flush=True)
while True: time.sleep(60)
"#;

struct Paced {
    running: util::Running,
    dir: TempDir,
}

impl Paced {
    fn start(at: &At, extra: &[&str], messages: &[&str]) -> Paced {
        let dir = TempDir::new("paced");
        let flag = at.flag();
        let dir_arg = dir.file("");
        let mut args = vec![flag.as_str(), "--notify=sd"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", util::python3(), "-c", PY_SEND_PACED, &dir_arg]);
        args.extend_from_slice(messages);
        let mut running = util::start(kai(&args));
        running.wait_stdout("started", T);
        Paced { running, dir }
    }

    fn send(&mut self, i: usize) {
        touch(&self.dir, &format!("go{i}"));
        self.running.wait_stdout(&format!("sent {i}"), T);
    }
}

/// WATCHDOG=trigger is an immediate watchdog failure (systemd's meaning), armed or not:
/// /livez fails until the next WATCHDOG=1.
#[test]
fn watchdog_trigger_fails_livez_without_an_armed_watchdog() {
    let at = At::Unix(socket_name("trigger"));
    let mut p = Paced::start(&at, &[], &["READY=1", "WATCHDOG=trigger", "WATCHDOG=1"]);
    p.send(0);
    wait_status(&at, "/readyz", 200, T);
    p.send(1);
    wait_status_saying(
        &at,
        "/livez?verbose",
        503,
        "[-]watchdog failed: child sent WATCHDOG=trigger",
    );
    assert_eq!(get(&at, "/readyz").status, 503, "not live means not ready");
    assert_eq!(metrics(&at).value("kai_init_live"), 0.0);
    p.running.wait_line("WATCHDOG=trigger; /livez fails", T);
    p.send(2);
    wait_status(&at, "/livez", 200, T);
    wait_status(&at, "/readyz", 200, T);
}

/// STATUS= text reaches people (verbose answers, health+json, the text log) with no
/// control character in it: ESC, CR, BEL, NUL, DEL, a C1 CSI and invalid UTF-8 are shown
/// as escapes, never passed through.
#[test]
fn status_text_never_carries_control_characters() {
    let at = At::Unix(socket_name("status-ctl"));
    let mut p = Paced::start(
        &at,
        &["--log-level=debug"],
        &[r"STATUS=\x1b[31mred\r\x07bell\x00nul\x7fdel\xc2\x9bcsi\xffbad\x1b]0;title\x07"],
    );
    p.send(0);
    let r = crate::wait_body(&at, "/readyz?verbose", "red", T);
    let hidden = |s: &str| {
        s.chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{9b}')
    };
    assert!(!hidden(&r.body), "{:?}", r.body);
    assert!(
        r.body
            .contains(r"(\x1b[31mred\x0d\x07bell\x00nul\x7fdel\u{9b}csi")
            && r.body.contains("csi\u{fffd}bad\\x1b]0;title\\x07)"),
        "{:?}",
        r.body
    );
    let json = get(&at, "/readyz?format=json").body;
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let output = doc["checks"]["notify"][0]["output"].as_str().unwrap();
    assert!(output.contains("red") && !hidden(output), "{output:?}");
    let line = p.running.wait_line("child STATUS", T);
    assert!(line.contains("red") && !hidden(&line), "{line:?}");
}
