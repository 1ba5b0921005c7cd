//! The one fenced module with `unsafe`: starting the child (posix_spawnp with file
//! actions, and, only to hand it the terminal, a step between fork and exec), the system
//! calls libc filters or nix cannot express (rt_sigprocmask, signalfd4 and rt_sigaction
//! for every signal 1..=64, libc's reserved ones included; kill and waitpid with
//! real-time signals), and registering the signalfd with tokio's reactor.
//!
//! Every block states the invariant it relies on in a SAFETY comment.

// The raw rt_sigaction below uses the kernel's generic `struct sigaction` layout and an
// 8-byte sigset; both hold on these two architectures only (others, such as mips, sparc
// and alpha, order the fields differently or use other signal numbers).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("kai-init's raw signal system calls are written for x86_64 and aarch64 only");

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use super::sigset::bit;
use nix::errno::Errno;
use tokio::io::unix::AsyncFd;

/// The size of the kernel's signal set: one 64-bit word, bit N-1 for signal N (1..=64).
const KERNEL_SIGSET_SIZE: usize = 8;

/// Blocks the signals in `bits` (bit N-1 for signal N) in the calling thread with the raw
/// system call: glibc's sigprocmask silently drops its reserved signals 32 and 33 from the
/// set, which would leave them at a fatal default action.
pub fn block_signals(bits: u64) -> io::Result<()> {
    sigprocmask_raw(libc::SIG_BLOCK, bits).map_err(io::Error::from)
}

/// rt_sigprocmask(how, bits) on the calling thread, every signal 1..=64 included.
/// Async-signal-safe (one system call, no allocation): the pre-exec step uses it too.
fn sigprocmask_raw(how: libc::c_int, bits: u64) -> nix::Result<()> {
    // SAFETY: the kernel reads one u64 (a live local) as the new set and writes nothing
    // (old set NULL); the size is the kernel's sigset size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            &bits as *const u64,
            std::ptr::null_mut::<u64>(),
            KERNEL_SIGSET_SIZE,
        )
    };
    Errno::result(r).map(drop)
}

/// The signals pending for the calling thread or the process (bit N-1 for signal N), left
/// on their queues: rt_sigpending, raw for the same reason as [`block_signals`].
pub fn pending_signals() -> io::Result<u64> {
    let mut bits: u64 = 0;
    // SAFETY: the kernel writes one u64 (the kernel's sigset size) into a live local.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigpending,
            &mut bits as *mut u64,
            KERNEL_SIGSET_SIZE,
        )
    };
    Errno::result(r).map_err(io::Error::from)?;
    Ok(bits)
}

/// A signalfd (non-blocking, close-on-exec) for the signals in `bits`, with the raw
/// system call for the same reason as [`block_signals`].
pub fn signalfd(bits: u64) -> io::Result<OwnedFd> {
    // SAFETY: the kernel reads one u64 (a live local) as the mask; -1 asks for a new
    // descriptor, which nothing else owns yet.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_signalfd4,
            -1,
            &bits as *const u64,
            KERNEL_SIGSET_SIZE,
            libc::SFD_NONBLOCK | libc::SFD_CLOEXEC,
        )
    };
    let fd = Errno::result(fd).map_err(io::Error::from)? as RawFd;
    // SAFETY: signalfd4 just returned this descriptor, open and owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A close-on-exec copy of `fd` on the lowest free number from 3.
pub fn dup_cloexec(fd: RawFd) -> io::Result<OwnedFd> {
    let copy = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) just returned this new descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// Registers a descriptor (the signalfd, the OOM event source) with the tokio reactor,
/// for reading.
pub fn async_readable(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: tokio requires the descriptor to stay open and the same for the AsyncFd's
    // whole life. An OwnedFd owns exactly one descriptor, closes it only on drop (which
    // the AsyncFd does after deregistering) and its as_raw_fd never changes; the caller
    // only ever reads through it, never swaps it.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)
}

/// A descriptor (or the directory) the child gets from posix_spawn's file actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAction {
    /// chdir(dir) in the child (posix_spawn_file_actions_addchdir_np: musl 1.1.24, glibc
    /// 2.29), so kai-init never changes its own directory for a spawn: `exec:` probes start
    /// on a helper thread while the loop runs, and the directory is the whole process's.
    Chdir(&'static std::ffi::CStr),
    /// dup2(from, to). `from` must differ from `to` (older libcs leave FD_CLOEXEC set on
    /// an equal pair) and stay open until the spawn returns.
    Dup2 { from: RawFd, to: RawFd },
    /// `fd` opened on /dev/null, for reading or for writing.
    DevNull { fd: RawFd, write: bool },
}

/// Starts a child with posix_spawnp: an empty signal mask, every signal at SIG_DFL (see
/// `defaults` below), a new process group, and `actions` applied in order. musl and glibc
/// implement it with CLONE_VM|CLONE_VFORK, so neither process pays the copy-on-write
/// faults of fork (a good part of kai-init's start-up overhead over tini's), and both
/// report a failed exec through a pipe of their own that they keep clear of the
/// descriptors named in `actions`, so 126/127 stay exact whatever number a dup2 targets.
/// It is safe with other threads running, unlike a fork with a pre-exec step. (std's own
/// posix_spawn path leaves the parent's mask in place, so it cannot be used.)
/// `envp: None` passes kai-init's own environment through untouched, without copying it.
/// Returns the pid, or the errno of the failed exec.
pub fn posix_spawnp(
    argv: &[CString],
    envp: Option<&[CString]>,
    actions: &[FileAction],
) -> io::Result<i32> {
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
    // SAFETY: `attr`, `file_actions` and the two sigsets are initialised by their init
    // calls before any other use and destroyed before return; a sigset_t is at least 8
    // bytes, aligned for a u64 word; the /dev/null path is a NUL-terminated literal and a
    // Chdir path a NUL-terminated &'static CStr, both of which libc copies; argv and envp are NULL-terminated arrays of pointers into CStrings that
    // outlive the call, or `environ`, which nothing modifies while this thread is in the
    // call (kai-init sets no variables after start-up); posix_spawnp writes only `pid`.
    unsafe {
        let mut attr = std::mem::MaybeUninit::<libc::posix_spawnattr_t>::uninit();
        spawn_err(libc::posix_spawnattr_init(attr.as_mut_ptr()))?;
        let attr = attr.as_mut_ptr();
        let mut fa = std::mem::MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
        if let Err(e) = spawn_err(libc::posix_spawn_file_actions_init(fa.as_mut_ptr())) {
            libc::posix_spawnattr_destroy(attr);
            return Err(e);
        }
        let fa = fa.as_mut_ptr();
        let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        let mut defaults = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(empty.as_mut_ptr());
        libc::sigemptyset(defaults.as_mut_ptr());
        // What the child must set back to SIG_DFL: kai-init reset everything it inherited
        // ignored at start-up (Rust's SEGV/BUS handlers included; posix_spawn would reset
        // handlers anyway). Left: SIGPIPE, which kai-init keeps ignored (see
        // `sigset::STAYS_IGNORED`), and the signals libc reserves (32..=34), which both
        // glibc and musl make SIG_IGN in the child unless they are in this set.
        // sigaddset refuses the reserved ones, so the bits are set directly: the first
        // word of a Linux sigset_t holds signals 1..=64, bit N-1 for signal N, in both
        // libcs, and their posix_spawn reads it bit by bit.
        defaults
            .as_mut_ptr()
            .cast::<u64>()
            .write(bit(super::sigset::STAYS_IGNORED) | super::sigset::LIBC_RESERVED);
        let flags = libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF
            | libc::POSIX_SPAWN_SETPGROUP;
        let mut result = spawn_err(libc::posix_spawnattr_setflags(attr, flags as libc::c_short))
            .and_then(|()| spawn_err(libc::posix_spawnattr_setsigmask(attr, empty.as_ptr())))
            .and_then(|()| spawn_err(libc::posix_spawnattr_setsigdefault(attr, defaults.as_ptr())))
            .and_then(|()| spawn_err(libc::posix_spawnattr_setpgroup(attr, 0)));
        for action in actions {
            result = result.and_then(|()| {
                spawn_err(match *action {
                    FileAction::Dup2 { from, to } => {
                        libc::posix_spawn_file_actions_adddup2(fa, from, to)
                    }
                    FileAction::Chdir(dir) => {
                        libc::posix_spawn_file_actions_addchdir_np(fa, dir.as_ptr())
                    }
                    FileAction::DevNull { fd, write } => libc::posix_spawn_file_actions_addopen(
                        fa,
                        fd,
                        c"/dev/null".as_ptr(),
                        if write {
                            libc::O_WRONLY
                        } else {
                            libc::O_RDONLY
                        },
                        0,
                    ),
                })
            });
        }
        let result = result.and_then(|()| {
            spawn_err(libc::posix_spawnp(
                &mut pid,
                argv_ptrs[0],
                fa,
                attr,
                argv_ptrs.as_ptr(),
                match &envp_ptrs {
                    Some(ptrs) => ptrs.as_ptr(),
                    None => environ.cast(),
                },
            ))
        });
        libc::posix_spawn_file_actions_destroy(fa);
        libc::posix_spawnattr_destroy(attr);
        result?;
    }
    // musl's posix_spawn restores the caller's mask through pthread_sigmask, which strips
    // its reserved signals (32..=34) from the saved set: block them again, so they go back
    // to the signalfd. (Meanwhile they are SIG_IGN, see `signals::block_all`.)
    block_signals(super::sigset::BLOCKED)?;
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

/// Starts `cmd` (already in a new process group) as the terminal's foreground group: the
/// one case posix_spawn cannot express portably (glibc's tcsetpgrp file action is
/// glibc-only), so std forks and this step runs in the child before exec. It gives the
/// terminal to the child's group, dup2s `dup` if given, and resets dispositions and mask.
///
/// A step between fork and exec is sound only if the parent is single-threaded (another
/// thread could hold a lock the step needs, e.g. the allocator's). That is checked here,
/// just before the fork, and the spawn refused (fails closed) when it does not hold or
/// cannot be proven; nothing between the check and the fork starts a thread.
pub fn spawn_taking_terminal(
    mut cmd: Command,
    dup: Option<(RawFd, RawFd)>,
) -> Result<Child, TerminalSpawnError> {
    if let Some((from, to)) = dup {
        assert_ne!(from, to, "the caller moves `from` off `to` first");
    }
    match crate::sys::proc::thread_count() {
        Some(1) => {}
        n => return Err(TerminalSpawnError::NotSingleThreaded(n)),
    }
    // std reports a failed exec through a close-on-exec pipe whose number it picks at
    // spawn time: keep the dup2 target occupied in the parent during the spawn, so that
    // pipe can never be the descriptor the step dup2s over.
    let _placeholder = match dup {
        Some((_, to)) => occupy(to).map_err(TerminalSpawnError::Setup)?,
        None => None,
    };
    let step = move || -> io::Result<()> {
        // The mask is still kai-init's, SIGTTOU included, so tcsetpgrp from this
        // background group is allowed (tcsetpgrp(3)). A failure leaves the child in the
        // background, which is harmless. (libc, not nix: nix wants an AsFd, and std's
        // stdin() handle allocates on first use.)
        // SAFETY: tcsetpgrp and getpgrp take and return integers only.
        let _ = unsafe { libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpgrp()) };
        if let Some((from, to)) = dup {
            // SAFETY: dup2 takes plain integers and touches no Rust-owned memory; `from`
            // is a descriptor kai-init keeps open until spawn returns, and differs from
            // `to`, so the copy at `to` has FD_CLOEXEC clear and survives exec.
            Errno::result(unsafe { libc::dup2(from, to) })?;
        }
        reset_dispositions(u64::MAX);
        sigprocmask_raw(libc::SIG_SETMASK, 0)?;
        Ok(())
    };
    // SAFETY: the closure runs in the forked child of a parent checked single-threaded
    // above, before exec. It only makes async-signal-safe system calls (tcsetpgrp,
    // getpgrp, dup2, rt_sigaction, rt_sigprocmask) on values copied in before fork; it
    // allocates nothing, takes no lock, and touches no state shared with the parent.
    unsafe {
        cmd.pre_exec(step);
    }
    cmd.spawn().map_err(TerminalSpawnError::Spawn)
}

/// Makes sure descriptor `to` is open in kai-init: if it is free, /dev/null (close-on-exec)
/// takes the number until the returned guard drops.
fn occupy(to: RawFd) -> io::Result<Option<OwnedFd>> {
    if nix::fcntl::fcntl(to, nix::fcntl::FcntlArg::F_GETFD).is_ok() {
        return Ok(None);
    }
    // std opens close-on-exec; it may land on `to` itself, the lowest free number.
    let null = OwnedFd::from(std::fs::File::open("/dev/null")?);
    if null.as_raw_fd() == to {
        return Ok(Some(null));
    }
    nix::unistd::dup3(null.as_raw_fd(), to, nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: dup3 just opened `to`, which was free; nothing else owns it.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(to) }))
}

/// Why [`spawn_taking_terminal`] did not start the child.
#[derive(Debug)]
pub enum TerminalSpawnError {
    /// More than one thread runs (Some(n)), or /proc/self/task cannot be read (None):
    /// the step between fork and exec would not be sound.
    NotSingleThreaded(Option<usize>),
    /// Reserving the notify descriptor's number failed.
    Setup(io::Error),
    /// The fork or the exec failed.
    Spawn(io::Error),
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
    set_dispositions(signals, libc::SIG_DFL);
}

/// Sets every signal whose bit is in `signals` to SIG_IGN (but KILL and STOP). A blocked
/// signal is queued (and read from the signalfd) whatever its disposition; SIG_IGN only
/// matters in a moment when it is not blocked, where it makes it harmless.
pub fn ignore_dispositions(signals: u64) {
    set_dispositions(signals, libc::SIG_IGN);
}

fn set_dispositions(signals: u64, handler: libc::sighandler_t) {
    let default = KernelSigaction {
        handler,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // KILL and STOP need no skipping: the kernel refuses to change them (EINVAL).
    for sig in (1..=crate::config::signal_names::RTMAX).filter(|&s| signals & bit(s) != 0) {
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
/// negative `pid` names a process group, -1 every process kai-init may signal. Raw: the
/// callers go through `sys::kill`, `kill_group` or `kill_every_process`, which say which.
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
