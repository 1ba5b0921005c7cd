//! The caller's working directory, which kai-init leaves once the main child has started
//! (issue 17, item 16): a process's cwd pins the directory's mount, so a kai-init that
//! stayed would hold the volume the container started in for its whole life (dumb-init
//! changes to `/` too). Everything started later (`exec:` probes) and every relative path
//! used later (a `file:` probe) reaches the directory again by its path. Never decides
//! anything else; never holds the directory open.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tracing::debug;

/// The directory kai-init left, by path; set once, when it leaves.
static LEFT: OnceLock<CString> = OnceLock::new();

/// Changes to `/` after the main child has started (it inherited the directory at the
/// spawn), but only when the directory can be reached again by its path, as the user
/// kai-init now runs as: what `exec:` probes will need. Otherwise (the path no longer
/// names it: deleted, renamed, mounted over; or that user cannot search it, say `/root`
/// under `--user`) kai-init stays, as it always did, rather than break the probes.
pub fn leave() {
    let Ok(dir) = std::env::current_dir() else {
        debug!("the working directory has no path; staying in it");
        return;
    };
    if dir == Path::new("/") {
        return;
    }
    // Both stats run as the user kai-init now is, and between them they need what a
    // spawn's chdir(path) will: search permission on every directory along the path (the
    // stat by path) and on the directory itself (the stat of ".", whose lookup needs it).
    // So a directory that user cannot come back to never compares equal here.
    let same = match (std::fs::metadata(&dir), std::fs::metadata(".")) {
        (Ok(by_path), Ok(here)) => by_path.dev() == here.dev() && by_path.ino() == here.ino(),
        _ => false,
    };
    let Ok(path) = CString::new(dir.as_os_str().as_bytes()) else {
        return;
    };
    if !same {
        debug!(dir = %dir.display(), "the working directory cannot be reached again by its path; staying in it");
        return;
    }
    match nix::unistd::chdir("/") {
        Ok(()) => {
            let _ = LEFT.set(path);
            debug!(dir = %dir.display(), "left the working directory for /; probes still start there");
        }
        Err(e) => debug!("cannot change to /: {e}; staying in the working directory"),
    }
}

/// The directory kai-init left, for a spawn to change into (None: kai-init is still in it,
/// and a child inherits it).
pub fn left() -> Option<&'static CStr> {
    LEFT.get().map(CString::as_c_str)
}

/// `path` as kai-init would have resolved it in the caller's directory.
/// (`join` keeps an absolute `path` as it is.)
pub fn resolve(path: &str) -> PathBuf {
    match left() {
        Some(dir) => Path::new(std::ffi::OsStr::from_bytes(dir.to_bytes())).join(path),
        None => PathBuf::from(path),
    }
}
