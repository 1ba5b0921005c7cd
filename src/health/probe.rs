//! Probes of the child: what to check (parsed from --probe) and how, kubelet-style.
//!
//! One task probes every --probe-start-interval until the first pass, then every
//! --probe-interval (only when a probe is configured: no timer otherwise) and records
//! each result; the rules in `readiness` turn the results into
//! ready/live. `exec:` commands are started with std's `Command` in a process group of
//! their own; the supervisor's reaper collects their status and hands it over through
//! `supervise::claims::Claims` (tokio's process support would race that reaper).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};
use tracing::{debug, info};

use super::readiness::Phase;
use super::readiness::ProbeResult;
use super::shared::Shared;
use crate::config::signal_names::name;
use crate::config::target::{Authority, Target};
use crate::health::client::{grpc, http};
use crate::supervise::claims::Claims;
use crate::supervise::claims::Spawning;
use crate::sys::status::Ended;
use crate::util::blocking::Call;
use crate::util::clock::after;
use crate::util::text::short;

/// --probe-interval, --probe-start-interval, --probe-timeout, --probe-initial-delay.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub interval: Duration,
    /// Until the first pass (issue 9): the app is ready as soon as it listens, not up to
    /// a whole interval later.
    pub start_interval: Duration,
    pub timeout: Duration,
    pub initial_delay: Duration,
}

/// Variables to set (`Some`) or remove (`None`) in an `exec:` probe's environment.
pub type Env = Vec<(&'static str, Option<std::ffi::OsString>)>;

/// How often, at most, an info line says the first pass is still awaited.
pub const WAITING_LOG_EVERY: Duration = Duration::from_secs(10);

/// Probes until the main child has ended. Probe starts are `interval` apart (until the
/// first pass, `start_interval` apart); a probe that takes longer than that is followed
/// by the next one at once. No probe configured, no task: no timer.
///
/// Before the first pass a failure is expected (the app is starting), so it is logged
/// at debug, with an info line every [`WAITING_LOG_EVERY`]; and only one failure per
/// `interval` counts towards --probe-failures, so that a start that never passes fails
/// /livez after the same time as with `interval` alone.
pub async fn run(shared: Arc<Shared>, target: Target, timing: Timing, env: Env) {
    if !timing.initial_delay.is_zero() {
        tokio::time::sleep(timing.initial_delay).await;
    }
    let start_step = timing.start_interval.min(timing.interval);
    let mut next = Instant::now();
    let mut starting = true;
    // When the next failure before the first pass counts towards --probe-failures.
    let mut next_counted = next;
    let mut last_waiting_line = next;
    let mut outstanding = Outstanding::default();
    loop {
        if !shared.child_running() {
            debug!("main child ended; probes stop");
            return;
        }
        let started = Instant::now();
        let outcome = once(
            &target,
            timing.timeout,
            &shared.claims,
            &env,
            &mut outstanding,
        )
        .await;
        let (ok, message) = match outcome {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        };
        let phase = if !starting {
            Phase::Running
        } else if ok {
            starting = false;
            Phase::Running
        } else {
            let counts = started >= next_counted;
            if counts {
                next_counted = after(next_counted, timing.interval);
            }
            if started.saturating_duration_since(last_waiting_line) >= WAITING_LOG_EVERY {
                last_waiting_line = started;
                info!(
                    last = %crate::util::text::printable(&message),
                    "waiting for the first probe to pass"
                );
            }
            Phase::Starting { counts }
        };
        shared.record_probe(
            ProbeResult {
                ok,
                message,
                duration: started.elapsed(),
            },
            phase,
        );
        let step = if starting {
            start_step
        } else {
            timing.interval
        };
        next = after(next, step).max(Instant::now());
        tokio::time::sleep_until(next).await;
    }
}

/// One probe: `Ok(what it saw)` passes, `Err(what it saw)` fails. `outstanding` carries a
/// blocking call that overran its probe over to the next one.
pub async fn once(
    target: &Target,
    limit: Duration,
    claims: &Claims,
    env: &Env,
    outstanding: &mut Outstanding,
) -> Result<String, String> {
    let timed_out = || format!("timed out after {}", crate::util::duration::format(limit));
    match target {
        Target::Exec(argv) => exec(argv, limit, claims, env, outstanding).await,
        Target::File(path) => match timeout(limit, outstanding.stat(path)).await {
            Ok(Ok(())) => Ok(format!("{path} exists")),
            Ok(Err(e)) => Err(format!("{path}: {e}")),
            Err(_) => Err(format!("{path}: {}", timed_out())),
        },
        Target::Tcp { host, port } => timeout(limit, connect(host, *port))
            .await
            .map_err(|_| timed_out())?
            .map(|_| "connected".to_string()),
        Target::Http { host, port, path } => timeout(limit, http(host, *port, path))
            .await
            .map_err(|_| timed_out())?,
        Target::Grpc {
            host,
            port,
            service,
        } => {
            let Some((addrs, authority)) = grpc::dial(host, *port) else {
                return Err(format!("{host}: not an address"));
            };
            let asked = outstanding.grpc(addrs, authority, service.clone(), limit);
            match timeout(limit, asked).await {
                Ok(Ok(health)) if health.is_serving() => Ok(health.to_string()),
                Ok(Ok(health)) => Err(health.to_string()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(timed_out()),
            }
        }
    }
}

/// The blocking calls of the probe task, each on a helper thread (`util::blocking`): a
/// `file:` probe's stat(2) (a hung NFS or FUSE mount, which the app's volumes control,
/// blocks stat forever, issue 8, item 10) and an `exec:` probe's spawn (std's spawn waits
/// until the command has exec'ed, and exec of a program on a hung mount never returns).
/// A call that overruns its probe is not repeated: the next probes wait for the same
/// call, so one hung mount holds one thread, not one per probe.
pub struct Outstanding {
    stat: Call<std::io::Result<()>>,
    spawn: Call<std::io::Result<i32>>,
    /// A `grpc://` probe: kai-init's gRPC client is synchronous (`check` has no runtime).
    grpc: Call<Result<grpc::Health, String>>,
    /// Held from the spawn's start until its pid is claimed: a status the reaper sees
    /// before the claim is kept for it.
    spawning: Option<Spawning>,
}

impl Default for Outstanding {
    fn default() -> Self {
        Outstanding {
            // A stat needs next to no stack.
            stat: Call::new("stat", 64 * 1024),
            spawn: Call::new("spawn", 256 * 1024),
            // The client keeps its buffers on the heap; it is tested on a 64 KiB stack.
            grpc: Call::new("grpc", 128 * 1024),
            spawning: None,
        }
    }
}

impl Outstanding {
    /// Resolves when the spawn (a new one, or the one still outstanding) returns, with the
    /// pid and the guard that keeps its status should the reaper see it before the claim.
    async fn spawn(
        &mut self,
        argv: &[String],
        env: &Env,
        claims: &Claims,
    ) -> Result<(i32, Spawning), String> {
        self.spawning.get_or_insert_with(|| claims.spawning());
        let (argv, env) = (argv.to_vec(), env.clone());
        let result = self
            .spawn
            .run(move || crate::sys::spawn::spawn_probe(&argv, &env))
            .await;
        let spawning = self.spawning.take().ok_or("spawn state lost")?;
        match result? {
            Ok(pid) => Ok((pid, spawning)),
            Err(e) => Err(short(&e)),
        }
    }

    /// Resolves when the gRPC check (a new one, or the one still outstanding) answers; its
    /// own deadline is the probe's timeout, so an overrunning check ends by itself.
    async fn grpc(
        &mut self,
        addrs: Vec<std::net::SocketAddr>,
        authority: String,
        service: String,
        limit: Duration,
    ) -> Result<grpc::Health, String> {
        let deadline = std::time::Instant::now() + limit;
        self.grpc
            .run(move || grpc::check_at(&addrs, &authority, &service, deadline))
            .await?
    }

    /// Resolves when the stat (a new one, or the one still outstanding) returns; dropping
    /// the future (the probe timed out) keeps the call for the next probe.
    async fn stat(&mut self, path: &str) -> Result<(), String> {
        // A relative path from the caller's directory, which kai-init has left.
        let owned = crate::sys::workdir::resolve(path);
        // A stat, not an open: as cheap as it gets, and it needs no read permission.
        match self
            .stat
            .run(move || std::fs::metadata(owned).map(|_| ()))
            .await?
        {
            Ok(()) => Ok(()),
            Err(e) => Err(short(&e)),
        }
    }
}

/// Connects to an IP address, or to `localhost` (IPv4 first, then IPv6). Never a
/// lookup: [`Target::parse_probe`] admits no other names.
async fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let result = match host.parse::<IpAddr>() {
        Ok(ip) => TcpStream::connect(SocketAddr::new(ip, port)).await,
        Err(_) => {
            let v4 = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
            match TcpStream::connect(v4).await {
                Ok(s) => Ok(s),
                Err(_) => {
                    TcpStream::connect(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port)).await
                }
            }
        }
    };
    result.map_err(|e| format!("cannot connect to {}: {}", Authority(host, port), short(&e)))
}

/// GET with `Connection: close`; 200-399 passes.
async fn http(host: &str, port: u16, path: &str) -> Result<String, String> {
    let mut stream = connect(host, port).await?;
    let authority = Authority(host, port).to_string();
    match http::get_status(&mut stream, &authority, path).await? {
        code @ 200..=399 => Ok(format!("HTTP {code}")),
        code => Err(format!("HTTP {code}")),
    }
}

/// An `exec:` probe. The spawn runs on a helper thread: std's spawn waits until the
/// command has exec'ed, and exec of a program on a hung mount never returns (issue 8,
/// item 10). A spawn that overruns is the next probe's spawn too, never a second one.
async fn exec(
    argv: &[String],
    limit: Duration,
    claims: &Claims,
    env: &Env,
    outstanding: &mut Outstanding,
) -> Result<String, String> {
    let deadline = after(Instant::now(), limit);
    let timed_out = || format!("timed out after {}", crate::util::duration::format(limit));
    let program = argv.first().map_or("", String::as_str);
    let spawned = match timeout_at(deadline, outstanding.spawn(argv, env, claims)).await {
        Ok(spawned) => spawned,
        Err(_) => return Err(format!("{}: exec {program}", timed_out())),
    };
    let (pid, spawning) = spawned.map_err(|e| format!("cannot run {program}: {e}"))?;
    let mut status = claims.claim(pid);
    // Claimed: a status reaped from now on goes to the claim.
    drop(spawning);
    match timeout_at(deadline, &mut status).await {
        Ok(Ok(Ended::Exited(0))) => Ok("exit 0".into()),
        Ok(Ok(Ended::Exited(code))) => Err(format!("exit {code}")),
        Ok(Ok(Ended::Signaled(sig))) => Err(format!("killed by {}", name(sig))),
        Ok(Err(_)) => Err("exit status lost".into()),
        Err(_) => {
            // Everything the command started is in its group; SIGKILL cannot be refused.
            let _ = crate::sys::kill_group(pid, libc::SIGKILL);
            let _ = crate::sys::kill(pid, libc::SIGKILL);
            // Wait for the reaper so the claim does not linger (bounded: a process stuck
            // in the kernel must not stall the probes forever).
            if timeout(Duration::from_secs(5), status).await.is_err() {
                claims.release(pid);
            }
            Err(timed_out())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            Target::parse("http://127.0.0.1:3000/health"),
            Ok(Target::Http {
                host: "127.0.0.1".into(),
                port: 3000,
                path: "/health".into()
            })
        );
        assert_eq!(
            Target::parse("http://[::1]:8080"),
            Ok(Target::Http {
                host: "::1".into(),
                port: 8080,
                path: "/".into()
            })
        );
        assert_eq!(
            Target::parse("tcp://localhost:5432"),
            Ok(Target::Tcp {
                host: "localhost".into(),
                port: 5432
            })
        );
        assert_eq!(
            Target::parse("exec:true now"),
            Ok(Target::Exec(vec!["true".into(), "now".into()]))
        );
        assert_eq!(
            Target::parse("file:/tmp/ready"),
            Ok(Target::File("/tmp/ready".into()))
        );
    }

    #[test]
    fn displays_v6_with_brackets() {
        let t = Target::parse("http://[::1]:8080/x").unwrap();
        assert_eq!(t.to_string(), "http://[::1]:8080/x");
    }

    #[test]
    fn probes_take_addresses_not_names() {
        assert!(Target::parse_probe("http://127.0.0.1:3000/x").is_ok());
        assert!(Target::parse_probe("tcp://[::1]:3000").is_ok());
        assert!(Target::parse_probe("tcp://localhost:3000").is_ok());
        assert!(Target::parse_probe("exec:true").is_ok());
        assert!(Target::parse_probe("http://db:5432/").is_err());
        assert!(
            Target::parse("http://db:5432/").is_ok(),
            "check takes names"
        );
    }

    #[test]
    fn rejects_bad_targets() {
        for bad in [
            "ftp://x",
            "tcp://host",
            "http://:80/",
            "http://h:99999/",
            "exec:",
            "file:",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
