//! Health while starting (issue 10): during `--wait-for` waits and `--pre` steps the
//! endpoint already answers. /livez passes; /readyz, /healthz and /startupz fail with a
//! `starting` check whose line names the target (without its query string) or the step's
//! program (without its arguments); `kai-init check` prints that line; `/metrics` has
//! `kai_init_wait_seconds` and `kai_init_pre_seconds`, growing while the phase runs and
//! fixed once it is over. Facts are waited for: a line, an HTTP answer, a metric.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::Instant;

use crate::util::{self, TempDir};
use crate::{get, kai, metrics, socket_name, wait_status, At, T};

const SECRET: &str = "s3cr3t-Start-Token";

/// `kai-init check ARGS` against the socket `sock`; returns (code, its one line).
fn check(sock: &str, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(util::bin());
    cmd.arg("check").args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KAI_INIT_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("KAI_INIT_HEALTH_SOCKET", sock);
    let (status, stdout, stderr) = util::run(cmd, T);
    let out = format!("{stdout}{stderr}");
    assert_eq!(out.lines().count(), 1, "one line of output, got {out:?}");
    (status.code().expect("exit code"), out)
}

/// Serves `200 OK` to every request on `listener`, on a thread of its own.
fn serve_ok(listener: TcpListener) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
}

/// The `kai_init_wait_seconds` (or `_pre_`) gauge, which must be there.
fn seconds(at: &At, name: &str) -> f64 {
    metrics(at).value(name)
}

/// Reads `name` until it has grown past `than`, within the deadline (it grows while the
/// phase runs); returns the value.
fn grows(at: &At, name: &str, than: f64) -> f64 {
    let mut now = 0.0;
    util::wait_until(&format!("{name} to grow past {than}"), T, || {
        now = seconds(at, name);
        now > than
    });
    now
}

#[test]
fn during_a_wait_live_passes_and_ready_and_startup_name_the_target() {
    let sock = socket_name("starting-wait");
    let at = At::Unix(sock.clone());
    let port = crate::free_port();
    let target = format!("http://127.0.0.1:{port}/ready?token={SECRET}");
    let shown = format!("waiting for http://127.0.0.1:{port}/ready?...");
    let mut r = util::start(kai(&[
        &at.flag(),
        "--wait-for",
        &target,
        "--",
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ]));
    r.wait_line("waiting", T);
    // The first attempt's error arrives after the first refused connect.
    let ready = crate::wait_body(&at, "/readyz?verbose", "connection refused", T);
    assert_eq!(ready.status, 503, "{}", ready.body);
    let want = format!(
        "[+]ping ok\n[-]starting failed: {shown} (cannot connect to 127.0.0.1:{port}: connection refused)\nreadyz check failed\n"
    );
    assert_eq!(ready.body, want);
    let live = get(&at, "/livez?verbose");
    assert_eq!(live.status, 200, "{}", live.body);
    assert!(
        live.body.contains(&format!("[+]starting ok: {shown}")),
        "{}",
        live.body
    );
    assert_eq!(get(&at, "/livez").body, "ok");
    for path in ["/healthz", "/startupz", "/readyz/starting"] {
        let r = get(&at, path);
        assert_eq!(r.status, 503, "{path}: {}", r.body);
        assert!(
            r.body.contains(&format!("[-]starting failed: {shown}")),
            "{path}: {}",
            r.body
        );
    }
    let doc: serde_json::Value =
        serde_json::from_str(&get(&at, "/readyz?format=json").body).unwrap();
    assert_eq!(doc["status"], "fail");
    assert_eq!(doc["checks"]["starting"][0]["status"], "fail");

    // `kai-init check` prints the starting line; /livez passes.
    let (code, out) = check(&sock, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with(&format!(
            "unhealthy: @{sock}/healthz 503 [-]starting failed: {shown}"
        )),
        "{out}"
    );
    let (code, out) = check(&sock, &["--path", "/livez"]);
    assert_eq!(
        (code, out.as_str()),
        (0, format!("healthy: @{sock}/livez 200 ok").as_str())
    );

    let m = metrics(&at);
    assert_eq!(m.value("kai_init_live"), 1.0);
    assert_eq!(m.value("kai_init_ready"), 0.0);
    assert_eq!(m.value("kai_init_child_up"), 0.0);
    assert!(
        m.get("kai_init_pre_seconds", &[]).is_none(),
        "no --pre given"
    );
    let first = m.value("kai_init_wait_seconds");
    let waiting = grows(&at, "kai_init_wait_seconds", first);

    // The dependency comes up: COMMAND starts, the endpoint is about the child now.
    let up = Instant::now();
    serve_ok(TcpListener::bind(("127.0.0.1", port)).unwrap());
    r.wait_stdout("started", T);
    let ready = wait_status(&at, "/readyz?verbose", 200, T);
    assert!(!ready.body.contains("starting"), "{}", ready.body);
    assert!(ready.body.contains("[+]child ok: pid "), "{}", ready.body);
    assert_eq!(
        get(&at, "/readyz/starting").status,
        404,
        "no such check any more"
    );
    assert_eq!(wait_status(&at, "/startupz", 200, T).body, "ok");
    let done = seconds(&at, "kai_init_wait_seconds");
    assert!(done >= waiting, "{done} < {waiting}");
    assert!(
        done <= waiting + up.elapsed().as_secs_f64() + 0.1,
        "{done} is more than the wait took"
    );
    // Over: the gauge no longer moves (a second read, after the child's own start).
    r.wait_line("started child", T);
    assert_eq!(seconds(&at, "kai_init_wait_seconds"), done);
    r.drain();
    for line in r.stderr.iter().chain(&r.stdout) {
        assert!(!line.contains(SECRET), "the query string was shown: {line}");
    }
    crate::term_exits_143(&mut r);
}

#[test]
fn during_a_pre_step_ready_names_its_program_and_not_its_arguments() {
    let sock = socket_name("starting-pre");
    let at = At::Unix(sock.clone());
    let dir = TempDir::new("starting-pre");
    let fifo = dir.file("go");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // Step 2 says it runs, then blocks until the test writes a line into the FIFO.
    let blocking = format!("sh -c 'echo pre-running; read line < \"$1\"' {SECRET} {fifo}");
    let mut r = util::start(kai(&[
        &at.flag(),
        "--pre",
        "true",
        "--pre",
        &blocking,
        "--",
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ]));
    r.wait_stdout("pre-running", T);
    let shown = "running pre step 2 of 2: sh";
    for (path, code) in [
        ("/readyz?verbose", 503),
        ("/startupz", 503),
        ("/livez?verbose", 200),
    ] {
        let resp = get(&at, path);
        assert_eq!(resp.status, code, "{path}: {}", resp.body);
        let sign = if code == 200 {
            "[+]starting ok"
        } else {
            "[-]starting failed"
        };
        assert!(
            resp.body.contains(&format!("{sign}: {shown}\n")),
            "{path}: {}",
            resp.body
        );
        assert!(!resp.body.contains(SECRET), "{path}: {}", resp.body);
    }
    let (code, out) = check(&sock, &[]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out,
        format!("unhealthy: @{sock}/healthz 503 [-]starting failed: {shown}")
    );

    let m = metrics(&at);
    assert!(
        m.get("kai_init_wait_seconds", &[]).is_none(),
        "no --wait-for given"
    );
    let first = m.value("kai_init_pre_seconds");
    let running = grows(&at, "kai_init_pre_seconds", first);

    let released = Instant::now();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .and_then(|mut f| f.write_all(b"go\n"))
        .expect("release the step");
    r.wait_stdout("started", T);
    wait_status(&at, "/readyz", 200, T);
    let done = seconds(&at, "kai_init_pre_seconds");
    assert!(done >= running, "{done} < {running}");
    assert!(
        done <= running + released.elapsed().as_secs_f64() + 0.1,
        "{done}"
    );
    r.wait_line("started child", T);
    assert_eq!(seconds(&at, "kai_init_pre_seconds"), done, "still growing");
    // Both steps were reaped by kai-init, and counted.
    assert!(metrics(&at).value("kai_init_zombies_reaped_total") >= 2.0);
    r.drain();
    for line in &r.stderr {
        assert!(
            !line.contains(SECRET),
            "a step's argument was shown: {line}"
        );
    }
    crate::term_exits_143(&mut r);
}

/// Issue 17, item 17: a signal kai-init forwards to a pre step counts in
/// `kai_init_signals_forwarded_total` like one forwarded to COMMAND (the step's supervisor
/// keeps its own state, added to kai-init's when the step ends).
#[test]
fn a_signal_forwarded_to_a_pre_step_is_counted() {
    let at = At::Unix(socket_name("pre-forwarded"));
    let flag = at.flag();
    let step = "--pre=sh -c 'trap \"echo step: got USR1; exit 0\" USR1; echo step ready; \
                while :; do sleep 0.05; done'";
    let mut k = util::start(kai(&[
        &flag,
        step,
        "--",
        "sh",
        "-c",
        "echo main started; exec sleep 300",
    ]));
    k.wait_stdout("step ready", T);
    k.signal(libc::SIGUSR1);
    k.wait_stdout("step: got USR1", T);
    k.wait_stdout("main started", T);
    let m = metrics(&at);
    assert_eq!(
        m.get("kai_init_signals_forwarded_total", &[("signal", "SIGUSR1")]),
        Some(1.0),
        "{:?}",
        k.stderr
    );
}
