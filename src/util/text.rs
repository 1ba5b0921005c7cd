//! Text that comes from outside kai-init (the child's STATUS=, what a probe saw, a probe
//! command's name) made safe to show: in a terminal, a log line or an HTTP body it must
//! not move the cursor, change colours, ring the bell or start a new line. And an I/O
//! error as the short phrase every one-line message uses.

use std::borrow::Cow;
use std::fmt::{self, Write};

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

/// An I/O error as a short lower-case phrase for one-line messages: "is a directory", not
/// "Is a directory (os error 21)".
pub fn short(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or_default();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Bytes from outside shown in a one-line message: UTF-8 as it is, control characters
/// escaped (`\n`, `\u{1b}`: a name must not move the cursor or forge a log line), and
/// bytes that are not UTF-8 as `\xNN`.
pub struct Shown<'a>(pub &'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c.is_control() {
                    true => write!(f, "{}", c.escape_default())?,
                    false => write!(f, "{c}")?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_bytes_on_one_line() {
        assert_eq!(Shown(b"caf\xe9").to_string(), r"caf\xe9");
        assert_eq!(Shown("ü ✓".as_bytes()).to_string(), "ü ✓");
        assert_eq!(Shown(b"a\nb\x1b[31m\r").to_string(), r"a\nb\u{1b}[31m\r");
    }

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
        fn shown_bytes_have_no_control_characters(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let shown = Shown(&bytes).to_string();
            proptest::prop_assert!(!shown.chars().any(char::is_control), "{:?}", shown);
        }

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
