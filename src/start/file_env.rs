//! `--file-env`: the docker-library `*_FILE` convention. A variable `NAME_FILE=PATH`
//! becomes `NAME` = the file's content with one trailing newline removed, and `NAME_FILE`
//! leaves the child's environment. kai-init reads the files while still root, so a
//! root-only secret (0400, a Kubernetes secret volume) reaches an app that runs as a user.
//!
//! Which variables: `--file-env=DB_PASSWORD,API_TOKEN` fills exactly the NAMEs listed,
//! each from its `NAME_FILE` wherever its path leads, and leaves every other `*_FILE`
//! alone. A listed NAME that ends up with no value (neither `NAME_FILE` nor `NAME` set)
//! stops start-up: a secret the operator asked for must not silently be missing; `NAME`
//! set directly is kept, as the docker-library `file_env` helper keeps it. Bare
//! `--file-env` fills a `NAME_FILE` only when its path lies under [`SECRETS_DIR`]
//! (Docker's and Compose's secret mount), compared lexically; every other `*_FILE` is a
//! path some program reads itself (OpenSSL's CA bundle, the token file EKS injects, a
//! CLI's configuration), left exactly as it is (issue 17: a deny-list of such variables
//! can never be complete, and the first machine tried had one it missed).
//!
//! Fails closed: `NAME` and `NAME_FILE` both set, a file that cannot be read, one over
//! [`LIMIT`], one holding a NUL byte (exec cannot pass it) stops start-up (125) with a
//! message naming the variable and path, never the content. Only names are ever logged.
//!
//! A read never hangs start-up (issue 17, item 8): the file is opened non-blocking and
//! must be a regular file (a FIFO would wait for a writer for ever, with every signal
//! blocked), and each read runs on a helper thread given [`READ_BOUND`] (a file on a hung
//! NFS or FUSE mount blocks in open(2) itself, where no flag helps).

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::Duration;

use crate::config::env_names::is_name;
use crate::config::FileEnv;

/// The largest variable a program can be given: Linux's MAX_ARG_STRLEN (32 pages of
/// 4 KiB), counting `NAME=`, the value and its NUL. A longer one makes exec fail with
/// E2BIG, which would read as COMMAND's fault (126): refuse it here, naming it.
pub const LIMIT: u64 = 128 * 1024;

/// Where bare `--file-env` reads secrets from: the directory Docker and Compose mount
/// secrets in. With its trailing slash: the directory itself is no secret.
pub const SECRETS_DIR: &str = "/run/secrets/";

/// How long one secret file may take to open and read. A local file takes microseconds;
/// one on a mount whose server is gone never answers, and start-up must end (125, naming
/// the path) rather than wait for a SIGKILL.
pub const READ_BOUND: Duration = Duration::from_secs(10);

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
    /// The content holds a NUL byte: no variable can (exec ends each at its first NUL).
    Nul {
        var: String,
        path: String,
    },
    /// A stop signal came while a file was still being read: COMMAND must not start.
    Stopped {
        signal: i32,
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
            FileEnvError::Nul { var, path } => {
                write!(
                    f,
                    "{path} (from {var}) holds a NUL byte, which no variable can hold"
                )
            }
            FileEnvError::Stopped { signal } => {
                write!(
                    f,
                    "{} while reading secrets; not starting",
                    crate::config::signal_names::name(*signal)
                )
            }
        }
    }
}

/// Reads at most [`LIMIT`] bytes of `path`, which must be a regular file. Reading more
/// would tell nothing: a file that long can never fit (`NAME=`, the value and its NUL
/// must fit in [`LIMIT`], and only one trailing newline is dropped), so [`plan`] refuses
/// it whether or not it was cut. Opened non-blocking, so a FIFO does not wait for a
/// writer; its type is checked on the open descriptor (fstat), so nothing can swap the
/// path between the check and the read. O_NONBLOCK changes nothing for a regular file.
/// (A socket never gets that far: open(2) refuses it, ENXIO.)
pub fn read_limited(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        let what = match () {
            _ if kind.is_dir() => "a directory",
            _ if kind.is_fifo() => "a FIFO",
            _ if kind.is_char_device() => "a character device",
            _ if kind.is_block_device() => "a block device",
            _ => "of another type",
        };
        return Err(std::io::Error::other(format!(
            "not a regular file (it is {what})"
        )));
    }
    let mut data = Vec::new();
    file.take(LIMIT).read_to_end(&mut data)?;
    Ok(data)
}

/// How often a read that has not answered yet looks for a stop signal. A local file
/// answers within the first slice, so a normal start never wakes for this.
const STOP_SLICE: Duration = Duration::from_millis(20);

/// [`read_limited`] on a helper thread, given `bound`: a path on a hung mount blocks in
/// open(2) or read(2) for as long as its server does not answer. The thread is joined
/// once it answers, so none is left when the child is spawned or privileges are dropped
/// (both rely on kai-init having one thread). When it does not answer in time, or
/// `stopped` names a stop signal first (start-up has no loop yet: every signal waits,
/// blocked), start-up stops and kai-init exits, which ends the stuck thread with it. A
/// stop is an error of kind `Interrupted`.
pub fn read_bounded(
    path: &std::path::Path,
    bound: Duration,
    stopped: &dyn Fn() -> Option<i32>,
) -> std::io::Result<Vec<u8>> {
    use std::sync::mpsc::{self, RecvTimeoutError};
    let (tx, rx) = mpsc::channel();
    let owned = path.to_path_buf();
    let thread = std::thread::Builder::new()
        .name("kai-init-secret".into())
        // Enough for an open, an fstat and a read into a heap buffer; the default would
        // reserve 2 MiB.
        .stack_size(64 * 1024)
        .spawn(move || drop(tx.send(read_limited(&owned))))?;
    let deadline = std::time::Instant::now() + bound;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left.min(STOP_SLICE)) {
            Ok(read) => {
                // It has sent its answer and is returning.
                let _ = thread.join();
                return read;
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Some(sig) = stopped() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::Interrupted,
                        format!("stopped by {}", crate::config::signal_names::name(sig)),
                    ));
                }
                if left <= STOP_SLICE {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer within {}s (a hung mount?)", bound.as_secs()),
                    ));
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(std::io::Error::other(
                    "the reading thread ended without an answer",
                ))
            }
        }
    }
}

/// Whether `path` lies under [`SECRETS_DIR`], compared lexically: repeated slashes and
/// `.` are dropped and `..` takes back one component (as the kernel resolves it, minus
/// symlinks, which are not followed: the path as written is what the operator chose), so
/// `/run/secrets/../etc/shadow` is not under it. A relative path never is.
pub fn under_secrets_dir(path: &[u8]) -> bool {
    if path.first() != Some(&b'/') {
        return false;
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    let dir: Vec<&[u8]> = SECRETS_DIR
        .as_bytes()
        .split(|b| *b == b'/')
        .filter(|p| !p.is_empty())
        .collect();
    parts.len() > dir.len() && parts.starts_with(&dir)
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
    /// `*_FILE` variables bare `--file-env` left alone: their paths are not under
    /// [`SECRETS_DIR`].
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
        out
    }

    /// The debug line for what bare `--file-env` left alone (names only), if anything.
    pub fn kept_line(&self) -> Option<String> {
        (!self.kept.is_empty()).then(|| {
            format!(
                "--file-env: left {} as they are (not under {SECRETS_DIR})",
                self.kept.join(", ")
            )
        })
    }
}

/// Reads kai-init's own environment and the files it names, and logs what it filled.
/// `stopped`: the stop signal now pending, if any (asked while a read is slow).
pub fn load(
    select: &FileEnv,
    stopped: impl Fn() -> Option<i32>,
) -> Result<Vec<(&'static str, Option<OsString>)>, FileEnvError> {
    let vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let stop = std::cell::Cell::new(None);
    let seen = || {
        let sig = stopped();
        stop.set(stop.get().or(sig));
        sig
    };
    let plan = plan(select, &vars, |path| read_bounded(path, READ_BOUND, &seen));
    if let Some(signal) = stop.get() {
        return Err(FileEnvError::Stopped { signal });
    }
    let plan = plan?;
    if let Some(line) = plan.kept_line() {
        tracing::debug!("{line}");
    }
    tracing::info!("{}", plan.summary());
    Ok(plan.env)
}

/// The [`Plan`] for `select`, from `vars` (kai-init's own environment), with `read`
/// reading a file (at most LIMIT bytes). A bare `*_FILE` whose path is not under
/// [`SECRETS_DIR`] is never read, nor its name checked: it is not kai-init's.
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
                if !under_secrets_dir(value.as_bytes()) {
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
        // Refused here, not at exec: std would refuse it there as "data provided contains
        // a nul byte", and kai-init would blame COMMAND (126).
        if data.contains(&0) {
            return Err(FileEnvError::Nul { var, path: shown });
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
            Some("/run/secrets/pw") => Ok(b"hunter2\n\n".to_vec()),
            Some("/run/secrets/key") => Ok(b"k".to_vec()),
            Some("/run/secrets/big") => Ok(vec![b'x'; LIMIT as usize + 1]),
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
            &[
                ("PW_FILE", "/run/secrets/pw"),
                ("K_FILE", "/run/secrets/key"),
                ("X", "y"),
            ],
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

    /// Issue 17, item 13: bare --file-env reads only under /run/secrets/; everything else
    /// is a path some program reads, left as it is, whatever its name or file.
    #[test]
    fn every_leaves_paths_outside_run_secrets_alone() {
        let list = [
            ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
            (
                "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
                "/run/secrets/../etc/ssl/x",
            ),
            ("PW_FILE", "/run/secrets/pw"),
            ("REL_FILE", "run/secrets/key"),
            ("BAD-NAME_FILE", "/tmp/x"),
        ];
        let p = plan(&FileEnv::Every, &vars(&list), files).unwrap();
        assert_eq!(p.env, [("PW", Some("hunter2\n".into())), ("PW_FILE", None)]);
        assert_eq!(
            p.kept,
            [
                "SSL_CERT_FILE",
                "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
                "REL_FILE",
                "BAD-NAME_FILE"
            ]
        );
        assert_eq!(p.summary(), "--file-env: filled PW from files");
        assert_eq!(
            p.kept_line().unwrap(),
            "--file-env: left SSL_CERT_FILE, CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE, REL_FILE, \
             BAD-NAME_FILE as they are (not under /run/secrets/)"
        );
        // Both set is no conflict for a variable kai-init does not touch.
        assert!(plan(
            &FileEnv::Every,
            &vars(&[("SSL_CERT_FILE", "/a"), ("SSL_CERT", "b")]),
            files
        )
        .is_ok());
        // Nothing left alone, no debug line.
        let p = plan(&FileEnv::Every, &vars(&[("X", "y")]), files).unwrap();
        assert_eq!(p.kept_line(), None);
    }

    #[test]
    fn under_secrets_dir_is_lexical() {
        for yes in [
            "/run/secrets/pw",
            "//run///secrets//pw",
            "/run/./secrets/./pw",
            "/run/secrets/a/../pw",
            "/run/secrets/../secrets/pw",
            "/../run/secrets/pw",
            "/run/secrets/a/b",
        ] {
            assert!(under_secrets_dir(yes.as_bytes()), "{yes}");
        }
        for no in [
            "/run/secrets/../etc/shadow",
            "/run/secrets",
            "/run/secrets/",
            "/run/secrets/.",
            "/run/secrets/pw/..",
            "/run/secretsx/pw",
            "/run/secret/pw",
            "run/secrets/pw",
            "./run/secrets/pw",
            "/var/run/secrets/pw",
            "",
            "/",
        ] {
            assert!(!under_secrets_dir(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn a_nul_byte_is_refused_naming_the_variable_not_the_content() {
        let nul = |_: &std::path::Path| Ok(b"hunter2\0more\n".to_vec());
        let e = plan(&only(&["PW"]), &vars(&[("PW_FILE", "/p")]), nul).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/p (from PW_FILE) holds a NUL byte, which no variable can hold"
        );
    }

    /// Issue 17, item 8: a FIFO is refused at once, not waited on; so are a directory and
    /// a device. A regular file reads as before.
    #[test]
    fn only_a_regular_file_is_read_and_a_fifo_does_not_block() {
        let dir = std::env::temp_dir().join(format!("kai-file-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // The first loop device (7, 0), which opens without a backing file (tests run as
        // root, on machines with the loop driver).
        let block = dir.join("block");
        let _ = std::fs::remove_file(&block);
        nix::sys::stat::mknod(
            &block,
            nix::sys::stat::SFlag::S_IFBLK,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(7, 0),
        )
        .unwrap();
        let short = Duration::from_secs(5);
        for (path, what) in [
            (fifo.as_path(), "a FIFO"),
            (dir.as_path(), "a directory"),
            (std::path::Path::new("/dev/null"), "a character device"),
            (block.as_path(), "a block device"),
        ] {
            let e = read_bounded(path, short, &|| None).unwrap_err();
            assert_eq!(e.to_string(), format!("not a regular file (it is {what})"));
        }
        let socket = dir.join("socket");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let e = read_bounded(&socket, short, &|| None).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENXIO), "{e}");
        let file = dir.join("pw");
        std::fs::write(&file, "pw\n").unwrap();
        assert_eq!(read_bounded(&file, short, &|| None).unwrap(), b"pw\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_list_fills_only_the_names_it_lists() {
        let list = [
            ("PW_FILE", "/run/secrets/pw"),
            ("K_FILE", "/run/secrets/key"),
            ("SSL_CERT_FILE", "/run/secrets/big"),
        ];
        let p = plan(&only(&["K"]), &vars(&list), files).unwrap();
        assert_eq!(p.env, [("K", Some("k".into())), ("K_FILE", None)]);
        assert_eq!(p.summary(), "--file-env: filled K from files");
        // Listed, a path anywhere is read: the operator asked.
        let p = plan(
            &only(&["SSL_CERT"]),
            &vars(&[("SSL_CERT_FILE", "/run/secrets/key")]),
            files,
        );
        assert_eq!(p.unwrap().filled, ["SSL_CERT"]);
    }

    #[test]
    fn a_listed_name_must_end_up_set() {
        let e = plan(
            &only(&["K", "PW"]),
            &vars(&[("K_FILE", "/run/secrets/key")]),
            files,
        )
        .unwrap_err();
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
            &vars(&[("PW", "x"), ("PW_FILE", "/run/secrets/pw")]),
            files,
        );
        assert_eq!(e.unwrap_err().to_string(), "both PW and PW_FILE are set");
    }

    #[test]
    fn a_value_fits_in_one_exec_string_with_its_name() {
        let sized = |n: usize| move |_: &std::path::Path| Ok(vec![b'v'; n]);
        // NAME= (5), the value, the NUL: 128 KiB at most.
        let most = LIMIT as usize - 6;
        let one = vars(&[("NAME_FILE", "/run/secrets/p")]);
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
        let e = plan(
            every,
            &vars(&[("PW_FILE", "/run/secrets/pw"), ("PW", "x")]),
            files,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "both PW and PW_FILE are set");
        let e = plan(every, &vars(&[("A_FILE", "/run/secrets/nope")]), files).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read /run/secrets/nope (from A_FILE): permission denied"
        );
        let e = plan(
            &only(&["A"]),
            &vars(&[("A_FILE", "/run/secrets/nope")]),
            files,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read /run/secrets/nope (from A_FILE): permission denied"
        );
        let e = plan(every, &vars(&[("B_FILE", "/run/secrets/big")]), files).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/run/secrets/big (from B_FILE) is over the 128 KiB limit"
        );
        for bad in ["_FILE", "1X_FILE", "A-B_FILE"] {
            let e = plan(every, &vars(&[(bad, "/run/secrets/key")]), files).unwrap_err();
            assert_eq!(e.to_string(), format!("'{bad}' is not a variable name"));
        }
    }

    proptest! {
        #[test]
        fn content_never_appears_in_an_error(secret in "[a-z]{12,20}", name in "[A-Z]{1,8}") {
            let read = |_: &std::path::Path| Ok(secret.clone().into_bytes());
            let var = format!("{name}_FILE");
            for select in [FileEnv::Every, only(&[&name])] {
                let both = vars(&[(&var, "/run/secrets/p"), (&name, "v")]);
                let e = plan(&select, &both, read).unwrap_err().to_string();
                prop_assert!(!e.contains(&secret));
                let big = |_: &std::path::Path| Ok(secret.repeat(LIMIT as usize / 12 + 1).into_bytes());
                let e = plan(&select, &vars(&[(&var, "/run/secrets/p")]), big).unwrap_err().to_string();
                prop_assert!(!e.contains(&secret));
                let ok = plan(&select, &vars(&[(&var, "/run/secrets/p")]), read).unwrap();
                prop_assert_eq!(&ok.env[0].1, &Some(OsString::from(secret.clone())));
                prop_assert!(!ok.summary().contains(&secret));
            }
        }

        /// Bare --file-env reads a path under /run/secrets/ and never one outside it,
        /// whatever the name and however the path is spelt.
        #[test]
        fn every_reads_only_under_run_secrets(
            name in "[A-Z]{1,8}",
            path in "(/run/secrets/|/run/secrets/\\.\\./|/run//secrets/\\./|/run/|/|)[a-z./]{0,12}",
        ) {
            let var = format!("{name}_FILE");
            let under = under_secrets_dir(path.as_bytes());
            let read = |p: &std::path::Path| -> std::io::Result<Vec<u8>> {
                assert!(under, "read {p:?}");
                Ok(b"v".to_vec())
            };
            let p = plan(&FileEnv::Every, &vars(&[(&var, &path)]), read).unwrap();
            prop_assert_eq!(p.filled.is_empty(), !under);
            prop_assert_eq!(p.kept.is_empty(), under);
        }
    }
}
