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

/// The child was stopped from the terminal (Ctrl-Z): take the terminal back, stop
/// kai-init too so the shell sees its job stopped, and on `fg` hand the terminal back and
/// continue the child. SIGTTOU is blocked in kai-init, so tcsetpgrp from the background
/// is allowed (tcsetpgrp(3)).
pub fn suspend_with(child_group: Pid) {
    let input = stdin();
    let _ = tcsetpgrp(&input, getpgrp());
    // As PID 1 the kernel ignores this, and the child is simply continued below.
    let _ = kill(getpid(), Signal::SIGSTOP);
    if tcgetpgrp(&input).ok() == Some(getpgrp()) {
        let _ = tcsetpgrp(&input, child_group);
    }
    let _ = killpg(child_group, Signal::SIGCONT);
}

/// Takes the terminal back after the child has gone, so kai-init's last log lines and
/// whoever runs next are not in a dead group's background.
pub fn reclaim() {
    let _ = tcsetpgrp(stdin(), getpgrp());
}
