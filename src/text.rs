//! Text that comes from outside kai-init (the child's STATUS=, what a probe saw, a probe
//! command's name) made safe to show: in a terminal, a log line or an HTTP body it must
//! not move the cursor, change colours, ring the bell or start a new line.

use std::borrow::Cow;
use std::fmt::Write;

/// `s` with every control character (C0, DEL, C1) and every bidirectional override
/// written as a visible escape: ESC becomes `\x1b`, U+009B `\u{9b}`. A backslash stays
/// as it is: this is for people to read, not a format to parse back.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if hidden(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Characters a terminal acts on or that reorder what is shown (Trojan Source, CVE-2021-42574).
fn hidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_acts_on() {
        assert_eq!(printable("plain é"), "plain é");
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
        assert_eq!(
            printable("\u{1b}[31mred\r\u{7}\0\u{7f}\u{9b}\u{202e}\n\t"),
            "\\x1b[31mred\\x0d\\x07\\x00\\x7f\\u{9b}\\u{202e}\\x0a\\x09"
        );
    }

    proptest::proptest! {
        #[test]
        fn nothing_hidden_survives(s in ".*") {
            let out = printable(&s);
            proptest::prop_assert!(!out.chars().any(hidden), "{:?}", out);
            if !s.chars().any(hidden) {
                proptest::prop_assert_eq!(out.as_ref(), s.as_str());
            }
        }
    }
}
