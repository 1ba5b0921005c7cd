//! Reaping: collect every child that changed state, not only the main one.

use nix::errno::Errno;

use super::unsafe_ops::wait_any;
use crate::exit::{decode, WaitEvent};

/// One result of [`next`].
pub enum Reap {
    /// A child changed state (ended, stopped or continued).
    Child(i32, WaitEvent),
    /// Children remain, none has news.
    Pending,
    /// kai-init has no children left at all.
    Empty,
}

/// The next child with news, without blocking. Call it in a loop after every SIGCHLD
/// until it returns `Pending` or `Empty`: the kernel coalesces SIGCHLDs, so one signal may
/// stand for a thousand exits.
pub fn next() -> Reap {
    loop {
        match wait_any() {
            Ok(Some((pid, raw))) => return Reap::Child(pid, decode(raw)),
            Ok(None) => return Reap::Pending,
            Err(Errno::ECHILD) => return Reap::Empty,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                // Only EINVAL is documented besides these, and our flags are valid.
                tracing::error!("waitpid failed: {e}");
                return Reap::Pending;
            }
        }
    }
}

/// Direct children of `parent`, from /proc: the processes that, as subreaper, kai-init
/// inherited when their parent died, whatever their process group.
pub fn children_of(parent: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| parent_in_stat(&stat))
                == Some(parent)
        })
        .collect()
}

/// The PPid field of /proc/PID/stat; the command name in parentheses may itself
/// contain spaces and parentheses, so fields are counted after the last ')'.
fn parent_in_stat(stat: &str) -> Option<i32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_ppid_after_odd_names() {
        assert_eq!(super::parent_in_stat("12 (a) b) c) S 7 12 12 0"), Some(7));
        assert_eq!(super::parent_in_stat("garbage"), None);
    }
}
