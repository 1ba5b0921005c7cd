//! Which signals kai-init blocks, ignores and leaves alone, as raw 64-bit sets in the
//! kernel's layout. Pure data: `signals` (the signalfd) and `unsafe_ops` (the mask and the
//! spawn) both read it, and neither imports the other for it. Why each set is what it is:
//! see `signals`.

/// Bit N-1 for signal N, the kernel's sigset layout.
pub const fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// Signals the kernel raises synchronously for a fault in kai-init itself (and abort()).
/// They keep their default action and are never forwarded, as in tini.
pub const SYNCHRONOUS: [i32; 7] = [
    libc::SIGABRT,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGSEGV,
    libc::SIGSYS,
    libc::SIGTRAP,
];

/// SIGPIPE stays unblocked and ignored (Rust's runtime ignores it before `main`): a
/// health client that hangs up mid-answer raises SIGPIPE on kai-init's own thread, and a
/// blocked one would reach the signalfd and be forwarded to the application, killing it.
/// The child still starts with SIGPIPE at its default (see `unsafe_ops::posix_spawnp`).
pub const NOT_BLOCKED: i32 = libc::SIGPIPE;

/// The signals libc reserves for itself that no application can handle: read, never
/// forwarded (see the module comment).
pub const LIBC_INTERNAL: [i32; 2] = [32, 33];

/// 32..=34: what musl reserves (glibc reserves 32 and 33, and its SIGRTMIN is 34).
pub const LIBC_RESERVED: u64 = 0b111 << 31;

/// Every signal 1..=64 that kai-init blocks and reads from its signalfd.
pub const BLOCKED: u64 = {
    let mut set = !(bit(libc::SIGKILL) | bit(libc::SIGSTOP) | bit(NOT_BLOCKED));
    let mut i = 0;
    while i < SYNCHRONOUS.len() {
        set &= !bit(SYNCHRONOUS[i]);
        i += 1;
    }
    set
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_every_asynchronous_signal_from_1_to_64() {
        for sig in 1..=64 {
            let expect = !(SYNCHRONOUS.contains(&sig)
                || [libc::SIGKILL, libc::SIGSTOP, libc::SIGPIPE].contains(&sig));
            assert_eq!(BLOCKED & bit(sig) != 0, expect, "signal {sig}");
        }
        // libc's reserved signals are the ones sigfillset leaves out.
        assert_eq!(BLOCKED & LIBC_RESERVED, LIBC_RESERVED);
        assert_eq!(LIBC_RESERVED, bit(32) | bit(33) | bit(34));
    }
}
