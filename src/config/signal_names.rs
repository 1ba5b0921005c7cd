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
    // `RTMIN+n` counts up and `RTMAX-n` down, n in plain digits (checked: any text may
    // arrive here, and `RTMIN+2147483647` must be an error, not an overflow).
    let rt = |base: i32, rest: &str, sign: &str| -> Option<i32> {
        let off = match rest.strip_prefix(sign) {
            None if rest.is_empty() => 0,
            Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n.parse().ok()?,
            _ => return None,
        };
        let n = if sign == "+" {
            base.checked_add(off)?
        } else {
            base.checked_sub(off)?
        };
        (RTMIN..=RTMAX).contains(&n).then_some(n)
    };
    let found = if let Some(rest) = name.strip_prefix("RTMIN") {
        rt(RTMIN, rest, "+")
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rt(RTMAX, rest, "-")
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

/// `sig` as --signal-map rewrites it (0: dropped).
pub fn mapped(signal_map: &[(i32, i32)], sig: i32) -> i32 {
    (signal_map.iter().find(|(from, _)| *from == sig)).map_or(sig, |(_, to)| *to)
}

/// Whether a signal, before COMMAND has started (a `--wait-for` or a `--pre` step), means
/// COMMAND must never start: TERM, INT, QUIT (nginx's STOPSIGNAL) or HUP, as received or as
/// `--signal-map` makes it, unless the map drops it (`TERM:0`: the user said TERM means
/// nothing). Each of these ends a process at its default action, which is what the
/// sender of one to a container expects before the application even exists.
pub fn ends_start(signal_map: &[(i32, i32)], sig: i32) -> bool {
    let to = mapped(signal_map, sig);
    let stops = |s: i32| [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGHUP].contains(&s);
    to != 0 && (stops(sig) || stops(to))
}

/// Whether a signal starts the stop: TERM or INT, as received or as mapped.
pub fn is_stop(sig: i32, mapped: i32) -> bool {
    [sig, mapped]
        .iter()
        .any(|s| *s == libc::SIGTERM || *s == libc::SIGINT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    #[test]
    fn real_time_offsets_count_the_right_way() {
        assert_eq!(parse("RTMAX-1", false), Ok(63));
        assert_eq!(parse("RTMIN+30", false), Ok(64));
        for bad in [
            "RTMAX+3",
            "RTMIN-3",
            "RTMIN+",
            "RTMIN+-1",
            "RTMIN++1",
            "RTMIN+2147483647",
        ] {
            assert!(parse(bad, false).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_text_is_a_result_not_a_panic(text in any::<String>(), zero in any::<bool>()) {
            if let Ok(n) = parse(&text, zero) {
                prop_assert!((0..=RTMAX).contains(&n) && (zero || n != 0));
            }
        }

        #[test]
        fn signal_shaped_text_never_panics(text in "(SIG|sig)?(RTMIN|RTMAX|TERM|[A-Z]{1,6})?[-+]?[0-9]{0,12}") {
            let _ = parse(&text, true);
        }

        #[test]
        fn every_signal_round_trips(sig in 1..=RTMAX, lower in any::<bool>()) {
            let named = name(sig);
            let text = if lower { named.to_ascii_lowercase() } else { named.clone() };
            prop_assert_eq!(parse(&text, false), Ok(sig), "{}", named);
            prop_assert_eq!(parse(&sig.to_string(), false), Ok(sig));
            prop_assert_eq!(parse(named.trim_start_matches("SIG"), false), Ok(sig));
        }

        #[test]
        fn numbers_outside_the_range_are_rejected(n in any::<i64>()) {
            let ok = (1..=i64::from(RTMAX)).contains(&n);
            prop_assert_eq!(parse(&n.to_string(), false).is_ok(), ok);
        }
    }
}
