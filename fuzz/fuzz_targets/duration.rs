//! Fuzz target `duration`: see `kai_init::fuzzing::duration` (the corpus replay test calls it too).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kai_init::fuzzing::duration(data));
