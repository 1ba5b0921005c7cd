//! What the container uses, gathered at each `/metrics` scrape (issue 9): the cgroup's
//! memory and CPU figures, its processes and their summed RSS, the main child's open
//! descriptors, and the OOM kills `supervise::oom` counted (checked first, so a scrape is also
//! when a kill is noticed where the kernel sends no event).
//!
//! Cheap by design (a scrape with 500 processes is measured by bench/scrape): a handful
//! of small cgroup files, one `cgroup.procs`, one /proc/PID/statm per process (the mm's
//! counters, O(1); smaps_rollup would walk every mapping of every process), one
//! directory listing for the child's descriptors. Reads only: it never touches a process.

use crate::supervise::oom;
use crate::sys::cgroup::Usage;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// None when no cgroup was found.
    pub usage: Option<Usage>,
    pub processes: Option<u64>,
    pub rss_bytes: Option<u64>,
    pub child_fds: Option<u64>,
    pub oom: Option<oom::Status>,
}

/// Reads everything now. `child` is the main child while it runs.
pub fn gather(child: Option<i32>) -> Resources {
    let oom = oom::get();
    if let Some(o) = oom {
        o.check();
    }
    let cgroup = oom.map(oom::Oom::cgroup);
    // The container's processes: its cgroup's, or, with no cgroup, every process of
    // kai-init's PID namespace when it is that namespace's init.
    let pids = match cgroup {
        Some(cg) => cg.read_procs(),
        None if crate::sys::is_pid1() => namespace_pids(),
        None => None,
    };
    Resources {
        usage: cgroup.map(|c| c.read_usage()),
        processes: pids.as_ref().map(|p| p.len() as u64),
        rss_bytes: pids.as_deref().map(rss_sum),
        child_fds: child.and_then(open_fds),
        oom: oom.map(oom::Oom::status),
    }
}

fn namespace_pids() -> Option<Vec<i32>> {
    let dir = std::fs::read_dir("/proc").ok()?;
    Some(
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&pid: &i32| pid > 0)
            .collect(),
    )
}

/// Resident bytes of `pids` summed; a process gone meanwhile counts nothing. Shared pages
/// (a preforked server's workers) count once per process, as `ps` and cgroup-less
/// tools count them: the cgroup's memory usage is the deduplicated figure.
fn rss_sum(pids: &[i32]) -> u64 {
    pids.iter()
        .filter_map(|&pid| crate::sys::proc::rss_bytes(pid))
        .fold(0u64, u64::saturating_add)
}

fn open_fds(pid: i32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_this_process_rss_and_descriptors() {
        let me = std::process::id() as i32;
        assert!(rss_sum(&[me]) > 0);
        // A pid that cannot exist adds nothing.
        assert_eq!(rss_sum(&[i32::MAX]), 0);
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        let with = open_fds(me).unwrap();
        drop(f);
        assert_eq!(open_fds(me).unwrap() + 1, with);
    }
}
