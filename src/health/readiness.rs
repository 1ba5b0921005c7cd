//! What the health side knows beyond the supervisor's published state (probe results,
//! readiness notifications, the watchdog, the start-up latch) and the pure rules that turn
//! it into live / ready / startup answers (issue 3, "Meaning"). No I/O, no clock of its
//! own: callers pass `now`, so every rule is unit-tested.

use std::time::{Duration, Instant};

use crate::config::signal_names::name;
use crate::config::target::Target;
use crate::config::Notify;
use crate::supervise::state::State;

/// The parts of the command line the rules depend on.
#[derive(Debug, Clone)]
pub struct Config {
    pub probe: Option<Target>,
    pub probe_failures: u32,
    pub notify: Option<Notify>,
}

/// Probe durations are histogrammed with these upper bounds (seconds), Prometheus' style.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One probe's result.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub ok: bool,
    /// What it saw, e.g. `HTTP 200`, `exit 3`, `timed out after 1s`.
    pub message: String,
    pub duration: Duration,
}

#[derive(Debug, Default)]
pub struct ProbeStatus {
    pub last: Option<ProbeResult>,
    pub consecutive_failures: u32,
    pub successes: u64,
    pub failures: u64,
    /// Cumulative counts per bucket of [`BUCKETS`] (the +Inf bucket is `successes + failures`).
    pub buckets: [u64; BUCKETS.len()],
    pub duration_sum: f64,
}

impl ProbeStatus {
    /// Records one result; a failure that does not `count` (before the first pass, see
    /// `probe::run`) leaves the run of consecutive failures as it is.
    pub fn record(&mut self, result: ProbeResult, counts: bool) {
        let secs = result.duration.as_secs_f64();
        for (count, bound) in self.buckets.iter_mut().zip(BUCKETS) {
            if secs <= bound {
                *count += 1;
            }
        }
        self.duration_sum += secs;
        if result.ok {
            self.successes += 1;
            self.consecutive_failures = 0;
        } else {
            self.failures += 1;
            if counts {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            }
        }
        self.last = Some(result);
    }
}

/// What the child said through --notify (sd_notify datagrams or the s6 fd).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NotifyStatus {
    /// READY=1 (or the newline on fd N) arrived, and no RELOADING=1 since.
    pub ready: bool,
    pub reloading: bool,
    /// The child sent STOPPING=1.
    pub stopping: bool,
    /// The last STATUS= text.
    pub status: Option<String>,
    /// WATCHDOG_USEC the child announced; `None` means no watchdog.
    pub watchdog: Option<Duration>,
    /// The last WATCHDOG=1 (or the WATCHDOG_USEC= that armed it).
    pub last_ping: Option<Instant>,
    /// WATCHDOG=trigger: fail at once, until the next ping.
    pub triggered: bool,
    /// The expiry was logged; no timer until the next ping re-arms it.
    pub expiry_reported: bool,
    /// Datagrams refused because their sender is not the main child or its descendant.
    pub refused: u64,
}

impl NotifyStatus {
    /// When the watchdog fails if no ping comes first.
    pub fn watchdog_deadline(&self) -> Option<Instant> {
        // An overflow cannot happen with the parser's bound; were it to, no deadline.
        self.last_ping?.checked_add(self.watchdog?)
    }
}

/// Everything the health side records; guarded by one mutex in `Shared`.
#[derive(Debug, Default)]
pub struct Status {
    pub probe: ProbeStatus,
    pub notify: NotifyStatus,
    /// Ready has been reached once (/startupz).
    pub started: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Live,
    Ready,
    Startup,
}

impl Endpoint {
    /// The word apiserver-style verbose output ends with: `livez check passed`.
    pub fn word(self) -> &'static str {
        match self {
            Endpoint::Live => "livez",
            Endpoint::Ready => "readyz",
            Endpoint::Startup => "startupz",
        }
    }
}

/// Every check name, so request paths (`/livez/<check>`) and metric labels stay `'static`.
pub const CHECK_NAMES: [&str; 8] = [
    "ping", "starting", "child", "probe", "watchdog", "notify", "shutdown", "started",
];

/// One named condition and its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// Passing, but degraded (a probe failed fewer than --probe-failures times in a row).
    pub warn: bool,
    /// Why it fails or what it saw; empty when there is nothing to say.
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, ok: bool, detail: impl Into<String>) -> Check {
        Check {
            name,
            ok,
            warn: false,
            detail: detail.into(),
        }
    }
}

/// The checks behind one endpoint, in display order.
///
/// - live: the loop answers (`ping`), the main child runs, the probe has not failed
///   --probe-failures times in a row, the watchdog (if armed) was fed in time;
/// - ready: live, plus the last probe passed, the child notified readiness (with
///   --notify), and kai-init is not stopping;
/// - startup: ready has been reached once.
///
/// Before the child starts, while kai-init waits for a `--wait-for` target or runs a
/// `--pre` step, each endpoint has `ping` and `starting` alone: live passes (a container
/// that is starting is not dead), ready and startup fail, and the check says what is
/// being waited for or which step runs.
pub fn checks(ep: Endpoint, cfg: &Config, st: &State, s: &Status, now: Instant) -> Vec<Check> {
    let mut out = vec![Check::new("ping", true, "")];
    if let Some(what) = &st.starting {
        out.push(Check::new(
            "starting",
            ep == Endpoint::Live,
            what.to_string(),
        ));
        return out;
    }
    if ep == Endpoint::Startup {
        let detail = if s.started {
            String::new()
        } else {
            let first = checks(Endpoint::Ready, cfg, st, s, now)
                .into_iter()
                .find(|c| !c.ok);
            match first {
                Some(c) => format!("not ready yet: {} {}", c.name, c.detail),
                None => "not ready yet".into(),
            }
        };
        out.push(Check::new("started", s.started, detail));
        return out;
    }
    out.push(child(st));
    if cfg.probe.is_some() {
        out.push(probe(ep, cfg, &s.probe));
    }
    if let Some(c) = watchdog(&s.notify, now) {
        out.push(c);
    }
    if ep == Endpoint::Ready {
        if let Some(n) = cfg.notify {
            out.push(notify(n, &s.notify));
        }
        let detail = if st.stopping {
            "kai-init is stopping"
        } else {
            ""
        };
        out.push(Check::new("shutdown", !st.stopping, detail));
    }
    out
}

pub fn passes(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.ok)
}

fn child(st: &State) -> Check {
    if st.running {
        let pid = st.child_pid.map_or(String::new(), |p| format!("pid {p}"));
        return Check::new("child", true, pid);
    }
    let detail = match (st.child_pid, st.exit_code, st.exit_signal) {
        (_, Some(code), _) => format!("exited with code {code}"),
        (_, _, Some(sig)) => format!("killed by {}", name(sig)),
        (None, ..) => "not started".into(),
        (Some(_), ..) => "not running".into(),
    };
    Check::new("child", false, detail)
}

fn probe(ep: Endpoint, cfg: &Config, p: &ProbeStatus) -> Check {
    let Some(last) = &p.last else {
        // Before the first result the child is live (it may be starting) but not ready.
        return Check::new("probe", ep == Endpoint::Live, "no result yet");
    };
    match ep {
        Endpoint::Live => {
            let n = p.consecutive_failures;
            let ok = n < cfg.probe_failures;
            let detail = if n == 0 {
                last.message.clone()
            } else {
                format!(
                    "{} ({n} in a row, limit {})",
                    last.message, cfg.probe_failures
                )
            };
            Check {
                warn: ok && n > 0,
                ..Check::new("probe", ok, detail)
            }
        }
        _ => Check::new("probe", last.ok, last.message.clone()),
    }
}

/// The watchdog check: present once the child armed a watchdog or sent WATCHDOG=trigger,
/// which systemd treats as an immediate watchdog failure whether or not one was armed.
fn watchdog(n: &NotifyStatus, now: Instant) -> Option<Check> {
    if n.triggered {
        return Some(Check::new("watchdog", false, "child sent WATCHDOG=trigger"));
    }
    let usec = n.watchdog?;
    let deadline = n.watchdog_deadline()?;
    let check = if now > deadline {
        let since = now.saturating_duration_since(deadline) + usec;
        Check::new(
            "watchdog",
            false,
            format!(
                "no WATCHDOG=1 for {:.1}s (WATCHDOG_USEC={})",
                since.as_secs_f64(),
                usec.as_micros()
            ),
        )
    } else {
        Check::new("watchdog", true, "")
    };
    Some(check)
}

fn notify(mode: Notify, n: &NotifyStatus) -> Check {
    let status = n.status.as_deref().unwrap_or("");
    let (ok, detail) = match mode {
        _ if n.stopping => (false, "child sent STOPPING=1".to_string()),
        Notify::Sd if n.reloading => (false, "child sent RELOADING=1".to_string()),
        Notify::Sd if !n.ready => (false, "waiting for READY=1".to_string()),
        Notify::Fd(fd) if !n.ready => (false, format!("waiting for a newline on fd {fd}")),
        _ => (true, String::new()),
    };
    let detail = match (detail.is_empty(), status.is_empty()) {
        (_, true) => detail,
        (true, false) => status.to_string(),
        (false, false) => format!("{detail} ({status})"),
    };
    Check::new("notify", ok, detail)
}

/// Where a result falls: before the first pass, and whether it counts towards
/// --probe-failures; or after it, where every result counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting { counts: bool },
    Running,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(probe: bool, notify: Option<Notify>) -> Config {
        Config {
            probe: probe.then(|| Target::Tcp {
                host: "127.0.0.1".into(),
                port: 1,
            }),
            probe_failures: 3,
            notify,
        }
    }

    fn running() -> State {
        State {
            child_pid: Some(7),
            running: true,
            ..State::default()
        }
    }

    fn result(ok: bool) -> ProbeResult {
        ProbeResult {
            ok,
            message: if ok { "HTTP 200" } else { "timed out after 1s" }.into(),
            duration: Duration::from_millis(3),
        }
    }

    fn verdict(ep: Endpoint, c: &Config, st: &State, s: &Status) -> bool {
        passes(&checks(ep, c, st, s, Instant::now()))
    }

    #[test]
    fn running_child_without_conditions_is_live_and_ready() {
        let (c, st, s) = (cfg(false, None), running(), Status::default());
        assert!(verdict(Endpoint::Live, &c, &st, &s));
        assert!(verdict(Endpoint::Ready, &c, &st, &s));
        assert!(!verdict(Endpoint::Startup, &c, &st, &s), "not latched yet");
    }

    #[test]
    fn ended_child_is_neither() {
        let c = cfg(false, None);
        let st = State {
            running: false,
            exit_code: Some(3),
            ..running()
        };
        let all = checks(Endpoint::Live, &c, &st, &Status::default(), Instant::now());
        assert_eq!(all[1].detail, "exited with code 3");
        assert!(!passes(&all));
    }

    #[test]
    fn probe_failures_fail_ready_at_once_and_live_after_the_threshold() {
        let (c, st) = (cfg(true, None), running());
        let mut s = Status::default();
        assert!(
            verdict(Endpoint::Live, &c, &st, &s),
            "live before any result"
        );
        assert!(
            !verdict(Endpoint::Ready, &c, &st, &s),
            "not ready before any result"
        );
        s.probe.record(result(true), true);
        assert!(verdict(Endpoint::Ready, &c, &st, &s));
        for n in 1..=3 {
            s.probe.record(result(false), true);
            assert!(!verdict(Endpoint::Ready, &c, &st, &s));
            assert_eq!(verdict(Endpoint::Live, &c, &st, &s), n < 3, "after {n}");
        }
        let live = checks(Endpoint::Live, &c, &st, &s, Instant::now());
        assert_eq!(live[2].detail, "timed out after 1s (3 in a row, limit 3)");
        s.probe.record(result(true), true);
        assert!(verdict(Endpoint::Live, &c, &st, &s));
        assert!(verdict(Endpoint::Ready, &c, &st, &s));
        assert_eq!(s.probe.successes, 2);
        assert_eq!(s.probe.failures, 3);
        assert_eq!(s.probe.buckets[0], 5, "3 ms falls in the first bucket");
    }

    #[test]
    fn warn_while_under_the_threshold() {
        let (c, st) = (cfg(true, None), running());
        let mut s = Status::default();
        s.probe.record(result(false), true);
        let live = checks(Endpoint::Live, &c, &st, &s, Instant::now());
        assert!(live[2].ok && live[2].warn);
    }

    #[test]
    fn notify_gates_ready_and_stopping_fails_it() {
        let (c, st) = (cfg(false, Some(Notify::Sd)), running());
        let mut s = Status::default();
        assert!(verdict(Endpoint::Live, &c, &st, &s));
        assert!(!verdict(Endpoint::Ready, &c, &st, &s));
        s.notify.ready = true;
        assert!(verdict(Endpoint::Ready, &c, &st, &s));
        let stopping = State {
            stopping: true,
            ..running()
        };
        assert!(!verdict(Endpoint::Ready, &c, &stopping, &s));
        assert!(verdict(Endpoint::Live, &c, &stopping, &s));
    }

    #[test]
    fn starting_is_live_but_neither_ready_nor_started_and_says_why() {
        use crate::supervise::state::Starting;
        let c = cfg(true, Some(Notify::Sd));
        for (what, says) in [
            (
                Starting::waiting("tcp://db:5432".into(), Some("connection refused".into())),
                "waiting for tcp://db:5432 (connection refused)",
            ),
            (
                Starting::pre(1, 2, "migrate"),
                "running pre step 1 of 2: migrate",
            ),
        ] {
            let st = State {
                starting: Some(what),
                ..State::default()
            };
            let s = Status::default();
            for ep in [Endpoint::Live, Endpoint::Ready, Endpoint::Startup] {
                let all = checks(ep, &c, &st, &s, Instant::now());
                let names: Vec<&str> = all.iter().map(|c| c.name).collect();
                assert_eq!(names, ["ping", "starting"], "{ep:?}");
                assert_eq!(all[1].detail, says);
                assert_eq!(passes(&all), ep == Endpoint::Live, "{ep:?}");
            }
        }
    }

    #[test]
    fn watchdog_expires_and_recovers() {
        let (c, st) = (cfg(false, Some(Notify::Sd)), running());
        let mut s = Status::default();
        let t0 = Instant::now();
        s.notify.watchdog = Some(Duration::from_secs(2));
        s.notify.last_ping = Some(t0);
        assert!(passes(&checks(
            Endpoint::Live,
            &c,
            &st,
            &s,
            t0 + Duration::from_secs(1)
        )));
        let late = checks(Endpoint::Live, &c, &st, &s, t0 + Duration::from_secs(3));
        assert!(!passes(&late));
        assert!(
            late[2].detail.starts_with("no WATCHDOG=1 for 3.0s"),
            "{late:?}"
        );
        s.notify.last_ping = Some(t0 + Duration::from_secs(3));
        assert!(passes(&checks(
            Endpoint::Live,
            &c,
            &st,
            &s,
            t0 + Duration::from_secs(4)
        )));
    }
}
