//! JSON string literals, written by hand: the health+json documents and the JSON log
//! lines need only this one escaper, and serde_json would be a tenth of the binary.

use std::fmt::Write;

/// Appends `s` as a JSON string literal (RFC 8259 section 7): quotes, backslashes and
/// every control character escaped, DEL and the C1 controls too, so that no terminal
/// control sequence survives in a document a person may `cat`.
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let mut s = String::new();
        string(&mut s, "a\"b\\c\nd\u{1}\u{7f}\u{9b}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001\u007f\u009bé""#);
    }

    proptest::proptest! {
        /// A real parser reads back exactly what was escaped.
        #[test]
        fn round_trips_through_a_parser(s in ".*") {
            let mut out = String::new();
            string(&mut out, &s);
            let back: String = serde_json::from_str(&out).unwrap();
            proptest::prop_assert_eq!(back, s);
            proptest::prop_assert!(!out.chars().any(char::is_control));
        }
    }
}
