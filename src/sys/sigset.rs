//! Which signals kai-init blocks, ignores and leaves alone, as raw 64-bit sets in the
//! kernel's layout. Pure data: `signals` (the signalfd) and `unsafe_ops` (the mask and the
//! spawn) both read it, and neither imports the other for it. Why each set is what it is:
//! see `signals`.

/// Bit N-1 for signal N, the kernel's sigset layout.
pub const fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// SIGPIPE is blocked like every other signal, so that one another process sends reaches
/// the signalfd and the child. kai-init's own writes raise it too (a health client that
/// hangs up mid-answer): those are told apart by their sender and dropped (see
/// `signals::Signals::recv`). It also stays ignored, as Rust's runtime leaves it before
/// `main`, so a thread that ever ran with it unblocked would get EPIPE rather than die.
/// The child still starts with SIGPIPE at its default (see `unsafe_ops::posix_spawnp`).
pub const STAYS_IGNORED: i32 = libc::SIGPIPE;

/// The signals libc reserves for itself that no application can handle: read, never
/// forwarded (see the module comment).
pub const LIBC_INTERNAL: [i32; 2] = [32, 33];

/// 32..=34: what musl reserves (glibc reserves 32 and 33, and its SIGRTMIN is 34).
pub const LIBC_RESERVED: u64 = 0b111 << 31;

/// Every signal 1..=64 that kai-init blocks and reads from its signalfd: all but KILL and
/// STOP, which cannot be blocked. The numbers the kernel also uses for faults (ILL, TRAP,
/// ABRT, BUS, FPE, SEGV, SYS) included: a real fault in kai-init is force-delivered whatever
/// the mask (the kernel unblocks it and resets it to SIG_DFL, see `signals`), and one
/// another process sent with kill(2) is queued and forwarded like any other.
pub const BLOCKED: u64 = !(bit(libc::SIGKILL) | bit(libc::SIGSTOP));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_every_signal_from_1_to_64_but_kill_and_stop() {
        for sig in 1..=64 {
            let expect = ![libc::SIGKILL, libc::SIGSTOP].contains(&sig);
            assert_eq!(BLOCKED & bit(sig) != 0, expect, "signal {sig}");
        }
        // libc's reserved signals are the ones sigfillset leaves out.
        assert_eq!(BLOCKED & LIBC_RESERVED, LIBC_RESERVED);
        assert_eq!(LIBC_RESERVED, bit(32) | bit(33) | bit(34));
    }
}
