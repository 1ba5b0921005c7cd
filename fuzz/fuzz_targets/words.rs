//! Fuzz target `words`: see `kai_init::fuzzing::words` (the corpus replay test calls it too).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kai_init::fuzzing::words(data));
