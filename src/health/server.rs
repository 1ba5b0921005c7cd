//! The health endpoint's listeners and connections: an abstract Unix socket (always, unless
//! off) and an opt-in TCP address, served by hyper's HTTP/1 on kai-init's one runtime
//! thread, next to the supervisor.
//!
//! Nothing here may hold up that thread, so every limit is enforced without blocking:
//! - descriptors come first: kai-init keeps `gate::RESERVED_FDS` of RLIMIT_NOFILE for itself
//!   (its runtime, signalfd, listeners, notify socket, an exec probe's /dev/null and pipe
//!   while it starts); connections share what is left;
//! - local connections (the abstract socket: `kai-init check`, exec probes) have a pool of
//!   their own, at least `gate::LOCAL_MIN` slots even when nothing is left, which no TCP client
//!   can take; TCP connections share the rest, at most a quarter of it per peer address;
//! - at a limit a new connection closes the least recently active one (of its peer, when
//!   the peer is at its cap; else of its pool): a slot is held by answering requests, not
//!   by having connected, or by having sent a byte. TCP connections are refused only when
//!   the limit leaves TCP no slot at all;
//! - a connection that sends nothing for 10 s is closed; so is one whose request head takes
//!   longer than 10 s after its first byte (hyper's header-read timeout, which also bounds
//!   keep-alive idling); request heads are at most 8 KiB and 32 headers (431 beyond); after
//!   5 minutes a connection's next answer carries `Connection: close`, and 15 s later it is
//!   closed whatever it is doing;
//! - an idle connection costs a task and a socket, not a buffer: hyper (and its 8 KiB read
//!   buffer) is only set up once the first byte has arrived.
//!
//! So a flood cannot lock a local probe out: TCP floods never reach the local pool, and a
//! local flood only ever makes a probe close its oldest, least active connection. A local
//! probe can still lose its connection if the flood opens a whole pool's worth of new
//! local connections in the moment between the probe's connect and its request.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::os::linux::net::SocketAddrExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use tokio::net::{TcpListener, UnixListener};
use tracing::{debug, info, warn};

use super::gate::{Guard, Peer, Ticket};
use super::io::{Stream, Timer};
use super::routes;
use super::shared::Shared;
use crate::health::socket::Setting;
use crate::util::error::Error;

const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_AGE: Duration = Duration::from_secs(300);
/// After MAX_AGE, how long a connection may take to finish with `Connection: close`.
const MAX_AGE_GRACE: Duration = Duration::from_secs(15);
const MAX_HEAD_BYTES: usize = 8192;
const MAX_HEADERS: usize = 32;

/// A bound, not yet served, listener.
#[derive(Debug)]
pub enum Listener {
    Unix(std::os::unix::net::UnixListener, String),
    Tcp(std::net::TcpListener, SocketAddr),
}

/// Binds the health socket `setting` (`--health-socket`), see `health::socket`.
///
/// The default (`@kai-init`, this container's own name) that is taken, or cannot be
/// derived, is logged and kai-init serves without it: another kai-init in this container
/// has it (a `docker exec`ed one), or a squatter, whom `check` will not believe. A name
/// given explicitly that cannot be bound is a start-up error (exit 125): it was asked for,
/// and serving without it would leave whoever took it answering in kai-init's place.
pub fn bind_unix(setting: &str) -> Result<Option<Listener>, Error> {
    let setting = Setting::parse(setting);
    let name = match setting.name() {
        Ok(Some(name)) => name,
        Ok(None) => return Ok(None),
        Err(e) => {
            warn!("cannot name this container's health socket ({e}); serving without it");
            return Ok(None);
        }
    };
    let bound = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .and_then(|addr| std::os::unix::net::UnixListener::bind_addr(&addr))
        .and_then(|l| l.set_nonblocking(true).map(|()| l));
    match bound {
        Ok(l) => Ok(Some(Listener::Unix(l, name))),
        Err(err) if matches!(setting, Setting::Named(_)) => Err(Error::Bind {
            addr: format!("@{name}"),
            err,
        }),
        Err(e) => {
            warn!(socket = %format!("@{name}"), "cannot bind the health socket ({e}); serving without it");
            Ok(None)
        }
    }
}

/// Binds --health-listen; failing is a start-up error (exit 125) naming the address.
pub fn bind_tcp(addr: SocketAddr) -> Result<Listener, Error> {
    let bind_err = |err| Error::Bind {
        addr: addr.to_string(),
        err,
    };
    let l = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    l.set_nonblocking(true).map_err(bind_err)?;
    Ok(Listener::Tcp(l, addr))
}

/// Serves every listener; needs the runtime (call from inside it).
pub fn start(listeners: Vec<Listener>, shared: &Arc<Shared>) {
    for listener in listeners {
        match listener {
            Listener::Unix(l, name) => match UnixListener::from_std(l) {
                Ok(l) => {
                    // Always there by default: worth a line only when asked for.
                    debug!(socket = %format!("@{name}"), "health endpoint listening");
                    tokio::spawn(accept_loop(Accepting::Unix(l), shared.clone()));
                }
                Err(e) => warn!("cannot serve the health socket: {e}"),
            },
            Listener::Tcp(l, addr) => match TcpListener::from_std(l) {
                Ok(l) => {
                    info!(%addr, "health endpoint listening");
                    if shared.gate.limits.tcp == 0 {
                        warn!(%addr, "RLIMIT_NOFILE leaves no descriptors for TCP health connections; every one will be refused");
                    }
                    tokio::spawn(accept_loop(Accepting::Tcp(l), shared.clone()));
                }
                Err(e) => warn!(%addr, "cannot serve the health endpoint: {e}"),
            },
        }
    }
}

/// A listener being served.
enum Accepting {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Accepting {
    async fn next(&self) -> io::Result<(Stream, Peer)> {
        Ok(match self {
            Accepting::Tcp(l) => {
                let (stream, addr) = l.accept().await?;
                // Responses are one small write; do not let Nagle hold the last bytes back.
                let _ = stream.set_nodelay(true);
                (Stream::Tcp(stream), Peer::Tcp(addr.ip().to_canonical()))
            }
            Accepting::Unix(l) => (Stream::Unix(l.accept().await?.0), Peer::Local),
        })
    }
}

async fn accept_loop(listener: Accepting, shared: Arc<Shared>) {
    loop {
        match listener.next().await {
            Ok((stream, peer)) => match shared.gate.admit(peer) {
                Some(ticket) => {
                    let evicted = ticket.evicting;
                    tokio::spawn(serve(stream, ticket, shared.clone()));
                    if evicted {
                        // Let the evicted connection's task run and close its socket
                        // before the next accept takes another descriptor.
                        tokio::task::yield_now().await;
                    }
                }
                None => debug!("health connection refused: no descriptors for it"),
            },
            Err(e) => {
                // EMFILE and the like: the connection stays queued, so retrying at once
                // would spin. Pause this listener only; nothing else waits for it.
                debug!("cannot accept a health connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve(stream: Stream, ticket: Ticket, shared: Arc<Shared>) {
    let Ticket { evicted, guard, .. } = ticket;
    let work = async {
        tokio::select! {
            ready = stream.first_byte() => if ready.is_err() { return },
            () = tokio::time::sleep(FIRST_BYTE_TIMEOUT) => return,
        }
        // Boxed: hyper's connection state is allocated only now, so a task that waits for
        // its first byte stays a few hundred bytes (a thousand idle connections ~ 1 MiB).
        Box::pin(http(stream, shared, &guard)).await;
    };
    // Eviction ends the connection whatever it is doing: a slot is never held for good.
    tokio::select! {
        () = work => {}
        _ = evicted => {}
    }
}

async fn http(stream: Stream, shared: Arc<Shared>, guard: &Guard) {
    let mut builder = http1::Builder::new();
    builder
        .timer(Timer)
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_header_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    // Past its age, a connection's next answer says `Connection: close` and hyper closes
    // it after that answer: a keep-alive client learns it before sending again. Closing at
    // the age limit itself cut requests a client had just sent (bench/soak: 3 of 300,009).
    let expired = Arc::new(AtomicBool::new(false));
    let closing = expired.clone();
    let service = service_fn(move |req| {
        guard.active();
        let mut answer = routes::handle(&req, &shared);
        if closing.load(Ordering::Relaxed) {
            let close = hyper::header::HeaderValue::from_static("close");
            answer
                .headers_mut()
                .insert(hyper::header::CONNECTION, close);
        }
        std::future::ready(Ok::<_, Infallible>(answer))
    });
    let conn = builder.serve_connection(stream, service);
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => Some(ended),
        () = tokio::time::sleep(MAX_AGE) => None,
    };
    let ended = match ended {
        Some(ended) => Some(ended),
        None => {
            expired.store(true, Ordering::Relaxed);
            // A connection that sends nothing more ends by hyper's own idle limit (the
            // header-read timeout) well before this.
            tokio::time::timeout(MAX_AGE_GRACE, conn).await.ok()
        }
    };
    match ended {
        Some(Ok(())) => {}
        Some(Err(e)) => debug!("health connection ended: {e}"),
        None => debug!("health connection closed after {MAX_AGE:?}"),
    }
}
