//! What a gRPC health check found: the server's serving status, or why there is none,
//! each shown as one line an operator reads (`SERVING`, `unknown service (grpc-status
//! NOT_FOUND)`, `server sent GOAWAY (...)`); text from the server escaped and cut.

use std::fmt;

use super::{frame, hpack};

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
    let escaped = crate::util::text::printable(s);
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
