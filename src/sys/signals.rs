//! Signals reach kai-init through a signalfd, never through handlers.
//!
//! Every asynchronous signal 1..=64 is blocked before the child exists and read from the
//! signalfd by the event loop. No handler means nothing async-signal-unsafe can run,
//! nothing can be lost between a handler and the loop, and nothing leaks into the child
//! (spawning empties the mask). Blocked signals are queued even for PID 1, which the kernel
//! would otherwise shield from any signal left at its default action.
//!
//! The set is built from raw bits, not from libc's sigfillset, and blocked and read with
//! raw system calls: libc leaves out the signals it reserves for itself (32..=34 with
//! glibc's SIGRTMIN of 34), and one of those left unblocked at its default action (to
//! terminate) let a plain `kill -34` end kai-init and orphan the application.
//!
//! What each signal does:
//! - 1..=31 but the ones below, and 34..=64: forwarded (see `supervise`), real-time ones
//!   one for one (they queue in the signalfd instead of merging).
//! - 32 and 33: read and dropped. Every libc reserves them for its own threads
//!   (cancellation, set*id broadcast, timers); no application can install a handler for
//!   them through libc, so forwarding one could only hit a libc's internals or kill a
//!   child at its default action. They are never fatal to kai-init: 32..=34 are also set
//!   to SIG_IGN, for the moment musl's posix_spawn unblocks them (see `block_all`).
//! - SIGPIPE: ignored, never blocked (see [`NOT_BLOCKED`]).
//! - SIGKILL and SIGSTOP: cannot be blocked or caught.
//! - The synchronous signals ([`SYNCHRONOUS`]): left unblocked at their default action,
//!   never forwarded. A fault in kai-init crashes it loudly with a core-dump status. Sent
//!   with kill(2): as PID 1 the kernel drops them (init has no handler for them; Rust's
//!   SEGV/BUS handler, which reports stack overflows, treats a non-fault as nothing);
//!   not PID 1 they end kai-init as they would any program, tini included.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use super::sigset::{BLOCKED, LIBC_RESERVED};

/// Blocks every signal in [`BLOCKED`] in the calling thread (and so in every thread started
/// after it), then resets their dispositions: what kai-init's parent left ignored (`nohup`,
/// a shell's `&`, a parent with SIGCHLD ignored, which would make the kernel reap the child
/// before kai-init could read its status; glibc's posix_spawn leaves 32 and 33 ignored)
/// would otherwise pass on to every child. Only blocked signals are reset, so none of them
/// can strike between the reset and the signalfd; they reach the signalfd whatever their
/// disposition. Call first thing, before the runtime and the child.
pub fn block_all() -> io::Result<()> {
    super::unsafe_ops::block_signals(BLOCKED)?;
    // All of them, without asking which were ignored: only SIG_IGN survives exec, so
    // setting SIG_DFL changes exactly those. Asking costs more than setting: the one place
    // that lists them at once, /proc/self/status, took the kernel 130-160 µs to render,
    // and these sixty rt_sigaction calls take about 22 µs (medians of 3,000 runs here).
    super::unsafe_ops::reset_dispositions(BLOCKED & !LIBC_RESERVED);
    // Blocked is not always enough for these: musl's posix_spawn unblocks them for a
    // moment (see `unsafe_ops::posix_spawnp`). Ignored, one arriving then is lost instead
    // of ending kai-init; blocked, they still queue for the signalfd. The child gets them
    // back at SIG_DFL from the spawn.
    super::unsafe_ops::ignore_dispositions(LIBC_RESERVED);
    Ok(())
}

/// The stream of signals, as (number, sender pid).
pub struct Signals {
    fd: AsyncFd<OwnedFd>,
}

impl Signals {
    /// Opens the signalfd for [`BLOCKED`]; needs a tokio runtime with I/O enabled.
    pub fn open() -> io::Result<Self> {
        let fd = super::unsafe_ops::signalfd(BLOCKED)?;
        Ok(Signals {
            fd: super::unsafe_ops::async_readable(fd)?,
        })
    }

    /// The next signal. Several deliveries of one standard signal coalesce into one, which
    /// is why the reaper loops until nothing is left.
    pub async fn recv(&mut self) -> io::Result<(i32, i32)> {
        // struct signalfd_siginfo: 128 bytes, ssi_signo at 0, ssi_pid at 12 (u32 each).
        let mut info = [0u8; 128];
        loop {
            let mut guard = self.fd.readable().await?;
            match nix::unistd::read(guard.get_inner().as_raw_fd(), &mut info) {
                Ok(128) => return Ok(decode(&info)),
                Ok(n) => return Err(io::Error::other(format!("short signalfd read: {n} bytes"))),
                Err(nix::errno::Errno::EAGAIN) => guard.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// (ssi_signo, ssi_pid) from one signalfd_siginfo.
fn decode(info: &[u8; 128]) -> (i32, i32) {
    let word = |at: usize| u32::from_ne_bytes([info[at], info[at + 1], info[at + 2], info[at + 3]]);
    (word(0) as i32, word(12) as i32)
}
