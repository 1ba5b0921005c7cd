//! What the gRPC client's fuzz targets (`grpc_hpack`, `grpc_frames`, in this folder)
//! check on each input, calling `kai_init::health::client::grpc` directly. Shared with
//! the corpus replay test (`grpc_corpora_replay` in tests/grpc.rs), which includes this
//! file, so CI replays every committed input on stable through the same assertions; only
//! the differential comparison with fluke-hpack (a fuzz-only dependency) stays in the
//! fuzz target. This folder sits below fuzz_targets/ so that tests/fuzz.rs's
//! registration test, which lists that folder's files, keeps to its own targets.
#![allow(dead_code)]

use std::time::Duration;

use kai_init::health::client::grpc;
use kai_init::health::client::grpc::exchange::{self, Exchange};
use kai_init::health::client::grpc::hpack::{Decoder, HpackError};

/// The table limits a fuzz input picks from with its first byte.
pub const LIMITS: [usize; 4] = [0, 64, 256, 4096];
/// The header list limit of the fuzzed decoder.
pub const MAX_LIST: usize = 16_384;

/// An HPACK input: the first byte picks the table limit, then blocks, each a length
/// byte and that many bytes (a short last block takes what is left).
pub fn hpack_blocks(data: &[u8]) -> (usize, Vec<&[u8]>) {
    let Some((&first, mut rest)) = data.split_first() else {
        return (4096, Vec::new());
    };
    let mut blocks = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        blocks.push(&tail[..len]);
        rest = &tail[len..];
    }
    (LIMITS[usize::from(first % 4)], blocks)
}

/// One block's result: its fields, or the error.
pub type Decoded = Result<Vec<(Vec<u8>, Vec<u8>)>, HpackError>;

/// kai-init's decoder over every block until the first error, asserting its promises:
/// the table never exceeds its maximum nor the maximum the limit; the entries add up to
/// the size; a header list never exceeds the limit. Returns each block's result.
pub fn hpack(data: &[u8]) -> Vec<Decoded> {
    let (limit, blocks) = hpack_blocks(data);
    let mut d = Decoder::new(limit, MAX_LIST);
    let mut results = Vec::new();
    for block in blocks {
        let mut fields = Vec::new();
        let r = d.decode(block, |n, v| fields.push((n.to_vec(), v.to_vec())));
        let list: usize = fields.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
        assert!(list <= MAX_LIST, "list {list}");
        let (size, max) = d.table_size();
        assert!(size <= max && max <= limit, "{size} {max} {limit}");
        let sum: usize = d.entries().map(|(n, v)| n.len() + v.len() + 32).sum();
        assert_eq!(sum, size);
        let failed = r.is_err();
        results.push(r.map(|()| fields));
        if failed {
            break;
        }
    }
    results
}

/// A frames input: the first byte picks the read size (1 to 256 bytes), the rest is
/// what the server sends. The exchange never panics, holds at most one frame plus its
/// bounded header block and message, writes at most its acks and one GOAWAY, and its
/// answer is one short line without control characters.
pub fn frames(data: &[u8]) {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk) + 1;
    let mut ex = Exchange::new("127.0.0.1:50051", "svc", Duration::from_secs(1)).unwrap();
    ex.take_output();
    let mut out = 0;
    for c in rest.chunks(chunk) {
        let answered = ex.receive(c).is_some();
        assert!(
            ex.buffered() <= 9 + 16_384 + chunk + exchange::MAX_BLOCK + exchange::MAX_MESSAGE,
            "{}",
            ex.buffered()
        );
        out += ex.take_output().len();
        if answered {
            break;
        }
    }
    let answer = ex.closed().clone();
    out += ex.take_output().len();
    assert!(out <= 17 * (exchange::MAX_REPLIES as usize + 2), "{out}");
    let line = match &answer {
        Ok(h) => h.to_string(),
        Err(e) => e.to_string(),
    };
    assert!(!line.chars().any(char::is_control), "{line:?}");
    // Server text is cut to MAX_SHOWN bytes once escaped; the fixed words are short.
    assert!(
        line.len() <= grpc::MAX_SHOWN + 80,
        "{} {line:?}",
        line.len()
    );
}
