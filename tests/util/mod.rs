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
        (Stream::Out, Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>),
        (Stream::Err, Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>),
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
            Stream::Err => self.stderr.push(line.clone()),
        }
        line
    }

    /// Waits until a line on either stream contains `needle`; returns that line.
    /// Panics with everything seen so far when `timeout` passes first.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(l) = self.stdout.iter().chain(&self.stderr).find(|l| l.contains(needle)) {
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
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
