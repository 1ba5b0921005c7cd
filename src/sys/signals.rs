//! Signals reach kai-init through a signalfd, never through handlers.
//!
//! Every catchable signal is blocked before the child exists and read from the signalfd
//! by the event loop. No handler means nothing async-signal-unsafe can run, nothing can be
//! lost between a handler and the loop, and nothing leaks into the child (std empties the
//! mask before exec). Blocked signals are queued even for PID 1, which the kernel would
//! otherwise shield from any signal left at its default action.

use std::io;

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use tokio::io::unix::AsyncFd;

/// Signals the kernel raises synchronously for a fault in kai-init itself. Blocking them
/// would turn a crash into a hang, so, as in tini, they keep their default action and are
/// never forwarded. SIGKILL and SIGSTOP cannot be blocked at all.
const SYNCHRONOUS: [Signal; 7] = [
    Signal::SIGABRT,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGSYS,
    Signal::SIGTRAP,
];

/// SIGPIPE stays unblocked and ignored (Rust's runtime ignores it before `main`): a
/// health client that hangs up mid-answer raises SIGPIPE on kai-init's own thread, and a
/// blocked one would reach the signalfd and be forwarded to the application, killing it.
/// The child still starts with SIGPIPE at its default (see `unsafe_ops::install`).
const NOT_BLOCKED: Signal = Signal::SIGPIPE;

/// Blocks every catchable, asynchronous signal in the calling thread (and so in every
/// thread started after it), then resets what kai-init's parent left ignored (`nohup`, a
/// shell's `&`, a parent with SIGCHLD ignored, which would make the kernel reap the child
/// before kai-init could read its status). Blocked signals reach the signalfd whatever
/// their disposition; the child gets default dispositions from the spawn itself. Call first
/// thing, before the runtime and the child.
pub fn block_all() -> nix::Result<SigSet> {
    let mut set = SigSet::all();
    for sig in SYNCHRONOUS {
        set.remove(sig);
    }
    set.remove(NOT_BLOCKED);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    let keep = 1u64 << (NOT_BLOCKED as i32 - 1);
    super::unsafe_ops::reset_dispositions(inherited_ignored() & !keep);
    Ok(set)
}

/// Signals ignored on entry, bit N-1 for signal N. Only SIG_IGN survives exec, so these are
/// all the non-default dispositions kai-init inherited; read from /proc/self/status in
/// one read instead of 64 sigaction calls, and "all of them" without /proc.
fn inherited_ignored() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("SigIgn:"))?;
            u64::from_str_radix(line["SigIgn:".len()..].trim(), 16).ok()
        })
        .unwrap_or(u64::MAX)
}

/// The stream of signals, as (number, sender pid).
pub struct Signals {
    fd: AsyncFd<SignalFd>,
}

impl Signals {
    /// Opens the signalfd for `set`; needs a tokio runtime with I/O enabled.
    pub fn open(set: &SigSet) -> io::Result<Self> {
        let fd = SignalFd::with_flags(set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals {
            fd: super::unsafe_ops::async_readable(fd)?,
        })
    }

    /// The next signal. Several deliveries of one standard signal coalesce into one, which
    /// is why the reaper loops until nothing is left.
    pub async fn recv(&mut self) -> io::Result<(i32, i32)> {
        loop {
            let mut guard = self.fd.readable_mut().await?;
            match guard.get_inner_mut().read_signal() {
                Ok(Some(info)) => return Ok((info.ssi_signo as i32, info.ssi_pid as i32)),
                Ok(None) => guard.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }
}
