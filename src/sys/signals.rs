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
//! - The numbers the kernel also uses for faults (ILL, TRAP, ABRT, BUS, FPE, SEGV, SYS):
//!   blocked and forwarded like the rest when another process sends them (`docker kill -s
//!   ABRT` to make the application dump core), as dumb-init does. A real fault in kai-init
//!   still ends it loudly: the kernel delivers a fault with force_sig_fault, which unblocks
//!   the signal and resets it to SIG_DFL first, and clears init's protection from signals
//!   at their default action, so even PID 1 dies of it (kernel/signal.c,
//!   force_sig_info_to_task). That is also what abort() comes to: glibc's unblocks SIGABRT
//!   before raising it; musl's sets SIG_DFL, raises and unblocks it, and (PID 1 ignores a
//!   raised SIGABRT at its default) then executes a faulting instruction. Rust's
//!   stack-overflow handler never runs with SEGV blocked: an overflow is the same forced
//!   SIGSEGV, without Rust's "has overflowed its stack" line.
//! - SIGPIPE: blocked too, and forwarded when another process sent it. kai-init's own
//!   writes on a broken pipe or socket raise it as well (pipe(7), unix(7)): the kernel
//!   sends that one to the writing thread with si_code SI_USER and kai-init's own pid as
//!   sender, which no other process can forge (rt_sigqueueinfo(2) refuses a non-negative
//!   si_code from another process, and kill(2) records the real sender), so exactly those
//!   are dropped ([`Signals::recv`]). It also stays SIG_IGN ([`STAYS_IGNORED`]).
//! - SIGKILL and SIGSTOP: cannot be blocked or caught.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use tracing::debug;

use super::sigset::{bit, BLOCKED, LIBC_RESERVED, STAYS_IGNORED};

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
    super::unsafe_ops::reset_dispositions(BLOCKED & !LIBC_RESERVED & !bit(STAYS_IGNORED));
    // Blocked is not always enough for these: musl's posix_spawn unblocks them for a
    // moment (see `unsafe_ops::posix_spawnp`). Ignored, one arriving then is lost instead
    // of ending kai-init; blocked, they still queue for the signalfd. The child gets them
    // back at SIG_DFL from the spawn. SIGPIPE: see [`STAYS_IGNORED`].
    super::unsafe_ops::ignore_dispositions(LIBC_RESERVED | bit(STAYS_IGNORED));
    Ok(())
}

/// The lowest-numbered signal now pending for which `wanted` says yes, left pending (the
/// signalfd still reads it). Start-up asks this where it has no loop yet, or is about to
/// spawn: a stop sent while secrets are read or just before COMMAND starts must not be
/// acted on only after COMMAND runs. One system call.
pub fn pending(wanted: impl Fn(i32) -> bool) -> Option<i32> {
    let bits = super::unsafe_ops::pending_signals().ok()?;
    (1..=64).find(|&sig| bits & bit(sig) != 0 && wanted(sig))
}

/// The stream of signals, as (number, sender pid).
pub struct Signals {
    fd: AsyncFd<OwnedFd>,
    /// kai-init's own pid, as the signalfd reports senders (in kai-init's PID namespace).
    own_pid: i32,
}

impl Signals {
    /// Opens the signalfd for [`BLOCKED`]; needs a tokio runtime with I/O enabled.
    pub fn open() -> io::Result<Self> {
        let fd = super::unsafe_ops::signalfd(BLOCKED)?;
        Ok(Signals {
            fd: super::unsafe_ops::async_readable(fd)?,
            own_pid: std::process::id() as i32,
        })
    }

    /// The next signal. Several deliveries of one standard signal coalesce into one, which
    /// is why the reaper loops until nothing is left. A SIGPIPE kai-init raised itself is
    /// skipped: it is kai-init's broken pipe, not a message for the child.
    pub async fn recv(&mut self) -> io::Result<(i32, i32)> {
        let mut info = [0u8; 128];
        loop {
            let mut guard = self.fd.readable().await?;
            match nix::unistd::read(guard.get_inner().as_raw_fd(), &mut info) {
                Ok(128) => {
                    let (sig, code, sender) = decode(&info);
                    if is_own_broken_pipe(sig, code, sender, self.own_pid) {
                        debug!("SIGPIPE from a write of kai-init's own (a peer hung up); not forwarded");
                        continue;
                    }
                    return Ok((sig, sender));
                }
                Ok(n) => return Err(io::Error::other(format!("short signalfd read: {n} bytes"))),
                Err(nix::errno::Errno::EAGAIN) => guard.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// (ssi_signo, ssi_code, ssi_pid) from one signalfd_siginfo (signalfd(2): 128 bytes,
/// ssi_signo at 0 and ssi_pid at 12 as u32, ssi_code at 8 as i32).
fn decode(info: &[u8; 128]) -> (i32, i32, i32) {
    let word = |at: usize| i32::from_ne_bytes([info[at], info[at + 1], info[at + 2], info[at + 3]]);
    (word(0), word(8), word(12))
}

/// The SIGPIPE the kernel raises for kai-init's own write on a broken pipe or socket:
/// send_sig(SIGPIPE, current, 0) records SI_USER and the writer's own pid. kill(2) from
/// any other process records that process's pid, and rt_sigqueueinfo(2) refuses SI_USER
/// (a non-negative si_code) from a process other than the receiver, so nothing sent from
/// outside matches.
fn is_own_broken_pipe(sig: i32, code: i32, sender: i32, own_pid: i32) -> bool {
    sig == libc::SIGPIPE && code == libc::SI_USER && sender == own_pid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(sig: u32, code: i32, pid: u32) -> [u8; 128] {
        let mut info = [0u8; 128];
        info[0..4].copy_from_slice(&sig.to_ne_bytes());
        info[8..12].copy_from_slice(&code.to_ne_bytes());
        info[12..16].copy_from_slice(&pid.to_ne_bytes());
        info
    }

    #[test]
    fn decodes_number_code_and_sender() {
        assert_eq!(decode(&info(13, -6, 42)), (13, -6, 42));
    }

    #[test]
    fn only_kai_inits_own_sigpipe_is_dropped() {
        let pipe = libc::SIGPIPE;
        assert!(is_own_broken_pipe(pipe, libc::SI_USER, 7, 7));
        // Sent by another process (kill), or queued or tkill'ed by anyone: forwarded.
        assert!(!is_own_broken_pipe(pipe, libc::SI_USER, 8, 7));
        assert!(!is_own_broken_pipe(pipe, libc::SI_QUEUE, 7, 7));
        assert!(!is_own_broken_pipe(pipe, libc::SI_TKILL, 7, 7));
        assert!(!is_own_broken_pipe(libc::SIGSEGV, libc::SI_USER, 7, 7));
    }
}
