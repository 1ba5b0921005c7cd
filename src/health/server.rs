//! The health endpoint's listeners and connections: an abstract Unix socket (always, unless
//! off) and an opt-in TCP address, served by hyper's HTTP/1 on kai-init's one runtime
//! thread, next to the supervisor.
//!
//! Nothing here may hold up that thread, so every limit is enforced without blocking:
//! - at most `limit` connections are open (from RLIMIT_NOFILE, at most 1024); at the limit
//!   a new connection evicts the oldest one that has not sent a byte yet, or is refused if
//!   none is idle. A flood of idle connections therefore never locks out a real probe;
//! - a connection that sends nothing for 10 s is closed; so is one whose request head takes
//!   longer than 10 s (hyper's header-read timeout, which also bounds keep-alive idling);
//!   request heads are at most 8 KiB and 32 headers (431 beyond), and a connection lives
//!   at most 5 minutes;
//! - an idle connection costs a task and a socket, not a buffer: hyper (and its 8 KiB read
//!   buffer) is only set up once the first byte has arrived.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::os::linux::net::SocketAddrExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::io::{Stream, Timer};
use super::metrics::Connections;
use super::{routes, Shared};
use crate::error::Error;

const MAX_CONNECTIONS: usize = 1024;
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_AGE: Duration = Duration::from_secs(300);
const MAX_HEAD_BYTES: usize = 8192;
const MAX_HEADERS: usize = 32;

/// A bound, not yet served, listener.
#[derive(Debug)]
pub enum Listener {
    Unix(std::os::unix::net::UnixListener, String),
    Tcp(std::net::TcpListener, SocketAddr),
}

/// Binds the abstract socket `name` (a leading `@` is optional). A failure (the name is
/// taken, typically by another kai-init in the same network namespace) is logged and
/// kai-init goes on without it, as issue 3 asks.
pub fn bind_unix(name: &str) -> Option<Listener> {
    let name = name.strip_prefix('@').unwrap_or(name);
    let bound = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .and_then(|addr| std::os::unix::net::UnixListener::bind_addr(&addr))
        .and_then(|l| l.set_nonblocking(true).map(|()| l));
    match bound {
        Ok(l) => Some(Listener::Unix(l, name.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            warn!(socket = %format!("@{name}"), "health socket name already taken; serving without it");
            None
        }
        Err(e) => {
            warn!(socket = %format!("@{name}"), "cannot bind the health socket ({e}); serving without it");
            None
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
                    tokio::spawn(accept_loop(Serving::Unix(l), shared.clone()));
                }
                Err(e) => warn!("cannot serve the health socket: {e}"),
            },
            Listener::Tcp(l, addr) => match TcpListener::from_std(l) {
                Ok(l) => {
                    info!(%addr, "health endpoint listening");
                    tokio::spawn(accept_loop(Serving::Tcp(l), shared.clone()));
                }
                Err(e) => warn!(%addr, "cannot serve the health endpoint: {e}"),
            },
        }
    }
}

/// A listener being served.
enum Serving {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Serving {
    async fn next(&self) -> io::Result<Stream> {
        Ok(match self {
            Serving::Tcp(l) => {
                let (stream, _) = l.accept().await?;
                // Responses are one small write; do not let Nagle hold the last bytes back.
                let _ = stream.set_nodelay(true);
                Stream::Tcp(stream)
            }
            Serving::Unix(l) => Stream::Unix(l.accept().await?.0),
        })
    }
}

async fn accept_loop(listener: Serving, shared: Arc<Shared>) {
    loop {
        match listener.next().await {
            Ok(stream) => match shared.gate.admit(&shared.gate) {
                Some(ticket) => {
                    tokio::spawn(serve(stream, ticket, shared.clone()));
                }
                None => debug!("health connection refused: every slot is busy"),
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
    let Ticket { evicted, guard } = ticket;
    tokio::select! {
        ready = stream.first_byte() => if ready.is_err() { return },
        _ = evicted => return,
        () = tokio::time::sleep(FIRST_BYTE_TIMEOUT) => return,
    }
    guard.busy();
    // Boxed: hyper's connection state is allocated only now, so a task that waits for its
    // first byte stays a few hundred bytes (a thousand idle connections ~ 1 MiB).
    Box::pin(http(stream, shared)).await;
}

async fn http(stream: Stream, shared: Arc<Shared>) {
    let mut builder = http1::Builder::new();
    builder
        .timer(Timer)
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_header_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    let service = service_fn(move |req| {
        std::future::ready(Ok::<_, Infallible>(routes::handle(&req, &shared)))
    });
    match tokio::time::timeout(MAX_AGE, builder.serve_connection(stream, service)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!("health connection ended: {e}"),
        Err(_) => debug!("health connection closed after {MAX_AGE:?}"),
    }
}

/// The connection limit, with eviction of idle connections.
#[derive(Debug)]
pub struct Gate {
    limit: usize,
    inner: Mutex<GateInner>,
}

#[derive(Debug, Default)]
struct GateInner {
    open: usize,
    next_id: u64,
    /// Connections that have not sent a byte yet, oldest first, with their eviction switch.
    idle: BTreeMap<u64, oneshot::Sender<()>>,
    evicted: u64,
    refused: u64,
}

struct Ticket {
    evicted: oneshot::Receiver<()>,
    guard: Guard,
}

/// One open connection's slot; freed on drop.
struct Guard {
    gate: Arc<Gate>,
    id: u64,
}

impl Gate {
    /// The limit follows RLIMIT_NOFILE (half of the soft limit, so that the child's
    /// probes and kai-init's own descriptors always have room), at most 1024.
    pub fn new() -> Gate {
        let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(1024, |(soft, _)| soft);
        let limit = usize::try_from(soft / 2)
            .unwrap_or(MAX_CONNECTIONS)
            .clamp(16, MAX_CONNECTIONS);
        Gate {
            limit,
            inner: Mutex::new(GateInner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn admit(&self, this: &Arc<Gate>) -> Option<Ticket> {
        let mut g = self.lock();
        if g.open >= self.limit {
            match g.idle.pop_first() {
                Some((_, switch)) => {
                    let _ = switch.send(());
                    g.evicted += 1;
                }
                None => {
                    g.refused += 1;
                    return None;
                }
            }
        }
        g.open += 1;
        let id = g.next_id;
        g.next_id += 1;
        let (switch, evicted) = oneshot::channel();
        g.idle.insert(id, switch);
        Some(Ticket {
            evicted,
            guard: Guard {
                gate: this.clone(),
                id,
            },
        })
    }

    pub fn stats(&self) -> Connections {
        let g = self.lock();
        Connections {
            open: g.open,
            limit: self.limit,
            evicted: g.evicted,
            refused: g.refused,
        }
    }
}

impl Guard {
    /// The connection sent its first byte: it can no longer be evicted.
    fn busy(&self) {
        self.gate.lock().idle.remove(&self.id);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut g = self.gate.lock();
        g.idle.remove(&self.id);
        g.open -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_oldest_idle_connection_at_the_limit() {
        let gate = Arc::new(Gate {
            limit: 2,
            inner: Mutex::new(GateInner::default()),
        });
        let mut a = gate.admit(&gate).expect("first");
        let b = gate.admit(&gate).expect("second");
        b.guard.busy();
        let _c = gate.admit(&gate).expect("third evicts the idle first");
        assert_eq!(a.evicted.try_recv(), Ok(()));
        drop(a);
        let _d = gate.admit(&gate).expect("fourth evicts the third");
        assert!(gate.admit(&gate).is_some(), "one idle is left to evict");
        let s = gate.stats();
        assert_eq!((s.evicted, s.refused), (3, 0));
        drop(_d);
        drop(b);
    }

    #[test]
    fn refuses_when_everything_is_busy() {
        let gate = Arc::new(Gate {
            limit: 1,
            inner: Mutex::new(GateInner::default()),
        });
        let a = gate.admit(&gate).expect("first");
        a.guard.busy();
        assert!(gate.admit(&gate).is_none());
        assert_eq!(gate.stats().refused, 1);
        drop(a);
        assert_eq!(gate.stats().open, 0);
        assert!(gate.admit(&gate).is_some());
    }
}
