//! `USER[:GROUP]` resolved against the bytes of /etc/passwd and /etc/group, with gosu's
//! semantics.
//!
//! A static musl binary has no NSS, so kai-init reads the files itself. This module is
//! pure (bytes in, identity out); `start` reads the files and `sys::privileges` applies
//! the result.
//!
//! Names are bytes, as they are to the kernel, to libc and to gosu: a Latin-1 GECOS field
//! or a name that is not UTF-8 is an ordinary entry, and one such byte must never make a
//! whole file unreadable (that once turned `--user app` into "no such name" and silently
//! dropped every supplementary group).
//!
//! Rules (gosu's, except where marked):
//! - each part is a name or a number; an all-digit name is a number;
//! - no GROUP: the primary group from /etc/passwd plus every /etc/group entry that lists
//!   the user; GROUP given: that group only;
//! - a numeric uid missing from /etc/passwd is allowed, with HOME=/. Its group defaults
//!   to the same number. *Unlike gosu, Docker and su-exec, which keep gid 0 here, kai-init
//!   never leaves the child in the root group by accident.*
//! - *4294967295 is never an id*: it is `(uid_t)-1`, which set*id(2) read as "unchanged".
//!   As a number in USER[:GROUP] it is looked up as a name; entries with it are skipped.

use std::fmt;

use crate::util::text::Shown;

/// The parsed `--user` value, before any file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub user: Vec<u8>,
    pub group: Option<Vec<u8>>,
}

impl UserSpec {
    /// Splits `USER[:GROUP]` at the first `:`. Takes bytes (a `&str` or `&[u8]` will do):
    /// a name need not be UTF-8.
    pub fn parse(text: impl AsRef<[u8]>) -> Result<Self, String> {
        let text = text.as_ref();
        let (user, group) = match text.iter().position(|b| *b == b':') {
            Some(i) => (&text[..i], Some(&text[i + 1..])),
            None => (text, None),
        };
        if user.is_empty() {
            return Err("the user part is empty (expected USER[:GROUP])".into());
        }
        if group == Some(b"") {
            return Err("the group part after ':' is empty (expected USER[:GROUP])".into());
        }
        Ok(UserSpec {
            user: user.to_vec(),
            group: group.map(<[u8]>::to_vec),
        })
    }
}

impl fmt::Display for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.group {
            Some(g) => write!(f, "{}:{}", Shown(&self.user), Shown(g)),
            None => write!(f, "{}", Shown(&self.user)),
        }
    }
}

/// Who the child will be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups for setgroups(2), the primary gid first.
    pub groups: Vec<u32>,
    /// The home directory from /etc/passwd (HOME), `/` when there is none.
    pub home: Vec<u8>,
    /// The login name, when /etc/passwd has one (USER and LOGNAME).
    pub name: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserError {
    UnknownUser(Vec<u8>),
    UnknownGroup(Vec<u8>),
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserError::UnknownUser(u) => {
                write!(
                    f,
                    "unknown user '{}': no such name in /etc/passwd",
                    Shown(u)
                )
            }
            UserError::UnknownGroup(g) => {
                write!(
                    f,
                    "unknown group '{}': no such name in /etc/group",
                    Shown(g)
                )
            }
        }
    }
}

/// The entries of a colon-separated file with at least `fields` fields; comments and
/// short lines are skipped, as libc's parsers skip them.
fn records(file: &[u8], fields: usize) -> impl Iterator<Item = Vec<&[u8]>> {
    file.split(|b| *b == b'\n').filter_map(move |line| {
        let f: Vec<&[u8]> = line.split(|b| *b == b':').collect();
        (f.len() >= fields && !line.starts_with(b"#")).then_some(f)
    })
}

struct PasswdEntry<'a> {
    name: &'a [u8],
    uid: u32,
    gid: u32,
    home: &'a [u8],
}

fn passwd_entries(passwd: &[u8]) -> impl Iterator<Item = PasswdEntry<'_>> {
    // name:password:uid:gid:gecos:home:shell
    records(passwd, 7).filter_map(|f| {
        Some(PasswdEntry {
            name: f[0],
            uid: id_number(f[2])?,
            gid: id_number(f[3])?,
            home: f[5],
        })
    })
}

struct GroupEntry<'a> {
    name: &'a [u8],
    gid: u32,
    members: &'a [u8],
}

fn group_entries(group: &[u8]) -> impl Iterator<Item = GroupEntry<'_>> {
    // name:password:gid:member,member
    records(group, 4).filter_map(|f| {
        Some(GroupEntry {
            name: f[0],
            gid: id_number(f[2])?,
            members: f[3],
        })
    })
}

/// An id written in decimal digits (no sign, no spaces), below `(uid_t)-1`.
fn id_number(text: &[u8]) -> Option<u32> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text)
        .ok()?
        .parse()
        .ok()
        .filter(|n| *n != u32::MAX)
}

/// Resolves `spec` against the bytes of /etc/passwd and /etc/group.
pub fn resolve(spec: &UserSpec, passwd: &[u8], group: &[u8]) -> Result<Identity, UserError> {
    let uid_wanted = id_number(&spec.user);
    let entry = passwd_entries(passwd).find(|e| match uid_wanted {
        Some(uid) => e.uid == uid,
        None => e.name == spec.user,
    });
    let (uid, primary_gid, home, name) = match (entry, uid_wanted) {
        (Some(e), _) => (e.uid, e.gid, e.home, Some(e.name.to_vec())),
        (None, Some(uid)) => (uid, uid, &b""[..], None),
        (None, None) => return Err(UserError::UnknownUser(spec.user.clone())),
    };
    let home = match home {
        b"" => b"/".to_vec(),
        h => h.to_vec(),
    };

    let (gid, groups) = match &spec.group {
        Some(g) => {
            let gid = match id_number(g) {
                Some(gid) => gid,
                None => group_entries(group)
                    .find(|e| e.name == g)
                    .map(|e| e.gid)
                    .ok_or_else(|| UserError::UnknownGroup(g.clone()))?,
            };
            (gid, vec![gid])
        }
        None => {
            let mut groups = vec![primary_gid];
            if let Some(name) = &name {
                for e in group_entries(group) {
                    let listed = (e.members.split(|b| *b == b','))
                        .any(|m| m.trim_ascii() == name.as_slice());
                    if listed && !groups.contains(&e.gid) {
                        groups.push(e.gid);
                    }
                }
            }
            (primary_gid, groups)
        }
    };
    Ok(Identity {
        uid,
        gid,
        groups,
        home,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
        app:x:1000:1000::/home/app:/bin/sh\n\
        # a comment\n\
        broken line\n";
    const GROUP: &[u8] = b"root:x:0:\nnogroup:x:65534:\napp:x:1000:\n\
        audio:x:29:app,other\nvideo:x:44:other\nwheel:x:10: app \n";

    fn spec(s: &str) -> UserSpec {
        UserSpec::parse(s).unwrap()
    }

    #[test]
    fn name_gets_primary_and_supplementary_groups() {
        let id = resolve(&spec("app"), PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid), (1000, 1000));
        assert_eq!(id.groups, vec![1000, 29, 10]);
        assert_eq!(id.home, b"/home/app");
        assert_eq!(id.name.as_deref(), Some(&b"app"[..]));
    }

    #[test]
    fn explicit_group_is_the_only_group() {
        let id = resolve(&spec("app:video"), PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid, id.groups.clone()), (1000, 44, vec![44]));
        let id = resolve(&spec("nobody:nogroup"), PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid), (65534, 65534));
    }

    #[test]
    fn numbers_missing_from_passwd_are_allowed() {
        let id = resolve(&spec("1234"), PASSWD, GROUP).unwrap();
        assert_eq!(
            (id.uid, id.gid, id.groups.clone()),
            (1234, 1234, vec![1234])
        );
        assert_eq!(id.home, b"/");
        assert_eq!(id.name, None);
        let id = resolve(&spec("1234:5678"), PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid, id.groups), (1234, 5678, vec![5678]));
    }

    #[test]
    fn numeric_uid_in_passwd_uses_its_entry() {
        let id = resolve(&spec("1000"), PASSWD, GROUP).unwrap();
        assert_eq!(id.name.as_deref(), Some(&b"app"[..]));
        assert_eq!(id.groups, vec![1000, 29, 10]);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            resolve(&spec("ghost"), PASSWD, GROUP),
            Err(UserError::UnknownUser(b"ghost".to_vec()))
        );
        assert_eq!(
            resolve(&spec("app:ghosts"), PASSWD, GROUP),
            Err(UserError::UnknownGroup(b"ghosts".to_vec()))
        );
    }

    #[test]
    fn empty_parts_are_rejected() {
        assert!(UserSpec::parse("").is_err());
        assert!(UserSpec::parse(":grp").is_err());
        assert!(UserSpec::parse("user:").is_err());
    }

    #[test]
    fn bytes_that_are_not_utf8_are_ordinary() {
        let passwd = b"k\xe4i:x:4321:4321:K\xe4i Lat\xedn-1:/home/k\xe4i:/bin/sh\n\
            app:x:1000:1000:Andr\xe9:/home/app:/bin/sh\n";
        let group = b"gr\xfcn:x:7001:k\xe4i,app\n";
        let id = resolve(&UserSpec::parse(b"k\xe4i").unwrap(), passwd, group).unwrap();
        assert_eq!((id.uid, id.gid, id.groups), (4321, 4321, vec![4321, 7001]));
        assert_eq!(
            (id.home, id.name),
            (b"/home/k\xe4i".to_vec(), Some(b"k\xe4i".to_vec()))
        );
        let id = resolve(&spec("app:gr\u{fc}n"), passwd, group);
        assert_eq!(
            id,
            Err(UserError::UnknownGroup("gr\u{fc}n".into())),
            "UTF-8 ü is not Latin-1 ü"
        );
        let id = resolve(&UserSpec::parse(b"app:gr\xfcn").unwrap(), passwd, group).unwrap();
        assert_eq!(id.gid, 7001);
        assert_eq!(
            UserError::UnknownUser(b"nobody\xff\x1b".to_vec()).to_string(),
            r"unknown user 'nobody\xff\u{1b}': no such name in /etc/passwd"
        );
    }

    #[test]
    fn minus_one_is_never_an_id() {
        let passwd = b"neg:x:4294967295:4294967295::/:/bin/sh\n";
        assert_eq!(
            resolve(&spec("4294967295"), passwd, b""),
            Err(UserError::UnknownUser(b"4294967295".to_vec()))
        );
        assert_eq!(
            resolve(&spec("0:4294967295"), b"", b""),
            Err(UserError::UnknownGroup(b"4294967295".to_vec()))
        );
        assert!(resolve(&spec("neg"), passwd, b"").is_err());
    }

    /// The spec as error lines show it: what was given, bytes that are not text escaped.
    #[test]
    fn a_spec_is_shown_as_given() {
        assert_eq!(spec("app").to_string(), "app");
        assert_eq!(spec("1000:1000").to_string(), "1000:1000");
        assert_eq!(
            UserSpec::parse(b"app:gr\xfcn").unwrap().to_string(),
            r"app:gr\xfcn"
        );
    }

    /// Rust's `parse` takes a leading `+`: `--user +0` must be looked up as a name, never
    /// read as uid 0 (found by `cargo mutants`: no test told `||` from `&&` here).
    #[test]
    fn only_plain_digits_are_an_id() {
        assert_eq!(id_number(b"1000"), Some(1000));
        for text in [
            &b"+0"[..],
            b"+1000",
            b"-1",
            b" 1",
            b"1 ",
            b"",
            b"0x10",
            b"\xd9\xa1",
        ] {
            assert_eq!(
                id_number(text),
                None,
                "{:?}",
                text.escape_ascii().to_string()
            );
        }
        assert_eq!(
            resolve(&spec("+0"), b"root:x:0:0::/root:/bin/sh\n", b""),
            Err(UserError::UnknownUser(b"+0".to_vec()))
        );
    }

    /// A field of a passwd or group line: any bytes but the separators.
    fn field() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            any::<u8>().prop_filter("separator", |b| !b":\n,".contains(b)),
            0..12,
        )
    }

    /// A name that cannot be mistaken for a number, a comment or another entry.
    fn name() -> impl Strategy<Value = Vec<u8>> {
        (any::<u8>(), field()).prop_filter_map("a name", |(first, rest)| {
            let mut n = vec![first];
            n.extend(rest);
            let plain = !n.iter().all(u8::is_ascii_digit) && n[0] != b'#';
            (plain && !b":\n,".contains(&first) && n.trim_ascii() == n.as_slice()).then_some(n)
        })
    }

    fn line(fields: &[&[u8]]) -> Vec<u8> {
        let mut l = fields.join(&b':');
        l.push(b'\n');
        l
    }

    proptest! {
        #[test]
        fn any_spec_and_files_are_a_result_not_a_panic(
            text in proptest::collection::vec(any::<u8>(), 0..24),
            passwd in proptest::collection::vec(any::<u8>(), 0..256),
            group in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            if let Ok(spec) = UserSpec::parse(&text) {
                if let Ok(id) = resolve(&spec, &passwd, &group) {
                    prop_assert_eq!(id.groups[0], id.gid);
                    prop_assert!(!id.home.is_empty());
                }
            }
        }

        #[test]
        fn spec_parse_splits_at_the_first_colon(user in name(), group in proptest::option::of(name())) {
            let mut text = user.clone();
            if let Some(g) = &group {
                text.push(b':');
                text.extend(g);
            }
            prop_assert_eq!(UserSpec::parse(&text), Ok(UserSpec { user, group }));
        }

        /// A generated entry is found with exactly its fields, among noise lines with
        /// arbitrary (Latin-1 and other) bytes; the noise changes nothing.
        #[test]
        fn a_generated_entry_is_found_exactly(
            user in name(),
            uid in 0..u32::MAX,
            gid in 0..u32::MAX,
            gecos in field(),
            home in field(),
            extra in (name(), 0..u32::MAX),
            noise in proptest::collection::vec(field(), 0..6),
            by_number in any::<bool>(),
        ) {
            let (group_name, extra_gid) = extra;
            prop_assume!(group_name != user && extra_gid != gid && user != b"caf\xe9");
            // Noise that is no entry of anyone (no numeric field) and lists nobody.
            prop_assume!(noise.iter().all(|f| f.trim_ascii() != user.as_slice() && id_number(f).is_none()));
            let noise_line = line(&noise.iter().map(Vec::as_slice).collect::<Vec<_>>());
            // And a real entry of someone else, with Latin-1 bytes in every text field.
            let other_uid = uid.checked_sub(1).unwrap_or(1).to_string();
            let other = line(&[b"caf\xe9", b"x", other_uid.as_bytes(), b"0", b"K\xe4i", b"/home/caf\xe9", b"/bin/sh"]);
            let ours = line(&[&user, b"x", uid.to_string().as_bytes(), gid.to_string().as_bytes(), &gecos, &home, b"/bin/sh"]);
            let passwd = [b"# K\xe4i\n".to_vec(), noise_line.clone(), other, ours].concat();
            let listed = [b"caf\xe9,  ".to_vec(), user.clone(), b" ,\xff\xfe".to_vec()].concat();
            let group = [noise_line, line(&[&group_name, b"x", extra_gid.to_string().as_bytes(), &listed])].concat();
            let text = if by_number { uid.to_string().into_bytes() } else { user.clone() };
            let id = resolve(&UserSpec::parse(&text).unwrap(), &passwd, &group).unwrap();
            let want_home = if home.is_empty() { b"/".to_vec() } else { home };
            prop_assert_eq!(id, Identity {
                uid,
                gid,
                groups: vec![gid, extra_gid],
                home: want_home,
                name: Some(user),
            });
        }

        /// A Latin-1 byte in any other line, or in the entry's own GECOS field, changes
        /// nothing: the result equals the one from the clean files.
        #[test]
        fn a_latin1_byte_elsewhere_changes_nothing(
            at in any::<prop::sample::Index>(),
            byte in 0x80u8..=0xff,
            user in prop::sample::select(vec!["root", "nobody", "app", "1000", "1234", "app:video", "app:44", "ghost"]),
        ) {
            let clean = resolve(&spec(user), PASSWD, GROUP);
            // Insert the byte into a password field ("x" becomes "x\xNN") or an empty
            // GECOS field ("::"), of any line.
            for (file, which) in [(PASSWD, 0), (GROUP, 1)] {
                let spots: Vec<usize> = (file.windows(2).enumerate())
                    .filter_map(|(i, w)| match w {
                        b":x" => Some(i + 2),
                        b"::" => Some(i + 1),
                        _ => None,
                    })
                    .collect();
                let i = spots[at.index(spots.len())];
                let mut dirty = file.to_vec();
                dirty.insert(i, byte);
                let got = match which {
                    0 => resolve(&spec(user), &dirty, GROUP),
                    _ => resolve(&spec(user), PASSWD, &dirty),
                };
                prop_assert_eq!(&got, &clean, "{}", String::from_utf8_lossy(&dirty));
            }
        }
    }
}
