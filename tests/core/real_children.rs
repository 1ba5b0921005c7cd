//! Real Node and Python children under kai-init as PID 1: SIGTERM (what `docker stop` and
//! Kubernetes send) reaches them, with or without a handler, and the exit code matches; a
//! Node parent with a Python worker is stopped whole by one `kill -TERM` of kai-init.

use std::time::Instant;

use crate::util::{self, python3, signal, start, Proc};
use crate::{assert_no_sigkill, pid1, py, T};

/// Starts `argv` under kai-init as PID 1, waits for `ready`, sends SIGTERM to kai-init and
/// returns (exit code, stdout).
fn term_after_ready(argv: &[&str]) -> (Option<i32>, Vec<String>) {
    let mut args = vec!["--"];
    args.extend(argv);
    let mut r = start(pid1(&args));
    r.wait_stdout("ready", T);
    signal(r.pid1(T), libc::SIGTERM);
    let status = r.wait_exit(T);
    assert_no_sigkill(&r.stderr);
    (status.code(), r.stdout.clone())
}

#[test]
fn node_with_sigterm_handler_exits_with_its_code() {
    let program = r#"
process.on('SIGTERM', () => { console.log('node got SIGTERM'); process.exit(23); });
console.log('ready');
setInterval(() => {}, 1 << 30);
"#;
    let (code, out) = term_after_ready(&["node", "-e", program]);
    assert_eq!(code, Some(23), "{out:#?}");
    assert!(out.iter().any(|l| l == "node got SIGTERM"), "{out:#?}");
}

#[test]
fn node_without_handler_dies_of_sigterm_143() {
    let program = "console.log('ready'); setInterval(() => {}, 1 << 30);";
    let (code, out) = term_after_ready(&["node", "-e", program]);
    assert_eq!(code, Some(143), "{out:#?}");
}

#[test]
fn python_with_sigterm_handler_exits_with_its_code() {
    let program = py(r#"
def on_term(n, frame):
    print("python got SIGTERM", flush=True)
    sys.exit(29)
signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
wait_forever()
"#);
    let (code, out) = term_after_ready(&[python3(), "-c", &program]);
    assert_eq!(code, Some(29), "{out:#?}");
    assert!(out.iter().any(|l| l == "python got SIGTERM"), "{out:#?}");
}

#[test]
fn python_without_handler_dies_of_sigterm_143() {
    let program = "import time\nprint('ready', flush=True)\nwhile True: time.sleep(60)";
    let (code, out) = term_after_ready(&[python3(), "-c", program]);
    assert_eq!(code, Some(143), "{out:#?}");
}

/// Node parent with a Python worker (child_process.spawn, same process group). The worker
/// is the process kai-init never started: kai-init tells only the main child, and the
/// parent passes the stop on to its worker, as a real master does.
fn node_and_python_worker(node_program: &str, worker: &str) -> (Option<i32>, Vec<String>) {
    let mut r = start(pid1(&[
        "--stop-timeout",
        "60s",
        "--",
        "node",
        "-e",
        node_program,
        python3(),
        worker,
    ]));
    r.wait_stdout("node ready", T);
    r.wait_stdout("worker ready", T);
    let kai_pid = r.pid1(T);
    let everyone: Vec<Proc> = util::descendants(kai_pid)
        .into_iter()
        .filter_map(Proc::of)
        .collect();
    assert!(everyone.len() >= 2, "node and its worker run");
    let sent = Instant::now();
    signal(kai_pid, libc::SIGTERM);
    let status = r.wait_exit(T);
    // Both stopped on the one TERM, not by the SIGKILL 60 s later.
    assert!(sent.elapsed() < T, "took {:?}", sent.elapsed());
    assert_no_sigkill(&r.stderr);
    for p in everyone {
        assert!(!p.exists(), "pid {} is left behind", p.pid);
    }
    (status.code(), r.stdout.clone())
}

#[test]
fn node_parent_and_python_worker_stop_gracefully_on_one_term() {
    let node = r#"
const { spawn } = require('child_process');
const worker = spawn(process.argv[1], ['-c', process.argv[2]], { stdio: 'inherit' });
// The parent owns its worker: on SIGTERM it tells the worker and leaves once the worker
// has gone. Lines are written synchronously: console.log to a pipe is asynchronous, and
// process.exit() drops what it has not written yet.
const say = (line) => require('fs').writeSync(1, line + '\n');
process.on('SIGTERM', () => { say('node got SIGTERM'); worker.kill('SIGTERM'); });
worker.on('exit', (code, sig) => {
  say(`worker exited code=${code} signal=${sig}`);
  process.exit(0);
});
say('node ready');
"#;
    let worker = py(r#"
def on_term(n, frame):
    print("worker got SIGTERM", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
print("worker ready", flush=True)
wait_forever()
"#);
    let (code, out) = node_and_python_worker(node, &worker);
    assert_eq!(code, Some(0), "{out:#?}");
    for line in [
        "node got SIGTERM",
        "worker got SIGTERM",
        "worker exited code=0 signal=null",
    ] {
        assert!(out.iter().any(|l| l == line), "missing {line:?}: {out:#?}");
    }
}

#[test]
fn node_parent_and_python_worker_without_handlers_both_die_of_term() {
    let node = r#"
const { spawn } = require('child_process');
spawn(process.argv[1], ['-c', process.argv[2]], { stdio: 'inherit' });
console.log('node ready');
"#;
    let worker = "import time\nprint('worker ready', flush=True)\nwhile True: time.sleep(60)";
    let (code, out) = node_and_python_worker(node, worker);
    assert_eq!(code, Some(143), "{out:#?}");
}
