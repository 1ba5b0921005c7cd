//! `--expand-env`: `${NAME}` and `${NAME:-default}` in COMMAND's arguments and `--pre`
//! words, from the child's final environment. `$$` is a literal `$`. Everything else stays
//! exactly as written: a `$NAME` without braces, a lone `$`, and any `${` that does not
//! begin `${NAME}` or `${NAME:-default}` with NAME a variable name (`${a.b}` in a
//! JavaScript template, `${HOME%/}` for a shell, an unclosed `${`), so a program's own `$`
//! syntax survives (issue 17, item 14). The default is taken as written (no expansion
//! inside it) when NAME is unset or empty, as in sh. Works on bytes: arguments need not be
//! UTF-8. No I/O.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// `${NAME}` with NAME unset and no default.
    Unset(String),
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpandError::Unset(name) => write!(
                f,
                "${{{name}}} is not set (give a default: ${{{name}:-...}})"
            ),
        }
    }
}

/// `text` with every `${NAME}` and `${NAME:-default}` replaced from `lookup` and every
/// `$$` made `$`; any other byte, including a `${` that begins neither, is copied.
pub fn expand(
    text: &[u8],
    lookup: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<Vec<u8>, ExpandError> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match (text[i], text.get(i + 1)) {
            (b'$', Some(b'$')) => {
                out.push(b'$');
                i += 2;
            }
            (b'$', Some(b'{')) => match reference(&text[i + 2..]) {
                Some((name, default, len)) => {
                    // A name is ASCII, so this is exact.
                    let name = String::from_utf8_lossy(name);
                    match (lookup(&name), default) {
                        (Some(v), Some(d)) if v.is_empty() => out.extend_from_slice(d),
                        (Some(v), _) => out.extend_from_slice(&v),
                        (None, Some(d)) => out.extend_from_slice(d),
                        (None, None) => return Err(ExpandError::Unset(name.into_owned())),
                    }
                    i += 2 + len;
                }
                // Not ours: the `${` is copied and the text after it is read as usual.
                None => {
                    out.extend_from_slice(b"${");
                    i += 2;
                }
            },
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// A `${NAME}` or `${NAME:-default}`: the name, the default, and how many bytes after the
/// `${` it takes, its `}` included.
type Reference<'a> = (&'a [u8], Option<&'a [u8]>, usize);

/// `rest` (the text after `${`) as `NAME}` or `NAME:-default}`. `None` for anything else,
/// which the caller leaves as written.
fn reference(rest: &[u8]) -> Option<Reference<'_>> {
    let end = rest.iter().position(|b| *b == b'}')?;
    let inner = &rest[..end];
    let (name, default) = match inner.windows(2).position(|w| w == b":-") {
        Some(at) => (&inner[..at], Some(&inner[at + 2..])),
        None => (inner, None),
    };
    crate::config::env_names::is_name(name).then_some((name, default, end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(name: &str) -> Option<Vec<u8>> {
        match name {
            "PORT" => Some(b"3000".to_vec()),
            "EMPTY" => Some(Vec::new()),
            _ => None,
        }
    }

    fn x(text: &str) -> Result<String, ExpandError> {
        expand(text.as_bytes(), &env).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn expands_braced_names_only() {
        assert_eq!(x("--port=${PORT}"), Ok("--port=3000".into()));
        assert_eq!(x("${NOPE:-8080}/${PORT:-1}"), Ok("8080/3000".into()));
        assert_eq!(x("${EMPTY:-d}|${EMPTY}|"), Ok("d||".into()));
        assert_eq!(x("$PORT $$PORT $$ $ a$"), Ok("$PORT $PORT $ $ a$".into()));
        assert_eq!(x("${NOPE:-a:-b}"), Ok("a:-b".into()));
        assert_eq!(
            x("${NOPE:-${PORT}"),
            Ok("${PORT".into()),
            "a default is taken as written"
        );
        assert_eq!(x("${NOPE}"), Err(ExpandError::Unset("NOPE".into())));
    }

    /// Issue 17, item 14: what is not `${NAME}` or `${NAME:-default}` is another
    /// program's syntax, and reaches it byte for byte.
    #[test]
    fn any_other_brace_is_left_as_written() {
        for text in [
            "console.log(`${a.b}`)",
            "${HOME%/}",
            "${1}",
            "${}",
            "${A-b}",
            "${#PORT}",
            "${PORT",
            "${",
            "$",
            "a ${x.y} b",
            "${NOPE:=v}",
        ] {
            assert_eq!(x(text), Ok(text.into()), "{text}");
        }
        // A reference after one that is not ours is still expanded.
        assert_eq!(x("${a.b} ${PORT}"), Ok("${a.b} 3000".into()));
        assert_eq!(x("${a.${PORT}}"), Ok("${a.3000}".into()));
        // `$$` is `$` everywhere: the way to write a literal `${NAME}`.
        assert_eq!(x("$${PORT} ${a$$b}"), Ok("${PORT} ${a$b}".into()));
    }

    proptest! {
        #[test]
        fn any_bytes_are_a_result_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = expand(&bytes, &env);
        }

        /// Text in which no `${` begins a name followed by `}` or `:-`, and with no `$$`,
        /// comes back byte for byte.
        #[test]
        fn text_without_a_reference_is_unchanged(text in "([^$]|\\$[^${]|\\$\\{[^A-Za-z_$}]){0,20}") {
            prop_assert_eq!(x(&text), Ok(text.clone()));
        }

        #[test]
        fn text_without_a_dollar_is_unchanged(text in "[^$]{0,40}") {
            prop_assert_eq!(x(&text), Ok(text.clone()));
        }

        #[test]
        fn doubled_dollars_are_literal(text in "[^$]{0,20}") {
            // Escaping every `$` of any text gives the text back.
            let s = format!("{text}$${{PORT}}$$");
            prop_assert_eq!(x(&s), Ok(format!("{text}${{PORT}}$")));
        }

        #[test]
        fn a_set_value_is_spliced_in(pre in "[^$]{0,10}", value in "[ -~]{0,10}", post in "[^$]{0,10}") {
            let lookup = |n: &str| (n == "V").then(|| value.clone().into_bytes());
            let got = expand(format!("{pre}${{V}}{post}").as_bytes(), &lookup).unwrap();
            prop_assert_eq!(got, format!("{pre}{value}{post}").into_bytes());
        }
    }
}
