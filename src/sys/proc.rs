//! Processes as /proc shows them: one reader of `/proc/PID/stat` and `/proc/PID/status`
//! for the reaper's clean-up (which processes are ours), the notify socket (is a sender
//! the main child's descendant) and the OOM report (who has SIGKILL pending).
//!
//! Parsing is pure (bytes in, `Option` out) so a fuzz target drives it; reading is a
//! plain file read, and a process gone between listing and reading is simply absent.

/// One process as /proc shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub zombie: bool,
    /// Field 22, clock ticks after boot; None in a shortened record (fixtures).
    pub start_time: Option<u64>,
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
            read(pid)
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

/// One process's record, None when it is gone.
pub fn read(pid: i32) -> Option<Proc> {
    // Bytes: the command name is whatever the process set (prctl PR_SET_NAME), and a
    // process skipped for a non-UTF-8 name would never be told to stop.
    parse_stat(pid, &std::fs::read(format!("/proc/{pid}/stat")).ok()?)
}

/// State, PPid, process group and start time from /proc/PID/stat (proc(5)); the command
/// name in parentheses may itself contain spaces and parentheses, so fields are counted
/// after the last ')'.
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
        // Fields 6..=21 come first (16 of them), then starttime.
        start_time: fields.nth(16).and_then(|f| f.parse().ok()),
    })
}

/// Is `pid` the main child `root` or one of its descendants, in the live /proc? Walks the parent chain in
/// /proc (proc(5), field 4 of `stat`), as systemd's NotifyAccess=all admits the unit's
/// own processes only. A sender that has already exited, or whose pid the kernel could
/// not map into this PID namespace (0), cannot be placed: it is refused (fail closed).
pub fn is_in_tree(pid: i32, root: i32) -> bool {
    let mut pid = pid;
    // A bound, not a cycle guard: parent chains cannot loop, but /proc changes under us.
    for _ in 0..4096 {
        if pid == root {
            return true;
        }
        if pid <= 1 {
            return false;
        }
        match read(pid) {
            Some(p) => pid = p.ppid,
            None => return false,
        }
    }
    false
}

/// Whether /proc/PID/status shows SIGKILL pending, for the process (ShdPnd, where the
/// OOM killer sends it) or one of its threads (SigPnd). Masks are hex, bit N-1 for
/// signal N.
pub fn sigkill_pending(status: &[u8]) -> bool {
    status.split(|&b| b == b'\n').any(|line| {
        let Some(mask) = line
            .strip_prefix(b"ShdPnd:")
            .or_else(|| line.strip_prefix(b"SigPnd:"))
        else {
            return false;
        };
        std::str::from_utf8(mask)
            .ok()
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .is_some_and(|m| m & (1 << 8) != 0)
    })
}

/// A zombie's command name, still in /proc until it is reaped.
pub fn comm(pid: i32) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
    let text = String::from_utf8_lossy(bytes.trim_ascii_end());
    Some(crate::util::text::printable(&text).into_owned())
}

/// How many threads kai-init runs, from /proc/self/task; None when that cannot be read.
pub fn thread_count() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/task").ok()?.count())
}

/// A process's resident memory in bytes, from /proc/PID/statm; None when it is gone.
pub fn rss_bytes(pid: i32) -> Option<u64> {
    use std::io::Read;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096);
    // statm is one short line (seven numbers): one read into a buffer that holds any of
    // them, so three system calls per process (open, read, close).
    let mut buf = [0u8; 160];
    let mut f = std::fs::File::open(format!("/proc/{pid}/statm")).ok()?;
    let n = f.read(&mut buf).ok()?;
    let pages = crate::sys::cgroup::parse_statm_resident(&buf[..n])?;
    Some(pages.saturating_mul(page))
}

#[cfg(test)]
mod tests {
    use super::{descends_from, has_member, parse_stat, sigkill_pending, Proc};

    fn p(pid: i32, ppid: i32, pgid: i32) -> Proc {
        Proc {
            pid,
            ppid,
            pgid,
            zombie: false,
            start_time: None,
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
                zombie: false,
                start_time: None,
            })
        );
        assert_eq!(
            parse_stat(3, b"3 (\xff) Z 1 3 3").map(|p| p.zombie),
            Some(true)
        );
        assert_eq!(parse_stat(1, b"garbage"), None);
    }

    #[test]
    fn sees_a_pending_sigkill() {
        let status =
            |shd: &str| format!("Name:\tpython3\nSigPnd:\t0000000000000000\nShdPnd:\t{shd}\n");
        assert!(sigkill_pending(status("0000000000000100").as_bytes()));
        assert!(sigkill_pending(status("0000000000004100").as_bytes()));
        assert!(!sigkill_pending(status("0000000000004000").as_bytes()));
        assert!(!sigkill_pending(status("zz").as_bytes()));
        assert!(!sigkill_pending(b""));
    }
}
