//! Fuzz target `user_spec`: see `kai_init::fuzzing::user_spec` (the corpus replay test calls it too).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kai_init::fuzzing::user_spec(data));
