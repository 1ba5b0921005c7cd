//! Time: wall-clock times as RFC 3339 text (UTC), for kai-init's JSON log lines and
//! health+json, and deadlines that saturate instead of overflowing.

use std::time::SystemTime;

/// How much of the second to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `2026-11-30T09:12:06Z`
    Seconds,
    /// `2026-11-30T09:12:06.123456Z`, as tracing-subscriber's JSON lines had it.
    Micros,
}

/// `t` in UTC; a time before 1970 shows as 1970. Days to a civil date by Howard Hinnant's
/// `civil_from_days`.
pub fn rfc3339(t: SystemTime, precision: Precision) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    match precision {
        Precision::Seconds => format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z"),
        Precision::Micros => format!(
            "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{:06}Z",
            since.subsec_micros()
        ),
    }
}

/// `now + d`, or a century from now when that overflows (tokio's own timer caps far
/// deadlines the same way): a deadline computation must never panic PID 1.
pub fn after(now: tokio::time::Instant, d: std::time::Duration) -> tokio::time::Instant {
    const CENTURY: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(d)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::{rfc3339, Precision};
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64, micros: u32) -> std::time::SystemTime {
        UNIX_EPOCH + Duration::new(secs, micros * 1000)
    }

    #[test]
    fn rfc3339_utc_at_the_edges_of_the_calendar() {
        let micros = |s, u| rfc3339(at(s, u), Precision::Micros);
        let secs = |s| rfc3339(at(s, 0), Precision::Seconds);
        assert_eq!(micros(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(secs(0), "1970-01-01T00:00:00Z");
        // `date -u -d @1796032500` = Mon Nov 30 09:55:00 UTC 2026
        assert_eq!(
            micros(1_796_032_500, 123_456),
            "2026-11-30T09:55:00.123456Z"
        );
        assert_eq!(secs(1_796_029_926), "2026-11-30T09:12:06Z");
        // A leap day, and the last second before a century year's March that is no leap.
        assert_eq!(secs(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(
            micros(4_107_542_399, 999_999),
            "2100-02-28T23:59:59.999999Z"
        );
        // Before the epoch: shown as the epoch, never a panic.
        assert_eq!(
            secs(0),
            rfc3339(UNIX_EPOCH - Duration::from_secs(5), Precision::Seconds)
        );
    }
}
