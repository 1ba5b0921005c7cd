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

/// Where a walk up a sender's parent chain ended (see [`place`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// `root` itself or one of its descendants.
    InTree,
    /// Not in `root`'s tree (pid 0 included: how the kernel names a process of another
    /// PID namespace). For life: so is every record visited.
    Outside,
    /// The sender or one of its parents is gone from /proc (exited, or reparented under
    /// the walk): it cannot be placed, and is refused (fail closed), but the records
    /// visited prove nothing.
    Vanished,
    /// The reads allowed ran out before the walk could decide.
    Undecided,
}

/// Is `pid` the main child `root` or one of its descendants? Walks the parent chain
/// (proc(5), field 4 of `stat`), as systemd's NotifyAccess=all admits the unit's own
/// processes only, reading each record with `read` (the live one is [`read`]). The sender's
/// own record is free; each parent's costs one of `reads`, and none left is
/// [`Placed::Undecided`]: a stranger at the bottom of a deep chain cannot make the caller
/// read /proc without bound (issue 17, item 6). The walk stops early, as `Outside`:
/// - at a process that started before `root` (`root_start`, clock ticks after boot, field
///   22): every process in `root`'s tree started at or after `root`. One enters the tree
///   only by being forked inside it: an orphan is adopted by the nearest subreaper among
///   its former ancestors (prctl(2), PR_SET_CHILD_SUBREAPER), which is inside the tree only
///   if the orphan already was. Ancestors only get older going up, so nothing above such a
///   process can be in the tree either;
/// - at a process `known_outside` recognises (the caller's memory of earlier walks; being
///   outside is for life, by the same argument).
///
/// Every record read is pushed to `visited`: on `Outside`, all of them are outside too
/// (each descends from the process that ended the walk, without `root` in between).
pub fn place(
    pid: i32,
    root: i32,
    root_start: Option<u64>,
    reads: &mut u32,
    read: impl Fn(i32) -> Option<Proc>,
    known_outside: impl Fn(&Proc) -> bool,
    visited: &mut Vec<Proc>,
) -> Placed {
    let mut pid = pid;
    // A bound, not a cycle guard: parent chains cannot loop, but /proc changes under us.
    for step in 0..4096 {
        if pid == root {
            return Placed::InTree;
        }
        if pid <= 1 {
            return Placed::Outside;
        }
        if step > 0 {
            if *reads == 0 {
                return Placed::Undecided;
            }
            *reads -= 1;
        }
        let Some(p) = read(pid) else {
            return Placed::Vanished;
        };
        visited.push(p);
        let older = matches!((p.start_time, root_start), (Some(t), Some(r)) if t < r);
        if older || known_outside(&p) {
            return Placed::Outside;
        }
        pid = p.ppid;
    }
    Placed::Outside
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
    use super::{descends_from, has_member, parse_stat, place, sigkill_pending, Placed, Proc};

    /// A chain 1 <- 10 (root, started at 100) <- 11 <- ... <- 10+depth, each started one
    /// tick after its parent, and beside it a stranger chain 1 <- 5 (started at 50) <- 500
    /// <- ... <- 500+depth started after the root.
    fn table(depth: i32) -> Vec<Proc> {
        let at = |pid, ppid, start| Proc {
            pid,
            ppid,
            pgid: pid,
            zombie: false,
            start_time: Some(start),
        };
        let mut t = vec![at(1, 0, 1), at(10, 1, 100), at(5, 1, 50)];
        for i in 1..=depth {
            t.push(at(10 + i, 10 + i - 1, 100 + i as u64));
            let parent = if i == 1 { 5 } else { 500 + i - 1 };
            t.push(at(500 + i, parent, 200 + i as u64));
        }
        t
    }

    fn walk(t: &[Proc], pid: i32, reads: &mut u32, outside: &[i32]) -> (Placed, usize) {
        let mut visited = Vec::new();
        let placed = place(
            pid,
            10,
            Some(100),
            reads,
            |pid| t.iter().find(|p| p.pid == pid).copied(),
            |p| outside.contains(&p.pid),
            &mut visited,
        );
        (placed, visited.len())
    }

    #[test]
    fn placing_walks_up_and_stops_early_where_it_can() {
        let t = table(300);
        let mut reads = u32::MAX;
        // A descendant 300 deep: 300 records read, 299 of them charged.
        assert_eq!(walk(&t, 310, &mut reads, &[]), (Placed::InTree, 300));
        assert_eq!(u32::MAX - reads, 299);
        // The root itself: nothing read.
        assert_eq!(walk(&t, 10, &mut reads, &[]), (Placed::InTree, 0));
        // The stranger chain ends at 5, which started before the root: the walk stops there,
        // not at PID 1.
        assert_eq!(walk(&t, 800, &mut reads, &[]), (Placed::Outside, 301));
        // Remembered as outside: one read, the sender's own (free).
        let before = reads;
        assert_eq!(walk(&t, 800, &mut reads, &[800]), (Placed::Outside, 1));
        assert_eq!(reads, before);
        // A new process under a remembered one: one charged read.
        assert_eq!(walk(&t, 800, &mut reads, &[799]), (Placed::Outside, 2));
        assert_eq!(reads, before - 1);
        // From another PID namespace (0): outside. Gone, or a parent gone under the walk:
        // vanished, which proves nothing about the records read.
        assert_eq!(walk(&t, 0, &mut reads, &[]).0, Placed::Outside);
        assert_eq!(walk(&t, 9999, &mut reads, &[]).0, Placed::Vanished);
        let orphaned: Vec<Proc> = t.iter().filter(|p| p.pid != 305).copied().collect();
        assert_eq!(walk(&orphaned, 310, &mut reads, &[]), (Placed::Vanished, 5));
    }

    #[test]
    fn placing_stops_undecided_when_the_reads_run_out() {
        let t = table(300);
        let mut reads = 100;
        assert_eq!(walk(&t, 310, &mut reads, &[]), (Placed::Undecided, 101));
        assert_eq!(reads, 0);
        // Still decided at no cost: the root, and a remembered stranger.
        assert_eq!(walk(&t, 10, &mut reads, &[]).0, Placed::InTree);
        assert_eq!(walk(&t, 800, &mut reads, &[800]).0, Placed::Outside);
    }

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
