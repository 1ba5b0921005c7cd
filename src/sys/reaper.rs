//! Reaping: collect every child that changed state, not only the main one.

use nix::errno::Errno;

use super::unsafe_ops::wait_any;
use crate::exit::{decode, WaitEvent};

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

/// One process as /proc shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub zombie: bool,
}

/// Every process in /proc, or None when /proc is not this PID namespace's (e.g. PID 1
/// of an `unshare --pid` without its own /proc): its pids would name other processes,
/// and signalling them could hit the host.
pub fn processes() -> Option<Vec<Proc>> {
    let me = std::process::id().to_string();
    if std::fs::read_link("/proc/self").ok()?.as_os_str() != me.as_str() {
        return None;
    }
    let dir = std::fs::read_dir("/proc").ok()?;
    Some(
        dir.filter_map(|e| {
            let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            // Bytes: the command name is whatever the process set (prctl PR_SET_NAME), and
            // a process skipped for a non-UTF-8 name would never be told to stop.
            let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
            parse_stat(pid, &stat)
        })
        .collect(),
    )
}

/// Whether `pid`'s chain of parents in `procs` reaches `ancestor` (`pid` itself excluded).
/// The walk is bounded by the table's size, so a cycle (a racy /proc read) cannot hang it.
pub fn descends_from(procs: &[Proc], pid: i32, ancestor: i32) -> bool {
    let parent = |pid: i32| procs.iter().find(|p| p.pid == pid).map(|p| p.ppid);
    let mut at = pid;
    for _ in 0..=procs.len() {
        match parent(at) {
            Some(ppid) if ppid == ancestor => return true,
            Some(ppid) if ppid > 0 && ppid != at => at = ppid,
            _ => return false,
        }
    }
    false
}

/// Whether process group `pgid` has a member that descends from `ancestor`: then the
/// group's number is still the one `ancestor`'s tree made (a live member holds it), not a
/// stranger's that reused it.
pub fn has_member(procs: &[Proc], pgid: i32, ancestor: i32) -> bool {
    procs
        .iter()
        .any(|p| p.pgid == pgid && !p.zombie && descends_from(procs, p.pid, ancestor))
}

/// State, PPid and process group from /proc/PID/stat; the command name in parentheses
/// may itself contain spaces and parentheses, so fields are counted after the last ')'.
pub fn parse_stat(pid: i32, stat: &[u8]) -> Option<Proc> {
    let after_name = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    // What follows the name is ASCII numbers and letters, written by the kernel.
    let mut fields = std::str::from_utf8(after_name)
        .ok()?
        .split_ascii_whitespace();
    let state = fields.next()?;
    Some(Proc {
        pid,
        ppid: fields.next()?.parse().ok()?,
        pgid: fields.next()?.parse().ok()?,
        zombie: state == "Z",
    })
}

#[cfg(test)]
mod tests {
    use super::{descends_from, has_member, parse_stat, Proc};

    fn p(pid: i32, ppid: i32, pgid: i32) -> Proc {
        Proc {
            pid,
            ppid,
            pgid,
            zombie: false,
        }
    }

    #[test]
    fn descent_follows_parents_and_stops_at_strangers_and_cycles() {
        // 10 is kai-init; 20 its child (group 20); 30 a grandchild in group 20; 40 a
        // stranger in a reused group 20 under pid 1; 50 and 51 a parent cycle.
        let t = [
            p(1, 0, 1),
            p(10, 1, 10),
            p(20, 10, 20),
            p(30, 20, 20),
            p(40, 1, 20),
            p(50, 51, 50),
            p(51, 50, 50),
        ];
        assert!(descends_from(&t, 20, 10));
        assert!(descends_from(&t, 30, 10));
        assert!(!descends_from(&t, 40, 10));
        assert!(!descends_from(&t, 10, 10));
        assert!(!descends_from(&t, 50, 10));
        assert!(!descends_from(&t, 99, 10));
        assert!(has_member(&t, 20, 10));
        // Only the stranger is left in group 20: not ours.
        assert!(!has_member(&[p(10, 1, 10), p(40, 1, 20)], 20, 10));
        // A zombie member is on its way out and proves nothing.
        let mut z = p(30, 10, 20);
        z.zombie = true;
        assert!(!has_member(&[p(10, 1, 10), z], 20, 10));
    }

    #[test]
    fn parses_stat_after_odd_names() {
        assert_eq!(
            parse_stat(12, b"12 (a) b) c) S 7 9 12 0"),
            Some(Proc {
                pid: 12,
                ppid: 7,
                pgid: 9,
                zombie: false
            })
        );
        assert_eq!(
            parse_stat(3, b"3 (\xff) Z 1 3 3").map(|p| p.zombie),
            Some(true)
        );
        assert_eq!(parse_stat(1, b"garbage"), None);
    }
}
