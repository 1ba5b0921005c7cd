//! Probes of the child: what to check (parsed from --probe) and how, kubelet-style.
//!
//! One task probes every --probe-interval (only when a probe is configured: no timer
//! otherwise) and records each result; the rules in `readiness` turn the results into
//! ready/live. `exec:` commands are started with std's `Command` in a process group of
//! their own; the supervisor's reaper collects their status and hands it over through
//! `sys::claims::Claims` (tokio's process support would race that reaper).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tracing::debug;

use super::readiness::ProbeResult;
use super::Shared;
use crate::config::{Authority, Target};
use crate::exit::Ended;
use crate::signal_names::name;
use crate::sys::claims::Claims;

/// --probe-interval, --probe-timeout, --probe-initial-delay.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub interval: Duration,
    pub timeout: Duration,
    pub initial_delay: Duration,
}

/// Probes until the main child has ended. Probe starts are `interval` apart; a probe that
/// takes longer than that is followed by the next one at once.
pub async fn run(shared: Arc<Shared>, target: Target, timing: Timing) {
    if !timing.initial_delay.is_zero() {
        tokio::time::sleep(timing.initial_delay).await;
    }
    let mut next = Instant::now();
    loop {
        if !shared.child_running() {
            debug!("main child ended; probes stop");
            return;
        }
        let started = Instant::now();
        let outcome = once(&target, timing.timeout, &shared.claims).await;
        let (ok, message) = match outcome {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        };
        shared.record_probe(ProbeResult {
            ok,
            message,
            duration: started.elapsed(),
        });
        next = (next + timing.interval).max(Instant::now());
        tokio::time::sleep_until(next).await;
    }
}

/// One probe: `Ok(what it saw)` passes, `Err(what it saw)` fails.
pub async fn once(target: &Target, limit: Duration, claims: &Claims) -> Result<String, String> {
    let timed_out = || format!("timed out after {}", crate::health::format::duration(limit));
    match target {
        Target::Exec(argv) => exec(argv, limit, claims).await,
        Target::File(path) => match std::fs::metadata(path) {
            // A stat, not an open: as cheap as it gets, and it needs no read permission.
            Ok(_) => Ok(format!("{path} exists")),
            Err(e) => Err(format!("{path}: {}", short(&e))),
        },
        Target::Tcp { host, port } => timeout(limit, connect(host, *port))
            .await
            .map_err(|_| timed_out())?
            .map(|_| "connected".to_string()),
        Target::Http { host, port, path } => timeout(limit, http(host, *port, path))
            .await
            .map_err(|_| timed_out())?,
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

/// GET with `Connection: close`; only the status line is read, as kubelet judges by it.
async fn http(host: &str, port: u16, path: &str) -> Result<String, String> {
    let mut stream = connect(host, port).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: kai-init/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        Authority(host, port),
        env!("CARGO_PKG_VERSION"),
    );
    let io_err = |e: std::io::Error| format!("{}: {}", Authority(host, port), short(&e));
    stream.write_all(request.as_bytes()).await.map_err(io_err)?;
    let mut buf = [0u8; 128];
    let mut len = 0;
    while len < buf.len() && !buf[..len].contains(&b'\n') {
        match stream.read(&mut buf[len..]).await.map_err(io_err)? {
            0 => break,
            n => len += n,
        }
    }
    match status_code(&buf[..len]) {
        Some(code @ 200..=399) => Ok(format!("HTTP {code}")),
        Some(code) => Err(format!("HTTP {code}")),
        None if len == 0 => Err("connection closed without a response".into()),
        None => Err("not an HTTP response".into()),
    }
}

/// An I/O error as a short phrase: "connection refused", not "Connection refused (os
/// error 111)"; these end up in one-line answers and logs.
pub fn short(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The code from an `HTTP/1.x NNN ...` status line.
pub fn status_code(head: &[u8]) -> Option<u16> {
    let rest = head.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    if rest.get(1) != Some(&b' ') || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

async fn exec(argv: &[String], limit: Duration, claims: &Claims) -> Result<String, String> {
    let pid = crate::sys::spawn::spawn_probe(argv, &super::notify::UPSTREAM_VARS)
        .map_err(|e| format!("cannot run {}: {}", argv[0], short(&e)))?;
    // No `.await` between spawn and claim: the reaper cannot run in between (one thread).
    let mut status = claims.claim(pid);
    match timeout(limit, &mut status).await {
        Ok(Ok(Ended::Exited(0))) => Ok("exit 0".into()),
        Ok(Ok(Ended::Exited(code))) => Err(format!("exit {code}")),
        Ok(Ok(Ended::Signaled(sig))) => Err(format!("killed by {}", name(sig))),
        Ok(Err(_)) => Err("exit status lost".into()),
        Err(_) => {
            // Everything the command started is in its group; SIGKILL cannot be refused.
            let _ = crate::sys::kill(-pid, libc::SIGKILL);
            let _ = crate::sys::kill(pid, libc::SIGKILL);
            // Wait for the reaper so the claim does not linger (bounded: a process stuck
            // in the kernel must not stall the probes forever).
            if timeout(Duration::from_secs(5), status).await.is_err() {
                claims.release(pid);
            }
            Err(format!(
                "timed out after {}",
                crate::health::format::duration(limit)
            ))
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
    fn reads_status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 503 x"), Some(503));
        assert_eq!(status_code(b"HTTP/1.1 20"), None);
        assert_eq!(status_code(b"SSH-2.0-OpenSSH"), None);
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
