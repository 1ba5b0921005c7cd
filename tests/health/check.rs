//! `kai-init check`: exit codes against a live kai-init over TCP and over the abstract
//! socket, against a dead one, against direct targets; its one line of output; usage
//! errors exit 64, never 2.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util;
use crate::{kai, node_server, socket_name, wait_status, At, T};

/// `kai-init check ARGS` with a clean environment plus `env`.
fn check_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(util::bin());
    cmd.arg("check").args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KAI_INIT_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// `kai-init check ARGS` with a clean environment plus `env`; returns (code, one line).
fn check(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let (status, stdout, stderr) = util::run(check_command(args, env), T);
    let out = format!("{stdout}{stderr}");
    assert_eq!(out.lines().count(), 1, "one line of output, got {out:?}");
    assert!(out.len() < 500, "{} bytes: {out}", out.len());
    (status.code().expect("exit code"), out)
}

#[test]
fn against_a_live_kai_init_over_both_transports() {
    let app = crate::free_port();
    let health = crate::free_port();
    let sock = socket_name("check");
    let at = At::Unix(sock.clone());
    let mut kai = node_server(
        &[
            &at.flag(),
            &format!("--health-listen=127.0.0.1:{health}"),
            &format!("--probe=http://127.0.0.1:{app}/"),
            "--probe-interval=100ms",
            "--probe-failures=1000",
        ],
        app,
        false,
    );
    kai.wait_stdout("node: started", T);
    wait_status(&at, "/livez", 200, T);
    let listen = format!("127.0.0.1:{health}");
    let unspecified = format!("0.0.0.0:{health}");
    let over_tcp = [("KAI_INIT_HEALTH_LISTEN", listen.as_str())];
    let over_unspecified = [("KAI_INIT_HEALTH_LISTEN", unspecified.as_str())];
    let over_socket = [("KAI_INIT_HEALTH_SOCKET", sock.as_str())];
    let over_at_socket_name = format!("@{sock}");
    let over_at_socket = [("KAI_INIT_HEALTH_SOCKET", over_at_socket_name.as_str())];

    // Not ready yet (the server does not listen): /healthz fails, /livez passes.
    let (code, out) = check(&[], &over_socket);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with(&format!("unhealthy: @{sock}/healthz 503 [-]probe failed: ")),
        "{out}"
    );
    let (code, out) = check(&[], &over_tcp);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("http://127.0.0.1:{health}/healthz 503")),
        "{out}"
    );
    let (code, out) = check(&["--path", "/livez"], &over_at_socket);
    assert_eq!(
        (code, out.as_str()),
        (0, format!("healthy: @{sock}/livez 200 ok").as_str())
    );

    kai.signal(12);
    kai.wait_stdout("node: listening", T);
    wait_status(&at, "/readyz", 200, T);
    for env in [
        &over_socket[..],
        &over_at_socket,
        &over_tcp,
        &over_unspecified,
    ] {
        let (code, out) = check(&[], env);
        assert_eq!(code, 0, "{env:?}: {out}");
        assert!(
            out.starts_with("healthy: ") && out.ends_with("/healthz 200 ok"),
            "{out}"
        );
    }
    // The TCP listener wins over the socket when both are set.
    let both = [over_tcp[0], ("KAI_INIT_HEALTH_SOCKET", "nothing-here")];
    assert_eq!(check(&[], &both).0, 0);
    let (code, out) = check(&["--path", "/nope"], &over_tcp);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("404"), "{out}");
    let (code, _) = check(&["--path", "/nope", "--expect-status", "404"], &over_tcp);
    assert_eq!(code, 0);

    // Direct targets, all of which must pass.
    let url = format!("http://127.0.0.1:{app}/");
    let tcp = format!("tcp://127.0.0.1:{app}");
    let (code, out) = check(&[&url, &tcp], &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, format!("healthy: {url} 200 hello; {tcp} connected"));
    let header_url = format!("http://127.0.0.1:{app}/needs-header");
    assert_eq!(check(&[&header_url], &[]).0, 1, "400 without the header");
    assert_eq!(check(&["-H", "X-Probe: yes", &header_url], &[]).0, 0);
    let closed = format!("tcp://127.0.0.1:{}", crate::free_port());
    let (code, out) = check(&[&url, &closed], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unreachable (connection refused)"), "{out}");
    kai.signal(15);
    assert_eq!(kai.wait_exit(T).code(), Some(0));
}

#[test]
fn against_a_dead_kai_init() {
    let sock = socket_name("dead");
    let (status, _, _) = util::run(kai(&[&format!("--health-socket={sock}"), "--", "true"]), T);
    assert_eq!(status.code(), Some(0));
    let (code, out) = check(&[], &[("KAI_INIT_HEALTH_SOCKET", &sock)]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        format!("unhealthy: @{sock}/healthz unreachable (connection refused)")
    );
    let port = crate::free_port().to_string();
    let (code, out) = check(
        &[],
        &[("KAI_INIT_HEALTH_LISTEN", &format!("127.0.0.1:{port}"))],
    );
    assert_eq!(code, 1);
    assert!(out.contains("unreachable (connection refused)"), "{out}");
}

#[test]
fn a_silent_server_times_out() {
    // Accepted by the kernel, never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    let started = Instant::now();
    let (code, out) = check(&["--timeout", "300ms", &url], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("timed out") || out.contains("temporarily unavailable"),
        "{out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn output_stays_one_short_line() {
    let closed = crate::free_port();
    let targets: Vec<String> = (0..40)
        .map(|i| format!("http://127.0.0.1:{closed}/a-rather-long-path-to-make-the-line-long/{i}"))
        .collect();
    let args: Vec<&str> = targets.iter().map(String::as_str).collect();
    let (code, out) = check(&args, &[]);
    assert_eq!(code, 1);
    assert!(out.len() < 500 && out.ends_with("..."), "{out}");
}

#[test]
fn usage_errors_exit_64_and_help_0() {
    for args in [
        &["--bogus"][..],
        &["--timeout", "soon"],
        &["--timeout", "0s"],
        &["--expect-status", "2xx", "tcp://127.0.0.1:1"],
        &["ftp://example"],
        &["exec:true"],
        &["-H", "no colon", "tcp://127.0.0.1:1"],
        &["--path", "relative"],
    ] {
        let (code, out) = check(args, &[]);
        assert_eq!(code, 64, "{args:?}: {out}");
        assert!(out.starts_with("kai-init check: "), "{out}");
    }
    let (code, _) = check(&[], &[("KAI_INIT_HEALTH_SOCKET", "off")]);
    assert_eq!(code, 64);
    // Unreadable is not unset (which would ask the default socket instead).
    for key in ["KAI_INIT_HEALTH_SOCKET", "KAI_INIT_HEALTH_LISTEN"] {
        use std::os::unix::ffi::OsStrExt;
        let mut cmd = Command::new(util::bin());
        cmd.arg("check")
            .env(key, std::ffi::OsStr::from_bytes(b"kai\xff"));
        let (status, stdout, _) = util::run(cmd, T);
        assert_eq!(status.code(), Some(64), "{key}: {stdout}");
        assert_eq!(stdout, format!("kai-init check: {key} is not valid UTF-8"));
    }
    let (status, stdout, _) = util::run(
        {
            let mut c = Command::new(util::bin());
            c.args(["check", "--help"]);
            c
        },
        T,
    );
    assert_eq!(status.code(), Some(0));
    assert!(stdout.contains("Usage: kai-init check"), "{stdout}");
    assert!(stdout.contains("--expect-status"), "{stdout}");
}

/// `--health-listen [::]:PORT` in a container with IPv6 off (Docker's default, as
/// `--network none` gives it): there is no ::1 to reach, and the dual-stack listener
/// answers on 127.0.0.1, which check tries next.
#[test]
fn a_dual_stack_listener_is_checked_where_ipv6_is_off() {
    // A network namespace of its own: loopback up, IPv6 off on it. kai-init serves
    // [::]:8081 there; check runs until it passes (bounded), and its last line is printed.
    let script = r#"
        ip link set lo up && echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6 || exit 90
        "$0" --health-listen '[::]:8081' --health-socket off --log-level warn -- sleep 30 &
        kai=$!
        i=0
        while [ $i -lt 100 ]; do
            out=$(KAI_INIT_HEALTH_LISTEN='[::]:8081' "$0" check 2>&1) && break
            i=$((i + 1)); sleep 0.05
        done
        kill $kai; wait $kai
        echo "$out"
    "#;
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "sh", "-c", script]).arg(util::bin());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KAI_INIT_") {
            cmd.env_remove(key);
        }
    }
    let (status, stdout, stderr) = util::run(cmd, T);
    assert!(
        status.success() || status.code() == Some(143),
        "{status:?} {stderr}"
    );
    assert_eq!(
        stdout.trim(),
        "healthy: http://localhost:8081/healthz 200 ok",
        "{stderr}"
    );
}

/// Reads one request head (up to its blank line) from a check, so that closing after it
/// is a plain close and not a reset for unread bytes.
fn read_request(conn: &mut TcpStream) {
    conn.set_read_timeout(Some(T)).unwrap();
    read_head(conn);
}

/// Reads up to the end of a request head; the caller bounds the reads.
fn read_head(conn: &mut impl Read) {
    // Only the last bytes are kept: the heads here are up to 1 MB.
    let mut tail = Vec::new();
    let mut buf = [0u8; 16384];
    while !tail.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).expect("the request head");
        assert!(n > 0, "the check hung up before its request ended");
        tail.drain(..tail.len().saturating_sub(3));
        tail.extend_from_slice(&buf[..n]);
    }
}

/// A server that reads the request and closes without a word, and one that answers
/// with something that is not HTTP: both are unreachable, and the line says which of
/// the two happened.
#[test]
fn a_server_that_closes_silently_or_answers_other_than_http_is_named_for_it() {
    for (answer, seen) in [
        (&b""[..], "connection closed without a response"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP response"),
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            read_request(&mut conn);
            conn.write_all(answer).unwrap();
        });
        let (code, out) = check(&["--timeout", "20s", &url], &[]);
        server.join().unwrap();
        assert_eq!(
            (code, out.as_str()),
            (1, format!("unhealthy: {url} unreachable ({seen})").as_str())
        );
    }
}

/// A server that sends its status line and then nothing, holding the connection open:
/// at the deadline check judges it by the code that arrived in time (as kubelet does),
/// not as a timeout.
#[test]
fn a_status_line_that_arrived_before_the_deadline_decides_the_check() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (done, until_done) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(b"HTTP/1.1 204 No Content\r\n").unwrap();
        // Open, and silent, until the check has exited.
        let _ = until_done.recv();
    });
    let (code, out) = check(&["--timeout", "3s", &url], &[]);
    drop(done);
    server.join().unwrap();
    assert_eq!(
        (code, out.as_str()),
        (0, format!("healthy: {url} 204").as_str())
    );
}

/// A server that hangs up without reading a request larger than a Unix socket buffers
/// (1 MB of headers against 208 KiB): check's write fails, and that failure is the
/// answer at once, "unreachable (...)", not a retry until the deadline.
#[test]
fn a_write_that_fails_is_unreachable_not_retried_until_the_deadline() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};
    let name = socket_name("hangup");
    let listener =
        UnixListener::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
    let server = thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        drop(conn);
    });
    let pad = "v".repeat(100_000);
    let headers: Vec<String> = (0..10).map(|i| format!("X-Pad-{i}: {pad}")).collect();
    let args: Vec<&str> = headers.iter().flat_map(|h| ["-H", h.as_str()]).collect();
    let at = format!("@{name}");
    let (code, out) = check(
        &[&args[..], &["--timeout", "20s"]].concat(),
        &[("KAI_INIT_HEALTH_SOCKET", &at)],
    );
    server.join().unwrap();
    assert_eq!(code, 1, "{out}");
    let prefix = format!("unhealthy: @{name}/healthz unreachable (");
    assert!(out.starts_with(&prefix), "{out}");
}

/// A server on the socket that sends exactly the 4 KiB check reads at most, none of it
/// HTTP, and then holds the connection open: check judges what it has at once. (A read
/// past the 4 KiB, even of nothing, would wait on a Unix socket until the deadline.)
#[test]
fn four_kib_of_non_http_is_judged_at_once_while_the_server_holds_on() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};
    let name = socket_name("4k");
    let listener =
        UnixListener::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
    let (done, until_done) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(T)).unwrap();
        read_head(&mut conn);
        conn.write_all(&[b'x'; 4096]).unwrap();
        // Open, and silent, until the check has exited.
        let _ = until_done.recv();
    });
    let at = format!("@{name}");
    let (code, out) = check(&["--timeout", "20s"], &[("KAI_INIT_HEALTH_SOCKET", &at)]);
    drop(done);
    server.join().unwrap();
    assert_eq!(
        (code, out.as_str()),
        (
            1,
            format!("unhealthy: {at}/healthz unreachable (not an HTTP response)").as_str()
        )
    );
}

/// The system call `pid`'s main thread is blocked in (the first field of
/// /proc/PID/syscall), if it is blocked in one.
fn blocked_in(pid: i32) -> Option<i64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// A check stopped and continued (SIGSTOP and SIGCONT: a debugger, a shell's job
/// control) while it waits on its socket. Linux ends a socket wait that has a timeout
/// with EINTR when a stop signal arrives, even with no handler (signal(7)); check must
/// take that as "go on", for its write and for its read, not as a failed exchange. The
/// server here takes nothing and says nothing until the check has been stopped and
/// continued twice in the same wait (the first stop may end a write that had sent part
/// of the request, with that count; the second meets a write that has sent nothing).
#[test]
fn a_check_stopped_and_continued_mid_exchange_carries_on() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};
    let pad = "v".repeat(100_000);
    let headers: Vec<String> = (0..10).map(|i| format!("X-Pad-{i}: {pad}")).collect();
    let mut big: Vec<&str> = headers.iter().flat_map(|h| ["-H", h.as_str()]).collect();
    big.extend(["--timeout", "30s"]);
    // (what the check waits in, its arguments): a 1 MB request that a Unix socket
    // cannot take at once, then a short one whose answer is held back.
    let waits: [(&[i64], &[&str]); 2] = [
        (&[libc::SYS_write, libc::SYS_sendto], &big),
        (&[libc::SYS_read, libc::SYS_recvfrom], &["--timeout", "30s"]),
    ];
    for (calls, args) in waits {
        let name = socket_name("stopped");
        let listener =
            UnixListener::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
        let (go, wait_go) = mpsc::channel::<()>();
        let server = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            wait_go.recv().unwrap();
            conn.set_read_timeout(Some(T)).unwrap();
            read_head(&mut conn);
            conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nok\n")
                .unwrap();
        });
        let at = format!("@{name}");
        let mut running = util::start(check_command(args, &[("KAI_INIT_HEALTH_SOCKET", &at)]));
        let pid = running.pid();
        let ended = || matches!(util::state(pid), None | Some('Z'));
        for _ in 0..2 {
            util::wait_until("the check to wait on its socket (or end)", T, || {
                ended()
                    || (util::state(pid) == Some('S')
                        && blocked_in(pid).is_some_and(|n| calls.contains(&n)))
            });
            if ended() {
                break;
            }
            assert!(util::signal(pid, libc::SIGSTOP));
            util::wait_until("the check to stop", T, || util::state(pid) == Some('T'));
            assert!(util::signal(pid, libc::SIGCONT));
        }
        go.send(()).unwrap();
        let status = running.wait_exit(T);
        let out = running.stdout.join("\n");
        assert_eq!(
            (status.code(), out.as_str()),
            (Some(0), format!("healthy: {at}/healthz 200 ok").as_str()),
            "waiting in {calls:?}; stderr: {:?}",
            running.stderr
        );
        server.join().unwrap();
    }
}
