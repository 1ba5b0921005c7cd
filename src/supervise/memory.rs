//! The memory warning (issue 21): one warn line when the container's working set crosses
//! `--memory-warn` percent of its memory limit, naming the processes that hold the most,
//! before the OOM killer strikes. Where the kernel kills the whole cgroup at once
//! (`memory.oom.group`, Kubernetes 1.28+ on cgroup v2) kai-init dies with the application
//! and its OOM line is never written: this warning is then the only record inside the
//! container.
//!
//! Once per crossing: after a warning the next one needs the working set to fall below
//! the threshold minus 10 points first, so a process that hovers at the line warns once.
//!
//! When to look: where the kernel offers an event it drives the check (cgroup v1: an
//! eventfd on `memory.usage_in_bytes` at the threshold, registered as root before the
//! drop, since `cgroup.event_control` is root's); otherwise, and also, at each probe and
//! each `/metrics` scrape. No timer of its own: an idle kai-init still never wakes up.

use std::sync::{Mutex, OnceLock};

use tracing::{debug, info, warn};

use super::oom::{bytes_text, limit_text};
use crate::sys::cgroup::{Cgroup, Limit, Usage};
use crate::sys::oom_events::{Events, Source};
use crate::util::lock::lock;

/// How many processes the warning names.
const NAMED: usize = 3;

/// Points below the threshold the working set must fall before the next warning.
const REARM_POINTS: u64 = 10;

pub struct Memory {
    cgroup: Cgroup,
    percent: u8,
    /// A warning was given and the working set has not fallen back since.
    fired: Mutex<bool>,
}

static MEMORY: OnceLock<Memory> = OnceLock::new();

/// What [`prepare`] set up as root.
pub struct Prepared {
    memory: Memory,
    source: Option<Source>,
}

/// Says once whether an OOM in `cgroup` kills the whole container, reads its limit and
/// (cgroup v1) subscribes to the usage threshold. Call before the drop when there is one.
/// None: off, or no limit to take a share of.
pub fn prepare(cgroup: Cgroup, percent: Option<u8>) -> Option<Prepared> {
    if let Some(note) = oom_group_note(cgroup.read_oom_group()) {
        info!("{note}");
    }
    let percent = percent?;
    let Some(Limit::Bytes(limit)) = cgroup.read_usage().memory_limit else {
        debug!("no memory limit: no memory warning");
        return None;
    };
    let source = match Source::usage_threshold(&cgroup, threshold(limit, percent)) {
        Ok(source) => Some(source),
        Err(e) => {
            debug!("no memory threshold event ({e}); memory is checked at probes and scrapes");
            None
        }
    };
    Some(Prepared {
        memory: Memory {
            cgroup,
            percent,
            fired: Mutex::new(false),
        },
        source,
    })
}

/// Starts watching; call once on the runtime. Checks once at once: a container may start
/// above the line.
pub fn init(prepared: Prepared) {
    if MEMORY.set(prepared.memory).is_err() {
        return;
    }
    let Some(memory) = MEMORY.get() else { return };
    memory.check();
    match prepared.source.map(Source::poll).transpose() {
        Ok(Some(events)) => drop(tokio::spawn(watch(memory, events))),
        Ok(None) => {}
        Err(e) => debug!("cannot poll the memory threshold event: {e}"),
    }
}

/// The instance, once [`init`] ran.
pub fn get() -> Option<&'static Memory> {
    MEMORY.get()
}

async fn watch(memory: &'static Memory, mut events: Events) {
    while events.next().await.is_ok() {
        memory.check();
    }
}

/// What to say at start about `memory.oom.group` (None: not set, or cgroup v1).
fn oom_group_note(oom_group: Option<bool>) -> Option<&'static str> {
    (oom_group == Some(true)).then_some(
        "memory.oom.group is set: an OOM kill here ends the whole container, kai-init \
         included, and no OOM line is written; the memory warning is the record to look for",
    )
}

/// `percent` of `limit`, in bytes, without overflow.
fn threshold(limit: u64, percent: u8) -> u64 {
    (u128::from(limit) * u128::from(percent) / 100) as u64
}

/// What to do with a working set, given whether a warning is out: `Some(true)` warn now,
/// `Some(false)` re-arm, `None` nothing. Pure, for the unit tests.
fn decide(ws: u64, limit: u64, percent: u8, fired: bool) -> Option<bool> {
    let rearm = threshold(limit, percent.saturating_sub(REARM_POINTS as u8));
    match fired {
        false if ws >= threshold(limit, percent) => Some(true),
        true if ws < rearm => Some(false),
        _ => None,
    }
}

impl Memory {
    /// Reads the working set and warns if it crossed the line since the last warning.
    pub fn check(&self) {
        self.judge(&self.cgroup.read_usage());
    }

    /// [`Memory::check`] on figures already read (a `/metrics` scrape has just read them
    /// all: reading the cgroup's files a second time would double the scrape's I/O).
    pub fn judge(&self, usage: &Usage) {
        let (Some(ws), Some(Limit::Bytes(limit))) = (usage.memory_working_set, usage.memory_limit)
        else {
            return;
        };
        let mut fired = lock(&self.fired);
        match decide(ws, limit, self.percent, *fired) {
            Some(true) => {
                *fired = true;
                drop(fired);
                warn!(
                    working_set = %bytes_text(Some(ws)),
                    limit = %limit_text(usage.memory_limit),
                    largest = %self.largest(),
                    "memory: the container's working set is over {}% of its limit",
                    self.percent
                );
            }
            Some(false) => {
                *fired = false;
                debug!(working_set = %bytes_text(Some(ws)), "memory back under the warning line");
            }
            None => {}
        }
    }

    /// The processes with the most resident memory: "pid 12 (python3) 96 MiB, ...".
    fn largest(&self) -> String {
        let mut procs: Vec<(u64, i32)> = (self.cgroup.read_procs().unwrap_or_default())
            .into_iter()
            .filter_map(|pid| Some((crate::sys::proc::rss_bytes(pid)?, pid)))
            .collect();
        procs.sort_unstable_by(|a, b| b.cmp(a));
        let named: Vec<String> = procs
            .iter()
            .take(NAMED)
            .map(|&(rss, pid)| {
                let comm = crate::sys::proc::comm(pid).unwrap_or_else(|| "?".into());
                format!("pid {pid} ({comm}) {}", bytes_text(Some(rss)))
            })
            .collect();
        match named.is_empty() {
            true => "unknown".into(),
            false => named.join(", "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_so_only_when_an_oom_kills_the_whole_container() {
        assert!(oom_group_note(Some(true)).is_some_and(|n| n.contains("whole container")));
        assert_eq!(oom_group_note(Some(false)), None);
        assert_eq!(oom_group_note(None), None);
    }

    #[test]
    fn warns_once_per_crossing_and_rearms_ten_points_below() {
        let limit = 1000;
        // Under the line: nothing; at it: warn.
        assert_eq!(decide(899, limit, 90, false), None);
        assert_eq!(decide(900, limit, 90, false), Some(true));
        // Out already: nothing more while it hovers, down to 80%.
        assert_eq!(decide(950, limit, 90, true), None);
        assert_eq!(decide(800, limit, 90, true), None);
        // Below 80%: re-armed; the next crossing warns again.
        assert_eq!(decide(799, limit, 90, true), Some(false));
        // A threshold of 10% or less never re-arms (below zero), and never underflows.
        assert_eq!(decide(0, limit, 5, true), None);
        // Huge limits do not overflow.
        assert_eq!(decide(u64::MAX, u64::MAX, 100, false), Some(true));
    }
}
