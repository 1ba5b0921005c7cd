//! `--file-env` chooses which `*_FILE` variables it reads (issue 10, review): an explicit
//! list (`--file-env=A,B`, `KAI_INIT_FILE_ENV=A,B`) fills exactly those NAMEs, and a
//! listed NAME left unset stops start-up (125); the bare flag fills a `NAME_FILE` only
//! under /run/secrets/ (issue 17; tests/core/secrets.rs) and leaves every other path, such
//! as SSL_CERT_FILE and AWS_WEB_IDENTITY_TOKEN_FILE, to the programs that read them. Real
//! binary, real files, real child.

use std::process::Command;

use crate::util::{run, TempDir};
use crate::T;

const SECRET: &str = "s3cr3t-Kai-List-Value";

/// `kai-init ARGS -- sh -c SCRIPT` with only PATH and `vars` in its environment (cargo's
/// own `*_FILE` variables, such as CARGO_PKG_LICENSE_FILE, stay out).
fn kai_with(args: &[&str], script: &str, vars: &[(&str, &str)]) -> Command {
    let mut all = args.to_vec();
    all.extend(["--", "sh", "-c", script]);
    let mut cmd = crate::kai(&all);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KAI_INIT_HEALTH_SOCKET", "off")
        .envs(vars.iter().copied());
    cmd
}

/// Asserts that kai-init logged exactly one `--file-env` line and that it holds `needles`.
fn assert_logged(stderr: &str, needles: &[&str]) {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("--file-env"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} not in {:?}", lines[0]);
    }
    assert!(lines[0].starts_with("kai-init: info: "), "{}", lines[0]);
}

/// Prints `NAME=value` or `NAME unset` for each variable, one a line.
fn show(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            format!("if [ \"${{{n}+set}}\" ]; then echo \"{n}=${n}\"; else echo \"{n} unset\"; fi")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn a_list_fills_only_the_names_it_lists() {
    let dir = TempDir::new("file-env-list");
    let (a, b) = (dir.file("a"), dir.file("b"));
    std::fs::write(&a, format!("{SECRET}\n")).unwrap();
    std::fs::write(&b, "other").unwrap();
    let script = show(&["DB_PASSWORD", "DB_PASSWORD_FILE", "OTHER", "OTHER_FILE"]);
    let vars = [("DB_PASSWORD_FILE", a.as_str()), ("OTHER_FILE", b.as_str())];
    let (status, stdout, stderr) = run(kai_with(&["--file-env=DB_PASSWORD"], &script, &vars), T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!("DB_PASSWORD={SECRET}"),
            "DB_PASSWORD_FILE unset".into(),
            "OTHER unset".into(),
            format!("OTHER_FILE={b}"),
        ]
    );
    // One info line, names only.
    assert_logged(&stderr, &["filled DB_PASSWORD from files"]);
    assert!(!stderr.contains(SECRET), "{stderr}");
}

#[test]
fn the_variable_takes_the_list_too() {
    let dir = TempDir::new("file-env-var");
    let (a, b) = (dir.file("a"), dir.file("b"));
    std::fs::write(&a, SECRET).unwrap();
    std::fs::write(&b, "tok").unwrap();
    let script = show(&["DB_PASSWORD", "API_TOKEN", "SSL_CERT", "SSL_CERT_FILE"]);
    let vars = [
        ("KAI_INIT_FILE_ENV", "DB_PASSWORD,API_TOKEN"),
        ("DB_PASSWORD_FILE", a.as_str()),
        ("API_TOKEN_FILE", b.as_str()),
        ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
    ];
    let (status, stdout, stderr) = run(kai_with(&[], &script, &vars), T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!("DB_PASSWORD={SECRET}"),
            "API_TOKEN=tok".into(),
            "SSL_CERT unset".into(),
            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt".into(),
        ]
    );
    assert_logged(&stderr, &["filled DB_PASSWORD, API_TOKEN from files"]);
}

/// The reviews' cases: a CA bundle over 128 KiB (a real one is about 200 KiB) made bare
/// --file-env exit 125, and a small one became SSL_CERT=<content> with SSL_CERT_FILE gone;
/// CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE was on no deny-list (issue 17). Bare --file-env now
/// reads only under /run/secrets/: none of these is touched, whatever its name.
#[test]
fn bare_file_env_leaves_every_path_outside_run_secrets_alone() {
    let dir = TempDir::new("file-env-paths");
    let bundle = dir.file("ca-bundle.crt");
    std::fs::write(&bundle, "-----BEGIN CERTIFICATE-----\n".repeat(8000)).unwrap();
    let token = dir.file("token");
    std::fs::write(&token, "eyJhbGciOi.token").unwrap();
    let secret = dir.file("pw");
    std::fs::write(&secret, SECRET).unwrap();
    let names = [
        "SSL_CERT_FILE",
        "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "PW_FILE",
    ];
    let script = show(&[
        "SSL_CERT_FILE",
        "SSL_CERT",
        "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_WEB_IDENTITY_TOKEN",
        "PW_FILE",
        "PW",
    ]);
    let vars = [
        (names[0], bundle.as_str()),
        (names[1], bundle.as_str()),
        (names[2], token.as_str()),
        (names[3], secret.as_str()),
    ];
    for flag in [&["--file-env"][..], &["--file-env=true"]] {
        let (status, stdout, stderr) = run(kai_with(flag, &script, &vars), T);
        assert_eq!(status.code(), Some(0), "{flag:?}: {stderr}");
        assert_eq!(
            stdout.lines().collect::<Vec<_>>(),
            [
                format!("SSL_CERT_FILE={bundle}"),
                "SSL_CERT unset".into(),
                format!("CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE={bundle}"),
                format!("AWS_WEB_IDENTITY_TOKEN_FILE={token}"),
                "AWS_WEB_IDENTITY_TOKEN unset".into(),
                format!("PW_FILE={secret}"),
                "PW unset".into(),
            ],
            "{flag:?}"
        );
        assert_logged(&stderr, &["no variable filled from a file"]);
    }
}

#[test]
fn a_listed_name_without_its_file_is_125_naming_it() {
    let dir = TempDir::new("file-env-missing");
    let marker = dir.file("ran");
    let script = format!("touch {marker}");
    // Listed, and neither DB_PASSWORD_FILE nor DB_PASSWORD is set (a typo, a secret
    // volume that was not mounted): the app must not start without it.
    for (args, vars) in [
        (&["--file-env=DB_PASSWORD"][..], &[][..]),
        (&[], &[("KAI_INIT_FILE_ENV", "DB_PASSWORD")][..]),
        (&["--file-env=DB_PASSWORD"], &[("DB_PASSWORD_FILES", "/x")]),
    ] {
        let (status, _, stderr) = run(kai_with(args, &script, vars), T);
        assert_eq!(status.code(), Some(125), "{args:?} {vars:?}: {stderr}");
        crate::assert_one_line(&stderr, &["DB_PASSWORD is listed", "DB_PASSWORD_FILE"]);
        assert!(!std::path::Path::new(&marker).exists(), "COMMAND ran");
    }
    // Set directly (no secret volume in development): kept, and the app starts.
    let vars = [("DB_PASSWORD", "dev-value")];
    let (status, stdout, stderr) = run(
        kai_with(&["--file-env=DB_PASSWORD"], &show(&["DB_PASSWORD"]), &vars),
        T,
    );
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "DB_PASSWORD=dev-value");
}

#[test]
fn invalid_names_are_125_naming_the_flag_or_variable() {
    let dir = TempDir::new("file-env-invalid");
    let marker = dir.file("ran");
    let script = format!("touch {marker}");
    for (args, vars, needles) in [
        (
            &["--file-env=DB-PASSWORD"][..],
            &[][..],
            &["--file-env", "'DB-PASSWORD'"][..],
        ),
        (&["--file-env=1PW"], &[], &["--file-env", "'1PW'"]),
        (&["--file-env=A,,B"], &[], &["--file-env", "empty name"]),
        (&["--file-env="], &[], &["--file-env", "empty name"]),
        (
            &[],
            &[("KAI_INIT_FILE_ENV", "DB_PASSWORD,api.token")][..],
            &["KAI_INIT_FILE_ENV", "'api.token'"],
        ),
    ] {
        let (status, _, stderr) = run(kai_with(args, &script, vars), T);
        assert_eq!(status.code(), Some(125), "{args:?} {vars:?}: {stderr}");
        crate::assert_one_line(&stderr, needles);
        assert!(!std::path::Path::new(&marker).exists(), "COMMAND ran");
    }
}
