//! `/metrics`: Prometheus text exposition format 0.0.4, written by hand (no client
//! library: a dozen families do not justify one). Pure: everything comes in as arguments.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Instant, SystemTime};

use super::readiness::{Config, Status, BUCKETS};
use super::resources::Resources;
use crate::config::signal_names::name;
use crate::supervise::state::State;
use crate::sys::cgroup::Limit;

/// Requests answered, by (path, code). Paths are `'static` (known paths only, anything
/// else is `other`), so the label set is bounded whatever clients send.
#[derive(Debug, Default)]
pub struct Requests(BTreeMap<(&'static str, &'static str, u16), u64>);

impl Requests {
    /// `check` is the `<check>` of `/livez/<check>`, or "".
    pub fn count(&mut self, path: &'static str, check: &'static str, code: u16) {
        *self.0.entry((path, check, code)).or_default() += 1;
    }
}

/// Connection counters from the server.
#[derive(Debug, Default, Clone, Copy)]
pub struct Connections {
    pub open: usize,
    pub limit: usize,
    /// Idle connections closed to make room for a new one.
    pub evicted: u64,
    /// Connections refused because every slot was busy.
    pub refused: u64,
}

/// The verdicts computed by the caller (they need the clock), and the moment they were
/// computed for, which the wait and pre-step gauges are measured to as well.
#[derive(Debug, Clone, Copy)]
pub struct Verdicts {
    pub live: bool,
    pub ready: bool,
    pub now: Instant,
}

pub fn render(
    cfg: &Config,
    st: &State,
    s: &Status,
    v: Verdicts,
    requests: &Requests,
    conns: Connections,
    res: &Resources,
) -> String {
    let now = v.now;
    let mut m = Writer(String::with_capacity(2048));
    let b = |x: bool| u8::from(x);

    m.family(
        "kai_init_build_info",
        "gauge",
        "Always 1; the version is a label.",
    );
    m.sample(
        "kai_init_build_info",
        &format!("version=\"{}\"", env!("CARGO_PKG_VERSION")),
        1,
    );
    m.family("kai_init_child_up", "gauge", "1 while the main child runs.");
    m.sample("kai_init_child_up", "", b(st.running));
    if let Some(pid) = st.child_pid {
        m.family(
            "kai_init_child_pid",
            "gauge",
            "Process id of the main child.",
        );
        m.sample("kai_init_child_pid", "", pid);
        m.family(
            "kai_init_child_start_time_seconds",
            "gauge",
            "Start time of the main child, seconds since the Unix epoch.",
        );
        let start = st
            .started_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        m.sample(
            "kai_init_child_start_time_seconds",
            "",
            format!("{start:.3}"),
        );
    }
    m.family(
        "kai_init_child_restarts_total",
        "counter",
        "Restarts of the main child (kai-init never restarts it: the orchestrator does).",
    );
    m.sample("kai_init_child_restarts_total", "", 0);
    if let Some(code) = st.exit_code {
        m.family(
            "kai_init_child_exit_code",
            "gauge",
            "Exit code of the main child, once it exited.",
        );
        m.sample("kai_init_child_exit_code", "", code);
    }
    if let Some(sig) = st.exit_signal {
        m.family(
            "kai_init_child_exit_signal",
            "gauge",
            "Signal that killed the main child, once it was killed.",
        );
        m.sample("kai_init_child_exit_signal", "", sig);
    }
    // Present when --wait-for or --pre is set; growing while the phase runs.
    if let Some(secs) = st.wait.seconds(now) {
        m.family(
            "kai_init_wait_seconds",
            "gauge",
            "Time spent waiting for the --wait-for targets (so far, while waiting).",
        );
        m.sample("kai_init_wait_seconds", "", format!("{secs:.3}"));
    }
    if let Some(secs) = st.pre.seconds(now) {
        m.family(
            "kai_init_pre_seconds",
            "gauge",
            "Time spent running the --pre steps (so far, while one runs).",
        );
        m.sample("kai_init_pre_seconds", "", format!("{secs:.3}"));
    }
    m.family("kai_init_live", "gauge", "1 while /livez passes.");
    m.sample("kai_init_live", "", b(v.live));
    m.family("kai_init_ready", "gauge", "1 while /readyz passes.");
    m.sample("kai_init_ready", "", b(v.ready));
    m.family(
        "kai_init_started",
        "gauge",
        "1 once /readyz has passed (/startupz).",
    );
    m.sample("kai_init_started", "", b(s.started));
    m.family(
        "kai_init_draining",
        "gauge",
        "1 once a stop signal arrived.",
    );
    m.sample("kai_init_draining", "", b(st.stopping));
    m.family(
        "kai_init_zombies_reaped_total",
        "counter",
        "Processes reaped by kai-init, the main child and probe commands included.",
    );
    m.sample("kai_init_zombies_reaped_total", "", st.reaped);
    m.family(
        "kai_init_signals_forwarded_total",
        "counter",
        "Signals forwarded to the child, by name.",
    );
    for (sig, n) in &st.forwarded {
        m.sample(
            "kai_init_signals_forwarded_total",
            &format!("signal=\"{}\"", name(*sig)),
            n,
        );
    }

    if cfg.probe.is_some() {
        let p = &s.probe;
        m.family(
            "kai_init_probe_success",
            "gauge",
            "1 if the last probe passed.",
        );
        m.sample(
            "kai_init_probe_success",
            "",
            b(p.last.as_ref().is_some_and(|l| l.ok)),
        );
        m.family(
            "kai_init_probe_consecutive_failures",
            "gauge",
            "Probes failed in a row.",
        );
        m.sample(
            "kai_init_probe_consecutive_failures",
            "",
            p.consecutive_failures,
        );
        m.family("kai_init_probes_total", "counter", "Probes run, by result.");
        m.sample("kai_init_probes_total", "result=\"success\"", p.successes);
        m.sample("kai_init_probes_total", "result=\"failure\"", p.failures);
        m.family(
            "kai_init_probe_duration_seconds",
            "histogram",
            "How long probes took.",
        );
        for (bound, count) in BUCKETS.iter().zip(p.buckets) {
            m.sample(
                "kai_init_probe_duration_seconds_bucket",
                &format!("le=\"{bound}\""),
                count,
            );
        }
        let total = p.successes + p.failures;
        m.sample(
            "kai_init_probe_duration_seconds_bucket",
            "le=\"+Inf\"",
            total,
        );
        m.sample(
            "kai_init_probe_duration_seconds_sum",
            "",
            format!("{:.6}", p.duration_sum),
        );
        m.sample("kai_init_probe_duration_seconds_count", "", total);
    }
    if cfg.notify.is_some() {
        m.family(
            "kai_init_notify_ready",
            "gauge",
            "1 once the child notified readiness (--notify).",
        );
        m.sample("kai_init_notify_ready", "", b(s.notify.ready));
    }
    if cfg.notify == Some(crate::config::Notify::Sd) {
        m.family(
            "kai_init_notify_refused_total",
            "counter",
            "NOTIFY_SOCKET datagrams ignored: not from the main child or its descendants.",
        );
        m.sample("kai_init_notify_refused_total", "", s.notify.refused);
    }

    container(&mut m, res);

    m.family(
        "kai_init_http_requests_total",
        "counter",
        "Health endpoint requests answered, by path and status code.",
    );
    for ((path, check, code), n) in &requests.0 {
        let sep = if check.is_empty() { "" } else { "/" };
        m.sample(
            "kai_init_http_requests_total",
            &format!("path=\"{path}{sep}{check}\",code=\"{code}\""),
            n,
        );
    }
    m.family(
        "kai_init_http_connections_open",
        "gauge",
        "Health endpoint connections open now.",
    );
    m.sample("kai_init_http_connections_open", "", conns.open);
    m.family(
        "kai_init_http_connections_limit",
        "gauge",
        "Most health endpoint connections kept open at once.",
    );
    m.sample("kai_init_http_connections_limit", "", conns.limit);
    m.family(
        "kai_init_http_connections_dropped_total",
        "counter",
        "Connections closed at the limit: the least recently active one evicted, or a new one refused.",
    );
    m.sample(
        "kai_init_http_connections_dropped_total",
        "reason=\"evicted\"",
        conns.evicted,
    );
    m.sample(
        "kai_init_http_connections_dropped_total",
        "reason=\"refused\"",
        conns.refused,
    );
    m.0
}

/// Issue 9: OOM kills and what the container uses. A family whose source this kernel or
/// layout lacks (no cgroup found, no memory.peak before Linux 5.19) is left out rather
/// than shown as 0.
fn container(m: &mut Writer, res: &Resources) {
    if let Some(oom) = &res.oom {
        m.family(
            "kai_init_oom_kills_total",
            "counter",
            "Processes of the container's cgroup killed by the kernel's OOM killer since kai-init started.",
        );
        m.sample("kai_init_oom_kills_total", "", oom.kills);
        if let Some(last) = &oom.last {
            m.family(
                "kai_init_last_oom_kill_timestamp_seconds",
                "gauge",
                "When kai-init counted the last OOM kill, seconds since the Unix epoch.",
            );
            let at = last
                .at
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            m.sample(
                "kai_init_last_oom_kill_timestamp_seconds",
                "",
                format!("{:.3}", at.as_secs_f64()),
            );
        }
    }
    let u = res.usage.clone().unwrap_or_default();
    let mut gauge = |name: &str, kind: &str, help: &str, value: Option<String>| {
        if let Some(v) = value {
            m.family(name, kind, help);
            m.sample(name, "", v);
        }
    };
    let secs = |ns: Option<u64>| ns.map(|n| format!("{:.6}", n as f64 / 1e9));
    gauge(
        "kai_init_container_memory_usage_bytes",
        "gauge",
        "Memory the container's cgroup uses (memory.current, v1 memory.usage_in_bytes).",
        u.memory_bytes.map(|n| n.to_string()),
    );
    gauge(
        "kai_init_container_memory_limit_bytes",
        "gauge",
        "The container's memory limit (memory.max, v1 memory.limit_in_bytes); +Inf when unlimited.",
        u.memory_limit.map(|l| match l {
            Limit::Bytes(n) => n.to_string(),
            Limit::Unlimited => "+Inf".into(),
        }),
    );
    gauge(
        "kai_init_container_memory_peak_bytes",
        "gauge",
        "Most memory the container's cgroup has used (memory.peak, v1 memory.max_usage_in_bytes).",
        u.memory_peak.map(|n| n.to_string()),
    );
    gauge(
        "kai_init_container_memory_working_set_bytes",
        "gauge",
        "Memory usage minus the inactive file cache, as the kubelet counts it (what --memory-warn compares with the limit).",
        u.memory_working_set.map(|n| n.to_string()),
    );
    let us = |us: Option<u64>| us.map(|n| format!("{:.6}", n as f64 / 1e6));
    gauge(
        "kai_init_container_memory_pressure_seconds_total",
        "counter",
        "Time some task of the container waited for memory (cgroup v2 memory.pressure, some total).",
        us(u.memory_pressure_us),
    );
    gauge(
        "kai_init_container_cpu_pressure_seconds_total",
        "counter",
        "Time some task of the container waited for CPU (cgroup v2 cpu.pressure, some total).",
        us(u.cpu_pressure_us),
    );
    gauge(
        "kai_init_container_cpu_usage_seconds_total",
        "counter",
        "CPU time the container's cgroup has used.",
        secs(u.cpu_usage_ns),
    );
    gauge(
        "kai_init_container_cpu_throttled_seconds_total",
        "counter",
        "Time the container's cgroup was throttled by its CPU quota.",
        secs(u.cpu_throttled_ns),
    );
    gauge(
        "kai_init_container_processes",
        "gauge",
        "Processes in the container (its cgroup's cgroup.procs), kai-init included.",
        res.processes.map(|n| n.to_string()),
    );
    gauge(
        "kai_init_container_rss_bytes",
        "gauge",
        "Resident memory of the container's processes summed (/proc/PID/statm; shared pages count once per process).",
        res.rss_bytes.map(|n| n.to_string()),
    );
    gauge(
        "kai_init_child_open_fds",
        "gauge",
        "Open file descriptors of the main child.",
        res.child_fds.map(|n| n.to_string()),
    );
}

struct Writer(String);

impl Writer {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = write!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        let _ = match labels.is_empty() {
            true => writeln!(self.0, "{name} {value}"),
            false => writeln!(self.0, "{name}{{{labels}}} {value}"),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::readiness::ProbeResult;
    use std::time::Duration;

    #[test]
    fn renders_every_family_once_and_well_formed() {
        let cfg = Config {
            probe: Some(crate::config::target::Target::File("/x".into())),
            probe_failures: 3,
            notify: None,
        };
        let mut st = State {
            child_pid: Some(9),
            running: true,
            reaped: 4,
            ..State::default()
        };
        st.forwarded.insert(15, 2);
        let mut s = Status::default();
        s.probe.record(
            ProbeResult {
                ok: true,
                message: "x".into(),
                duration: Duration::from_millis(30),
            },
            true,
        );
        let mut r = Requests::default();
        r.count("/livez", "", 200);
        r.count("/readyz", "probe", 503);
        let text = render(
            &cfg,
            &st,
            &s,
            Verdicts {
                live: true,
                ready: false,
                now: Instant::now(),
            },
            &r,
            Connections::default(),
            &Resources::default(),
        );
        for needle in [
            "kai_init_child_up 1\n",
            "kai_init_zombies_reaped_total 4\n",
            "kai_init_signals_forwarded_total{signal=\"SIGTERM\"} 2\n",
            "kai_init_probe_duration_seconds_bucket{le=\"0.025\"} 0\n",
            "kai_init_probe_duration_seconds_bucket{le=\"0.05\"} 1\n",
            "kai_init_probe_duration_seconds_bucket{le=\"+Inf\"} 1\n",
            "kai_init_http_requests_total{path=\"/readyz/probe\",code=\"503\"} 1\n",
            "kai_init_ready 0\n",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
        let types = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        let helps = text.lines().filter(|l| l.starts_with("# HELP")).count();
        assert_eq!(types, helps);
    }

    #[test]
    fn start_phases_are_timed_only_when_they_ran() {
        let cfg = Config {
            probe: None,
            probe_failures: 3,
            notify: None,
        };
        let t0 = Instant::now();
        let now = t0 + Duration::from_millis(2500);
        let v = Verdicts {
            live: true,
            ready: false,
            now,
        };
        let render_at = |st: &State| {
            render(
                &cfg,
                st,
                &Status::default(),
                v,
                &Requests::default(),
                Connections::default(),
                &Resources::default(),
            )
        };
        let none = render_at(&State::default());
        assert!(!none.contains("kai_init_wait_seconds"), "{none}");
        assert!(!none.contains("kai_init_pre_seconds"), "{none}");
        let mut st = State::default();
        st.wait.began = Some(t0);
        st.wait.ended = Some(t0 + Duration::from_millis(1500));
        st.pre.began = Some(t0 + Duration::from_millis(1500));
        let text = render_at(&st);
        assert!(text.contains("\nkai_init_wait_seconds 1.500\n"), "{text}");
        assert!(
            text.contains("\nkai_init_pre_seconds 1.000\n"),
            "still running: {text}"
        );
    }
}
