//! Fuzz target `grpc_hpack`: kai-init's HPACK decoder against fluke-hpack's (a fork of
//! the `hpack` crate with its panics fixed), block after block on one connection's
//! tables. Where both decode a block, the header lists must be identical; where one
//! refuses what the other accepts, it must be for a rule on which they knowingly differ.
//! Its own assertions are in checks.rs (replayed on stable by tests/grpc.rs).
#![no_main]

#[path = "checks.rs"]
mod checks;

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use fluke_hpack::decoder::DecoderError;
use kai_init::health::client::grpc::hpack::HpackError;

thread_local! {
    static IN_REFERENCE: Cell<bool> = const { Cell::new(false) };
}

/// libfuzzer-sys aborts on any panic; a panic inside the reference (fluke-hpack still
/// unwraps a truncated size update) is that decoder refusing the block, not a finding.
fn quiet_reference_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IN_REFERENCE.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    quiet_reference_panics();
    let mine = checks::hpack(data);
    let (limit, blocks) = checks::hpack_blocks(data);
    let mut reference = fluke_hpack::Decoder::new();
    reference.set_max_allowed_table_size(limit);
    reference.set_max_table_size(limit);
    for (block, mine) in blocks.iter().zip(&mine) {
        IN_REFERENCE.with(|f| f.set(true));
        let theirs = panic::catch_unwind(AssertUnwindSafe(|| reference.decode(block)));
        IN_REFERENCE.with(|f| f.set(false));
        match (mine, theirs) {
            (Ok(a), Ok(Ok(b))) => assert_eq!(a, &b, "block {block:02x?}"),
            // Both refuse: the kinds need not match.
            (Err(_), Ok(Err(_)) | Err(_)) => {}
            // fluke-hpack allows size updates anywhere in a block; RFC 7541, 4.2 puts
            // them at its start. It has no header list limit (kai-init's SETTINGS).
            (Err(HpackError::LateSizeUpdate | HpackError::ListTooLarge), Ok(Ok(_))) => {}
            // fluke-hpack refuses a block that ends with a size update; no RFC rule does.
            (Ok(_), Ok(Err(DecoderError::SizeUpdateAtEnd))) => {}
            (a, b) => panic!("kai-init {a:?} vs fluke-hpack {b:?} on block {block:02x?}"),
        }
        if mine.is_err() {
            break;
        }
    }
});
