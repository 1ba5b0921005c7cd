//! Fuzz target `proc_stat`: see `kai_init::fuzzing::proc_stat` (the corpus replay test calls it too).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kai_init::fuzzing::proc_stat(data));
