//! One blocking call (a name lookup, a stat, a spawn, a synchronous client's exchange) on a
//! thread of its own, whose answer the event loop awaits: a hung NFS or FUSE mount, a
//! resolver that never answers, or an exec on such a mount must never stall the loop's
//! only thread.
//!
//! One call at a time per [`Call`]: a call cut short (its caller timed out and dropped the
//! future) keeps running, and the next [`Call::run`] awaits that same answer instead of
//! starting a second thread beside it, so a hung call costs one thread, not one per
//! attempt. A thread that has answered is joined at once: once the answer is in, no
//! thread of this call is left.
//!
//! These are kai-init's only threads besides the loop's, and that matters to one
//! invariant: the spawn that hands the terminal to the child runs code between fork and
//! exec, which is sound only in a single-threaded parent (`sys::unsafe_ops`, whose SAFETY
//! comments rely on it). So a thread started here must never outlive the wait that
//! needed it while COMMAND is being spawned: `--wait-for` joins its threads before
//! COMMAND starts (and waits for /proc to stop listing them), and the probe task, whose
//! threads may run at any time, starts only after COMMAND. The spawn re-checks
//! /proc/self/task and refuses (125) rather than fork beside a thread.

use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::text::short;

/// The thread and the receiver of one outstanding call.
pub struct Call<T> {
    running: Option<(JoinHandle<()>, oneshot::Receiver<T>)>,
    name: &'static str,
    stack: usize,
}

impl<T: Send + 'static> Call<T> {
    /// `name` names the thread (`kai-init-NAME` in /proc), `stack` its stack size: these
    /// calls need next to nothing, and the default would reserve 2 MiB each.
    pub fn new(name: &'static str, stack: usize) -> Self {
        Call {
            running: None,
            name,
            stack,
        }
    }

    /// `call`'s answer, or the answer of the call still running from an earlier attempt.
    /// Cancel-safe: dropped while waiting, the thread and its answer stay here for the
    /// next run. Errors are short phrases for one-line messages.
    pub async fn run(&mut self, call: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
        let (_, answer) = match &mut self.running {
            Some(running) => running,
            None => {
                let (tx, rx) = oneshot::channel();
                let thread = std::thread::Builder::new()
                    .name(format!("kai-init-{}", self.name))
                    .stack_size(self.stack)
                    .spawn(move || drop(tx.send(call())))
                    .map_err(|e| format!("cannot start a thread: {}", short(&e)))?;
                self.running.insert((thread, rx))
            }
        };
        let answer = answer.await;
        if let Some((thread, _)) = self.running.take() {
            // It has sent its answer and is returning: this join waits for no more than
            // its exit.
            let _ = thread.join();
        }
        answer.map_err(|_| format!("the {} thread ended without an answer", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A helper thread is gone, joined, once its answer is in; a call dropped half-way
    /// leaves its thread for the next call, which takes that answer and starts none.
    #[test]
    fn helper_threads_end_with_their_answer_and_are_reused_when_cut_short() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut helper =
                Call::<std::io::Result<Vec<std::net::SocketAddr>>>::new("test", 64 * 1024);
            let answer = helper.run(|| Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], 1))]));
            assert_eq!(answer.await.unwrap().unwrap().len(), 1);
            assert!(helper.running.is_none());

            let (release, blocked) = std::sync::mpsc::channel::<()>();
            let slow = helper.run(move || {
                let _ = blocked.recv();
                Ok(Vec::new())
            });
            let cut = tokio::time::timeout(std::time::Duration::from_millis(20), slow).await;
            assert!(cut.is_err(), "the blocked call cannot have answered");
            assert!(helper.running.is_some(), "its thread is kept");
            release.send(()).unwrap();
            let second = helper.run(|| panic!("a second thread was started"));
            assert_eq!(second.await.unwrap().unwrap(), Vec::new());
            assert!(helper.running.is_none());
        });
    }
}
