//! `--file-env`: the docker-library `*_FILE` convention. A variable `NAME_FILE=PATH`
//! becomes `NAME` = the file's content with one trailing newline removed, and `NAME_FILE`
//! leaves the child's environment. kai-init reads the files while still root, so a
//! root-only secret (0400, a Kubernetes secret volume) reaches an app that runs as a user.
//!
//! Which variables: `--file-env=DB_PASSWORD,API_TOKEN` fills exactly the NAMEs listed,
//! each from its `NAME_FILE`, and leaves every other `*_FILE` alone. A listed NAME that
//! ends up with no value (neither `NAME_FILE` nor `NAME` set) stops start-up: a secret
//! the operator asked for must not silently be missing; `NAME` set directly is kept, as
//! the docker-library `file_env` helper keeps it. Bare `--file-env` fills every
//! `NAME_FILE` except the well-known variables in [`PATH_VARS`]: those are paths that
//! their own programs read (OpenSSL's CA bundle, the token file EKS injects), and turning
//! them into their content breaks TLS or cloud credentials.
//!
//! Fails closed: `NAME` and `NAME_FILE` both set, a file that cannot be read, or one over
//! [`LIMIT`] stops start-up (125) with a message naming the variable and path, never the
//! content. Only names are ever logged.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::config::env_names::is_name;
use crate::config::FileEnv;

/// The largest variable a program can be given: Linux's MAX_ARG_STRLEN (32 pages of
/// 4 KiB), counting `NAME=`, the value and its NUL. A longer one makes exec fail with
/// E2BIG, which would read as COMMAND's fault (126): refuse it here, naming it.
pub const LIMIT: u64 = 128 * 1024;

/// `*_FILE` variables that hold a path their own program reads, never a secret for
/// kai-init to inline: bare `--file-env` leaves them as they are (an explicit
/// `--file-env=NAME` list still fills whatever it names). Sorted, for binary search.
pub const PATH_VARS: &[&str] = &[
    // Alibaba Cloud RRSA (ACK's projected service-account token).
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
    // AWS SDKs and CLI: config and credentials files, EKS Pod Identity's token, and
    // IRSA's web-identity token (both injected into pods by EKS).
    "AWS_CONFIG_FILE",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    // Azure Workload Identity (injected into AKS pods).
    "AZURE_FEDERATED_TOKEN_FILE",
    // GitLab CI: the server's CA certificate.
    "CI_SERVER_TLS_CA_FILE",
    // Docker Compose's project files.
    "COMPOSE_FILE",
    // Git's index.
    "GIT_INDEX_FILE",
    // google-github-actions/auth: the credentials file it writes.
    "GOOGLE_GHA_CREDS_FILE",
    // MySQL clients' login-path file (.mylogin.cnf).
    "MYSQL_TEST_LOGIN_FILE",
    // New Relic's agents: newrelic.ini.
    "NEW_RELIC_CONFIG_FILE",
    // Nix's CA bundle, OpenSSL's under Nix.
    "NIX_SSL_CERT_FILE",
    // Oracle Cloud CLI and SDKs.
    "OCI_CLI_CONFIG_FILE",
    // pip's and uv's configuration files.
    "PIP_CONFIG_FILE",
    // OpenSSL's CA bundle (Python, Ruby, curl, Go's crypto/x509 and most TLS clients).
    "SSL_CERT_FILE",
    // Terraform's CLI configuration.
    "TF_CLI_CONFIG_FILE",
    "UV_CONFIG_FILE",
];

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
    /// A listed NAME has neither `NAME_FILE` nor `NAME` set.
    Missing {
        name: String,
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
            FileEnvError::Missing { name } => {
                write!(
                    f,
                    "{name} is listed but neither {name}_FILE nor {name} is set"
                )
            }
            FileEnvError::Read { var, path, err } => {
                write!(
                    f,
                    "cannot read {path} (from {var}): {}",
                    crate::util::text::short(err)
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

/// Reads at most [`LIMIT`] bytes of `path`. Reading more would tell nothing: a file that
/// long can never fit (`NAME=`, the value and its NUL must fit in [`LIMIT`], and only one
/// trailing newline is dropped), so [`plan`] refuses it whether or not it was cut.
pub fn read_limited(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    std::fs::File::open(path)?
        .take(LIMIT)
        .read_to_end(&mut data)?;
    Ok(data)
}

/// What `--file-env` does to the child's environment, and what it says about it.
#[derive(Debug, PartialEq)]
pub struct Plan {
    /// What to set (`Some`) and remove (`None`).
    pub env: Vec<(&'static str, Option<OsString>)>,
    /// NAMEs filled from their files.
    pub filled: Vec<String>,
    /// Listed NAMEs already set directly, kept as they are.
    pub direct: Vec<String>,
    /// Well-known path variables bare `--file-env` left alone.
    pub kept: Vec<String>,
}

impl Plan {
    /// The one log line: names only, never a value.
    pub fn summary(&self) -> String {
        let mut out = match self.filled.is_empty() {
            true => "--file-env: no variable filled from a file".to_owned(),
            false => format!("--file-env: filled {} from files", self.filled.join(", ")),
        };
        if !self.direct.is_empty() {
            out += &format!("; {} set directly", self.direct.join(", "));
        }
        if !self.kept.is_empty() {
            out += &format!("; left {} as paths", self.kept.join(", "));
        }
        out
    }
}

/// Reads kai-init's own environment and the files it names, and logs what it filled.
pub fn load(select: &FileEnv) -> Result<Vec<(&'static str, Option<OsString>)>, FileEnvError> {
    let vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let plan = plan(select, &vars, read_limited)?;
    tracing::info!("{}", plan.summary());
    Ok(plan.env)
}

/// The [`Plan`] for `select`, from `vars` (kai-init's own environment), with `read`
/// reading a file (at most LIMIT bytes).
/// Names are leaked to `&'static str`: done once at start-up, for a handful of variables,
/// and the spawner's environment list takes static names.
pub fn plan(
    select: &FileEnv,
    vars: &[(OsString, OsString)],
    read: impl Fn(&std::path::Path) -> std::io::Result<Vec<u8>>,
) -> Result<Plan, FileEnvError> {
    let get = |key: &[u8]| {
        vars.iter()
            .find(|(k, _)| k.as_bytes() == key)
            .map(|(_, v)| v)
    };
    let mut plan = Plan {
        env: Vec::new(),
        filled: Vec::new(),
        direct: Vec::new(),
        kept: Vec::new(),
    };
    // (NAME, NAME_FILE's value) for each variable to fill.
    let mut todo: Vec<(String, &OsString)> = Vec::new();
    match select {
        FileEnv::Every => {
            for (key, value) in vars {
                let Some(name) = key.as_bytes().strip_suffix(b"_FILE") else {
                    continue;
                };
                let var = String::from_utf8_lossy(key.as_bytes()).into_owned();
                if PATH_VARS.binary_search(&var.as_str()).is_ok() {
                    plan.kept.push(var);
                    continue;
                }
                if !is_name(name) {
                    return Err(FileEnvError::BadName { var });
                }
                todo.push((String::from_utf8_lossy(name).into_owned(), value));
            }
        }
        FileEnv::Only(names) => {
            for name in names {
                match get(format!("{name}_FILE").as_bytes()) {
                    Some(value) => todo.push((name.clone(), value)),
                    None if get(name.as_bytes()).is_some() => plan.direct.push(name.clone()),
                    None => return Err(FileEnvError::Missing { name: name.clone() }),
                }
            }
        }
    }
    for (name, value) in todo {
        let var = format!("{name}_FILE");
        if get(name.as_bytes()).is_some() {
            return Err(FileEnvError::Both { name });
        }
        let path = std::path::Path::new(value);
        let shown = crate::util::text::Shown(value.as_bytes()).to_string();
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
        plan.filled.push(name.clone());
        plan.env.push((leak(name), Some(OsString::from_vec(data))));
        plan.env.push((leak(var), None));
    }
    Ok(plan)
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

impl From<FileEnvError> for crate::util::error::Error {
    fn from(e: FileEnvError) -> Self {
        crate::util::error::Error::Setting {
            about: "--file-env",
            why: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        list.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    fn only(names: &[&str]) -> FileEnv {
        FileEnv::Only(names.iter().map(|n| n.to_string()).collect())
    }

    fn files(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
        match path.to_str() {
            Some("/s/pw") => Ok(b"hunter2\n\n".to_vec()),
            Some("/s/key") => Ok(b"k".to_vec()),
            Some("/s/big") => Ok(vec![b'x'; LIMIT as usize + 1]),
            _ => Err(std::io::Error::from_raw_os_error(libc::EACCES)),
        }
    }

    fn env(select: &FileEnv, list: &[(&str, &str)]) -> Vec<(&'static str, Option<OsString>)> {
        plan(select, &vars(list), files).unwrap().env
    }

    #[test]
    fn file_variables_become_values() {
        let got = env(
            &FileEnv::Every,
            &[("PW_FILE", "/s/pw"), ("K_FILE", "/s/key"), ("X", "y")],
        );
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
    fn every_leaves_the_well_known_path_variables_alone() {
        // A CA bundle over the limit: read, it would even stop start-up.
        let list = [
            ("SSL_CERT_FILE", "/s/big"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/nope"),
            ("PW_FILE", "/s/pw"),
        ];
        let p = plan(&FileEnv::Every, &vars(&list), files).unwrap();
        assert_eq!(p.env, [("PW", Some("hunter2\n".into())), ("PW_FILE", None)]);
        assert_eq!(p.kept, ["SSL_CERT_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE"]);
        assert_eq!(
            p.summary(),
            "--file-env: filled PW from files; left SSL_CERT_FILE, AWS_WEB_IDENTITY_TOKEN_FILE as paths"
        );
        // Both set is no conflict for a variable kai-init does not touch.
        assert!(plan(
            &FileEnv::Every,
            &vars(&[("SSL_CERT_FILE", "/a"), ("SSL_CERT", "b")]),
            files
        )
        .is_ok());
    }

    #[test]
    fn the_path_list_is_sorted_and_every_entry_is_a_file_variable() {
        assert!(PATH_VARS.windows(2).all(|w| w[0] < w[1]), "not sorted");
        for var in PATH_VARS {
            assert!(var.ends_with("_FILE") && is_name(var.as_bytes()), "{var}");
        }
    }

    #[test]
    fn a_list_fills_only_the_names_it_lists() {
        let list = [
            ("PW_FILE", "/s/pw"),
            ("K_FILE", "/s/key"),
            ("SSL_CERT_FILE", "/s/big"),
        ];
        let p = plan(&only(&["K"]), &vars(&list), files).unwrap();
        assert_eq!(p.env, [("K", Some("k".into())), ("K_FILE", None)]);
        assert_eq!(p.summary(), "--file-env: filled K from files");
        // Listed, a well-known one is filled like any other: the operator asked.
        let p = plan(
            &only(&["SSL_CERT"]),
            &vars(&[("SSL_CERT_FILE", "/s/key")]),
            files,
        );
        assert_eq!(p.unwrap().filled, ["SSL_CERT"]);
    }

    #[test]
    fn a_listed_name_must_end_up_set() {
        let e = plan(&only(&["K", "PW"]), &vars(&[("K_FILE", "/s/key")]), files).unwrap_err();
        assert_eq!(
            e.to_string(),
            "PW is listed but neither PW_FILE nor PW is set"
        );
        // Set directly (a development run without the secret volume): kept as it is.
        let p = plan(&only(&["PW"]), &vars(&[("PW", "dev")]), files).unwrap();
        assert!(p.env.is_empty());
        assert_eq!(
            p.summary(),
            "--file-env: no variable filled from a file; PW set directly"
        );
        let e = plan(
            &only(&["PW"]),
            &vars(&[("PW", "x"), ("PW_FILE", "/s/pw")]),
            files,
        );
        assert_eq!(e.unwrap_err().to_string(), "both PW and PW_FILE are set");
    }

    #[test]
    fn a_value_fits_in_one_exec_string_with_its_name() {
        let sized = |n: usize| move |_: &std::path::Path| Ok(vec![b'v'; n]);
        // NAME= (5), the value, the NUL: 128 KiB at most.
        let most = LIMIT as usize - 6;
        let one = vars(&[("NAME_FILE", "/p")]);
        assert!(plan(&FileEnv::Every, &one, sized(most)).is_ok());
        assert!(plan(&FileEnv::Every, &one, sized(most + 1)).is_err());
        assert!(plan(&only(&["NAME"]), &one, sized(most + 1)).is_err());
        let newline = |_: &std::path::Path| Ok([vec![b'v'; most], b"\n".to_vec()].concat());
        assert!(
            plan(&FileEnv::Every, &one, newline).is_ok(),
            "the newline goes first"
        );
    }

    #[test]
    fn failures_name_the_variable_and_path_never_the_content() {
        let every = &FileEnv::Every;
        let e = plan(every, &vars(&[("PW_FILE", "/s/pw"), ("PW", "x")]), files).unwrap_err();
        assert_eq!(e.to_string(), "both PW and PW_FILE are set");
        let e = plan(every, &vars(&[("A_FILE", "/nope")]), files).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read /nope (from A_FILE): permission denied"
        );
        let e = plan(&only(&["A"]), &vars(&[("A_FILE", "/nope")]), files).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read /nope (from A_FILE): permission denied"
        );
        let e = plan(every, &vars(&[("B_FILE", "/s/big")]), files).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/s/big (from B_FILE) is over the 128 KiB limit"
        );
        for bad in ["_FILE", "1X_FILE", "A-B_FILE"] {
            let e = plan(every, &vars(&[(bad, "/s/key")]), files).unwrap_err();
            assert_eq!(e.to_string(), format!("'{bad}' is not a variable name"));
        }
    }

    proptest! {
        #[test]
        fn content_never_appears_in_an_error(secret in "[a-z]{12,20}", name in "[A-Z]{1,8}") {
            let read = |_: &std::path::Path| Ok(secret.clone().into_bytes());
            let var = format!("{name}_FILE");
            for select in [FileEnv::Every, only(&[&name])] {
                let both = vars(&[(&var, "/p"), (&name, "v")]);
                let e = plan(&select, &both, read).unwrap_err().to_string();
                prop_assert!(!e.contains(&secret));
                let big = |_: &std::path::Path| Ok(secret.repeat(LIMIT as usize / 12 + 1).into_bytes());
                let e = plan(&select, &vars(&[(&var, "/p")]), big).unwrap_err().to_string();
                prop_assert!(!e.contains(&secret));
                let ok = plan(&select, &vars(&[(&var, "/p")]), read).unwrap();
                prop_assert_eq!(&ok.env[0].1, &Some(OsString::from(secret.clone())));
                prop_assert!(!ok.summary().contains(&secret));
            }
        }

        /// Bare --file-env never touches a listed path variable, whatever its file holds.
        #[test]
        fn every_never_touches_a_path_variable(i in 0..PATH_VARS.len(), other in "[A-Z]{1,8}") {
            let var = format!("{other}_FILE");
            prop_assume!(PATH_VARS.binary_search(&var.as_str()).is_err());
            let list = vars(&[(PATH_VARS[i], "/s/big"), (&var, "/s/key")]);
            let p = plan(&FileEnv::Every, &list, files).unwrap();
            prop_assert!(p.env.iter().all(|(k, _)| *k != PATH_VARS[i]));
            prop_assert_eq!(p.kept, vec![PATH_VARS[i].to_owned()]);
        }
    }
}
