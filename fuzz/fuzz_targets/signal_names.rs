//! Fuzz target `signal_names`: see `kai_init::fuzzing::signal_names` (the corpus replay test calls it too).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kai_init::fuzzing::signal_names(data));
