//! Features in combination (issue 17): the seams the per-feature tests could not see, each
//! found by reading the code and reproduced on the release binary before it was fixed. The
//! signal × phase seams are the lifecycle test's (`lifecycle.rs`); these are the others:
//! which environment each consumer gets, what a pre step inherits, and how `KAI_INIT_PRE`
//! reads a YAML block scalar.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::util::{self, run, start, TempDir};
use crate::{kai, pid1, py, T};

/// Issue 17, item 5: COMMAND, a pre step and an `exec:` probe see the same environment,
/// secrets included, also after the drop to a user who could no longer read the secret
/// file. Before the fix the probe saw `DB_PASSWORD_FILE=/path` and no `DB_PASSWORD`.
#[test]
fn command_pre_steps_and_exec_probes_see_the_same_secrets_after_the_drop() {
    let dir = TempDir::new("seam-env");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let secret = dir.file("db_password");
    std::fs::write(&secret, "s3cret-seam\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o400)).unwrap();
    // Each consumer writes what it sees: the secret, and whether the _FILE variable and
    // the notify socket are there. Beside the file, then renamed: the probe repeats, and a
    // read must never see a file the next run has just truncated.
    let line = |who: &str| {
        let out = dir.join(who);
        let out = out.display();
        format!(
            "echo \"$DB_PASSWORD|${{DB_PASSWORD_FILE-none}}|$HOME\" > {out}.$$ && mv {out}.$$ {out}"
        )
    };
    let report = |who: &str| format!("sh -c '{}'", line(who));
    let probe = format!("exec:{}", report("probe"));
    let main = format!("{}; exec sleep 1000", line("main"));
    let mut cmd = pid1(&[
        "--user",
        "nobody",
        "--file-env=DB_PASSWORD",
        "--pre",
        &report("pre"),
        "--probe",
        &probe,
        "--probe-start-interval",
        "50ms",
        "--",
        "sh",
        "-c",
        &main,
    ]);
    cmd.env("DB_PASSWORD_FILE", &secret);
    let r = start(cmd);
    let seen = |who: &str| std::fs::read_to_string(dir.join(who)).ok();
    // The probe may run before COMMAND's shell has written: wait for both.
    util::wait_until("the probe and COMMAND ran", T, || {
        seen("probe").is_some() && seen("main").is_some()
    });
    let main_saw = seen("main").expect("COMMAND ran");
    assert_eq!(
        main_saw, "s3cret-seam|none|/nonexistent\n",
        "{:?}",
        r.stderr
    );
    assert_eq!(seen("pre").as_deref(), Some(main_saw.as_str()), "pre step");
    assert_eq!(
        seen("probe").as_deref(),
        Some(main_saw.as_str()),
        "exec probe"
    );
    assert!(
        !r.stderr.iter().any(|l| l.contains("s3cret")),
        "{:?}",
        r.stderr
    );
}

/// Issue 17, item 12: only the main child gets NOTIFY_SOCKET. A pre step that inherited it
/// and said READY=1 was counted as a refused stranger.
#[test]
fn pre_steps_get_no_notify_socket() {
    let (status, stdout, stderr) = run(
        kai(&[
            "--notify",
            "sd",
            "--pre",
            "sh -c 'echo \"step ${NOTIFY_SOCKET-unset}\"'",
            "--",
            "sh",
            "-c",
            "echo \"main ${NOTIFY_SOCKET:+set}\"",
        ]),
        T,
    );
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "step unset\nmain set", "{stderr}");
}

/// Issue 17, item 10: --drain-delay holds a stop only once the child serves; a pre step
/// serves nothing. Before the fix the step's stop waited out the whole delay (here 60 s,
/// far past the deadline below).
#[test]
fn a_pre_step_is_stopped_without_the_drain_delay() {
    let dir = TempDir::new("seam-drain");
    let marker = dir.file("ran");
    let step = format!(
        "{} -c {}",
        util::python3(),
        quote(&py("print('step ready', flush=True)\nwait_forever()"))
    );
    let mut r = start(kai(&[
        "--drain-delay",
        "60s",
        "--pre",
        &step,
        "--",
        "touch",
        &marker,
    ]));
    r.wait_stdout("step ready", T);
    assert!(util::signal(r.pid(), libc::SIGTERM));
    assert_eq!(
        r.wait_exit(Duration::from_secs(20)).code(),
        Some(143),
        "{:?}",
        r.stderr
    );
    assert!(
        !r.stderr.iter().any(|l| l.contains("draining")),
        "{:?}",
        r.stderr
    );
    assert!(!std::path::Path::new(&marker).exists(), "COMMAND ran");
}

/// `text` as one word for kai-init's word splitting.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Issue 17, item 11: a newline in KAI_INIT_PRE separates steps, as a Kubernetes YAML
/// block scalar (`value: |`) writes them. Before the fix this ran one step,
/// `echo one echo two`.
#[test]
fn kai_init_pre_takes_one_step_per_line() {
    let mut cmd = kai(&["--", "echo", "main"]);
    cmd.env(
        "KAI_INIT_PRE",
        "echo one\necho 'two; still two'\n\necho three\n",
    );
    let (status, stdout, stderr) = run(cmd, T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "one\ntwo; still two\nthree\nmain", "{stderr}");
}
