//! The system-call side of kai-init: signals, spawning, reaping, privileges, the
//! terminal, /proc, the cgroup and its OOM events. Nothing here knows about HTTP or
//! decides policy; nothing outside `sys::unsafe_ops` uses `unsafe`. Imports `config` (the
//! types it is handed) and `util` only.

pub mod cgroup;
pub mod oom_events;
pub mod privileges;
pub mod proc;
pub mod reaper;
pub mod signals;
pub mod sigset;
pub mod spawn;
pub mod status;
pub mod tty;
#[allow(unsafe_code)]
mod unsafe_ops;
pub mod workdir;

pub use unsafe_ops::kill;

use nix::unistd::{getpid, Pid};

/// Whether kai-init is the init of its PID namespace (a container's PID 1).
pub fn is_pid1() -> bool {
    getpid() == Pid::from_raw(1)
}

/// When not PID 1, orphans would be reparented past kai-init; becoming a child subreaper
/// (prctl(2), Linux 3.4) makes them ours to reap, as tini -s does.
pub fn become_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// PR_SET_NO_NEW_PRIVS on kai-init itself (it never needs to gain privileges after
/// start-up); the child and every probe inherit it.
pub fn set_no_new_privs() -> nix::Result<()> {
    nix::sys::prctl::set_no_new_privs()
}
