//! Environment variable names as a shell takes them (`[A-Za-z_][A-Za-z0-9_]*`), the one
//! rule `--file-env`'s list, `--expand-env`'s `${NAME}` and the `NAME_FILE` scan share.

/// A variable name as a shell takes it: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_name(b: &[u8]) -> bool {
    match b.split_first() {
        Some((first, rest)) => {
            (first.is_ascii_alphabetic() || *first == b'_')
                && rest.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        }
        None => false,
    }
}

/// The NAMEs of `--file-env=A,B` (commas; blanks around a name are ignored, a repeated
/// name counts once). An empty entry or one that is not a variable name is refused:
/// a typo must not silently leave a secret out.
pub fn parse_names(text: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    for name in text.split(',').map(str::trim) {
        if name.is_empty() {
            return Err("an empty name in the list (expected NAME,NAME,...)".into());
        }
        if !is_name(name.as_bytes()) {
            return Err(format!(
                "'{name}' is not a variable name (letters, digits and _, not starting with a digit)"
            ));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_parse_from_a_comma_separated_list() {
        assert_eq!(parse_names("DB_PASSWORD"), Ok(vec!["DB_PASSWORD".into()]));
        assert_eq!(
            parse_names(" A , _b1,A,c "),
            Ok(vec!["A".into(), "_b1".into(), "c".into()])
        );
        for (bad, why) in [
            ("", "empty name"),
            ("A,", "empty name"),
            ("A,,B", "empty name"),
            ("1A", "'1A' is not a variable name"),
            ("DB-PASSWORD", "'DB-PASSWORD' is not a variable name"),
            ("A=B", "'A=B' is not a variable name"),
            ("caf\u{e9}", "not a variable name"),
        ] {
            let e = parse_names(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    proptest! {
        /// Any text: a list or a refusal, never a panic; what is accepted are names, each
        /// once, and a list of valid names joined by commas reads back as itself.
        #[test]
        fn any_list_text_parses_or_is_refused(text in "[ -~]{0,40}") {
            if let Ok(names) = parse_names(&text) {
                prop_assert!(names.iter().all(|n| is_name(n.as_bytes())));
                let mut unique = names.clone();
                unique.sort();
                unique.dedup();
                prop_assert_eq!(unique.len(), names.len());
            }
        }

        #[test]
        fn valid_names_round_trip(names in proptest::collection::vec("[A-Za-z_][A-Za-z0-9_]{0,12}", 1..6)) {
            let mut unique: Vec<String> = Vec::new();
            for n in &names {
                if !unique.contains(n) {
                    unique.push(n.clone());
                }
            }
            prop_assert_eq!(parse_names(&names.join(",")), Ok(unique));
        }
    }
}
