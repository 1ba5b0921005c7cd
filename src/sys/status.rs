//! What a `waitpid` status says about a child, decoded the way <sys/wait.h>'s macros do.
//! Pure: the reaper hands it raw statuses, and every layout is unit-tested without a
//! process.

/// How the main child ended, decoded from the raw `waitpid` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// `exit(code)`; `code` is 0..=255.
    Exited(i32),
    /// Killed by signal number N (real-time signals included, which nix's enum cannot name).
    Signaled(i32),
}

/// What one `waitpid` result says about a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitEvent {
    Ended(Ended),
    Stopped(i32),
    Continued,
}

/// Decodes a raw wait status the way <sys/wait.h> macros do.
pub fn decode(raw: i32) -> WaitEvent {
    if libc::WIFEXITED(raw) {
        WaitEvent::Ended(Ended::Exited(libc::WEXITSTATUS(raw)))
    } else if libc::WIFSIGNALED(raw) {
        WaitEvent::Ended(Ended::Signaled(libc::WTERMSIG(raw)))
    } else if libc::WIFSTOPPED(raw) {
        WaitEvent::Stopped(libc::WSTOPSIG(raw))
    } else {
        WaitEvent::Continued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_raw_statuses() {
        // Layouts from the Linux ABI: exit code in bits 8..16, signal in 0..7, 0x7f = stopped.
        assert_eq!(decode(42 << 8), WaitEvent::Ended(Ended::Exited(42)));
        assert_eq!(decode(15), WaitEvent::Ended(Ended::Signaled(15)));
        assert_eq!(decode(34), WaitEvent::Ended(Ended::Signaled(34)));
        assert_eq!(decode((20 << 8) | 0x7f), WaitEvent::Stopped(20));
        assert_eq!(decode(0xffff), WaitEvent::Continued);
    }
}
