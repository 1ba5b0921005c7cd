//! `exec:` probes split their command line as `--pre` steps do (issue 10): quotes and
//! backslashes group words, so `exec:sh -c 'test -e FILE'` runs `sh` with two arguments,
//! where a split on whitespace handed sh the quote characters themselves.

use crate::util::{self, TempDir};
use crate::{kai, socket_name, wait_status, At, T};

#[test]
fn an_exec_probe_takes_quoted_words() {
    let at = At::Unix(socket_name("exec-words"));
    let dir = TempDir::new("exec-words");
    let flag = dir.file("ready now");
    // The path has a blank in it: quoted in the test, escaped with a backslash in `[`.
    let escaped = flag.replace(' ', "\\ ");
    let probe = format!("--probe=exec:sh -c 'test -e \"$0\" && [ -e {escaped} ]' \"{flag}\"");
    let mut r = util::start(kai(&[
        &at.flag(),
        &probe,
        "--probe-start-interval=50ms",
        "--",
        "sleep",
        "1000",
    ]));
    let before = wait_status(&at, "/readyz?verbose", 503, T);
    assert!(before.body.contains("[-]probe failed: "), "{}", before.body);
    std::fs::write(&flag, "").unwrap();
    let after = wait_status(&at, "/readyz?verbose", 200, T);
    assert!(after.body.contains("[+]probe ok: exit 0"), "{}", after.body);
    crate::term_exits_143(&mut r);
}

#[test]
fn an_exec_probe_with_an_open_quote_is_refused_at_start() {
    for (probe, says) in [
        ("exec:sh -c 'test -e /x", "a single quote is not closed"),
        ("exec:check \"a", "a double quote is not closed"),
        ("exec:check a\\", "it ends with a backslash"),
    ] {
        let (status, stdout, stderr) = util::run(kai(&["--probe", probe, "--", "echo", "ran"]), T);
        assert_eq!(status.code(), Some(125), "{probe}: {stderr}");
        assert!(stdout.is_empty(), "COMMAND ran: {stdout}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].contains(probe) && lines[0].contains(says),
            "{stderr}"
        );
    }
}
