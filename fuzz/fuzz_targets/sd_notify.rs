//! Fuzz target `sd_notify`: see `kai_init::fuzzing::sd_notify` (the corpus replay test calls it too).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kai_init::fuzzing::sd_notify(data));
