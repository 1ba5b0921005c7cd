//! What an entrypoint script did, done by kai-init (issue 10): `--wait-for` a dependency
//! that comes up late, by IP, by `localhost` and by a name resolved through a test
//! /etc/hosts in a private mount namespace; the timeout's exit code and line; a stop
//! signal during the wait. Each test checks that COMMAND did or did not run by a fact it
//! leaves (a stdout line, a file).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::{self, free_port, run, start, TempDir};
use crate::{hermetic, kai, pid1, T};

/// COMMAND (which would create `marker`) never started.
fn assert_command_never_ran(marker: &str) {
    assert!(!std::path::Path::new(marker).exists(), "COMMAND ran");
}

/// kai-init, signalled at `sent`, exited with `code` within `limit`, and COMMAND never ran.
fn assert_stopped_before_command(
    r: &mut util::Running,
    sent: Instant,
    code: i32,
    limit: Duration,
    marker: &str,
) {
    assert_eq!(r.wait_exit(T).code(), Some(code), "{:?}", r.stderr);
    assert!(sent.elapsed() < limit, "{:?}", sent.elapsed());
    assert_command_never_ran(marker);
}

/// The one stderr line at level error, asserting there is exactly one.
fn error_line(stderr: &str) -> String {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error line expected: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    errors[0].to_owned()
}

#[test]
fn waits_for_a_port_that_opens_late() {
    let port = free_port();
    let target = format!("tcp://127.0.0.1:{port}");
    let mut r = start(kai(&["--wait-for", &target, "--", "echo", "started"]));
    r.wait_line("waiting", T);
    // The dependency comes up a second later; until then COMMAND must not run.
    std::thread::sleep(Duration::from_secs(1));
    assert!(r.stdout.is_empty(), "started too early: {:?}", r.stdout);
    assert!(r.child.try_wait().unwrap().is_none(), "{:?}", r.stderr);
    let _listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let opened = Instant::now();
    r.wait_stdout("started", T);
    assert_eq!(r.wait_exit(T).code(), Some(0), "{:?}", r.stderr);
    // Back-off is capped at about a second.
    assert!(
        opened.elapsed() < Duration::from_secs(3),
        "{:?}",
        opened.elapsed()
    );
}

#[test]
fn http_waits_for_a_passing_status() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let paths = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (seen2, paths2) = (seen.clone(), paths.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            paths2
                .lock()
                .unwrap()
                .push(head.lines().next().unwrap_or("").to_owned());
            // Two "not yet" answers, then a redirect (3xx passes, as with kubelet).
            let status = match seen2.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => "503 Service Unavailable",
                _ => "302 Found",
            };
            let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let target = format!("http://localhost:{port}/ready");
    let (status, stdout, stderr) = run(kai(&["--wait-for", &target, "--", "echo", "started"]), T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "started");
    assert!(seen.load(Ordering::SeqCst) >= 3);
    assert!(paths
        .lock()
        .unwrap()
        .iter()
        .all(|l| l == "GET /ready HTTP/1.1"));
}

#[test]
fn waits_are_in_order_and_a_file_counts_once_it_exists() {
    let dir = TempDir::new("wait-file");
    let flag = dir.file("ready");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = format!("tcp://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let file = format!("file:{flag}");
    let mut r = start(kai(&[
        "--wait-for",
        &file,
        "--wait-for",
        &tcp,
        "--",
        "echo",
        "started",
    ]));
    r.wait_line(&format!("waiting target={file}"), T);
    std::fs::write(&flag, "").unwrap();
    r.wait_line(&format!("waiting target={tcp}"), T);
    r.wait_stdout("started", T);
    assert_eq!(r.wait_exit(T).code(), Some(0), "{:?}", r.stderr);
}

#[test]
fn a_name_resolves_through_etc_hosts_once_it_is_there() {
    let dir = TempDir::new("wait-hosts");
    let hosts = dir.file("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!(
        "tcp://kai-dep.test:{}",
        listener.local_addr().unwrap().port()
    );
    // A private mount namespace with the test's own /etc/hosts; the machine's is untouched.
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$0\" /etc/hosts && exec \"$@\"")
        .arg(&hosts)
        .arg(util::bin())
        .args([
            "--log-level",
            "debug",
            "--wait-for",
            &target,
            "--",
            "echo",
            "started",
        ]);
    let mut r = start(hermetic(cmd));
    // Not resolving yet is "not up yet", not an error.
    r.wait_line("cannot resolve kai-dep.test", T);
    assert!(r.stdout.is_empty());
    // Same inode, new content: the bind mount shows it, and the next attempt resolves.
    std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.1 kai-dep.test\n").unwrap();
    r.wait_stdout("started", T);
    assert_eq!(r.wait_exit(T).code(), Some(0), "{:?}", r.stderr);
}

#[test]
fn timeout_exits_124_with_one_line_and_command_never_runs() {
    let dir = TempDir::new("wait-timeout");
    let marker = dir.file("ran");
    let target = format!("tcp://127.0.0.1:{}", free_port());
    let began = Instant::now();
    let (status, stdout, stderr) = run(
        kai(&[
            "--wait-for",
            &target,
            "--wait-timeout",
            "500ms",
            "--",
            "touch",
            &marker,
        ]),
        T,
    );
    assert_eq!(status.code(), Some(124), "{stderr}");
    assert!(began.elapsed() >= Duration::from_millis(500));
    let line = error_line(&stderr);
    assert!(line.contains(&target), "{line}");
    assert!(line.contains("not up after 500ms"), "{line}");
    assert!(line.contains("connection refused"), "{line}");
    assert!(stdout.is_empty());
    assert_command_never_ran(&marker);
}

#[test]
fn term_during_the_wait_exits_143_promptly_and_starts_nothing() {
    let dir = TempDir::new("wait-term");
    let marker = dir.file("ran");
    let missing = format!("file:{}", dir.file("never"));
    for (sig, code) in [(15, 143), (2, 130)] {
        let mut r = start(kai(&["--wait-for", &missing, "--", "touch", &marker]));
        r.wait_line("waiting", T);
        let sent = Instant::now();
        r.signal(sig);
        assert_stopped_before_command(&mut r, sent, code, Duration::from_secs(2), &marker);
    }
}

/// A signal that is no stop (USR1 here) during the wait has no child to go to: it is
/// dropped, said so at debug, and the wait goes on until the target is there.
#[test]
fn a_signal_that_is_no_stop_is_dropped_during_the_wait() {
    let dir = TempDir::new("wait-usr1");
    let marker = dir.file("ran");
    let target = dir.file("up");
    let flag = format!("file:{target}");
    let args = [
        "--log-level",
        "debug",
        "--wait-for",
        &flag,
        "--",
        "touch",
        &marker,
    ];
    let mut r = start(kai(&args));
    r.wait_line("waiting", T);
    r.signal(libc::SIGUSR1);
    let line = r.wait_line("received while waiting", T);
    assert!(line.contains("SIGUSR1"), "{line}");
    std::fs::write(&target, "").unwrap();
    assert_eq!(r.wait_exit(T).code(), Some(0), "{:?}", r.stderr);
    assert!(
        std::path::Path::new(&marker).exists(),
        "COMMAND ran after the wait"
    );
}

#[test]
fn wait_targets_are_checked_at_start() {
    for (value, needle) in [
        ("exec:true", "not a wait target"),
        ("tcp://db", "not a wait target"),
        ("db:5432", "not a wait target"),
    ] {
        let (status, _, stderr) = run(kai(&["--wait-for", value, "--", "true"]), T);
        assert_eq!(status.code(), Some(125), "{value}: {stderr}");
        crate::assert_one_line(&stderr, &[value, needle]);
    }
    let mut cmd = kai(&["--", "true"]);
    cmd.env("KAI_INIT_WAIT_TIMEOUT", "25h");
    let (status, _, stderr) = run(cmd, T);
    assert_eq!(status.code(), Some(125), "{stderr}");
    crate::assert_one_line(&stderr, &["KAI_INIT_WAIT_TIMEOUT"]);
}

#[test]
fn wait_for_variable_takes_a_comma_separated_list() {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = format!("tcp://127.0.0.1:{}", free_port());
    let mut cmd = kai(&["--wait-timeout", "300ms", "--", "true"]);
    let list = format!("tcp://127.0.0.1:{},{b}", a.local_addr().unwrap().port());
    cmd.env("KAI_INIT_WAIT_FOR", list);
    let (status, _, stderr) = run(cmd, T);
    // The first is up; the second names itself in the timeout line.
    assert_eq!(status.code(), Some(124), "{stderr}");
    assert!(error_line(&stderr).contains(&b), "{stderr}");
}

#[test]
fn term_during_a_hung_name_lookup_still_exits_promptly() {
    // A name server that takes queries and never answers, on a loopback address of its
    // own (port 53 must be free there), named by a private resolv.conf.
    let ns = "127.83.41.7";
    let server = std::net::UdpSocket::bind((ns, 53)).unwrap();
    server.set_read_timeout(Some(T)).unwrap();
    let dir = TempDir::new("wait-dns");
    let conf = dir.file("resolv.conf");
    std::fs::write(
        &conf,
        format!("nameserver {ns}\noptions timeout:30 attempts:5\n"),
    )
    .unwrap();
    let marker = dir.file("ran");
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"")
        .arg(&conf)
        .arg(util::bin())
        .args([
            "--wait-for",
            "tcp://kai-hung.invalid:80",
            "--",
            "touch",
            &marker,
        ]);
    let mut r = start(hermetic(cmd));
    // The fact that a lookup is in flight: its query reached the silent server.
    let mut buf = [0u8; 512];
    server.recv_from(&mut buf).expect("a DNS query");
    let sent = Instant::now();
    r.signal(15);
    assert_stopped_before_command(&mut r, sent, 143, Duration::from_secs(2), &marker);
}

#[test]
fn pre_steps_run_in_order_with_their_quoting_before_command() {
    let dir = TempDir::new("pre-order");
    let log = dir.file("log");
    let step1 = format!("sh -c 'echo \"one  $0\" >> {log}' \"two words\"");
    let step2 = format!(r#"sh -c "echo 'it'\''s' \"\$1\" >> {log}" x a\ b"#);
    let main = format!("echo main >> {log}");
    let (status, _, stderr) = run(
        kai(&["--pre", &step1, "--pre", &step2, "--", "sh", "-c", &main]),
        T,
    );
    assert_eq!(status.code(), Some(0), "{stderr}");
    let got = std::fs::read_to_string(&log).unwrap();
    assert_eq!(got, "one  two words\nit's a b\nmain\n", "{stderr}");
}

#[test]
fn pre_variable_holds_steps_split_at_unquoted_semicolons() {
    let dir = TempDir::new("pre-env");
    let log = dir.file("log");
    let mut cmd = kai(&["--", "sh", "-c", &format!("echo main >> {log}")]);
    cmd.env(
        "KAI_INIT_PRE",
        format!("sh -c 'echo a; echo b' >> {log};sh -c \"echo 'c;d' >> {log}\""),
    );
    // Redirections are not kai-init's: `>>` and the path are words given to sh -c's $0/$1.
    let (status, _, stderr) = run(cmd, T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "c;d\nmain\n");
}

#[test]
fn a_failing_pre_step_is_kai_inits_status_and_command_never_runs() {
    let dir = TempDir::new("pre-fail");
    let marker = dir.file("ran");
    let after = dir.file("after");
    for (step, code) in [("sh -c 'exit 7'", 7), ("sh -c 'kill -KILL $$'", 137)] {
        let (status, _, stderr) = run(
            kai(&[
                "--pre",
                step,
                "--pre",
                &format!("touch {after}"),
                "--",
                "touch",
                &marker,
            ]),
            T,
        );
        assert_eq!(status.code(), Some(code), "{stderr}");
        assert!(stderr.contains("pre step"), "{stderr}");
        assert!(!std::path::Path::new(&after).exists(), "the next step ran");
        assert_command_never_ran(&marker);
    }
}

#[test]
fn term_during_a_pre_step_is_forwarded_and_command_never_runs() {
    let dir = TempDir::new("pre-term");
    let marker = dir.file("ran");
    // A step that exits 0 on TERM: COMMAND must still not start.
    let polite = format!("{} -c {}", util::python3(), shell_quote(&crate::py(
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\nprint('ready', flush=True)\nwait_forever()"
    )));
    // A step that ignores TERM: killed after --stop-timeout, with its whole group.
    let stubborn = "sh -c 'trap \"\" TERM; sleep 1000 & echo ready; wait'".to_owned();
    for (step, code) in [(polite, 0), (stubborn, 137)] {
        let mut r = start(pid1(&[
            "--stop-timeout",
            "500ms",
            "--pre",
            &step,
            "--",
            "touch",
            &marker,
        ]));
        r.wait_stdout("ready", T);
        let sent = Instant::now();
        assert!(util::signal(r.pid1(T), 15), "kill -TERM kai-init");
        assert_stopped_before_command(&mut r, sent, code, Duration::from_secs(5), &marker);
    }
}

#[test]
fn pre_steps_run_after_the_waits_as_the_same_user_with_the_same_environment() {
    let dir = TempDir::new("pre-user");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let flag = dir.file("up");
    let log = dir.file("log");
    let show = format!("sh -c 'echo $(id -u) $HOME $KAI_TEST_VAR >> {log}'");
    let mut cmd = kai(&[
        "--user",
        "nobody",
        "--wait-for",
        &format!("file:{flag}"),
        "--pre",
        &show,
        "--",
        "sh",
        "-c",
        &format!("echo $(id -u) $HOME $KAI_TEST_VAR >> {log}"),
    ]);
    cmd.env("KAI_TEST_VAR", "v1");
    let mut r = start(cmd);
    r.wait_line("waiting", T);
    assert!(
        !std::path::Path::new(&log).exists(),
        "a step ran before the wait ended"
    );
    std::fs::write(&flag, "").unwrap();
    assert_eq!(r.wait_exit(T).code(), Some(0), "{:?}", r.stderr);
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], lines[1]);
    assert!(!lines[0].starts_with("0 "), "{lines:?}");
    assert!(lines[0].ends_with(" v1"), "{lines:?}");
}

#[test]
fn bad_pre_steps_are_refused_at_start() {
    for (value, needle) in [
        ("echo 'x", "single quote"),
        ("echo \"x", "double quote"),
        ("x\\", "backslash"),
        ("  ", "no command"),
    ] {
        let (status, _, stderr) = run(kai(&["--pre", value, "--", "true"]), T);
        assert_eq!(status.code(), Some(125), "{value}: {stderr}");
        crate::assert_one_line(&stderr, &["--pre", needle]);
    }
}

/// `text` as one sh word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

const SECRET: &str = "s3cr3t-Kai-Value";

/// `kai-init ARGS` with only PATH in its environment: the test runner's own `*_FILE`
/// variables (cargo sets CARGO_PKG_LICENSE_FILE next to CARGO_PKG_LICENSE) stay out.
fn kai_bare_env(args: &[&str]) -> Command {
    let mut cmd = kai(args);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KAI_INIT_HEALTH_SOCKET", "off");
    cmd
}

#[test]
fn file_env_reads_a_root_only_secret_before_dropping_to_nobody() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("file-env");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = dir.file("db_password");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o400)).unwrap();
    let script = format!(
        "cat {secret} 2>/dev/null && echo child-could-read; \
         [ \"$DB_PASSWORD\" = '{SECRET}' ] && echo value-matches; \
         [ -z \"${{DB_PASSWORD_FILE+set}}\" ] && echo file-var-removed; id -u"
    );
    let mut cmd = kai_bare_env(&[
        "--log-level",
        "trace",
        "--user",
        "nobody",
        "--file-env=DB_PASSWORD",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    cmd.env("DB_PASSWORD_FILE", &secret);
    let (status, stdout, stderr) = run(cmd, T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout.lines().take(2).collect::<Vec<_>>(),
        ["value-matches", "file-var-removed"],
        "{stdout}"
    );
    assert_ne!(stdout.lines().last(), Some("0"), "still root: {stdout}");
    assert!(
        !stderr.contains(SECRET),
        "the secret is in kai-init's output: {stderr}"
    );
}

#[test]
fn file_env_is_off_unless_asked_for() {
    let mut cmd = kai(&["--", "sh", "-c", "echo \"${A_FILE}|${A-unset}\""]);
    cmd.env("A_FILE", "/nonexistent");
    let (status, stdout, stderr) = run(cmd, T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "/nonexistent|unset");
}

/// Variables a case sets.
type Vars<'a> = &'a [(&'a str, &'a str)];

#[test]
fn file_env_failures_exit_125_naming_the_variable_never_the_content() {
    let dir = TempDir::new("file-env-bad");
    let secret = dir.file("pw");
    std::fs::write(&secret, SECRET).unwrap();
    let big = dir.file("big");
    std::fs::write(&big, SECRET.repeat(1024 * 1024 / SECRET.len() + 1)).unwrap();
    let dir_path = dir.path().to_string_lossy().into_owned();
    let cases: [(Vars, &[&str]); 4] = [
        (
            &[("PW_FILE", &secret), ("PW", SECRET)],
            &["PW", "PW_FILE", "both"],
        ),
        (
            &[("PW_FILE", "/nonexistent/pw")],
            &["PW_FILE", "/nonexistent/pw", "no such file"],
        ),
        (
            &[("PW_FILE", &dir_path)],
            &["PW_FILE", &dir_path, "directory"],
        ),
        (&[("PW_FILE", &big)], &["PW_FILE", &big, "limit"]),
    ];
    for (vars, needles) in cases {
        let mut cmd = kai_bare_env(&["--file-env=PW", "--", "echo", "ran"]);
        cmd.envs(vars.iter().copied());
        let (status, stdout, stderr) = run(cmd, T);
        assert_eq!(status.code(), Some(125), "{vars:?}: {stderr}");
        crate::assert_one_line(&stderr, needles);
        assert!(!stderr.contains(SECRET), "{stderr}");
        assert!(stdout.is_empty(), "COMMAND ran: {stdout}");
    }
}

#[test]
fn expand_env_fills_command_and_pre_steps_from_the_final_environment() {
    let dir = TempDir::new("expand");
    let log = dir.file("log");
    let secret = dir.file("token");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let pre = format!("sh -c 'echo \"pre $1\" >> {log}' x ${{PORT}}/${{TOKEN}}");
    let main = format!("echo \"main $1 $2 $3 $4 $5\" >> {log}");
    let mut cmd = kai_bare_env(&[
        "--log-level",
        "trace",
        "--file-env=TOKEN",
        "--expand-env",
        "--pre",
        &pre,
        "--",
        "sh",
        "-c",
        &main,
        "x",
        "${PORT}",
        "${MISSING:-dflt}",
        "$PORT",
        "$$",
        "${TOKEN}",
    ]);
    cmd.env("PORT", "3000").env("TOKEN_FILE", &secret);
    let (status, _, stderr) = run(cmd, T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("pre 3000/{SECRET}\nmain 3000 dflt $PORT $ {SECRET}\n")
    );
    assert!(
        !stderr.contains(SECRET),
        "a secret is in kai-init's output: {stderr}"
    );
}

#[test]
fn expand_env_refuses_an_unset_name_and_is_off_by_default() {
    let (status, stdout, stderr) = run(
        kai(&["--expand-env", "--", "echo", "${KAI_TEST_UNSET_NAME}"]),
        T,
    );
    assert_eq!(status.code(), Some(125), "{stderr}");
    assert!(stdout.is_empty());
    crate::assert_one_line(&stderr, &["KAI_TEST_UNSET_NAME", "not set"]);
    let (status, stdout, stderr) = run(kai(&["--", "echo", "${KAI_TEST_UNSET_NAME}", "$$"]), T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "${KAI_TEST_UNSET_NAME} $$");
}

/// Issue 17, item 14: `${...}` that is not `${NAME}` or `${NAME:-default}` is another
/// program's syntax (a JavaScript template, a shell's `${HOME%/}`): it reaches COMMAND as
/// written, where it used to stop start-up (125).
#[test]
fn expand_env_leaves_other_brace_syntax_as_written() {
    let js = "console.log(`${a.b}`)";
    let mut cmd = kai(&[
        "--expand-env",
        "--",
        "sh",
        "-c",
        "printf '%s|' \"$@\"; echo ${HOME%/}",
        "x",
        js,
        "${1}",
        "${PORT",
        "${KAI_TEST_PORT}",
        "$${KAI_TEST_PORT}",
    ]);
    cmd.env("HOME", "/home/kai/").env("KAI_TEST_PORT", "3000");
    let (status, stdout, stderr) = run(cmd, T);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!("{js}|${{1}}|${{PORT|3000|${{KAI_TEST_PORT}}|/home/kai")
    );
}
