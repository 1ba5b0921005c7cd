//! Real master-worker servers under kai-init as PID 1 (issue 11): gunicorn from PyPI (sync
//! and gthread workers, `-w 2`) and Node's `cluster` module (a primary and 2 workers), each
//! signalled with HUP (its graceful reload) and TERM (its graceful stop) while a 2 s request
//! is in flight. With the default routing (signals go to the main child only) the request
//! completes with 200 and its body and kai-init exits 0. With `--signal-group all` (the old
//! default: the whole process group) the workers get the signal behind their master's back
//! and the in-flight request is dropped: these tests observe it, which is why the default
//! changed. Plus a wrapper that does not exec (`bash -c "node app.js; echo after"`): on TERM
//! the shell dies, and the app gets TERM once, from kai-init's clean-up of leftovers.
//!
//! gunicorn comes from PyPI into target/test-python (scripts/test installs it, pinned); the
//! fixtures are tests/fixtures/{gunicorn_app.py,node_cluster.js,node_app.js}. The client is
//! curl on 127.0.0.1, the ports are chosen by the kernel (port 0) and read from the
//! servers' own logs. Every step waits for a logged fact with a deadline.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{children, python3, signal, start, status_line, Running};
use crate::{assert_no_sigkill, pid1, T};

/// Generous enough for a loaded machine; the servers' graceful stops take ~2 s here.
const STOP_TIMEOUT: &str = "20s";

/// Where kai-init sends a signal: the default, or the whole group (`--signal-group all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Routing {
    Child,
    GroupAll,
}

impl Routing {
    /// kai-init's flags for this routing, with the generous --stop-timeout.
    fn flags(self) -> Vec<&'static str> {
        let mut args = vec!["--stop-timeout", STOP_TIMEOUT];
        if self == Routing::GroupAll {
            args.extend(["--signal-group", "all"]);
        }
        args
    }
}

fn repo(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

#[derive(Debug, Clone, Copy)]
enum Server {
    GunicornSync,
    GunicornGthread,
    NodeCluster,
}

impl Server {
    /// The server's command line (gunicorn: `-w 2` on a kernel-chosen loopback port,
    /// without its control socket, whose default path all parallel tests would share).
    fn argv(self) -> Vec<String> {
        let gunicorn = |extra: &[&str]| {
            let mut argv = vec![python3(), "-m", "gunicorn", "--no-control-socket"];
            argv.extend(["-w", "2", "-b", "127.0.0.1:0"]);
            argv.extend(extra);
            argv.push("gunicorn_app:app");
            argv.into_iter().map(str::to_owned).collect()
        };
        match self {
            Server::GunicornSync => gunicorn(&[]),
            Server::GunicornGthread => gunicorn(&["-k", "gthread", "--threads", "2"]),
            Server::NodeCluster => vec!["node".into(), repo("tests/fixtures/node_cluster.js")],
        }
    }

    /// kai-init running the server as PID 1, and the server's port once it listens.
    fn start(self, routing: Routing) -> (Running, u16) {
        let mut args = routing.flags();
        args.push("--");
        let argv = self.argv();
        args.extend(argv.iter().map(String::as_str));
        let mut cmd = pid1(&args);
        cmd.env(
            "PYTHONPATH",
            format!("{}:{}", gunicorn_site(), repo("tests/fixtures")),
        );
        let mut r = start(cmd);
        let port = match self {
            Server::NodeCluster => port_after(&r.wait_stdout("primary ready port=", T), "port="),
            Server::GunicornSync | Server::GunicornGthread => {
                // The arbiter logs its real address; both workers have loaded the app.
                let line = r.wait_line("Listening at: http://127.0.0.1:", T);
                wait_count(&mut r, "app loaded pid=", 2);
                port_after(&line, "127.0.0.1:")
            }
        };
        (r, port)
    }

    /// Waits until the server has finished the reload that HUP asked for.
    fn wait_reloaded(self, r: &mut Running) {
        match self {
            Server::NodeCluster => {
                r.wait_stdout("primary: rolling restart done", T);
            }
            _ => {
                r.wait_line("Handling signal: hup", T);
                // Two workers at start, two new ones after the reload.
                wait_count(r, "app loaded pid=", 4);
            }
        }
    }
}

/// Where scripts/test installs the pinned gunicorn from PyPI. Missing is a failure with
/// its cause, not a skip.
fn gunicorn_site() -> String {
    let site = repo("target/test-python");
    assert!(
        PathBuf::from(&site).join("gunicorn").is_dir(),
        "gunicorn is not installed in {site}: run scripts/test (its set-up step installs it)"
    );
    site
}

/// The number right after `key` in `line`.
fn port_after(line: &str, key: &str) -> u16 {
    let rest = &line[line.find(key).expect("key in line") + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no port in {line:?}"))
}

/// Waits until at least `n` stdout lines contain `needle` (with a deadline).
fn wait_count(r: &mut Running, needle: &str, n: usize) {
    let deadline = Instant::now() + T;
    loop {
        r.drain();
        if r.stdout.iter().filter(|l| l.contains(needle)).count() >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {n} lines containing {needle:?}\nstdout: {:#?}\nstderr: {:#?}",
            r.stdout,
            r.stderr
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A real HTTP client for GET http://127.0.0.1:PORT/slow, started now.
fn curl_slow(port: u16) -> Running {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "30",
        "-w",
        "\\nhttp_status=%{http_code}\\n",
    ])
    .arg(format!("http://127.0.0.1:{port}/slow"));
    start(cmd)
}

/// What the client got for the in-flight request.
#[derive(Debug)]
struct Reply {
    curl_code: Option<i32>,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

impl Reply {
    fn completed(&self) -> bool {
        self.curl_code == Some(0)
            && self.stdout.iter().any(|l| l == "slow done")
            && self.stdout.iter().any(|l| l == "http_status=200")
    }

    /// The connection was closed with no response (curl 52 "empty reply", 56 "recv
    /// failure: connection reset by peer").
    fn dropped(&self) -> bool {
        let said = |what: &str| self.stderr.iter().any(|l| l.contains(what));
        matches!(self.curl_code, Some(52 | 56))
            && (said("Empty reply from server") || said("Connection reset by peer"))
            && !self.stdout.iter().any(|l| l == "slow done")
    }
}

/// Starts `server` under kai-init, starts a 2 s request, and once the server has logged
/// that the request started, sends `sig` to kai-init. Returns kai-init (still running
/// for HUP) and what the client got.
fn signal_in_flight(server: Server, routing: Routing, sig: i32) -> (Running, Reply) {
    let (mut kai, port) = server.start(routing);
    let (reply, _) = request_and_signal(&mut kai, port, sig);
    (kai, reply)
}

/// Starts a 2 s request on `port` and, once the server under `kai` has logged that it
/// started, sends `sig` to kai-init. Returns what the client got and when `sig` went out.
fn request_and_signal(kai: &mut Running, port: u16, sig: i32) -> (Reply, Instant) {
    let mut client = curl_slow(port);
    kai.wait_stdout("request started", T);
    let sent = Instant::now();
    signal(kai.pid1(T), sig);
    let status = client.wait_exit(T);
    let reply = Reply {
        curl_code: status.code(),
        stdout: client.stdout.clone(),
        stderr: client.stderr.clone(),
    };
    (reply, sent)
}

/// `--signal-group all`: `sig` reaches the workers too and the request is cut. Returns
/// kai-init (maybe still running).
fn group_all_drops_request(server: Server, sig: i32) -> Running {
    let (kai, reply) = signal_in_flight(server, Routing::GroupAll, sig);
    assert!(
        reply.dropped(),
        "expected the request to be cut: {reply:#?}"
    );
    kai
}

/// `--signal-group all`, TERM: the request still completes and kai-init exits 0.
fn group_all_term_still_drains(server: Server) {
    let (mut kai, reply) = signal_in_flight(server, Routing::GroupAll, libc::SIGTERM);
    assert!(reply.completed(), "{reply:#?}");
    assert_eq!(kai.wait_exit(T).code(), Some(0), "{:#?}", kai.stderr);
}

/// TERMs kai-init and returns its exit code.
fn stop(kai: &mut Running) -> Option<i32> {
    signal(kai.pid1(T), libc::SIGTERM);
    let code = kai.wait_exit(T).code();
    assert_no_sigkill(&kai.stderr);
    code
}

/// Default routing, HUP: the server reloads, the request completes, a TERM then stops the
/// server with exit status 0.
fn hup_keeps_request(server: Server) {
    let (mut kai, reply) = signal_in_flight(server, Routing::Child, libc::SIGHUP);
    assert!(
        reply.completed(),
        "{server:?}: request cut by HUP: {reply:#?}"
    );
    server.wait_reloaded(&mut kai);
    assert_eq!(stop(&mut kai), Some(0), "{:#?}", kai.stdout);
}

/// Default routing, TERM: the server stops gracefully, the request completes, exit 0.
fn term_drains_request(server: Server) {
    let (mut kai, reply) = signal_in_flight(server, Routing::Child, libc::SIGTERM);
    assert!(
        reply.completed(),
        "{server:?}: request cut by TERM: {reply:#?}"
    );
    let code = kai.wait_exit(T).code();
    assert_eq!(code, Some(0), "{:#?}\n{:#?}", kai.stdout, kai.stderr);
    assert_no_sigkill(&kai.stderr);
}

#[test]
fn gunicorn_sync_hup_reloads_and_the_request_completes() {
    hup_keeps_request(Server::GunicornSync);
}

#[test]
fn gunicorn_sync_term_drains_the_request_and_exits_0() {
    term_drains_request(Server::GunicornSync);
}

#[test]
fn gunicorn_gthread_hup_reloads_and_the_request_completes() {
    hup_keeps_request(Server::GunicornGthread);
}

#[test]
fn gunicorn_gthread_term_drains_the_request_and_exits_0() {
    term_drains_request(Server::GunicornGthread);
}

#[test]
fn node_cluster_hup_rolls_workers_and_the_request_completes() {
    hup_keeps_request(Server::NodeCluster);
}

#[test]
fn node_cluster_term_drains_the_request_and_exits_0() {
    term_drains_request(Server::NodeCluster);
}

// ---------------------------------------------------------------------------------------
// `--signal-group all` (the old default): why the default changed.

/// gunicorn's workers reset HUP to its default action: a HUP sent to the whole group kills
/// the worker serving the request, and the arbiter reports it.
#[test]
fn group_all_gunicorn_sync_hup_drops_the_request() {
    group_all_gunicorn_hup(Server::GunicornSync);
}

#[test]
fn group_all_gunicorn_gthread_hup_drops_the_request() {
    group_all_gunicorn_hup(Server::GunicornGthread);
}

/// After the group HUP the arbiter replaces its dead workers and reloads; the TERM that
/// ends the test waits until it has exactly its two workers, each with the app loaded.
/// A worker still booting has not installed its own handlers yet, so gunicorn loses a TERM
/// sent then (to the whole group, or from its arbiter): CI saw the arbiter wait on such a
/// worker until kai-init's SIGKILL. The TERM goes to the arbiter alone: one to the whole
/// group (what kai-init does with its own TERM under `--signal-group all`) races gunicorn
/// itself, as this very test showed under qemu: the workers exit before the arbiter
/// handles its TERM, it boots replacements, and those lose the TERM it then sends them.
fn group_all_gunicorn_hup(server: Server) {
    let mut kai = group_all_drops_request(server, libc::SIGHUP);
    kai.wait_line("was sent SIGHUP!", T);
    wait_workers_loaded(&mut kai, 2);
    let arbiter = children(kai.pid1(T))[0];
    signal(arbiter, libc::SIGTERM);
    let code = kai.wait_exit(T).code();
    assert_no_sigkill(&kai.stderr);
    assert_eq!(code, Some(0), "{:#?}", kai.stdout);
}

/// Waits until the server under `kai` (its arbiter, kai-init's one child) has exactly `n`
/// children and each has logged "app loaded" with its pid as the namespace numbers it.
fn wait_workers_loaded(kai: &mut Running, n: usize) {
    let kai_pid = kai.pid1(T);
    let ns_pid = |pid: &i32| {
        let line = status_line(*pid, "NSpid")?;
        line.split_whitespace().last().map(str::to_owned)
    };
    let deadline = Instant::now() + T;
    loop {
        kai.drain();
        let workers: Vec<i32> = children(kai_pid)
            .iter()
            .flat_map(|m| children(*m))
            .collect();
        let loaded = |w: &i32| {
            ns_pid(w).is_some_and(|ns| {
                let said = format!("app loaded pid={ns} ");
                kai.stdout.iter().any(|l| l.contains(&said))
            })
        };
        if workers.len() == n && workers.iter().all(loaded) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "workers {workers:?} not {n}, each loaded: {:#?}",
            kai.stdout
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The cluster workers have no HUP handler (the primary coordinates the reload): a HUP to
/// the whole group kills them mid-request.
#[test]
fn group_all_node_cluster_hup_drops_the_request() {
    let mut kai = group_all_drops_request(Server::NodeCluster, libc::SIGHUP);
    // The primary replaces the killed workers (no exit status is asserted after this: a
    // group TERM now would kill the replacements too, racing the primary's own stop).
    kai.wait_stdout("signal=SIGHUP", T);
    kai.wait_stdout("primary: replacing a worker that died", T);
}

/// The workers die of the TERM sent to the whole group before their primary can disconnect
/// them gracefully.
#[test]
fn group_all_node_cluster_term_drops_the_request() {
    let mut kai = group_all_drops_request(Server::NodeCluster, libc::SIGTERM);
    let status = kai.wait_exit(T);
    assert!(
        kai.stdout.iter().any(|l| l.contains("signal=SIGTERM")),
        "{status:?} {:#?} {:#?}",
        kai.stdout,
        kai.stderr
    );
}

/// gunicorn's workers handle TERM as a graceful stop themselves, so a TERM to the whole
/// group still lets the request finish: the one row that was safe before.
#[test]
fn group_all_gunicorn_sync_term_still_drains_the_request() {
    group_all_term_still_drains(Server::GunicornSync);
}

#[test]
fn group_all_gunicorn_gthread_term_still_drains_the_request() {
    group_all_term_still_drains(Server::GunicornGthread);
}

// ---------------------------------------------------------------------------------------
// A wrapper that does not exec.

/// `bash -c "node app.js; echo after"` with a request in flight: TERM goes to bash, which
/// dies of it (exit status 143: kai-init passes the main child's status through); the app
/// gets exactly one TERM (kai-init's clean-up of leftovers), finishes the request and
/// stops gracefully well within the stop timeout.
fn wrapper_term(routing: Routing) -> (Running, Option<i32>, Reply, Duration) {
    let script = format!("node {}; echo after", repo("tests/fixtures/node_app.js"));
    let mut args = routing.flags();
    args.extend(["--", "bash", "-c", script.as_str()]);
    let mut kai = start(pid1(&args));
    let port = port_after(&kai.wait_stdout("app ready port=", T), "port=");
    let (reply, sent) = request_and_signal(&mut kai, port, libc::SIGTERM);
    let code = kai.wait_exit(T).code();
    (kai, code, reply, sent.elapsed())
}

/// The request completed, and the app got exactly one TERM and stopped gracefully.
fn assert_app_stopped_once(kai: &Running, reply: &Reply) {
    assert!(reply.completed(), "{reply:#?}");
    let out = &kai.stdout;
    assert!(
        out.iter()
            .any(|l| l == "app graceful shutdown complete terms=1"),
        "{out:#?}"
    );
    let terms = out.iter().filter(|l| l.contains("app got SIGTERM")).count();
    assert_eq!(terms, 1, "{out:#?}");
}

#[test]
fn wrapper_that_does_not_exec_app_gets_one_term_and_stops_gracefully() {
    let (kai, code, reply, took) = wrapper_term(Routing::Child);
    assert_app_stopped_once(&kai, &reply);
    let out = &kai.stdout;
    assert!(
        !out.iter().any(|l| l == "after"),
        "bash did not die: {out:#?}"
    );
    assert_eq!(code, Some(143), "bash dies of the TERM: {:#?}", kai.stderr);
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_no_sigkill(&kai.stderr);
}

/// With the group routing the app gets the TERM with bash (the group); when bash has died,
/// kai-init's clean-up of leftovers skips the processes that already had a stop signal,
/// so the app still sees exactly one TERM and stops gracefully.
#[test]
fn group_all_wrapper_app_gets_one_term_and_stops_gracefully() {
    let (kai, code, reply, _) = wrapper_term(Routing::GroupAll);
    assert_app_stopped_once(&kai, &reply);
    assert_eq!(code, Some(143), "{:#?}", kai.stderr);
}
