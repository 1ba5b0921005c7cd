//! Reaping: collect every child that changed state, not only the main one.

use nix::errno::Errno;

use super::status::{decode, WaitEvent};
use super::unsafe_ops::wait_any;

/// One result of [`next`].
pub enum Reap {
    /// A child changed state (ended, stopped or continued).
    Child(i32, WaitEvent),
    /// Children remain, none has news.
    Pending,
    /// kai-init has no children left at all.
    Empty,
}

/// The next child with news, without blocking. Call it in a loop after every SIGCHLD
/// until it returns `Pending` or `Empty`: the kernel coalesces SIGCHLDs, so one signal may
/// stand for a thousand exits.
pub fn next() -> Reap {
    loop {
        match wait_any() {
            Ok(Some((pid, raw))) => return Reap::Child(pid, decode(raw)),
            Ok(None) => return Reap::Pending,
            Err(Errno::ECHILD) => return Reap::Empty,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                // Only EINVAL is documented besides these, and our flags are valid.
                tracing::error!("waitpid failed: {e}");
                return Reap::Pending;
            }
        }
    }
}
