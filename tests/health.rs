//! Integration tests of the health side (issue 3), against the real kai-init binary with
//! real Node and Python children and real HTTP over loopback TCP and abstract Unix
//! sockets: the endpoint's semantics and formats, probes, sd_notify and fd readiness, the
//! watchdog, `kai-init check`, and abuse (idle floods, garbage, oversized heads).
//!
//! Rules every test here keeps: wait for facts (a line, an HTTP status, a metric), not for
//! time (the only fixed intervals measure that nothing happens in them); every wait has a
//! deadline; every process is killed and reaped by its guard; socket names and ports are
//! unique per test, so the tests run in parallel with each other and with tests/core.rs.

mod util;

#[path = "health/abuse.rs"]
mod abuse;
#[path = "health/check.rs"]
mod check;
#[path = "health/endpoint.rs"]
mod endpoint;
#[path = "health/exec_words.rs"]
mod exec_words;
#[path = "health/hostile.rs"]
mod hostile;
#[path = "health/lifecycle_events.rs"]
mod lifecycle_events;
#[path = "health/notify.rs"]
mod notify;
#[path = "health/oom.rs"]
mod oom;
#[path = "health/probes.rs"]
mod probes;
#[path = "health/start.rs"]
mod start;
#[path = "health/starting.rs"]
mod starting;
#[path = "health/strangers.rs"]
mod strangers;
#[path = "health/unhealthy.rs"]
mod unhealthy;
#[path = "health/workdir.rs"]
mod workdir;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The deadline for any single wait: generous for a loaded CI machine; a passing test
/// never waits this long (it waits for a fact).
pub const T: Duration = Duration::from_secs(30);

/// `kai-init ARGS` (a subreaper, not PID 1) with no KAI_INIT_* or NOTIFY_SOCKET from the
/// caller's environment, and the default socket off unless the test names its own.
pub fn kai(args: &[&str]) -> Command {
    hermetic(util::kai(args))
}

/// `kai-init ARGS` as PID 1 of a new PID namespace, with the same clean environment.
pub fn hermetic_pid1(args: &[&str]) -> Command {
    hermetic(util::kai_pid1(args))
}

pub fn hermetic(mut cmd: Command) -> Command {
    for (key, _) in std::env::vars_os() {
        let key_s = key.to_string_lossy();
        if key_s.starts_with("KAI_INIT_")
            || ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"].contains(&&*key_s)
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("KAI_INIT_HEALTH_SOCKET", "off");
    cmd
}

/// A socket name no other test (or test run) uses.
pub fn socket_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "kai-test-{tag}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub use util::free_port;

/// Where a kai-init serves its endpoint.
#[derive(Debug, Clone)]
pub enum At {
    Tcp(u16),
    Unix(String),
}

pub enum Conn {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl At {
    pub fn connect(&self) -> io::Result<Conn> {
        let timeout = Some(Duration::from_secs(5));
        Ok(match self {
            At::Tcp(port) => {
                let s = std::net::TcpStream::connect(("127.0.0.1", *port))?;
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)?;
                Conn::Tcp(s)
            }
            At::Unix(name) => {
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
                let s = std::os::unix::net::UnixStream::connect_addr(&addr)?;
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)?;
                Conn::Unix(s)
            }
        })
    }

    /// The `--health-*` flag that serves this.
    pub fn flag(&self) -> String {
        match self {
            At::Tcp(port) => format!("--health-listen=127.0.0.1:{port}"),
            At::Unix(name) => format!("--health-socket=@{name}"),
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `raw` as is and reads until the server closes (requests say Connection: close).
///
/// A server that answers without reading a request body closes with unread bytes, so
/// the kernel resets the connection: the write may fail and the read end in ECONNRESET
/// after the answer arrived. What arrived is kept; only a connection that yields nothing
/// at all is an error.
pub fn exchange(at: &At, raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut c = at.connect()?;
    let wrote = c.write_all(raw);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if out.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    match wrote {
        Err(e) if out.is_empty() => Err(e),
        _ => Ok(out),
    }
}

/// Splits one HTTP/1.1 response (the first, if several are pipelined).
pub fn parse_response(data: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(data);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(body.len(), |(_, v)| v.parse().expect("content-length"));
    Resp {
        status,
        headers,
        body: body.chars().take(len).collect(),
    }
}

/// `METHOD path` with extra header lines, Connection: close.
pub fn request(at: &At, method: &str, path: &str, extra: &str) -> io::Result<Resp> {
    let raw = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\n\r\n");
    let data = exchange(at, raw.as_bytes())?;
    if data.is_empty() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no response"));
    }
    Ok(parse_response(&data))
}

pub fn get(at: &At, path: &str) -> Resp {
    request(at, "GET", path, "").unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Polls `path` until it answers `code`; returns that answer.
pub fn wait_status(at: &At, path: &str, code: u16, timeout: Duration) -> Resp {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        match request(at, "GET", path, "") {
            Ok(r) if r.status == code => return r,
            Ok(r) => last = Some(format!("{} {}", r.status, r.body)),
            Err(e) => last = Some(format!("error: {e}")),
        }
        assert!(
            Instant::now() < deadline,
            "{path} did not answer {code} within {timeout:?}; last: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `path` until its body contains `needle`; returns that answer, or panics with
/// the last body seen.
pub fn wait_body(at: &At, path: &str, needle: &str, timeout: Duration) -> Resp {
    let deadline = Instant::now() + timeout;
    loop {
        let r = request(at, "GET", path, "");
        if let Ok(r) = &r {
            if r.body.contains(needle) {
                return r.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{path} did not say {needle:?} within {timeout:?}; last: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pid in `[+]child ok: pid N` of `/livez?verbose`.
pub fn child_pid(at: &At) -> i32 {
    let body = get(at, "/livez?verbose").body;
    body.lines()
        .find_map(|l| l.strip_prefix("[+]child ok: pid "))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no child pid in {body}"))
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: i32) -> u64 {
    let line = util::status_line(pid, "VmRSS").expect("VmRSS");
    line.split_whitespace().next().unwrap().parse().unwrap()
}

/// A Prometheus text exposition, every line checked while parsing.
#[derive(Debug)]
pub struct Metrics {
    pub types: HashMap<String, String>,
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Metrics {
    /// Parses `text`, panicking on any line that is not valid exposition format 0.0.4:
    /// HELP and TYPE once per family and before its samples, metric names and label
    /// names of the allowed characters, quoted label values, numeric values, no
    /// duplicate series.
    pub fn parse(text: &str) -> Metrics {
        let valid_name = |n: &str| {
            !n.is_empty()
                && !n.starts_with(|c: char| c.is_ascii_digit())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        };
        let mut types = HashMap::new();
        let mut helps = HashMap::new();
        let mut samples = Vec::new();
        let mut seen = std::collections::HashSet::new();
        assert!(text.ends_with('\n'), "exposition must end with a newline");
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("HELP name text");
                assert!(valid_name(name), "bad name in {line:?}");
                assert!(!help.is_empty());
                assert!(
                    helps.insert(name.to_owned(), help.to_owned()).is_none(),
                    "HELP twice: {line}"
                );
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                assert!(valid_name(name), "bad name in {line:?}");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "bad type in {line:?}"
                );
                assert!(
                    types.insert(name.to_owned(), kind.to_owned()).is_none(),
                    "TYPE twice: {line}"
                );
            } else {
                assert!(
                    !line.starts_with('#') && !line.is_empty(),
                    "unexpected line {line:?}"
                );
                let (series, value) = line.rsplit_once(' ').expect("series value");
                let value: f64 = match value {
                    "+Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    v => v
                        .parse()
                        .unwrap_or_else(|_| panic!("bad value in {line:?}")),
                };
                let (name, labels) = match series.split_once('{') {
                    None => (series, BTreeMap::new()),
                    Some((name, rest)) => {
                        let inner = rest.strip_suffix('}').expect("closing brace");
                        let mut labels = BTreeMap::new();
                        for pair in inner.split(',') {
                            let (k, v) = pair.split_once('=').expect("label=value");
                            assert!(
                                valid_name(k) && !k.starts_with("__"),
                                "bad label in {line:?}"
                            );
                            let v = v
                                .strip_prefix('"')
                                .and_then(|v| v.strip_suffix('"'))
                                .unwrap_or_else(|| panic!("unquoted label value in {line:?}"));
                            labels.insert(k.to_owned(), v.to_owned());
                        }
                        (name, labels)
                    }
                };
                assert!(valid_name(name), "bad metric name in {line:?}");
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| {
                        let base = name.strip_suffix(s)?;
                        (types.get(base).map(String::as_str) == Some("histogram")).then_some(base)
                    })
                    .unwrap_or(name);
                assert!(
                    types.contains_key(family),
                    "sample before its TYPE: {line:?}"
                );
                assert!(helps.contains_key(family), "sample without HELP: {line:?}");
                assert!(seen.insert(series.to_owned()), "duplicate series {series}");
                samples.push((name.to_owned(), labels, value));
            }
        }
        // Histograms: cumulative buckets ending in +Inf, which equals _count.
        for (family, _) in types.iter().filter(|(_, k)| *k == "histogram") {
            let buckets: Vec<(f64, f64)> = samples
                .iter()
                .filter(|(n, _, _)| *n == format!("{family}_bucket"))
                .map(|(_, l, v)| {
                    let le = match l["le"].as_str() {
                        "+Inf" => f64::INFINITY,
                        le => le.parse().expect("le"),
                    };
                    (le, *v)
                })
                .collect();
            assert!(
                buckets
                    .windows(2)
                    .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                "{family}: buckets not cumulative"
            );
            let inf = buckets.last().expect("an +Inf bucket");
            assert!(inf.0.is_infinite());
            let count = samples
                .iter()
                .find(|(n, _, _)| *n == format!("{family}_count"))
                .expect("_count")
                .2;
            assert_eq!(inf.1, count, "{family}: +Inf bucket != _count");
        }
        Metrics { types, samples }
    }

    /// The value of the series `name{labels}` (labels must match exactly).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && *l == want)
            .map(|(_, _, v)| *v)
    }

    pub fn value(&self, name: &str) -> f64 {
        self.get(name, &[])
            .unwrap_or_else(|| panic!("no sample {name}"))
    }
}

pub fn metrics(at: &At) -> Metrics {
    let r = get(at, "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    Metrics::parse(&r.body)
}

/// A Node HTTP server for children: listens on $PORT at once when $LISTEN_NOW is set,
/// otherwise on its first SIGUSR2; prints `node: started`, `node: listening`,
/// `node: got USR2`, `node: got TERM` (and exits 0 on TERM) on stdout, where tests wait
/// for them with `wait_stdout` (kai-init's own log lines are on stderr).
/// `/needs-header` answers 200 only with `X-Probe: yes`.
pub const NODE_SERVER: &str = r#"
const http = require('http');
let server = null;
function listen() {
  if (server) return;
  server = http.createServer((req, res) => {
    if (req.url === '/needs-header') {
      res.statusCode = req.headers['x-probe'] === 'yes' ? 200 : 400;
    }
    res.end('hello');
  });
  server.listen(+process.env.PORT, '127.0.0.1', () => console.log('node: listening'));
}
process.on('SIGUSR2', () => { console.log('node: got USR2'); listen(); });
process.on('SIGTERM', () => { console.log('node: got TERM'); process.exit(0); });
if (process.env.LISTEN_NOW) listen();
setInterval(() => {}, 1 << 30);
console.log('node: started');
"#;

/// kai-init ARGS -- node -e NODE_SERVER, with the server's port in $PORT.
pub fn node_server(args: &[&str], port: u16, listen_now: bool) -> util::Running {
    let mut cmd = kai(args);
    cmd.args(["--", "node", "-e", NODE_SERVER]);
    cmd.env("PORT", port.to_string());
    if listen_now {
        cmd.env("LISTEN_NOW", "1");
    }
    util::start(cmd)
}

/// `outer ... PROGRAM ARGS...`: `inner`'s command line appended to `outer`'s, with
/// `inner`'s environment changes (the hermetic clean-up included) carried over, so that a
/// wrapper (a shell's `ulimit`, unshare) can run kai-init as the test built it.
pub fn wrapped(mut outer: Command, inner: &Command) -> Command {
    outer.arg(inner.get_program()).args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(v) => outer.env(key, v),
            None => outer.env_remove(key),
        };
    }
    outer
}

/// SIGTERM to kai-init: its child dies of the forwarded signal, so kai-init exits with
/// 128 + 15 (within the deadline).
pub fn term_exits_143(running: &mut util::Running) {
    running.signal(15);
    assert_eq!(running.wait_exit(T).code(), Some(143));
}

/// Waits until `path` answers `code`, and asserts that this answer's body says `needle`.
pub fn wait_status_saying(at: &At, path: &str, code: u16, needle: &str) {
    let r = wait_status(at, path, code, T);
    assert!(r.body.contains(needle), "{}", r.body);
}
