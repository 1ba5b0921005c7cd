//! Fuzz target `cli`: see `cli` in fuzz/glue.rs (the corpus replay test, tests/fuzz.rs, calls it too).
#![no_main]
#[allow(dead_code)]
#[path = "../glue.rs"]
mod glue;
libfuzzer_sys::fuzz_target!(|data: &[u8]| glue::cli(data));
