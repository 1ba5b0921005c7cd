//! The endpoint with a real Node server as the child: readiness follows the server's
//! listening socket, a stopped child goes unready then unlive and recovers, SIGTERM with
//! --drain-delay, and every path, method, format and metric.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::util::{self, wait_until};
use crate::{get, metrics, node_server, request, socket_name, wait_status, At, T};

const SIGTERM: i32 = 15;
const SIGUSR2: i32 = 12;
const SIGSTOP: i32 = 19;
const SIGCONT: i32 = 18;

#[test]
fn ready_only_after_the_server_listens() {
    let port = crate::free_port();
    let at = At::Unix(socket_name("listens"));
    let probe = format!("--probe=http://127.0.0.1:{port}/");
    // Failures never reach the liveness limit here: this test is about readiness.
    let mut kai = node_server(
        &[
            &at.flag(),
            &probe,
            "--probe-interval=100ms",
            "--probe-failures=1000",
        ],
        port,
        false,
    );
    kai.wait_stdout("node: started", T);
    wait_status(&at, "/livez", 200, T);
    // The server is not listening until it gets SIGUSR2: several failed probes in, the
    // child is live but neither ready nor started.
    wait_until("three failed probes", T, || {
        metrics(&at).get("kai_init_probes_total", &[("result", "failure")]) >= Some(3.0)
    });
    let r = get(&at, "/readyz?verbose");
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.body
            .contains("[-]probe failed: cannot connect to 127.0.0.1:"),
        "{}",
        r.body
    );
    assert!(r.body.ends_with("readyz check failed\n"), "{}", r.body);
    assert_eq!(get(&at, "/healthz").status, 503);
    assert_eq!(get(&at, "/startupz").status, 503);
    assert_eq!(get(&at, "/livez").status, 200);
    assert_eq!(metrics(&at).value("kai_init_started"), 0.0);
    // In health+json: failing probes under the limit are a warning for liveness (200),
    // a failure for readiness (503), each with the probe's output.
    let live = get(&at, "/livez?format=json");
    assert_eq!(live.status, 200);
    let doc: serde_json::Value = serde_json::from_str(&live.body).unwrap();
    assert_eq!(doc["status"], "warn", "{}", live.body);
    let probe = &doc["checks"]["probe:responseTime"][0];
    assert_eq!(probe["status"], "warn");
    assert!(
        probe["output"]
            .as_str()
            .unwrap()
            .contains("in a row, limit 1000"),
        "{}",
        live.body
    );
    assert!(probe["consecutiveFailures"].as_u64().unwrap() >= 3);
    let ready = get(&at, "/readyz?format=json");
    assert_eq!(ready.status, 503);
    let doc: serde_json::Value = serde_json::from_str(&ready.body).unwrap();
    assert_eq!(doc["status"], "fail");
    assert_eq!(doc["checks"]["probe:responseTime"][0]["status"], "fail");
    assert_eq!(doc["checks"]["shutdown"][0]["status"], "pass");

    kai.signal(SIGUSR2);
    kai.wait_stdout("node: listening", T);
    let r = wait_status(&at, "/readyz", 200, T);
    assert_eq!(r.body, "ok");
    assert_eq!(get(&at, "/startupz").status, 200);
    assert_eq!(get(&at, "/healthz").body, "ok");
    kai.wait_line("child is ready", T);
    kai.signal(SIGTERM);
    assert_eq!(kai.wait_exit(T).code(), Some(0));
}

#[test]
fn a_stopped_child_goes_unready_then_unlive_and_comes_back() {
    let port = crate::free_port();
    let at = At::Tcp(crate::free_port());
    let (interval, timeout, failures) = (200, 200, 3);
    let mut kai = node_server(
        &[
            &at.flag(),
            &format!("--probe=http://127.0.0.1:{port}/"),
            &format!("--probe-interval={interval}ms"),
            &format!("--probe-timeout={timeout}ms"),
            &format!("--probe-failures={failures}"),
        ],
        port,
        true,
    );
    kai.wait_stdout("node: listening", T);
    wait_status(&at, "/readyz", 200, T);
    let node = crate::child_pid(&at);

    assert!(util::signal(node, SIGSTOP));
    let stopped = Instant::now();
    // The next probe times out: not ready at once, still live.
    let r = wait_status(&at, "/readyz?verbose", 503, T);
    let unready = stopped.elapsed();
    assert!(
        r.body.contains("[-]probe failed: timed out after 200ms"),
        "{}",
        r.body
    );
    wait_status(&at, "/livez", 503, T);
    let unlive = stopped.elapsed();
    // Within the window the flags promise: failures x interval, plus one probe's timeout
    // and slack for a slow machine; and strictly after readiness went.
    let window = Duration::from_millis(failures * interval + timeout);
    assert!(
        unready < unlive,
        "readyz ({unready:?}) must fail before livez ({unlive:?})"
    );
    assert!(
        unlive < window + Duration::from_millis(1500),
        "not live after {unlive:?}, window {window:?}"
    );
    let r = get(&at, "/livez?verbose");
    assert!(
        r.body
            .contains("[-]probe failed: timed out after 200ms (3 in a row, limit 3)"),
        "{}",
        r.body
    );
    let m = metrics(&at);
    assert_eq!(m.value("kai_init_live"), 0.0);
    assert_eq!(m.value("kai_init_ready"), 0.0);
    assert!(m.value("kai_init_probe_consecutive_failures") >= 3.0);
    assert_eq!(m.value("kai_init_probe_success"), 0.0);

    assert!(util::signal(node, SIGCONT));
    let resumed = Instant::now();
    wait_status(&at, "/livez", 200, T);
    wait_status(&at, "/readyz", 200, T);
    assert!(
        resumed.elapsed() < Duration::from_secs(3),
        "recovered after {:?}",
        resumed.elapsed()
    );
    assert!(kai.wait_line("probe passes again", T).contains("after="));
    kai.signal(SIGTERM);
    assert_eq!(kai.wait_exit(T).code(), Some(0));
}

#[test]
fn sigterm_fails_readyz_while_the_drain_delay_holds_the_child() {
    let port = crate::free_port();
    let at = At::Unix(socket_name("drain"));
    let drain = Duration::from_millis(1500);
    let mut kai = node_server(
        &[
            &at.flag(),
            &format!("--probe=tcp://127.0.0.1:{port}"),
            "--probe-interval=100ms",
            "--drain-delay=1500ms",
        ],
        port,
        true,
    );
    kai.wait_stdout("node: listening", T);
    wait_status(&at, "/readyz", 200, T);
    let node = util::Proc::of(crate::child_pid(&at)).expect("node");

    kai.signal(SIGTERM);
    let sent = Instant::now();
    let r = wait_status(&at, "/readyz?verbose", 503, T);
    let failed_after = sent.elapsed();
    assert!(
        failed_after < drain,
        "readyz failed only after {failed_after:?}"
    );
    assert!(
        r.body.contains("[-]shutdown failed: kai-init is stopping"),
        "{}",
        r.body
    );
    // Draining: the child still runs, has not been told, and is still live.
    assert!(node.alive());
    assert_eq!(get(&at, "/livez").status, 200);
    let m = metrics(&at);
    assert_eq!(m.value("kai_init_draining"), 1.0);
    assert_eq!(m.value("kai_init_ready"), 0.0);
    kai.drain();
    assert!(
        !kai.stdout.iter().any(|l| l == "node: got TERM"),
        "TERM forwarded during the drain"
    );

    kai.wait_stdout("node: got TERM", T);
    let forwarded_after = sent.elapsed();
    assert!(
        forwarded_after >= drain - Duration::from_millis(50),
        "TERM reached the child after {forwarded_after:?}, before the {drain:?} drain"
    );
    assert_eq!(kai.wait_exit(T).code(), Some(0));
}

/// Every path with GET and HEAD, other methods, bodies, `?verbose`, health+json by query
/// and by Accept, and /metrics parsed line by line with exact request counts.
#[test]
fn every_path_method_and_format() {
    let port = crate::free_port();
    let at = At::Tcp(crate::free_port());
    let mut kai = node_server(
        &[
            &at.flag(),
            &format!("--probe=http://127.0.0.1:{port}/"),
            "--probe-interval=100ms",
        ],
        port,
        true,
    );
    kai.wait_stdout("node: listening", T);
    wait_status(&at, "/readyz", 200, T);
    let pid = crate::child_pid(&at);
    // Requests before this point are not counted below.
    let base = metrics(&at);
    let mut expected: BTreeMap<(String, String), f64> = BTreeMap::new();
    for s in &base.samples {
        if s.0 == "kai_init_http_requests_total" {
            expected.insert((s.1["path"].clone(), s.1["code"].clone()), s.2);
        }
    }
    let mut count = |path: &str, code: u16| {
        *expected
            .entry((path.to_owned(), code.to_string()))
            .or_default() += 1.0;
    };
    count("/metrics", 200); // `base` itself

    for path in ["/livez", "/readyz", "/healthz", "/startupz"] {
        let r = get(&at, path);
        assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{path}");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
        count(path, 200);
        let h = request(&at, "HEAD", path, "").unwrap();
        assert_eq!((h.status, h.body.as_str()), (200, ""), "HEAD {path}");
        assert_eq!(h.header("content-length"), Some("2"), "HEAD {path}");
        assert_eq!(h.header("cache-control"), Some("no-store"));
        count(path, 200);
    }
    for (path, label, code) in [
        ("/livez/ping", "/livez/ping", 200),
        ("/livez/child", "/livez/child", 200),
        ("/livez/probe", "/livez/probe", 200),
        ("/readyz/probe", "/readyz/probe", 200),
        ("/readyz/shutdown", "/readyz/shutdown", 200),
        ("/livez/shutdown", "/livez/shutdown", 404),
        ("/readyz/notify", "/readyz/notify", 404),
        ("/livez/nonsense", "other", 404),
        ("/", "other", 404),
        ("/livez/", "other", 404),
        ("/metricsz", "other", 404),
    ] {
        let r = get(&at, path);
        assert_eq!(r.status, code, "{path}: {}", r.body);
        if code == 200 {
            assert_eq!(r.body, "ok");
        }
        count(label, code);
    }
    let r = get(&at, "/livez/child?verbose");
    assert_eq!(r.body, format!("[+]child ok: pid {pid}\n"));
    count("/livez/child", 200);

    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let r = request(&at, method, "/livez", "").unwrap();
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
        count("/livez", 405);
    }
    let r = request(&at, "GET", "/readyz", "Content-Length: 5\r\n").unwrap();
    assert_eq!(r.status, 413);
    count("/readyz", 413);
    let r = request(&at, "GET", "/readyz", "Transfer-Encoding: chunked\r\n").unwrap();
    assert_eq!(r.status, 413);
    count("/readyz", 413);

    // ?verbose: apiserver's lines, one per check, then the verdict.
    for (path, word, names) in [
        ("/livez?verbose", "livez", vec!["ping", "child", "probe"]),
        (
            "/readyz?verbose",
            "readyz",
            vec!["ping", "child", "probe", "shutdown"],
        ),
        (
            "/healthz?verbose=1",
            "healthz",
            vec!["ping", "child", "probe", "shutdown"],
        ),
        ("/startupz?verbose", "startupz", vec!["ping", "started"]),
    ] {
        let r = get(&at, path);
        assert_eq!(r.status, 200);
        let lines: Vec<&str> = r.body.lines().collect();
        assert_eq!(
            lines.last(),
            Some(&format!("{word} check passed").as_str()),
            "{path}"
        );
        let seen: Vec<&str> = lines[..lines.len() - 1]
            .iter()
            .map(|l| {
                let rest = l
                    .strip_prefix("[+]")
                    .unwrap_or_else(|| panic!("{path}: {l}"));
                let name = rest.split(' ').next().unwrap();
                assert!(rest[name.len()..].starts_with(" ok"), "{path}: {l}");
                name
            })
            .collect();
        assert_eq!(seen, names, "{path}");
        count(path.split('?').next().unwrap(), 200);
    }

    // health+json, by Accept and by query.
    for (path, extra) in [
        ("/readyz", "Accept: application/health+json\r\n"),
        ("/readyz?format=json", ""),
    ] {
        let r = request(&at, "GET", path, extra).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/health+json"));
        let doc: serde_json::Value = serde_json::from_str(&r.body).expect("valid JSON");
        assert_eq!(doc["status"], "pass");
        assert_eq!(doc["serviceId"], "kai-init");
        let checks = doc["checks"].as_object().expect("checks");
        let uptime = &checks["child:uptime"][0];
        assert_eq!(uptime["status"], "pass");
        assert_eq!(uptime["componentId"], pid.to_string());
        assert_eq!(uptime["observedUnit"], "s");
        assert!(uptime["observedValue"].as_f64().unwrap() > 0.0);
        assert_eq!(checks["child:restarts"][0]["observedValue"], 0);
        let probe = &checks["probe:responseTime"][0];
        assert_eq!(probe["componentId"], format!("http://127.0.0.1:{port}/"));
        // The last probe's duration, in seconds: a real HTTP exchange takes some time, a
        // passing probe no longer than --probe-timeout (1 s by default), and it is one of
        // the probes the histogram has summed (read after, so it includes it). A value in
        // another unit, a stale zero or a made-up figure fails one of these.
        let took = probe["observedValue"].as_f64().unwrap();
        assert_eq!(probe["observedUnit"], "s");
        assert_eq!(probe["consecutiveFailures"], 0);
        assert!(took > 0.0 && took <= 1.0, "probe took {took} s");
        let summed = metrics(&at).value("kai_init_probe_duration_seconds_sum");
        count("/metrics", 200);
        assert!(took <= summed, "last probe {took} s, all probes {summed} s");
        assert_eq!(checks["shutdown"][0]["status"], "pass");
        count("/readyz", 200);
    }
    let r = request(&at, "GET", "/livez/probe?format=json", "").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&r.body).expect("valid JSON");
    assert_eq!(doc["checks"].as_object().unwrap().len(), 1);
    count("/livez/probe", 200);

    // A forwarded signal, for the metric.
    kai.signal(SIGUSR2);
    kai.wait_stdout("node: got USR2", T);

    let m = metrics(&at);
    assert_eq!(m.value("kai_init_child_up"), 1.0);
    assert_eq!(m.value("kai_init_child_pid"), pid as f64);
    assert_eq!(m.value("kai_init_child_restarts_total"), 0.0);
    assert_eq!(m.value("kai_init_live"), 1.0);
    assert_eq!(m.value("kai_init_ready"), 1.0);
    assert_eq!(m.value("kai_init_started"), 1.0);
    assert_eq!(m.value("kai_init_draining"), 0.0);
    assert_eq!(m.value("kai_init_probe_success"), 1.0);
    assert_eq!(
        m.get("kai_init_signals_forwarded_total", &[("signal", "SIGUSR2")]),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "kai_init_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    let start = m.value("kai_init_child_start_time_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        start <= now && start > now - 120.0,
        "start time {start} vs now {now}"
    );
    let ok = m
        .get("kai_init_probes_total", &[("result", "success")])
        .unwrap();
    let failed = m
        .get("kai_init_probes_total", &[("result", "failure")])
        .unwrap();
    assert!(ok >= 1.0);
    assert_eq!(
        m.value("kai_init_probe_duration_seconds_count"),
        ok + failed
    );
    assert!(m.value("kai_init_probe_duration_seconds_sum") > 0.0);
    assert_eq!(m.types["kai_init_probe_duration_seconds"], "histogram");
    assert_eq!(m.types["kai_init_http_requests_total"], "counter");
    assert!(
        m.get("kai_init_child_exit_code", &[]).is_none(),
        "no exit code while running"
    );
    // Request counts, exactly.
    let mut got: BTreeMap<(String, String), f64> = BTreeMap::new();
    for s in &m.samples {
        if s.0 == "kai_init_http_requests_total" {
            got.insert((s.1["path"].clone(), s.1["code"].clone()), s.2);
        }
    }
    assert_eq!(got, expected);

    kai.signal(SIGTERM);
    assert_eq!(kai.wait_exit(T).code(), Some(0));
}
