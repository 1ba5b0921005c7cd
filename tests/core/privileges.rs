//! The privilege drop matrix, as root, against a test /etc/passwd and /etc/group that are
//! bind-mounted over the real ones inside a private mount namespace (`unshare --mount`,
//! whose default propagation is private): the machine's files are never touched.
//!
//! Each case checks, from the child: `id`, HOME/USER/LOGNAME, that setuid(0) fails, and
//! its capabilities; and, from outside while the child runs, kai-init's own
//! /proc/PID/status (Uid, Gid, Groups): nothing keeps root after start-up.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
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
    etc_with(PASSWD.as_bytes(), GROUP.as_bytes())
}

/// passwd and group files with these bytes, readable by the dropped user.
fn etc_with(passwd: &[u8], group: &[u8]) -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("etc");
    for (name, bytes) in [("passwd", passwd), ("group", group)] {
        std::fs::write(dir.join(name), bytes).unwrap();
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    dir
}

/// `kai-init ARGS` in a private mount namespace with the test's /etc/passwd and
/// /etc/group. unshare and sh both exec, so the pid of this command is kai-init's.
fn with_test_etc<S: AsRef<OsStr>>(etc: &TempDir, args: &[S]) -> Command {
    in_namespace(etc, false, args)
}

/// Like [`with_test_etc`], and with `pid1` as PID 1 of a new PID namespace too.
fn in_namespace<S: AsRef<OsStr>>(etc: &TempDir, pid1: bool, args: &[S]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private"]);
    if pid1 {
        cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"]);
    }
    cmd.args(["sh", "-c"])
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
    assert!(
        util::runs_kai_init(kai_pid),
        "pid {kai_pid} is not kai-init"
    );
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

// ---------------------------------------------------------------------------------------
// Issue 8, items 4-6: bytes that are not UTF-8, files that cannot be read, and the
// environment of exec: probes. Each of these passed on the old code in the wrong way.

/// passwd and group with Latin-1 bytes: in GECOS fields, and in the names of a user and
/// a group. Latin-1 is what an old `chfn` or an image built on a Latin-1 system leaves.
const PASSWD_LATIN1: &[u8] = b"root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
kaitest:x:4321:4321:K\xe4i Test, Z\xfcrich:/home/kaitest:/bin/sh
caf\xe9:x:4322:4322:Andr\xe9:/home/caf\xe9:/bin/sh
";

const GROUP_LATIN1: &[u8] = b"root:x:0:
nogroup:x:65534:
kaitest:x:4321:
kaione:x:7001:kaitest
gr\xfcn:x:7004:caf\xe9,kaitest
";

/// Who the child is, printed as Python sees it: ids, then HOME, USER and LOGNAME as
/// bytes literals (`b'/home/caf\xe9'`), so that the test reads ASCII lines.
fn whoami() -> Vec<String> {
    let script = "import os; print(os.getuid(), os.getgid(), sorted(os.getgroups())); \
                  [print(k, os.environb.get(k.encode())) for k in ('HOME', 'USER', 'LOGNAME')]";
    ["--", python3(), "-c", script].map(String::from).to_vec()
}

fn runs_as(cmd: Command, want: &[&str]) {
    let what = format!("{cmd:?}");
    let (status, stdout, stderr) = run(cmd, T);
    assert_eq!(status.code(), Some(0), "{what}: {stderr}");
    assert_eq!(stdout.lines().collect::<Vec<_>>(), want, "{what}");
}

#[test]
fn latin1_bytes_in_passwd_and_group_change_nothing() {
    let etc = etc_with(PASSWD_LATIN1, GROUP_LATIN1);
    let want = [
        "4321 4321 [4321, 7001, 7004]",
        "HOME b'/home/kaitest'",
        "USER b'kaitest'",
        "LOGNAME b'kaitest'",
    ];
    for user in ["kaitest", "4321"] {
        let mut args = vec!["--user".to_string(), user.into()];
        args.extend(whoami());
        runs_as(with_test_etc(&etc, &args), &want);
    }
}

#[test]
fn a_user_name_that_is_not_utf8_is_a_name() {
    let etc = etc_with(PASSWD_LATIN1, GROUP_LATIN1);
    let want = [
        "4322 4322 [4322, 7004]",
        r"HOME b'/home/caf\xe9'",
        r"USER b'caf\xe9'",
        r"LOGNAME b'caf\xe9'",
    ];
    let mut args = vec![
        OsString::from("--user"),
        OsString::from_vec(b"caf\xe9".to_vec()),
    ];
    args.extend(whoami().into_iter().map(OsString::from));
    runs_as(with_test_etc(&etc, &args), &want);
    runs_as(
        with_test_etc(
            &etc,
            &[["--user", "4322"].map(String::from).to_vec(), whoami()].concat(),
        ),
        &want,
    );
    let mut cmd = with_test_etc(&etc, &whoami());
    cmd.env("KAI_INIT_USER", OsString::from_vec(b"caf\xe9".to_vec()));
    runs_as(cmd, &want);
    // A group named in bytes, too.
    let mut args = vec![
        OsString::from("-u"),
        OsString::from_vec(b"kaitest:gr\xfcn".to_vec()),
    ];
    args.extend(whoami().into_iter().map(OsString::from));
    let (status, stdout, stderr) = run(with_test_etc(&etc, &args), T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stdout.starts_with("4321 7004 [7004]\n"), "{stdout}");
}

/// `KAI_INIT_USER=$'nobody\xff'` once ran the child as root (the variable could not be
/// read as UTF-8, so it counted as unset). Now it is a name, and nobody has it: 125,
/// and `id` never runs. As PID 1 and not.
#[test]
fn a_user_variable_that_is_not_utf8_never_runs_as_root() {
    let etc = etc_files();
    for pid1 in [false, true] {
        let mut cmd = in_namespace(&etc, pid1, &["--", "id", "-u"]);
        cmd.env("KAI_INIT_USER", OsString::from_vec(b"nobody\xff".to_vec()));
        let (status, stdout, stderr) = run(cmd, T);
        assert_eq!(status.code(), Some(125), "pid1={pid1}: {stdout} {stderr}");
        assert!(stdout.is_empty(), "pid1={pid1}: the command ran: {stdout}");
        crate::assert_one_line(&stderr, &[r"nobody\xff", "unknown user"]);
    }
}

/// `kai-init ARGS` with /etc itself replaced (in a private mount namespace) by `etc`, a
/// directory in which /etc/passwd or /etc/group may be anything, e.g. a directory.
fn with_etc_dir(etc: &TempDir, args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc && shift && exec "$@""#)
        .arg("sh")
        .arg(etc.path())
        .arg(util::bin())
        .args(args);
    hermetic(cmd)
}

/// Only a missing file means "no entries": a /etc/passwd or /etc/group that exists but
/// cannot be read stops start-up (125, naming the file). It used to read as empty, and
/// the child ran without its supplementary groups or its HOME.
#[test]
fn unreadable_passwd_or_group_fails_closed_as_root() {
    for (file, other) in [("group", "passwd"), ("passwd", "group")] {
        let etc = TempDir::new("etc-dir");
        std::fs::write(
            etc.join(other),
            if other == "passwd" { PASSWD } else { GROUP },
        )
        .unwrap();
        std::fs::create_dir(etc.join(file)).unwrap();
        for user in ["kaitest", "4321", "4321:4321"] {
            let (status, stdout, stderr) =
                run(with_etc_dir(&etc, &["--user", user, "--", "id"]), T);
            assert_eq!(
                status.code(),
                Some(125),
                "{user}, /etc/{file} a directory: {stdout} {stderr}"
            );
            let path = format!("/etc/{file}");
            crate::assert_one_line(&stderr, &[&path, "is a directory"]);
        }
    }
    // EACCES, which root meets too: /proc/sys/vm/drop_caches is write-only for everyone.
    let etc = etc_files();
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/passwd && mount --bind /proc/sys/vm/drop_caches /etc/group && shift && exec "$@""#)
        .arg("sh")
        .arg(etc.join("passwd"))
        .arg(util::bin())
        .args(["--user", "kaitest", "--", "id"]);
    let (status, stdout, stderr) = run(hermetic(cmd), T);
    assert_eq!(status.code(), Some(125), "{stdout} {stderr}");
    crate::assert_one_line(&stderr, &["/etc/group", "permission denied"]);
    // A missing file is no entries: numeric ids still work.
    let etc = TempDir::new("etc-empty");
    let (status, stdout, stderr) =
        run(with_etc_dir(&etc, &["--user", "4321", "--", "id", "-G"]), T);
    assert_eq!(
        (status.code(), stdout.as_str()),
        (Some(0), "4321"),
        "{stderr}"
    );
}

/// The same for a kai-init that is not root (an image with USER set): a group file it
/// may not read (mode 000) is an error, not "no supplementary groups".
#[test]
fn unreadable_group_fails_closed_for_a_user_that_is_not_root() {
    use std::os::unix::fs::PermissionsExt;
    let etc = etc_files();
    std::fs::set_permissions(etc.join("group"), std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@""#)
        .arg("sh")
        .arg(etc.join("passwd"))
        .arg(etc.join("group"))
        .args(["setpriv", "--reuid=4321", "--regid=4321", "--clear-groups"])
        .arg(util::bin())
        .args(["--user", "kaitest", "--", "id", "-G"]);
    let (status, stdout, stderr) = run(hermetic(cmd), T);
    assert_eq!(status.code(), Some(125), "{stdout} {stderr}");
    crate::assert_one_line(&stderr, &["/etc/group", "permission denied"]);
}

/// A kai-init that is not root (an image with USER set) and is asked for the user it
/// already is starts COMMAND as that user without trying to drop (setgroups would fail);
/// asked for anyone else, even its own uid with another group, it cannot become them and
/// says so (125) rather than start COMMAND as itself.
#[test]
fn a_user_that_is_not_root_gets_itself_and_nobody_else() {
    for (spec, code, out) in [
        ("4321:4321", 0, "4321 4321 4321"),
        ("4322:4321", 125, ""),
        ("4321:4322", 125, ""),
    ] {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=4321", "--regid=4321", "--clear-groups"])
            .arg(util::bin())
            .args([
                "--user",
                spec,
                "--",
                "sh",
                "-c",
                "echo $(id -u) $(id -g) $(id -G)",
            ]);
        let (status, stdout, stderr) = run(hermetic(cmd), T);
        assert_eq!(
            (status.code(), stdout.as_str()),
            (Some(code), out),
            "{spec}: {stderr}"
        );
        if code == 125 {
            crate::assert_one_line(&stderr, &["cannot switch to user", spec]);
        }
    }
}

/// exec: probes run as the dropped user, so they get that user's HOME, USER and LOGNAME
/// too, as the main child does (they used to see root's).
#[test]
fn exec_probes_run_with_the_users_environment() {
    use std::os::unix::fs::PermissionsExt;
    let etc = etc_files();
    let dir = TempDir::new("probe-env");
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let script = dir.join("probe.sh");
    // Written to a temporary name and renamed, so that the test reads a whole line.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$(id -u) HOME=$HOME USER=${{USER-unset}} LOGNAME=${{LOGNAME-unset}}\" > {o}/tmp.$$ && mv {o}/tmp.$$ {o}/seen\n",
            o = out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let probe = format!("exec:{}", script.display());
    let mut r = start(with_test_etc(
        &etc,
        &[
            "--user",
            "nobody",
            "--probe",
            &probe,
            "--probe-interval",
            "100ms",
            "--",
            "sleep",
            "300",
        ],
    ));
    let seen = out.join("seen");
    util::wait_until("the probe's line", T, || seen.exists());
    let line = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(
        line.trim_end(),
        "65534 HOME=/nonexistent USER=nobody LOGNAME=nobody",
        "{:#?}",
        r.stderr
    );
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(T).code(), Some(143));
}
