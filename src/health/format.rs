//! Response bodies for the health paths: `ok`, Kubernetes apiserver-style verbose lines,
//! and the `application/health+json` document (draft-inadarei-api-health-check).
//! Pure string building: JSON is written by hand (a few fields, one escaper) rather
//! than through serde, which keeps the binary small.

use std::fmt::Write;
use std::time::{Instant, SystemTime};

use super::readiness::{Check, Config, Endpoint, Status};
use crate::config::target::Target;
use crate::supervise::state::State;
use crate::util::json::string;

/// `ok` when passing and not verbose; otherwise one `[+]name ok` / `[-]name failed: why`
/// line per check and `<endpoint> check passed|failed`, as apiserver prints them.
pub fn text(word: &str, checks: &[Check], verbose: bool) -> String {
    let ok = checks.iter().all(|c| c.ok);
    if ok && !verbose {
        return "ok".into();
    }
    let mut out = String::new();
    for c in checks {
        line(&mut out, c);
    }
    let verdict = if ok { "passed" } else { "failed" };
    let _ = writeln!(out, "{word} check {verdict}");
    out
}

/// One check: `ok`, or its `[-]` line (with `[+]` when verbose).
pub fn single(check: &Check, verbose: bool) -> String {
    if check.ok && !verbose {
        return "ok".into();
    }
    let mut out = String::new();
    line(&mut out, check);
    out
}

fn line(out: &mut String, c: &Check) {
    match (c.ok, c.detail.is_empty()) {
        (true, true) => writeln!(out, "[+]{} ok", c.name),
        (true, false) => writeln!(out, "[+]{} ok: {}", c.name, c.detail),
        (false, _) => writeln!(out, "[-]{} failed: {}", c.name, c.detail),
    }
    .unwrap_or(());
}

/// pass / warn / fail, as the health+json draft defines them.
pub fn verdict(checks: &[Check]) -> &'static str {
    if checks.iter().any(|c| !c.ok) {
        "fail"
    } else if checks.iter().any(|c| c.warn) {
        "warn"
    } else {
        "pass"
    }
}

/// The health+json document for `checks`, with observed values where kai-init has them.
pub fn json(
    ep: Endpoint,
    checks: &[Check],
    cfg: &Config,
    st: &State,
    s: &Status,
    now: Instant,
) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("{\"status\":");
    string(&mut out, verdict(checks));
    out.push_str(",\"version\":\"1\",\"releaseId\":");
    string(&mut out, env!("CARGO_PKG_VERSION"));
    out.push_str(",\"serviceId\":\"kai-init\",\"description\":");
    string(&mut out, &format!("kai-init {}", ep.word()));
    out.push_str(",\"checks\":{");
    let mut first = true;
    let mut entry = |out: &mut String, key: &str, c: &Check, extra: &str| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        string(out, key);
        out.push_str(":[{\"status\":");
        let status = if !c.ok {
            "fail"
        } else if c.warn {
            "warn"
        } else {
            "pass"
        };
        string(out, status);
        out.push_str(extra);
        if !c.detail.is_empty() {
            // The draft reserves "output" for fail and warn; a passing check's note is
            // an observation instead.
            out.push_str(if c.ok && !c.warn {
                ",\"observedValue\":"
            } else {
                ",\"output\":"
            });
            string(out, &c.detail);
        }
        out.push_str("}]");
    };
    for c in checks {
        match c.name {
            "child" => {
                let uptime = if st.running {
                    SystemTime::now()
                        .duration_since(st.started_at)
                        .unwrap_or_default()
                        .as_secs_f64()
                } else {
                    0.0
                };
                let mut extra = String::from(",\"componentType\":\"process\"");
                if let Some(pid) = st.child_pid {
                    let _ = write!(extra, ",\"componentId\":\"{pid}\"");
                }
                // The detail (pid, exit code) goes to output only on failure; uptime is
                // the observed value here.
                let c2 = detail_on_failure_only(c);
                let _ = write!(
                    extra,
                    ",\"observedValue\":{uptime:.3},\"observedUnit\":\"s\""
                );
                entry(&mut out, "child:uptime", &c2, &extra);
                let restarts = Check {
                    name: "child",
                    ok: true,
                    warn: false,
                    detail: String::new(),
                };
                entry(
                    &mut out,
                    "child:restarts",
                    &restarts,
                    ",\"observedValue\":0",
                );
            }
            "probe" => {
                let mut extra = String::from(",\"componentType\":\"component\"");
                if let Some(t) = &cfg.probe {
                    extra.push_str(",\"componentId\":");
                    string(&mut extra, &label(t));
                }
                if let Some(last) = &s.probe.last {
                    let _ = write!(
                        extra,
                        ",\"observedValue\":{:.6},\"observedUnit\":\"s\",\"consecutiveFailures\":{}",
                        last.duration.as_secs_f64(),
                        s.probe.consecutive_failures
                    );
                }
                let c2 = Check {
                    detail: if c.ok && !c.warn {
                        String::new()
                    } else {
                        c.detail.clone()
                    },
                    ..c.clone()
                };
                entry(&mut out, "probe:responseTime", &c2, &extra);
            }
            "watchdog" => {
                let mut extra = String::new();
                if let Some(ping) = s.notify.last_ping {
                    let since = now.saturating_duration_since(ping).as_secs_f64();
                    let _ = write!(
                        extra,
                        ",\"observedValue\":{since:.3},\"observedUnit\":\"s\""
                    );
                }
                let c2 = detail_on_failure_only(c);
                entry(&mut out, "watchdog:lastPing", &c2, &extra);
            }
            name => entry(&mut out, name, c, ""),
        }
    }
    // Issue 9: the OOM kills counted in the container's cgroup, when one was found; in
    // a whole endpoint's document only (every one has `ping` and more), not in a single
    // check's (`/livez/probe?format=json`).
    let whole = checks.len() > 1 && checks.iter().any(|c| c.name == "ping");
    if let (true, Some(oom)) = (whole, crate::supervise::oom::get()) {
        oom_entry(&mut out, &oom.status());
    }
    out.push_str("}}");
    out
}

/// `"memory:oomKills"`: how many, and the last one (when, who, the limit and peak). A
/// warning, not a failure: the container goes on, and so do its verdicts.
pub fn oom_entry(out: &mut String, oom: &crate::supervise::oom::Status) {
    use crate::supervise::oom::{bytes_text, limit_text};
    if !out.ends_with('{') {
        out.push(',');
    }
    let status = if oom.kills == 0 { "pass" } else { "warn" };
    let _ = write!(
        out,
        "\"memory:oomKills\":[{{\"status\":\"{status}\",\"componentType\":\"system\",\"observedValue\":{}",
        oom.kills
    );
    if let Some(last) = &oom.last {
        out.push_str(",\"time\":");
        string(
            out,
            &crate::util::clock::rfc3339(last.at, crate::util::clock::Precision::Seconds),
        );
        out.push_str(",\"output\":");
        let text = format!(
            "last: {}; memory limit {}, peak {}",
            last.victim,
            limit_text(last.limit),
            bytes_text(last.peak)
        );
        string(out, &text);
    }
    out.push_str("}]");
}

/// `c` with its detail kept only when it fails: for checks whose passing state is told by
/// an observed value instead.
fn detail_on_failure_only(c: &Check) -> Check {
    Check {
        detail: if c.ok {
            String::new()
        } else {
            c.detail.clone()
        },
        ..c.clone()
    }
}

/// The probe as clients may see it: an `exec:` probe by its program name only, since
/// its arguments may hold a secret (`--token=...`) and the endpoint has no
/// authentication; the others as written (an address, a path). Always printable.
pub fn label(target: &Target) -> String {
    let text = match target {
        Target::Exec(argv) => format!("exec:{}", argv.first().map_or("", String::as_str)),
        t => t.to_string(),
    };
    crate::util::text::printable(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &'static str, ok: bool, detail: &str) -> Check {
        Check {
            name,
            ok,
            warn: false,
            detail: detail.into(),
        }
    }

    #[test]
    fn texts_like_apiserver() {
        let good = [check("ping", true, ""), check("child", true, "pid 7")];
        assert_eq!(text("livez", &good, false), "ok");
        assert_eq!(
            text("livez", &good, true),
            "[+]ping ok\n[+]child ok: pid 7\nlivez check passed\n"
        );
        let bad = [check("ping", true, ""), check("probe", false, "HTTP 500")];
        assert_eq!(
            text("readyz", &bad, false),
            "[+]ping ok\n[-]probe failed: HTTP 500\nreadyz check failed\n"
        );
        assert_eq!(single(&bad[1], false), "[-]probe failed: HTTP 500\n");
        assert_eq!(single(&bad[0], false), "ok");
    }

    #[test]
    fn oom_entry_names_the_last_kill() {
        use crate::supervise::oom::{Kill, Status};
        use crate::sys::cgroup::Limit;
        let mut out = String::from("{\"checks\":{");
        oom_entry(&mut out, &Status::default());
        out.push_str("}}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["checks"]["memory:oomKills"][0]["status"], "pass");
        let mut out = String::from("{\"checks\":{\"x\":[]");
        let last = Kill {
            at: SystemTime::UNIX_EPOCH,
            victim: "pid 7 (node)".into(),
            limit: Some(Limit::Bytes(96 << 20)),
            peak: Some(96 << 20),
        };
        oom_entry(
            &mut out,
            &Status {
                kills: 2,
                last: Some(last),
            },
        );
        out.push_str("}}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let e = &v["checks"]["memory:oomKills"][0];
        assert_eq!(e["status"], "warn");
        assert_eq!(e["observedValue"], 2);
        assert_eq!(e["time"], "1970-01-01T00:00:00Z");
        assert_eq!(
            e["output"],
            "last: pid 7 (node); memory limit 96 MiB, peak 96 MiB"
        );
    }

    #[test]
    fn exec_probes_are_labelled_by_program_only() {
        let t = Target::parse("exec:/bin/check --token=s3cr3t").unwrap();
        assert_eq!(label(&t), "exec:/bin/check");
        let t = Target::parse("http://127.0.0.1:80/x").unwrap();
        assert_eq!(label(&t), "http://127.0.0.1:80/x");
    }
}
