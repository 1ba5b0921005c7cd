//! Fuzz target `wait_target`: see `kai_init::fuzzing::wait_target` (the corpus replay test calls it too).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kai_init::fuzzing::wait_target(data));
