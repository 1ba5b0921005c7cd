//! Signal names and numbers: parsing `TERM`, `SIGTERM`, `15` or `RTMIN+3`, and naming a
//! number for logs and metrics. Pure; real-time signals are plain numbers here because
//! nix's `Signal` enum cannot hold them.

const NAMES: [(&str, i32); 31] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// The kernel's real-time range; libc reserves the first few, which is why
/// `sigprocmask` quietly leaves them alone.
pub const RTMIN: i32 = 34;
pub const RTMAX: i32 = 64;

/// Parses a signal given by name (with or without `SIG`, any case), by number, or as
/// `RTMIN+n` / `RTMAX-n`. `allow_zero` admits 0, which `--signal-map` uses to drop a signal.
pub fn parse(text: &str, allow_zero: bool) -> Result<i32, String> {
    let upper = text.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Ok(n) = name.parse::<i32>() {
        return match n {
            0 if allow_zero => Ok(0),
            1..=RTMAX => Ok(n),
            _ => Err(format!("signal number {n} is out of range 1-{RTMAX}")),
        };
    }
    if let Some((_, n)) = NAMES.iter().find(|(s, _)| *s == name) {
        return Ok(*n);
    }
    let rt = |base: i32, rest: &str, sign: i32| -> Option<i32> {
        let off = if rest.is_empty() {
            0
        } else {
            rest.parse::<i32>().ok()?
        };
        let n = base + sign * off;
        (RTMIN..=RTMAX).contains(&n).then_some(n)
    };
    let found = if let Some(rest) = name.strip_prefix("RTMIN") {
        rt(RTMIN, rest.trim_start_matches('+'), 1)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rt(RTMAX, rest.trim_start_matches('-'), -1)
    } else {
        None
    };
    found.ok_or_else(|| format!("unknown signal '{text}'"))
}

/// `SIGTERM`, `SIGRTMIN+3`, or the bare number when nothing fits.
pub fn name(sig: i32) -> String {
    match NAMES.iter().find(|(_, n)| *n == sig) {
        Some((s, _)) => format!("SIG{s}"),
        None if (RTMIN..=RTMAX).contains(&sig) => format!("SIGRTMIN+{}", sig - RTMIN),
        None => sig.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        assert_eq!(parse("TERM", false), Ok(15));
        assert_eq!(parse("sigterm", false), Ok(15));
        assert_eq!(parse("SIGQUIT", false), Ok(3));
        assert_eq!(parse("10", false), Ok(10));
        assert_eq!(parse("RTMIN+2", false), Ok(36));
        assert_eq!(parse("SIGRTMAX", false), Ok(64));
        assert_eq!(parse("0", true), Ok(0));
    }

    #[test]
    fn rejects_nonsense() {
        assert!(parse("0", false).is_err());
        assert!(parse("TERMINATE", false).is_err());
        assert!(parse("65", true).is_err());
        assert!(parse("RTMIN+40", false).is_err());
        assert!(parse("", false).is_err());
    }

    #[test]
    fn names_numbers() {
        assert_eq!(name(15), "SIGTERM");
        assert_eq!(name(36), "SIGRTMIN+2");
    }
}
