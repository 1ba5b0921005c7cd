//! Which abstract Unix socket is this container's kai-init, and the proof that the process
//! answering on it is (issue 8, item 13). Used by the server to pick the name it binds and
//! by `kai-init check` to pick the name it asks and to refuse an impostor.
//!
//! Abstract socket names live in the network namespace, which every container of a
//! Kubernetes pod shares (and `docker run --network container:X` too), so a fixed name
//! would be one name for several kai-inits, and anyone in the pod could take it first.
//! - The default name, `@kai-init`, stands for `@kai-init/<mount namespace inode>`: each
//!   container has a mount namespace of its own (with `shareProcessNamespace` the PID
//!   namespace is shared, the mount namespace is not), and `docker exec` / `kubectl exec`
//!   enter it, so `check` derives the same name the server bound.
//! - Whatever the name (default or given), `check` believes the server only after the
//!   kernel vouches for it: SO_PEERCRED names the process that listens, and that process
//!   must be in `check`'s own mount namespace. A server in a PID namespace `check` cannot
//!   see reports pid 0 and is refused too. A name alone proves nothing.
//!
//! The mount namespace is compared through `/proc/PID/ns/mnt` where that may be read
//! (same user, or CAP_SYS_PTRACE); a HEALTHCHECK that runs as an unprivileged USER may
//! not read root's, so it compares `/proc/PID/mountinfo` instead (readable by anyone):
//! mount IDs are unique among the kernel's live mounts and each mount belongs to exactly
//! one namespace, so two processes share a mount ID only if they share the namespace.

use std::fmt;
use std::io;
use std::os::fd::AsFd;

/// The name that stands for this container's own socket.
pub const DEFAULT: &str = "kai-init";

/// What a `--health-socket` / `KAI_INIT_HEALTH_SOCKET` value asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting<'a> {
    /// `off` (or empty): no socket.
    Off,
    /// `@kai-init`: this container's own name.
    Own,
    /// Any other name, used as given (without its optional `@`).
    Named(&'a str),
}

impl Setting<'_> {
    pub fn parse(text: &str) -> Setting<'_> {
        let text = text.trim();
        let name = text.strip_prefix('@').unwrap_or(text);
        if name.is_empty() || name.eq_ignore_ascii_case("off") {
            Setting::Off
        } else if name == DEFAULT {
            Setting::Own
        } else {
            Setting::Named(name)
        }
    }

    /// The abstract name (without `@`) to bind or connect to; `None` when off. Fails
    /// (closed) when the own name cannot be derived.
    pub fn name(self) -> io::Result<Option<String>> {
        Ok(match self {
            Setting::Off => None,
            Setting::Own => Some(format!("{DEFAULT}/{}", mount_ns("self")?)),
            Setting::Named(name) => Some(name.to_owned()),
        })
    }
}

/// The inode of `/proc/<who>/ns/mnt` (`mnt:[4026531840]`).
fn mount_ns(who: &str) -> io::Result<u64> {
    let link = std::fs::read_link(format!("/proc/{who}/ns/mnt"))?;
    link.to_str()
        .and_then(|l| l.strip_prefix("mnt:[")?.strip_suffix(']')?.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected mount namespace link {link:?}"),
            )
        })
}

/// Why the server on the socket is not believed to be this container's kai-init.
#[derive(Debug)]
pub enum Stranger {
    /// Its process is in a PID namespace `check` cannot see (SO_PEERCRED gave pid 0).
    Unseen,
    /// Its process `pid` is in another mount namespace: another container's.
    Elsewhere { pid: i32 },
    /// Who it is could not be established (fails closed).
    Unknown(io::Error),
}

impl fmt::Display for Stranger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stranger::Unseen => write!(
                f,
                "not this container's kai-init (its server is outside this PID namespace)"
            ),
            Stranger::Elsewhere { pid } => write!(
                f,
                "not this container's kai-init (its server, pid {pid}, is in another mount namespace)"
            ),
            Stranger::Unknown(e) => write!(
                f,
                "cannot tell whose server this is ({})",
                crate::util::text::short(e)
            ),
        }
    }
}

/// Checks that the process listening at the other end of `sock` shares this process's
/// mount namespace; returns its pid.
pub fn verify(sock: &impl AsFd) -> Result<i32, Stranger> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let cred = getsockopt(sock, PeerCredentials).map_err(|e| Stranger::Unknown(e.into()))?;
    let pid = cred.pid();
    if pid <= 0 {
        return Err(Stranger::Unseen);
    }
    match same_mount_ns(pid) {
        Ok(true) => Ok(pid),
        Ok(false) => Err(Stranger::Elsewhere { pid }),
        Err(e) => Err(Stranger::Unknown(e)),
    }
}

fn same_mount_ns(pid: i32) -> io::Result<bool> {
    match mount_ns(&pid.to_string()) {
        Ok(theirs) => Ok(theirs == mount_ns("self")?),
        // Another user's namespace links need ptrace access; mountinfo does not.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            let mine = mount_ids(&std::fs::read("/proc/self/mountinfo")?);
            let theirs = mount_ids(&std::fs::read(format!("/proc/{pid}/mountinfo"))?);
            Ok(theirs.iter().any(|id| mine.contains(id)))
        }
        Err(e) => Err(e),
    }
}

/// The mount IDs (first field of each line) of a mountinfo file.
fn mount_ids(mountinfo: &[u8]) -> Vec<u64> {
    mountinfo
        .split(|b| *b == b'\n')
        .filter_map(|line| {
            let id = line.split(|b| *b == b' ').next()?;
            std::str::from_utf8(id).ok()?.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_settings() {
        assert_eq!(Setting::parse("@kai-init"), Setting::Own);
        assert_eq!(Setting::parse("kai-init"), Setting::Own);
        assert_eq!(Setting::parse(" off "), Setting::Off);
        assert_eq!(Setting::parse(""), Setting::Off);
        assert_eq!(Setting::parse("@app"), Setting::Named("app"));
        let own = Setting::Own.name().unwrap().unwrap();
        assert!(own.starts_with("kai-init/4"), "{own}");
    }

    #[test]
    fn reads_mount_ids() {
        let ids = mount_ids(b"23 27 0:21 / /proc rw - proc proc rw\n22 27 0:22 / /sys rw\n\n");
        assert_eq!(ids, [23, 22]);
    }
}
