//! `--pre`: the steps that run to completion before COMMAND (migrations, a cache warm-up),
//! each under the same supervisor as the main child: its own process group, signals
//! forwarded, leftovers stopped, every zombie reaped. A failing or stopped step's status
//! is kai-init's, and COMMAND never starts.

use std::ffi::OsString;
use std::time::Instant;

use tracing::{error, info};

use crate::supervise::exit::exit_code;
use crate::supervise::state::{Publisher, Starting, State};
use crate::supervise::{Options, Supervisor};
use crate::sys;
use crate::sys::signals::Signals;
use crate::sys::spawn::{PreExec, Spec};
use crate::sys::status::Ended;
use crate::util::error::Error;

/// Runs the `--pre` steps in order, telling `state` which one runs and how long they
/// took. `Some(code)`: COMMAND must not start, and kai-init exits with `code`.
pub async fn run_pre(
    steps: &[Vec<OsString>],
    env: &[(&'static str, Option<OsString>)],
    options: &Options,
    signals: &mut Signals,
    state: &Publisher,
) -> Result<Option<u8>, Error> {
    if steps.is_empty() {
        return Ok(None);
    }
    state.send_modify(|s| s.pre.began = Some(Instant::now()));
    for (n, step) in steps.iter().enumerate() {
        let what = Starting::pre(n + 1, steps.len(), &shown(step));
        state.send_modify(|s| s.starting = Some(what));
        let ran = run_step(step, env, options, signals).await?;
        // Counted with kai-init's own: the steps' state is their own (see run_step).
        state.send_modify(|s| {
            s.reaped += ran.reaped;
            for (sig, n) in &ran.forwarded {
                *s.forwarded.entry(*sig).or_default() += n;
            }
        });
        if ran.stop.is_some() {
            return Ok(ran.stop);
        }
    }
    state.send_modify(|s| {
        s.pre.ended = Some(Instant::now());
        s.starting = None;
    });
    Ok(None)
}

/// How a `--pre` step went.
struct Ran {
    /// The code kai-init exits with when COMMAND must not start.
    stop: Option<u8>,
    /// Processes reaped while it ran, itself included.
    reaped: u64,
    /// Signals forwarded to it, by number (counted with kai-init's own in /metrics).
    forwarded: std::collections::BTreeMap<i32, u64>,
}

/// The step as it may be shown: its program only, as for COMMAND, since an argument may
/// hold an expanded secret.
fn shown(step: &[OsString]) -> String {
    step[0].to_string_lossy().into_owned()
}

/// Runs one `--pre` step under the supervisor, as the main child will run: its own process
/// group, signals forwarded, what it leaves behind stopped, every zombie reaped. `stop` is
/// the code kai-init exits with when COMMAND must not start: the step failed, or a stop
/// signal came while it ran (then the step's own status, whatever it is).
async fn run_step(
    step: &[OsString],
    env: &[(&'static str, Option<OsString>)],
    options: &Options,
    signals: &mut Signals,
) -> Result<Ran, Error> {
    let pid = sys::spawn::spawn(Spec {
        argv: step,
        env: env.to_vec(),
        pre: PreExec {
            take_terminal: options.interactive,
            dup_fd: None,
        },
    })?;
    let shown = shown(step);
    info!(pid, step = %shown, "running pre step");
    // The step is the child whose OOM kill its exit line names, until COMMAND runs.
    crate::supervise::oom::watch_child(pid, shown.clone());
    // The step's own state: the health side follows the main child only. `pre_step`
    // also means a stop is not delayed by --drain-delay: a step serves no traffic (issue
    // 17, item 10; the supervisor checks it). A step is never stopped for the app's health.
    let (publisher, state) = tokio::sync::watch::channel(State::default());
    let opts = Options {
        pre_step: true,
        unhealthy: None,
        ..options.clone()
    };
    let ended = Supervisor::new(opts, pid, publisher).run(signals).await;
    let (stopped, late, stop_signal, reaped, forwarded) = {
        let s = state.borrow();
        let late = s.stop_after_exit;
        (
            s.stopping,
            late,
            s.stop_signal,
            s.reaped,
            s.forwarded.clone(),
        )
    };
    let stop = match (ended, stopped) {
        (Ended::Exited(0), false) => None,
        (_, true) => {
            info!(step = %shown, "stopped during a pre step; not starting COMMAND");
            // The step's own status when the stop reached it (a step that exits 0 on
            // TERM says so, as the main child would); but a stop that came only during
            // its clean-up, after it had exited, is 128+N: its 0 answered nothing.
            match (late, stop_signal) {
                (true, Some(sig)) => Some(exit_code(Ended::Signaled(sig), &[])),
                _ => Some(exit_code(ended, &[])),
            }
        }
        (Ended::Exited(code), false) => {
            error!(step = %shown, code, "pre step failed; not starting COMMAND");
            Some(exit_code(ended, &[]))
        }
        (Ended::Signaled(sig), false) => {
            let signal = crate::config::signal_names::name(sig);
            error!(step = %shown, %signal, "pre step killed; not starting COMMAND");
            Some(exit_code(ended, &[]))
        }
    };
    Ok(Ran {
        stop,
        reaped,
        forwarded,
    })
}
