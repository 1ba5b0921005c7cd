//! The gRPC health client (issue 20): one unary `grpc.health.v1.Health/Check` over
//! plaintext HTTP/2 with prior knowledge (h2c, RFC 9113, section 3.3), as Kubernetes'
//! own gRPC probe sends it. Synchronous std I/O under one deadline: `kai-init check` has
//! no async runtime, and the probe and `--wait-for` run it on a helper thread.
//!
//! kai-init's own small client, not `h2` (+262 KB in the binary, issue 20):
//! - `exchange`: the sans-IO state machine of the whole exchange (request out, frames in);
//! - `frame`: HTTP/2 frame headers, padding, the frames kai-init writes;
//! - `hpack`, `huffman`: the header decoder (RFC 7541), complete and bounded;
//! - `proto`: the two protobuf messages and the gRPC message prefix.
//!
//! [`check`] is the one entry point: the caller connects (and owns name look-up), this
//! sends the request and reads until the answer, re-arming the socket's timeouts to the
//! time left before every read and write, so the deadline bounds the whole exchange.

pub mod exchange;
pub mod frame;
pub mod hpack;
pub mod huffman;
pub mod proto;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub use exchange::Exchange;

/// The `status` of a HealthCheckResponse (health.proto's ServingStatus): only `Serving`
/// passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Serving,
    NotServing,
    /// Meant for Watch, but a server may answer Check with it too.
    ServiceUnknown,
    /// A value health.proto does not define (proto3 enums are open).
    Other(i32),
}

impl Health {
    pub fn from_raw(v: i32) -> Health {
        match v {
            0 => Health::Unknown,
            1 => Health::Serving,
            2 => Health::NotServing,
            3 => Health::ServiceUnknown,
            n => Health::Other(n),
        }
    }

    pub fn is_serving(self) -> bool {
        self == Health::Serving
    }
}

/// The enum's names, as grpc_health_probe and grpcurl print them.
impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Health::Unknown => f.write_str("UNKNOWN"),
            Health::Serving => f.write_str("SERVING"),
            Health::NotServing => f.write_str("NOT_SERVING"),
            Health::ServiceUnknown => f.write_str("SERVICE_UNKNOWN"),
            Health::Other(n) => write!(f, "unknown serving status {n}"),
        }
    }
}

/// Why there is no ServingStatus. Display is one short line; text from the server (the
/// grpc-message, GOAWAY's debug data, a content-type) has its control characters escaped
/// (`text::printable`), so it can never start a second log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// grpc-status other than OK, with grpc-message (percent-decoded, cut to 200 bytes).
    Status { code: u32, message: String },
    /// An HTTP status other than 200: not a gRPC server on that path.
    Http(u16),
    /// A content-type other than application/grpc*.
    NotGrpc(String),
    /// The server answered in HTTP/1: the port does not speak h2c.
    Http1,
    /// GOAWAY before the answer (its error code and debug text).
    GoAway { code: u32, debug: String },
    /// RST_STREAM on the request's stream (its error code).
    Reset(u32),
    /// The server broke HTTP/2 or gRPC framing, or a bound kai-init sets.
    Protocol(&'static str),
    /// A header block that does not decode (COMPRESSION_ERROR).
    Hpack(hpack::HpackError),
    /// A compressed message (kai-init asks for none; its grpc-encoding).
    Compressed(String),
    /// The deadline passed.
    Timeout,
    /// The server closed the connection before the answer.
    Closed,
    /// Another I/O error, as a short phrase.
    Io(String),
    /// The request cannot be made from what the caller gave.
    Request(&'static str),
}

/// gRPC status codes by name (grpc/doc/statuscodes.md).
pub fn code_name(code: u32) -> Option<&'static str> {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(code as usize).copied()
}

struct Code(u32, fn(u32) -> Option<&'static str>);

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.1)(self.0) {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

/// The most bytes of server text an answer shows, after escaping: `check`'s line stays
/// under 500 bytes (src/check.rs) even when every byte sent was a control character or
/// invalid UTF-8, which escaping makes four times or three times longer (found by the
/// grpc_frames fuzz target).
pub const MAX_SHOWN: usize = 160;

/// Server text as shown: control characters escaped (`text::printable`), then cut to
/// MAX_SHOWN bytes on a character boundary.
fn printable(s: &str) -> String {
    let escaped = crate::text::printable(s);
    if escaped.len() <= MAX_SHOWN {
        return escaped.into_owned();
    }
    let mut end = MAX_SHOWN;
    while !escaped.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &escaped[..end])
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The two answers a misconfigured probe gets most: name them plainly.
            Error::Status { code: 5, .. } => f.write_str("unknown service (grpc-status NOT_FOUND)"),
            Error::Status { code: 12, .. } => {
                f.write_str("no health service (grpc-status UNIMPLEMENTED)")
            }
            Error::Status { code, message } if message.is_empty() => {
                write!(f, "grpc-status {}", Code(*code, code_name))
            }
            Error::Status { code, message } => {
                let m = printable(message);
                write!(f, "grpc-status {}: {m}", Code(*code, code_name))
            }
            Error::Http(code) => write!(f, "HTTP status {code}, not a gRPC answer"),
            Error::NotGrpc(ct) => write!(f, "not a gRPC answer (content-type {})", printable(ct)),
            Error::Http1 => f.write_str("not an HTTP/2 server (it answered in HTTP/1)"),
            Error::GoAway { code, debug } => {
                write!(f, "server sent GOAWAY ({})", Code(*code, frame::error_name))?;
                if !debug.is_empty() {
                    write!(f, ": {}", printable(debug))?;
                }
                Ok(())
            }
            Error::Reset(code) => write!(
                f,
                "server reset the stream (RST_STREAM {})",
                Code(*code, frame::error_name)
            ),
            Error::Protocol(what) => write!(f, "HTTP/2 protocol error: {what}"),
            Error::Hpack(e) => write!(f, "HPACK error: {}", e.describe()),
            Error::Compressed(enc) => {
                write!(f, "compressed answer (grpc-encoding {})", printable(enc))
            }
            Error::Timeout => f.write_str("timed out"),
            Error::Closed => f.write_str("connection closed before the answer"),
            Error::Io(e) => f.write_str(e),
            Error::Request(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for Error {}

/// A connected stream whose read and write timeouts can be set: what [`check`] needs
/// to hold a deadline over blocking std I/O.
pub trait Transport: Read + Write {
    /// Sets both timeouts to `left` (never zero).
    fn set_timeouts(&mut self, left: Duration) -> io::Result<()>;
}

impl Transport for TcpStream {
    fn set_timeouts(&mut self, left: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(left))?;
        self.set_write_timeout(Some(left))
    }
}

impl Transport for std::os::unix::net::UnixStream {
    fn set_timeouts(&mut self, left: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(left))?;
        self.set_write_timeout(Some(left))
    }
}

/// Asks the server on `stream` (connected, nothing sent yet) whether `service` is serving
/// (`""`: the server as a whole), with `authority` as `:authority` (`HOST:PORT`, IPv6 as
/// `[::1]:PORT`). Returns by `deadline` at the latest: every read and write gets only the
/// time left, and the server is told the same through `grpc-timeout`. Leaves the
/// connection to the caller to drop (a GOAWAY has been sent on it when possible).
pub fn check(
    stream: &mut impl Transport,
    authority: &str,
    service: &str,
    deadline: Instant,
) -> Result<Health, Error> {
    let mut ex = Exchange::new(authority, service, left(deadline)?)?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let out = ex.take_output();
        if let Some(answer) = ex.answer() {
            let answer = answer.clone();
            // The closing GOAWAY is a courtesy: the answer stands whatever happens to it.
            let _ = send(stream, &out, deadline);
            return answer;
        }
        send(stream, &out, deadline)?;
        stream.set_timeouts(left(deadline)?).map_err(io_error)?;
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e)),
        };
        if n == 0 {
            return ex.closed().clone();
        }
        ex.receive(&buf[..n]);
    }
}

/// Writes all of `out`, each write given only the time left.
fn send(stream: &mut impl Transport, mut out: &[u8], deadline: Instant) -> Result<(), Error> {
    while !out.is_empty() {
        stream.set_timeouts(left(deadline)?).map_err(io_error)?;
        match stream.write(out) {
            Ok(0) => return Err(Error::Closed),
            Ok(n) => out = &out[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(e)),
        }
    }
    Ok(())
}

/// Time left before `deadline`, never zero (a zero socket timeout is refused by std).
fn left(deadline: Instant) -> Result<Duration, Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Error::Timeout);
    }
    Ok(left)
}

/// A socket timeout (EAGAIN under SO_RCVTIMEO/SO_SNDTIMEO) is the deadline passing.
fn io_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout,
        _ => Error::Io(crate::http::short(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_names() {
        let names: Vec<String> = (0..5).map(|v| Health::from_raw(v).to_string()).collect();
        assert_eq!(
            names,
            [
                "UNKNOWN",
                "SERVING",
                "NOT_SERVING",
                "SERVICE_UNKNOWN",
                "unknown serving status 4"
            ]
        );
        assert!(Health::Serving.is_serving());
        assert!(!Health::NotServing.is_serving() && !Health::Unknown.is_serving());
    }

    /// Every answer is one short line; server text is escaped, never a second line.
    #[test]
    fn error_lines() {
        let status = |code, m: &str| Error::Status {
            code,
            message: m.into(),
        };
        for (e, line) in [
            (status(5, "x"), "unknown service (grpc-status NOT_FOUND)"),
            (
                status(12, ""),
                "no health service (grpc-status UNIMPLEMENTED)",
            ),
            (
                status(14, "conn\nrefused\u{1b}[1m"),
                "grpc-status UNAVAILABLE: conn\\x0arefused\\x1b[1m",
            ),
            (status(16, ""), "grpc-status UNAUTHENTICATED"),
            (status(17, "m"), "grpc-status 17: m"),
            (Error::Http(503), "HTTP status 503, not a gRPC answer"),
            (
                Error::NotGrpc("text/html\r".into()),
                "not a gRPC answer (content-type text/html\\x0d)",
            ),
            (Error::Http1, "not an HTTP/2 server (it answered in HTTP/1)"),
            (
                Error::GoAway {
                    code: 0,
                    debug: String::new(),
                },
                "server sent GOAWAY (NO_ERROR)",
            ),
            (
                Error::GoAway {
                    code: 99,
                    debug: "bye\n".into(),
                },
                "server sent GOAWAY (99): bye\\x0a",
            ),
            (
                Error::Reset(8),
                "server reset the stream (RST_STREAM CANCEL)",
            ),
            (
                Error::Protocol("PING flood"),
                "HTTP/2 protocol error: PING flood",
            ),
            (
                Error::Hpack(hpack::HpackError::Integer),
                "HPACK error: integer overflow in header block",
            ),
            (
                Error::Compressed("gzip".into()),
                "compressed answer (grpc-encoding gzip)",
            ),
            (Error::Timeout, "timed out"),
            (Error::Closed, "connection closed before the answer"),
            (Error::Io("connection refused".into()), "connection refused"),
        ] {
            assert_eq!(e.to_string(), line);
        }
    }

    /// Server text of 200 control bytes (800 once escaped) is cut, on a character
    /// boundary, so that the line stays short.
    #[test]
    fn server_text_is_cut_after_escaping() {
        let e = Error::GoAway {
            code: 0,
            debug: "\0".repeat(200),
        };
        let line = e.to_string();
        assert_eq!(
            line.len(),
            "server sent GOAWAY (NO_ERROR): ".len() + MAX_SHOWN + 3
        );
        assert!(line.ends_with("\\x00…"));
        let e = Error::Status {
            code: 2,
            message: "é".repeat(150),
        };
        assert!(e.to_string().ends_with("éé…"), "{e}");
        assert_eq!(
            e.to_string().len(),
            "grpc-status UNKNOWN: ".len() + MAX_SHOWN + 3
        );
    }

    /// An in-memory server: hands out `input` in `chunk`-byte reads, keeps what is
    /// written, counts the timeouts set.
    struct Mock {
        input: Vec<u8>,
        chunk: usize,
        written: Vec<u8>,
        timeouts: usize,
    }

    impl Read for Mock {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.input.len());
            buf[..n].copy_from_slice(&self.input[..n]);
            self.input.drain(..n);
            Ok(n)
        }
    }

    impl Write for Mock {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            // Short writes, to exercise the write loop.
            let n = buf.len().min(7);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Transport for Mock {
        fn set_timeouts(&mut self, left: Duration) -> io::Result<()> {
            assert!(!left.is_zero());
            self.timeouts += 1;
            Ok(())
        }
    }

    fn serving_bytes() -> Vec<u8> {
        let mut s = Vec::new();
        frame::write(&mut s, frame::SETTINGS, 0, 0, &[]);
        let mut b = Vec::new();
        hpack::encode_indexed(&mut b, 8); // :status 200
        frame::write(&mut s, frame::HEADERS, frame::END_HEADERS, 1, &b);
        frame::write(&mut s, frame::DATA, 0, 1, &[0, 0, 0, 0, 2, 0x08, 1]);
        let mut t = Vec::new();
        hpack::encode_literal(&mut t, 0, "grpc-status", "0");
        frame::write(&mut s, frame::HEADERS, 0x5, 1, &t);
        s
    }

    #[test]
    fn check_over_a_stream() {
        let mut m = Mock {
            input: serving_bytes(),
            chunk: 5,
            written: Vec::new(),
            timeouts: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            check(&mut m, "localhost:1", "", deadline),
            Ok(Health::Serving)
        );
        assert!(m.written.starts_with(frame::PREFACE));
        // The SETTINGS ACK and the closing GOAWAY went out after the request.
        let mut tail = Vec::new();
        frame::write(&mut tail, frame::SETTINGS, frame::ACK, 0, &[]);
        frame::write_goaway(&mut tail, 0, 0);
        assert!(m.written.ends_with(&tail));
        // Every read and every write got its own timeout: the deadline holds over all.
        assert!(m.timeouts > m.written.len() / 7);
    }

    #[test]
    fn check_ends_at_the_deadline_and_at_eof() {
        let mut m = Mock {
            input: Vec::new(),
            chunk: 5,
            written: Vec::new(),
            timeouts: 0,
        };
        assert_eq!(
            check(&mut m, "h:1", "", Instant::now()),
            Err(Error::Timeout)
        );
        assert!(m.written.is_empty());
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(check(&mut m, "h:1", "", deadline), Err(Error::Closed));
        assert_eq!(
            check(&mut m, ":1", "", deadline),
            Err(Error::Request("authority must be HOST:PORT"))
        );
    }
}
