//! `kai-init check`: the HEALTHCHECK client (issue 3 fills this in).

use std::ffi::OsString;

pub fn main(_args: &[OsString]) -> u8 {
    eprintln!("kai-init check: not implemented yet");
    1
}
