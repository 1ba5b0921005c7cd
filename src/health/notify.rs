//! Readiness notification from the child, and to kai-init's own supervisor.
//!
//! - `--notify sd`: systemd's protocol (sd_notify(3)). kai-init binds an abstract datagram
//!   socket with an autobound, unique name (several kai-inits may share a network
//!   namespace) and names it to the child as `NOTIFY_SOCKET=@xxxxx`. It understands
//!   READY=1, RELOADING=1, STOPPING=1, STATUS=, WATCHDOG=1, WATCHDOG=trigger and
//!   WATCHDOG_USEC=; everything else is ignored, as systemd does. The socket's name is
//!   visible to every process in the network namespace (/proc/net/unix; all containers
//!   of a pod), so a datagram counts only if the kernel vouches (SCM_CREDENTIALS) that
//!   its sender is the main child or one of its descendants (systemd's NotifyAccess=all
//!   within the unit). Others are refused and counted, with a log line every 10 s at
//!   most. A sender that exited before its datagram was read cannot be placed and is
//!   refused too (fail closed), as is one that daemonized away from the child's tree.
//!   Placing a sender costs nothing for the main child itself and a bounded number of
//!   /proc reads for anyone else (see `Lineage`): a flood from deep in a stranger's
//!   process chain cannot stall the loop.
//! - `--notify fd:N`: s6's protocol (s6-supervise's notification-fd): the child gets the
//!   write end of a pipe as descriptor N; a newline on it means ready.
//! - Upstream: when kai-init itself was started with NOTIFY_SOCKET (podman
//!   --sdnotify=container, a systemd unit), it sends READY=1 once the child is ready and
//!   STOPPING=1 when it starts to stop. That socket names kai-init's supervisor, not the
//!   child's, so the child never inherits it (nor WATCHDOG_USEC / WATCHDOG_PID).
//!
//! Nothing here touches processes; it only reads descriptors and records what it read.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::time::Instant;
use tracing::{debug, info, warn};

pub use super::readiness::NotifyStatus;
use super::shared::Shared;
use super::upstream::UPSTREAM_VARS;
use crate::config::Notify;
use crate::util::backoff::Backoff;

/// What `--notify` set up before the child was spawned.
#[derive(Debug, Default)]
pub struct Setup {
    sd: Option<(UnixDatagram, String)>,
    fd: Option<Pipe>,
}

#[derive(Debug)]
struct Pipe {
    read: OwnedFd,
    /// Closed once the child has its copy, so that EOF can be seen.
    write: Option<OwnedFd>,
    target: RawFd,
}

impl Setup {
    pub fn new(mode: Option<Notify>) -> io::Result<Setup> {
        Ok(match mode {
            None => Setup::default(),
            Some(Notify::Sd) => Setup {
                sd: Some(sd_socket()?),
                fd: None,
            },
            Some(Notify::Fd(target)) => {
                let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
                Setup {
                    sd: None,
                    fd: Some(Pipe {
                        read,
                        write: Some(write),
                        target,
                    }),
                }
            }
        })
    }

    /// NOTIFY_SOCKET for the child (ours, or removed when it would name kai-init's
    /// supervisor), and the upstream watchdog variables removed.
    pub fn child_env(&self) -> Vec<(&'static str, Option<OsString>)> {
        let mut env: Vec<(&'static str, Option<OsString>)> = UPSTREAM_VARS
            .iter()
            .filter(|k| std::env::var_os(k).is_some())
            .map(|k| (*k, None))
            .collect();
        if let Some((_, name)) = &self.sd {
            env.retain(|(k, _)| *k != "NOTIFY_SOCKET");
            env.push(("NOTIFY_SOCKET", Some(OsString::from(format!("@{name}")))));
        }
        env
    }

    /// (pipe write end, N) for the child's pre-exec dup2.
    pub fn child_fd(&self) -> Option<(RawFd, RawFd)> {
        let pipe = self.fd.as_ref()?;
        Some((pipe.write.as_ref()?.as_raw_fd(), pipe.target))
    }

    /// Starts listening; call after the child was spawned (it closes our copy of the
    /// pipe's write end).
    pub fn start(self, shared: &Arc<Shared>) {
        if let Some((sock, name)) = self.sd {
            debug!(socket = %format!("@{name}"), "NOTIFY_SOCKET ready for the child");
            match sock
                .set_nonblocking(true)
                .and_then(|()| tokio::net::UnixDatagram::from_std(sock))
            {
                Ok(sock) => {
                    tokio::spawn(sd_loop(sock, shared.clone()));
                }
                Err(e) => warn!("cannot watch NOTIFY_SOCKET: {e}"),
            }
        }
        if let Some(mut pipe) = self.fd {
            drop(pipe.write.take());
            match tokio::net::unix::pipe::Receiver::from_owned_fd(pipe.read) {
                Ok(rx) => {
                    tokio::spawn(fd_loop(rx, pipe.target, shared.clone()));
                }
                Err(e) => warn!("cannot watch the notification fd: {e}"),
            }
        }
    }
}

/// An abstract datagram socket with a kernel-chosen unique name (autobind, unix(7)), with
/// SO_PASSCRED on before anyone can know its name, so that every datagram carries its
/// sender's pid.
fn sd_socket() -> io::Result<(UnixDatagram, String)> {
    use nix::sys::socket::{
        bind, getsockname, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, UnixAddr,
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::PassCred, &true)?;
    bind(fd.as_raw_fd(), &UnixAddr::new_unnamed())?;
    let addr: UnixAddr = getsockname(fd.as_raw_fd())?;
    let name = addr
        .as_abstract()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .ok_or_else(|| io::Error::other("autobind gave no abstract name"))?;
    Ok((UnixDatagram::from(fd), name))
}

/// The most descriptors one message can pass (the kernel's SCM_MAX_FD).
const SCM_MAX_FD: usize = 253;

/// One datagram and the pid the kernel vouches for (`None`: no credentials came with it,
/// or they cannot be read: the datagram is then refused).
fn receive(sock: &tokio::net::UnixDatagram, buf: &mut [u8]) -> io::Result<(usize, Option<Sender>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixCredentials};
    // Room for the credentials and for as many descriptors as a sender can pass. With
    // room for the credentials only, a datagram carrying descriptors came back with
    // MSG_CTRUNC, which nix reports as an error: any process in the network namespace
    // could end the notify loop with one such datagram.
    let mut space = nix::cmsg_space!(UnixCredentials, [RawFd; SCM_MAX_FD]);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    // Still truncated (a control message kai-init never asked for): refused, fail closed.
    let Ok(cmsgs) = msg.cmsgs() else {
        return Ok((msg.bytes, None));
    };
    let mut sender = None;
    for cmsg in cmsgs {
        match cmsg {
            ControlMessageOwned::ScmCredentials(c) => {
                sender = Some(Sender {
                    pid: c.pid(),
                    uid: c.uid(),
                })
            }
            // Descriptors nobody asked for (systemd's FDSTORE=1 is not supported): never
            // keep one, or a flood of them would exhaust kai-init's own.
            ControlMessageOwned::ScmRights(fds) => {
                for fd in fds {
                    let _ = nix::unistd::close(fd);
                }
            }
            _ => {}
        }
    }
    Ok((msg.bytes, sender))
}

/// Who sent a datagram, as the kernel says (SCM_CREDENTIALS).
#[derive(Debug, Clone, Copy)]
struct Sender {
    pid: i32,
    uid: u32,
}

async fn sd_loop(sock: tokio::net::UnixDatagram, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 4096];
    let mut strangers = Strangers::default();
    let mut unchecked = Unchecked::default();
    let mut lineage: Option<Lineage> = None;
    let mut read_errors = Backoff::default();
    loop {
        // A timer exists only while a watchdog is armed and has not yet been reported.
        let deadline = shared.with(|s| {
            s.notify
                .watchdog_deadline()
                .filter(|_| !s.notify.triggered && !s.notify.expiry_reported)
        });
        let expiry = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = sock.async_io(tokio::io::Interest::READABLE, || receive(&sock, &mut buf)) => match received {
                Ok((n, sender)) => {
                    read_errors.reset();
                    let main = shared.state.borrow().child_pid;
                    let lineage = match (main, &mut lineage) {
                        (Some(m), Some(l)) if l.root == m => Some(l),
                        (Some(m), l) => Some(l.insert(Lineage::new(m))),
                        (None, _) => None,
                    };
                    let now = std::time::Instant::now();
                    let verdict = match (sender, lineage) {
                        (Some(from), Some(l)) => l.check(from.pid, now),
                        _ => Verdict::Refused,
                    };
                    match verdict {
                        Verdict::Believed => on_datagram(&shared, &buf[..n]),
                        Verdict::Refused => {
                            shared.with(|s| s.notify.refused = s.notify.refused.saturating_add(1));
                            strangers.dropped(sender, now);
                        }
                        Verdict::Unchecked => {
                            shared.with(|s| s.notify.refused = s.notify.refused.saturating_add(1));
                            unchecked.dropped(now);
                        }
                    }
                }
                // Never the end of the loop: the child's READY=1 may still come.
                Err(e) => {
                    let (pause, log) = read_errors.fail();
                    if log {
                        warn!(failures = read_errors.failures, ?pause, "cannot read NOTIFY_SOCKET: {e}");
                    }
                    tokio::time::sleep(pause).await;
                }
            },
            () = expiry => {
                let usec = shared.with(|s| {
                    // Reported once; the next ping re-arms the timer.
                    s.notify.expiry_reported = true;
                    s.notify.watchdog.map_or(0, |u| u.as_micros() as u64)
                });
                warn!(usec, "watchdog expired: no WATCHDOG=1 in time; /livez fails");
                shared.unhealthy(format!("the watchdog expired: no WATCHDOG=1 within {usec} µs"));
            }
        }
    }
}

/// How many parent records the ancestry walks may read in one second (the sender's own
/// record, and the main child's pid, are free). A descendant 300 levels deep costs 299.
const WALK_READS_PER_SECOND: u32 = 2048;

/// How many processes placed outside the tree are remembered (then forgotten at once).
const OUTSIDE_REMEMBERED: usize = 4096;

/// Whether to believe a datagram's sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Believed,
    Refused,
    /// Not placed: this second's walks are spent. Dropped, fail closed.
    Unchecked,
}

/// Which senders are the main child or its descendants (issue 17, item 6). A stranger 300
/// processes deep flooding the socket used to cost a walk of 300 /proc reads per datagram,
/// enough to hold the loop at 100 % CPU and /livez at 0.9 s. Now the main child's own pid
/// costs nothing; a sender placed outside is remembered by pid and start time (a process
/// outside the tree never enters it; a reused pid has another start time), so each further
/// datagram of its costs one /proc read; walks stop at the first process older than the
/// main child; and what the walks may read is budgeted per second. Descendants are not
/// remembered: one may leave the tree (daemonize) at any time.
struct Lineage {
    root: i32,
    root_start: Option<u64>,
    outside: std::collections::HashMap<i32, u64>,
    window: std::time::Instant,
    reads_left: u32,
}

impl Lineage {
    fn new(root: i32) -> Lineage {
        Lineage {
            root,
            root_start: crate::sys::proc::read(root).and_then(|p| p.start_time),
            outside: std::collections::HashMap::new(),
            window: std::time::Instant::now(),
            reads_left: WALK_READS_PER_SECOND,
        }
    }

    fn check(&mut self, pid: i32, now: std::time::Instant) -> Verdict {
        use crate::sys::proc::{place, read, Placed};
        if pid == self.root {
            return Verdict::Believed;
        }
        if now.saturating_duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.reads_left = WALK_READS_PER_SECOND;
        }
        let mut visited = Vec::new();
        let outside = &self.outside;
        let placed = place(
            pid,
            self.root,
            self.root_start,
            &mut self.reads_left,
            read,
            |p| p.start_time.is_some() && outside.get(&p.pid) == p.start_time.as_ref(),
            &mut visited,
        );
        match placed {
            Placed::InTree => Verdict::Believed,
            Placed::Undecided => Verdict::Unchecked,
            Placed::Vanished => Verdict::Refused,
            Placed::Outside => {
                if self.outside.len() + visited.len() > OUTSIDE_REMEMBERED {
                    self.outside.clear();
                }
                for p in visited {
                    if let Some(start) = p.start_time {
                        self.outside.insert(p.pid, start);
                    }
                }
                Verdict::Refused
            }
        }
    }
}

/// At most one log line per [`STRANGER_LOG_EVERY`] for a kind of refused datagram, saying
/// how many there were since the last: a flood must not become a flood of log lines.
#[derive(Debug, Default)]
struct Every {
    last_logged: Option<std::time::Instant>,
    /// Refused since the last line.
    unlogged: u64,
}

impl Every {
    /// Counts one; `Some(count)` when a line is due now.
    fn due(&mut self, now: std::time::Instant) -> Option<u64> {
        self.unlogged = self.unlogged.saturating_add(1);
        if self
            .last_logged
            .is_some_and(|t| now.saturating_duration_since(t) < STRANGER_LOG_EVERY)
        {
            return None;
        }
        self.last_logged = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// How often a refused sender is told about in the log, at most.
const STRANGER_LOG_EVERY: Duration = Duration::from_secs(10);

/// Datagrams dropped unchecked (this second's budget of /proc reads is spent).
#[derive(Debug, Default)]
struct Unchecked(Every);

impl Unchecked {
    fn dropped(&mut self, now: std::time::Instant) {
        if let Some(count) = self.0.due(now) {
            warn!(
                dropped = count,
                budget = WALK_READS_PER_SECOND,
                "dropping NOTIFY_SOCKET datagrams unchecked: this second's /proc reads for placing senders are spent (a flood from outside the child's tree?)"
            );
        }
    }
}

/// Datagrams refused: from outside the main child's tree, or without credentials.
#[derive(Debug, Default)]
struct Strangers(Every);

impl Strangers {
    fn dropped(&mut self, sender: Option<Sender>, now: std::time::Instant) {
        let Some(count) = self.0.due(now) else {
            return;
        };
        match sender {
            Some(Sender { pid, uid }) => warn!(
                pid,
                uid,
                refused = count,
                "ignoring NOTIFY_SOCKET datagrams from a process that is not the main child or its descendant"
            ),
            None => warn!(
                refused = count,
                "ignoring NOTIFY_SOCKET datagrams without sender credentials"
            ),
        }
    }
}

fn on_datagram(shared: &Arc<Shared>, data: &[u8]) {
    let now = std::time::Instant::now();
    let events = shared.with(|s| apply(&mut s.notify, data, now));
    for event in events {
        match event {
            Event::Ready => info!("child notified READY=1"),
            Event::Stopping => {
                info!("child notified STOPPING=1");
                shared.upstream_stopping();
            }
            Event::Reloading => info!("child notified RELOADING=1"),
            Event::Status(text) => debug!(status = %text, "child STATUS"),
            Event::Watchdog(usec) => info!(usec, "child armed the watchdog"),
            Event::Triggered => warn!("child sent WATCHDOG=trigger; /livez fails"),
            Event::Fed => info!("watchdog fed again"),
        }
    }
    shared.refresh();
}

/// What a datagram changed, for the log.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Event {
    Ready,
    Reloading,
    Stopping,
    /// The new STATUS= text, already made printable.
    Status(String),
    Watchdog(u64),
    Triggered,
    Fed,
}

/// Longest STATUS= text kept (after escaping): it is shown in /readyz?verbose and the log.
pub const STATUS_MAX_CHARS: usize = 200;

/// Applies one sd_notify datagram (newline-separated KEY=VALUE lines, as bytes: the
/// sender may send anything) to `n` and says what changed. Unknown keys and lines
/// without `=` are ignored, as systemd does; text is kept only in printable form.
pub fn apply(n: &mut NotifyStatus, data: &[u8], now: std::time::Instant) -> Vec<Event> {
    let mut events = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        let Some(eq) = line.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (key, value) = (&line[..eq], &line[eq + 1..]);
        match (key, value) {
            (b"READY", b"1") => {
                if !n.ready || n.reloading {
                    events.push(Event::Ready);
                }
                n.ready = true;
                n.reloading = false;
            }
            (b"RELOADING", b"1") => {
                n.reloading = true;
                events.push(Event::Reloading);
            }
            (b"STOPPING", b"1") => {
                if !n.stopping {
                    events.push(Event::Stopping);
                }
                n.stopping = true;
            }
            (b"STATUS", text) => {
                let text = String::from_utf8_lossy(text);
                let text: String = crate::util::text::printable(&text)
                    .chars()
                    .take(STATUS_MAX_CHARS)
                    .collect();
                events.push(Event::Status(text.clone()));
                n.status = Some(text);
            }
            (b"WATCHDOG", b"1") => {
                if n.expiry_reported || n.triggered {
                    events.push(Event::Fed);
                }
                n.last_ping = Some(now);
                n.triggered = false;
                n.expiry_reported = false;
            }
            (b"WATCHDOG", b"trigger") => {
                n.triggered = true;
                events.push(Event::Triggered);
            }
            (b"WATCHDOG_USEC", usec) => match parse_usec(usec) {
                // As in systemd, 0 disarms the watchdog.
                Some(0) => n.watchdog = None,
                Some(usec) => {
                    n.watchdog = Some(Duration::from_micros(usec));
                    n.last_ping = Some(now);
                    n.triggered = false;
                    n.expiry_reported = false;
                    events.push(Event::Watchdog(usec));
                }
                None => debug!(
                    value = %crate::util::text::printable(&String::from_utf8_lossy(usec)),
                    "ignoring a malformed WATCHDOG_USEC"
                ),
            },
            _ => {}
        }
    }
    events
}

/// Longest watchdog period accepted: a day. Longer is no watchdog in practice, and the
/// deadline `last_ping + period` must never overflow an `Instant`.
const WATCHDOG_MAX_USEC: u64 = 86_400 * 1_000_000;

fn parse_usec(value: &[u8]) -> Option<u64> {
    let usec: u64 = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
    (usec <= WATCHDOG_MAX_USEC).then_some(usec)
}

async fn fd_loop(mut rx: tokio::net::unix::pipe::Receiver, target: RawFd, shared: Arc<Shared>) {
    let mut buf = [0u8; 512];
    loop {
        match rx.read(&mut buf).await {
            Ok(0) => {
                warn!(
                    fd = target,
                    "the child closed its notification fd without writing a newline"
                );
                return;
            }
            Ok(n) if buf[..n].contains(&b'\n') => {
                info!(fd = target, "child notified readiness");
                shared.with(|s| s.notify.ready = true);
                shared.refresh();
                // s6 reads nothing after the newline either; closing tells a child that
                // writes again that nobody listens.
                return;
            }
            Ok(_) => {}
            Err(e) => {
                warn!(fd = target, "cannot read the notification fd: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sd_notify_datagrams() {
        let mut n = NotifyStatus::default();
        let t = std::time::Instant::now();
        let ev = apply(&mut n, b"STATUS=warming up\nREADY=1\n", t);
        assert_eq!(ev, [Event::Status("warming up".into()), Event::Ready]);
        assert!(n.ready);
        assert_eq!(n.status.as_deref(), Some("warming up"));
        assert_eq!(apply(&mut n, b"READY=1", t), [], "a repeat is not news");
        apply(&mut n, b"RELOADING=1", t);
        assert!(n.reloading);
        assert_eq!(apply(&mut n, b"READY=1", t), [Event::Ready]);
        apply(&mut n, b"WATCHDOG_USEC=2000000", t);
        assert_eq!(n.watchdog, Some(Duration::from_secs(2)));
        assert_eq!(n.watchdog_deadline(), Some(t + Duration::from_secs(2)));
        apply(&mut n, b"WATCHDOG=trigger", t);
        assert!(n.triggered);
        assert_eq!(apply(&mut n, b"WATCHDOG=1", t), [Event::Fed]);
        assert!(!n.triggered);
        apply(&mut n, b"WATCHDOG_USEC=0", t);
        assert_eq!(n.watchdog, None);
        assert_eq!(
            apply(&mut n, b"STOPPING=1\nMAINPID=4\ngarbage", t),
            [Event::Stopping]
        );
        assert!(n.stopping);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        const KNOWN: [&str; 5] = ["READY", "RELOADING", "STOPPING", "STATUS", "WATCHDOG"];

        fn shown(c: char) -> bool {
            !c.is_control() && !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        }

        proptest! {
            /// Any datagram: no panic, and no control character reaches STATUS.
            #[test]
            fn any_bytes_never_panic_nor_leak_controls(data in proptest::collection::vec(any::<u8>(), 0..600)) {
                let mut n = NotifyStatus::default();
                let events = apply(&mut n, &data, std::time::Instant::now());
                if let Some(status) = &n.status {
                    prop_assert!(status.chars().all(shown), "{:?}", status);
                    prop_assert!(status.chars().count() <= STATUS_MAX_CHARS);
                }
                for e in events {
                    if let Event::Status(text) = e {
                        prop_assert!(text.chars().all(shown), "{:?}", text);
                    }
                }
            }

            /// STATUS= keeps any text, in printable form.
            #[test]
            fn status_is_kept_printable(text in proptest::collection::vec(any::<u8>(), 0..300)) {
                let text: Vec<u8> = text.into_iter().filter(|&b| b != b'\n').collect();
                let mut n = NotifyStatus::default();
                apply(&mut n, &[b"STATUS=".as_slice(), &text].concat(), std::time::Instant::now());
                let want: String = crate::util::text::printable(&String::from_utf8_lossy(&text))
                    .chars()
                    .take(STATUS_MAX_CHARS)
                    .collect();
                prop_assert_eq!(n.status, Some(want));
            }

            /// Unknown keys and lines without `=` change nothing, wherever they are.
            #[test]
            fn unknown_keys_are_ignored(
                key in "[A-Z_]{1,16}",
                value in "[^\n]{0,40}",
                noise in "[^=\n]{0,40}",
            ) {
                prop_assume!(!KNOWN.contains(&key.as_str()) && key != "WATCHDOG_USEC");
                let t = std::time::Instant::now();
                let mut n = NotifyStatus::default();
                let data = format!("{key}={value}\n{noise}\n{key}=1");
                prop_assert_eq!(apply(&mut n, data.as_bytes(), t), vec![]);
                prop_assert_eq!(&n, &NotifyStatus::default());
                // Known assignments around them still apply.
                let data = format!("{noise}\n{key}={value}\nREADY=1\nWATCHDOG_USEC=5000000\n{noise}");
                let events = apply(&mut n, data.as_bytes(), t);
                prop_assert_eq!(events, vec![Event::Ready, Event::Watchdog(5_000_000)]);
                prop_assert!(n.ready);
                prop_assert_eq!(n.watchdog, Some(Duration::from_secs(5)));
                prop_assert_eq!(n.watchdog_deadline(), Some(t + Duration::from_secs(5)));
            }

            /// WATCHDOG_USEC never makes a deadline that overflows: too large is ignored.
            #[test]
            fn any_watchdog_period_is_safe(usec in any::<u64>()) {
                let mut n = NotifyStatus::default();
                let t = std::time::Instant::now();
                apply(&mut n, format!("WATCHDOG_USEC={usec}").as_bytes(), t);
                let _ = n.watchdog_deadline();
                prop_assert_eq!(n.watchdog.is_some(), usec != 0 && usec <= WATCHDOG_MAX_USEC);
            }
        }
    }
}
