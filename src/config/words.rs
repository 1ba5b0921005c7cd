//! Shell-like word splitting for `--pre` steps and `exec:` probes, and splitting
//! `KAI_INIT_PRE` into steps at unquoted `;`; [`quote`] writes a word back so that it
//! splits to itself. Only what a command line in an `ENV` line needs: blanks separate
//! words, '...' is literal, "..." keeps blanks and takes `\"`, `\\`, `\$` and `` \` ``
//! as escapes (any other backslash stays, as in sh), and outside quotes a backslash makes
//! the next character literal. Nothing else: no globbing, no operators, no expansion, so
//! `sh -c 'echo one >> /tmp/log'` is three words. No I/O.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordsError {
    UnterminatedSingle,
    UnterminatedDouble,
    TrailingBackslash,
    Empty,
}

impl fmt::Display for WordsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WordsError::UnterminatedSingle => "a single quote is not closed",
            WordsError::UnterminatedDouble => "a double quote is not closed",
            WordsError::TrailingBackslash => "it ends with a backslash",
            WordsError::Empty => "no command in it",
        })
    }
}

/// The words of one command line; at least one.
pub fn split(text: &str) -> Result<Vec<String>, WordsError> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_ascii_whitespace() => {
                words.extend(word.take());
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(WordsError::UnterminatedSingle),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(WordsError::UnterminatedDouble),
                        },
                        Some(c) => w.push(c),
                        None => return Err(WordsError::UnterminatedDouble),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(WordsError::TrailingBackslash),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    match words.is_empty() {
        true => Err(WordsError::Empty),
        false => Ok(words),
    }
}

/// `word` as [`split`] (and [`steps`]) read it back: as it is when nothing in it is special, else in
/// single quotes, or in double quotes (with `"` and `\` escaped) when it holds a `'`.
pub fn quote(word: &str) -> std::borrow::Cow<'_, str> {
    // `;` too, though `split` takes it as it is: the text then also stays one step.
    let special = |c: char| c.is_ascii_whitespace() || matches!(c, '\'' | '"' | '\\' | ';');
    if !word.is_empty() && !word.contains(special) {
        return std::borrow::Cow::Borrowed(word);
    }
    if !word.contains('\'') {
        return format!("'{word}'").into();
    }
    let mut q = String::with_capacity(word.len() + 4);
    q.push('"');
    for c in word.chars() {
        if matches!(c, '"' | '\\') {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q.into()
}

/// `KAI_INIT_PRE`'s value cut into steps at each `;` or newline outside quotes and not
/// after a backslash (a Kubernetes YAML block scalar writes one step per line); quotes and
/// backslashes stay for [`split`]. Blank steps are dropped (a trailing `;` is harmless).
pub fn steps(text: &[u8]) -> Vec<Vec<u8>> {
    #[derive(PartialEq)]
    enum In {
        Plain,
        Single,
        Double,
    }
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut state = In::Plain;
    let mut bytes = text.iter().copied();
    while let Some(b) = bytes.next() {
        match (&state, b) {
            (In::Plain, b';' | b'\n') => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            (In::Plain | In::Double, b'\\') => {
                cur.push(b);
                cur.extend(bytes.next());
                continue;
            }
            (In::Plain, b'\'') => state = In::Single,
            (In::Plain, b'"') => state = In::Double,
            (In::Single, b'\'') | (In::Double, b'"') => state = In::Plain,
            _ => {}
        }
        cur.push(b);
    }
    out.push(cur);
    out.retain(|s| !s.iter().all(u8::is_ascii_whitespace));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn w(text: &str) -> Vec<String> {
        split(text).unwrap()
    }

    #[test]
    fn splits_like_sh() {
        assert_eq!(
            w("sh -c 'echo one >> /tmp/log'"),
            ["sh", "-c", "echo one >> /tmp/log"]
        );
        assert_eq!(w("  a\tb  "), ["a", "b"]);
        assert_eq!(
            w(r#"echo "a \"b\" \$x \n" c"#),
            ["echo", r#"a "b" $x \n"#, "c"]
        );
        assert_eq!(w(r"a\ b \'c"), ["a b", "'c"]);
        assert_eq!(w("x'' \"\"y ''"), ["x", "y", ""]);
        assert_eq!(w("it'''s'"), ["its"]);
        assert_eq!(split("'open"), Err(WordsError::UnterminatedSingle));
        assert_eq!(split("\"open"), Err(WordsError::UnterminatedDouble));
        assert_eq!(split("end\\"), Err(WordsError::TrailingBackslash));
        assert_eq!(split("  "), Err(WordsError::Empty));
    }

    #[test]
    fn steps_split_at_unquoted_semicolons() {
        let s = |t: &str| -> Vec<String> {
            steps(t.as_bytes())
                .into_iter()
                .map(|v| String::from_utf8(v).unwrap())
                .collect()
        };
        assert_eq!(s("a 1; b 2;"), ["a 1", " b 2"]);
        assert_eq!(s("sh -c 'x; y'; z"), ["sh -c 'x; y'", " z"]);
        assert_eq!(s(r#"echo "a;b" c\;d"#), [r#"echo "a;b" c\;d"#]);
        assert_eq!(s(" ; ;"), Vec::<String>::new());
        // One step per line, as a YAML block scalar writes them; a quoted newline stays.
        assert_eq!(s("echo one\necho two\n"), ["echo one", "echo two"]);
        assert_eq!(s("sh -c 'a\nb'\nc"), ["sh -c 'a\nb'", "c"]);
    }

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(quote("plain/word=1"), "plain/word=1");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("two words"), "'two words'");
        assert_eq!(quote("a;b"), "'a;b'");
        assert_eq!(quote(r#"say "hi""#), r#"'say "hi"'"#);
        assert_eq!(quote(r#"it's a \ "q""#), r#""it's a \\ \"q\"""#);
    }

    proptest! {
        #[test]
        fn any_words_quote_and_split_back(words in proptest::collection::vec(any::<String>(), 1..6)) {
            let line: Vec<String> = words.iter().map(|w| quote(w).into_owned()).collect();
            prop_assert_eq!(split(&line.join(" ")), Ok(words));
        }

        #[test]
        fn any_text_is_a_result_not_a_panic(text in any::<String>()) {
            if let Ok(words) = split(&text) {
                prop_assert!(!words.is_empty());
            }
            let _ = steps(text.as_bytes());
        }

        #[test]
        fn quoted_words_come_back_as_they_were(words in proptest::collection::vec("[ -~]{0,12}", 1..6)) {
            let line: Vec<String> = words.iter().map(|w| quote(w).into_owned()).collect();
            prop_assert_eq!(split(&line.join(" ")), Ok(words.clone()));
            // One step, however many `;` the quoted words hold.
            let joined = line.join(" ");
            let one = steps(joined.as_bytes());
            prop_assert!(one.len() <= 1);
            if let Some(step) = one.first() {
                prop_assert_eq!(split(std::str::from_utf8(step).unwrap()), Ok(words.clone()));
            }
        }

        #[test]
        fn steps_keep_their_words(lines in proptest::collection::vec("[a-z]{1,6}( [a-z]{1,6}){0,3}", 1..5)) {
            let joined = lines.join(";");
            let got: Vec<Vec<String>> = steps(joined.as_bytes()).iter()
                .map(|s| split(std::str::from_utf8(s).unwrap()).unwrap()).collect();
            let want: Vec<Vec<String>> = lines.iter().map(|l| split(l).unwrap()).collect();
            prop_assert_eq!(got, want);
        }
    }
}
