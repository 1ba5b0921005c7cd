//! The health endpoint's connection limits (see `server` for the rules): which pool a
//! connection takes a slot in, and which connection is closed to make room. Pure
//! bookkeeping under one lock, so the rules are unit-tested without sockets.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::metrics::Connections;

/// Descriptors kai-init keeps for itself out of RLIMIT_NOFILE: about a dozen of its own,
/// five while an exec probe starts, and slack for connections accepted while an evicted
/// one is still being closed.
pub const RESERVED_FDS: u64 = 32;
/// The local pool's size: a quarter of the spare descriptors, within these bounds.
pub const LOCAL_MIN: usize = 4;
const LOCAL_MAX: usize = 64;
/// TCP connections at most.
const TCP_MAX: usize = 1024;
/// Where a connection comes from, for the pools and the per-peer cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// The abstract socket.
    Local,
    Tcp(IpAddr),
}

/// How many connections of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub local: usize,
    pub tcp: usize,
    pub per_peer: usize,
}

impl Limits {
    /// What a soft RLIMIT_NOFILE of `soft` leaves for connections.
    pub fn from_nofile(soft: u64) -> Limits {
        let spare = usize::try_from(soft.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
        let local = (spare / 4).clamp(LOCAL_MIN, LOCAL_MAX);
        let tcp = spare.saturating_sub(local).min(TCP_MAX);
        Limits {
            local,
            tcp,
            per_peer: tcp.div_ceil(4),
        }
    }
}

/// The connection limits, enforced by evicting the least recently active connection.
#[derive(Debug)]
pub struct Gate {
    pub limits: Limits,
    inner: Mutex<GateInner>,
}

#[derive(Debug, Default)]
struct GateInner {
    next_id: u64,
    /// Open connections, least recently active first. A list, not maps: it holds at most
    /// about a thousand entries, scanned only when one is admitted, active or closed, and
    /// a tree or hash map here cost several KiB of binary.
    conns: Vec<Conn>,
    evicted: u64,
    refused: u64,
}

#[derive(Debug)]
struct Conn {
    id: u64,
    peer: Peer,
    switch: oneshot::Sender<()>,
}

pub struct Ticket {
    /// Resolves when a newer connection took this one's slot.
    pub evicted: oneshot::Receiver<()>,
    pub guard: Guard,
    /// Admitting it closed another connection.
    pub evicting: bool,
}

/// One open connection's slot; freed on drop.
pub struct Guard {
    gate: Arc<Gate>,
    id: u64,
}

impl Gate {
    /// Limits from the soft RLIMIT_NOFILE; one that cannot be read counts as the usual
    /// container default, 1024 (it only sizes the pools; nothing is opened on its word).
    pub fn new() -> Arc<Gate> {
        let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(1024, |(soft, _)| soft);
        Gate::with(Limits::from_nofile(soft))
    }

    pub fn with(limits: Limits) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            inner: Mutex::new(GateInner::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateInner> {
        crate::util::lock::lock(&self.inner)
    }

    pub fn admit(self: &Arc<Self>, peer: Peer) -> Option<Ticket> {
        let mut g = self.lock();
        let local = peer == Peer::Local;
        let limit = match local {
            true => self.limits.local,
            false => self.limits.tcp,
        };
        if limit == 0 {
            g.refused += 1;
            return None;
        }
        let same_pool = |p: Peer| (p == Peer::Local) == local;
        let mut evicting = false;
        if !local && g.count(|p| p == peer) >= self.limits.per_peer {
            evicting = g.evict(|p| p == peer);
        }
        if !evicting && g.count(same_pool) >= limit {
            evicting = g.evict(same_pool);
        }
        let id = g.next_id;
        g.next_id += 1;
        let (switch, evicted) = oneshot::channel();
        g.conns.push(Conn { id, peer, switch });
        Some(Ticket {
            evicted,
            guard: Guard {
                gate: self.clone(),
                id,
            },
            evicting,
        })
    }

    pub fn stats(&self) -> Connections {
        let g = self.lock();
        Connections {
            open: g.conns.len(),
            limit: self.limits.local + self.limits.tcp,
            evicted: g.evicted,
            refused: g.refused,
        }
    }
}

impl GateInner {
    fn count(&self, matches: impl Fn(Peer) -> bool) -> usize {
        self.conns.iter().filter(|c| matches(c.peer)).count()
    }

    /// Closes the least recently active connection whose peer matches; false if none.
    fn evict(&mut self, matches: impl Fn(Peer) -> bool) -> bool {
        let Some(i) = self.conns.iter().position(|c| matches(c.peer)) else {
            return false;
        };
        // Forgotten at once: its slot is free even before its task has closed it.
        let _ = self.conns.remove(i).switch.send(());
        self.evicted += 1;
        true
    }

    fn position(&self, id: u64) -> Option<usize> {
        self.conns.iter().position(|c| c.id == id)
    }
}

impl Guard {
    /// A request arrived: the connection is now the most recently active.
    pub fn active(&self) {
        let mut g = self.gate.lock();
        if let Some(i) = g.position(self.id) {
            let conn = g.conns.remove(i);
            g.conns.push(conn);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut g = self.gate.lock();
        if let Some(i) = g.position(self.id) {
            g.conns.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(last: u8) -> Peer {
        Peer::Tcp(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn evicts_the_least_recently_active_even_after_its_first_byte() {
        let gate = Gate::with(Limits {
            local: 1,
            tcp: 2,
            per_peer: 2,
        });
        let mut a = gate.admit(tcp(1)).expect("first");
        let b = gate.admit(tcp(2)).expect("second");
        // `a` answered a request since: `b` is now the least recently active.
        a.guard.active();
        let mut b = b;
        let c = gate.admit(tcp(3)).expect("third evicts b");
        assert!(c.evicting);
        assert_eq!(b.evicted.try_recv(), Ok(()));
        assert!(a.evicted.try_recv().is_err());
        drop(b);
        assert_eq!(gate.stats().open, 2, "an evicted slot is free at once");
        assert_eq!(gate.stats().evicted, 1);
    }

    #[test]
    fn tcp_never_takes_the_local_pool() {
        let gate = Gate::with(Limits {
            local: 1,
            tcp: 1,
            per_peer: 1,
        });
        let mut local = gate.admit(Peer::Local).expect("local");
        let _t: Vec<_> = (0..10).map(|i| gate.admit(tcp(i)).expect("tcp")).collect();
        assert!(local.evicted.try_recv().is_err(), "TCP evicted a local one");
        assert_eq!(gate.stats().open, 2);
    }

    #[test]
    fn a_peer_at_its_cap_evicts_its_own() {
        let gate = Gate::with(Limits {
            local: 1,
            tcp: 4,
            per_peer: 2,
        });
        let mut other = gate.admit(tcp(9)).expect("other peer");
        let mut mine: Vec<_> = (0..5).map(|_| gate.admit(tcp(1)).expect("mine")).collect();
        assert!(other.evicted.try_recv().is_err(), "another peer paid");
        let still_open = mine
            .iter_mut()
            .filter_map(|t| t.evicted.try_recv().err())
            .count();
        assert_eq!(still_open, 2);
        assert_eq!(gate.stats().open, 3);
    }

    #[test]
    fn no_tcp_slots_refuses_tcp_but_not_local() {
        let limits = Limits::from_nofile(24);
        assert_eq!((limits.local, limits.tcp), (LOCAL_MIN, 0));
        let gate = Gate::with(limits);
        assert!(gate.admit(tcp(1)).is_none());
        assert_eq!(gate.stats().refused, 1);
        let held: Vec<_> = (0..10)
            .map(|_| gate.admit(Peer::Local).expect("local"))
            .collect();
        assert_eq!(gate.stats().open, LOCAL_MIN);
        drop(held);
        assert_eq!(gate.stats().open, 0);
    }

    #[test]
    fn limits_follow_the_descriptor_limit() {
        assert_eq!(
            Limits::from_nofile(1024),
            Limits {
                local: 64,
                tcp: 928,
                per_peer: 232
            }
        );
        assert_eq!(Limits::from_nofile(u64::MAX).tcp, TCP_MAX);
        assert_eq!(Limits::from_nofile(0).tcp, 0);
        let l = Limits::from_nofile(64);
        assert_eq!((l.local, l.tcp, l.per_peer), (8, 24, 6));
    }
}
