//! `USER[:GROUP]` resolved against /etc/passwd and /etc/group text, with gosu's semantics.
//!
//! A static musl binary has no NSS, so kai-init reads the files itself. This module is
//! pure (text in, identity out); `sys::privileges` applies the result.
//!
//! Rules (gosu's, except where marked):
//! - each part is a name or a number; an all-digit name is a number;
//! - no GROUP: the primary group from /etc/passwd plus every /etc/group entry that lists
//!   the user; GROUP given: that group only;
//! - a numeric uid missing from /etc/passwd is allowed, with HOME=/. Its group defaults
//!   to the same number. *Unlike gosu, Docker and su-exec, which keep gid 0 here, kai-init
//!   never leaves the child in the root group by accident.*

use std::fmt;

/// The parsed `--user` value, before any file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub user: String,
    pub group: Option<String>,
}

impl UserSpec {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (user, group) = match text.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (text, None),
        };
        if user.is_empty() {
            return Err("the user part is empty (expected USER[:GROUP])".into());
        }
        if group == Some("") {
            return Err("the group part after ':' is empty (expected USER[:GROUP])".into());
        }
        Ok(UserSpec {
            user: user.to_owned(),
            group: group.map(str::to_owned),
        })
    }
}

impl fmt::Display for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.group {
            Some(g) => write!(f, "{}:{g}", self.user),
            None => f.write_str(&self.user),
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
    pub home: String,
    /// The login name, when /etc/passwd has one (USER and LOGNAME).
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserError {
    UnknownUser(String),
    UnknownGroup(String),
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserError::UnknownUser(u) => {
                write!(f, "unknown user '{u}': no such name in /etc/passwd")
            }
            UserError::UnknownGroup(g) => {
                write!(f, "unknown group '{g}': no such name in /etc/group")
            }
        }
    }
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        // name:password:uid:gid:gecos:home:shell
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || line.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: &'a str,
}

fn group_entries(group: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    group.lines().filter_map(|line| {
        // name:password:gid:member,member
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || line.starts_with('#') {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f[3],
        })
    })
}

fn numeric(text: &str) -> Option<u32> {
    text.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse().ok())
        .flatten()
}

/// Resolves `spec` against the text of /etc/passwd and /etc/group.
pub fn resolve(spec: &UserSpec, passwd: &str, group: &str) -> Result<Identity, UserError> {
    let uid_wanted = numeric(&spec.user);
    let entry = passwd_entries(passwd).find(|e| match uid_wanted {
        Some(uid) => e.uid == uid,
        None => e.name == spec.user,
    });
    let (uid, primary_gid, home, name) = match (entry, uid_wanted) {
        (Some(e), _) => (e.uid, e.gid, e.home.to_owned(), Some(e.name.to_owned())),
        (None, Some(uid)) => (uid, uid, "/".to_owned(), None),
        (None, None) => return Err(UserError::UnknownUser(spec.user.clone())),
    };
    let home = if home.is_empty() {
        "/".to_owned()
    } else {
        home
    };

    let (gid, groups) = match &spec.group {
        Some(g) => {
            let gid = match numeric(g) {
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
                    if e.members.split(',').any(|m| m.trim() == name) && !groups.contains(&e.gid) {
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

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
        app:x:1000:1000::/home/app:/bin/sh\n\
        # a comment\n\
        broken line\n";
    const GROUP: &str = "root:x:0:\nnogroup:x:65534:\napp:x:1000:\n\
        audio:x:29:app,other\nvideo:x:44:other\nwheel:x:10: app \n";

    fn spec(s: &str) -> UserSpec {
        UserSpec::parse(s).unwrap()
    }

    #[test]
    fn name_gets_primary_and_supplementary_groups() {
        let id = resolve(&spec("app"), PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid), (1000, 1000));
        assert_eq!(id.groups, vec![1000, 29, 10]);
        assert_eq!(id.home, "/home/app");
        assert_eq!(id.name.as_deref(), Some("app"));
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
        assert_eq!(id.home, "/");
        assert_eq!(id.name, None);
        let id = resolve(&spec("1234:5678"), PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid, id.groups), (1234, 5678, vec![5678]));
    }

    #[test]
    fn numeric_uid_in_passwd_uses_its_entry() {
        let id = resolve(&spec("1000"), PASSWD, GROUP).unwrap();
        assert_eq!(id.name.as_deref(), Some("app"));
        assert_eq!(id.groups, vec![1000, 29, 10]);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            resolve(&spec("ghost"), PASSWD, GROUP),
            Err(UserError::UnknownUser("ghost".into()))
        );
        assert_eq!(
            resolve(&spec("app:ghosts"), PASSWD, GROUP),
            Err(UserError::UnknownGroup("ghosts".into()))
        );
    }

    #[test]
    fn empty_parts_are_rejected() {
        assert!(UserSpec::parse("").is_err());
        assert!(UserSpec::parse(":grp").is_err());
        assert!(UserSpec::parse("user:").is_err());
    }
}
