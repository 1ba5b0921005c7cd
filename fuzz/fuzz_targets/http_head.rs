//! Fuzz target `http_head`: see `kai_init::fuzzing::http_head` (the corpus replay test calls it too).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kai_init::fuzzing::http_head(data));
