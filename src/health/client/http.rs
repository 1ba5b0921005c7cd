//! The client half of HTTP/1.1 that kai-init speaks: the one GET request both the `http://`
//! probe and `kai-init check` write, and the reader of the response head they get back.
//! No I/O here, so the reader is a pure function a fuzz target and property tests can
//! drive with any bytes.
//!
//! The head is parsed with `httparse` (already linked through hyper): only `HTTP/1.0` and
//! `HTTP/1.1` status lines count, a three-digit code, then CRLF (or LF) or a reason.

use std::fmt::Write as _;

use crate::util::text::short;

/// Headers a response head may have before it is refused as a whole; the status line is
/// still read from a head with more (see [`status`]).
const MAX_HEADERS: usize = 64;

/// `GET path` for `host` (the `Host` value: `config::Authority` for TCP), with
/// `Connection: close` and `extra` header lines (`Name: value`, already validated).
pub fn get_request(path: &str, host: &str, user_agent: &str, extra: &[String]) -> Vec<u8> {
    let mut req = String::with_capacity(128);
    // Writing to a String cannot fail.
    let _ = write!(
        req,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}/{}\r\nAccept: */*\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION")
    );
    for h in extra {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// Sends one GET for `path` to `authority` on `stream` (the probe's and `--wait-for`'s
/// connection) and reads until the status line is complete. Only the code is read, as
/// kubelet judges by it; a status line longer than 512 bytes is not one a health endpoint
/// sends. Errors are short phrases for one-line answers and logs.
pub async fn get_status(
    stream: &mut tokio::net::TcpStream,
    authority: &str,
    path: &str,
) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io_err = |e: std::io::Error| format!("{authority}: {}", short(&e));
    let request = get_request(path, authority, "kai-init", &[]);
    stream.write_all(&request).await.map_err(io_err)?;
    let mut buf = [0u8; 512];
    let mut len = 0;
    loop {
        match status(&buf[..len]) {
            Ok(Some(code)) => return Ok(code),
            Err(Invalid) => return Err("not an HTTP response".into()),
            Ok(None) if len == buf.len() => return Err("not an HTTP response".into()),
            Ok(None) => {}
        }
        match stream.read(&mut buf[len..]).await.map_err(io_err)? {
            0 if len == 0 => return Err("connection closed without a response".into()),
            0 => return Err("not an HTTP response".into()),
            n => len += n,
        }
    }
}

/// What the bytes read so far make of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// A complete head: its status code, and where the body starts.
    Complete { status: u16, len: usize },
    /// Not enough bytes yet; everything so far is a valid beginning.
    Partial,
    /// Not an HTTP/1.0 or HTTP/1.1 response.
    Invalid,
}

/// Parses the response head at the start of `buf`.
pub fn parse_head(buf: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => match resp.code.filter(|&c| has_class(c)) {
            Some(status) => Head::Complete { status, len },
            None => Head::Invalid,
        },
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(_) => Head::Invalid,
    }
}

/// The status code, as soon as the status line is complete (the headers need not be: a
/// probe judges by the code alone, as kubelet does). `Ok(None)`: read more.
pub fn status(buf: &[u8]) -> Result<Option<u16>, Invalid> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let parsed = resp.parse(buf);
    // httparse fills `reason` only once the status line has ended (CRLF, LF or a reason
    // after the code), so a code seen without it may still be followed by a fourth digit.
    let line_done = resp.reason.is_some();
    match (parsed, resp.code) {
        (_, Some(code)) if line_done && !has_class(code) => Err(Invalid),
        (Ok(_), Some(code)) if line_done => Ok(Some(code)),
        (Ok(httparse::Status::Partial), _) => Ok(None),
        // A malformed header after a good status line: the status line still stands.
        (Err(_), Some(code)) if line_done => Ok(Some(code)),
        (Ok(httparse::Status::Complete(_)), _) | (Err(_), _) => Err(Invalid),
    }
}

/// httparse takes any three digits; a status's first digit is its class (RFC 9110,
/// section 15), and no class starts with 0: `HTTP/1.1 003` is not a response (found by
/// the `http_head` fuzz target).
fn has_class(code: u16) -> bool {
    code >= 100
}

/// The bytes are not an HTTP/1.0 or HTTP/1.1 response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_lines() {
        assert_eq!(status(b"HTTP/1.1 200 OK\r\n"), Ok(Some(200)));
        assert_eq!(status(b"HTTP/1.0 503 x\r\n"), Ok(Some(503)));
        assert_eq!(status(b"HTTP/1.1 204\r\n"), Ok(Some(204)));
        assert_eq!(status(b"HTTP/1.1 20"), Ok(None));
        assert_eq!(
            status(b"HTTP/1.1 200"),
            Ok(None),
            "a fourth digit may follow"
        );
        assert_eq!(status(b"HTTP/1.1 2000 x\r\n"), Err(Invalid));
        assert_eq!(status(b"HTTP/1.0 003 x\r\n"), Err(Invalid));
        assert_eq!(parse_head(b"HTTP/1.1 099 x\r\n\r\n"), Head::Invalid);
        assert_eq!(status(b"HTTP/1.9 200 OK\r\n"), Err(Invalid));
        assert_eq!(status(b"HTTP/2 200 OK\r\n"), Err(Invalid));
        assert_eq!(status(b"SSH-2.0-OpenSSH"), Err(Invalid));
        assert_eq!(status(b""), Ok(None));
    }

    #[test]
    fn finds_the_body() {
        let r = b"HTTP/1.1 503 Service Unavailable\r\nA: b\r\n\r\nbody";
        assert_eq!(
            parse_head(r),
            Head::Complete {
                status: 503,
                len: r.len() - 4
            }
        );
        assert_eq!(parse_head(&r[..20]), Head::Partial);
        assert_eq!(parse_head(b"HTTP/1.9 200 OK\r\n\r\n"), Head::Invalid);
    }

    #[test]
    fn writes_one_get() {
        let host = crate::config::target::Authority("::1", 8).to_string();
        let req = get_request("/x", &host, "t", &["X-A: b".into()]);
        let text = String::from_utf8(req).unwrap();
        assert!(text.starts_with("GET /x HTTP/1.1\r\nHost: [::1]:8\r\nUser-Agent: t/"));
        assert!(text.ends_with("Connection: close\r\nX-A: b\r\n\r\n"));
    }

    /// What `get_status` makes of a real loopback server that writes `reply` in pieces of
    /// `chunk` bytes, then closes.
    fn served(reply: &'static [u8], chunk: usize) -> Result<u16, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut request = [0u8; 1024];
                let _ = conn.read(&mut request).await;
                for piece in reply.chunks(chunk) {
                    // The client may have stopped reading (an endless status line).
                    if conn.write_all(piece).await.is_err() {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            });
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let got = get_status(&mut stream, "127.0.0.1:1", "/").await;
            // Closed first, so a server still waiting for the request ends too.
            drop(stream);
            server.await.unwrap();
            got
        })
    }

    #[test]
    fn get_status_reads_what_a_real_server_sends() {
        assert_eq!(served(b"HTTP/1.1 204 No Content\r\n\r\n", 64), Ok(204));
        assert_eq!(served(b"HTTP/1.1 503 x\r\n", 1), Ok(503), "dribbled");
        // A broken header after a good status line: the status line still stands.
        assert_eq!(served(b"HTTP/1.1 200 OK\r\n\x01bad\r\n\r\n", 64), Ok(200));
        assert_eq!(
            served(b"", 1),
            Err("connection closed without a response".into())
        );
        assert_eq!(served(b"HTTP/1.1 2", 4), Err("not an HTTP response".into()));
        assert_eq!(
            served(b"SSH-2.0-x\r\n", 64),
            Err("not an HTTP response".into())
        );
        // A status line that never ends: refused at 512 bytes, not read forever.
        const LONG: &[u8] = &[b'x'; 600];
        let mut reply = b"HTTP/1.1 200 ".to_vec();
        reply.extend_from_slice(LONG);
        let reply: &'static [u8] = reply.leak();
        assert_eq!(served(reply, 100), Err("not an HTTP response".into()));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// A well-formed head: version, code, reason, headers, blank line.
        fn head() -> impl Strategy<Value = (u16, Vec<u8>)> {
            (
                prop_oneof![Just("1.0"), Just("1.1")],
                100u16..=999,
                "[A-Za-z ]{0,20}",
                proptest::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,15}", "[ -~]{0,30}"), 0..8),
                any::<bool>(),
            )
                .prop_map(|(version, code, reason, headers, lf_only)| {
                    let eol = if lf_only { "\n" } else { "\r\n" };
                    let mut text = format!("HTTP/{version} {code} {reason}{eol}");
                    for (name, value) in headers {
                        text.push_str(&format!("{name}: {}{eol}", value.trim()));
                    }
                    text.push_str(eol);
                    (code, text.into_bytes())
                })
        }

        proptest! {
            #[test]
            fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = parse_head(&bytes);
                let _ = status(&bytes);
            }

            #[test]
            fn a_well_formed_head_yields_its_code((code, bytes) in head(), body in "[ -~]{0,40}") {
                let mut all = bytes.clone();
                all.extend_from_slice(body.as_bytes());
                prop_assert_eq!(parse_head(&all), Head::Complete { status: code, len: bytes.len() });
                prop_assert_eq!(status(&all), Ok(Some(code)));
            }

            #[test]
            fn truncated_heads_ask_for_more((code, bytes) in head()) {
                for cut in 0..bytes.len() {
                    let part = &bytes[..cut];
                    prop_assert_eq!(parse_head(part), Head::Partial, "cut at {}", cut);
                    // The code, once given, is the right one; before that, read more.
                    match status(part) {
                        Ok(Some(c)) => prop_assert_eq!(c, code),
                        Ok(None) => {}
                        Err(Invalid) => prop_assert!(false, "valid prefix refused at {}", cut),
                    }
                }
            }

            #[test]
            fn other_versions_are_refused(minor in 2u8..=9, code in 100u16..=999) {
                let text = format!("HTTP/1.{minor} {code} OK\r\n\r\n");
                prop_assert_eq!(parse_head(text.as_bytes()), Head::Invalid);
                prop_assert_eq!(status(text.as_bytes()), Err(Invalid));
            }
        }
    }
}
