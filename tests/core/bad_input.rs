//! Bad input: each mistake gets the documented exit code and exactly one line on stderr
//! that names the cause; never a panic, never a backtrace, nothing on stdout.

use crate::util::{run, TempDir};
use crate::{assert_one_line, kai, T};

/// Runs kai-init with `args` and `env`, expects `code` and one stderr line naming `needles`.
fn rejects(args: &[&str], env: &[(&str, &str)], code: i32, needles: &[&str]) {
    let mut cmd = kai(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (status, stdout, stderr) = run(cmd, T);
    assert_eq!(
        status.code(),
        Some(code),
        "{args:?} {env:?}: stderr {stderr}"
    );
    assert!(
        stdout.is_empty(),
        "{args:?}: nothing on stdout, got {stdout}"
    );
    assert_one_line(&stderr, needles);
}

#[test]
fn missing_command_is_usage_error() {
    rejects(&[], &[], 2, &["no command"]);
    rejects(&["--"], &[], 2, &["no command"]);
    rejects(&["--stop-timeout", "1s"], &[], 2, &["no command"]);
}

#[test]
fn directory_as_command_is_126() {
    let dir = TempDir::new("bad-dir");
    let path = dir.path().to_string_lossy().into_owned();
    rejects(&["--", &path], &[], 126, &[&path, "directory"]);
}

#[test]
fn command_not_found_is_127() {
    rejects(
        &["kai-init-test-no-such-command"],
        &[],
        127,
        &["kai-init-test-no-such-command", "not found"],
    );
}

#[test]
fn unknown_signal_name_in_signal_map_is_125() {
    rejects(
        &["--signal-map", "TERM:BOGUS", "--", "true"],
        &[],
        125,
        &["BOGUS"],
    );
    rejects(
        &["--signal-map", "NOPE:TERM", "--", "true"],
        &[],
        125,
        &["NOPE"],
    );
    rejects(
        &["--signal-map", "TERM", "--", "true"],
        &[],
        125,
        &["TERM", "FROM:TO"],
    );
}

#[test]
fn malformed_stop_timeout_is_125() {
    rejects(
        &["--stop-timeout", "10x", "--", "true"],
        &[],
        125,
        &["10x", "stop-timeout"],
    );
    rejects(
        &["--stop-timeout", "soon", "--", "true"],
        &[],
        125,
        &["soon"],
    );
    rejects(&["--stop-timeout=-1s", "--", "true"], &[], 125, &["-1s"]);
}

#[test]
fn empty_user_is_125() {
    rejects(&["--user", "", "--", "true"], &[], 125, &["user"]);
    rejects(&["--user", ":root", "--", "true"], &[], 125, &["user"]);
    rejects(&["--user", "root:", "--", "true"], &[], 125, &["group"]);
}

#[test]
fn unknown_user_is_125() {
    rejects(
        &["--user", "kai-init-no-such-user", "--", "true"],
        &[],
        125,
        &["kai-init-no-such-user"],
    );
}

#[test]
fn unknown_flag_is_usage_error() {
    rejects(&["--frobnicate", "--", "true"], &[], 2, &["--frobnicate"]);
}

#[test]
fn bad_success_code_is_125() {
    rejects(&["--success-code", "300", "--", "true"], &[], 125, &["300"]);
}

#[test]
fn bad_values_from_the_environment_are_125() {
    rejects(
        &["true"],
        &[("KAI_INIT_STOP_TIMEOUT", "bogus")],
        125,
        &["bogus"],
    );
    rejects(
        &["true"],
        &[("KAI_INIT_SIGNAL_MAP", "TERM:QUIT,USR1:NOPE")],
        125,
        &["NOPE"],
    );
    rejects(
        &["true"],
        &[("KAI_INIT_USER", "kai-init-no-such-user")],
        125,
        &["kai-init-no-such-user"],
    );
    rejects(&["true"], &[("KAI_INIT_SUCCESS_CODE", "x")], 125, &["'x'"]);
    rejects(
        &["true"],
        &[("KAI_INIT_LOG_LEVEL", "chatty")],
        125,
        &["chatty"],
    );
}

#[test]
fn flag_wins_over_environment() {
    let mut cmd = kai(&["--stop-timeout", "1s", "--", "true"]);
    cmd.env("KAI_INIT_STOP_TIMEOUT", "bogus");
    let (status, _, stderr) = run(cmd, T);
    assert_eq!(
        status.code(),
        Some(0),
        "the flag's valid value wins: {stderr}"
    );
}

#[test]
fn start_up_failure_is_reported_even_with_logging_off() {
    rejects(
        &[
            "--log-level",
            "off",
            "--user",
            "kai-init-no-such-user",
            "--",
            "true",
        ],
        &[],
        125,
        &["kai-init-no-such-user"],
    );
    rejects(
        &["--log-level", "off", "--", "kai-init-test-no-such-command"],
        &[],
        127,
        &["not found"],
    );
}

#[test]
fn help_and_version_exit_zero() {
    let (status, stdout, _) = run(kai(&["--help"]), T);
    assert_eq!(status.code(), Some(0));
    assert!(
        stdout.contains("--stop-timeout") && stdout.contains("Examples"),
        "{stdout}"
    );
    let (status, stdout, _) = run(kai(&["--version"]), T);
    assert_eq!(status.code(), Some(0));
    assert!(stdout.starts_with("kai-init "), "{stdout}");
}
