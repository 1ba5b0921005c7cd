//! The unary grpc.health.v1.Health/Check exchange as a sans-IO state machine: bytes from
//! the server go in ([`Exchange::receive`]), bytes for the server come out
//! ([`Exchange::take_output`]), and the answer comes out once stream 1 has ended. No
//! sockets and no clock here, so the fuzz targets and property tests drive it with any
//! bytes, split anywhere; `mod.rs` runs it over a socket under a deadline.
//!
//! One connection, one stream (1), the request sent whole at once: preface, SETTINGS,
//! HEADERS and DATA (RFC 9113, section 3.4 allows a client with prior knowledge to send
//! frames right after its preface). Everything the server may send is bounded: a frame
//! (16384 bytes, section 4.2), a header block and its CONTINUATION chain, the header list,
//! the HPACK table, the message, the number of frames and of frames kai-init must answer
//! (PING, SETTINGS). Any violation ends the exchange with an error; nothing is retried.

use std::time::Duration;

use super::answer::{Error, Health};
use super::frame::{self, Header};
use super::hpack::{self, Decoder};
use super::proto;

/// SETTINGS_HEADER_TABLE_SIZE kai-init advertises: the protocol's default, so the table
/// size is the same before and after the server applies the SETTINGS (RFC 9113, 6.5.2).
pub const HEADER_TABLE_SIZE: usize = 4096;
/// SETTINGS_MAX_HEADER_LIST_SIZE kai-init advertises and enforces per header block.
pub const MAX_HEADER_LIST_SIZE: usize = 16_384;
/// A header block (HEADERS plus CONTINUATIONs), compressed: Huffman codes run up to 30
/// bits a byte, so a legal block can be larger than its decoded list; four full frames.
pub const MAX_BLOCK: usize = 4 * frame::MAX_FRAME_SIZE;
/// CONTINUATION frames in one header block: an endless chain of small (or empty) ones is
/// the "CONTINUATION flood" (CVE-2024-27316 and its siblings), bounded by count too.
pub const MAX_CONTINUATIONS: u32 = 32;
/// The response message, prefix included: a HealthCheckResponse is 2 bytes.
pub const MAX_MESSAGE: usize = 4096;
/// Frames read in one exchange: a real server sends fewer than ten.
pub const MAX_FRAMES: u32 = 1000;
/// Frames that need an answer (PING, SETTINGS): more is a flood (CVE-2019-9512, -9515).
pub const MAX_REPLIES: u32 = 64;
/// The flow-control window kai-init gives the response, per stream and connection: the
/// protocol's initial 65535, never raised, so no WINDOW_UPDATE is ever needed. A server
/// that sends more DATA than this breaks flow control (section 6.9.1); a message that
/// could need more is refused long before (MAX_MESSAGE).
pub const WINDOW: usize = 65_535;
/// Longest `:authority` accepted: a DNS name (253) plus `:65535`, or a bracketed IPv6.
pub const MAX_AUTHORITY: usize = 300;
/// Longest service name accepted: the request must fit one DATA frame and window.
pub const MAX_SERVICE: usize = 1024;
/// Longest grpc-message, GOAWAY debug data or content-type kept for the answer.
const MAX_TEXT: usize = 200;

/// The request path (gRPC over HTTP/2: `/` Service-Name `/` method).
pub const PATH: &str = "/grpc.health.v1.Health/Check";
/// The only stream kai-init opens (RFC 9113, section 5.1.1: client streams are odd).
const STREAM: u32 = 1;

/// HTTP/2 error codes kai-init sends in its GOAWAY (section 7).
const NO_ERROR: u32 = 0x0;
const PROTOCOL_ERROR: u32 = 0x1;
const COMPRESSION_ERROR: u32 = 0x9;

/// What the response has said so far (both header blocks feed it).
#[derive(Default)]
struct Response {
    /// The final (non-1xx) response headers have arrived.
    headers: bool,
    status: Option<u16>,
    /// `content-type`, when present (cut to MAX_TEXT).
    content_type: Option<String>,
    grpc_status: Option<Result<u32, ()>>,
    grpc_message: Option<String>,
    grpc_encoding: Option<String>,
    /// DATA bytes of stream 1 (padding removed): length-prefixed message(s).
    message: Vec<u8>,
    /// DATA payload bytes received, padding included (flow control, section 6.9.1).
    received: usize,
}

/// A header block being assembled from HEADERS and CONTINUATION frames (section 6.10).
struct Block {
    stream: u32,
    end_stream: bool,
    continuations: u32,
}

/// One Health/Check exchange on one connection.
pub struct Exchange {
    out: Vec<u8>,
    input: Vec<u8>,
    hpack: Decoder,
    fragments: Vec<u8>,
    open: Option<Block>,
    response: Response,
    frames: u32,
    replies: u32,
    /// The server's GOAWAY (last stream, code, debug text), once one has come.
    goaway: Option<(u32, u32, String)>,
    done: Option<Result<Health, Error>>,
}

impl Exchange {
    /// Starts an exchange: checks the request's parts and queues the whole request.
    /// `authority` is `HOST:PORT` (IPv6 as `[::1]:PORT`), `timeout` the time left, sent
    /// as `grpc-timeout` so that the server gives up when kai-init does.
    pub fn new(authority: &str, service: &str, timeout: Duration) -> Result<Exchange, Error> {
        valid_authority(authority)?;
        if service.len() > MAX_SERVICE {
            return Err(Error::Request("service name longer than 1024 bytes"));
        }
        let mut out = Vec::with_capacity(256 + authority.len() + service.len());
        out.extend_from_slice(frame::PREFACE);
        frame::write_settings(
            &mut out,
            &[
                (frame::SETTINGS_HEADER_TABLE_SIZE, HEADER_TABLE_SIZE as u32),
                (frame::SETTINGS_ENABLE_PUSH, 0),
                (
                    frame::SETTINGS_MAX_HEADER_LIST_SIZE,
                    MAX_HEADER_LIST_SIZE as u32,
                ),
            ],
        );
        let block = request_headers(authority, &grpc_timeout(timeout));
        frame::write(&mut out, frame::HEADERS, frame::END_HEADERS, STREAM, &block);
        let msg = proto::request(service);
        frame::write(&mut out, frame::DATA, frame::END_STREAM, STREAM, &msg);
        Ok(Exchange {
            out,
            input: Vec::new(),
            hpack: Decoder::new(HEADER_TABLE_SIZE, MAX_HEADER_LIST_SIZE),
            fragments: Vec::new(),
            open: None,
            response: Response::default(),
            frames: 0,
            replies: 0,
            goaway: None,
            done: None,
        })
    }

    /// Bytes to send now (the request first; then SETTINGS and PING acknowledgements, and
    /// a GOAWAY once the exchange is over). The caller sends them before reading more.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The answer, once known; after it, input is ignored.
    pub fn answer(&self) -> Option<&Result<Health, Error>> {
        self.done.as_ref()
    }

    /// Bytes held between calls: at most one incomplete frame (header plus payload).
    pub fn buffered(&self) -> usize {
        self.input.len() + self.fragments.len() + self.response.message.len()
    }

    /// The HPACK decoder (for tests and fuzz targets: its table's size).
    pub fn decoder(&self) -> &Decoder {
        &self.hpack
    }

    /// Feeds bytes read from the server; returns the answer once it is known.
    pub fn receive(&mut self, bytes: &[u8]) -> Option<&Result<Health, Error>> {
        if self.done.is_some() {
            return self.done.as_ref();
        }
        self.input.extend_from_slice(bytes);
        if let Err(e) = self.check_prefix() {
            self.finish(Err(e));
            return self.done.as_ref();
        }
        let input = std::mem::take(&mut self.input);
        let used = self.frames_in(&input);
        self.input = input;
        self.input.drain(..used);
        self.done.as_ref()
    }

    /// The server closed the connection (read returned 0): the answer if it was already
    /// known, else why not.
    pub fn closed(&mut self) -> &Result<Health, Error> {
        if self.done.is_none() {
            let e = match &self.goaway {
                Some((_, code, debug)) => Error::GoAway {
                    code: *code,
                    debug: debug.clone(),
                },
                None => Error::Closed,
            };
            self.finish(Err(e));
        }
        self.done.get_or_insert(Err(Error::Closed))
    }

    /// Processes every complete frame at the start of `input`; returns the bytes used.
    fn frames_in(&mut self, input: &[u8]) -> usize {
        let mut at = 0;
        while self.done.is_none() {
            let Some(h) = Header::parse(&input[at..]) else {
                break;
            };
            // Section 4.2: a frame over SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR;
            // refused on its header, so an enormous length is never waited for.
            if h.len > frame::MAX_FRAME_SIZE {
                self.finish(Err(Error::Protocol("frame larger than 16384 bytes")));
                break;
            }
            let end = at + frame::HEADER_LEN + h.len;
            let Some(payload) = input.get(at + frame::HEADER_LEN..end) else {
                break;
            };
            at = end;
            if let Err(e) = self.frame(&h, payload) {
                self.finish(Err(e));
            }
        }
        at
    }

    /// The first frame a server sends is SETTINGS (section 3.4); bytes that cannot begin
    /// one mean the port does not speak HTTP/2, said plainly for the common HTTP/1 case.
    fn check_prefix(&self) -> Result<(), Error> {
        if self.frames > 0 || self.input.is_empty() {
            return Ok(());
        }
        if self.input.starts_with(b"HTTP/") || b"HTTP/".starts_with(&self.input) {
            if self.input.len() >= 5 {
                return Err(Error::Http1);
            }
            return Ok(());
        }
        match Header::parse(&self.input) {
            Some(h) if h.kind != frame::SETTINGS && h.kind != frame::GOAWAY => {
                Err(Error::Protocol("server did not start with SETTINGS"))
            }
            _ => Ok(()),
        }
    }

    fn finish(&mut self, result: Result<Health, Error>) {
        let code = match &result {
            Err(Error::Hpack(_)) => COMPRESSION_ERROR,
            Err(Error::Protocol(_)) => PROTOCOL_ERROR,
            _ => NO_ERROR,
        };
        // A GOAWAY tells the server the connection is done with (section 6.8); the
        // last stream it names is the last server-initiated one kai-init took: none.
        frame::write_goaway(&mut self.out, 0, code);
        self.done = Some(result);
    }

    /// One frame (section 6).
    fn frame(&mut self, h: &Header, payload: &[u8]) -> Result<(), Error> {
        self.frames += 1;
        if self.frames > MAX_FRAMES {
            return Err(Error::Protocol("more than 1000 frames without an answer"));
        }
        if self.frames == 1 && h.kind != frame::SETTINGS && h.kind != frame::GOAWAY {
            return Err(Error::Protocol("server did not start with SETTINGS"));
        }
        // Section 6.10: while a header block is open, only its CONTINUATIONs may come.
        if let Some(block) = &self.open {
            if h.kind != frame::CONTINUATION || h.stream != block.stream {
                return Err(Error::Protocol("header block interrupted"));
            }
        }
        match h.kind {
            frame::SETTINGS => self.settings(h, payload),
            frame::PING => {
                if h.stream != 0 {
                    return Err(Error::Protocol("PING on a stream"));
                }
                if payload.len() != 8 {
                    return Err(Error::Protocol("PING of the wrong size"));
                }
                if !h.has(frame::ACK) {
                    self.reply("PING flood")?;
                    frame::write(&mut self.out, frame::PING, frame::ACK, 0, payload);
                }
                Ok(())
            }
            frame::GOAWAY => {
                if h.stream != 0 {
                    return Err(Error::Protocol("GOAWAY on a stream"));
                }
                let Some(fixed) = payload.first_chunk::<8>() else {
                    return Err(Error::Protocol("GOAWAY too short"));
                };
                let last = u32::from_be_bytes([fixed[0], fixed[1], fixed[2], fixed[3]]);
                let code = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
                let debug = text(&payload[8..]);
                // Section 6.8: streams up to `last` may still complete; stream 1 above
                // it was never processed, so no answer is coming.
                if last & 0x7fff_ffff < STREAM {
                    return Err(Error::GoAway { code, debug });
                }
                self.goaway = Some((last, code, debug));
                Ok(())
            }
            frame::WINDOW_UPDATE => {
                if payload.len() != 4 {
                    return Err(Error::Protocol("WINDOW_UPDATE of the wrong size"));
                }
                // kai-init's whole request went out within the initial windows, so the
                // increment has nothing to release; zero is still an error (6.9).
                let inc = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                if inc & 0x7fff_ffff == 0 && h.stream == 0 {
                    return Err(Error::Protocol("WINDOW_UPDATE of 0"));
                }
                Ok(())
            }
            frame::PRIORITY => {
                if h.stream == 0 {
                    return Err(Error::Protocol("PRIORITY on stream 0"));
                }
                Ok(())
            }
            frame::RST_STREAM => {
                if h.stream == 0 {
                    return Err(Error::Protocol("RST_STREAM on stream 0"));
                }
                let Some(code) = payload.first_chunk::<4>().filter(|_| payload.len() == 4) else {
                    return Err(Error::Protocol("RST_STREAM of the wrong size"));
                };
                if h.stream == STREAM {
                    return Err(Error::Reset(u32::from_be_bytes(*code)));
                }
                Ok(())
            }
            frame::PUSH_PROMISE => Err(Error::Protocol("PUSH_PROMISE though push is off")),
            frame::HEADERS => {
                self.on_stream(h)?;
                let fragment = frame::unpad(h, payload)
                    .map_err(|_| Error::Protocol("bad padding in HEADERS"))?;
                self.fragments.clear();
                self.fragments.extend_from_slice(fragment);
                self.open = Some(Block {
                    stream: h.stream,
                    end_stream: h.has(frame::END_STREAM),
                    continuations: 0,
                });
                if h.has(frame::END_HEADERS) {
                    self.end_block()?;
                }
                Ok(())
            }
            frame::CONTINUATION => {
                let Some(block) = self.open.as_mut() else {
                    return Err(Error::Protocol("CONTINUATION without HEADERS"));
                };
                block.continuations += 1;
                if block.continuations > MAX_CONTINUATIONS {
                    return Err(Error::Protocol("CONTINUATION flood"));
                }
                if self.fragments.len() + payload.len() > MAX_BLOCK {
                    return Err(Error::Protocol("header block larger than 64 KiB"));
                }
                self.fragments.extend_from_slice(payload);
                if h.has(frame::END_HEADERS) {
                    self.end_block()?;
                }
                Ok(())
            }
            frame::DATA => {
                self.on_stream(h)?;
                if !self.response.headers {
                    return Err(Error::Protocol("DATA before the response headers"));
                }
                self.response.received += payload.len();
                if self.response.received > WINDOW {
                    return Err(Error::Protocol("DATA beyond the flow-control window"));
                }
                let data =
                    frame::unpad(h, payload).map_err(|_| Error::Protocol("bad padding in DATA"))?;
                if self.response.message.len() + data.len() > MAX_MESSAGE {
                    return Err(Error::Protocol("response message larger than 4 KiB"));
                }
                self.response.message.extend_from_slice(data);
                if h.has(frame::END_STREAM) {
                    // gRPC always ends with trailers (grpc-status): DATA cannot end it.
                    return Err(Error::Protocol("response ended without grpc-status"));
                }
                Ok(())
            }
            // Section 5.5: frames of unknown types are ignored.
            _ => Ok(()),
        }
    }

    /// HEADERS and DATA belong on stream 1: on 0 they are malformed, and the server
    /// cannot open streams (push is off and server streams are even, section 5.1.1).
    fn on_stream(&self, h: &Header) -> Result<(), Error> {
        match h.stream {
            STREAM => Ok(()),
            0 => Err(Error::Protocol("HEADERS or DATA on stream 0")),
            _ => Err(Error::Protocol("frame on a stream kai-init never opened")),
        }
    }

    /// Counts a frame kai-init must answer.
    fn reply(&mut self, flood: &'static str) -> Result<(), Error> {
        self.replies += 1;
        if self.replies > MAX_REPLIES {
            return Err(Error::Protocol(flood));
        }
        Ok(())
    }

    /// SETTINGS (section 6.5): checked, then acknowledged. None of the server's values
    /// changes what kai-init does: its frames are small, its request already sent.
    fn settings(&mut self, h: &Header, payload: &[u8]) -> Result<(), Error> {
        if h.stream != 0 {
            return Err(Error::Protocol("SETTINGS on a stream"));
        }
        if h.has(frame::ACK) {
            if !payload.is_empty() {
                return Err(Error::Protocol("SETTINGS ACK with a payload"));
            }
            return Ok(());
        }
        if payload.len() % 6 != 0 {
            return Err(Error::Protocol("SETTINGS of the wrong size"));
        }
        for s in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([s[0], s[1]]);
            let value = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
            match id {
                // Section 6.5.2: a client receiving ENABLE_PUSH 1 has a PROTOCOL_ERROR.
                frame::SETTINGS_ENABLE_PUSH if value != 0 => {
                    return Err(Error::Protocol("server set ENABLE_PUSH"));
                }
                frame::SETTINGS_INITIAL_WINDOW_SIZE if value > 0x7fff_ffff => {
                    return Err(Error::Protocol("INITIAL_WINDOW_SIZE above 2^31-1"));
                }
                frame::SETTINGS_MAX_FRAME_SIZE if !(16_384..=16_777_215).contains(&value) => {
                    return Err(Error::Protocol("MAX_FRAME_SIZE out of range"));
                }
                _ => {}
            }
        }
        self.reply("SETTINGS flood")?;
        frame::write(&mut self.out, frame::SETTINGS, frame::ACK, 0, &[]);
        Ok(())
    }

    /// A complete header block: decoded (always, to keep the HPACK table in step), then
    /// read as response headers or trailers.
    fn end_block(&mut self) -> Result<(), Error> {
        let Some(block) = self.open.take() else {
            return Ok(());
        };
        let mut fields = Fields::default();
        let fragments = std::mem::take(&mut self.fragments);
        let decoded = self.hpack.decode(&fragments, |n, v| fields.take(n, v));
        self.fragments = fragments;
        self.fragments.clear();
        decoded.map_err(Error::Hpack)?;
        let r = &mut self.response;
        if !r.headers {
            let status = fields
                .status
                .ok_or(Error::Protocol("response without :status"))?;
            if (100..200).contains(&status) && !block.end_stream {
                // An informational response (RFC 9113, section 8.1): the real one follows.
                return Ok(());
            }
            r.headers = true;
            r.status = Some(status);
            r.content_type = fields.content_type;
        } else if !block.end_stream {
            // Section 8.1: a second block is the trailers and ends the stream.
            return Err(Error::Protocol("trailers without END_STREAM"));
        } else if fields.status.is_some() {
            return Err(Error::Protocol(":status in trailers"));
        }
        r.grpc_status = fields.grpc_status.or(r.grpc_status.take());
        r.grpc_message = fields.grpc_message.or(r.grpc_message.take());
        r.grpc_encoding = fields.grpc_encoding.or(r.grpc_encoding.take());
        if block.end_stream {
            let answer = self.answer_from_response();
            self.finish(answer);
        }
        Ok(())
    }

    /// Stream 1 has ended: what the response says (gRPC over HTTP/2, "Responses").
    fn answer_from_response(&mut self) -> Result<Health, Error> {
        let r = &mut self.response;
        match r.status {
            Some(200) => {}
            Some(code) => return Err(Error::Http(code)),
            None => return Err(Error::Protocol("response without :status")),
        }
        if let Some(ct) = &r.content_type {
            if !ct.starts_with("application/grpc") {
                return Err(Error::NotGrpc(ct.clone()));
            }
        }
        let code = match r.grpc_status {
            Some(Ok(code)) => code,
            Some(Err(())) => return Err(Error::Protocol("grpc-status is not a number")),
            None => return Err(Error::Protocol("response without grpc-status")),
        };
        if code != 0 {
            return Err(Error::Status {
                code,
                message: r.grpc_message.take().unwrap_or_default(),
            });
        }
        let Some((prefix, body)) = r.message.split_first_chunk::<{ proto::PREFIX_LEN }>() else {
            return Err(Error::Protocol("OK without a response message"));
        };
        let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
        if len != body.len() {
            return Err(Error::Protocol("response message of the wrong length"));
        }
        match prefix[0] {
            0 => {}
            1 => {
                // kai-init sends no grpc-accept-encoding, so a server may not compress.
                let enc = r.grpc_encoding.take().unwrap_or_default();
                return Err(Error::Compressed(enc));
            }
            _ => return Err(Error::Protocol("bad message flags")),
        }
        let status = proto::response_status(body).ok_or(Error::Protocol(
            "response message is not a HealthCheckResponse",
        ))?;
        Ok(Health::from_raw(status))
    }
}

/// The fields kai-init reads from a header block; the rest are decoded and dropped.
#[derive(Default)]
struct Fields {
    status: Option<u16>,
    content_type: Option<String>,
    grpc_status: Option<Result<u32, ()>>,
    grpc_message: Option<String>,
    grpc_encoding: Option<String>,
}

impl Fields {
    fn take(&mut self, name: &[u8], value: &[u8]) {
        match name {
            b":status" => {
                self.status = std::str::from_utf8(value)
                    .ok()
                    .filter(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse().ok())
                    // Not three digits: a status no HTTP response has (0 is refused later).
                    .or(Some(0));
            }
            b"content-type" => self.content_type = Some(text(value)),
            b"grpc-status" => {
                self.grpc_status = Some(
                    std::str::from_utf8(value)
                        .ok()
                        .filter(|s| !s.is_empty() && s.len() <= 10)
                        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|s| s.parse().ok())
                        .ok_or(()),
                );
            }
            b"grpc-message" => self.grpc_message = Some(text(&percent_decode(value))),
            b"grpc-encoding" => self.grpc_encoding = Some(text(value)),
            _ => {}
        }
    }
}

/// Bytes from the server as text for the answer: lossy UTF-8, at most MAX_TEXT bytes.
/// Control characters stay; `Error`'s Display escapes them.
fn text(bytes: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_TEXT)]).into_owned();
    if bytes.len() > MAX_TEXT {
        s.push('…');
    }
    s
}

/// grpc-message is percent-encoded (gRPC over HTTP/2, "Responses"): `%XX` becomes the
/// byte; a `%` not followed by two hex digits stays as it is.
fn percent_decode(v: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' {
            if let (Some(h), Some(l)) = (
                v.get(i + 1).copied().and_then(hex),
                v.get(i + 2).copied().and_then(hex),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

/// The HEADERS block of the request (gRPC over HTTP/2, "Requests"), as literals without
/// indexing or static indexes: the server's decoder table is never touched.
fn request_headers(authority: &str, timeout: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(128 + authority.len());
    hpack::encode_indexed(&mut b, 3); // :method POST
    hpack::encode_indexed(&mut b, 6); // :scheme http
    hpack::encode_literal(&mut b, 4, ":path", PATH);
    hpack::encode_literal(&mut b, 1, ":authority", authority);
    hpack::encode_literal(&mut b, 31, "content-type", "application/grpc");
    hpack::encode_literal(&mut b, 0, "te", "trailers");
    hpack::encode_literal(&mut b, 0, "grpc-timeout", timeout);
    let agent = concat!("kai-init/", env!("CARGO_PKG_VERSION"));
    hpack::encode_literal(&mut b, 58, "user-agent", agent);
    b
}

/// `grpc-timeout`: at most 8 digits and a unit (gRPC over HTTP/2, "Requests"), rounded
/// down so that the server's deadline is never later than kai-init's: milliseconds up
/// to 99999999m (27 hours), then seconds, minutes, hours; below 1 ms, microseconds.
pub fn grpc_timeout(d: Duration) -> String {
    const MAX: u128 = 99_999_999;
    let ms = d.as_millis();
    if ms == 0 {
        return format!("{}u", d.as_micros().max(1));
    }
    for (unit, per) in [("m", 1u128), ("S", 1000), ("M", 60_000), ("H", 3_600_000)] {
        if ms / per <= MAX {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{MAX}H")
}

/// `:authority` is `host:port` (RFC 9113, section 8.3.1; RFC 3986 authority without
/// userinfo): never empty and never `:PORT` alone (Kestrel refuses it), no bytes that
/// could not be in a URI's authority.
fn valid_authority(a: &str) -> Result<(), Error> {
    let bad = Error::Request("authority must be HOST:PORT");
    if a.is_empty() || a.len() > MAX_AUTHORITY || a.starts_with(':') {
        return Err(bad);
    }
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b);
    if !a.bytes().all(ok) {
        return Err(bad);
    }
    match a.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty()
                && !port.is_empty()
                && port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(())
        }
        _ => Err(bad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::client::grpc::frame::*;
    use proptest::prelude::*;

    fn new() -> Exchange {
        Exchange::new("127.0.0.1:50051", "svc", Duration::from_millis(1500)).unwrap()
    }

    /// Literal-without-indexing fields (section 6.2.2), new names.
    fn block(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (n, v) in fields {
            hpack::encode_literal(&mut b, 0, n, v);
        }
        b
    }

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out, kind, flags, stream, payload);
        out
    }

    const OK_HEADERS: &[(&str, &str)] = &[(":status", "200"), ("content-type", "application/grpc")];

    /// A whole well-behaved answer with `status` as the ServingStatus.
    fn answer(status: u8) -> Vec<u8> {
        let mut s = frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0xff, 0xff]);
        s.extend(frame(SETTINGS, ACK, 0, &[]));
        s.extend(frame(HEADERS, END_HEADERS, 1, &block(OK_HEADERS)));
        s.extend(frame(DATA, 0, 1, &[0, 0, 0, 0, 2, 0x08, status]));
        s.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            1,
            &block(&[("grpc-status", "0")]),
        ));
        s
    }

    fn run(bytes: &[u8]) -> Result<Health, Error> {
        let mut ex = new();
        ex.take_output();
        match ex.receive(bytes) {
            Some(a) => a.clone(),
            None => ex.closed().clone(),
        }
    }

    /// The request: preface, SETTINGS, HEADERS with every field gRPC and servers need,
    /// DATA with END_STREAM and the HealthCheckRequest.
    #[test]
    fn request_bytes() {
        let out = new().take_output();
        let rest = out.strip_prefix(PREFACE).unwrap();
        let settings = Header::parse(rest).unwrap();
        assert_eq!(
            (settings.kind, settings.len, settings.stream),
            (SETTINGS, 18, 0)
        );
        assert_eq!(
            &rest[9..27],
            b"\0\x01\0\0\x10\0\0\x02\0\0\0\0\0\x06\0\0\x40\0",
            "HEADER_TABLE_SIZE 4096, ENABLE_PUSH 0, MAX_HEADER_LIST_SIZE 16384"
        );
        let rest = &rest[27..];
        let headers = Header::parse(rest).unwrap();
        assert_eq!(
            (headers.kind, headers.flags, headers.stream),
            (HEADERS, END_HEADERS, 1)
        );
        let mut fields = Vec::new();
        Decoder::new(4096, 16_384)
            .decode(&rest[9..9 + headers.len], |n, v| {
                fields.push((
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                ))
            })
            .unwrap();
        let agent = format!("kai-init/{}", env!("CARGO_PKG_VERSION"));
        let want = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/grpc.health.v1.Health/Check"),
            (":authority", "127.0.0.1:50051"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", "1500m"),
            ("user-agent", agent.as_str()),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(fields, want);
        let rest = &rest[9 + headers.len..];
        let data = Header::parse(rest).unwrap();
        assert_eq!((data.kind, data.flags, data.stream), (DATA, END_STREAM, 1));
        assert_eq!(&rest[9..], proto::request("svc"));
    }

    #[test]
    fn grpc_timeouts() {
        let ms = Duration::from_millis;
        assert_eq!(grpc_timeout(ms(999)), "999m");
        assert_eq!(grpc_timeout(Duration::from_micros(500)), "500u");
        assert_eq!(grpc_timeout(Duration::ZERO), "1u");
        assert_eq!(grpc_timeout(ms(99_999_999)), "99999999m");
        assert_eq!(grpc_timeout(ms(100_000_000)), "100000S");
        assert_eq!(
            grpc_timeout(Duration::from_secs(365 * 24 * 3600)),
            "31536000S"
        );
        assert_eq!(grpc_timeout(Duration::from_secs(u64::MAX / 2)), "99999999H");
    }

    #[test]
    fn authorities() {
        for ok in [
            "127.0.0.1:50051",
            "[::1]:50051",
            "my-svc.ns.svc.cluster.local:8080",
            "h:1",
        ] {
            assert!(
                Exchange::new(ok, "", Duration::from_secs(1)).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            ":50051",
            "",
            "host",
            "host:",
            "host:123456",
            "a b:1",
            "h:1\r\nx:1",
            "h:x",
        ] {
            let e = Exchange::new(bad, "", Duration::from_secs(1)).err();
            assert_eq!(
                e,
                Some(Error::Request("authority must be HOST:PORT")),
                "{bad:?}"
            );
        }
        let e = Exchange::new("h:1", &"s".repeat(1025), Duration::from_secs(1)).err();
        assert_eq!(
            e,
            Some(Error::Request("service name longer than 1024 bytes"))
        );
    }

    #[test]
    fn serving_statuses() {
        assert_eq!(run(&answer(1)), Ok(Health::Serving));
        assert_eq!(run(&answer(2)), Ok(Health::NotServing));
        assert_eq!(run(&answer(0)), Ok(Health::Unknown));
        assert_eq!(run(&answer(3)), Ok(Health::ServiceUnknown));
        assert_eq!(run(&answer(9)), Ok(Health::Other(9)));
    }

    /// Whatever the chunking of the server's bytes, the same answer, and the SETTINGS
    /// and PING are acknowledged.
    #[test]
    fn acks_and_chunking() {
        let mut bytes = answer(1);
        let ping = frame(PING, 0, 0, b"12345678");
        bytes.splice(15..15, ping.iter().copied());
        for chunk in [1, 2, 7, 9, 100, bytes.len()] {
            let mut ex = new();
            ex.take_output();
            let mut got = None;
            for c in bytes.chunks(chunk) {
                if let Some(a) = ex.receive(c) {
                    got = Some(a.clone());
                }
            }
            assert_eq!(got, Some(Ok(Health::Serving)), "chunk {chunk}");
            let out = ex.take_output();
            let mut want = frame(SETTINGS, ACK, 0, &[]);
            want.extend(frame(PING, ACK, 0, b"12345678"));
            want.extend(frame(GOAWAY, 0, 0, &[0; 8]));
            assert_eq!(out, want);
        }
    }

    /// Trailers-Only (one HEADERS with END_STREAM), padding and priority, CONTINUATION,
    /// an informational 1xx block, unknown frame types, a graceful GOAWAY naming stream 1.
    #[test]
    fn legal_shapes() {
        let settings = frame(SETTINGS, 0, 0, &[]);
        // Trailers-Only NOT_FOUND with a percent-encoded message.
        let mut b = settings.clone();
        let f = [
            (":status", "200"),
            ("content-type", "application/grpc+proto"),
            ("grpc-status", "5"),
            ("grpc-message", "unknown%20service%3A svc"),
        ];
        b.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &block(&f)));
        let e = run(&b).unwrap_err();
        assert_eq!(
            e,
            Error::Status {
                code: 5,
                message: "unknown service: svc".into()
            }
        );
        // 1xx, then headers padded with priority, split over CONTINUATION; an unknown
        // frame type and a GOAWAY naming stream 1 in between; padded DATA.
        let mut b = settings.clone();
        b.extend(frame(
            HEADERS,
            END_HEADERS,
            1,
            &block(&[(":status", "100")]),
        ));
        let hb = block(OK_HEADERS);
        let mut first = vec![3, 0, 0, 0, 0, 16];
        first.extend_from_slice(&hb[..4]);
        first.extend_from_slice(b"pad");
        b.extend(frame(HEADERS, PADDED | PRIORITY_FLAG, 1, &first));
        b.extend(frame(CONTINUATION, 0, 1, &hb[4..6]));
        b.extend(frame(CONTINUATION, END_HEADERS, 1, &hb[6..]));
        b.extend(frame(0xfa, 0xff, 0, b"whatever"));
        b.extend(frame(GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0]));
        b.extend(frame(WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]));
        b.extend(frame(PRIORITY, 0, 3, &[0, 0, 0, 1, 5]));
        b.extend(frame(DATA, PADDED, 1, &[2, 0, 0, 0, 0, 2, 0x08, 1, 0, 0]));
        b.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            1,
            &block(&[("grpc-status", "0")]),
        ));
        assert_eq!(run(&b), Ok(Health::Serving));
    }

    /// Every way a server can fail, with its one-line name.
    #[test]
    fn failures() {
        let settings = frame(SETTINGS, 0, 0, &[]);
        let with = |frames: &[Vec<u8>]| {
            let mut b = settings.clone();
            frames.iter().for_each(|f| b.extend_from_slice(f));
            run(&b).unwrap_err().to_string()
        };
        let headers = |f: &[(&str, &str)], flags| frame(HEADERS, END_HEADERS | flags, 1, &block(f));
        let ok_headers = headers(OK_HEADERS, 0);
        let trailers = |code: &str| headers(&[("grpc-status", code)], END_STREAM);
        let msg = |m: &[u8]| frame(DATA, 0, 1, m);
        assert_eq!(
            with(&[headers(&[(":status", "404")], END_STREAM)]),
            "HTTP status 404, not a gRPC answer"
        );
        assert_eq!(
            with(&[headers(
                &[(":status", "200"), ("content-type", "text/html")],
                END_STREAM
            )]),
            "not a gRPC answer (content-type text/html)"
        );
        assert_eq!(
            with(&[ok_headers.clone(), trailers("12")]),
            "no health service (grpc-status UNIMPLEMENTED)"
        );
        assert_eq!(
            with(&[ok_headers.clone(), trailers("14")]),
            "grpc-status UNAVAILABLE"
        );
        assert_eq!(
            with(&[ok_headers.clone(), trailers("99")]),
            "grpc-status 99"
        );
        assert_eq!(
            with(&[ok_headers.clone(), trailers("x")]),
            "HTTP/2 protocol error: grpc-status is not a number"
        );
        assert_eq!(
            with(&[ok_headers.clone(), headers(&[("x", "y")], END_STREAM)]),
            "HTTP/2 protocol error: response without grpc-status"
        );
        assert_eq!(
            with(&[ok_headers.clone(), trailers("0")]),
            "HTTP/2 protocol error: OK without a response message"
        );
        assert_eq!(
            with(&[
                ok_headers.clone(),
                msg(&[1, 0, 0, 0, 2, 8, 1]),
                trailers("0")
            ]),
            "compressed answer (grpc-encoding )"
        );
        assert_eq!(
            with(&[
                ok_headers.clone(),
                msg(&[0, 0, 0, 0, 3, 8, 1]),
                trailers("0")
            ]),
            "HTTP/2 protocol error: response message of the wrong length"
        );
        assert_eq!(
            with(&[
                ok_headers.clone(),
                msg(&[0, 0, 0, 0, 1, 0x0b]),
                trailers("0")
            ]),
            "HTTP/2 protocol error: response message is not a HealthCheckResponse"
        );
        assert_eq!(
            with(&[
                ok_headers.clone(),
                frame(DATA, END_STREAM, 1, &[0, 0, 0, 0, 0])
            ]),
            "HTTP/2 protocol error: response ended without grpc-status"
        );
        assert_eq!(
            with(&[msg(&[0; 5])]),
            "HTTP/2 protocol error: DATA before the response headers"
        );
        assert_eq!(
            with(&[ok_headers.clone(), headers(&[("grpc-status", "0")], 0)]),
            "HTTP/2 protocol error: trailers without END_STREAM"
        );
        assert_eq!(
            with(&[frame(HEADERS, 0, 1, &[0x88]), frame(PING, 0, 0, &[0; 8])]),
            "HTTP/2 protocol error: header block interrupted"
        );
        assert_eq!(
            with(&[frame(CONTINUATION, END_HEADERS, 1, &[])]),
            "HTTP/2 protocol error: CONTINUATION without HEADERS"
        );
        assert_eq!(
            with(&[frame(HEADERS, END_HEADERS, 3, &[0x88])]),
            "HTTP/2 protocol error: frame on a stream kai-init never opened"
        );
        assert_eq!(
            with(&[frame(PUSH_PROMISE, END_HEADERS, 1, &[0, 0, 0, 2])]),
            "HTTP/2 protocol error: PUSH_PROMISE though push is off"
        );
        assert_eq!(
            with(&[frame(SETTINGS, 0, 0, &[0, 2, 0, 0, 0, 1])]),
            "HTTP/2 protocol error: server set ENABLE_PUSH"
        );
        assert_eq!(
            with(&[frame(SETTINGS, 0, 0, &[0, 5, 0, 0, 0, 1])]),
            "HTTP/2 protocol error: MAX_FRAME_SIZE out of range"
        );
        assert_eq!(
            with(&[frame(SETTINGS, ACK, 0, &[0; 6])]),
            "HTTP/2 protocol error: SETTINGS ACK with a payload"
        );
        assert_eq!(
            with(&[frame(PING, 0, 0, &[0; 7])]),
            "HTTP/2 protocol error: PING of the wrong size"
        );
        assert_eq!(
            with(&[frame(WINDOW_UPDATE, 0, 0, &[0; 4])]),
            "HTTP/2 protocol error: WINDOW_UPDATE of 0"
        );
        assert_eq!(
            with(&[frame(GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 2])]),
            "server sent GOAWAY (INTERNAL_ERROR)"
        );
        assert_eq!(
            with(&[frame(RST_STREAM, 0, 1, &[0, 0, 0, 0x42])]),
            "server reset the stream (RST_STREAM 66)"
        );
        assert_eq!(
            with(&[frame(HEADERS, END_HEADERS, 1, &[0x80])]),
            "HPACK error: header index out of range"
        );
        assert_eq!(
            with(&[frame(HEADERS, END_HEADERS | PADDED, 1, &[5, 0x88])]),
            "HTTP/2 protocol error: bad padding in HEADERS"
        );
        assert_eq!(
            run(b"HTTP/1.1 400 Bad Request\r\n").unwrap_err(),
            Error::Http1
        );
        assert_eq!(run(b"").unwrap_err(), Error::Closed);
        assert_eq!(
            run(&frame(PING, 0, 0, &[0; 8])).unwrap_err(),
            Error::Protocol("server did not start with SETTINGS")
        );
    }

    /// The bounds: window, message size, header block size, frame count.
    #[test]
    fn bounds() {
        let settings = frame(SETTINGS, 0, 0, &[]);
        let ok_headers = frame(HEADERS, END_HEADERS, 1, &block(OK_HEADERS));
        // 257 DATA frames of 256 bytes, all padding: 65792 bytes > the 65535 window.
        let big = vec![0u8; 16_384];
        let mut b = settings.clone();
        b.extend(ok_headers.clone());
        let mut pad = vec![255u8];
        pad.extend(std::iter::repeat_n(0, 255));
        for _ in 0..257 {
            b.extend(frame(DATA, PADDED, 1, &pad));
        }
        assert_eq!(
            run(&b),
            Err(Error::Protocol("DATA beyond the flow-control window"))
        );
        let mut b = settings.clone();
        b.extend(ok_headers.clone());
        for _ in 0..5 {
            b.extend(frame(DATA, 0, 1, &big[..1000]));
        }
        assert_eq!(
            run(&b),
            Err(Error::Protocol("response message larger than 4 KiB"))
        );
        // A header block past 64 KiB in CONTINUATIONs.
        let mut b = settings.clone();
        b.extend(frame(HEADERS, 0, 1, &[0x88]));
        for _ in 0..5 {
            b.extend(frame(CONTINUATION, 0, 1, &big));
        }
        assert_eq!(
            run(&b),
            Err(Error::Protocol("header block larger than 64 KiB"))
        );
        // 1000 frames of an unknown type.
        let mut b = settings.clone();
        for _ in 0..1000 {
            b.extend(frame(0xee, 0, 0, &[]));
        }
        assert_eq!(
            run(&b),
            Err(Error::Protocol("more than 1000 frames without an answer"))
        );
        // 65 SETTINGS.
        let mut b = Vec::new();
        for _ in 0..65 {
            b.extend(settings.clone());
        }
        assert_eq!(run(&b), Err(Error::Protocol("SETTINGS flood")));
    }

    /// After the answer, nothing more is read or changed.
    #[test]
    fn input_after_the_answer_is_ignored() {
        let mut ex = new();
        let mut b = answer(1);
        b.extend(frame(RST_STREAM, 0, 1, &[0, 0, 0, 1]));
        assert_eq!(ex.receive(&b), Some(&Ok(Health::Serving)));
        assert_eq!(ex.receive(b"garbage"), Some(&Ok(Health::Serving)));
        assert_eq!(ex.closed(), &Ok(Health::Serving));
    }

    proptest! {
        /// Any bytes, split anywhere: no panic, memory bounded (one frame buffered, a
        /// header block, the message), output bounded (acks, one GOAWAY).
        #[test]
        fn any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000), chunk in 1usize..500) {
            let mut ex = new();
            ex.take_output();
            for c in bytes.chunks(chunk) {
                let _ = ex.receive(c);
                prop_assert!(ex.buffered() <= 9 + 16_384 + 500 + MAX_BLOCK + MAX_MESSAGE);
            }
            let _ = ex.closed();
            prop_assert!(ex.take_output().len() <= 17 * (MAX_REPLIES as usize + 1));
        }

        /// A valid answer with frames of unknown type and PINGs mixed in, split anywhere,
        /// still answers.
        #[test]
        fn answer_split_anywhere(status in 0u8..4, cuts in proptest::collection::vec(0usize..200, 0..6)) {
            let bytes = answer(status);
            let mut ex = new();
            let mut at = 0;
            let mut got = None;
            let mut cuts = cuts;
            cuts.push(bytes.len());
            cuts.sort_unstable();
            for c in cuts {
                let c = c.min(bytes.len()).max(at);
                if let Some(a) = ex.receive(&bytes[at..c]) {
                    got = Some(a.clone());
                }
                at = c;
            }
            prop_assert_eq!(got, Some(Ok(Health::from_raw(i32::from(status)))));
        }
    }
}
