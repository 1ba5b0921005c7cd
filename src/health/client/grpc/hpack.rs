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
