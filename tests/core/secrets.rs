//! `--file-env` secrets that cannot be read or passed (issue 17, items 7, 8 and 13): a NUL
//! byte, secrets too big together for exec, a FIFO or a hung mount as the file, and the
//! rule for bare `--file-env` (only paths under /run/secrets/). Each is kai-init's setting
//! (125, one line naming the variable and path, never the value), never COMMAND's fault
//! (126), and never a hang. Real binary, real files, a real FIFO and a real hung FUSE mount.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{self, run, TempDir};
use crate::T;

const SECRET: &str = "s3cr3t-Kai-Secrets-Value";

/// `kai-init ARGS -- sh -c 'touch MARKER'` with only PATH and `vars` in its environment.
fn kai_touching(args: &[&str], marker: &str, vars: &[(&str, &str)]) -> Command {
    let script = format!("touch {marker}");
    let mut all = args.to_vec();
    all.extend(["--", "sh", "-c", &script]);
    let mut cmd = crate::kai(&all);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KAI_INIT_HEALTH_SOCKET", "off")
        .envs(vars.iter().copied());
    cmd
}

/// 125, one line holding `needles` (besides the info line naming what was filled, when
/// the files could be read) and not the secret, and COMMAND never ran.
fn assert_refused(
    outcome: (std::process::ExitStatus, String, String),
    marker: &str,
    needles: &[&str],
) {
    let (status, stdout, stderr) = outcome;
    assert_eq!(status.code(), Some(125), "{stderr}");
    let rest: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("kai-init: info: --file-env: filled "))
        .collect();
    crate::assert_one_line(&rest.join("\n"), needles);
    assert!(
        !stderr.contains(SECRET),
        "a secret in kai-init's output: {stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    assert!(!std::path::Path::new(marker).exists(), "COMMAND ran");
}

/// Item 7: exec cannot pass a NUL byte; std refused it as "data provided contains a nul
/// byte" and kai-init blamed COMMAND (126).
#[test]
fn a_nul_byte_in_a_secret_is_125_naming_the_variable() {
    let dir = TempDir::new("secret-nul");
    let marker = dir.file("ran");
    let file = dir.file("pw");
    std::fs::write(&file, format!("{SECRET}\0{SECRET}\n")).unwrap();
    for args in [
        &["--file-env=PW"][..],
        &["--file-env=PW", "--user", "nobody"],
    ] {
        let outcome = run(kai_touching(args, &marker, &[("PW_FILE", &file)]), T);
        assert_refused(outcome, &marker, &["PW_FILE", &file, "NUL"]);
    }
}

/// Item 7: each secret fits the kernel's limit for one variable (128 KiB), together they
/// are over its limit for all of argv and the environment (a quarter of the stack limit,
/// at most 6 MiB): exec failed with E2BIG and kai-init blamed COMMAND (126).
#[test]
fn secrets_too_big_together_are_125_naming_one_of_them() {
    let dir = TempDir::new("secret-total");
    let marker = dir.file("ran");
    // 60 of 120 kB: 7.2 MB, over 6 MiB whatever the stack limit.
    let value = SECRET.repeat(120_000 / SECRET.len());
    let mut names = Vec::new();
    let mut vars = Vec::new();
    for i in 0..60 {
        let file = dir.file(&format!("s{i}"));
        std::fs::write(&file, &value).unwrap();
        names.push(format!("SECRET_{i}"));
        vars.push((format!("SECRET_{i}_FILE"), file));
    }
    let flag = format!("--file-env={}", names.join(","));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let outcome = run(kai_touching(&[&flag], &marker, &vars), T);
    assert_refused(outcome, &marker, &["SECRET_", "limit"]);
}

/// Item 8: opening a FIFO for reading waits for a writer, for ever, with every signal
/// blocked (TERM did nothing). It is refused at once as not a regular file.
#[test]
fn a_fifo_as_a_secret_is_125_at_once() {
    let dir = TempDir::new("secret-fifo");
    let marker = dir.file("ran");
    let fifo = dir.file("pw");
    nix::unistd::mkfifo(
        fifo.as_str(),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let started = Instant::now();
    let outcome = run(
        kai_touching(&["--file-env=PW"], &marker, &[("PW_FILE", &fifo)]),
        Duration::from_secs(10),
    );
    assert_refused(outcome, &marker, &["PW_FILE", &fifo, "not a regular file"]);
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Item 8: a secret on a hung mount (an NFS or FUSE server that never answers) blocked
/// kai-init in open(2) for ever. The read is given 10 s, then start-up stops naming the
/// path; kai-init exits even though its helper thread is still stuck.
#[test]
fn a_secret_on_a_hung_mount_is_125_after_the_bound() {
    let dir = TempDir::new("secret-hung");
    let (cmd, path, marker) = secret_on_a_hung_mount(&dir);
    let began = Instant::now();
    let outcome = run(cmd, T);
    // Never before the bound (a load can only make it later): a read that gave up at its
    // first 20 ms look for a stop would still say "10s".
    let took = began.elapsed();
    assert!(
        took >= std::time::Duration::from_secs(10),
        "refused after {took:?}"
    );
    assert_refused(outcome, &marker, &["PW_FILE", &path, "10s"]);
}

/// `kai-init --file-env=PW -- sh -c 'touch MARKER'` with `PW_FILE` on a FUSE mount nobody
/// serves (in a mount namespace of its own; unshare and python exec in turn, so the
/// process started is kai-init in the end). Returns the command, the secret's path and
/// the marker COMMAND would write.
fn secret_on_a_hung_mount(dir: &TempDir) -> (Command, String, String) {
    let marker = dir.file("ran");
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let path = format!("{}/pw", mnt.display());
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private"])
        .args([util::python3(), "-c", util::HUNG_MOUNT])
        .arg(&mnt)
        .arg(util::bin())
        .args([
            "--file-env=PW",
            "--",
            "sh",
            "-c",
            &format!("touch {marker}"),
        ]);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KAI_INIT_HEALTH_SOCKET", "off")
        .env("PW_FILE", &path);
    (cmd, path, marker)
}

/// A stop during a slow secret read ends start-up at once: `docker stop` while a secret on
/// a hung mount was being read waited for the 10 s bound, then kai-init exited 125 as if
/// the setting were wrong. Now it exits as for a stop before COMMAND (128+15), COMMAND
/// never starts, and the line names the signal.
#[test]
fn term_while_a_secret_is_read_from_a_hung_mount_ends_start_up_with_143() {
    let dir = TempDir::new("secret-hung-term");
    let (cmd, _, marker) = secret_on_a_hung_mount(&dir);
    let mut r = util::start(cmd);
    let pid = r.pid();
    // The read is under way when kai-init's reading thread exists.
    util::wait_until("kai-init to be reading the secret", T, || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.trim_end() == "kai-init-secret")
            })
    });
    assert!(util::signal(pid, libc::SIGTERM));
    let status = r.wait_exit(T);
    assert_eq!(status.code(), Some(143), "{:?}", r.stderr);
    assert!(
        r.stderr
            .iter()
            .any(|l| l.contains("stop signal while reading secrets; not starting signal=SIGTERM")),
        "{:?}",
        r.stderr
    );
    assert!(!std::path::Path::new(&marker).exists(), "COMMAND ran");
}

/// Item 13: bare `--file-env` (or `KAI_INIT_FILE_ENV=true`) reads a `NAME_FILE` only when
/// its path is under /run/secrets/ (lexically: `..` is resolved first, symlinks are not
/// followed), and leaves every other `*_FILE` as it is, saying so at debug level. Run in
/// a mount namespace with a tmpfs on /run, so the machine's /run is never touched.
#[test]
fn bare_file_env_reads_only_paths_under_run_secrets() {
    let dir = TempDir::new("secret-bare");
    let big = dir.file("ca-bundle.crt");
    std::fs::write(&big, "-----BEGIN CERTIFICATE-----\n".repeat(8000)).unwrap();
    let script = [
        "PW",
        "PW_FILE",
        "DOT",
        "OUT",
        "OUT_FILE",
        "SSL_CERT",
        "SSL_CERT_FILE",
        "GONE_FILE",
    ]
    .iter()
    .map(|n| format!("echo \"{n}=${{{n}-unset}}\""))
    .collect::<Vec<_>>()
    .join("; ");
    let setup = format!(
        "mount -t tmpfs kai-test /run && mkdir /run/secrets && printf '%s\\n' '{SECRET}' > /run/secrets/pw \
         && exec \"$0\" \"$@\""
    );
    for (flag, var) in [
        (Some("--file-env"), None),
        (None, Some(("KAI_INIT_FILE_ENV", "true"))),
    ] {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c", &setup])
            .arg(util::bin())
            .args(["--log-level", "debug"])
            .args(flag)
            .args(["--", "sh", "-c", &script]);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KAI_INIT_HEALTH_SOCKET", "off")
            .env("PW_FILE", "/run/secrets/pw")
            .env("DOT_FILE", "/run//secrets/./../secrets/pw")
            .env("OUT_FILE", "/run/secrets/../secrets-not/pw")
            .env("SSL_CERT_FILE", &big)
            .env("GONE_FILE", "/nonexistent/pw")
            .envs(var);
        let (status, stdout, stderr) = run(cmd, T);
        assert_eq!(status.code(), Some(0), "{flag:?} {var:?}: {stderr}");
        assert_eq!(
            stdout.lines().collect::<Vec<_>>(),
            [
                format!("PW={SECRET}"),
                "PW_FILE=unset".into(),
                format!("DOT={SECRET}"),
                "OUT=unset".into(),
                "OUT_FILE=/run/secrets/../secrets-not/pw".into(),
                "SSL_CERT=unset".into(),
                format!("SSL_CERT_FILE={big}"),
                "GONE_FILE=/nonexistent/pw".into(),
            ],
            "{flag:?} {var:?}"
        );
        let info: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("info: --file-env"))
            .collect();
        assert_eq!(info.len(), 1, "{stderr}");
        // Names in the environment's order, which the test does not fix.
        for filled in ["filled ", "PW", "DOT", "from files"] {
            assert!(info[0].contains(filled), "{filled} not in {}", info[0]);
        }
        let debug: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("debug: --file-env"))
            .collect();
        assert_eq!(debug.len(), 1, "{stderr}");
        for var in ["OUT_FILE", "SSL_CERT_FILE", "GONE_FILE", "/run/secrets/"] {
            assert!(debug[0].contains(var), "{var} not in {}", debug[0]);
        }
        assert!(!stderr.contains(SECRET), "{stderr}");
    }
}
