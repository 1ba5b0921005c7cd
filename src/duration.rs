//! Human durations for flags: `500ms`, `10s`, `1.5s`, `2m30s`, `1h`; a bare number means
//! seconds, as in `docker stop -t`. Pure.

use std::time::Duration;

pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration (expected e.g. 500ms, 10s, 2m)".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return seconds(secs, text);
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("invalid duration '{text}': missing unit after a number"))?;
        let unit_len = rest[num_len..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len() - num_len);
        let (num, unit) = (&rest[..num_len], &rest[num_len..num_len + unit_len]);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("invalid duration '{text}' (expected e.g. 500ms, 10s, 2m)"))?;
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => {
                return Err(format!(
                    "invalid duration '{text}': unknown unit '{unit}' (use ms, s, m or h)"
                ))
            }
        };
        total += value * scale;
        rest = &rest[num_len + unit_len..];
    }
    seconds(total, text)
}

fn seconds(secs: f64, text: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration '{text}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("2m30s"), Ok(Duration::from_secs(150)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("8"), Ok(Duration::from_secs(8)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "abc", "10x", "s", "-1s", "1..2s", "5 s s"] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
    }
}
