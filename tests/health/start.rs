//! Ready when the app is ready (issue 9): until the first probe passes kai-init probes
//! every --probe-start-interval, so /readyz follows the app's first listen within a
//! fraction of a second, not one --probe-interval later; the failures of a normal start
//! are not warnings; a start that never passes still fails /livez after
//! --probe-failures × --probe-interval, as before.

use std::time::{Duration, Instant};

use crate::util::{self, wait_until};
use crate::{get, kai, metrics, socket_name, wait_status, At, T};

/// An HTTP app that listens on $PORT after $DELAY seconds and says `app: listening`.
const APP: &str = r#"
import http.server, os, time
time.sleep(float(os.environ['DELAY']))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
s = http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H)
print('app: listening', flush=True)
s.serve_forever()
"#;

fn warnings(running: &util::Running) -> Vec<&String> {
    running
        .stderr
        .iter()
        .filter(|l| l.contains(": warn:") || l.contains(": error:"))
        .collect()
}

fn probes(at: &At, result: &str) -> f64 {
    metrics(at)
        .get("kai_init_probes_total", &[("result", result)])
        .expect("kai_init_probes_total")
}

#[test]
fn ready_follows_the_first_listen_not_the_probe_interval() {
    let port = crate::free_port();
    let at = At::Unix(socket_name("start"));
    let probe = format!("--probe=http://127.0.0.1:{port}/");
    let mut cmd = kai(&[
        &at.flag(),
        &probe,
        "--probe-interval=10s",
        "--",
        util::python3(),
        "-c",
        APP,
    ]);
    cmd.env("PORT", port.to_string()).env("DELAY", "0.5");
    let mut running = util::start(cmd);
    running.wait_stdout("app: listening", T);
    let listening = Instant::now();
    wait_status(&at, "/readyz", 200, T);
    let took = listening.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "ready {took:?} after the app listened (probe interval 10s)"
    );
    assert!(
        probes(&at, "failure") >= 1.0,
        "the first probe came too late to fail"
    );
    running.wait_line("first probe passed", T);
    running.drain();
    assert!(
        warnings(&running).is_empty(),
        "a normal start logged warnings: {:#?}",
        running.stderr
    );
    // Once passed, --probe-interval (10s) applies: nothing more in this second. (A fixed
    // wait: it measures that nothing happens in it.)
    let passed = probes(&at, "success");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        probes(&at, "success"),
        passed,
        "still probing at the start interval"
    );
    assert_eq!(
        probes(&at, "failure") + passed,
        metrics(&at).value("kai_init_probe_duration_seconds_count")
    );
}

#[test]
fn a_long_start_says_so_at_info_naming_the_last_error() {
    let port = crate::free_port();
    let at = At::Unix(socket_name("start-long"));
    let probe = format!("--probe=tcp://127.0.0.1:{port}");
    let mut running = util::start(kai(&[
        &at.flag(),
        &probe,
        "--probe-interval=30s",
        "--log-level=info",
        "--",
        "sleep",
        "60",
    ]));
    let line = running.wait_line("waiting for the first probe to pass", T);
    assert!(line.contains(": info:"), "{line}");
    assert!(line.contains("connection refused"), "{line}");
    running.drain();
    assert!(warnings(&running).is_empty(), "{:#?}", running.stderr);
    let waiting = running
        .stderr
        .iter()
        .filter(|l| l.contains("waiting for the first probe"))
        .count();
    assert_eq!(waiting, 1, "{:#?}", running.stderr);
    // Many probes ran, but only the first counts towards --probe-failures: still live.
    assert!(probes(&at, "failure") >= 10.0);
    assert_eq!(
        metrics(&at).value("kai_init_probe_consecutive_failures"),
        1.0
    );
    assert_eq!(get(&at, "/livez").status, 200);
}

#[test]
fn a_start_that_never_passes_fails_livez_after_the_usual_time() {
    let port = crate::free_port();
    let at = At::Unix(socket_name("start-never"));
    let probe = format!("--probe=tcp://127.0.0.1:{port}");
    let started = Instant::now();
    let mut running = util::start(kai(&[
        &at.flag(),
        &probe,
        "--probe-interval=3s",
        "--probe-start-interval=50ms",
        "--probe-failures=2",
        "--",
        "sleep",
        "60",
    ]));
    wait_status(&at, "/livez", 200, T);
    // Ten failed probes (0.5 s at 50 ms) are not two intervals' worth: in one scrape, ten
    // failures or more, of which only the first counts towards --probe-failures. (Said
    // with counts, not a stopwatch; how soon start probes see a listening app is
    // measured by bench/ready_after_listen.py.)
    let mut scrape = metrics(&at);
    wait_until("ten failed probes", T, || {
        scrape = metrics(&at);
        scrape.get("kai_init_probes_total", &[("result", "failure")]) >= Some(10.0)
    });
    assert_eq!(
        scrape.value("kai_init_probe_consecutive_failures"),
        1.0,
        "failed as if every start probe counted"
    );
    assert_eq!(get(&at, "/livez").status, 200);
    // The second counted failure comes one --probe-interval after the first (a lower
    // bound: a loaded machine can only make it later).
    wait_status(&at, "/livez", 503, T);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "/livez failed after {:?}, before one --probe-interval",
        started.elapsed()
    );
    running.wait_line("probe failed 2 times in a row; not live", T);
}
