//! The controlling terminal, for the laptop case (`kai-init -- npm run dev` in a shell):
//! the child's process group gets the terminal, so Ctrl-C and Ctrl-Z reach it exactly
//! once, straight from the kernel; kai-init only mirrors job control to its own shell.

use std::io::{stdin, IsTerminal};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{getpgrp, getpid, tcgetpgrp, tcsetpgrp, Pid};

/// Whether stdin is a terminal whose foreground group is kai-init's: only then does it
/// hand the terminal to the child (a background `kai-init ... &` must not steal it).
pub fn in_foreground() -> bool {
    let input = stdin();
    input.is_terminal() && tcgetpgrp(&input).ok() == Some(getpgrp())
}

/// The child was stopped by job control (Ctrl-Z, or a read of the terminal from the
/// background): stop kai-init too, so the shell sees its job stopped, taking the terminal
/// back first if the child's group holds it; on `fg`, hand the terminal back and continue
/// the child; on `bg`, continue it in the background. SIGTTOU is blocked in kai-init, so
/// tcsetpgrp from the background is allowed (tcsetpgrp(3)).
pub fn suspend_with(child_group: Pid) {
    let input = stdin();
    if tcgetpgrp(&input).ok() == Some(child_group) {
        let _ = tcsetpgrp(&input, getpgrp());
    }
    // As PID 1 the kernel ignores this, and the child is simply continued below.
    let _ = kill(getpid(), Signal::SIGSTOP);
    if tcgetpgrp(&input).ok() == Some(getpgrp()) {
        let _ = tcsetpgrp(&input, child_group);
    }
    let _ = killpg(child_group, Signal::SIGCONT);
}

/// Takes the terminal back after the child has gone, so kai-init's last log lines and
/// whoever runs next are not in a dead group's background; but only if the child's group
/// still holds it: after `bg` the shell has the terminal, and taking it would leave the
/// shell reading from the background (seen here: bash exited).
pub fn reclaim(child_group: Pid) {
    let input = stdin();
    if tcgetpgrp(&input).ok() == Some(child_group) {
        let _ = tcsetpgrp(&input, getpgrp());
    }
}
