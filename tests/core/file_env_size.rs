//! `--file-env` and the kernel's limit on one variable (issue 10): `NAME=value` must fit
//! in MAX_ARG_STRLEN (128 KiB with its NUL), or exec fails with E2BIG and kai-init would
//! blame COMMAND (126, "argument list too long"). A file that cannot fit is refused at
//! start (125) naming the variable and the path; one that fits reaches the child whole.

use crate::util::{run, TempDir};
use crate::T;

/// `kai-init --file-env=BIG -- sh -c 'echo ${#BIG}'` with only PATH and BIG_FILE set.
fn with_file(path: &str, marker: &str) -> std::process::Command {
    let mut cmd = crate::kai(&[
        "--file-env=BIG",
        "--",
        "sh",
        "-c",
        &format!("echo ${{#BIG}} > {marker}"),
    ]);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KAI_INIT_HEALTH_SOCKET", "off")
        .env("BIG_FILE", path);
    cmd
}

#[test]
fn a_secret_too_big_for_one_variable_is_refused_at_start_naming_it() {
    let dir = TempDir::new("file-env-size");
    let marker = dir.file("ran");
    // Over 128 KiB, under the old 1 MiB limit: exec would fail with E2BIG.
    let big = dir.file("big");
    std::fs::write(&big, "a".repeat(200_000)).unwrap();
    let (status, _, stderr) = run(with_file(&big, &marker), T);
    assert_eq!(status.code(), Some(125), "{stderr}");
    crate::assert_one_line(&stderr, &["BIG_FILE", &big, "limit"]);
    assert!(!std::path::Path::new(&marker).exists(), "COMMAND ran");

    // The largest that fits: BIG= (4 bytes), the value, its NUL: 131072 in all.
    let most = dir.file("most");
    std::fs::write(&most, "b".repeat(131_072 - 5) + "\n").unwrap();
    let (status, _, stderr) = run(with_file(&most, &marker), T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "131067");
}

/// Under a small stack limit the kernel still gives argv and the environment 128 KiB
/// (ARG_MAX, its floor), and so must kai-init's estimate: with the stack at 256 KiB (a
/// quarter of it is 64 KiB) a 100 kB environment starts COMMAND and is not refused as
/// too big. (`--file-env` is there because kai-init counts only an environment it
/// changes.)
#[test]
fn under_a_small_stack_limit_the_kernels_128_kib_floor_still_holds() {
    let dir = TempDir::new("small-stack");
    let marker = dir.file("ran");
    let small = dir.file("small");
    std::fs::write(&small, "s\n").unwrap();
    let mut cmd = std::process::Command::new("prlimit");
    cmd.args(["--stack=262144", "--"])
        .arg(crate::util::bin())
        .args([
            "--file-env=SMALL",
            "--",
            "sh",
            "-c",
            &format!("echo ${{#PAD}} $SMALL > {marker}"),
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KAI_INIT_HEALTH_SOCKET", "off")
        .env("SMALL_FILE", &small)
        .env("PAD", "p".repeat(100_000));
    let (status, _, stderr) = run(cmd, T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "100000 s");
}
