//! Fuzz target `grpc_frames`: any bytes from a server, read in any chunk size, through
//! the whole gRPC health exchange (frames, HPACK, gRPC message). The checks are in
//! checks.rs, replayed on stable by tests/grpc.rs.
#![no_main]

#[path = "checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::frames(data));
