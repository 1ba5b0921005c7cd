//! kai-init as a library: the binary's module tree, so that integration tests, property
//! tests and the fuzz targets (fuzz/glue.rs) reach the parsers the binary uses. `main.rs`
//! is the only user that runs it; nothing here is a stable API.
//!
//! The folders are the lifecycle, and each imports only the folders after it here:
//! `start` (before the child) → `health` (the endpoint, probes, `check`) → `supervise`
//! (the event loop) → `sys` (the kernel) → `config` (what was asked) → `util`.
#![deny(unsafe_code)]

pub mod config;
pub mod health;
pub mod start;
pub mod supervise;
pub mod sys;
pub mod util;
