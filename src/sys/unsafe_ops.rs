//! The one fenced module with `unsafe`: starting the child (posix_spawnp, and the step
//! that runs between fork and exec when one is needed), the libc calls that nix cannot
//! express (kill and waitpid with real-time signals, rt_sigaction for libc's reserved
//! signals), and registering a descriptor with tokio's reactor.
//!
//! Every block states the invariant it relies on in a SAFETY comment.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::errno::Errno;

/// What the child does for itself after fork and before exec; all of it is decided
/// before fork so that the child allocates nothing.
#[derive(Debug, Clone, Copy)]
pub struct PreExec {
    /// Make the child's (new) process group the terminal's foreground group.
    pub take_terminal: bool,
    /// prctl(PR_SET_NO_NEW_PRIVS).
    pub no_new_privs: bool,
    /// Duplicate this descriptor onto the given number (s6-style readiness fd).
    pub dup_fd: Option<(RawFd, RawFd)>,
}

/// Prepares `cmd` (the fork path) to start a clean child. std resets neither the mask
/// (seen here: without the reset a grandchild ran with kai-init's whole mask blocked and
/// shrugged off SIGTERM) nor dispositions, so the step does both itself, last, while
/// everything is still blocked. PR_SET_NO_NEW_PRIVS is set on kai-init itself (it never
/// needs to gain privileges after start-up) and inherited.
pub fn install(cmd: &mut Command, pre: PreExec) {
    if pre.no_new_privs {
        set_no_new_privs();
    }
    let step = move || -> io::Result<()> {
        if pre.take_terminal {
            // The mask is still kai-init's, SIGTTOU included, so tcsetpgrp from this
            // background group is allowed (tcsetpgrp(3)). A failure leaves the child in the
            // background, which is harmless. (libc, not nix: nix wants an AsFd, and std's
            // stdin() handle allocates on first use.)
            // SAFETY: tcsetpgrp and getpgrp take and return integers only.
            let _ = unsafe { libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpgrp()) };
        }
        if let Some((from, to)) = pre.dup_fd {
            // SAFETY: dup2 and fcntl take plain integers and touch no Rust-owned memory;
            // `from` is a descriptor kai-init keeps open until spawn returns.
            let r = unsafe { libc::dup2(from, to) };
            Errno::result(r)?;
            if from == to {
                // dup2 onto itself keeps FD_CLOEXEC; clear it so the descriptor survives exec.
                // SAFETY: as above, integers only.
                Errno::result(unsafe { libc::fcntl(to, libc::F_SETFD, 0) })?;
            }
        }
        reset_dispositions(u64::MAX);
        nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&nix::sys::signal::SigSet::empty()),
            None,
        )?;
        Ok(())
    };
    // SAFETY: the closure runs in the forked child, before exec. The parent may have other
    // threads (exec: probes are spawned from a helper thread so that an exec hung on a
    // mount never blocks the loop), so the closure must be async-signal-safe: it only makes
    // async-signal-safe system calls (tcsetpgrp, getpgrp, dup2, fcntl, rt_sigaction,
    // sigprocmask) on values copied in before fork; it allocates nothing, takes no lock,
    // and touches no state shared with the parent.
    unsafe {
        cmd.pre_exec(step);
    }
}

fn set_no_new_privs() {
    if let Err(e) = nix::sys::prctl::set_no_new_privs() {
        tracing::warn!("cannot set no_new_privs: {e}");
    }
}

/// The fast path for the main child when no pre-exec step is needed: posix_spawnp with an
/// empty mask, every signal at SIG_DFL (see `defaults` below) and a new process group.
/// musl implements it with CLONE_VM|CLONE_VFORK, so neither process pays the copy-on-write
/// faults of fork, which were a good part of kai-init's start-up overhead over tini's.
/// (std's own posix_spawn path leaves the parent's mask in place, so it cannot be used.)
/// `envp: None` passes kai-init's own environment through untouched, without copying it.
/// Returns the pid, or the errno of the failed exec.
pub fn posix_spawnp(
    argv: &[CString],
    envp: Option<&[CString]>,
    no_new_privs: bool,
) -> io::Result<i32> {
    if no_new_privs {
        set_no_new_privs();
    }
    let argv_ptrs: Vec<*mut libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let envp_ptrs: Option<Vec<*mut libc::c_char>> = envp.map(|envp| {
        envp.iter()
            .map(|e| e.as_ptr().cast_mut())
            .chain(std::iter::once(std::ptr::null_mut()))
            .collect()
    });
    let mut pid: libc::pid_t = 0;
    // SAFETY: `attr` and the two sigsets are initialised by their init calls before any
    // other use and destroyed before return; a sigset_t is at least 8 bytes, aligned for a
    // u64 word; argv and envp are NULL-terminated arrays of pointers into CStrings that
    // outlive the call, or `environ`, which nothing modifies while kai-init's one thread is
    // in this call; posix_spawnp writes only `pid`.
    unsafe {
        let mut attr = std::mem::MaybeUninit::<libc::posix_spawnattr_t>::uninit();
        spawn_err(libc::posix_spawnattr_init(attr.as_mut_ptr()))?;
        let attr = attr.as_mut_ptr();
        let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        let mut defaults = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(empty.as_mut_ptr());
        libc::sigemptyset(defaults.as_mut_ptr());
        // What the child must set back to SIG_DFL: kai-init reset everything it inherited
        // ignored at start-up, and posix_spawn resets signals that have handlers (Rust's
        // SEGV/BUS). Left: SIGPIPE, which Rust ignores, and the signals libc reserves
        // (32..=34), which both glibc and musl make SIG_IGN in the child unless they are in
        // this set. sigaddset refuses the reserved ones, so the bits are set directly: the
        // first word of a Linux sigset_t holds signals 1..=64, bit N-1 for signal N, in
        // both libcs, and their posix_spawn reads it bit by bit.
        defaults
            .as_mut_ptr()
            .cast::<u64>()
            .write(1 << (libc::SIGPIPE - 1) | 0b111 << 31);
        let flags = libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF
            | libc::POSIX_SPAWN_SETPGROUP;
        let result = spawn_err(libc::posix_spawnattr_setflags(attr, flags as libc::c_short))
            .and_then(|()| spawn_err(libc::posix_spawnattr_setsigmask(attr, empty.as_ptr())))
            .and_then(|()| spawn_err(libc::posix_spawnattr_setsigdefault(attr, defaults.as_ptr())))
            .and_then(|()| spawn_err(libc::posix_spawnattr_setpgroup(attr, 0)))
            .and_then(|()| {
                spawn_err(libc::posix_spawnp(
                    &mut pid,
                    argv_ptrs[0],
                    std::ptr::null(),
                    attr,
                    argv_ptrs.as_ptr(),
                    match &envp_ptrs {
                        Some(ptrs) => ptrs.as_ptr(),
                        None => environ.cast(),
                    },
                ))
            });
        libc::posix_spawnattr_destroy(attr);
        result?;
    }
    Ok(pid)
}

extern "C" {
    /// The process environment (environ(7)); std reads and writes the same array.
    static environ: *const *const libc::c_char;
}

/// posix_spawn functions return the error number instead of setting errno.
fn spawn_err(code: libc::c_int) -> io::Result<()> {
    match code {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// The kernel's `struct sigaction` for rt_sigaction(2), in the layout of
/// include/uapi/asm-generic/signal.h that x86_64 and aarch64 share. libc's struct differs,
/// and libc's sigaction() refuses the signals it reserves for itself (32..=34), which a
/// parent such as glibc's posix_spawn leaves ignored.
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Sets every signal whose bit is in `signals` (bit N-1 for signal N) to SIG_DFL, but KILL
/// and STOP, which cannot be caught or ignored. Only call it with those signals blocked or
/// in a child about to exec: a default action is to terminate.
pub fn reset_dispositions(signals: u64) {
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=crate::signal_names::RTMAX {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || signals & (1 << (sig - 1)) == 0 {
            continue;
        }
        // SAFETY: the kernel reads one KernelSigaction (a live local in the kernel's
        // layout) and writes nothing (old action NULL); 8 is the size of the kernel's
        // sigset. A failure leaves that one signal as it was, which is all it can do.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            );
        }
    }
}

/// kill(2) with a raw signal number, so real-time signals can be forwarded too; a
/// negative `pid` names a process group, -1 every process kai-init may signal.
pub fn kill(pid: i32, sig: i32) -> nix::Result<()> {
    // SAFETY: kill takes two integers and shares no memory with the caller.
    Errno::result(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// waitpid(-1, WNOHANG | WUNTRACED) with the raw status. nix's wrapper would turn the
/// status of a child killed by a real-time signal into an error after the kernel had
/// already reaped it, losing the exit status.
pub fn wait_any() -> nix::Result<Option<(i32, i32)>> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a live, writable c_int for the whole call; waitpid writes only it.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::WUNTRACED) };
    match Errno::result(pid)? {
        0 => Ok(None),
        pid => Ok(Some((pid, status))),
    }
}

/// Registers an owned descriptor with the tokio reactor, for reading.
pub fn async_readable<T: std::os::fd::AsFd + std::os::fd::AsRawFd>(
    inner: T,
) -> io::Result<tokio::io::unix::AsyncFd<T>> {
    // SAFETY: `T` owns its descriptor (AsFd), so it stays open and the same for as long as
    // the AsyncFd owns `T`; signalfd's and std's types always return that one descriptor.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(inner, tokio::io::Interest::READABLE)
    }
    .map_err(io::Error::from)
}
