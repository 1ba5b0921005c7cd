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

/// `sig` to the one process `pid`, which kai-init started or found descending from it.
/// Anything below 2 is refused (EINVAL): kill(0) is kai-init's own group, kill(-1) every
/// process, kill(-N) a group, and pid 1 is never a process kai-init started. A pid that
/// went wrong upstream must fail here, not widen into a kill of the machine (a mutant
/// that made the spawn return -1 would otherwise do exactly that).
pub fn kill(pid: i32, sig: i32) -> nix::Result<()> {
    if pid < 2 {
        return Err(nix::errno::Errno::EINVAL);
    }
    unsafe_ops::kill(pid, sig)
}

/// kill(-1): every process kai-init may signal. Only PID 1 of a namespace without a
/// /proc to tell its own tree from a `docker exec` session calls this, for its leftovers.
pub fn kill_every_process(sig: i32) -> nix::Result<()> {
    unsafe_ops::kill(-1, sig)
}

/// `sig` to the process group `pgid` (kill(-pgid)): the group of a process kai-init
/// started, whose number is that process's pid. Anything below 2 is refused (EINVAL)
/// instead of sent: kill(-1) is every process kai-init may signal, kill(-0) its own group.
/// Only a broken caller passes one, and that is when it matters: cargo mutants made
/// the spawn return pid 1, and the group kill that followed took down every process of
/// the machine the tests ran on.
pub fn kill_group(pgid: i32, sig: i32) -> nix::Result<()> {
    if pgid < 2 {
        return Err(nix::errno::Errno::EINVAL);
    }
    unsafe_ops::kill(-pgid, sig)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A group number that would be "every process" (1) or "my own group" (0) is never
    /// signalled; a real group is (signal 0 only asks whether it exists).
    #[test]
    fn a_group_kill_never_reaches_every_process() {
        for bad in [-5, 0, 1] {
            assert_eq!(kill_group(bad, 0), Err(nix::errno::Errno::EINVAL), "{bad}");
        }
        let own = nix::unistd::getpgrp().as_raw();
        assert_eq!(kill_group(own, 0), Ok(()));
    }

    /// Likewise one process: 0, 1 and every negative number mean more than one process
    /// (or init), so they are refused; a real pid is signalled.
    #[test]
    fn a_process_kill_never_reaches_a_group_or_init() {
        for bad in [i32::MIN, -1, 0, 1] {
            assert_eq!(kill(bad, 0), Err(nix::errno::Errno::EINVAL), "{bad}");
        }
        assert_eq!(kill(std::process::id() as i32, 0), Ok(()));
    }
}
