//! What a `--wait-for` timeout says when a name has several addresses (issue 10): the
//! error of the address the resolver prefers, not of the last one tried. In a container
//! with IPv6 off, `localhost` is 127.0.0.1 and ::1; the dependency refusing on 127.0.0.1
//! is the news, not ::1 being unusable.

use std::process::Command;

use crate::util::{self, run, TempDir};
use crate::{hermetic, T};

#[test]
fn a_timeout_names_the_preferred_address_error() {
    let dir = TempDir::new("wait-v6-off");
    let hosts = dir.file("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n127.0.0.1 kai-two.test\n::1 kai-two.test\n",
    )
    .unwrap();
    // A network namespace of its own (nothing in it listens; nothing leaves it) with
    // loopback up and IPv6 off, as `docker run --network none` gives; and a test
    // /etc/hosts in a mount namespace of its own.
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "ip link set lo up && echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6 \
             && mount --bind \"$0\" /etc/hosts && exec \"$@\"",
        )
        .arg(&hosts)
        .arg(util::bin())
        .args([
            "--wait-for",
            "tcp://kai-two.test:7777",
            "--wait-timeout",
            "300ms",
            "--",
            "true",
        ]);
    let (status, _, stderr) = run(hermetic(cmd), T);
    assert_eq!(status.code(), Some(124), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("not up after"))
        .unwrap_or_else(|| panic!("no timeout line: {stderr}"));
    assert!(line.contains("connection refused"), "{line}");
}
