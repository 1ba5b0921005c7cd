//! `--wait-for`: before COMMAND starts, wait until each dependency is up (a TCP port
//! accepts, an HTTP endpoint answers 200-399, a file exists), in the order given, all
//! within `--wait-timeout`. What wait-for-it, dockerize and wait4x do in an entrypoint
//! script, here inside kai-init's own signal handling: SIGTERM or SIGINT during the wait
//! ends it at once and nothing starts.
//!
//! Names are resolved on each attempt by the system resolver (musl reads /etc/hosts and
//! resolv.conf) on tokio's blocking pool, as is the `stat` of a file (a hung mount must
//! not stall the loop): the event loop only awaits their answers, so a slow lookup never
//! delays a signal. A name that does not resolve yet is "not up yet", like a refused
//! connection. Attempts back off from 20 ms, doubling, to 1 s.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tracing::{debug, info};

use crate::config::{Authority, Target};
use crate::http::{self, short};
use crate::signal_names::name;
use crate::supervisor::{after, is_stop, mapped};
use crate::sys::signals::Signals;

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

/// Waits for every target in turn. Signals other than the stop signals are logged and
/// dropped: there is no child yet to forward them to.
pub async fn wait_all(
    targets: &[Target],
    limit: Duration,
    signal_map: &[(i32, i32)],
    signals: &mut Signals,
) -> Result<(), Interrupted> {
    let start = Instant::now();
    let deadline = after(start, limit);
    for target in targets {
        info!(%target, "waiting");
        let mut attempt = 0u32;
        let mut last: Option<String> = None;
        loop {
            let until = deadline.min(after(Instant::now(), ATTEMPT));
            let result = tokio::select! {
                sig = stop_signal(signals, signal_map) => return Err(Interrupted::Stopped(sig)),
                r = timeout_at(until, check(target)) => match r {
                    Ok(r) => r,
                    // Cut short by --wait-timeout itself: the error before says more.
                    Err(_) if until == deadline && last.is_some() => Err(last.take().unwrap_or_default()),
                    Err(_) => Err("timed out".into()),
                }
            };
            let error = match result {
                Ok(()) => {
                    info!(%target, waited = ?start.elapsed(), "up");
                    break;
                }
                Err(e) => e,
            };
            debug!(%target, attempt, "not up yet: {error}");
            if Instant::now() >= deadline {
                return Err(Interrupted::TimedOut {
                    target: target.to_string(),
                    error,
                    after: limit,
                });
            }
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
    Ok(())
}

/// The next TERM or INT (as received, or as --signal-map makes it); other signals are
/// dropped. A signalfd that cannot be read (no valid one fails) is retried after a pause.
async fn stop_signal(signals: &mut Signals, signal_map: &[(i32, i32)]) -> i32 {
    loop {
        match signals.recv().await {
            Ok((sig, _)) => {
                if is_stop(sig, mapped(signal_map, sig)) {
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

/// One attempt at `target`.
async fn check(target: &Target) -> Result<(), String> {
    match target {
        Target::Tcp { host, port } => connect(host, *port).await.map(drop),
        Target::Http { host, port, path } => get(host, *port, path).await,
        Target::File(path) => {
            let path = path.clone();
            let found = tokio::task::spawn_blocking(move || std::fs::metadata(path)).await;
            match found {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(short(&e)),
                Err(_) => Err("the stat thread ended without an answer".into()),
            }
        }
        Target::Exec(_) => Err("exec: is not a wait target".into()),
    }
}

/// Resolves `host` (on the blocking pool unless it is an address) and connects to the
/// addresses it has, in the resolver's order.
async fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let shown = Authority(host, port);
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host, port)).await {
        Ok(addrs) => addrs.collect(),
        Err(e) => return Err(format!("cannot resolve {host}: {}", short(&e))),
    };
    let mut last = format!("cannot resolve {host}: no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("cannot connect to {shown}: {}", short(&e)),
        }
    }
    Err(last)
}

/// GET `path` with `Connection: close`; up when the status is 200-399.
async fn get(host: &str, port: u16, path: &str) -> Result<(), String> {
    let mut stream = connect(host, port).await?;
    let authority = Authority(host, port).to_string();
    match http::get_status(&mut stream, &authority, path).await? {
        200..=399 => Ok(()),
        code => Err(format!("HTTP {code}")),
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
}
