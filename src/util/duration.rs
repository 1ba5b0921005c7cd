//! Human durations for flags: `500ms`, `10s`, `1.5s`, `2m30s`, `1h`; a bare number means
//! seconds, as in `docker stop -t`. Pure.
//!
//! The grammar is Go's `time.ParseDuration` without signs (Docker's and Kubernetes' tools
//! speak it), plus the bare number and the `sec`/`min` spellings: one or more
//! `NUMBER UNIT` segments, where NUMBER is digits with at most one `.` (`1.5`, `.5`, `5.`)
//! and UNIT is `ns`, `us`/`µs`, `ms`, `s`/`sec`, `m`/`min` or `h`. No exponent, sign, `inf`
//! or `NaN`: the arithmetic is exact integer nanoseconds, so digits past the nanosecond
//! are dropped and nothing rounds.
//!
//! Every duration is at most [`MAX`], one day. kai-init adds these durations to the clock
//! to make deadlines (`Instant + Duration` panics on overflow, and `1e19` seconds did),
//! and no wait of a container's init is meant to last longer: a stop timeout, a drain
//! delay or a probe interval of more than a day is a typo (`8000000` for `8s`), and a
//! model that takes longer than that to load wants a startup probe, not a longer delay.
//! A day keeps every deadline far from any clock's limit however long kai-init runs.

use std::time::Duration;

/// The longest duration any flag accepts: one day.
pub const MAX: Duration = Duration::from_secs(24 * 60 * 60);

const NANOS_PER_SEC: u128 = 1_000_000_000;
/// Fraction digits read; more cannot change a value of whole nanoseconds (an hour has
/// 3.6e12 of them, so 10^-18 hours is far below one).
const FRACTION_DIGITS: usize = 18;

pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration (expected e.g. 500ms, 10s, 2m)".into());
    }
    let invalid = || format!("invalid duration '{t}' (expected e.g. 500ms, 10s, 2m)");
    let max = MAX.as_nanos();
    let too_long = || {
        format!(
            "duration '{t}' is longer than the maximum of {}",
            format(MAX)
        )
    };
    let mut total: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let unit_len = rest[num_len..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len() - num_len);
        let (num, unit) = (&rest[..num_len], &rest[num_len..num_len + unit_len]);
        let per_unit: u128 = match unit {
            // A bare number is seconds, but only as the whole text: `2m30` is a mistake.
            "" if num_len == t.len() => NANOS_PER_SEC,
            "" => {
                return Err(format!(
                    "invalid duration '{t}': missing unit after a number"
                ))
            }
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" | "sec" => NANOS_PER_SEC,
            "m" | "min" => 60 * NANOS_PER_SEC,
            "h" => 3600 * NANOS_PER_SEC,
            _ if num.is_empty() => return Err(invalid()),
            _ => {
                return Err(format!(
                    "invalid duration '{t}': unknown unit '{unit}' (use ms, s, m or h)"
                ))
            }
        };
        let (whole, fraction) = num.split_once('.').unwrap_or((num, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(invalid());
        }
        // Whole units: any value above the maximum stops the count before it can overflow.
        let mut nanos: u128 = 0;
        for d in whole.bytes() {
            nanos = nanos * 10 + u128::from(d - b'0');
            if nanos > max {
                return Err(too_long());
            }
        }
        nanos *= per_unit;
        // The fraction, truncated to whole nanoseconds.
        let digits = &fraction.as_bytes()[..fraction.len().min(FRACTION_DIGITS)];
        let (mut value, mut scale) = (0u128, 1u128);
        for d in digits {
            value = value * 10 + u128::from(d - b'0');
            scale *= 10;
        }
        total += nanos + value * per_unit / scale;
        if total > max {
            return Err(too_long());
        }
        rest = &rest[num_len + unit_len..];
    }
    // At most MAX, so it fits in a u64 of nanoseconds.
    Ok(Duration::from_nanos(total as u64))
}

/// The shortest text [`parse`] reads back as exactly `d`: `1h2m3.5s`, `250ms`, `0s`.
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s, nanos) = (secs / 3600, secs / 60 % 60, secs % 60, d.subsec_nanos());
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    match (s, nanos) {
        (0, 0) if !out.is_empty() => {}
        (_, 0) => out += &format!("{s}s"),
        (0, n) if out.is_empty() && n % 1_000_000 == 0 => out += &format!("{}ms", n / 1_000_000),
        (_, n) => {
            let fraction = format!("{n:09}");
            out += &format!("{s}.{}s", fraction.trim_end_matches('0'));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("2m30s"), Ok(Duration::from_secs(150)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("8"), Ok(Duration::from_secs(8)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("24h"), Ok(MAX));
        assert_eq!(
            parse("0.1s"),
            Ok(Duration::from_millis(100)),
            "exact, no f64"
        );
        assert_eq!(
            parse("1.0000000019s"),
            Ok(Duration::from_nanos(1_000_000_001))
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "abc", "10x", "s", "-1s", "+1s", "1..2s", "5 s s", "2m30", ".", ".s", "1e3", "nan",
            "inf", "-0", "1_000s",
        ] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn rejects_absurd_lengths() {
        for long in [
            "1e19",
            "10000000000000000000",
            "24h1ns",
            "86401",
            "1441m",
            "99999999999999999999999999999999999999999999h",
            "23h60m1s",
        ] {
            assert!(parse(long).is_err(), "{long} should fail");
        }
        assert!(parse("86401").unwrap_err().contains("maximum of 24h"));
    }

    #[test]
    fn formats_shortest() {
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_secs(1)), "1s");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(format(Duration::from_secs(3600)), "1h");
        assert_eq!(format(Duration::from_nanos(1)), "0.000000001s");
    }

    proptest! {
        #[test]
        fn any_text_is_a_result_not_a_panic(text in any::<String>()) {
            if let Ok(d) = parse(&text) {
                prop_assert!(d <= MAX);
            }
        }

        #[test]
        fn grammar_shaped_text_never_panics(text in "[0-9.]{0,30}(ns|us|µs|ms|s|sec|m|min|h|x|)([0-9.]{0,5}(s|m|h))?") {
            if let Ok(d) = parse(&text) {
                prop_assert!(d <= MAX);
            }
        }

        #[test]
        fn formatting_round_trips(nanos in 0..=MAX.as_nanos() as u64) {
            let d = Duration::from_nanos(nanos);
            prop_assert_eq!(parse(&format(d)), Ok(d));
        }

        #[test]
        fn segments_add_up(h in 0u64..24, m in 0u64..60, s in 0u64..60, ms in 0u64..1000) {
            let want = Duration::from_millis(((h * 60 + m) * 60 + s) * 1000 + ms);
            prop_assert_eq!(parse(&format!("{h}h{m}m{s}s{ms}ms")), Ok(want));
        }

        #[test]
        fn whole_seconds_above_the_maximum_are_rejected(secs in MAX.as_secs() + 1..=u64::MAX) {
            prop_assert!(parse(&secs.to_string()).is_err());
            let (s, ms) = (format!("{secs}s"), format!("{}ms", u128::from(secs) * 1000));
            prop_assert!(parse(&s).is_err());
            prop_assert!(parse(&ms).is_err());
        }
    }
}
