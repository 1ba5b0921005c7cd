//! What the supervisor knows, published one way to the health side through a
//! `tokio::sync::watch` channel. The health side reads it and never touches processes.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Instant, SystemTime};

#[derive(Debug, Clone)]
pub struct State {
    /// The main child's pid, once started.
    pub child_pid: Option<i32>,
    /// When the main child was started.
    pub started_at: SystemTime,
    /// The main child has started and not yet ended.
    pub running: bool,
    /// Before the main child starts: the wait or pre step under way (issue 10).
    pub starting: Option<Starting>,
    /// How long the `--wait-for` waits took, or have taken so far.
    pub wait: Span,
    /// How long the `--pre` steps took, or have taken so far.
    pub pre: Span,
    /// A stop signal arrived: /readyz fails from now on.
    pub stopping: bool,
    /// The signal that asked for the stop, as received (before `--signal-map`).
    pub stop_signal: Option<i32>,
    /// The stop came only after the process had ended (a pre step's clean-up): its exit
    /// status answers nothing about the stop.
    pub stop_after_exit: bool,
    /// `--exit-on-unhealthy` stopped the child: kai-init exits `UNHEALTHY`, whatever the
    /// child's status.
    pub stopped_unhealthy: bool,
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
            starting: None,
            wait: Span::default(),
            pre: Span::default(),
            stopping: false,
            stop_signal: None,
            stop_after_exit: false,
            stopped_unhealthy: false,
            exit_code: None,
            exit_signal: None,
            reaped: 0,
            forwarded: BTreeMap::new(),
        }
    }
}

/// What kai-init does before COMMAND starts, as clients may see it: nothing here may hold
/// a secret (the endpoint has no authentication). Built by [`Starting::waiting`] and
/// [`Starting::pre`], which take only what is safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Starting {
    /// A `--wait-for` target is not up yet.
    Waiting {
        /// The target without its query string (see `wait::shown`).
        target: String,
        /// What the last attempt saw (`connection refused`, `HTTP 503`).
        last: Option<String>,
    },
    /// `--pre` step `n` of `of` runs `program` (its first word only: an argument may
    /// hold an expanded secret).
    Pre {
        n: usize,
        of: usize,
        program: String,
    },
}

impl Starting {
    pub fn waiting(target: String, last: Option<String>) -> Starting {
        Starting::Waiting { target, last }
    }

    pub fn pre(n: usize, of: usize, program: &str) -> Starting {
        Starting::Pre {
            n,
            of,
            program: program.to_owned(),
        }
    }
}

impl fmt::Display for Starting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |s: &str| crate::util::text::printable(s).into_owned();
        match self {
            Starting::Waiting { target, last: None } => write!(f, "waiting for {}", shown(target)),
            Starting::Waiting {
                target,
                last: Some(last),
            } => write!(f, "waiting for {} ({})", shown(target), shown(last)),
            Starting::Pre { n, of, program } => {
                write!(f, "running pre step {n} of {of}: {}", shown(program))
            }
        }
    }
}

/// One phase of the start: when it began and, once over, when it ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub began: Option<Instant>,
    pub ended: Option<Instant>,
}

impl Span {
    /// Seconds the phase took, or has taken by `now`; `None` if it never began.
    pub fn seconds(&self, now: Instant) -> Option<f64> {
        let began = self.began?;
        let end = self.ended.unwrap_or(now);
        Some(end.saturating_duration_since(began).as_secs_f64())
    }
}

pub type Publisher = tokio::sync::watch::Sender<State>;
pub type Subscriber = tokio::sync::watch::Receiver<State>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn starting_says_what_without_arguments_or_control_characters() {
        let w = Starting::waiting("tcp://db:5432".into(), None);
        assert_eq!(w.to_string(), "waiting for tcp://db:5432");
        let w = Starting::waiting("file:/run/\x1b[2Jx".into(), Some("not found".into()));
        assert_eq!(w.to_string(), "waiting for file:/run/\\x1b[2Jx (not found)");
        let p = Starting::pre(2, 3, "migrate");
        assert_eq!(p.to_string(), "running pre step 2 of 3: migrate");
    }

    #[test]
    fn spans_grow_until_they_end() {
        let t0 = Instant::now();
        let mut s = Span::default();
        assert_eq!(s.seconds(t0), None);
        s.began = Some(t0);
        assert_eq!(s.seconds(t0 + Duration::from_millis(1500)), Some(1.5));
        s.ended = Some(t0 + Duration::from_secs(2));
        assert_eq!(s.seconds(t0 + Duration::from_secs(9)), Some(2.0));
        // A clock read before `began` (another thread's `now`) is zero, not a panic.
        assert_eq!(
            Span {
                began: Some(t0 + Duration::from_secs(1)),
                ended: None
            }
            .seconds(t0),
            Some(0.0)
        );
    }
}
