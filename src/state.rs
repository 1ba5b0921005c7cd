//! What the supervisor knows, published one way to the health side through a
//! `tokio::sync::watch` channel. The health side reads it and never touches processes.

use std::collections::BTreeMap;
use std::time::SystemTime;

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
