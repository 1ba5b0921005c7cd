//! The health side (issue 3): the endpoint, probes of the child, readiness notification,
//! metrics. It reads the supervisor's published state and never touches processes, with
//! one exception: `exec:` probes start a command (whose status the supervisor reaps and
//! hands back, see `supervise::claims::Claims`) and kill it when it overruns.
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
//! - `socket`: which abstract socket is this container's;  `check`: `kai-init check`
//! - `client`: the requests probes, `--wait-for` and `check` make (HTTP and gRPC)
//!
//! Imports `supervise` (the published state, claims, the OOM record), `sys`, `config`
//! and `util`; never `start`.

pub mod check;
pub mod client;
pub mod format;
mod gate;
mod io;
mod metrics;
pub mod notify;
pub mod probe;
pub mod readiness;
mod resources;
mod routes;
mod server;
mod shared;
pub mod socket;
mod upstream;

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};

use crate::config::RunArgs;
use crate::supervise::claims::Claims;
use crate::supervise::state::Subscriber;
use crate::util::error::Error;
use readiness::{Config, Status};
use shared::Shared;

/// The variables that only the main child gets, removed: NOTIFY_SOCKET (kai-init's
/// own for `--notify sd`, or kai-init's supervisor's) and the watchdog's. `exec:` probes
/// and `--pre` steps start with this on top of the common environment, so a step that
/// says READY=1 is not taken for the child, nor refused as a stranger (issue 17, item 12).
pub fn without_notify() -> probe::Env {
    upstream::UPSTREAM_VARS.iter().map(|k| (*k, None)).collect()
}

/// The health side between binding (as root, before the child) and serving.
pub struct Health {
    shared: Arc<Shared>,
    listeners: Vec<server::Listener>,
    notify: notify::Setup,
    probe: Option<(crate::config::target::Target, probe::Timing, probe::Env)>,
}

impl Health {
    /// Binds the listeners and readiness channels; runs before privileges are dropped.
    /// `user_env` is what every consumer gets on top of kai-init's environment (the
    /// dropped user's HOME, USER and LOGNAME, `--file-env` secrets), for `exec:` probes.
    pub fn bind(
        args: &RunArgs,
        state: Subscriber,
        claims: Claims,
        user_env: probe::Env,
        unhealthy: Option<tokio::sync::watch::Sender<Option<String>>>,
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
            gate: gate::Gate::new(),
            upstream: upstream::Upstream::from_env(),
            claims,
            unhealthy,
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
            let mut env = without_notify();
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
