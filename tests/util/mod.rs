//! Shared test support: find the real kai-init binary, run it (optionally as PID 1 of a
//! fresh PID namespace), wait for facts (lines, files, process states) with deadlines, and
//! kill and reap whatever a test started when its guard drops.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The binary cargo built for these integration tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kai-init"))
}

/// `kai-init ARGS` run directly (not PID 1; kai-init becomes a subreaper).
pub fn kai(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    cmd
}

/// `kai-init ARGS` as PID 1 of a new PID namespace with its own /proc
/// (`unshare --pid --fork --mount-proc`). `--kill-child` makes unshare's forked init die
/// with unshare, so a failing test cannot leave a namespace behind.
pub fn kai_pid1(args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(bin())
        .args(args);
    cmd
}

/// A running process with its output collected line by line on background threads.
/// Dropping it SIGKILLs and reaps the process (and, for unshare, the namespace with it).
pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<(Stream, String)>,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

pub fn start(mut cmd: Command) -> Running {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let (tx, rx) = mpsc::channel();
    for (stream, pipe) in [
        (
            Stream::Out,
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        ),
        (
            Stream::Err,
            Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>,
        ),
    ] {
        let tx = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send((stream, line)).is_err() {
                    break;
                }
            }
        });
    }
    Running {
        child,
        lines: rx,
        stdout: Vec::new(),
        stderr: Vec::new(),
    }
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn take(&mut self, (stream, line): (Stream, String)) -> String {
        match stream {
            Stream::Out => self.stdout.push(line.clone()),
            // The one line kai-init adds where the platform refuses a subreaper (see
            // subreaper_refused): expected there, and not what any test counts.
            Stream::Err if subreaper_refused() && line.contains(SUBREAPER_REFUSED) => {}
            Stream::Err => self.stderr.push(line.clone()),
        }
        line
    }

    /// Waits until a line on either stream contains `needle`; returns that line.
    /// Panics with everything seen so far when `timeout` passes first.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(l) = self
            .stdout
            .iter()
            .chain(&self.stderr)
            .find(|l| l.contains(needle))
        {
            return l.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(item) => {
                    let line = self.take(item);
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line containing {needle:?} within {timeout:?}\nstdout: {:#?}\nstderr: {:#?}",
                    self.stdout, self.stderr
                ),
            }
        }
    }

    /// Like [`Running::wait_line`], but only the child's stdout counts: kai-init's own log
    /// lines (stderr) may contain the same words ("child is ready").
    pub fn wait_stdout(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(l) = self.stdout.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(item) => {
                    let stream = item.0;
                    let line = self.take(item);
                    if stream == Stream::Out && line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no stdout line containing {needle:?} within {timeout:?}\nstdout: {:#?}\nstderr: {:#?}",
                    self.stdout, self.stderr
                ),
            }
        }
    }

    /// Waits for the process to exit (panics after `timeout`), then drains its output.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // The pipes close when the process and everything holding them are gone.
                while let Ok(item) = self.lines.recv_timeout(Duration::from_millis(500)) {
                    self.take(item);
                }
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "process did not exit within {timeout:?}\nstdout: {:#?}\nstderr: {:#?}",
                    self.stdout, self.stderr
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal to the process (kai-init itself, or unshare which passes it on).
    pub fn signal(&self, sig: i32) {
        // Test support only: shell out so the tests need no libc binding.
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed test may leave kai-init's children behind (outside a PID namespace
        // nothing else would stop them): kill the whole tree this test started. Let this
        // do it rather than killing the child first: once the child is gone its tree is
        // reparented away and can no longer be found (a kai-init that dropped to --user
        // as PID 1 also loses unshare's --kill-child: credential changes clear it).
        let tree = descendants(self.pid());
        let _ = self.child.kill();
        for pid in tree {
            signal(pid, 9);
        }
        let _ = self.child.wait();
    }
}

/// What kai-init logs (at warn) when, not PID 1, it cannot become a subreaper and EINVAL
/// is why.
const SUBREAPER_REFUSED: &str = "cannot become a subreaper (EINVAL";

/// True where prctl(PR_GET_CHILD_SUBREAPER) itself answers EINVAL: under qemu-user (7.0 and
/// later list both subreaper prctls as "TODO: EINVAL"), where scripts/test-arm64 runs
/// these tests for aarch64. Every kernel since 3.4 knows the call, so natively this is
/// false and nothing is filtered. Reading the flag changes nothing in the test process.
pub fn subreaper_refused() -> bool {
    static REFUSED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REFUSED.get_or_init(|| {
        let mut flag: libc::c_int = 0;
        // SAFETY: PR_GET_CHILD_SUBREAPER writes one int through the pointer, which points
        // at a live local of that type.
        let r = unsafe { libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut flag as *mut libc::c_int) };
        r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL)
    })
}

/// Whether `pid` is running the kai-init binary under test. Natively /proc/PID/exe is
/// that binary. Under binfmt_misc emulation (the aarch64 build on an x86_64 machine) exe is
/// the registered interpreter, qemu-aarch64-static, and the kernel hands it the binary's
/// path as argv[1].
pub fn runs_kai_init(pid: i32) -> bool {
    let want = std::fs::canonicalize(bin()).expect("kai-init binary");
    let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
        return false;
    };
    if exe == want {
        return true;
    }
    let emulated = exe
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("qemu-"));
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let argv1 = raw.split(|b| *b == 0).nth(1).unwrap_or_default();
    let argv1 =
        std::path::Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(argv1));
    emulated && std::fs::canonicalize(argv1).is_ok_and(|p| p == want)
}

/// Runs to completion with a deadline and returns (status, stdout, stderr).
pub fn run(cmd: Command, timeout: Duration) -> (ExitStatus, String, String) {
    let mut r = start(cmd);
    let status = r.wait_exit(timeout);
    (status, r.stdout.join("\n"), r.stderr.join("\n"))
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// The first pid whose parent is `parent` (from /proc), if any.
pub fn child_of(parent: i32) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = &stat[stat.rfind(')')? + 1..];
        let ppid: i32 = after.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == parent).then_some(pid)
    })
}

// ---------------------------------------------------------------------------------------
// Processes seen from the host's /proc. All of these only read /proc or signal processes
// a test started itself (or their descendants).

/// The python3 interpreter to run children with: the system one when present (a version
/// manager's shim is a shell script that costs ~200 ms and lives under /root, which a
/// dropped user cannot read), else whatever `python3` is on PATH.
pub fn python3() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Sends signal number `sig` (real-time ones included) to `pid`; false if the process is
/// gone. Only for processes the test started (or their descendants).
pub fn signal(pid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) takes two integers and touches no memory of this process.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Fields of /proc/PID/stat after the command name (which may contain spaces and
/// parentheses): index 0 is the state, 1 the parent pid, 19 the start time.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// CPU time `pid` has used, user and system, in clock ticks (1/100 s here).
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let f = stat_fields(pid)?;
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// The state letter of `pid` (R, S, D, Z, T, ...), None once it is gone.
pub fn state(pid: i32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// The parent pid of `pid`.
pub fn ppid(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// Every pid whose parent is `parent`.
pub fn children(parent: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| ppid(*pid) == Some(parent))
        .collect()
}

/// Every descendant of `root` (children, their children, ...), not `root` itself.
pub fn descendants(root: i32) -> Vec<i32> {
    let mut found = Vec::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        for child in children(pid) {
            if !found.contains(&child) {
                found.push(child);
                todo.push(child);
            }
        }
    }
    found
}

/// The command line of `pid`, arguments joined by spaces.
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(args.join(" "))
}

/// One line of /proc/PID/status, e.g. `status_line(pid, "Uid")` -> "0\t0\t0\t0".
pub fn status_line(pid: i32, key: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim().to_owned())
    })
}

/// A process identity that survives pid reuse: the pid and its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    start: u64,
}

impl Proc {
    pub fn of(pid: i32) -> Option<Proc> {
        let start = stat_fields(pid)?.get(19)?.parse().ok()?;
        Some(Proc { pid, start })
    }

    /// Still in the process table (a zombie counts: it has not been reaped).
    pub fn exists(&self) -> bool {
        Proc::of(self.pid) == Some(*self)
    }

    /// Exists and has not exited (not a zombie).
    pub fn alive(&self) -> bool {
        self.exists() && state(self.pid).is_some_and(|s| s != 'Z' && s != 'X')
    }
}

impl Running {
    /// For a process made with [`kai_pid1`]: the host pid of kai-init, i.e. unshare's
    /// forked child, once it has exec'd kai-init (signalling it before would hit unshare's
    /// child instead). Signals meant for "PID 1" go to this pid, not to unshare.
    pub fn pid1(&self, timeout: Duration) -> i32 {
        let mut found = 0;
        wait_until("kai-init to run as unshare's child", timeout, || {
            found = children(self.pid())
                .into_iter()
                .find(|pid| runs_kai_init(*pid))
                .unwrap_or(0);
            found != 0
        });
        found
    }

    /// Everything seen on stdout so far (and what is waiting in the channel).
    pub fn drain(&mut self) {
        while let Ok(item) = self.lines.try_recv() {
            self.take(item);
        }
    }
}

/// A fresh directory under /tmp, world-readable (so a dropped user can read files in it),
/// removed when the guard drops.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::os::unix::fs::PermissionsExt;
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = PathBuf::from(format!(
            "/tmp/kai-init-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        TempDir(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Path as a string, for command lines.
    pub fn file(&self, name: &str) -> String {
        self.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port that was free a moment ago (the kernel picked it; closed again at once).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Mounts a FUSE file system nobody serves on `argv[1]` (the INIT request is never
/// answered, so every lookup under it waits for good, like a hung NFS or FUSE server),
/// then execs `argv[2:]` with the /dev/fuse descriptor open (kept, never read). Run it in
/// a mount namespace of its own (`unshare --mount --propagation private`): the mount
/// vanishes with the test's processes.
///
/// `mount -i`: without it, a machine with FUSE's mount helper installed (fuse3, which
/// podman brings) runs /sbin/mount.fuse, which takes the source name for a program to
/// start ("kai-test-hung: not found", issue 17).
pub const HUNG_MOUNT: &str = r#"
import os, subprocess, sys
d = sys.argv[1]
fd = os.open('/dev/fuse', os.O_RDWR)
os.set_inheritable(fd, True)
subprocess.run(['mount', '-i', '-t', 'fuse',
                '-o', 'fd=%d,rootmode=40000,user_id=0,group_id=0' % fd,
                'kai-test-hung', d], pass_fds=(fd,), check=True)
os.execv(sys.argv[2], sys.argv[2:])
"#;

/// The cases of a table test that broke an invariant, collected: `cases` yields each case
/// as a closure, every one runs, and the test fails once at the end listing the first line
/// of each failure, so one run shows the whole extent of a seam.
pub fn every_case(cases: impl IntoIterator<Item = Box<dyn FnOnce()>>) {
    let mut broken = Vec::new();
    let mut count = 0;
    for case in cases {
        count += 1;
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(case)) {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            broken.push(why.lines().next().unwrap_or_default().to_owned());
        }
    }
    assert!(
        broken.is_empty(),
        "{} of {count} cases broke an invariant:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

/// The pid named on the first of `lines` that contains `needle` (`... pid=N ...`).
pub fn pid_on_line(lines: &[String], needle: &str) -> String {
    let line = lines
        .iter()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}: {lines:#?}"));
    let after = line
        .split("pid=")
        .nth(1)
        .unwrap_or_else(|| panic!("no pid in {line}"));
    after.split(' ').next().unwrap_or_default().to_owned()
}
