//! Fuzz target `exit_status`: see `kai_init::fuzzing::exit_status` (the corpus replay test calls it too).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kai_init::fuzzing::exit_status(data));
