//! The gRPC health client (issue 20, `kai_init::health::client::grpc`) against real
//! servers over loopback TCP: grpcio (Python, its C core's HTTP/2 and HPACK) and
//! @grpc/grpc-js (Node, nghttp2), both pinned and installed by scripts/test, run from the
//! fixtures tests/fixtures/grpc_server.{py,js}; and hostile peers written here, each of
//! which must end in a clear error before the deadline.
//!
//! These call the library directly; the CLI-level tests (`check grpc://`, `--probe`,
//! `--wait-for`) reuse the same fixtures. Every wait has a deadline; every server is
//! killed and reaped by its guard; ports are the kernel's (port 0).

mod util;

#[path = "../fuzz/fuzz_targets/grpc/checks.rs"]
mod checks;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use kai_init::health::client::grpc::{self, Error, Health};

/// The deadline for any wait on a fixture.
const T: Duration = Duration::from_secs(30);

fn repo(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// A fixture server: its stdin takes `set` commands, its stdout lines are read on a
/// thread. Dropping it kills and reaps the process.
struct Server {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    port: u16,
}

impl Server {
    fn start(mut cmd: Command) -> Server {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn fixture server");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut s = Server {
            child,
            stdin,
            lines,
            port: 0,
        };
        let ready = s.line();
        s.port = ready
            .strip_prefix("ready port=")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("not a ready line: {ready:?}"));
        s
    }

    fn line(&mut self) -> String {
        self.lines
            .recv_timeout(T)
            .expect("a line from the fixture server in time")
    }

    /// Sets `service`'s status and waits until the server says it has.
    fn set(&mut self, service: &str, status: &str) {
        writeln!(self.stdin, "set {service} {status}").unwrap();
        assert_eq!(self.line(), "ok");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python fixture. Missing grpcio is a failure with its cause, not a skip.
fn python(scenario: &str) -> Server {
    let site = repo("target/test-python-grpc");
    assert!(
        PathBuf::from(&site).join("grpc_health").is_dir(),
        "grpcio-health-checking is not installed in {site}: run scripts/test (set-up step)"
    );
    let mut cmd = Command::new(util::python3());
    cmd.arg(repo("tests/fixtures/grpc_server.py"))
        .arg(scenario)
        .env("PYTHONPATH", site);
    Server::start(cmd)
}

/// The Node fixture.
fn node(scenario: &str) -> Server {
    let modules = repo("target/test-node-grpc/node_modules");
    assert!(
        PathBuf::from(&modules).join("grpc-health-check").is_dir(),
        "grpc-health-check is not installed in {modules}: run scripts/test (set-up step)"
    );
    let mut cmd = Command::new("node");
    cmd.arg(repo("tests/fixtures/grpc_server.js"))
        .arg(scenario)
        .env("NODE_PATH", modules);
    Server::start(cmd)
}

/// One check of `service` on 127.0.0.1:`port`, the way the CLI will make it.
fn ask(port: u16, service: &str, timeout: Duration) -> Result<Health, Error> {
    let deadline = Instant::now() + timeout;
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    grpc::check(&mut s, &format!("127.0.0.1:{port}"), service, deadline)
}

fn ok(port: u16, service: &str) -> Result<Health, Error> {
    ask(port, service, Duration::from_secs(10))
}

/// The answers every real server must give (the fixtures' common scenario).
fn serving_scenario(s: &mut Server) {
    assert_eq!(ok(s.port, ""), Ok(Health::Serving));
    assert_eq!(ok(s.port, "svc"), Ok(Health::Serving));
    assert_eq!(ok(s.port, "down"), Ok(Health::NotServing));
    let unknown = ok(s.port, "nope").unwrap_err();
    assert!(
        matches!(unknown, Error::Status { code: 5, .. }),
        "{unknown:?}"
    );
    assert_eq!(
        unknown.to_string(),
        "unknown service (grpc-status NOT_FOUND)"
    );
    s.set("svc", "NOT_SERVING");
    assert_eq!(ok(s.port, "svc"), Ok(Health::NotServing));
    s.set("svc", "SERVING");
    assert_eq!(ok(s.port, "svc"), Ok(Health::Serving));
}

#[test]
fn python_serving_not_serving_unknown() {
    serving_scenario(&mut python("serving"));
}

#[test]
fn node_serving_not_serving_unknown() {
    serving_scenario(&mut node("serving"));
}

/// The `:authority` forms the CLI will send (a name, an IPv4 or bracketed IPv6 address,
/// always with the port) are accepted by both servers.
#[test]
fn authority_forms() {
    for s in [python("serving"), node("serving")] {
        for host in [
            "127.0.0.1",
            "localhost",
            "[::1]",
            "my-svc.default.svc.cluster.local",
        ] {
            let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            let auth = format!("{host}:{}", s.port);
            assert_eq!(
                grpc::check(&mut c, &auth, "", deadline),
                Ok(Health::Serving),
                "{auth}"
            );
        }
    }
}

#[test]
fn python_without_health_service_is_unimplemented() {
    let s = python("no-health");
    let e = ok(s.port, "").unwrap_err();
    assert!(matches!(e, Error::Status { code: 12, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "no health service (grpc-status UNIMPLEMENTED)"
    );
}

#[test]
fn node_without_health_service_is_unimplemented() {
    let s = node("no-health");
    let e = ok(s.port, "").unwrap_err();
    assert!(matches!(e, Error::Status { code: 12, .. }), "{e:?}");
}

/// ~6 KB of metadata before and after the answer: grpc-core indexes it in its dynamic
/// table and Huffman-codes it, and the answer still comes through, check after check.
#[test]
fn python_lots_of_metadata() {
    let s = python("metadata");
    for _ in 0..3 {
        assert_eq!(ok(s.port, "svc"), Ok(Health::Serving));
        assert_eq!(ok(s.port, "down"), Ok(Health::NotServing));
    }
}

/// A stream that keeps a copy of every byte read.
struct Recorder {
    inner: TcpStream,
    seen: Vec<u8>,
}

impl Read for Recorder {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl grpc::Transport for Recorder {
    fn set_timeouts(&mut self, left: Duration) -> std::io::Result<()> {
        self.inner.set_timeouts(left)
    }
}

/// The header blocks (HEADERS + CONTINUATION payloads, no padding: grpc-core sends
/// none) in a server's byte stream.
fn header_blocks(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    while bytes.len() >= 9 {
        let len = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
        let (kind, flags) = (bytes[3], bytes[4]);
        let payload = &bytes[9..9 + len];
        match kind {
            1 => {
                assert_eq!(flags & 0x28, 0, "padding or priority in HEADERS");
                blocks.push(payload.to_vec());
            }
            9 => blocks.last_mut().unwrap().extend_from_slice(payload),
            _ => {}
        }
        bytes = &bytes[9 + len..];
    }
    blocks
}

/// The metadata scenario really exercises HPACK: the server's blocks, decoded again
/// here, carry every entry, the binary value is Huffman-coded (its text appears nowhere
/// on the wire), and the server's encoder filled the dynamic table.
#[test]
fn python_metadata_uses_dynamic_table_and_huffman() {
    let s = python("metadata");
    let inner = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let mut rec = Recorder {
        inner,
        seen: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let auth = format!("127.0.0.1:{}", s.port);
    assert_eq!(
        grpc::check(&mut rec, &auth, "svc", deadline),
        Ok(Health::Serving)
    );
    let blocks = header_blocks(&rec.seen);
    assert_eq!(blocks.len(), 2, "initial metadata and trailers");
    let mut decoder = grpc::hpack::Decoder::new(4096, 16_384);
    let mut fields = Vec::new();
    for b in &blocks {
        decoder
            .decode(b, |n, v| fields.push((n.to_vec(), v.to_vec())))
            .unwrap();
    }
    let value = |name: &str| {
        fields
            .iter()
            .filter(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        value("x-initial-59"),
        [format!("initial value number 59 {}", "abc".repeat(20))]
    );
    assert_eq!(
        value("x-trailing-0"),
        [format!("trailing value 0 {}", "xyz".repeat(20))]
    );
    assert_eq!(value("x-same").len(), 10);
    assert_eq!(value("grpc-status"), ["0"]);
    // The binary value travels as base64 (grpc-core's unpadded form), Huffman-coded.
    let blob = value("x-blob-bin");
    assert_eq!(blob.len(), 2);
    assert_eq!(
        blob[0].len(),
        (8 * 20 * 4usize).div_ceil(3),
        "{:?}",
        blob[0]
    );
    assert!(blob[0]
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+/".contains(&b)));
    let raw = String::from_utf8_lossy(&rec.seen);
    assert!(!raw.contains(&blob[0][..40]), "base64 sent without Huffman");
    assert!(decoder.entries().count() > 0, "no dynamic table entries");
}

/// The probe will run a check on a helper thread with a small stack (the crate's
/// helpers use 64 to 256 KiB): the client keeps its buffers on the heap, so 64 KiB is
/// enough even for the metadata-heavy answer.
#[test]
fn check_runs_on_a_64k_stack() {
    let s = python("metadata");
    let port = s.port;
    let helper = thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || ok(port, "svc"))
        .unwrap();
    assert_eq!(helper.join().unwrap(), Ok(Health::Serving));
}

/// The server's deadline is kai-init's (grpc-timeout): a handler that takes longer ends
/// as DEADLINE_EXCEEDED from the server or as kai-init's own timeout, near the deadline.
#[test]
fn python_slow_handler_times_out() {
    let s = python("slow");
    let start = Instant::now();
    let e = ask(s.port, "svc", Duration::from_millis(800)).unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(e, Error::Timeout | Error::Status { code: 4, .. }),
        "{e:?}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// Status flipping while checks run back to back: every answer is one of the two
/// statuses, never an error, and each flip is seen by the next check after it.
fn flipping(s: &mut Server) {
    let port = s.port;
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = count.clone();
    let checker = thread::spawn(move || {
        let mut seen = Vec::new();
        while stop_rx.try_recv().is_err() && seen.len() < 5000 {
            seen.push(ok(port, "svc"));
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        seen
    });
    for i in 0..10 {
        // At least two checks between flips, so that they overlap the status changes.
        let before = count.load(std::sync::atomic::Ordering::SeqCst);
        let deadline = Instant::now() + T;
        while count.load(std::sync::atomic::Ordering::SeqCst) < before + 2 {
            assert!(Instant::now() < deadline, "the checker thread is stuck");
            thread::sleep(Duration::from_millis(5));
        }
        let status = if i % 2 == 0 { "NOT_SERVING" } else { "SERVING" };
        s.set("svc", status);
        let want = if i % 2 == 0 {
            Health::NotServing
        } else {
            Health::Serving
        };
        assert_eq!(ok(port, "svc"), Ok(want));
    }
    stop_tx.send(()).unwrap();
    let seen = checker.join().unwrap();
    assert!(seen.len() >= 20, "{}", seen.len());
    for r in &seen {
        assert!(
            matches!(r, Ok(Health::Serving | Health::NotServing)),
            "{r:?}"
        );
    }
}

#[test]
fn python_status_flips_while_checks_run() {
    flipping(&mut python("serving"));
}

#[test]
fn node_status_flips_while_checks_run() {
    flipping(&mut node("serving"));
}

// ---- hostile peers ----

/// How long a hostile test gives the check; each must end in an error by then.
const HOSTILE: Duration = Duration::from_millis(1500);

/// A one-connection server on 127.0.0.1 running `behave`, and the check's answer. The
/// check must return within the deadline (plus scheduling slack).
fn against(behave: impl FnOnce(TcpStream) + Send + 'static) -> Error {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(T)).unwrap();
        conn.set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        behave(conn);
    });
    let start = Instant::now();
    let answer = ask(port, "", HOSTILE);
    let took = start.elapsed();
    assert!(took < HOSTILE + Duration::from_millis(500), "took {took:?}");
    server.join().unwrap();
    answer.expect_err("a hostile peer cannot produce SERVING")
}

/// Reads the client's preface and first frames (so that writes after it do not race
/// with the client's), returning the stream.
fn after_preface(mut c: TcpStream) -> TcpStream {
    let mut buf = [0u8; 24];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    c
}

/// Reads the client's whole request: frames until its DATA with END_STREAM.
fn after_request(c: TcpStream) -> TcpStream {
    let mut c = after_preface(c);
    loop {
        let mut head = [0u8; 9];
        c.read_exact(&mut head).unwrap();
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        c.read_exact(&mut payload).unwrap();
        if head[3] == 0 && head[4] & 1 == 1 {
            return c;
        }
    }
}

/// Reads until the client closes (so the server thread ends when the check has).
fn drain(mut c: TcpStream) {
    let mut buf = [0u8; 4096];
    while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

const EMPTY_SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

#[test]
fn hostile_silent_server_times_out() {
    let e = against(drain);
    assert_eq!(e, Error::Timeout);
}

#[test]
fn hostile_dribbling_server_times_out() {
    let e = against(|c| {
        let mut c = after_preface(c);
        // A valid SETTINGS frame, one byte every 50 ms, then a frame that never ends.
        let mut bytes = EMPTY_SETTINGS.to_vec();
        bytes.extend_from_slice(&frame(1, 0x4, 1, &[0x88; 200])[..12]);
        for b in bytes.iter().chain(std::iter::repeat(&0x88).take(100)) {
            if c.write_all(&[*b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
    assert_eq!(e, Error::Timeout);
}

#[test]
fn hostile_endless_continuation_chain() {
    let e = against(|c| {
        let mut c = after_preface(c);
        let mut out = EMPTY_SETTINGS.to_vec();
        out.extend(frame(1, 0, 1, &[0x88])); // HEADERS :status 200, no END_HEADERS
        for _ in 0..10_000 {
            out.extend(frame(9, 0, 1, &[])); // empty CONTINUATIONs
        }
        let _ = c.write_all(&out);
        drain(c);
    });
    assert_eq!(e, Error::Protocol("CONTINUATION flood"));
    assert_eq!(e.to_string(), "HTTP/2 protocol error: CONTINUATION flood");
}

#[test]
fn hostile_huge_table_size_update() {
    let e = against(|c| {
        let mut c = after_preface(c);
        let mut out = EMPTY_SETTINGS.to_vec();
        // Dynamic table size update to 2^28 (0x3f e1 ff ff 7f): far above 4096.
        out.extend(frame(1, 0x4, 1, &[0x3f, 0xe1, 0xff, 0xff, 0x7f, 0x88]));
        let _ = c.write_all(&out);
        drain(c);
    });
    assert_eq!(
        e.to_string(),
        "HPACK error: dynamic table size update above the advertised limit"
    );
}

#[test]
fn hostile_goaway_first() {
    let e = against(|c| {
        let mut c = after_preface(c);
        let mut payload = vec![0, 0, 0, 0, 0, 0, 0, 0xb];
        payload.extend_from_slice(b"go away\nforged line");
        let _ = c.write_all(&frame(7, 0, 0, &payload));
        drain(c);
    });
    assert!(matches!(e, Error::GoAway { code: 0xb, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "server sent GOAWAY (ENHANCE_YOUR_CALM): go away\\x0aforged line"
    );
}

#[test]
fn hostile_garbage_after_preface() {
    let e = against(|c| {
        let mut c = after_preface(c);
        let _ = c.write_all(b"\x00\x00\x08\x17garbage garbage garbage garbage");
        drain(c);
    });
    assert_eq!(e, Error::Protocol("server did not start with SETTINGS"));
}

#[test]
fn hostile_http1_answer() {
    let e = against(|c| {
        let mut c = after_preface(c);
        let _ = c.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    });
    assert_eq!(
        e.to_string(),
        "not an HTTP/2 server (it answered in HTTP/1)"
    );
}

#[test]
fn hostile_enormous_frame_length() {
    let e = against(|c| {
        let mut c = after_preface(c);
        let mut out = EMPTY_SETTINGS.to_vec();
        out.extend_from_slice(&[0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1]);
        let _ = c.write_all(&out);
        drain(c);
    });
    assert_eq!(e, Error::Protocol("frame larger than 16384 bytes"));
}

#[test]
fn hostile_ping_flood() {
    let e = against(|c| {
        let mut c = after_preface(c);
        // Read what the client answers, so its writes never block on a full buffer.
        let reader = c.try_clone().unwrap();
        let sink = thread::spawn(move || drain(reader));
        let mut out = EMPTY_SETTINGS.to_vec();
        for i in 0..10_000u64 {
            out.extend(frame(6, 0, 0, &i.to_be_bytes()));
        }
        let _ = c.write_all(&out);
        let _ = c.shutdown(std::net::Shutdown::Write);
        sink.join().unwrap();
    });
    assert_eq!(e, Error::Protocol("PING flood"));
}

#[test]
fn hostile_rst_stream() {
    let e = against(|c| {
        let mut c = after_preface(c);
        let mut out = EMPTY_SETTINGS.to_vec();
        out.extend(frame(3, 0, 1, &[0, 0, 0, 7]));
        let _ = c.write_all(&out);
        drain(c);
    });
    assert_eq!(e, Error::Reset(7));
    assert_eq!(
        e.to_string(),
        "server reset the stream (RST_STREAM REFUSED_STREAM)"
    );
}

#[test]
fn hostile_close_before_answer() {
    let e = against(|c| {
        // The whole request read first: closing with unread bytes would be a reset.
        // Then a half-close (FIN), read on: the client's SETTINGS ACK must not meet a
        // closed socket, whose reset could overtake the FIN.
        let mut c = after_request(c);
        let _ = c.write_all(&EMPTY_SETTINGS);
        let _ = c.shutdown(std::net::Shutdown::Write);
        drain(c);
    });
    assert_eq!(e.to_string(), "connection closed before the answer");
}

/// A grpc-message cannot forge a log line: its newline (sent percent-encoded, as gRPC
/// requires, and raw) is escaped in the one-line answer.
#[test]
fn hostile_grpc_message_is_one_line() {
    let e = against(|c| {
        let mut c = after_preface(c);
        let mut block = vec![0x88]; // :status 200
        for (name, value) in [
            ("content-type", "application/grpc"),
            ("grpc-status", "14"),
            ("grpc-message", "down%0Akai-init: SERVING\r\x1b[2J"),
        ] {
            block.push(0x00);
            block.push(name.len() as u8);
            block.extend_from_slice(name.as_bytes());
            block.push(value.len() as u8);
            block.extend_from_slice(value.as_bytes());
        }
        let mut out = EMPTY_SETTINGS.to_vec();
        out.extend(frame(1, 0x5, 1, &block)); // Trailers-Only: END_STREAM | END_HEADERS
        let _ = c.write_all(&out);
        drain(c);
    });
    let line = e.to_string();
    assert_eq!(
        line,
        "grpc-status UNAVAILABLE: down\\x0akai-init: SERVING\\x0d\\x1b[2J"
    );
    assert!(!line.contains('\n') && !line.contains('\r'));
}

// ---- the fuzz corpora, replayed ----

/// Every committed input of the gRPC fuzz targets through the same checks the targets
/// run (fuzz/fuzz_targets/grpc/checks.rs), on stable, as tests/fuzz.rs's
/// `corpora_replay` does for the others (and matched by the same `test(corpora_replay)`
/// filter): `seeds/NAME/` (hand-written, at least five), `corpus/NAME/` (what the fuzzer
/// grew, minimised), and `crashes/NAME/`, each of which must still panic until fixed.
#[test]
fn grpc_corpora_replay() {
    let fuzz = PathBuf::from(repo("fuzz"));
    let files = |dir: PathBuf| -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        out.sort();
        out
    };
    let hpack = |d: &[u8]| drop(checks::hpack(d));
    type Run<'a> = &'a dyn Fn(&[u8]);
    let targets: [(&str, Run); 2] = [("grpc_hpack", &hpack), ("grpc_frames", &checks::frames)];
    let mut failed = Vec::new();
    for (name, run) in targets {
        let panics = |p: &PathBuf| {
            let data = std::fs::read(p).unwrap();
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data))).is_err()
        };
        let seeds = files(fuzz.join("seeds").join(name));
        assert!(seeds.len() >= 5, "fuzz/seeds/{name} has too few seeds");
        let corpus = files(fuzz.join("corpus").join(name));
        for p in seeds.iter().chain(&corpus).filter(|p| panics(p)) {
            failed.push(format!("panics: {}", p.display()));
        }
        for p in files(fuzz.join("crashes").join(name))
            .iter()
            .filter(|p| !panics(p))
        {
            failed.push(format!("fixed, move it to the seeds: {}", p.display()));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

// ---- the CLI: `check grpc://`, `--probe grpc://`, `--wait-for grpc://` ----

/// kai-init with no KAI_INIT_* of the caller's and its health socket as given.
fn kai(args: &[&str]) -> Command {
    let mut cmd = util::kai(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KAI_INIT_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// `kai-init check ARGS`: (exit code, its one stdout line).
fn check(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = kai(&[&["check"], args].concat());
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("kai-init check");
    let line = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    (out.status.code().unwrap_or(-1), line)
}

#[test]
fn check_passes_serving_only_and_names_what_it_saw() {
    let py = python("serving");
    let at = |rest: &str| format!("grpc://127.0.0.1:{}{rest}", py.port);
    let (code, line) = check(&[&at("")], &[]);
    assert_eq!(
        (code, line.as_str()),
        (0, format!("healthy: {} SERVING", at("")).as_str())
    );
    assert_eq!(check(&[&at("/svc")], &[]).0, 0);
    let (code, line) = check(&[&at("/down")], &[]);
    assert_eq!(code, 1, "{line}");
    assert_eq!(line, format!("unhealthy: {} NOT_SERVING", at("/down")));
    let (code, line) = check(&[&at("/nope")], &[]);
    assert_eq!(code, 1);
    assert!(
        line.ends_with("unknown service (grpc-status NOT_FOUND)"),
        "{line}"
    );
    // The unspecified address, as a server's own listen address says it, is loopback.
    assert_eq!(check(&[&format!("grpc://0.0.0.0:{}", py.port)], &[]).0, 0);
    // Several targets: all must pass, each named.
    let (code, line) = check(&[&at(""), &at("/down")], &[]);
    assert_eq!(code, 1);
    assert!(
        line.contains("SERVING;") && line.contains("NOT_SERVING"),
        "{line}"
    );

    let js = node("serving");
    assert_eq!(
        check(&[&format!("grpc://localhost:{}/svc", js.port)], &[]).0,
        0
    );
    let bare = python("no-health");
    let (code, line) = check(&[&format!("grpc://127.0.0.1:{}", bare.port)], &[]);
    assert_eq!(code, 1);
    assert!(
        line.ends_with("no health service (grpc-status UNIMPLEMENTED)"),
        "{line}"
    );
    // Nothing listening, and a usage error (64, never 2).
    drop(bare);
    let gone = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, line) = check(&[&format!("grpc://127.0.0.1:{gone}")], &[]);
    assert_eq!(code, 1);
    assert!(line.contains("cannot connect to 127.0.0.1:"), "{line}");
    assert_eq!(check(&["grpc://127.0.0.1"], &[]).0, 64);
}

#[test]
fn a_slow_server_fails_the_check_at_its_timeout() {
    let slow = python("slow");
    let started = Instant::now();
    let (code, line) = check(
        &[
            "--timeout",
            "500ms",
            &format!("grpc://127.0.0.1:{}", slow.port),
        ],
        &[],
    );
    assert_eq!(code, 1, "{line}");
    // grpcio honours the grpc-timeout kai-init sends and answers DEADLINE_EXCEEDED just
    // before kai-init's own deadline; either way the check fails in time.
    assert!(
        line.contains("timed out") || line.contains("DEADLINE_EXCEEDED"),
        "{line}"
    );
    // The timeout bounds the whole check (generous: a loaded machine is slow to exec).
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_grpc_probe_makes_readyz_follow_the_service() {
    let mut py = python("serving");
    let socket = format!("kai-grpc-probe-{}", std::process::id());
    let probe = format!("grpc://127.0.0.1:{}/svc", py.port);
    let mut k = util::start(kai(&[
        "--health-socket",
        &socket,
        "--probe",
        &probe,
        "--probe-interval",
        "200ms",
        "--",
        "sleep",
        "1000",
    ]));
    let env = [("KAI_INIT_HEALTH_SOCKET", socket.as_str())];
    let readyz = || check(&["--path", "/readyz?verbose"], &env);
    util::wait_until("ready", T, || readyz().0 == 0);
    py.set("svc", "NOT_SERVING");
    util::wait_until("not ready", T, || readyz().0 == 1);
    assert!(readyz().1.contains("NOT_SERVING"), "{}", readyz().1);
    py.set("svc", "SERVING");
    util::wait_until("ready again", T, || readyz().0 == 0);
    k.signal(libc::SIGTERM);
    assert_eq!(k.wait_exit(T).code(), Some(143));
}

#[test]
fn wait_for_grpc_waits_until_the_service_serves() {
    let mut py = python("serving");
    py.set("svc", "NOT_SERVING");
    let target = format!("grpc://127.0.0.1:{}/svc", py.port);
    let mut cmd = kai(&[
        "--log-level",
        "debug",
        "--wait-for",
        &target,
        "--",
        "echo",
        "started",
    ]);
    cmd.env("KAI_INIT_HEALTH_SOCKET", "off");
    let mut k = util::start(cmd);
    let waiting = k.wait_line("NOT_SERVING", T);
    assert!(waiting.contains(&target), "{waiting}");
    assert!(
        k.stdout.is_empty(),
        "started before SERVING: {:?}",
        k.stdout
    );
    py.set("svc", "SERVING");
    k.wait_stdout("started", T);
    assert_eq!(k.wait_exit(T).code(), Some(0), "{:?}", k.stderr);
}
