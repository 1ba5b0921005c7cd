//! Exit statuses the health side waits for, handed over by the reaper: the one
//! `waitpid(-1)` in kai-init reaps every child, so an `exec:` probe claims its pid and the
//! supervisor delivers the status when it reaps that pid.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::sys::status::Ended;

/// Exit statuses the health side is waiting for: the processes its `exec:` probes start.
///
/// The supervisor's `waitpid(-1)` reaps every child, probes included, so a probe cannot
/// wait for its own process. Instead it claims the pid once spawned and the supervisor
/// delivers the status when it reaps that pid. The spawn runs on a helper thread (exec
/// may block on a hung mount, and the loop's thread must not), so the reaper may see the
/// pid before its claim: while a spawn is in flight ([`Claims::spawning`]) unclaimed
/// statuses are kept (a bounded few) for the claim to find.
#[derive(Debug, Clone, Default)]
pub struct Claims(Arc<Mutex<Inner>>);

#[derive(Debug, Default)]
struct Inner {
    waiting: HashMap<i32, tokio::sync::oneshot::Sender<Ended>>,
    /// Spawns in flight; unclaimed statuses are kept only while there is one.
    spawning: usize,
    early: HashMap<i32, Ended>,
}

/// Most statuses kept for a claim still to come: orphans reaped meanwhile land here too.
const EARLY_MAX: usize = 64;

impl Claims {
    /// Keeps unclaimed statuses until the returned guard drops; take it before a spawn
    /// and drop it after claiming the pid.
    pub fn spawning(&self) -> Spawning {
        self.lock().spawning += 1;
        Spawning(self.clone())
    }

    /// Registers interest in `pid`'s end.
    pub fn claim(&self, pid: i32) -> tokio::sync::oneshot::Receiver<Ended> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut inner = self.lock();
        match inner.early.remove(&pid) {
            Some(ended) => {
                let _ = tx.send(ended);
            }
            None => {
                inner.waiting.insert(pid, tx);
            }
        }
        rx
    }

    /// Hands `pid`'s status to whoever claimed it; a pid nobody claimed is ignored, unless
    /// a spawn is in flight (it may be that spawn's).
    pub fn deliver(&self, pid: i32, ended: Ended) {
        let mut inner = self.lock();
        if let Some(tx) = inner.waiting.remove(&pid) {
            let _ = tx.send(ended);
        } else if inner.spawning > 0 && inner.early.len() < EARLY_MAX {
            inner.early.insert(pid, ended);
        }
    }

    /// Forgets a claim whose waiter gave up, so the map cannot grow.
    pub fn release(&self, pid: i32) {
        self.lock().waiting.remove(&pid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock cannot happen (panic = abort) and the map stays consistent anyway.
        crate::util::lock::lock(&self.0)
    }
}

/// A spawn in flight; see [`Claims::spawning`].
#[derive(Debug)]
pub struct Spawning(Claims);

impl Drop for Spawning {
    fn drop(&mut self) {
        let mut inner = self.0.lock();
        inner.spawning = inner.spawning.saturating_sub(1);
        if inner.spawning == 0 {
            inner.early.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_reaped_before_its_claim_is_kept_while_a_spawn_is_in_flight() {
        let claims = Claims::default();
        claims.deliver(7, Ended::Exited(1));
        let mut lost = claims.claim(7);
        assert!(lost.try_recv().is_err(), "kept without a spawn in flight");
        claims.release(7);

        let spawning = claims.spawning();
        claims.deliver(8, Ended::Exited(3));
        let mut early = claims.claim(8);
        drop(spawning);
        assert_eq!(early.try_recv().ok(), Some(Ended::Exited(3)));

        let spawning = claims.spawning();
        claims.deliver(9, Ended::Exited(4));
        drop(spawning);
        let mut cleared = claims.claim(9);
        assert!(cleared.try_recv().is_err(), "kept after the spawn ended");
    }
}
