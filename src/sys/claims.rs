//! Exit statuses the health side waits for, handed over by the reaper: the one
//! `waitpid(-1)` in kai-init reaps every child, so an `exec:` probe claims its pid and the
//! supervisor delivers the status when it reaps that pid.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::exit::Ended;

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
