//! HPACK (RFC 7541): the decoder of the header blocks a server sends, with its static and
//! dynamic tables, and the few bytes of encoding kai-init's own request needs.
//!
//! The decoder is complete (every representation of section 6, Huffman strings, dynamic
//! table size updates) and bounded everywhere: an integer past 2^28, a string longer than
//! the block, a size update above the table size kai-init advertised, a header list above
//! the size it advertised (RFC 9113, section 6.5.2) are errors, so a server cannot make
//! it allocate more than the block it sent plus the list limit plus the table limit.

use std::collections::VecDeque;

use super::huffman::{self, HuffmanError};

/// RFC 7541, Appendix A. Index 1 is the first entry.
pub const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// What each entry adds to the table's size besides its name and value (RFC 7541,
/// section 4.1), and to a header list's size (RFC 9113, section 6.5.2).
pub const ENTRY_OVERHEAD: usize = 32;

/// Why a header block is refused; every one is a connection error of type
/// COMPRESSION_ERROR (RFC 9113, section 4.3), since the tables are then out of step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HpackError {
    /// The block ends inside a representation.
    Truncated,
    /// An integer with more than four continuation bytes (past 2^28; section 5.1).
    Integer,
    /// Index 0, or past the end of the static and dynamic tables (section 2.3.3).
    Index,
    /// A Huffman string with EOS in it or bad padding (section 5.2).
    Huffman(HuffmanError),
    /// A dynamic table size update above the size kai-init advertised (section 6.3).
    TableSize,
    /// A dynamic table size update after a header field (section 4.2: only at the
    /// beginning of a block).
    LateSizeUpdate,
    /// The decoded header list is larger than kai-init's SETTINGS_MAX_HEADER_LIST_SIZE.
    ListTooLarge,
}

impl HpackError {
    /// A short phrase for the one-line answer.
    pub fn describe(self) -> &'static str {
        match self {
            HpackError::Truncated => "header block ends mid-field",
            HpackError::Integer => "integer overflow in header block",
            HpackError::Index => "header index out of range",
            HpackError::Huffman(HuffmanError::Eos) => "EOS in a Huffman string",
            HpackError::Huffman(HuffmanError::Padding) => "bad Huffman padding",
            HpackError::TableSize => "dynamic table size update above the advertised limit",
            HpackError::LateSizeUpdate => "dynamic table size update after a header field",
            HpackError::ListTooLarge => "response headers larger than the advertised limit",
        }
    }
}

/// One dynamic table entry: name and value in one allocation.
struct Entry {
    bytes: Box<[u8]>,
    name_len: usize,
}

impl Entry {
    fn name(&self) -> &[u8] {
        &self.bytes[..self.name_len]
    }
    fn value(&self) -> &[u8] {
        &self.bytes[self.name_len..]
    }
    fn size(&self) -> usize {
        self.bytes.len() + ENTRY_OVERHEAD
    }
}

/// The decoding side of one connection: its dynamic table outlives header blocks.
pub struct Decoder {
    /// Newest first: index 62 is `table[0]` (section 2.3.3).
    table: VecDeque<Entry>,
    /// Sum of the entries' sizes (section 4.1).
    size: usize,
    /// The table's maximum size now: the last size update, at most `limit`.
    max: usize,
    /// SETTINGS_HEADER_TABLE_SIZE as advertised: the ceiling of any size update.
    limit: usize,
    /// SETTINGS_MAX_HEADER_LIST_SIZE as advertised: the ceiling of one block's list.
    max_list: usize,
    name: Vec<u8>,
    value: Vec<u8>,
}

impl Decoder {
    /// A decoder for a connection whose SETTINGS advertised `table_limit` as
    /// SETTINGS_HEADER_TABLE_SIZE and `max_list` as SETTINGS_MAX_HEADER_LIST_SIZE. The
    /// table starts at `table_limit`: kai-init advertises the protocol's default (4096),
    /// so a server that has not seen its SETTINGS yet uses the same size (RFC 9113,
    /// section 6.5.2: a lower value would hold only once the server had applied it).
    pub fn new(table_limit: usize, max_list: usize) -> Decoder {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max: table_limit,
            limit: table_limit,
            max_list,
            name: Vec::new(),
            value: Vec::new(),
        }
    }

    /// The dynamic table's size now (section 4.1) and its current maximum.
    pub fn table_size(&self) -> (usize, usize) {
        (self.size, self.max)
    }

    /// The dynamic table's entries, newest first.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.table.iter().map(|e| (e.name(), e.value()))
    }

    /// Decodes one complete header block (HEADERS plus its CONTINUATIONs), calling
    /// `field` with each name and value in order. After an error the decoder is out of
    /// step with the server and the connection must end (RFC 9113, section 4.3).
    pub fn decode(
        &mut self,
        block: &[u8],
        mut field: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), HpackError> {
        let mut at = 0;
        let mut list = 0usize;
        let mut fields = false;
        while let Some(&first) = block.get(at) {
            // Section 6: the first bits say which representation this is.
            let index_bits = if first & 0x80 != 0 {
                // 6.1: indexed header field.
                let index = integer(block, &mut at, 7)?;
                self.lookup(index, true)?;
                None
            } else if first & 0x40 != 0 {
                // 6.2.1: literal with incremental indexing.
                Some((integer(block, &mut at, 6)?, true))
            } else if first & 0x20 != 0 {
                // 6.3: dynamic table size update, only before the first field (4.2).
                if fields {
                    return Err(HpackError::LateSizeUpdate);
                }
                let max = integer(block, &mut at, 5)?;
                if max > self.limit {
                    return Err(HpackError::TableSize);
                }
                self.max = max;
                self.evict(0);
                continue;
            } else {
                // 6.2.2 without indexing (0000), 6.2.3 never indexed (0001).
                Some((integer(block, &mut at, 4)?, false))
            };
            if let Some((index, add)) = index_bits {
                if index == 0 {
                    string(block, &mut at, self.max_list, &mut self.name)?;
                } else {
                    self.lookup(index, false)?;
                }
                string(block, &mut at, self.max_list, &mut self.value)?;
                if add {
                    self.insert();
                }
            }
            fields = true;
            list = list
                .saturating_add(self.name.len() + self.value.len())
                .saturating_add(ENTRY_OVERHEAD);
            if list > self.max_list {
                return Err(HpackError::ListTooLarge);
            }
            field(&self.name, &self.value);
        }
        Ok(())
    }

    /// Copies entry `index` (section 2.3.3) into `self.name` (and `self.value`).
    fn lookup(&mut self, index: usize, with_value: bool) -> Result<(), HpackError> {
        let (name, value): (&[u8], &[u8]) = match index {
            0 => return Err(HpackError::Index),
            1..=61 => {
                let (n, v) = STATIC_TABLE[index - 1];
                (n.as_bytes(), v.as_bytes())
            }
            _ => {
                let e = self.table.get(index - 62).ok_or(HpackError::Index)?;
                (e.name(), e.value())
            }
        };
        self.name.clear();
        self.name.extend_from_slice(name);
        if with_value {
            self.value.clear();
            self.value.extend_from_slice(value);
        }
        Ok(())
    }

    /// Adds the field just decoded (section 4.4): evict from the oldest until it fits; an
    /// entry larger than the whole table empties it and is not added (not an error).
    fn insert(&mut self) {
        let size = self.name.len() + self.value.len() + ENTRY_OVERHEAD;
        if size > self.max {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        let mut bytes = Vec::with_capacity(self.name.len() + self.value.len());
        bytes.extend_from_slice(&self.name);
        bytes.extend_from_slice(&self.value);
        self.table.push_front(Entry {
            bytes: bytes.into_boxed_slice(),
            name_len: self.name.len(),
        });
        self.size += size;
    }

    /// Evicts the oldest entries until `room` more bytes fit under the maximum (4.3, 4.4).
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max {
            match self.table.pop_back() {
                Some(e) => self.size -= e.size(),
                None => break,
            }
        }
    }
}

/// Reads an integer with an `n`-bit prefix at `block[*at]` (RFC 7541, section 5.1). At
/// most four continuation bytes (values up to 2^28): every limit here is far below, and
/// a longer encoding is how an overflow would be attempted.
fn integer(block: &[u8], at: &mut usize, n: u32) -> Result<usize, HpackError> {
    let mask = (1usize << n) - 1;
    let first = usize::from(*block.get(*at).ok_or(HpackError::Truncated)?) & mask;
    *at += 1;
    if first < mask {
        return Ok(first);
    }
    let mut value = mask;
    for shift in [0, 7, 14, 21] {
        let b = *block.get(*at).ok_or(HpackError::Truncated)?;
        *at += 1;
        value += usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(HpackError::Integer)
}

/// Reads a string literal (section 5.2) into `out`: its length is checked against what
/// is left of the block before anything is copied, and its decoded length against `max`.
fn string(block: &[u8], at: &mut usize, max: usize, out: &mut Vec<u8>) -> Result<(), HpackError> {
    let huffman = block.get(*at).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = integer(block, at, 7)?;
    let raw = block
        .get(*at..)
        .and_then(|rest| rest.get(..len))
        .ok_or(HpackError::Truncated)?;
    *at += len;
    out.clear();
    if huffman {
        huffman::decode(raw, out).map_err(HpackError::Huffman)?;
    } else {
        out.extend_from_slice(raw);
    }
    if out.len() > max {
        return Err(HpackError::ListTooLarge);
    }
    Ok(())
}

/// Appends `value` with an `n`-bit prefix whose other bits are `flags` (section 5.1).
pub fn encode_integer(out: &mut Vec<u8>, flags: u8, n: u32, value: usize) {
    let mask = (1usize << n) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Appends a literal field without indexing (section 6.2.2): the server's table is left
/// alone, so kai-init's encoder needs no state. `name_index` is a static table index for
/// the name, or 0 to send `name` as a string. Strings go raw (H = 0): they are short, and
/// the encoder stays a few lines.
pub fn encode_literal(out: &mut Vec<u8>, name_index: usize, name: &str, value: &str) {
    encode_integer(out, 0x00, 4, name_index);
    if name_index == 0 {
        encode_integer(out, 0x00, 7, name.len());
        out.extend_from_slice(name.as_bytes());
    }
    encode_integer(out, 0x00, 7, value.len());
    out.extend_from_slice(value.as_bytes());
}

/// Appends an indexed field (section 6.1): a static entry whose name and value match.
pub fn encode_indexed(out: &mut Vec<u8>, index: usize) {
    encode_integer(out, 0x80, 7, index);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::client::grpc::hex;
    use proptest::prelude::*;

    type Fields = Vec<(String, String)>;

    fn decode(d: &mut Decoder, block: &[u8]) -> Result<Fields, HpackError> {
        let mut out = Vec::new();
        d.decode(block, |n, v| {
            out.push((
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            ))
        })?;
        Ok(out)
    }

    /// Decodes `block` and checks the header list, the table (newest first) and its size.
    fn step(
        d: &mut Decoder,
        block: &str,
        list: &[(&str, &str)],
        table: &[(&str, &str)],
        size: usize,
    ) {
        let got = decode(d, &hex(block)).unwrap();
        let want: Fields = list
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
        let entries: Vec<(&[u8], &[u8])> = d.entries().collect();
        let want: Vec<(&[u8], &[u8])> = table
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        assert_eq!(entries, want);
        assert_eq!(d.table_size().0, size);
    }

    /// RFC 7541, Appendix C.1: integer representation examples.
    #[test]
    fn c1_integers() {
        for (flags, n, value, bytes) in [
            (0u8, 5, 10usize, &[0x0a][..]),
            (0, 5, 1337, &[0x1f, 0x9a, 0x0a]),
            (0, 8, 42, &[0x2a]),
        ] {
            let mut out = Vec::new();
            encode_integer(&mut out, flags, n, value);
            assert_eq!(out, bytes);
            let mut at = 0;
            assert_eq!(integer(bytes, &mut at, n), Ok(value));
            assert_eq!(at, bytes.len());
        }
    }

    /// Appendix C.2: one field of each kind, each on a fresh decoder.
    #[test]
    fn c2_header_field_representations() {
        let d = &mut Decoder::new(4096, 16_384);
        step(
            d,
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            &[("custom-key", "custom-header")],
            &[("custom-key", "custom-header")],
            55,
        );
        let d = &mut Decoder::new(4096, 16_384);
        step(
            d,
            "040c 2f73 616d 706c 652f 7061 7468",
            &[(":path", "/sample/path")],
            &[],
            0,
        );
        let d = &mut Decoder::new(4096, 16_384);
        step(
            d,
            "1008 7061 7373 776f 7264 0673 6563 7265 74",
            &[("password", "secret")],
            &[],
            0,
        );
        let d = &mut Decoder::new(4096, 16_384);
        step(d, "82", &[(":method", "GET")], &[], 0);
    }

    const REQ1: &[(&str, &str)] = &[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
    ];
    const REQ2: &[(&str, &str)] = &[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
        ("cache-control", "no-cache"),
    ];
    const REQ3: &[(&str, &str)] = &[
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ];
    const T1: &[(&str, &str)] = &[(":authority", "www.example.com")];
    const T2: &[(&str, &str)] = &[
        ("cache-control", "no-cache"),
        (":authority", "www.example.com"),
    ];
    const T3: &[(&str, &str)] = &[
        ("custom-key", "custom-value"),
        ("cache-control", "no-cache"),
        (":authority", "www.example.com"),
    ];

    /// Appendix C.3: three requests on one connection, without Huffman.
    #[test]
    fn c3_requests_without_huffman() {
        let d = &mut Decoder::new(4096, 16_384);
        step(
            d,
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            REQ1,
            T1,
            57,
        );
        step(d, "8286 84be 5808 6e6f 2d63 6163 6865", REQ2, T2, 110);
        step(
            d,
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
            REQ3,
            T3,
            164,
        );
    }

    /// Appendix C.4: the same requests with Huffman.
    #[test]
    fn c4_requests_with_huffman() {
        let d = &mut Decoder::new(4096, 16_384);
        step(
            d,
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            REQ1,
            T1,
            57,
        );
        step(d, "8286 84be 5886 a8eb 1064 9cbf", REQ2, T2, 110);
        step(
            d,
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            REQ3,
            T3,
            164,
        );
    }

    const DATE1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
    const DATE2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
    const LOC: &str = "https://www.example.com";
    const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";

    /// Appendix C.5 and C.6: three responses with a 256-byte table, so entries are
    /// evicted; without and with Huffman.
    fn responses(blocks: [&str; 3]) {
        let d = &mut Decoder::new(256, 16_384);
        step(
            d,
            blocks[0],
            &[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", DATE1),
                ("location", LOC),
            ],
            &[
                ("location", LOC),
                ("date", DATE1),
                ("cache-control", "private"),
                (":status", "302"),
            ],
            222,
        );
        step(
            d,
            blocks[1],
            &[
                (":status", "307"),
                ("cache-control", "private"),
                ("date", DATE1),
                ("location", LOC),
            ],
            &[
                (":status", "307"),
                ("location", LOC),
                ("date", DATE1),
                ("cache-control", "private"),
            ],
            222,
        );
        step(
            d,
            blocks[2],
            &[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", DATE2),
                ("location", LOC),
                ("content-encoding", "gzip"),
                ("set-cookie", COOKIE),
            ],
            &[
                ("set-cookie", COOKIE),
                ("content-encoding", "gzip"),
                ("date", DATE2),
            ],
            215,
        );
    }

    #[test]
    fn c5_responses_without_huffman() {
        responses([
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
             6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
             3d31",
        ]);
    }

    #[test]
    fn c6_responses_with_huffman() {
        responses([
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ]);
    }

    #[test]
    fn errors() {
        let e = |block: &[u8]| decode(&mut Decoder::new(4096, 16_384), block).unwrap_err();
        assert_eq!(e(&[0x80]), HpackError::Index); // index 0
        assert_eq!(e(&[0xbe]), HpackError::Index); // 62: the dynamic table is empty
        assert_eq!(e(&[0x7f, 0x80]), HpackError::Truncated); // name index continues
        assert_eq!(e(&[0x04, 0x05, b'/']), HpackError::Truncated); // value cut short
        assert_eq!(
            e(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            HpackError::Integer
        );
        // Size update to 4097: one above the advertised 4096 (0x3f 0xe2 0x1f).
        assert_eq!(e(&[0x3f, 0xe2, 0x1f]), HpackError::TableSize);
        // Size update after a field.
        assert_eq!(e(&[0x82, 0x20]), HpackError::LateSizeUpdate);
        // Huffman value with EOS in it.
        assert_eq!(
            e(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff]),
            HpackError::Huffman(HuffmanError::Eos)
        );
        // A header list over the limit: 100 x :method GET is 100 * 42 bytes.
        let d = &mut Decoder::new(4096, 4000);
        assert_eq!(decode(d, &[0x82; 100]), Err(HpackError::ListTooLarge));
        assert_eq!(decode(d, &[0x82; 95]).unwrap().len(), 95);
    }

    /// Size updates: at the start only (several allowed, section 4.2), down to 0
    /// (clears the table) and back up to the limit; an entry larger than the table
    /// empties it (4.4).
    #[test]
    fn size_updates_and_eviction() {
        let d = &mut Decoder::new(4096, 16_384);
        decode(
            d,
            &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
        )
        .unwrap();
        assert_eq!(d.table_size(), (55, 4096));
        // 0x20 (to 0) then 0x3f 0xe1 0x1f (to 4096), then :method GET.
        assert_eq!(decode(d, &[0x20, 0x3f, 0xe1, 0x1f, 0x82]).unwrap().len(), 1);
        assert_eq!(d.table_size(), (0, 4096));
        assert_eq!(d.entries().count(), 0);
        // A size update alone is a valid (empty) block.
        assert_eq!(decode(d, &[0x3f, 0x1b]).unwrap().len(), 0); // to 58
        assert_eq!(d.table_size(), (0, 58));
        decode(
            d,
            &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
        )
        .unwrap();
        assert_eq!(d.table_size(), (55, 58));
        // A second entry of 55 does not fit beside the first: the first is evicted.
        decode(
            d,
            &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6571"),
        )
        .unwrap();
        assert_eq!(d.entries().next().unwrap().1, b"custom-headeq");
        assert_eq!(d.table_size(), (55, 58));
        // An entry of 59 > 58: the table empties, the field is still decoded.
        let f = decode(
            d,
            &hex("400a 6375 7374 6f6d 2d6b 6579 1163 7573 746f 6d2d 6865 6164 6572 2d78 7878"),
        )
        .unwrap();
        assert_eq!(f[0].1, "custom-header-xxx");
        assert_eq!(d.table_size(), (0, 58));
    }

    proptest! {
        /// Any bytes, any number of blocks on one decoder: no panic; the table never
        /// exceeds its maximum, nor the maximum the limit.
        #[test]
        fn any_bytes(blocks in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..200), 1..5))
        {
            let d = &mut Decoder::new(256, 1024);
            for b in &blocks {
                let mut list = 0;
                let r = d.decode(b, |n, v| list += n.len() + v.len() + 32);
                prop_assert!(list <= 1024);
                let (size, max) = d.table_size();
                prop_assert!(size <= max && max <= 256);
                prop_assert!(d.entries().map(|(n, v)| n.len() + v.len() + 32).sum::<usize>() == size);
                if r.is_err() {
                    break;
                }
            }
        }

        /// Fields written with `encode_literal`, raw or with Huffman strings built by
        /// hand, and with incremental indexing, decode back to themselves.
        #[test]
        fn literals_round_trip(fields in proptest::collection::vec(
            ("[a-z-]{1,20}", "[ -~]{0,40}", 0u8..3), 0..8))
        {
            let mut block = Vec::new();
            for (name, value, how) in &fields {
                match how {
                    0 => encode_literal(&mut block, 0, name, value),
                    1 => {
                        block.push(0x40);
                        let n = huffman::encode(name.as_bytes());
                        encode_integer(&mut block, 0x80, 7, n.len());
                        block.extend_from_slice(&n);
                        let v = huffman::encode(value.as_bytes());
                        encode_integer(&mut block, 0x80, 7, v.len());
                        block.extend_from_slice(&v);
                    }
                    _ => {
                        block.push(0x10);
                        encode_integer(&mut block, 0, 7, name.len());
                        block.extend_from_slice(name.as_bytes());
                        encode_integer(&mut block, 0x80, 7, huffman::encode(value.as_bytes()).len());
                        block.extend_from_slice(&huffman::encode(value.as_bytes()));
                    }
                }
            }
            let d = &mut Decoder::new(4096, 16_384);
            let got = decode(d, &block).unwrap();
            let want: Fields = fields.iter().map(|(n, v, _)| (n.clone(), v.clone())).collect();
            prop_assert_eq!(got, want);
        }
    }
}
