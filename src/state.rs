//! What the supervisor knows, published one way to the health side through a
//! `tokio::sync::watch` channel. The health side reads it and never touches processes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::exit::Ended;

#[derive(Debug, Clone)]
pub struct State {
    /// The main child's pid, once started.
    pub child_pid: Option<i32>,
    /// When the main child was started.
    pub started_at: SystemTime,
    /// The main child has started and not yet ended.
    pub running: bool,
    /// A stop signal arrived: /readyz fails from now on.
    pub stopping: bool,
    /// How the main child ended: (exit code, terminating signal).
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    /// Processes reaped by kai-init, the main child included.
    pub reaped: u64,
    /// Signals forwarded, by number.
    pub forwarded: BTreeMap<i32, u64>,
}

impl Default for State {
    fn default() -> Self {
        State {
            child_pid: None,
            started_at: SystemTime::now(),
            running: false,
            stopping: false,
            exit_code: None,
            exit_signal: None,
            reaped: 0,
            forwarded: BTreeMap::new(),
        }
    }
}

pub type Publisher = tokio::sync::watch::Sender<State>;
pub type Subscriber = tokio::sync::watch::Receiver<State>;

/// Exit statuses the health side is waiting for: the processes its `exec:` probes start.
///
/// The supervisor's `waitpid(-1)` reaps every child, probes included, so a probe cannot
/// wait for its own process. Instead it claims the pid right after spawning it and the
/// supervisor delivers the status when it reaps that pid. No status can be lost between
/// spawn and claim: both run on the one runtime thread with no `.await` in between, and
/// the supervisor only reaps when it runs.
#[derive(Debug, Clone, Default)]
pub struct Claims(Arc<Mutex<HashMap<i32, tokio::sync::oneshot::Sender<Ended>>>>);

impl Claims {
    /// Registers interest in `pid`'s end; call before the next `.await` after spawning it.
    pub fn claim(&self, pid: i32) -> tokio::sync::oneshot::Receiver<Ended> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.lock().insert(pid, tx);
        rx
    }

    /// Hands `pid`'s status to whoever claimed it; a pid nobody claimed is ignored.
    pub fn deliver(&self, pid: i32, ended: Ended) {
        if let Some(tx) = self.lock().remove(&pid) {
            let _ = tx.send(ended);
        }
    }

    /// Forgets a claim whose waiter gave up, so the map cannot grow.
    pub fn release(&self, pid: i32) {
        self.lock().remove(&pid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, tokio::sync::oneshot::Sender<Ended>>> {
        // A poisoned lock cannot happen (panic = abort) and the map stays consistent anyway.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
