//! The event loop: one task that owns the main child, from start to the last reap.
//!
//! Running --(TERM/INT)--> Draining (optional, --drain-delay) --> Stopping --(timeout)--> SIGKILL
//!    \--(main child ends)--> Cleanup: TERM the leftovers, KILL them after --stop-timeout
//!                                     --> done when kai-init has no child left
//!
//! Signals and SIGCHLD come in from the signalfd; decisions and their effects stay here;
//! state goes out to the health side. No timer exists unless a deadline does, so an idle
//! kai-init makes no wake-ups at all.
//!
//! A repeated stop signal (TERM or INT, after --signal-map) is the user insisting, as with
//! Ctrl-C pressed twice: while Draining it ends the drain and stops now; while Stopping it
//! is forwarded to the child again (many servers take a second one as "quit now"), and the
//! SIGKILL deadline stays where it was. Once the main child has ended (Cleanup) nothing is
//! forwarded: every leftover gets TERM once and KILL at the deadline.
//!
//! Process groups are signalled only while kai-init can show they are its own: the main
//! child's group while the main child is unreaped (its pid holds the group's number), and
//! after that only while /proc shows a member descending from kai-init; as a subreaper on
//! a busy host the number could otherwise have been reused by a stranger's group.
//!
//! Every deadline saturates ([`after`]): an absurd --stop-timeout means "never", not a panic.

pub mod claims;
pub mod exit;
pub mod memory;
pub mod oom;
pub mod state;

use std::collections::HashSet;
use std::time::Duration;

use nix::errno::Errno;
use nix::unistd::Pid;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::config::signal_names::name;
use crate::config::signal_names::{ends_start, is_stop, mapped};
use crate::supervise::claims::Claims;
use crate::supervise::state::Publisher;
use crate::sys::proc::{self, Proc};
use crate::sys::reaper::{self, Reap};
use crate::sys::signals::Signals;
use crate::sys::status::{Ended, WaitEvent};
use crate::sys::{self, kill, tty};
use crate::util::backoff::Backoff;
use crate::util::clock::after;

const SIGKILL: i32 = libc::SIGKILL;
const SIGTERM: i32 = libc::SIGTERM;

/// The next reason the health side sent, if it watches for unhealthiness at all.
async fn unhealthy_reason(rx: &mut Option<tokio::sync::watch::Receiver<Option<String>>>) -> String {
    let Some(rx) = rx else {
        return std::future::pending().await;
    };
    loop {
        if rx.changed().await.is_err() {
            // The health side is gone (kai-init is exiting): nothing more will come.
            return std::future::pending().await;
        }
        if let Some(reason) = rx.borrow_and_update().clone() {
            return reason;
        }
    }
}

/// After SIGKILL to the leftovers, how long to wait for processes stuck in the kernel
/// (D state) before kai-init exits anyway and lets the namespace take them.
const LAST_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct Options {
    pub stop_timeout: Duration,
    pub drain_delay: Duration,
    pub signal_map: Vec<(i32, i32)>,
    /// Signals that go to the child's whole process group; the rest go to the child only
    /// (a master-worker server tells its own workers).
    pub signal_group: Vec<i32>,
    /// kai-init handed its terminal to the child (mirror job control).
    pub interactive: bool,
    /// kai-init is its namespace's init: every process in it is a leftover to stop.
    pub pid1: bool,
    /// Exit statuses the health side's exec: probes wait for.
    pub claims: Claims,
    /// `--exit-on-unhealthy`: the health side sends the reason here when /livez turns
    /// failing after the child was ready; the child is then stopped as for SIGTERM.
    pub unhealthy: Option<tokio::sync::watch::Receiver<Option<String>>>,
    /// This supervisor runs a `--pre` step, not COMMAND: every signal that
    /// [`ends_start`] names (QUIT and HUP too) marks the stop, in every phase, so
    /// COMMAND never starts after one; and the log says "pre step", not "child".
    pub pre_step: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Running,
    /// A stop signal waits out --drain-delay before it is forwarded.
    Draining {
        until: Instant,
        signal: i32,
    },
    /// The stop signal went out; SIGKILL the group at `kill_at` (None once sent).
    Stopping {
        kill_at: Option<Instant>,
    },
    /// The main child ended; leftovers get TERM, then KILL at `kill_at`, then kai-init
    /// leaves at `give_up_at`.
    Cleanup {
        kill_at: Option<Instant>,
        give_up_at: Option<Instant>,
    },
}

pub struct Supervisor {
    opts: Options,
    child: i32,
    phase: Phase,
    ended: Option<Ended>,
    children_left: bool,
    /// Processes that already had a stop signal (the forwarded one, or cleanup's TERM):
    /// each gets one, so a graceful shutdown is not cut short by a repeat.
    signalled: HashSet<i32>,
    state: Publisher,
    read_errors: Backoff,
    /// kai-init itself sent SIGKILL to this tree: a SIGKILL death from now on may be its
    /// own doing and is never blamed on the OOM killer.
    sent_kill: bool,
}

impl Supervisor {
    pub fn new(opts: Options, child: i32, state: Publisher) -> Self {
        Supervisor {
            opts,
            child,
            phase: Phase::Running,
            ended: None,
            children_left: true,
            signalled: HashSet::new(),
            state,
            read_errors: Backoff::default(),
            sent_kill: false,
        }
    }

    /// Runs until the main child has ended and no other child is left; returns how the
    /// main child ended.
    pub async fn run(mut self, signals: &mut Signals) -> Ended {
        // Out of `self`, so that waiting on it does not hold `self` across the handlers.
        let mut unhealthy = self.opts.unhealthy.take();
        loop {
            if let (Some(ended), false) = (self.ended, self.children_left) {
                if self.opts.interactive {
                    tty::reclaim(Pid::from_raw(self.child));
                }
                return ended;
            }
            let deadline = self.deadline();
            let timer = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = signals.recv() => match received {
                    Ok((sig, sender)) => {
                        self.read_errors.reset();
                        self.on_signal(sig, sender)
                    }
                    // Cannot happen with a valid signalfd; PID 1 must not die of its own
                    // errors, nor spin on them. SIGCHLD may be what failed to arrive, so
                    // reap after each pause: children are still collected.
                    Err(e) => {
                        let (pause, log) = self.read_errors.fail();
                        if log {
                            error!(failures = self.read_errors.failures, ?pause, "cannot read signals: {e}");
                        }
                        tokio::time::sleep(pause).await;
                        self.reap();
                    }
                },
                () = timer => self.on_deadline(),
                reason = unhealthy_reason(&mut unhealthy) => self.on_unhealthy(&reason),
            }
        }
    }

    /// The health side says the child is dead-but-running: stop it as a SIGTERM would
    /// (after --signal-map, with --drain-delay and --stop-timeout), and exit `UNHEALTHY`.
    /// Once a stop is under way there is nothing to add.
    fn on_unhealthy(&mut self, reason: &str) {
        if self.phase != Phase::Running {
            return;
        }
        error!(
            reason,
            "child is unhealthy; stopping it (--exit-on-unhealthy)"
        );
        self.state.send_modify(|s| s.stopped_unhealthy = true);
        if mapped(&self.opts.signal_map, SIGTERM) == 0 {
            // TERM means nothing to this child (--signal-map TERM:0): SIGKILL at the
            // deadline is the only stop there is.
            self.mark_stopping(SIGTERM);
            self.phase = Phase::Stopping {
                kill_at: Some(after(Instant::now(), self.opts.stop_timeout)),
            };
        } else {
            self.on_signal(SIGTERM, 0);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Running => None,
            Phase::Draining { until, .. } => Some(until),
            Phase::Stopping { kill_at } => kill_at,
            Phase::Cleanup {
                kill_at,
                give_up_at,
            } => kill_at.or(give_up_at),
        }
    }

    fn on_signal(&mut self, sig: i32, sender: i32) {
        if sig == libc::SIGCHLD {
            return self.reap();
        }
        let mapped = mapped(&self.opts.signal_map, sig);
        if mapped == 0 {
            debug!(signal = %name(sig), "dropped by --signal-map");
            return;
        }
        if crate::sys::sigset::LIBC_INTERNAL.contains(&mapped) {
            debug!(signal = %name(sig), "reserved by libc; not forwarded");
            return;
        }
        let is_stop = is_stop(sig, mapped);
        debug!(signal = %name(sig), from_pid = sender, "received");
        // Before COMMAND, a stop asked for in any phase (the step's clean-up included)
        // means COMMAND never starts (issue 17, items 1 and 9).
        if self.opts.pre_step && ends_start(&self.opts.signal_map, sig) {
            self.mark_stopping(sig);
        }
        match self.phase {
            Phase::Cleanup { .. } => {
                // The main child has ended: kai-init exits with its status once the
                // leftovers are gone, so a stop changes nothing but /readyz.
                if is_stop {
                    self.mark_stopping(sig);
                }
                debug!(signal = %name(sig), "{} already ended; not forwarded", self.what());
            }
            // A step serves no traffic: nothing to drain (issue 17, item 10).
            Phase::Running
                if is_stop && !self.opts.drain_delay.is_zero() && !self.opts.pre_step =>
            {
                info!(signal = %name(sig), delay = ?self.opts.drain_delay, "draining before stop");
                self.mark_stopping(sig);
                self.phase = Phase::Draining {
                    until: after(Instant::now(), self.opts.drain_delay),
                    signal: mapped,
                };
            }
            Phase::Draining { .. } if is_stop => {
                info!(signal = %name(sig), "stop signal repeated; ending the drain");
                self.begin_stop(mapped, sig);
            }
            Phase::Running if is_stop => self.begin_stop(mapped, sig),
            Phase::Stopping { .. } if is_stop => {
                info!(signal = %name(sig), "stop signal repeated; forwarding it again");
                self.forward(mapped);
            }
            _ => self.forward(mapped),
        }
    }

    /// Forwards the stop signal `sig` (after --signal-map; `received` is what came in)
    /// and sets the SIGKILL deadline.
    fn begin_stop(&mut self, sig: i32, received: i32) {
        info!(signal = %name(sig), timeout = ?self.opts.stop_timeout, "stopping {}", self.what());
        self.mark_stopping(received);
        // Who gets this signal, noted before it is sent: a process forked in between is
        // told twice at worst, never skipped.
        if !self.to_group(sig) {
            self.signalled.insert(self.child);
        } else if let Some(procs) = proc::processes() {
            let group = procs.iter().filter(|p| p.pgid == self.child);
            self.signalled.extend(group.map(|p| p.pid));
        }
        self.forward(sig);
        self.phase = Phase::Stopping {
            kill_at: Some(after(Instant::now(), self.opts.stop_timeout)),
        };
    }

    fn on_deadline(&mut self) {
        match self.phase {
            Phase::Draining { signal, .. } => {
                let received = self.state.borrow().stop_signal.unwrap_or(signal);
                self.begin_stop(signal, received)
            }
            Phase::Stopping { kill_at: Some(_) } => {
                warn!(timeout = ?self.opts.stop_timeout, "{} did not stop in time; sending SIGKILL to its process group", self.what());
                self.kill_child_group(SIGKILL);
                self.phase = Phase::Stopping { kill_at: None };
            }
            Phase::Cleanup {
                kill_at: Some(_), ..
            } => {
                warn!("leftover processes did not stop in time; sending SIGKILL");
                self.signal_leftovers(SIGKILL);
                self.phase = Phase::Cleanup {
                    kill_at: None,
                    give_up_at: Some(after(Instant::now(), LAST_GRACE)),
                };
            }
            Phase::Cleanup {
                kill_at: None,
                give_up_at: Some(_),
            } => {
                error!("leftover processes survive SIGKILL; exiting anyway");
                self.children_left = false;
            }
            _ => {}
        }
    }

    /// Marks the stop; the first signal that asked for it is kept (its number makes the
    /// exit code when nothing else does, e.g. a step that still exited 0).
    fn mark_stopping(&self, received: i32) {
        let ended = self.ended.is_some();
        self.state.send_modify(|s| {
            if !s.stopping {
                s.stop_after_exit = ended;
            }
            s.stopping = true;
            s.stop_signal.get_or_insert(received);
        });
    }

    /// "child" or "pre step", for the log.
    fn what(&self) -> &'static str {
        if self.opts.pre_step {
            "pre step"
        } else {
            "child"
        }
    }

    /// Whether `sig` goes to the child's whole process group (--signal-group).
    fn to_group(&self, sig: i32) -> bool {
        self.opts.signal_group.contains(&sig)
    }

    /// Whether kill(-child) can reach only processes of this tree: the main child is not
    /// reaped yet (its pid holds the group's number), or /proc shows a member of the group
    /// that descends from kai-init. Without /proc to ask, only PID 1 assumes so.
    fn group_is_ours(&self, procs: Option<&[Proc]>) -> bool {
        let me = std::process::id() as i32;
        self.ended.is_none()
            || procs.map_or(self.opts.pid1, |p| proc::has_member(p, self.child, me))
    }

    /// Sends `sig` to the main child, or to its group for a --signal-group signal (a child
    /// that moved itself to another group still gets it directly).
    fn forward(&mut self, sig: i32) {
        self.note_kill(sig);
        let result = if self.to_group(sig) && self.group_is_ours(None) {
            sys::kill_group(self.child, sig).or_else(|_| kill(self.child, sig))
        } else {
            kill(self.child, sig)
        };
        match result {
            Ok(()) => {
                debug!(signal = %name(sig), "forwarded");
                self.state
                    .send_modify(|s| *s.forwarded.entry(sig).or_default() += 1);
            }
            Err(Errno::ESRCH) => debug!(signal = %name(sig), "child already gone"),
            Err(e) => warn!(signal = %name(sig), "cannot forward: {e}"),
        }
    }

    fn kill_child_group(&mut self, sig: i32) {
        self.note_kill(sig);
        if self.group_is_ours(proc::processes().as_deref()) {
            let _ = sys::kill_group(self.child, sig);
        }
        let _ = kill(self.child, sig);
    }

    /// Loops until no child has news: one SIGCHLD may stand for many exits.
    fn reap(&mut self) {
        let mut reaped = 0u64;
        let mut sigkilled = false;
        loop {
            match reaper::next() {
                Reap::Child(pid, WaitEvent::Ended(ended)) => {
                    reaped += 1;
                    // Killed by SIGKILL: maybe by the OOM killer (issue 9, `supervise::oom`),
                    // unless kai-init sent SIGKILL itself (issue 17, item 4).
                    if let (Ended::Signaled(SIGKILL), Some(oom), false) =
                        (ended, oom::get(), self.sent_kill)
                    {
                        oom.note_killed(pid);
                        sigkilled = true;
                    }
                    if pid == self.child {
                        self.on_child_ended(ended);
                    } else {
                        self.opts.claims.deliver(pid, ended);
                    }
                }
                Reap::Child(pid, WaitEvent::Stopped(sig)) if pid == self.child => {
                    self.on_child_stopped(sig)
                }
                Reap::Child(..) => {}
                Reap::Pending => break,
                Reap::Empty => {
                    self.children_left = false;
                    break;
                }
            }
        }
        if let (true, Some(oom)) = (sigkilled, oom::get()) {
            oom.check();
        }
        if reaped > 0 {
            self.state.send_modify(|s| s.reaped += reaped);
        }
        if self.ended.is_some() && self.children_left {
            self.stop_leftovers();
        }
    }

    fn on_child_ended(&mut self, ended: Ended) {
        let what = self.what();
        match ended {
            Ended::Exited(code) => info!(code, "{what} exited"),
            // The OOM killer's SIGKILL (issue 9): said on the exit line; the code stays 137.
            Ended::Signaled(SIGKILL) if !self.sent_kill && killed_by_oom() => {
                error!(signal = %name(SIGKILL), "{what} killed by the kernel's OOM killer")
            }
            Ended::Signaled(sig) => info!(signal = %name(sig), "{what} killed by signal"),
        }
        self.ended = Some(ended);
        self.state.send_modify(|s| {
            s.running = false;
            match ended {
                Ended::Exited(code) => s.exit_code = Some(code),
                Ended::Signaled(sig) => s.exit_signal = Some(sig),
            }
        });
    }

    /// The main child is gone but processes it started remain: TERM those that have not
    /// had a stop signal yet (or KILL them at once if the stop already escalated), and
    /// KILL what is left at the stop's deadline, or after --stop-timeout if none was set.
    fn stop_leftovers(&mut self) {
        match self.phase {
            Phase::Cleanup { kill_at: None, .. } => self.signal_leftovers(SIGKILL),
            Phase::Cleanup { .. } => self.signal_leftovers(SIGTERM),
            Phase::Stopping { kill_at: None } => {
                self.signal_leftovers(SIGKILL);
                self.phase = Phase::Cleanup {
                    kill_at: None,
                    give_up_at: Some(after(Instant::now(), LAST_GRACE)),
                };
            }
            Phase::Stopping { kill_at: Some(at) } => {
                self.signal_leftovers(SIGTERM);
                self.phase = Phase::Cleanup {
                    kill_at: Some(at),
                    give_up_at: None,
                };
            }
            Phase::Running | Phase::Draining { .. } => {
                info!(timeout = ?self.opts.stop_timeout, "{} ended; stopping the processes it left behind", if self.opts.pre_step { "pre step" } else { "main child" });
                self.signal_leftovers(SIGTERM);
                self.phase = Phase::Cleanup {
                    kill_at: Some(after(Instant::now(), self.opts.stop_timeout)),
                    give_up_at: None,
                };
            }
        }
    }

    /// The leftovers: every process that descends from kai-init (the child's group and
    /// every orphan reparented to kai-init), never any other process of the namespace: as
    /// PID 1 that also holds `docker exec` / `kubectl exec` sessions, whose parent is
    /// outside the namespace (issue 17, item 2). TERM goes once to each; KILL to all, and
    /// to the child's group while it is provably ours, which catches a process forked
    /// meanwhile. Without a /proc of this namespace nothing can be told apart: as PID 1
    /// kill(-1) is all there is; a subreaper signals the group only while it is provably
    /// its own.
    fn signal_leftovers(&mut self, sig: i32) {
        self.note_kill(sig);
        let me = std::process::id() as i32;
        let procs = proc::processes();
        let group_ok = self.group_is_ours(procs.as_deref());
        let Some(all) = procs else {
            let reachable = self.opts.pid1 || group_ok;
            if reachable && (sig == SIGKILL || self.signalled.insert(-1)) {
                let _ = match self.opts.pid1 {
                    true => sys::kill_every_process(sig),
                    false => sys::kill_group(self.child, sig),
                };
            }
            return;
        };
        if sig == SIGKILL && group_ok {
            let _ = sys::kill_group(self.child, SIGKILL);
        }
        let ours = |p: &&Proc| !p.zombie && p.pid != me && proc::descends_from(&all, p.pid, me);
        for p in all.iter().filter(ours) {
            if sig == SIGKILL || self.signalled.insert(p.pid) {
                debug!(pid = p.pid, signal = %name(sig), "signalling leftover");
                let _ = kill(p.pid, sig);
            }
        }
    }

    /// kai-init is about to send SIGKILL: remember it, so no SIGKILL death from now on is
    /// blamed on the OOM killer (issue 17, item 4).
    fn note_kill(&mut self, sig: i32) {
        if sig == SIGKILL {
            self.sent_kill = true;
            if let Some(oom) = oom::get() {
                oom.note_own_kill();
            }
        }
    }

    fn on_child_stopped(&mut self, sig: i32) {
        let job_control = [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU].contains(&sig);
        if self.opts.interactive && job_control {
            debug!(signal = %name(sig), "child stopped from the terminal; suspending too");
            tty::suspend_with(Pid::from_raw(self.child));
        } else {
            debug!(signal = %name(sig), "child stopped");
        }
    }
}

/// Whether the OOM killer's count names the main child. Checked now: the child's SIGKILL
/// may be the first news of the kill, and `check` names it as the victim when it is.
fn killed_by_oom() -> bool {
    oom::get().is_some_and(|o| {
        o.check();
        o.main_child_oom()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_saturate_instead_of_panicking() {
        let now = Instant::now();
        assert_eq!(
            after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        for huge in [
            Duration::MAX,
            Duration::from_secs(u64::MAX / 2),
            Duration::from_secs_f64(1e19),
        ] {
            let at = after(now, huge);
            assert!(
                at > now + Duration::from_secs(50 * 365 * 24 * 3600),
                "{huge:?}"
            );
        }
    }
}
