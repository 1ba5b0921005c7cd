//! The container's own cgroup (issue 9): where it is, and what its files say about memory,
//! OOM kills, CPU and processes. cgroup v2 (unified) and v1 (one hierarchy per controller).
//!
//! Parsing is pure (bytes in, `Option` out, never a panic: the files are the kernel's, but
//! a fixture, a fuzzer or an odd kernel may say anything); [`Cgroup::discover`] and the
//! `read_*` methods are the only I/O. Nothing here logs or decides: `supervise::oom` does.
//!
//! Where the cgroup is: /proc/self/cgroup names kai-init's cgroup path per hierarchy, as
//! seen from its cgroup namespace; /proc/self/mountinfo says which part of that hierarchy
//! each cgroup mount shows (its "root" field). The directory is the mount point plus the
//! path below that root. This one rule covers both layouts met in Docker: a private
//! cgroup namespace (path "/", root "/") and the host's namespace with the container's
//! own directory bind-mounted (path "/docker/ID", root "/docker/ID").

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where the container's cgroup files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroup {
    /// One directory with every controller's files.
    V2(PathBuf),
    /// One directory per controller, each found separately (`None`: not mounted here).
    V1 {
        memory: Option<PathBuf>,
        cpu: Option<PathBuf>,
        cpuacct: Option<PathBuf>,
    },
}

/// A memory limit: a number of bytes, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Bytes(u64),
    Unlimited,
}

/// What the cgroup's files say now; a `None` is a file this kernel or layout lacks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub memory_bytes: Option<u64>,
    pub memory_limit: Option<Limit>,
    pub memory_peak: Option<u64>,
    /// Usage minus the inactive file cache, as the kubelet counts it for evictions and
    /// `kubectl top`: what cannot simply be dropped.
    pub memory_working_set: Option<u64>,
    pub cpu_usage_ns: Option<u64>,
    pub cpu_throttled_ns: Option<u64>,
    /// cgroup v2's PSI (`memory.pressure`, `cpu.pressure`): total time some task stalled,
    /// in microseconds.
    pub memory_pressure_us: Option<u64>,
    pub cpu_pressure_us: Option<u64>,
}

/// One line of /proc/self/cgroup: `ID:CONTROLLERS:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Empty for the v2 line (`0::/path`).
    pub controllers: Vec<Vec<u8>>,
    pub path: Vec<u8>,
}

/// One cgroup mount from /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The part of the hierarchy this mount shows.
    pub root: Vec<u8>,
    pub mount_point: Vec<u8>,
    /// `cgroup2`, or `cgroup` with the controllers in `options`.
    pub v2: bool,
    pub options: Vec<Vec<u8>>,
}

/// Parses /proc/self/cgroup; malformed lines are skipped.
pub fn parse_proc_cgroup(bytes: &[u8]) -> Vec<Membership> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let mut parts = line.splitn(3, |&b| b == b':');
            let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            if !path.starts_with(b"/") {
                return None;
            }
            let controllers = controllers
                .split(|&b| b == b',')
                .filter(|c| !c.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            Some(Membership {
                controllers,
                path: path.to_vec(),
            })
        })
        .collect()
}

/// The cgroup and cgroup2 mounts of /proc/self/mountinfo (proc(5): fields 4 and 5 are
/// root and mount point, then optional fields up to "-", then type, source, options).
pub fn parse_mountinfo(bytes: &[u8]) -> Vec<Mount> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            let dash = fields.iter().position(|f| *f == b"-")?;
            let (root, mount_point) = (fields.get(3)?, fields.get(4)?);
            let fstype = *fields.get(dash + 1)?;
            let v2 = match fstype {
                b"cgroup2" => true,
                b"cgroup" => false,
                _ => return None,
            };
            let options = fields
                .get(dash + 3)
                .map(|o| o.split(|&b| b == b',').map(<[u8]>::to_vec).collect())
                .unwrap_or_default();
            Some(Mount {
                root: unescape(root),
                mount_point: unescape(mount_point),
                v2,
                options,
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field.get(i + 1..i + 4).filter(|d| {
            field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3'
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

/// The directory of the cgroup at `path` under `mount`, or None when the mount does not
/// show it (its root is elsewhere in the hierarchy). Paths stay bytes: a cgroup may be
/// named anything but "/".
fn dir_under(mount: &Mount, path: &[u8]) -> Option<PathBuf> {
    let root = mount.root.strip_suffix(b"/").unwrap_or(&mount.root);
    let rest = path.strip_prefix(root)?;
    // "/docker" must not match "/dockerfoo".
    if !(rest.is_empty() || rest.starts_with(b"/") || root.is_empty()) {
        return None;
    }
    let mut dir = PathBuf::from(std::ffi::OsStr::from_bytes(&mount.mount_point));
    for part in rest.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
        if part == b".." {
            return None;
        }
        dir.push(std::ffi::OsStr::from_bytes(part));
    }
    Some(dir)
}

/// Where kai-init's cgroup is, from the two files' contents (pure). The memory controller
/// decides the version: v1 when a v1 hierarchy has it (hybrid hosts mount an empty v2 too),
/// else v2 when kai-init has a v2 path.
pub fn resolve(memberships: &[Membership], mounts: &[Mount]) -> Option<Cgroup> {
    let v1 = |controller: &[u8]| {
        let m = memberships
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == controller))?;
        visible(mounts)
            .filter(|mnt| !mnt.v2 && mnt.options.iter().any(|o| o == controller))
            .find_map(|mnt| dir_under(mnt, &m.path))
    };
    if let Some(memory) = v1(b"memory") {
        let cpu = |c: &[u8]| v1(c).filter(|_| same_path_as_memory(memberships, c));
        return Some(Cgroup::V1 {
            memory: Some(memory),
            cpu: cpu(b"cpu"),
            cpuacct: cpu(b"cpuacct"),
        });
    }
    let unified = memberships.iter().find(|m| m.controllers.is_empty())?;
    visible(mounts)
        .filter(|mnt| mnt.v2)
        .find_map(|mnt| dir_under(mnt, &unified.path))
        .map(Cgroup::V2)
}

/// The cgroup mounts no later one hides. mountinfo lists them in the order they were
/// made, and a mount at the same point or above it covers an earlier one (only cgroup
/// mounts are parsed, so a tmpfs over them is not seen; then the directory found does
/// not exist and discovery says nothing): a container's own cgroup
/// bind-mounted over the hierarchy's root must be read, not the root it hides (whose
/// path under the old mount no longer exists in this view).
fn visible(mounts: &[Mount]) -> impl Iterator<Item = &Mount> {
    let covers = |later: &[u8], earlier: &[u8]| {
        let later = later.strip_suffix(b"/").unwrap_or(later);
        earlier
            .strip_prefix(later)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"))
    };
    mounts.iter().enumerate().filter_map(move |(i, mnt)| {
        let hidden = mounts[i + 1..]
            .iter()
            .any(|later| covers(&later.mount_point, &mnt.mount_point));
        (!hidden).then_some(mnt)
    })
}

/// Whether kai-init's cgroup for `controller` is the one its memory cgroup is (the same
/// path in both v1 hierarchies). A host that puts kai-init in a memory cgroup but leaves
/// it in the cpu hierarchy's root would otherwise have the whole host's CPU reported as
/// the container's (issue 17, item 17: 539 s on a fresh machine): no figure is better
/// than another cgroup's.
fn same_path_as_memory(memberships: &[Membership], controller: &[u8]) -> bool {
    let path = |c: &[u8]| {
        memberships
            .iter()
            .find(|m| m.controllers.iter().any(|x| x == c))
            .map(|m| &m.path)
    };
    path(controller).is_some() && path(controller) == path(b"memory")
}

/// Where kai-init's cgroup directory may be under a hierarchy mounted at `mount_point`:
/// the mount point plus its path (the whole hierarchy mounted, no cgroup namespace), or
/// the mount point itself (a cgroup namespace, or its own directory bind-mounted, as
/// Docker does on v1). Never above the mount point.
pub fn candidates(mount_point: &Path, path: &[u8]) -> Vec<PathBuf> {
    let whole = dir_under(
        &Mount {
            root: b"/".to_vec(),
            mount_point: mount_point.as_os_str().as_bytes().to_vec(),
            v2: false,
            options: Vec::new(),
        },
        path,
    );
    whole
        .into_iter()
        .chain(std::iter::once(mount_point.to_path_buf()))
        .collect()
}

/// kai-init's cgroup at the usual mount points (/sys/fs/cgroup/CONTROLLER for v1,
/// /sys/fs/cgroup or /sys/fs/cgroup/unified for v2): the mount point plus kai-init's path,
/// only if that directory exists. That is the whole hierarchy mounted (a host) or a cgroup
/// namespace (path `/`); a container whose own directory is bind-mounted (Docker on v1)
/// has no such directory and is found through mountinfo instead. No `cgroup.procs` is
/// read to prove it: at a v1 host's cgroup that file lists and sorts every pid in it, and
/// reading it cost milliseconds of every start.
fn usual(memberships: &[Membership]) -> Option<Cgroup> {
    let exact = |mount_point: &Path, path: &[u8]| {
        candidates(mount_point, path)
            .into_iter()
            .next()
            .filter(|d| d.as_path() != mount_point || path == b"/")
            .filter(|d| d.is_dir())
    };
    let v1 = |controller: &str| {
        let m = memberships
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == controller.as_bytes()))?;
        exact(&Path::new("/sys/fs/cgroup").join(controller), &m.path)
    };
    if memberships
        .iter()
        .any(|m| m.controllers.iter().any(|c| c == b"memory"))
    {
        let cpu = |c: &str| v1(c).filter(|_| same_path_as_memory(memberships, c.as_bytes()));
        return Some(Cgroup::V1 {
            memory: Some(v1("memory")?),
            cpu: cpu("cpu"),
            cpuacct: cpu("cpuacct"),
        });
    }
    let unified = memberships.iter().find(|m| m.controllers.is_empty())?;
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .find_map(|at| exact(Path::new(at), &unified.path))
        .map(Cgroup::V2)
}

/// A file's first number (`memory.current`, `cpuacct.usage`); surrounding space allowed.
pub fn parse_u64(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// v1 writes "no limit" as the largest page-aligned i64 (9223372036854771712); any value
/// this high (4 EiB) is no real limit.
const V1_UNLIMITED: u64 = 1 << 62;

/// `memory.max` ("max" or bytes) or `memory.limit_in_bytes` (bytes; huge = none).
pub fn parse_limit(bytes: &[u8]) -> Option<Limit> {
    if bytes.trim_ascii() == b"max" {
        return Some(Limit::Unlimited);
    }
    match parse_u64(bytes)? {
        n if n >= V1_UNLIMITED => Some(Limit::Unlimited),
        n => Some(Limit::Bytes(n)),
    }
}

/// The value of `key` in a flat-keyed file (`memory.events`, `memory.oom_control`,
/// `cpu.stat`): lines of `key value`.
pub fn parse_keyed(bytes: &[u8], key: &str) -> Option<u64> {
    bytes.split(|&b| b == b'\n').find_map(|line| {
        let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
        if words.next()? != key.as_bytes() {
            return None;
        }
        parse_u64(words.next()?)
    })
}

/// The `total=` of the `some` line of a PSI file (`memory.pressure`, `cpu.pressure`):
/// `some avg10=0.00 avg60=0.00 avg300=0.00 total=12345`, microseconds.
pub fn parse_pressure(bytes: &[u8]) -> Option<u64> {
    let line = bytes
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"some "))?;
    let total = line
        .split(|&b| b == b' ')
        .find_map(|w| w.strip_prefix(b"total="))?;
    parse_u64(total)
}

/// The working set from usage and memory.stat: usage minus `key` (the inactive file
/// cache), never below zero (the kubelet's rule).
pub fn working_set(usage: Option<u64>, stat: &[u8], key: &str) -> Option<u64> {
    Some(usage?.saturating_sub(parse_keyed(stat, key).unwrap_or(0)))
}

/// The pids of `cgroup.procs`, one a line; anything else on a line is skipped.
pub fn parse_pids(bytes: &[u8]) -> Vec<i32> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok()?.trim().parse().ok())
        .filter(|&p| p > 0)
        .collect()
}

/// Resident pages, the second field of /proc/PID/statm.
pub fn parse_statm_resident(bytes: &[u8]) -> Option<u64> {
    let mut words = bytes.split(|&b| b == b' ').filter(|w| !w.is_empty());
    words.next()?;
    parse_u64(words.next()?)
}

fn read(dir: &Path, file: &str) -> Option<Vec<u8>> {
    read_file(&dir.join(file))
}

/// A small kernel file in as few reads as possible (usually two): procfs and cgroupfs
/// report size 0, so `std::fs::read` would start from a 32-byte probe and grow.
pub fn read_file(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(8192);
    std::fs::File::open(path).ok()?.read_to_end(&mut buf).ok()?;
    Some(buf)
}

/// Where a container's own OOM counter is, read without finding the cgroup first: v2 with
/// a cgroup namespace (the container's cgroup is the mount's root), and v1 as Docker
/// mounts it (the container's memory directory bind-mounted as the hierarchy's root). On a
/// host these are the root cgroup's files (v2's root has none), which discovery then
/// does not confirm.
pub const USUAL_OOM_FILES: [&str; 2] = [
    "/sys/fs/cgroup/memory.events",
    "/sys/fs/cgroup/memory/memory.oom_control",
];

/// The `oom_kill` count in `file` (`memory.events` or `memory.oom_control`).
pub fn read_oom_kills_at(file: &Path) -> Option<u64> {
    parse_keyed(&read_file(file)?, "oom_kill")
}

impl Cgroup {
    /// kai-init's own cgroup, or None when it cannot be found (no cgroup fs mounted, an
    /// unreadable /proc, a cgroup outside what the mounts show).
    ///
    /// First at the usual mount points (see `usual`); only if that fails through
    /// /proc/self/mountinfo, whose text the kernel builds anew for every mount at each
    /// read (it runs at every start, so the cheaper way comes first).
    pub fn discover() -> Option<Cgroup> {
        let memberships = parse_proc_cgroup(&read_file(Path::new("/proc/self/cgroup"))?);
        // `usual` only answers with a directory that exists.
        usual(&memberships).or_else(|| {
            let mountinfo = read_file(Path::new("/proc/self/mountinfo"))?;
            let found = resolve(&memberships, &parse_mountinfo(&mountinfo))?;
            // A path that does not exist is a layout this rule does not cover: say
            // nothing rather than read another cgroup's files.
            found.memory_dir().is_dir().then_some(found)
        })
    }

    /// The directory with the memory controller's files (and `cgroup.procs`).
    pub fn memory_dir(&self) -> &Path {
        match self {
            Cgroup::V2(dir) => dir,
            Cgroup::V1 { memory, .. } => memory.as_deref().unwrap_or(Path::new("/nonexistent")),
        }
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, Cgroup::V2(_))
    }

    /// The file whose `oom_kill` counts the cgroup's OOM kills.
    pub fn oom_file(&self) -> PathBuf {
        match self {
            Cgroup::V2(dir) => dir.join("memory.events"),
            Cgroup::V1 { .. } => self.memory_dir().join("memory.oom_control"),
        }
    }

    /// OOM kills in the cgroup so far (v1: Linux 4.13 and later).
    pub fn read_oom_kills(&self) -> Option<u64> {
        read_oom_kills_at(&self.oom_file())
    }

    /// v2's `memory.oom.group`: the OOM killer kills the whole cgroup at once (Kubernetes
    /// 1.28+ sets it), kai-init included.
    pub fn read_oom_group(&self) -> Option<bool> {
        match self {
            Cgroup::V2(dir) => read(dir, "memory.oom.group")
                .as_deref()
                .and_then(parse_u64)
                .map(|v| v == 1),
            Cgroup::V1 { .. } => None,
        }
    }

    /// The processes in the cgroup, as pids of kai-init's PID namespace.
    pub fn read_procs(&self) -> Option<Vec<i32>> {
        Some(parse_pids(&read(self.memory_dir(), "cgroup.procs")?))
    }

    pub fn read_usage(&self) -> Usage {
        let num = |dir: &Path, f| read(dir, f).as_deref().and_then(parse_u64);
        match self {
            Cgroup::V2(dir) => {
                let stat = read(dir, "cpu.stat").unwrap_or_default();
                let memory_bytes = num(dir, "memory.current");
                let memory_stat = read(dir, "memory.stat").unwrap_or_default();
                let pressure = |f| read(dir, f).as_deref().and_then(parse_pressure);
                Usage {
                    memory_bytes,
                    memory_limit: read(dir, "memory.max").as_deref().and_then(parse_limit),
                    memory_peak: num(dir, "memory.peak"),
                    memory_working_set: working_set(memory_bytes, &memory_stat, "inactive_file"),
                    memory_pressure_us: pressure("memory.pressure"),
                    cpu_pressure_us: pressure("cpu.pressure"),
                    cpu_usage_ns: parse_keyed(&stat, "usage_usec").map(|u| u.saturating_mul(1000)),
                    cpu_throttled_ns: parse_keyed(&stat, "throttled_usec")
                        .map(|u| u.saturating_mul(1000)),
                }
            }
            Cgroup::V1 {
                memory,
                cpu,
                cpuacct,
            } => {
                let mem = memory.as_deref();
                let memory_bytes = mem.and_then(|d| num(d, "memory.usage_in_bytes"));
                let memory_stat = mem.and_then(|d| read(d, "memory.stat")).unwrap_or_default();
                Usage {
                    memory_bytes,
                    memory_working_set: working_set(
                        memory_bytes,
                        &memory_stat,
                        "total_inactive_file",
                    ),
                    memory_pressure_us: None,
                    cpu_pressure_us: None,
                    memory_limit: mem
                        .and_then(|d| read(d, "memory.limit_in_bytes"))
                        .as_deref()
                        .and_then(parse_limit),
                    memory_peak: mem.and_then(|d| num(d, "memory.max_usage_in_bytes")),
                    cpu_usage_ns: cpuacct.as_deref().and_then(|d| num(d, "cpuacct.usage")),
                    cpu_throttled_ns: cpu
                        .as_deref()
                        .and_then(|d| read(d, "cpu.stat"))
                        .and_then(|s| parse_keyed(&s, "throttled_time")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mount(root: &str, at: &str, v2: bool, opts: &str) -> Mount {
        Mount {
            root: root.into(),
            mount_point: at.into(),
            v2,
            options: opts.split(',').map(|o| o.as_bytes().to_vec()).collect(),
        }
    }

    const HOST_V1: &[u8] = b"31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_v1_on_a_hybrid_host_with_separate_cpu_mounts() {
        // Memory, cpu and cpuacct in three different cgroups (this machine's layout):
        // only memory is kai-init's own; cpuacct "/" is the whole host (issue 17, 17).
        let cg = parse_proc_cgroup(b"4:memory:/process_api/e5\n2:cpuacct:/\n1:cpu:/x\n0::/\n");
        assert_eq!(
            resolve(&cg, &parse_mountinfo(HOST_V1)),
            Some(Cgroup::V1 {
                memory: Some("/sys/fs/cgroup/memory/process_api/e5".into()),
                cpu: None,
                cpuacct: None,
            })
        );
        // cpu shares memory's cgroup, cpuacct does not: each controller on its own.
        let split = parse_proc_cgroup(b"4:memory:/a\n2:cpuacct:/b\n1:cpu:/a\n0::/\n");
        assert_eq!(
            resolve(&split, &parse_mountinfo(HOST_V1)),
            Some(Cgroup::V1 {
                memory: Some("/sys/fs/cgroup/memory/a".into()),
                cpu: Some("/sys/fs/cgroup/cpu/a".into()),
                cpuacct: None,
            })
        );
        let same = parse_proc_cgroup(b"4:memory:/x\n2:cpuacct:/x\n1:cpu:/x\n0::/\n");
        assert_eq!(
            resolve(&same, &parse_mountinfo(HOST_V1)),
            Some(Cgroup::V1 {
                memory: Some("/sys/fs/cgroup/memory/x".into()),
                cpu: Some("/sys/fs/cgroup/cpu/x".into()),
                cpuacct: Some("/sys/fs/cgroup/cpuacct/x".into()),
            })
        );
    }

    #[test]
    fn finds_docker_v1_with_the_containers_directory_bind_mounted() {
        // Docker on v1 with the host's cgroup namespace: the path names the container's
        // directory, and so does each mount's root.
        let info = b"500 400 0:40 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct
501 400 0:41 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
";
        let cg = parse_proc_cgroup(b"5:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n");
        assert_eq!(
            resolve(&cg, &parse_mountinfo(info)),
            Some(Cgroup::V1 {
                memory: Some("/sys/fs/cgroup/memory".into()),
                cpu: Some("/sys/fs/cgroup/cpu,cpuacct".into()),
                cpuacct: Some("/sys/fs/cgroup/cpu,cpuacct".into()),
            })
        );
        // A mount of a sibling ("/dockerx") does not show "/docker/abc".
        let other = [mount("/dockerx", "/m", false, "rw,memory")];
        assert_eq!(resolve(&cg, &other), None);
    }

    /// A cgroup's directory bind-mounted over the hierarchy's root, in a mount namespace
    /// copied from the host's (both mounts listed, the later on top): the top one is what
    /// the path shows. Likewise a later cgroup mount above the mount point (v2 mounted
    /// over /sys/fs/cgroup) hides the v1 hierarchies under it.
    #[test]
    fn a_later_mount_at_or_above_the_same_point_hides_the_earlier_one() {
        let info = b"884 880 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
896 884 0:32 /kt-x /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let cg = parse_proc_cgroup(
            b"4:memory:/kt-x
",
        );
        assert_eq!(
            resolve(&cg, &parse_mountinfo(info)),
            Some(Cgroup::V1 {
                memory: Some("/sys/fs/cgroup/memory".into()),
                cpu: None,
                cpuacct: None,
            })
        );
        let covered = b"884 880 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
900 1 0:50 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
";
        let v2 = parse_proc_cgroup(
            b"4:memory:/kt-x
0::/
",
        );
        assert_eq!(
            resolve(&v2, &parse_mountinfo(covered)),
            Some(Cgroup::V2("/sys/fs/cgroup".into()))
        );
        // A sibling mount point that merely shares a prefix hides nothing.
        let sibling = b"884 880 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
900 1 0:50 / /sys/fs/cgroup/mem rw - cgroup cgroup rw,cpu
";
        assert_eq!(
            resolve(&cg, &parse_mountinfo(sibling)),
            Some(Cgroup::V1 {
                memory: Some("/sys/fs/cgroup/memory/kt-x".into()),
                cpu: None,
                cpuacct: None,
            })
        );
    }

    /// Issue 17, item 17: a v1 host that put kai-init in a memory cgroup but left it in
    /// the cpu hierarchy's root: memory is reported, CPU is not (it would be the host's).
    #[test]
    fn cpu_from_another_cgroup_than_memory_is_not_reported() {
        let info = b"500 400 0:40 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
501 400 0:41 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let cg = parse_proc_cgroup(b"5:memory:/user.slice/app\n3:cpu,cpuacct:/\n");
        assert_eq!(
            resolve(&cg, &parse_mountinfo(info)),
            Some(Cgroup::V1 {
                memory: Some("/sys/fs/cgroup/memory/user.slice/app".into()),
                cpu: None,
                cpuacct: None,
            })
        );
    }

    #[test]
    fn finds_v2_in_a_private_namespace_and_on_the_host() {
        let ns = [mount("/", "/sys/fs/cgroup", true, "rw,nsdelegate")];
        assert_eq!(
            resolve(&parse_proc_cgroup(b"0::/\n"), &ns),
            Some(Cgroup::V2("/sys/fs/cgroup".into()))
        );
        assert_eq!(
            resolve(&parse_proc_cgroup(b"0::/system.slice/a b.scope\n"), &ns),
            Some(Cgroup::V2("/sys/fs/cgroup/system.slice/a b.scope".into()))
        );
        // No memory controller in v1 and no v2 line: nothing.
        assert_eq!(resolve(&parse_proc_cgroup(b"1:cpu:/\n"), &ns), None);
        // ".." never climbs out of the mount.
        assert_eq!(resolve(&parse_proc_cgroup(b"0::/../etc\n"), &ns), None);
    }

    #[test]
    fn candidates_are_the_path_under_the_mount_then_the_mount() {
        let m = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(
            candidates(m, b"/docker/abc"),
            [m.join("docker/abc"), m.to_path_buf()]
        );
        assert_eq!(candidates(m, b"/"), [m.to_path_buf(), m.to_path_buf()]);
        assert_eq!(candidates(m, b"/../x"), [m.to_path_buf()]);
    }

    /// This process's own cgroup, found at the usual mount points, is where mountinfo
    /// says it is; a path with no directory there is left to mountinfo.
    #[test]
    fn the_usual_places_agree_with_mountinfo_here() {
        let cg = parse_proc_cgroup(&std::fs::read("/proc/self/cgroup").unwrap());
        let mi = parse_mountinfo(&std::fs::read("/proc/self/mountinfo").unwrap());
        let usual = usual(&cg);
        assert!(
            usual.is_some(),
            "this machine has a cgroup fs at /sys/fs/cgroup"
        );
        assert_eq!(usual, resolve(&cg, &mi));
        let elsewhere = parse_proc_cgroup(b"4:memory:/no/such/kai-init-test\n0::/no/such\n");
        assert_eq!(super::usual(&elsewhere), None);
    }

    #[test]
    fn mountinfo_escapes_and_optional_fields() {
        let m = parse_mountinfo(
            b"36 35 98:0 /a\\040b /mnt/c\\134d rw,noatime master:1 shared:2 - cgroup2 none rw\nbad\n",
        );
        assert_eq!(m, [mount("/a b", "/mnt/c\\d", true, "rw")]);
        assert_eq!(unescape(b"\\04"), b"\\04");
        assert_eq!(unescape(b"\\999x"), b"\\999x");
    }

    #[test]
    fn limits_and_keyed_files() {
        assert_eq!(parse_limit(b"max\n"), Some(Limit::Unlimited));
        assert_eq!(
            parse_limit(b"9223372036854771712\n"),
            Some(Limit::Unlimited)
        );
        assert_eq!(parse_limit(b"100663296\n"), Some(Limit::Bytes(100663296)));
        assert_eq!(parse_limit(b"-1"), None);
        let events = b"low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(parse_keyed(events, "oom_kill"), Some(2));
        assert_eq!(parse_keyed(events, "oom"), Some(3));
        assert_eq!(
            parse_keyed(b"oom_kill_disable 0\nunder_oom 0\n", "oom_kill"),
            None
        );
        assert_eq!(parse_statm_resident(b"1000 250 30 1 0 90 0\n"), Some(250));
        assert_eq!(parse_pids(b"1\n27\nx\n0\n\n"), [1, 27]);
    }

    /// A fixture tree per layout, read through the same methods as the real one.
    fn tree(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kai-cgroup-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn reads_a_v2_tree() {
        let dir = tree(
            "v2",
            &[
                ("memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n"),
                ("memory.current", "4096\n"),
                ("memory.max", "max\n"),
                ("memory.peak", "8192\n"),
                ("memory.stat", "anon 1024\nfile 3072\nactive_file 1024\ninactive_file 2048\n"),
                ("memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=2500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n"),
                ("cpu.pressure", "some avg10=1.00 avg60=0.00 avg300=0.00 total=42\n"),
                ("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\nnr_throttled 0\nthrottled_usec 7\n"),
                ("cgroup.procs", "1\n12\n"),
            ],
        );
        let cg = Cgroup::V2(dir.clone());
        assert_eq!(cg.read_oom_kills(), Some(1));
        assert_eq!(cg.read_procs(), Some(vec![1, 12]));
        assert_eq!(
            cg.read_usage(),
            Usage {
                memory_bytes: Some(4096),
                memory_limit: Some(Limit::Unlimited),
                memory_peak: Some(8192),
                memory_working_set: Some(2048),
                cpu_usage_ns: Some(1_500_000),
                cpu_throttled_ns: Some(7000),
                memory_pressure_us: Some(2_500_000),
                cpu_pressure_us: Some(42),
            }
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// memory.oom.group (v2 only): 1 is an OOM that kills the whole cgroup.
    #[test]
    fn reads_memory_oom_group() {
        let dir = tree("oomgroup", &[("memory.oom.group", "1\n")]);
        let cg = Cgroup::V2(dir.clone());
        assert_eq!(cg.read_oom_group(), Some(true));
        std::fs::write(dir.join("memory.oom.group"), "0\n").unwrap();
        assert_eq!(cg.read_oom_group(), Some(false));
        std::fs::remove_file(dir.join("memory.oom.group")).unwrap();
        assert_eq!(cg.read_oom_group(), None);
        let v1 = Cgroup::V1 {
            memory: Some(dir.clone()),
            cpu: None,
            cpuacct: None,
        };
        std::fs::write(dir.join("memory.oom.group"), "1\n").unwrap();
        assert_eq!(v1.read_oom_group(), None, "v1 has no such file");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn reads_a_v1_tree_and_tolerates_missing_files() {
        let dir = tree(
            "v1",
            &[
                (
                    "memory/memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
                ),
                ("memory/memory.usage_in_bytes", "100\n"),
                ("memory/memory.limit_in_bytes", "100663296\n"),
                ("memory/memory.max_usage_in_bytes", "200\n"),
                ("memory/cgroup.procs", "1\n"),
                ("cpuacct/cpuacct.usage", "123456789\n"),
            ],
        );
        let cg = Cgroup::V1 {
            memory: Some(dir.join("memory")),
            cpu: Some(dir.join("cpu")),
            cpuacct: Some(dir.join("cpuacct")),
        };
        assert_eq!(cg.read_oom_kills(), Some(3));
        assert_eq!(
            cg.read_usage(),
            Usage {
                memory_bytes: Some(100),
                memory_limit: Some(Limit::Bytes(100663296)),
                memory_peak: Some(200),
                // No memory.stat: nothing to subtract (the kubelet's figure would be usage).
                memory_working_set: Some(100),
                cpu_usage_ns: Some(123456789),
                cpu_throttled_ns: None,
                memory_pressure_us: None,
                cpu_pressure_us: None,
            }
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let cg = parse_proc_cgroup(&bytes);
            let mounts = parse_mountinfo(&bytes);
            let _ = resolve(&cg, &mounts);
            let _ = parse_limit(&bytes);
            let _ = parse_keyed(&bytes, "oom_kill");
            let _ = parse_pids(&bytes);
            let _ = parse_pressure(&bytes);
            let _ = working_set(Some(u64::MAX), &bytes, "inactive_file");
            let _ = parse_statm_resident(&bytes);
            let _ = unescape(&bytes);
        }

        #[test]
        fn keyed_values_round_trip(
            before in proptest::collection::vec(("[a-z_]{1,12}", any::<u64>()), 0..5),
            n in any::<u64>(),
        ) {
            let mut text = String::new();
            for (k, v) in before.iter().filter(|(k, _)| k != "oom_kill") {
                text += &format!("{k} {v}\n");
            }
            text += &format!("oom_kill {n}\n");
            prop_assert_eq!(parse_keyed(text.as_bytes(), "oom_kill"), Some(n));
        }

        #[test]
        fn candidates_stay_under_the_mount_point(path in proptest::collection::vec(any::<u8>(), 0..60)) {
            let m = Path::new("/sys/fs/cgroup/memory");
            let c = candidates(m, &path);
            prop_assert!(!c.is_empty() && c.len() <= 2);
            prop_assert_eq!(c.last().unwrap().as_path(), m);
            for d in &c {
                prop_assert!(d.starts_with(m));
                prop_assert!(!d.components().any(|x| x == std::path::Component::ParentDir));
            }
        }

        #[test]
        fn limits_round_trip(n in any::<u64>()) {
            let want = if n >= V1_UNLIMITED { Limit::Unlimited } else { Limit::Bytes(n) };
            prop_assert_eq!(parse_limit(format!("{n}\n").as_bytes()), Some(want));
        }

        /// Whatever the path, the directory found is the mount point plus that path's
        /// parts below the mount's root, and never outside the mount point.
        #[test]
        fn resolved_dirs_stay_under_the_mount(
            parts in proptest::collection::vec("[a-z.]{1,6}", 0..4),
            root_parts in 0usize..3,
        ) {
            let path = format!("/{}", parts.join("/"));
            let root = format!("/{}", parts[..root_parts.min(parts.len())].join("/"));
            let m = [mount(&root, "/sys/fs/cgroup/memory", false, "rw,memory")];
            let cg = [Membership { controllers: vec![b"memory".to_vec()], path: path.into_bytes() }];
            let below: Vec<_> = parts[root_parts.min(parts.len())..].to_vec();
            match resolve(&cg, &m) {
                Some(Cgroup::V1 { memory: Some(dir), .. }) => {
                    prop_assert!(dir.starts_with("/sys/fs/cgroup/memory"));
                    prop_assert!(!below.iter().any(|p| p == ".."));
                    prop_assert_eq!(dir, Path::new("/sys/fs/cgroup/memory").join(below.join("/")));
                }
                other => prop_assert!(below.iter().any(|p| p == ".."), "{:?}", other),
            }
        }
    }
}
