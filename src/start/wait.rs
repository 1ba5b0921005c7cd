//! `--wait-for`: before COMMAND starts, wait until each dependency is up (a TCP port
//! accepts, an HTTP endpoint answers 200-399, a file exists), in the order given, all
//! within `--wait-timeout`. What wait-for-it, dockerize and wait4x do in an entrypoint
//! script, here inside kai-init's own signal handling: SIGTERM or SIGINT during the wait
//! ends it at once and nothing starts. What is being waited for, and how long the waits
//! took, go to the health side (`State::starting`, `State::wait`).
//!
//! Names are resolved on each attempt by the system resolver (musl reads /etc/hosts and
//! resolv.conf), and files are stat'ed, on a helper thread of the wait's own ([`Call`]):
//! the event loop only awaits their answers, so a slow lookup or a hung mount never
//! delays a signal. A name that does not resolve yet is "not up yet", like a refused
//! connection. Attempts back off from 20 ms, doubling, to 1 s.
//!
//! Not tokio's blocking pool: its threads idle on for seconds after their last call, and
//! handing the terminal to COMMAND (`sys::spawn`) needs a single-threaded kai-init. Each
//! helper thread is joined once it has answered, and when the waits are over none is left.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tracing::{debug, info};

use crate::config::signal_names::ends_start;
use crate::config::signal_names::name;
use crate::config::target::{Authority, Target};
use crate::health::client::{self, http};
use crate::supervise::state::{Publisher, Starting};
use crate::sys::signals::Signals;
use crate::util::blocking::Call;
use crate::util::clock::after;
use crate::util::text::short;

/// How the waits ended when not every target came up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interrupted {
    /// `--wait-timeout` ran out while `target` was still down, last with `error`.
    TimedOut {
        target: String,
        error: String,
        after: Duration,
    },
    /// A stop signal (TERM or INT, before or after --signal-map) arrived.
    Stopped(i32),
}

/// Pauses between attempts: 20 ms doubling to 1 s.
pub fn pause(attempt: u32) -> Duration {
    Duration::from_millis(20)
        .saturating_mul(1 << attempt.min(10))
        .min(Duration::from_secs(1))
}

/// One attempt may take at most this long (a connect to an address that drops SYNs).
const ATTEMPT: Duration = Duration::from_secs(5);

/// How long a joined helper thread may still be listed in /proc/self/task (see [`settle`]).
const SETTLE: Duration = Duration::from_millis(200);

/// `target` as kai-init shows it, in logs and on the health endpoint: an http:// target
/// without its query string, which may carry a token (`/ready?key=...`); the rest as
/// written.
pub fn shown(target: &Target) -> String {
    match target {
        Target::Http { host, port, path } => match path.find(['?', '#']) {
            Some(i) => format!("http://{}{}?...", Authority(host, *port), &path[..i]),
            None => target.to_string(),
        },
        t => t.to_string(),
    }
}

/// Waits for every target in turn, telling `state` which one and how it went. Signals
/// other than the stop signals are logged and dropped: there is no child yet to forward
/// them to.
pub async fn wait_all(
    targets: &[Target],
    limit: Duration,
    signal_map: &[(i32, i32)],
    signals: &mut Signals,
    state: &Publisher,
) -> Result<(), Interrupted> {
    let start = Instant::now();
    state.send_modify(|s| s.wait.began = Some(start.into_std()));
    let deadline = after(start, limit);
    for target in targets {
        let label = shown(target);
        info!(target = %label, "waiting");
        state.send_modify(|s| s.starting = Some(Starting::waiting(label.clone(), None)));
        let mut helper = Helper::new("wait", HELPER_STACK);
        let mut grpc_helper = GrpcHelper::new("wait-grpc", HELPER_STACK);
        let mut attempt = 0u32;
        let mut last: Option<String> = None;
        loop {
            let until = deadline.min(after(Instant::now(), ATTEMPT));
            let result = tokio::select! {
                sig = stop_signal(signals, signal_map) => return Err(Interrupted::Stopped(sig)),
                r = timeout_at(until, check(target, &mut helper, &mut grpc_helper)) => match r {
                    Ok(r) => r,
                    // Cut short by --wait-timeout itself: the error before says more.
                    Err(_) if until == deadline && last.is_some() => Err(last.take().unwrap_or_default()),
                    Err(_) => Err("timed out".into()),
                }
            };
            let error = match result {
                Ok(()) => {
                    info!(target = %label, waited = ?start.elapsed(), "up");
                    break;
                }
                Err(e) => e,
            };
            debug!(target = %label, attempt, "not up yet: {error}");
            if Instant::now() >= deadline {
                return Err(Interrupted::TimedOut {
                    target: label,
                    error,
                    after: limit,
                });
            }
            state.send_modify(|s| {
                s.starting = Some(Starting::waiting(label.clone(), Some(error.clone())))
            });
            last = Some(error);
            // The last attempt is made at the deadline itself, not a pause before it.
            let next = deadline.min(after(Instant::now(), pause(attempt)));
            attempt = attempt.saturating_add(1);
            tokio::select! {
                sig = stop_signal(signals, signal_map) => return Err(Interrupted::Stopped(sig)),
                () = tokio::time::sleep_until(next) => {}
            }
        }
    }
    // Unconditionally: one read of /proc/self/task when no helper thread ran, and the
    // race it waits out (a joined thread still listed) cannot be provoked by a test.
    settle().await;
    state.send_modify(|s| {
        s.wait.ended = Some(std::time::Instant::now());
        s.starting = None;
    });
    Ok(())
}

/// The next TERM or INT (as received, or as --signal-map makes it); other signals are
/// dropped. A signalfd that cannot be read (no valid one fails) is retried after a pause.
async fn stop_signal(signals: &mut Signals, signal_map: &[(i32, i32)]) -> i32 {
    loop {
        match signals.recv().await {
            Ok((sig, _)) => {
                if ends_start(signal_map, sig) {
                    info!(signal = %name(sig), "stop signal while waiting; not starting");
                    return sig;
                }
                if sig != libc::SIGCHLD {
                    debug!(signal = %name(sig), "received while waiting; no child to forward it to");
                }
            }
            Err(e) => {
                debug!("cannot read signals: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One attempt at `target`; `helper` runs its blocking calls, `grpc` a whole gRPC check
/// (look-up, connect and exchange: kai-init's gRPC client is synchronous).
async fn check(target: &Target, helper: &mut Helper, grpc: &mut GrpcHelper) -> Result<(), String> {
    match target {
        Target::Grpc {
            host,
            port,
            service,
        } => {
            let (host, port, service) = (host.clone(), *port, service.clone());
            // The attempt's own bound; the wait cuts it short at its deadline anyway.
            let deadline = std::time::Instant::now() + ATTEMPT;
            let asked = grpc.run(move || {
                let (addrs, authority) = match client::grpc::dial(&host, port) {
                    Some(dialled) => dialled,
                    None => {
                        let addrs = (host.as_str(), port)
                            .to_socket_addrs()
                            .map_err(|e| format!("cannot resolve {host}: {}", short(&e)))?;
                        (addrs.collect(), Authority(&host, port).to_string())
                    }
                };
                client::grpc::check_at(&addrs, &authority, &service, deadline)
            });
            match asked.await?? {
                health if health.is_serving() => Ok(()),
                health => Err(health.to_string()),
            }
        }
        Target::Tcp { host, port } => connect(host, *port, helper).await.map(drop),
        Target::Http { host, port, path } => get(host, *port, path, helper).await,
        Target::File(path) => {
            let path = path.clone();
            match helper
                .run(move || std::fs::metadata(path).map(|_| Vec::new()))
                .await?
            {
                Ok(_) => Ok(()),
                Err(e) => Err(short(&e)),
            }
        }
        Target::Exec(_) => Err("exec: is not a wait target".into()),
    }
}

/// Resolves `host` (on the helper thread unless it is an address) and connects to the
/// addresses it has, in the resolver's order.
async fn connect(host: &str, port: u16, helper: &mut Helper) -> Result<TcpStream, String> {
    let shown = Authority(host, port);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            let name = (host.to_owned(), port);
            let found = helper.run(move || name.to_socket_addrs().map(Vec::from_iter));
            match found.await? {
                Ok(addrs) => addrs,
                Err(e) => return Err(format!("cannot resolve {host}: {}", short(&e))),
            }
        }
    };
    // The first address's error is the one told: the resolver puts the address it
    // prefers first, and a later one (::1 where IPv6 is off: "address not available")
    // would hide that the dependency refused.
    let mut first = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                first.get_or_insert_with(|| format!("cannot connect to {shown}: {}", short(&e)));
            }
        }
    }
    Err(first.unwrap_or_else(|| format!("cannot resolve {host}: no address")))
}

/// GET `path` with `Connection: close`; up when the status is 200-399.
async fn get(host: &str, port: u16, path: &str, helper: &mut Helper) -> Result<(), String> {
    let mut stream = connect(host, port, helper).await?;
    let authority = Authority(host, port).to_string();
    match http::get_status(&mut stream, &authority, path).await? {
        200..=399 => Ok(()),
        code => Err(format!("HTTP {code}")),
    }
}

/// What a helper call answers: a lookup's addresses, or a stat's nothing.
type Answer = std::io::Result<Vec<SocketAddr>>;

/// The blocking calls of one target: one thread at most (see `util::blocking`).
type Helper = Call<Answer>;

/// A `grpc://` target's whole check, on a thread of its own (one at most per target).
type GrpcHelper = Call<Result<client::grpc::Health, String>>;

/// Lookups in musl need a little stack; 256 KiB is ample.
const HELPER_STACK: usize = 256 * 1024;

/// Waits (at most [`SETTLE`]) until /proc/self/task lists this thread alone. A joined
/// thread is not quite gone: pthread_join returns when the kernel clears the thread's id,
/// a moment before the thread is unlisted, and the terminal hand-over counts threads.
async fn settle() {
    let deadline = after(Instant::now(), SETTLE);
    while crate::sys::proc::thread_count().is_some_and(|n| n > 1) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_from_20ms_to_one_second() {
        let ms: Vec<u128> = (0..9).map(|a| pause(a).as_millis()).collect();
        assert_eq!(ms, [20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        assert_eq!(pause(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn shown_targets_keep_no_query() {
        let t = |s: &str| shown(&Target::parse_wait(s).unwrap());
        assert_eq!(
            t("http://db:8080/ready?token=s3cr3t"),
            "http://db:8080/ready?..."
        );
        assert_eq!(t("http://db/x#frag"), "http://db:80/x?...");
        assert_eq!(t("http://[::1]:9/ready"), "http://[::1]:9/ready");
        assert_eq!(t("tcp://db:5432"), "tcp://db:5432");
        assert_eq!(t("file:/run/ok?x"), "file:/run/ok?x");
    }
}
