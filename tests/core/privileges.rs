//! The privilege drop matrix, as root, against a test /etc/passwd and /etc/group that are
//! bind-mounted over the real ones inside a private mount namespace (`unshare --mount`,
//! whose default propagation is private): the machine's files are never touched.
//!
//! Each case checks, from the child: `id`, HOME/USER/LOGNAME, that setuid(0) fails, and
//! its capabilities; and, from outside while the child runs, kai-init's own
//! /proc/PID/status (Uid, Gid, Groups): nothing keeps root after start-up.

use std::process::Command;

use crate::util::{self, python3, run, start, status_line, TempDir};
use crate::{hermetic, T};

const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
kaitest:x:4321:4321:kai-init test user:/home/kaitest:/bin/sh
";

const GROUP: &str = "\
root:x:0:
nogroup:x:65534:
kaitest:x:4321:
kaione:x:7001:kaitest
kaitwo:x:7002:someone,kaitest
kaithree:x:7003:someone
";

/// The test's passwd/group files, readable by the dropped user.
fn etc_files() -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("etc");
    for (name, text) in [("passwd", PASSWD), ("group", GROUP)] {
        std::fs::write(dir.join(name), text).unwrap();
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    dir
}

/// `kai-init ARGS` in a private mount namespace with the test's /etc/passwd and
/// /etc/group. unshare and sh both exec, so the pid of this command is kai-init's.
fn with_test_etc(etc: &TempDir, args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@""#)
        .arg("sh")
        .arg(etc.join("passwd"))
        .arg(etc.join("group"))
        .arg(util::bin())
        .args(args);
    hermetic(cmd)
}

/// Runs in the child: who it is, its environment, whether root can be regained, its
/// privileges; then it waits, so that the test can read kai-init's own status.
fn probe_script() -> String {
    format!(
        r#"id
echo "HOME=$HOME USER=${{USER-unset}} LOGNAME=${{LOGNAME-unset}}"
{py} -c '
import os
try:
    os.setuid(0)
    print("setuid(0) succeeded")
except PermissionError:
    print("setuid(0) refused: PermissionError")
'
grep -E "^(CapPrm|CapEff|NoNewPrivs):" /proc/self/status | tr -s "\t" " "
echo ready
exec sleep 300"#,
        py = python3()
    )
}

struct Expect {
    id: &'static str,
    env: &'static str,
    uid: u32,
    gid: u32,
    groups: &'static str,
}

fn drop_case(user: &str, want: Expect) {
    let etc = etc_files();
    let script = probe_script();
    let mut r = start(with_test_etc(
        &etc,
        &["--user", user, "--", "sh", "-c", &script],
    ));
    r.wait_stdout("ready", T);
    let out = r.stdout.join("\n");
    assert_eq!(r.stdout[0], want.id, "`id` of --user {user}; all: {out}");
    assert!(
        r.stdout.iter().any(|l| l == want.env),
        "want {:?} in {out}",
        want.env
    );
    assert!(
        r.stdout
            .iter()
            .any(|l| l == "setuid(0) refused: PermissionError"),
        "{out}"
    );
    assert!(
        r.stdout.iter().any(|l| l == "CapPrm: 0000000000000000"),
        "{out}"
    );
    assert!(
        r.stdout.iter().any(|l| l == "CapEff: 0000000000000000"),
        "{out}"
    );

    // kai-init itself, while its child runs.
    let kai_pid = r.pid();
    let exe = std::fs::read_link(format!("/proc/{kai_pid}/exe")).unwrap();
    assert_eq!(exe, std::fs::canonicalize(util::bin()).unwrap());
    let four = |id: u32| format!("{id}\t{id}\t{id}\t{id}");
    assert_eq!(
        status_line(kai_pid, "Uid"),
        Some(four(want.uid)),
        "kai-init's Uid"
    );
    assert_eq!(
        status_line(kai_pid, "Gid"),
        Some(four(want.gid)),
        "kai-init's Gid"
    );
    assert_eq!(
        status_line(kai_pid, "Groups").as_deref(),
        Some(want.groups),
        "kai-init's Groups"
    );
    assert_eq!(
        status_line(kai_pid, "CapEff").as_deref(),
        Some("0000000000000000")
    );

    // The unprivileged kai-init still supervises: TERM stops the child (143).
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(T).code(), Some(143), "{:#?}", r.stderr);
}

#[test]
fn user_nobody() {
    drop_case(
        "nobody",
        Expect {
            id: "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)",
            env: "HOME=/nonexistent USER=nobody LOGNAME=nobody",
            uid: 65534,
            gid: 65534,
            groups: "65534",
        },
    );
}

#[test]
fn user_nobody_group_nogroup() {
    drop_case(
        "nobody:nogroup",
        Expect {
            id: "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)",
            env: "HOME=/nonexistent USER=nobody LOGNAME=nobody",
            uid: 65534,
            gid: 65534,
            groups: "65534",
        },
    );
}

#[test]
fn numeric_uid_missing_from_passwd() {
    drop_case(
        "1234",
        Expect {
            id: "uid=1234 gid=1234 groups=1234",
            env: "HOME=/ USER=unset LOGNAME=unset",
            uid: 1234,
            gid: 1234,
            groups: "1234",
        },
    );
}

#[test]
fn numeric_uid_and_gid() {
    drop_case(
        "1234:5678",
        Expect {
            id: "uid=1234 gid=5678 groups=5678",
            env: "HOME=/ USER=unset LOGNAME=unset",
            uid: 1234,
            gid: 5678,
            groups: "5678",
        },
    );
}

#[test]
fn user_with_supplementary_groups_from_etc_group() {
    drop_case(
        "kaitest",
        Expect {
            id:
                "uid=4321(kaitest) gid=4321(kaitest) groups=4321(kaitest),7001(kaione),7002(kaitwo)",
            env: "HOME=/home/kaitest USER=kaitest LOGNAME=kaitest",
            uid: 4321,
            gid: 4321,
            groups: "4321 7001 7002",
        },
    );
}

#[test]
fn explicit_group_replaces_supplementary_groups() {
    drop_case(
        "kaitest:kaithree",
        Expect {
            id: "uid=4321(kaitest) gid=7003(kaithree) groups=7003(kaithree)",
            env: "HOME=/home/kaitest USER=kaitest LOGNAME=kaitest",
            uid: 4321,
            gid: 7003,
            groups: "7003",
        },
    );
}

#[test]
fn user_from_environment_variable() {
    let etc = etc_files();
    let mut cmd = with_test_etc(&etc, &["--", "id"]);
    cmd.env("KAI_INIT_USER", "kaitest");
    let (status, stdout, stderr) = run(cmd, T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "uid=4321(kaitest) gid=4321(kaitest) groups=4321(kaitest),7001(kaione),7002(kaitwo)"
    );
}

#[test]
fn unknown_user_is_125_with_its_name() {
    let etc = etc_files();
    let (status, stdout, stderr) = run(
        with_test_etc(&etc, &["--user", "kai-ghost", "--", "true"]),
        T,
    );
    assert_eq!(status.code(), Some(125), "{stderr}");
    assert!(stdout.is_empty());
    crate::assert_one_line(&stderr, &["kai-ghost"]);
}

#[test]
fn unknown_group_is_125_with_its_name() {
    let etc = etc_files();
    let (status, _, stderr) = run(
        with_test_etc(&etc, &["--user", "kaitest:kai-ghosts", "--", "true"]),
        T,
    );
    assert_eq!(status.code(), Some(125), "{stderr}");
    crate::assert_one_line(&stderr, &["kai-ghosts"]);
}

#[test]
fn no_new_privs_reaches_the_child() {
    let grep = ["grep", "^NoNewPrivs:", "/proc/self/status"];
    let mut args = vec!["--no-new-privs", "--"];
    args.extend(grep);
    let (status, stdout, stderr) = run(crate::kai(&args), T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout.split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "1"]
    );

    // Off by default.
    let mut args = vec!["--"];
    args.extend(grep);
    let (_, stdout, _) = run(crate::kai(&args), T);
    assert_eq!(
        stdout.split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "0"]
    );

    // And together with a user drop.
    let etc = etc_files();
    let mut args = vec!["--user", "kaitest", "--no-new-privs", "--"];
    args.extend(grep);
    let (status, stdout, stderr) = run(with_test_etc(&etc, &args), T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout.split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "1"]
    );
}

/// As PID 1, after dropping root: the unprivileged kai-init still stops what the child
/// left behind (TERM via kill(-1) reaches the processes of its own user) and reaps it.
#[test]
fn pid1_drops_root_and_still_stops_leftovers() {
    let etc = etc_files();
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        "sh",
        "-c",
    ])
    .arg(r#"mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@""#)
    .arg("sh")
    .arg(etc.join("passwd"))
    .arg(etc.join("group"))
    .arg(util::bin())
    .args([
        "--user",
        "kaitest",
        "--stop-timeout",
        "60s",
        "--",
        "sh",
        "-c",
        "sleep 305 & id; echo ppid=$PPID; exit 4",
    ]);
    let (status, stdout, stderr) = run(hermetic(cmd), T);
    assert_eq!(status.code(), Some(4), "{stderr}");
    assert!(
        stdout.starts_with("uid=4321(kaitest) gid=4321(kaitest)"),
        "{stdout}"
    );
    assert!(stdout.contains("ppid=1"), "kai-init is PID 1: {stdout}");
    assert!(
        !stderr.contains("SIGKILL"),
        "the leftover died of TERM: {stderr}"
    );
}
