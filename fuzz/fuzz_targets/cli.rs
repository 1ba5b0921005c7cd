//! Fuzz target `cli`: see `kai_init::fuzzing::cli` (the corpus replay test calls it too).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kai_init::fuzzing::cli(data));
