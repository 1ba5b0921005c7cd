//! HTTP/2 frames (RFC 9113, section 4 and 6): the 9-byte frame header, the padding and
//! priority fields a HEADERS or DATA payload may carry, and the few frames kai-init
//! writes. Pure functions over bytes; what a frame means is `exchange.rs`'s job.

/// The frame types of RFC 9113, section 6; any other type is ignored (section 5.5).
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

/// Flags (section 6): END_STREAM on DATA and HEADERS, ACK on SETTINGS and PING (the same
/// bit), END_HEADERS, PADDED, PRIORITY.
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

/// SETTINGS identifiers (section 6.5.2).
pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// The client connection preface (section 3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The largest frame payload kai-init accepts: SETTINGS_MAX_FRAME_SIZE's initial value,
/// which kai-init never raises (section 4.2: larger is a FRAME_SIZE_ERROR).
pub const MAX_FRAME_SIZE: usize = 16_384;

/// Length of the frame header (section 4.1).
pub const HEADER_LEN: usize = 9;

/// A frame header (section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    /// The 31-bit stream identifier; the reserved bit is ignored (section 4.1).
    pub stream: u32,
}

impl Header {
    /// Reads the header at the start of `bytes`, if 9 bytes are there.
    pub fn parse(bytes: &[u8]) -> Option<Header> {
        let b: &[u8; HEADER_LEN] = bytes.first_chunk()?;
        Some(Header {
            len: usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        })
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// A padded payload's pad length is at least the payload (RFC 9113, sections 6.1, 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPadding;

/// The data of a DATA payload, or the header block fragment of a HEADERS payload,
/// without the Pad Length byte, the padding and (HEADERS) the priority fields.
pub fn unpad<'a>(h: &Header, payload: &'a [u8]) -> Result<&'a [u8], BadPadding> {
    let mut rest = payload;
    let mut pad = 0;
    if h.has(PADDED) {
        let (&n, tail) = rest.split_first().ok_or(BadPadding)?;
        pad = usize::from(n);
        rest = tail;
    }
    if h.kind == HEADERS && h.has(PRIORITY_FLAG) {
        // Stream dependency (4 bytes) and weight (1), deprecated and ignored (5.3.2).
        rest = rest.get(5..).ok_or(BadPadding)?;
    }
    // Padding that fills or exceeds the rest is a PROTOCOL_ERROR (6.1, 6.2).
    let keep = rest.len().checked_sub(pad).ok_or(BadPadding)?;
    Ok(&rest[..keep])
}

/// Appends a frame header.
pub fn write_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    debug_assert!(len <= MAX_FRAME_SIZE);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
}

/// Appends a whole frame.
pub fn write(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    write_header(out, payload.len(), kind, flags, stream);
    out.extend_from_slice(payload);
}

/// Appends a SETTINGS frame with these (identifier, value) pairs (section 6.5.1).
pub fn write_settings(out: &mut Vec<u8>, settings: &[(u16, u32)]) {
    write_header(out, settings.len() * 6, SETTINGS, 0, 0);
    for (id, value) in settings {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// Appends a GOAWAY frame: last stream, error code, no debug data (section 6.8).
pub fn write_goaway(out: &mut Vec<u8>, last_stream: u32, code: u32) {
    write_header(out, 8, GOAWAY, 0, 0);
    out.extend_from_slice(&last_stream.to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
}

/// HTTP/2 error codes (section 7) by name, for the one-line answer.
pub fn error_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_parse() {
        // Length 16384, HEADERS, END_STREAM|END_HEADERS, reserved bit set on stream 3.
        let h = Header::parse(&[0x00, 0x40, 0x00, 0x01, 0x05, 0x80, 0, 0, 3, 0xaa]).unwrap();
        assert_eq!(
            h,
            Header {
                len: 16_384,
                kind: HEADERS,
                flags: 0x5,
                stream: 3
            }
        );
        assert!(h.has(END_STREAM) && h.has(END_HEADERS) && !h.has(PADDED));
        assert_eq!(Header::parse(&[0; 8]), None);
    }

    fn h(kind: u8, flags: u8) -> Header {
        Header {
            len: 0,
            kind,
            flags,
            stream: 1,
        }
    }

    /// RFC 9113, sections 6.1 and 6.2: Pad Length, priority fields, padding.
    #[test]
    fn unpad_cases() {
        assert_eq!(unpad(&h(DATA, 0), b"abc"), Ok(&b"abc"[..]));
        assert_eq!(unpad(&h(DATA, PADDED), b"\x02abc00"), Ok(&b"abc"[..]));
        // Padding that leaves nothing is allowed; more than the rest is not.
        assert_eq!(unpad(&h(DATA, PADDED), b"\x02ab"), Ok(&b""[..]));
        assert_eq!(unpad(&h(DATA, PADDED), b"\x03ab"), Err(BadPadding));
        assert_eq!(unpad(&h(DATA, PADDED), b""), Err(BadPadding));
        // HEADERS: priority fields (5 bytes) after the Pad Length, before the block.
        let p = b"\x01\x80\x00\x00\x03\x10\x82z";
        assert_eq!(
            unpad(&h(HEADERS, PADDED | PRIORITY_FLAG), p),
            Ok(&b"\x82"[..])
        );
        assert_eq!(
            unpad(&h(HEADERS, PRIORITY_FLAG), b"\0\0\0\x03"),
            Err(BadPadding)
        );
        // The PRIORITY flag means nothing on DATA.
        assert_eq!(unpad(&h(DATA, PRIORITY_FLAG), b"ab"), Ok(&b"ab"[..]));
    }

    #[test]
    fn writers() {
        let mut out = Vec::new();
        write_settings(
            &mut out,
            &[
                (SETTINGS_ENABLE_PUSH, 0),
                (SETTINGS_MAX_HEADER_LIST_SIZE, 16_384),
            ],
        );
        assert_eq!(out, b"\0\0\x0c\x04\0\0\0\0\0\0\x02\0\0\0\0\0\x06\0\0\x40\0");
        out.clear();
        write_goaway(&mut out, 0, 1);
        assert_eq!(out, b"\0\0\x08\x07\0\0\0\0\0\0\0\0\0\0\0\0\x01");
        assert_eq!(error_name(0xb), Some("ENHANCE_YOUR_CALM"));
        assert_eq!(error_name(0xe), None);
    }

    proptest! {
        #[test]
        fn header_round_trip(len in 0usize..=MAX_FRAME_SIZE, kind: u8, flags: u8, stream in 0u32..0x8000_0000) {
            let mut out = Vec::new();
            write_header(&mut out, len, kind, flags, stream);
            prop_assert_eq!(Header::parse(&out), Some(Header { len, kind, flags, stream }));
        }

        #[test]
        fn unpad_any(kind in 0u8..2, flags: u8, payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let hd = Header { len: payload.len(), kind, flags, stream: 1 };
            if let Ok(rest) = unpad(&hd, &payload) {
                prop_assert!(rest.len() <= payload.len());
            }
        }
    }
}
