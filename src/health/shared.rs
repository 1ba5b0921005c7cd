//! What every health task shares: the readiness inputs (the supervisor's published state,
//! probe and notify results), request counts, the connection gate and kai-init's own
//! supervisor. The endpoint, the probe task and the notify loop each hold an `Arc` of it;
//! it imports none of them.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::{debug, info, warn};

use super::gate::Gate;
use super::readiness::{checks, passes, Config, Endpoint, Phase, ProbeResult, Status};
use super::upstream::Upstream;
use super::{metrics, resources};
use crate::supervise::claims::Claims;
use crate::supervise::state::{State, Subscriber};
use crate::util::lock::lock;

/// What every health task shares. Locks are held only for a few field updates or one
/// response's formatting, never across an `.await`.
pub struct Shared {
    pub config: Config,
    pub state: Subscriber,
    pub status: Mutex<Status>,
    pub requests: Mutex<metrics::Requests>,
    pub gate: Arc<Gate>,
    pub upstream: Option<Upstream>,
    pub claims: Claims,
    /// `--exit-on-unhealthy`: where to say that /livez turned failing.
    pub unhealthy: Option<tokio::sync::watch::Sender<Option<String>>>,
}

impl Shared {
    pub fn with<R>(&self, f: impl FnOnce(&mut Status) -> R) -> R {
        f(&mut lock(&self.status))
    }

    /// Runs `f` on a consistent view of everything the verdicts depend on.
    pub fn view<R>(&self, f: impl FnOnce(&Config, &State, &Status) -> R) -> R {
        let st = self.state.borrow();
        let s = lock(&self.status);
        f(&self.config, &st, &s)
    }

    pub fn child_running(&self) -> bool {
        self.state.borrow().running
    }

    /// Latches "started" the first time ready holds (and tells kai-init's own supervisor).
    /// Called after every probe result and notification, and before every answer.
    pub fn refresh(&self) {
        // Once latched there is nothing left to do: the common case, on every request.
        if self.with(|s| s.started) {
            return;
        }
        let now = Instant::now();
        let ready = self.view(|cfg, st, s| passes(&checks(Endpoint::Ready, cfg, st, s, now)));
        if ready && !self.with(|s| std::mem::replace(&mut s.started, true)) {
            // Without a probe or --notify the child is ready as soon as it runs: no news.
            if self.view(|cfg, _, _| cfg.probe.is_some() || cfg.notify.is_some()) {
                info!("child is ready");
            } else {
                debug!("child is ready (no probe or notification configured)");
            }
            if let Some(up) = &self.upstream {
                up.send("READY=1");
            }
        }
    }

    pub fn upstream_stopping(&self) {
        if let Some(up) = &self.upstream {
            up.stopping();
        }
    }

    pub fn record_probe(&self, mut result: ProbeResult, phase: Phase) {
        // What a probe saw may quote the child (a path, a program's name): shown safely.
        if let std::borrow::Cow::Owned(clean) = crate::util::text::printable(&result.message) {
            result.message = clean;
        }
        let failures = self.config.probe_failures;
        let counts = !matches!(phase, Phase::Starting { counts: false });
        let (ok, message) = (result.ok, result.message.clone());
        let before = self.with(|s| {
            let before = s.probe.consecutive_failures;
            let never_passed = s.probe.successes == 0;
            s.probe.record(result, counts);
            (before, never_passed)
        });
        let starting = matches!(phase, Phase::Starting { .. });
        match (ok, before) {
            (true, (_, true)) => info!(result = %message, "first probe passed"),
            (true, (0, _)) => {}
            (true, (n, _)) => info!(result = %message, after = n, "probe passes again"),
            (false, (n, _)) if counts && n + 1 == failures => {
                warn!(result = %message, failures, "probe failed {failures} times in a row; not live");
                // Only after the first pass: failures before it are a slow start, which
                // the start budget (/startupz) judges (issue 21).
                if phase == Phase::Running {
                    self.unhealthy(format!(
                        "{failures} probes failed in a row, the last: {message}"
                    ));
                }
            }
            // Before the first pass a failure is the app starting: the probe loop says
            // at info, now and then, that it is still waiting.
            (false, _) if starting => debug!(result = %message, "probe failed; not ready yet"),
            // A child that is being stopped stops answering: news, not a warning.
            (false, (0, _)) if self.state.borrow().stopping => {
                debug!(result = %message, "probe failed while stopping")
            }
            (false, (0, _)) => warn!(result = %message, "probe failed; not ready"),
            (false, _) => {}
        }
        self.refresh();
        // Issue 9: without a kernel event source, a probe tick is when an OOM kill shows;
        // issue 21: and when memory is checked against --memory-warn.
        if let Some(oom) = crate::supervise::oom::get() {
            oom.check();
        }
        if let Some(memory) = crate::supervise::memory::get() {
            memory.check();
        }
    }

    /// /livez turned failing after the child was ready: with `--exit-on-unhealthy`, the
    /// supervisor stops the child (once: a later reason changes nothing).
    pub fn unhealthy(&self, reason: String) {
        if let Some(tx) = &self.unhealthy {
            tx.send_if_modified(|r| r.is_none() && r.replace(reason).is_none());
        }
    }

    pub fn count(&self, path: &'static str, check: &'static str, code: u16) {
        lock(&self.requests).count(path, check, code);
    }

    pub fn metrics(&self) -> String {
        self.refresh();
        let now = Instant::now();
        let conns = self.gate.stats();
        // Issue 9: read before any lock is taken (files, not locks, are the slow part).
        let child = self.view(|_, st, _| st.child_pid.filter(|_| st.running));
        let resources = resources::gather(child);
        if let Some(memory) = crate::supervise::memory::get() {
            match &resources.usage {
                Some(usage) => memory.judge(usage),
                None => memory.check(),
            }
        }
        let requests = lock(&self.requests);
        self.view(|cfg, st, s| {
            let verdicts = metrics::Verdicts {
                live: passes(&checks(Endpoint::Live, cfg, st, s, now)),
                ready: passes(&checks(Endpoint::Ready, cfg, st, s, now)),
                now,
            };
            metrics::render(cfg, st, s, verdicts, &requests, conns, &resources)
        })
    }
}
