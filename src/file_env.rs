//! `--file-env`: the docker-library `*_FILE` convention. Every variable `NAME_FILE=PATH`
//! becomes `NAME` = the file's content with one trailing newline removed, and `NAME_FILE`
//! leaves the child's environment. kai-init reads the files while still root, so a
//! root-only secret (0400, a Kubernetes secret volume) reaches an app that runs as a user.
//!
//! Fails closed: `NAME` already set, a file that cannot be read, or one over [`LIMIT`]
//! stops start-up (125) with a message naming the variable and path, never the content.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The largest variable a program can be given: Linux's MAX_ARG_STRLEN (32 pages of
/// 4 KiB), counting `NAME=`, the value and its NUL. A longer one makes exec fail with
/// E2BIG, which would read as COMMAND's fault (126): refuse it here, naming it.
pub const LIMIT: u64 = 128 * 1024;

#[derive(Debug)]
pub enum FileEnvError {
    /// Both `NAME` and `NAME_FILE` are set: which one wins would be a guess.
    Both {
        name: String,
    },
    /// `NAME_FILE` is not a valid variable name (not ASCII letters, digits, `_`).
    BadName {
        var: String,
    },
    Read {
        var: String,
        path: String,
        err: std::io::Error,
    },
    TooBig {
        var: String,
        path: String,
    },
}

impl fmt::Display for FileEnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileEnvError::Both { name } => write!(f, "both {name} and {name}_FILE are set"),
            FileEnvError::BadName { var } => write!(f, "'{var}' is not a variable name"),
            FileEnvError::Read { var, path, err } => {
                write!(
                    f,
                    "cannot read {path} (from {var}): {}",
                    crate::http::short(err)
                )
            }
            FileEnvError::TooBig { var, path } => {
                write!(
                    f,
                    "{path} (from {var}) is over the {} KiB limit",
                    LIMIT / 1024
                )
            }
        }
    }
}

/// Reads at most [`LIMIT`] + 1 bytes of `path`.
pub fn read_limited(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    std::fs::File::open(path)?
        .take(LIMIT + 1)
        .read_to_end(&mut data)?;
    Ok(data)
}

/// What to set (`Some`) and remove (`None`) in the child's environment, from `vars`
/// (kai-init's own environment), with `read` reading a file (at most LIMIT + 1 bytes).
/// Names are leaked to `&'static str`: done once at start-up, for a handful of variables,
/// and the spawner's environment list takes static names.
pub fn plan(
    vars: &[(OsString, OsString)],
    read: impl Fn(&std::path::Path) -> std::io::Result<Vec<u8>>,
) -> Result<Vec<(&'static str, Option<OsString>)>, FileEnvError> {
    let mut out = Vec::new();
    for (key, value) in vars {
        let Some(name) = key.as_bytes().strip_suffix(b"_FILE") else {
            continue;
        };
        let var = String::from_utf8_lossy(key.as_bytes()).into_owned();
        let valid =
            |b: &[u8]| !b.is_empty() && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if !valid(name) {
            return Err(FileEnvError::BadName { var });
        }
        let name = String::from_utf8_lossy(name).into_owned();
        if vars.iter().any(|(k, _)| k.as_bytes() == name.as_bytes()) {
            return Err(FileEnvError::Both { name });
        }
        let path = std::path::Path::new(value);
        let shown = crate::error::Shown(value.as_bytes()).to_string();
        let mut data = read(path).map_err(|err| FileEnvError::Read {
            var: var.clone(),
            path: shown.clone(),
            err,
        })?;
        if data.last() == Some(&b'\n') {
            data.pop();
        }
        if (name.len() + data.len() + 2) as u64 > LIMIT {
            return Err(FileEnvError::TooBig { var, path: shown });
        }
        out.push((leak(name), Some(OsString::from_vec(data))));
        out.push((leak(var), None));
    }
    Ok(out)
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        list.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    fn files(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
        match path.to_str() {
            Some("/s/pw") => Ok(b"hunter2\n\n".to_vec()),
            Some("/s/key") => Ok(b"k".to_vec()),
            Some("/s/big") => Ok(vec![b'x'; LIMIT as usize + 1]),
            _ => Err(std::io::Error::from_raw_os_error(libc::EACCES)),
        }
    }

    #[test]
    fn file_variables_become_values() {
        let got = plan(
            &vars(&[("PW_FILE", "/s/pw"), ("K_FILE", "/s/key"), ("X", "y")]),
            files,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                ("PW", Some("hunter2\n".into())),
                ("PW_FILE", None),
                ("K", Some("k".into())),
                ("K_FILE", None)
            ]
        );
    }

    #[test]
    fn a_value_fits_in_one_exec_string_with_its_name() {
        let sized = |n: usize| move |_: &std::path::Path| Ok(vec![b'v'; n]);
        // NAME= (5), the value, the NUL: 128 KiB at most.
        let most = LIMIT as usize - 6;
        assert!(plan(&vars(&[("NAME_FILE", "/p")]), sized(most)).is_ok());
        assert!(plan(&vars(&[("NAME_FILE", "/p")]), sized(most + 1)).is_err());
        let newline = |_: &std::path::Path| Ok([vec![b'v'; most], b"\n".to_vec()].concat());
        assert!(
            plan(&vars(&[("NAME_FILE", "/p")]), newline).is_ok(),
            "the newline goes first"
        );
    }

    #[test]
    fn failures_name_the_variable_and_path_never_the_content() {
        let e = plan(&vars(&[("PW_FILE", "/s/pw"), ("PW", "x")]), files).unwrap_err();
        assert_eq!(e.to_string(), "both PW and PW_FILE are set");
        let e = plan(&vars(&[("A_FILE", "/nope")]), files).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read /nope (from A_FILE): permission denied"
        );
        let e = plan(&vars(&[("B_FILE", "/s/big")]), files).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/s/big (from B_FILE) is over the 128 KiB limit"
        );
        let e = plan(&vars(&[("_FILE", "/s/key")]), files).unwrap_err();
        assert_eq!(e.to_string(), "'_FILE' is not a variable name");
    }

    proptest! {
        #[test]
        fn content_never_appears_in_an_error(secret in "[a-z]{12,20}", name in "[A-Z]{1,8}") {
            let read = |_: &std::path::Path| Ok(secret.clone().into_bytes());
            let both = vars(&[(&format!("{name}_FILE"), "/p"), (&name, "v")]);
            let e = plan(&both, read).unwrap_err().to_string();
            prop_assert!(!e.contains(&secret));
            let big = |_: &std::path::Path| Ok(secret.repeat(LIMIT as usize / 12 + 1).into_bytes());
            let e = plan(&vars(&[(&format!("{name}_FILE"), "/p")]), big).unwrap_err().to_string();
            prop_assert!(!e.contains(&secret));
            let ok = plan(&vars(&[(&format!("{name}_FILE"), "/p")]), read).unwrap();
            prop_assert_eq!(&ok[0].1, &Some(OsString::from(secret.clone())));
        }
    }
}
