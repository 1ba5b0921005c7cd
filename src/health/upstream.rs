//! kai-init's own supervisor, when it has one (kai-init under systemd, or nested under
//! another kai-init): READY=1 once the child is ready and STOPPING=1 once, on the
//! NOTIFY_SOCKET kai-init itself was given. Nothing the child sends goes up.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use tracing::{debug, warn};

/// Variables that describe kai-init's own service manager; never passed to the child.
pub const UPSTREAM_VARS: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// kai-init's own NOTIFY_SOCKET, if it was given one.
#[derive(Debug)]
pub struct Upstream {
    sock: UnixDatagram,
    addr: SocketAddr,
    /// STOPPING=1 goes up once, whether the child or a signal said it first.
    stopping_sent: std::sync::atomic::AtomicBool,
}

impl Upstream {
    pub fn from_env() -> Option<Upstream> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        let value = value.to_str()?;
        let addr = if let Some(name) = value.strip_prefix('@') {
            SocketAddr::from_abstract_name(name.as_bytes())
        } else if value.starts_with('/') {
            SocketAddr::from_pathname(value)
        } else {
            debug!(
                socket = value,
                "NOTIFY_SOCKET of an unsupported kind; not notifying"
            );
            return None;
        };
        let sock = UnixDatagram::unbound().and_then(|s| {
            // A full queue must never block the event loop: the message is dropped instead.
            s.set_nonblocking(true)?;
            Ok(s)
        });
        match (sock, addr) {
            (Ok(sock), Ok(addr)) => Some(Upstream {
                sock,
                addr,
                stopping_sent: Default::default(),
            }),
            (Err(e), _) | (_, Err(e)) => {
                warn!(socket = value, "cannot use NOTIFY_SOCKET: {e}");
                None
            }
        }
    }

    pub fn stopping(&self) {
        if !self
            .stopping_sent
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            self.send("STOPPING=1");
        }
    }

    pub fn send(&self, message: &str) {
        match self.sock.send_to_addr(message.as_bytes(), &self.addr) {
            Ok(_) => debug!(message, "notified kai-init's supervisor"),
            Err(e) => warn!(message, "cannot notify kai-init's supervisor: {e}"),
        }
    }
}
