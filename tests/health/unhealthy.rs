//! `--exit-on-unhealthy` (issue 21): a child that answered its probe and then hangs makes
//! kai-init stop it as for SIGTERM and exit 69, so a restart policy (which acts on exits
//! only) restarts the container; without the flag kai-init keeps running with /livez
//! failing; and a child that never got ready is a slow start, never an unhealthy one.

use crate::util::{self, free_port};
use crate::{kai, metrics, socket_name, wait_status, At, T};

/// Answers every request until SIGUSR1, then accepts and never answers (a wedged event
/// loop as a probe sees it: connected, then nothing). No TERM handler: TERM kills it.
const HANGS_ON_USR1: &str = r#"
const http = require('http');
let hang = false;
http.createServer((req, res) => { if (!hang) res.end('ok'); })
  .listen(+process.env.PORT, '127.0.0.1', () => console.log('listening'));
process.on('SIGUSR1', () => { hang = true; console.log('hanging'); });
setInterval(() => {}, 1 << 30);
"#;

/// kai-init probing `probe_port`, its child serving on `app_port`.
fn start_probing(at: &At, probe_port: u16, app_port: u16, extra: &[&str]) -> util::Running {
    let probe = format!("http://127.0.0.1:{probe_port}/");
    let mut args = vec![
        at.flag(),
        "--probe".into(),
        probe,
        "--probe-interval".into(),
        "200ms".into(),
        "--probe-start-interval".into(),
        "50ms".into(),
        "--probe-timeout".into(),
        "200ms".into(),
        "--probe-failures".into(),
        "2".into(),
        "--stop-timeout".into(),
        "2s".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend([
        "--".into(),
        "node".into(),
        "-e".into(),
        HANGS_ON_USR1.into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = kai(&args);
    cmd.env("PORT", app_port.to_string());
    util::start(cmd)
}

/// kai-init probing its child's own server.
fn start(at: &At, port: u16, extra: &[&str]) -> util::Running {
    start_probing(at, port, port, extra)
}

/// kai-init is still there and has not acted on health: no "unhealthy" line.
fn still_running_without_acting(k: &mut util::Running) {
    assert!(k.child.try_wait().unwrap().is_none(), "{:?}", k.stderr);
    assert!(
        !k.stderr.iter().any(|l| l.contains("unhealthy")),
        "{:?}",
        k.stderr
    );
}

#[test]
fn a_child_that_hangs_after_being_ready_is_stopped_and_kai_init_exits_69() {
    let at = At::Unix(socket_name("unhealthy-exit"));
    let mut k = start(&at, free_port(), &["--exit-on-unhealthy"]);
    k.wait_line("first probe passed", T);
    // USR1 is forwarded to the child, which stops answering.
    k.signal(libc::SIGUSR1);
    k.wait_stdout("hanging", T);
    let status = k.wait_exit(T);
    assert_eq!(status.code(), Some(69), "{:?}", k.stderr);
    let line = k
        .stderr
        .iter()
        .find(|l| l.contains("unhealthy"))
        .unwrap_or_else(|| panic!("no 'unhealthy' line: {:?}", k.stderr));
    assert!(line.contains("error"), "{line}");
    assert!(
        line.contains("timed out"),
        "the last probe error is named: {line}"
    );
    // Stopped as for SIGTERM: the child got TERM (and died of it), not SIGKILL.
    assert!(
        k.stderr
            .iter()
            .any(|l| l.contains("stopping child") && l.contains("SIGTERM")),
        "{:?}",
        k.stderr
    );
    assert!(
        !k.stderr.iter().any(|l| l.contains("SIGKILL")),
        "{:?}",
        k.stderr
    );
}

#[test]
fn without_the_flag_kai_init_keeps_running_with_livez_failing() {
    let at = At::Unix(socket_name("unhealthy-stay"));
    let mut k = start(&at, free_port(), &[]);
    k.wait_line("first probe passed", T);
    k.signal(libc::SIGUSR1);
    k.wait_line("not live", T);
    wait_status(&at, "/livez", 503, T);
    still_running_without_acting(&mut k);
    k.signal(libc::SIGTERM);
    assert_eq!(k.wait_exit(T).code(), Some(143));
}

#[test]
fn a_slow_start_never_counts_as_unhealthy() {
    let at = At::Unix(socket_name("unhealthy-slow"));
    // The probed port is held by this test and never accepted from: connections sit in
    // the backlog and the probe times out, so the child never gets ready. (A port merely
    // free now could be taken by a parallel test's server and answer.)
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let mut k = start_probing(&at, port, free_port(), &["--exit-on-unhealthy"]);
    // The start budget (--probe-failures counted failures, one per --probe-interval)
    // runs out and /livez fails, as Kubernetes' liveness would without a startupProbe;
    // that is the start's verdict, not a death after readiness: no exit.
    wait_status(&at, "/livez", 503, T);
    util::wait_until("ten failed probes", T, || {
        metrics(&at)
            .get("kai_init_probes_total", &[("result", "failure")])
            .is_some_and(|n| n >= 10.0)
    });
    still_running_without_acting(&mut k);
    k.signal(libc::SIGTERM);
    assert_eq!(k.wait_exit(T).code(), Some(143), "{:?}", k.stderr);
    drop(held);
}
