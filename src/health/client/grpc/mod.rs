//! The gRPC health client (issue 20): one unary `grpc.health.v1.Health/Check` over
//! plaintext HTTP/2 with prior knowledge (h2c, RFC 9113, section 3.3), as Kubernetes'
//! own gRPC probe sends it. Synchronous std I/O under one deadline: `kai-init check` has
//! no async runtime, and the probe and `--wait-for` run it on a helper thread.
//!
//! kai-init's own small client, not `h2` (+262 KB in the binary, issue 20):
//! - `answer`: what a check found, a status or an error, as operators read it;
//! - `exchange`: the sans-IO state machine of the whole exchange (request out, frames in);
//! - `frame`: HTTP/2 frame headers, padding, the frames kai-init writes;
//! - `hpack`, `huffman`: the header decoder (RFC 7541), complete and bounded;
//! - `proto`: the two protobuf messages and the gRPC message prefix.
//!
//! [`check`] is the one entry point: the caller connects (and owns name look-up), this
//! sends the request and reads until the answer, re-arming the socket's timeouts to the
//! time left before every read and write, so the deadline bounds the whole exchange.

pub mod answer;
pub mod exchange;
pub mod frame;
pub mod hpack;
pub mod huffman;
pub mod proto;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub use answer::{code_name, Error, Health, MAX_SHOWN};
pub use exchange::Exchange;

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

/// Where a `grpc://` target's HOST is dialled without a resolver, and the `:authority`
/// to send: an address as written, `localhost` as 127.0.0.1 then ::1, and the
/// unspecified addresses (`0.0.0.0`, `[::]`, what a server's listen address often says)
/// as loopback; None for a name, which the caller resolves. The authority names the
/// address dialled first, never `0.0.0.0` (grpc_health_probe's issue #52: servers such
/// as Kestrel refuse an authority they cannot be).
pub fn dial(host: &str, port: u16) -> Option<(Vec<SocketAddr>, String)> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ips: Vec<IpAddr> = match host {
        "localhost" => vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()],
        _ => match host.parse::<IpAddr>().ok()? {
            IpAddr::V4(v4) if v4.is_unspecified() => vec![Ipv4Addr::LOCALHOST.into()],
            IpAddr::V6(v6) if v6.is_unspecified() => {
                vec![Ipv6Addr::LOCALHOST.into(), Ipv4Addr::LOCALHOST.into()]
            }
            ip => vec![ip],
        },
    };
    let authority = match (host, ips[0]) {
        ("localhost", _) => format!("localhost:{port}"),
        (_, IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
        (_, ip) => format!("{ip}:{port}"),
    };
    Some((
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect(),
        authority,
    ))
}

/// Connects to the first of `addrs` that answers and asks it, all before `deadline`: what
/// `kai-init check`, the probe (on a helper thread) and `--wait-for` (on one) run for a
/// `grpc://` target. `Ok(status)` is the server's answer (only `SERVING` passes); `Err`
/// is the line an operator reads, `cannot connect to HOST:PORT: ...` included.
pub fn check_at(
    addrs: &[SocketAddr],
    authority: &str,
    service: &str,
    deadline: Instant,
) -> Result<Health, String> {
    let mut last = String::from("no address");
    for addr in addrs {
        let left = left(deadline).map_err(|e| e.to_string())?;
        match TcpStream::connect_timeout(addr, left) {
            Ok(mut stream) => {
                // Small writes, each answered: Nagle would only add a delay.
                let _ = stream.set_nodelay(true);
                return check(&mut stream, authority, service, deadline).map_err(|e| e.to_string());
            }
            Err(e) => last = io_error(e).to_string(),
        }
    }
    Err(format!("cannot connect to {authority}: {last}"))
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
        _ => Error::Io(crate::util::text::short(&e)),
    }
}

/// Bytes from hex written with any blanks (the RFC 7541 examples' layout), for the tests
/// of the frame, HPACK and Huffman code.
#[cfg(test)]
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
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
