//! Bad input: each mistake gets the documented exit code and exactly one line on stderr
//! that names the cause; never a panic, never a backtrace, nothing on stdout.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::Command;

use crate::util::{run, TempDir};
use crate::{assert_one_line, kai, pid1, T};

/// Runs kai-init with `args` and `env`, expects `code` and one stderr line naming `needles`.
fn rejects(args: &[&str], env: &[(&str, &str)], code: i32, needles: &[&str]) {
    let mut cmd = kai(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    rejects_cmd(cmd, code, needles);
}

/// Runs `cmd` (kai-init, directly or as PID 1), expects `code` and one stderr line
/// naming `needles`, and nothing on stdout.
fn rejects_cmd(cmd: Command, code: i32, needles: &[&str]) {
    let what = format!("{cmd:?}");
    let (status, stdout, stderr) = run(cmd, T);
    assert_eq!(status.code(), Some(code), "{what}: stderr {stderr}");
    assert!(stdout.is_empty(), "{what}: nothing on stdout, got {stdout}");
    assert_one_line(&stderr, needles);
}

/// Bytes as an argument or a variable's value: they need not be UTF-8.
fn os(bytes: &[u8]) -> OsString {
    OsString::from_vec(bytes.to_vec())
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

/// A `KAI_INIT_*` value that is not UTF-8 is an error naming the variable, never "unset"
/// (issue 8, item 4): as PID 1 and not. `id -u` must never run.
#[test]
fn variables_that_are_not_utf8_are_125_naming_them() {
    for (var, value) in [
        ("KAI_INIT_NO_NEW_PRIVS", &b"tru\xe9"[..]),
        ("KAI_INIT_STOP_TIMEOUT", b"8s\xff"),
        ("KAI_INIT_SIGNAL_GROUP", b"TERM,\xff"),
        ("KAI_INIT_LOG_LEVEL", b"\xffinfo"),
    ] {
        for new in [kai, pid1] {
            let mut cmd = new(&["--", "id", "-u"]);
            cmd.env(var, os(value));
            rejects_cmd(cmd, 125, &[var, "UTF-8"]);
        }
    }
}

/// Issue 8, item 7: durations that would overflow a deadline (or that no container means)
/// are rejected when parsed, naming the flag or variable; `check` says so with 64.
#[test]
fn absurd_durations_are_rejected_at_start() {
    for flag in [
        "--stop-timeout",
        "--drain-delay",
        "--probe-interval",
        "--probe-timeout",
        "--probe-initial-delay",
    ] {
        for value in ["1e19", "18446744073709551615", "25h", "inf", "NaN"] {
            rejects(&[flag, value, "--", "true"], &[], 125, &[flag, value]);
        }
    }
    rejects(
        &["true"],
        &[("KAI_INIT_STOP_TIMEOUT", "100000h")],
        125,
        &["KAI_INIT_STOP_TIMEOUT", "maximum"],
    );
    let (status, stdout, stderr) =
        run(kai(&["check", "--timeout", "1e19", "tcp://127.0.0.1:9"]), T);
    assert_eq!(status.code(), Some(64), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_one_line(&stderr, &["--timeout", "1e19"]);
}

/// Issue 8, item 19: a word that is not UTF-8 but starts with `-` is an option (unknown:
/// a usage error, 2), not COMMAND; an inline value that is not UTF-8 is 125 naming its
/// flag. Before, both were taken as the command (127).
#[test]
fn arguments_that_are_not_utf8_are_options_or_values_not_commands() {
    for arg in [&b"--stop-timeout\xff"[..], b"-\xe9", b"--\xff"] {
        let mut cmd = kai(&[]);
        cmd.arg(os(arg)).args(["--", "true"]);
        rejects_cmd(cmd, 2, &["unexpected argument"]);
    }
    let mut cmd = kai(&[]);
    cmd.arg(os(b"--log-level=\xff")).args(["--", "true"]);
    rejects_cmd(cmd, 125, &["--log-level", r"\xff", "UTF-8"]);
    let mut cmd = kai(&["--stop-timeout"]);
    cmd.arg(os(b"1s\xff")).args(["--", "true"]);
    rejects_cmd(cmd, 125, &["--stop-timeout", r"1s\xff"]);
}

/// A value is quoted back in the error, escaped: a newline or an escape sequence in it
/// can neither forge a second `kai-init:` line nor paint the terminal.
#[test]
fn a_value_cannot_forge_a_second_line() {
    rejects(
        &["--stop-timeout", "1x\nkai-init: fake line", "--", "true"],
        &[],
        125,
        &["--stop-timeout", "\\n"],
    );
    rejects(
        &["--", "true"],
        &[("KAI_INIT_STOP_TIMEOUT", "2\u{1b}[31mred\r")],
        125,
        &["KAI_INIT_STOP_TIMEOUT", "\\x1b"],
    );
    rejects(&["--frob\nkai-init: fake", "true"], &[], 2, &["--frob"]);
}
