//! The HPACK Huffman code (RFC 7541, section 5.2 and Appendix B): decoding a header
//! string a server sent Huffman-encoded, with the two errors the RFC requires (the EOS
//! symbol in the data, padding that is not EOS's leading ones or longer than 7 bits).
//!
//! The code of Appendix B is canonical: within one length, codes count up in symbol
//! order, and lengths grow with codes. So the whole table is how many codes each length
//! has ([`COUNTS`]) and the symbols in code order ([`SYMBOLS`]), 287 bytes, and decoding
//! is the bit-serial canonical walk (as zlib's `puff` does): no tree, no 4 KB state table.
//! Header strings a health check reads are short; a few nanoseconds a bit is nothing.

/// How many codes have each length in bits (index = length, 0..=30); the 30-bit ones
/// end with EOS (256), the last code of all.
const COUNTS: [u8; 31] = [
    0, 0, 0, 0, 0, 10, 26, 32, 6, 0, 5, 3, 2, 6, 2, 3, 0, 0, 0, 3, 8, 13, 26, 29, 12, 4, 15, 19,
    29, 0, 4,
];

/// The 256 byte symbols in code order (Appendix B sorted by code); EOS follows them.
const SYMBOLS: [u8; 256] = [
    48, 49, 50, 97, 99, 101, 105, 111, 115, 116, 32, 37, 45, 46, 47, 51, 52, 53, 54, 55, 56, 57,
    61, 65, 95, 98, 100, 102, 103, 104, 108, 109, 110, 112, 114, 117, 58, 66, 67, 68, 69, 70, 71,
    72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 89, 106, 107, 113, 118, 119,
    120, 121, 122, 38, 42, 44, 59, 88, 90, 33, 34, 40, 41, 63, 39, 43, 124, 35, 62, 0, 36, 64, 91,
    93, 126, 94, 125, 60, 96, 123, 92, 195, 208, 128, 130, 131, 162, 184, 194, 224, 226, 153, 161,
    167, 172, 176, 177, 179, 209, 216, 217, 227, 229, 230, 129, 132, 133, 134, 136, 146, 154, 156,
    160, 163, 164, 169, 170, 173, 178, 181, 185, 186, 187, 189, 190, 196, 198, 228, 232, 233, 1,
    135, 137, 138, 139, 140, 141, 143, 147, 149, 150, 151, 152, 155, 157, 158, 165, 166, 168, 174,
    175, 180, 182, 183, 188, 191, 197, 231, 239, 9, 142, 144, 145, 148, 159, 171, 206, 215, 225,
    236, 237, 199, 207, 234, 235, 192, 193, 200, 201, 202, 205, 210, 213, 218, 219, 238, 240, 242,
    243, 255, 203, 204, 211, 212, 214, 221, 222, 223, 241, 244, 245, 246, 247, 248, 250, 251, 252,
    253, 254, 2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28,
    29, 30, 31, 127, 220, 249, 10, 13, 22,
];

/// EOS: its index in code order is 256, after every byte.
const EOS: usize = 256;

/// Why a Huffman string is refused (RFC 7541, section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HuffmanError {
    /// The EOS symbol appears in the string.
    Eos,
    /// The last bits are not a prefix of EOS (all ones), or are 8 or more.
    Padding,
}

/// Appends the decoding of `input` to `out`. At most `input.len() * 8 / 5` bytes are
/// added (the shortest code has 5 bits), so the caller's bound on `input` bounds `out`.
pub fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    out.reserve(input.len() * 8 / 5);
    // The canonical walk: `code` is the bits read since the last symbol, `first` the
    // first code of the current length, `index` the position of that code in SYMBOLS.
    let (mut code, mut first, mut index, mut len) = (0u32, 0u32, 0usize, 0usize);
    let mut all_ones = true;
    for &byte in input {
        for shift in (0..8).rev() {
            let bit = u32::from(byte >> shift) & 1;
            code |= bit;
            all_ones &= bit == 1;
            len += 1;
            // Never past 30 bits: the code is complete (Kraft sum 1, tested), so every
            // 30-bit string is a code. `get` keeps even a broken table from panicking.
            let Some(&count) = COUNTS.get(len) else {
                return Err(HuffmanError::Eos);
            };
            let count = u32::from(count);
            if code.wrapping_sub(first) < count {
                let at = index + (code - first) as usize;
                if at == EOS {
                    return Err(HuffmanError::Eos);
                }
                out.push(SYMBOLS[at]);
                (code, first, index, len, all_ones) = (0, 0, 0, 0, true);
            } else {
                index += count as usize;
                first = (first + count) << 1;
                code <<= 1;
            }
        }
    }
    // What is left is padding: at most 7 bits, all ones (the most significant bits of EOS).
    if len > 7 || !all_ones {
        return Err(HuffmanError::Padding);
    }
    Ok(())
}

/// The code of each byte (value, length in bits), derived from the canonical table; for
/// tests and fuzz targets that need Huffman-encoded input (kai-init's own request sends
/// its few strings as plain literals).
pub fn code_of(byte: u8) -> (u32, u32) {
    let (mut first, mut index) = (0u32, 0usize);
    for (len, &count) in COUNTS.iter().enumerate().skip(1) {
        let count = usize::from(count);
        if let Some(k) = SYMBOLS[index..index + count.min(256 - index)]
            .iter()
            .position(|&s| s == byte)
        {
            return (first + k as u32, len as u32);
        }
        index += count;
        first = (first + count as u32) << 1;
    }
    unreachable!("every byte has a code")
}

/// `input` Huffman-encoded, padded with ones (RFC 7541, section 5.2).
pub fn encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let (mut acc, mut bits) = (0u64, 0u32);
    for &b in input {
        let (code, len) = code_of(b);
        acc = (acc << len) | u64::from(code);
        bits += len;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) as u8);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::client::grpc::hex;
    use proptest::prelude::*;

    fn dec(input: &[u8]) -> Result<Vec<u8>, HuffmanError> {
        let mut out = Vec::new();
        decode(input, &mut out).map(|()| out)
    }

    /// Codes as Appendix B lists them (code, bits), for bytes across the table.
    #[test]
    fn codes_are_appendix_b() {
        for (byte, code) in [
            (0u8, (0x1ff8, 13)),
            (b' ', (0x14, 6)),
            (b'0', (0x0, 5)),
            (b'a', (0x3, 5)),
            (b'~', (0x1ffd, 13)),
            (255, (0x3ffffee, 26)),
        ] {
            assert_eq!(code_of(byte), code, "{byte}");
        }
    }

    /// The table is a complete prefix code (Kraft sum exactly 1) ending with EOS's 30
    /// ones, so every bit string decodes or ends in padding, and `len` stays <= 30.
    #[test]
    fn table_is_complete() {
        let kraft: u64 = (1..=30).map(|l| u64::from(COUNTS[l]) << (30 - l)).sum();
        assert_eq!(kraft, 1 << 30);
        assert_eq!(COUNTS.iter().map(|&c| usize::from(c)).sum::<usize>(), 257);
        let mut seen = [false; 256];
        SYMBOLS.iter().for_each(|&s| seen[usize::from(s)] = true);
        assert!(seen.iter().all(|&s| s));
    }

    /// RFC 7541, Appendix C.4.1 and C.6.1 strings.
    #[test]
    fn appendix_c_strings() {
        assert_eq!(
            dec(&hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff")).unwrap(),
            b"www.example.com"
        );
        assert_eq!(dec(&hex("a8eb 1064 9cbf")).unwrap(), b"no-cache");
        assert_eq!(dec(&hex("6402")).unwrap(), b"302");
        assert_eq!(dec(&hex("aec3 771a 4b")).unwrap(), b"private");
        assert_eq!(
            dec(&hex(
                "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff"
            ))
            .unwrap(),
            b"Mon, 21 Oct 2013 20:13:21 GMT"
        );
        assert_eq!(
            encode(b"www.example.com"),
            hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff")
        );
        assert_eq!(dec(&[]).unwrap(), b"");
    }

    /// Section 5.2's three errors: EOS in the data, padding of zeros, 8+ bits of padding.
    #[test]
    fn eos_and_padding_are_errors() {
        // 30 ones: EOS itself.
        assert_eq!(dec(&[0xff, 0xff, 0xff, 0xfc]), Err(HuffmanError::Eos));
        assert_eq!(dec(&[0xff, 0xff, 0xff, 0xff]), Err(HuffmanError::Eos));
        // 'a' (00011) padded with ones, with zeros, and with a byte more of ones.
        assert_eq!(dec(&[0x1f]).unwrap(), b"a");
        assert_eq!(dec(&[0x18]), Err(HuffmanError::Padding));
        assert_eq!(dec(&[0x1f, 0xff]), Err(HuffmanError::Padding));
        // A whole byte of ones alone: 8 bits of padding, too long.
        assert_eq!(dec(&[0xff]), Err(HuffmanError::Padding));
        // 'a', '1' (00001), then six ones: fine. 'a', '0', '0', then a 0: not EOS's.
        assert_eq!(dec(&[0x18, 0x7f]).unwrap(), b"a1");
        assert_eq!(dec(&[0x18, 0x00]), Err(HuffmanError::Padding));
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(dec(&encode(&bytes)).unwrap(), bytes);
        }

        /// Any input: no panic, and the output stays within the 8/5 bound.
        #[test]
        fn any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut out = Vec::new();
            let _ = decode(&bytes, &mut out);
            prop_assert!(out.len() <= bytes.len() * 8 / 5);
        }
    }
}
