//! The health side: listeners, probes of the child, readiness notification, formats.
//! It reads the supervisor's published state and never touches processes.
//! (Work in progress: issue 3 fills this in; the core only binds nothing yet.)

pub mod probe;

use std::ffi::OsString;
use std::os::fd::RawFd;

use crate::cli::RunArgs;
use crate::error::Error;
use crate::state::Subscriber;

pub struct Health {
    _state: Subscriber,
}

impl Health {
    pub fn bind(_args: &RunArgs, state: Subscriber) -> Result<Self, Error> {
        Ok(Health { _state: state })
    }

    pub fn child_env(&self) -> Vec<(&'static str, Option<OsString>)> {
        Vec::new()
    }

    pub fn child_fd(&self) -> Option<(RawFd, RawFd)> {
        None
    }

    pub fn start(self) {}
}
