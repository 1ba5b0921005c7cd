//! Dropping root, in the only safe order: setgroups, then setgid, then setuid (after
//! setuid, kai-init could no longer change its groups; a bare setuid would keep root's
//! supplementary groups, the classic mistake).

use nix::errno::Errno;
use nix::unistd::{getgid, getuid, setgid, setgroups, setuid, Gid, Uid};

use crate::config::user::Identity;

/// Makes kai-init itself `id`, so the child and everything after start-up run without root.
pub fn drop_to(id: &Identity) -> Result<(), Errno> {
    if getuid() == Uid::from_raw(id.uid) && getgid() == Gid::from_raw(id.gid) && !getuid().is_root()
    {
        // Already that user (an image with USER set): nothing to drop, and a non-root
        // setgroups would fail with EPERM.
        tracing::debug!(uid = id.uid, "already running as the requested user");
        return Ok(());
    }
    let groups: Vec<Gid> = id.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&groups)?;
    setgid(Gid::from_raw(id.gid))?;
    setuid(Uid::from_raw(id.uid))?;
    // Paranoia, as gosu does: if root could be regained, the drop did not happen.
    if id.uid != 0 && setuid(Uid::from_raw(0)).is_ok() {
        return Err(Errno::EPERM);
    }
    Ok(())
}
