//! Fuzz target `expand`: see `kai_init::fuzzing::expand` (the corpus replay test calls it too).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kai_init::fuzzing::expand(data));
