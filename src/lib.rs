//! kai-init as a library: every module of the binary, so that fuzz targets and property
//! tests reach the parsers the binary uses. `main.rs` is the only user that runs it;
//! nothing here is a stable API.
#![deny(unsafe_code)]

pub mod backoff;
pub mod cgroup;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod duration;
pub mod error;
pub mod exit;
pub mod expand;
pub mod file_env;
pub mod fuzzing;
pub mod health;
pub mod health_socket;
pub mod http;
pub mod json;
pub mod launch;
pub mod lock;
pub mod log;
pub mod signal_names;
pub mod state;
pub mod supervisor;
pub mod sys;
pub mod text;
pub mod user;
pub mod wait;
pub mod words;
