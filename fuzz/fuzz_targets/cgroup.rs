//! Fuzz target `cgroup`: see `kai_init::fuzzing::cgroup` (the corpus replay test calls it too).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kai_init::fuzzing::cgroup(data));
