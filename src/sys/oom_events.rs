//! The kernel's OOM event source for the container's cgroup: a descriptor that becomes
//! readable when the OOM killer may have struck. cgroup v2: inotify on `memory.events`;
//! cgroup v1: an eventfd registered in `cgroup.event_control` for `memory.oom_control`
//! (Documentation/admin-guide/cgroup-v1/memory.rst, "OOM Control"). What happened is read
//! from the counter by `supervise::oom`; this file only says "look now".
//!
//! v1's `cgroup.event_control` is root's (mode 0200), so [`Source::subscribe`] must run
//! before the privilege drop.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use super::cgroup::Cgroup;

/// A subscription, still to be polled: opened as root, polled on the runtime later.
pub struct Source {
    fd: OwnedFd,
    /// v1: the oom_control file the registration names must stay open.
    _control: Option<std::fs::File>,
}

impl Source {
    /// Subscribes to `cgroup`'s OOM events.
    pub fn subscribe(cgroup: &Cgroup) -> nix::Result<Source> {
        use nix::sys::eventfd::{EfdFlags, EventFd};
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        if cgroup.is_v2() {
            let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
            ino.add_watch(&cgroup.oom_file(), AddWatchFlags::IN_MODIFY)?;
            let fd = ino.as_fd().try_clone_to_owned().map_err(io_errno)?;
            return Ok(Source { fd, _control: None });
        }
        let control = std::fs::File::open(cgroup.oom_file()).map_err(io_errno)?;
        let efd = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
        let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
        std::fs::write(cgroup.memory_dir().join("cgroup.event_control"), line).map_err(io_errno)?;
        let fd = efd.as_fd().try_clone_to_owned().map_err(io_errno)?;
        Ok(Source {
            fd,
            _control: Some(control),
        })
    }

    /// cgroup v1 only: an eventfd that fires when `memory.usage_in_bytes` crosses `bytes`
    /// (either way; Documentation/admin-guide/cgroup-v1/memory.rst, "Memory thresholds").
    /// v2 has no such threshold: there the caller checks at probes and scrapes.
    pub fn usage_threshold(cgroup: &Cgroup, bytes: u64) -> nix::Result<Source> {
        use nix::sys::eventfd::{EfdFlags, EventFd};
        if cgroup.is_v2() {
            return Err(nix::errno::Errno::ENOTSUP);
        }
        let usage = std::fs::File::open(cgroup.memory_dir().join("memory.usage_in_bytes"))
            .map_err(io_errno)?;
        let efd = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
        let line = format!("{} {} {bytes}", efd.as_raw_fd(), usage.as_raw_fd());
        std::fs::write(cgroup.memory_dir().join("cgroup.event_control"), line).map_err(io_errno)?;
        let fd = efd.as_fd().try_clone_to_owned().map_err(io_errno)?;
        Ok(Source {
            fd,
            _control: Some(usage),
        })
    }

    /// The source on the runtime (needs a tokio runtime with I/O enabled).
    pub fn poll(self) -> std::io::Result<Events> {
        Ok(Events {
            fd: super::unsafe_ops::async_readable(self.fd)?,
            _control: self._control,
        })
    }
}

/// A subscription the runtime polls.
pub struct Events {
    fd: AsyncFd<OwnedFd>,
    _control: Option<std::fs::File>,
}

impl Events {
    /// Resolves when the kernel says something changed; drained (an inotify queue or an
    /// eventfd counter), so the next call waits for the next event. An error means the
    /// source is gone for good.
    pub async fn next(&mut self) -> std::io::Result<()> {
        let mut ready = self.fd.readable().await?;
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(self.fd.get_ref().as_raw_fd(), &mut buf) {
                Ok(n) if n > 0 => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                _ => break,
            }
        }
        // EAGAIN (or end of data) ends the drain and clears readiness.
        ready.clear_ready();
        Ok(())
    }
}

#[cfg(test)]
impl Events {
    /// Writes the eventfd as the kernel would (a v1 source only): for tests of the watch.
    pub fn signal_for_test(&self) {
        nix::unistd::write(self.fd.get_ref(), &1u64.to_ne_bytes()).unwrap();
    }
}

fn io_errno(e: std::io::Error) -> nix::errno::Errno {
    nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}
