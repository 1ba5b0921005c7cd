//! The health side (issue 3): the endpoint, probes of the child, readiness notification,
//! metrics. It reads the supervisor's published state and never touches processes, with
//! one exception: `exec:` probes start a command (whose status the supervisor reaps and
//! hands back, see `sys::claims::Claims`) and kill it when it overruns.
//!
//! Everything runs as tasks on the supervisor's current-thread runtime and is event-driven:
//! with no probe and no watchdog configured, an idle kai-init has no timer at all. The
//! only exception is a call that may block on what the app's volumes control (a `file:`
//! probe's stat, an `exec:` probe's spawn): it runs on a short-lived helper thread, one
//! at most per probe, so that the loop's thread never waits on a hung mount.
//!
//! - `server`: listeners, connection limits, hyper;  `io`: hyper's traits over tokio
//! - `routes`: request to response;  `format`: text, verbose, health+json;  `metrics`
//! - `readiness`: the live / ready / startup rules;  `probe`: --probe;  `notify`: --notify

pub mod client;
pub mod format;
mod io;
mod metrics;
pub mod notify;
pub mod probe;
pub mod readiness;
mod resources;
mod routes;
mod server;

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::{debug, info, warn};

use crate::config::RunArgs;
use crate::error::Error;
use crate::lock::lock;
use crate::state::{State, Subscriber};
use crate::sys::claims::Claims;
use readiness::{checks, passes, Config, Endpoint, ProbeResult, Status};

/// What every health task shares. Locks are held only for a few field updates or one
/// response's formatting, never across an `.await`.
pub struct Shared {
    config: Config,
    state: Subscriber,
    status: Mutex<Status>,
    requests: Mutex<metrics::Requests>,
    gate: Arc<server::Gate>,
    upstream: Option<notify::Upstream>,
    claims: Claims,
}

impl Shared {
    fn with<R>(&self, f: impl FnOnce(&mut Status) -> R) -> R {
        f(&mut lock(&self.status))
    }

    /// Runs `f` on a consistent view of everything the verdicts depend on.
    fn view<R>(&self, f: impl FnOnce(&Config, &State, &Status) -> R) -> R {
        let st = self.state.borrow();
        let s = lock(&self.status);
        f(&self.config, &st, &s)
    }

    fn child_running(&self) -> bool {
        self.state.borrow().running
    }

    /// Latches "started" the first time ready holds (and tells kai-init's own supervisor).
    /// Called after every probe result and notification, and before every answer.
    fn refresh(&self) {
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

    fn upstream_stopping(&self) {
        if let Some(up) = &self.upstream {
            up.stopping();
        }
    }

    fn record_probe(&self, mut result: ProbeResult, phase: probe::Phase) {
        // What a probe saw may quote the child (a path, a program's name): shown safely.
        if let std::borrow::Cow::Owned(clean) = crate::text::printable(&result.message) {
            result.message = clean;
        }
        let failures = self.config.probe_failures;
        let counts = !matches!(phase, probe::Phase::Starting { counts: false });
        let (ok, message) = (result.ok, result.message.clone());
        let before = self.with(|s| {
            let before = s.probe.consecutive_failures;
            let never_passed = s.probe.successes == 0;
            s.probe.record(result, counts);
            (before, never_passed)
        });
        let starting = matches!(phase, probe::Phase::Starting { .. });
        match (ok, before) {
            (true, (_, true)) => info!(result = %message, "first probe passed"),
            (true, (0, _)) => {}
            (true, (n, _)) => info!(result = %message, after = n, "probe passes again"),
            (false, (n, _)) if counts && n + 1 == failures => {
                warn!(result = %message, failures, "probe failed {failures} times in a row; not live")
            }
            // Before the first pass a failure is the app starting: the probe loop says
            // at info, now and then, that it is still waiting.
            (false, _) if starting => debug!(result = %message, "probe failed; not ready yet"),
            (false, (0, _)) => warn!(result = %message, "probe failed; not ready"),
            (false, _) => {}
        }
        self.refresh();
        // Issue 9: without a kernel event source, a probe tick is when an OOM kill shows.
        if let Some(oom) = crate::sys::oom::get() {
            oom.check();
        }
    }

    fn count(&self, path: &'static str, check: &'static str, code: u16) {
        lock(&self.requests).count(path, check, code);
    }

    fn metrics(&self) -> String {
        self.refresh();
        let now = Instant::now();
        let conns = self.gate.stats();
        // Issue 9: read before any lock is taken (files, not locks, are the slow part).
        let child = self.view(|_, st, _| st.child_pid.filter(|_| st.running));
        let resources = resources::gather(child);
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

/// The health side between binding (as root, before the child) and serving.
pub struct Health {
    shared: Arc<Shared>,
    listeners: Vec<server::Listener>,
    notify: notify::Setup,
    probe: Option<(crate::config::Target, probe::Timing, probe::Env)>,
}

impl Health {
    /// Binds the listeners and readiness channels; runs before privileges are dropped.
    /// `user_env` is the dropped user's HOME, USER and LOGNAME, for `exec:` probes.
    pub fn bind(
        args: &RunArgs,
        state: Subscriber,
        claims: Claims,
        user_env: probe::Env,
    ) -> Result<Self, Error> {
        let mut listeners = Vec::new();
        // TCP first: its failure ends start-up, and nothing should be logged before that.
        if let Some(addr) = args.health_listen {
            listeners.push(server::bind_tcp(addr)?);
        }
        listeners.extend(server::bind_unix(&args.health_socket)?);
        let notify = notify::Setup::new(args.notify)
            .map_err(Error::setup("create the notification channel"))?;
        let shared = Arc::new(Shared {
            config: Config {
                probe: args.probe.clone(),
                probe_failures: args.probe_failures,
                notify: args.notify,
            },
            state,
            status: Mutex::new(Status::default()),
            requests: Mutex::new(metrics::Requests::default()),
            gate: server::Gate::new(),
            upstream: notify::Upstream::from_env(),
            claims,
        });
        let probe = args.probe.clone().map(|t| {
            let timing = probe::Timing {
                interval: args.probe_interval,
                start_interval: args.probe_start_interval,
                timeout: args.probe_timeout,
                initial_delay: args.probe_initial_delay,
            };
            // Without the variables that name kai-init's own supervisor (NOTIFY_SOCKET
            // and the watchdog), and as the user the child runs as.
            let mut env: probe::Env = notify::UPSTREAM_VARS.iter().map(|k| (*k, None)).collect();
            env.extend(user_env);
            (t, timing, env)
        });
        Ok(Health {
            shared,
            listeners,
            notify,
            probe,
        })
    }

    /// Variables to set or remove in the child's environment (NOTIFY_SOCKET).
    pub fn child_env(&self) -> Vec<(&'static str, Option<OsString>)> {
        self.notify.child_env()
    }

    /// (descriptor, number) the child gets with dup2 before exec (--notify fd:N).
    pub fn child_fd(&self) -> Option<(RawFd, RawFd)> {
        self.notify.child_fd()
    }

    /// Starts answering requests; call once privileges are dropped. Before the child runs
    /// the endpoint says what kai-init is doing (`State::starting`).
    pub fn serve(&mut self) {
        server::start(std::mem::take(&mut self.listeners), &self.shared);
    }

    /// Starts probing and listening for notifications (and serving, if [`Health::serve`]
    /// has not); call once the child runs.
    pub fn start(self) -> Started {
        let shared = self.shared;
        self.notify.start(&shared);
        server::start(self.listeners, &shared);
        if let Some((target, timing, env)) = self.probe {
            tokio::spawn(probe::run(shared.clone(), target, timing, env));
        }
        if shared.upstream.is_some() {
            tokio::spawn(watch_stopping(shared.clone()));
        }
        shared.refresh();
        Started(shared)
    }
}

/// The health side while it serves.
pub struct Started(Arc<Shared>);

impl Started {
    /// kai-init is about to exit: make sure its own supervisor heard STOPPING=1 (once).
    pub fn exiting(&self) {
        self.0.upstream_stopping();
    }
}

/// Tells kai-init's own supervisor STOPPING=1 when the first stop signal arrives. Woken
/// only by state changes: no timer.
async fn watch_stopping(shared: Arc<Shared>) {
    let mut state = shared.state.clone();
    while state.changed().await.is_ok() {
        if state.borrow().stopping {
            shared.upstream_stopping();
            return;
        }
    }
}
