//! What each fuzz target does with its bytes, in one place: `fuzz/fuzz_targets/NAME.rs`
//! includes this file and calls the function named NAME here, and the `corpora_replay`
//! test (tests/fuzz.rs, which includes it too) feeds every committed input for NAME
//! (`fuzz/seeds/NAME/`, `fuzz/corpus/NAME/`) to the same function on stable, so CI replays
//! exactly what the fuzzer explored. It lives beside the targets, outside the product's
//! module tree, and reaches kai-init only through the library's public items.
//!
//! Each function takes arbitrary bytes, must never panic on them, and asserts the
//! invariants its parser promises (ranges, round trips); a failed assertion is a finding
//! like any crash. Adding a target: a function here, a line in [`TARGETS`], a two-line
//! file in fuzz/fuzz_targets/ with its `[[bin]]` in fuzz/Cargo.toml, and a seeded
//! `fuzz/seeds/NAME/` (fuzz/README.md).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use kai_init::config::signal_names::{RTMAX, RTMIN};
use kai_init::config::target::Target;
use kai_init::config::user::UserSpec;
use kai_init::sys::status::{Ended, WaitEvent};

/// What a fuzz target runs on one input.
pub type Run = fn(&[u8]);

/// Every target by name: the fuzz target's file name and its corpus directory.
pub const TARGETS: &[(&str, Run)] = &[
    ("duration", duration),
    ("signal_names", signal_names),
    ("target", target),
    ("exit_status", exit_status),
    ("cli", cli),
    ("proc_stat", proc_stat),
    ("user_spec", user_spec),
    ("passwd", passwd),
    ("sd_notify", sd_notify),
    ("http_head", http_head),
    ("wait_target", wait_target),
    ("words", words),
    ("expand", expand),
    ("cgroup", cgroup),
];

/// `--stop-timeout` and friends: any text parses or is refused; surrounding blanks
/// never change the answer.
pub fn duration(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let padded = kai_init::util::duration::parse(&format!(" {text}\t"));
    assert_eq!(
        kai_init::util::duration::parse(text).ok(),
        padded.ok(),
        "{text:?}"
    );
}

/// Signal specs: the first byte says whether 0 is allowed. A parsed number is in range,
/// and every signal's name parses back to it; `name` takes any number.
pub fn signal_names(data: &[u8]) {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    if let Some(raw) = rest.first_chunk::<4>() {
        let sig = i32::from_le_bytes(*raw);
        let name = kai_init::config::signal_names::name(sig);
        if (1..=RTMAX).contains(&sig) {
            assert_eq!(
                kai_init::config::signal_names::parse(&name, false),
                Ok(sig),
                "{name}"
            );
        }
    }
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let allow_zero = flag & 1 == 1;
    if let Ok(sig) = kai_init::config::signal_names::parse(text, allow_zero) {
        assert!(
            (1..=RTMAX).contains(&sig) || (allow_zero && sig == 0),
            "{sig}"
        );
        if sig != 0 {
            let name = kai_init::config::signal_names::name(sig);
            assert_eq!(
                kai_init::config::signal_names::parse(&name, false),
                Ok(sig),
                "{name}"
            );
            assert!(sig < RTMIN || name.starts_with("SIGRTMIN+"), "{name}");
        }
    }
}

/// Probe and check targets. A `--probe` target (IP or localhost host) prints as text that
/// parses back to the same target; `parse_probe` accepts nothing `parse` refuses.
pub fn target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Target::parse(text);
    if let Ok(t) = &parsed {
        let _ = t.to_string();
    }
    if let Ok(probe) = Target::parse_probe(text) {
        assert_eq!(parsed.as_ref(), Ok(&probe));
        let shown = probe.to_string();
        assert_eq!(Target::parse(&shown), Ok(probe), "{shown}");
    }
}

/// `--wait-for` targets: never `exec:`, the same as [`Target::parse`] gives, and shown
/// as text that parses back to the same target.
pub fn wait_target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = Target::parse_wait(text) {
        assert!(!matches!(t, Target::Exec(_)), "{text:?}");
        assert_eq!(Target::parse(text).as_ref(), Ok(&t));
        let shown = t.to_string();
        assert_eq!(Target::parse_wait(&shown), Ok(t), "{shown}");
    }
}

/// `--pre` steps: `KAI_INIT_PRE` cut into steps never loses a word, and splitting a step
/// gives at least one word or an error; neither panics.
pub fn words(data: &[u8]) {
    let steps = kai_init::config::words::steps(data);
    for step in &steps {
        assert!(!step.iter().all(u8::is_ascii_whitespace));
        if let Ok(text) = std::str::from_utf8(step) {
            if let Ok(words) = kai_init::config::words::split(text) {
                assert!(!words.is_empty());
            }
        }
    }
}

/// `--expand-env`: with every variable set (to the empty string) any bytes expand, since
/// only an unset `${NAME}` is refused (issue 17: another program's `${...}` is left as
/// written), and the result is never longer than the input (a reference only ever shrinks
/// or takes its default, which it contains); text without `$` comes back as it was.
pub fn expand(data: &[u8]) {
    let empty = |_: &str| Some(Vec::new());
    let out = kai_init::start::expand::expand(data, &empty).expect("refused with every name set");
    assert!(out.len() <= data.len());
    if !data.contains(&b'$') {
        assert_eq!(
            kai_init::start::expand::expand(data, &|_| None).as_deref(),
            Ok(data)
        );
    }
}

/// Raw wait statuses (4 bytes) and `--success-code` lists (the rest): the exit code is the
/// child's code, or 128+N for signal N, or 0 when listed.
pub fn exit_status(data: &[u8]) {
    let Some((raw, codes)) = data.split_first_chunk::<4>() else {
        return;
    };
    let event = kai_init::sys::status::decode(i32::from_le_bytes(*raw));
    let ended = match event {
        WaitEvent::Ended(ended) => ended,
        WaitEvent::Stopped(sig) => {
            assert!((0..=255).contains(&sig), "{sig}");
            return;
        }
        WaitEvent::Continued => return,
    };
    let plain = match ended {
        Ended::Exited(code) => u8::try_from(code).expect("an exit code fits a byte"),
        Ended::Signaled(sig) => {
            assert!((0..128).contains(&sig), "{sig}");
            128 + sig as u8
        }
    };
    assert_eq!(kai_init::supervise::exit::exit_code(ended, &[]), plain);
    let code = kai_init::supervise::exit::exit_code(ended, codes);
    assert_eq!(code, if codes.contains(&plain) { 0 } else { plain });
}

/// Whole command lines: the first byte picks `kai-init` or `kai-init check`, the rest is
/// split at NUL into arguments (bytes, not necessarily UTF-8). Run with no KAI_INIT_*
/// variable set: the parser reads them.
pub fn cli(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let args: Vec<OsString> = rest
        .split(|&b| b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    if which & 1 == 0 {
        let _ = kai_init::config::cli::parse(&args);
    } else {
        let _ = kai_init::config::cli::parse_check(&args);
    }
}

/// /proc/PID/stat lines as the kernel writes them (any bytes in the name), and worse: a
/// line parses whatever its name holds, so replacing the name changes nothing.
pub fn proc_stat(data: &[u8]) {
    if let Some(p) = kai_init::sys::proc::parse_stat(7, data) {
        assert_eq!(p.pid, 7);
        if let (Some(open), Some(close)) = (
            data.iter().position(|&b| b == b'('),
            data.iter().rposition(|&b| b == b')'),
        ) {
            if open < close {
                let renamed = [&data[..open], b"(x\xff)", &data[close + 1..]].concat();
                assert_eq!(kai_init::sys::proc::parse_stat(7, &renamed), Some(p));
            }
        }
    }
}

/// `--user USER[:GROUP]` as bytes: a parsed spec joined back with `:` parses to itself.
pub fn user_spec(data: &[u8]) {
    if let Ok(spec) = UserSpec::parse(data) {
        assert!(
            !spec.user.is_empty() && !spec.user.contains(&b':'),
            "{spec:?}"
        );
        let mut joined = spec.user.clone();
        if let Some(group) = &spec.group {
            joined.push(b':');
            joined.extend_from_slice(group);
        }
        assert_eq!(UserSpec::parse(&joined), Ok(spec));
    }
}

/// /etc/passwd and /etc/group as any bytes: the first line of the input is the `--user`
/// spec, the rest is split at the first NUL into passwd and group. Resolving never
/// panics, and what it finds is consistent: an explicit numeric GROUP is the only group,
/// the primary gid comes first, and no id is (uid_t)-1.
pub fn passwd(data: &[u8]) {
    let (spec, files) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let (passwd, group) = match files.iter().position(|&b| b == 0) {
        Some(i) => (&files[..i], &files[i + 1..]),
        None => (files, &b""[..]),
    };
    let Ok(spec) = UserSpec::parse(spec) else {
        return;
    };
    if let Ok(id) = kai_init::config::user::resolve(&spec, passwd, group) {
        assert_eq!(id.groups.first(), Some(&id.gid), "{id:?}");
        assert!(id.uid != u32::MAX && id.gid != u32::MAX, "{id:?}");
        if spec.group.is_some() {
            assert_eq!(id.groups, vec![id.gid], "{id:?}");
        }
        assert!(!id.home.is_empty(), "{id:?}");
    }
}

/// sd_notify datagrams as any bytes, applied twice to one status: never a panic, and no
/// control character survives into STATUS (it is shown to clients and in logs).
pub fn sd_notify(data: &[u8]) {
    let mut status = kai_init::health::notify::NotifyStatus::default();
    let now = std::time::Instant::now();
    for _ in 0..2 {
        let _ = kai_init::health::notify::apply(&mut status, data, now);
        if let Some(text) = &status.status {
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }
}

/// HTTP response heads as the check client and the http probe read them: never a panic;
/// a complete head has a three-digit status and ends inside the input; `status` agrees
/// with `parse_head` on every complete head.
pub fn http_head(data: &[u8]) {
    use kai_init::health::client::http::{parse_head, status, Head};
    match parse_head(data) {
        Head::Complete { status: code, len } => {
            assert!((100..=999).contains(&code), "{code}");
            assert!(len <= data.len());
            assert_eq!(status(data).ok(), Some(Some(code)));
        }
        Head::Partial | Head::Invalid => {}
    }
    let _ = status(data);
}

/// The container's cgroup files (issue 9): the input is split at the first NUL into
/// /proc/self/cgroup and /proc/self/mountinfo, and the whole of it is also read as each
/// value file. A directory found lies under a cgroup mount point and never climbs out
/// of it; a limit is a number or "unlimited"; a pending-signal mask never panics.
pub fn cgroup(data: &[u8]) {
    use kai_init::sys::cgroup::{self as cg, Cgroup};
    let (membership, mounts) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mounts = cg::parse_mountinfo(mounts);
    if let Some(found) = cg::resolve(&cg::parse_proc_cgroup(membership), &mounts) {
        let dirs: Vec<&std::path::PathBuf> = match &found {
            Cgroup::V2(d) => vec![d],
            Cgroup::V1 {
                memory,
                cpu,
                cpuacct,
            } => [memory, cpu, cpuacct].into_iter().flatten().collect(),
        };
        // The mount point is the kernel's (canonical); what is added below it comes from
        // the cgroup path and must never climb.
        for d in dirs {
            let up = std::path::Component::ParentDir;
            let under = |m: &cg::Mount| {
                let below = d.strip_prefix(std::ffi::OsStr::from_bytes(&m.mount_point));
                below.is_ok_and(|b| !b.components().any(|c| c == up))
            };
            assert!(mounts.iter().any(under), "{d:?} is under no mount");
        }
    }
    if let Some(cg::Limit::Bytes(n)) = cg::parse_limit(data) {
        assert_eq!(
            cg::parse_limit(n.to_string().as_bytes()),
            Some(cg::Limit::Bytes(n))
        );
    }
    let _ = cg::parse_keyed(data, "oom_kill");
    assert!(cg::parse_pids(data).iter().all(|&p| p > 0));
    let _ = cg::parse_statm_resident(data);
    let _ = kai_init::sys::proc::sigkill_pending(data);
}
