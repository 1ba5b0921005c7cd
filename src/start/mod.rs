//! Start-up, in the order that keeps it safe: block signals, become subreaper, resolve
//! the user, read `--file-env` secrets and bind the health listeners (still root), drop
//! privileges, serve the health endpoint, wait for `--wait-for` targets, run the `--pre`
//! steps, start the child, then hand everything to the event loop. With no waits and no
//! steps the child starts right after the drop, and the event loop is built while it
//! execs.
//!
//! The endpoint answers from before the waits: while kai-init waits or runs a pre step,
//! /livez passes and /readyz and /startupz fail with a `starting` check that says which
//! (`State::starting`), so an orchestrator sees a container that is starting, not one
//! that is dead.

pub mod expand;
pub mod file_env;
pub mod pre;
pub mod wait;

use std::ffi::OsString;
use std::time::SystemTime;

use tracing::{debug, info, warn};

use crate::config::signal_names::{ends_start, name};
use crate::config::user::{self, Identity, UserSpec};
use crate::config::RunArgs;
use crate::supervise::claims::Claims;
use crate::supervise::exit::exit_code;
use crate::supervise::oom;
use crate::supervise::state::{Publisher, State};
use crate::supervise::{Options, Supervisor};
use crate::sys::spawn::{PreExec, Spec};
use crate::sys::status::Ended;
use crate::sys::{self, signals::Signals};
use crate::util::error::Error;
use file_env::FileEnvError;

pub fn run(mut args: RunArgs) -> Result<u8, Error> {
    // Before anything else, and so before the child exists: a signal that arrives from
    // here on waits in the signalfd instead of killing or being lost.
    sys::signals::block_all().map_err(Error::setup("block signals"))?;
    let pid1 = sys::is_pid1();
    if !pid1 {
        match sys::become_subreaper() {
            Ok(()) => debug!("not PID 1: registered as child subreaper"),
            Err(e) => warn!(
                "not PID 1 and cannot become a subreaper ({e}): orphans will not be reaped here"
            ),
        }
    }
    let identity = args.user.as_ref().map(resolve_user).transpose()?;
    // With --user, the cgroup's event registrations (OOM kills, the memory warning's
    // threshold) must be made now, while root (cgroup v1's cgroup.event_control is root's).
    // Without a drop they wait until the waits and pre steps begin, or, when there are
    // none, until COMMAND runs: finding the cgroup reads /proc's cgroup files, and every
    // plain start would pay for it before the child. Only the OOM counter's starting point
    // is read before that spawn, where a container has it.
    let mut watches = identity
        .is_some()
        .then(|| cgroup_watches(args.memory_warn, None));
    // Still root: a root-only secret file is readable now and not after the drop.
    // A stop sent meanwhile (a slow read on a network mount) ends start-up at once.
    let secrets = match &args.file_env {
        Some(select) => match file_env::load(select, || stop_pending(&args.signal_map)) {
            Ok(secrets) => secrets,
            Err(FileEnvError::Stopped { signal }) => {
                return Ok(stopped_before_command(signal, "while reading secrets"))
            }
            Err(e) => return Err(Error::setting("--file-env")(e)),
        },
        None => Vec::new(),
    };

    let (publisher, subscriber) = tokio::sync::watch::channel(State::default());
    let claims = Claims::default();
    // One environment for every consumer (issue 17, item 5): the user's HOME, USER and
    // LOGNAME and the secrets, for COMMAND, the pre steps and exec: probes alike; only
    // COMMAND gets the notify socket on top.
    let mut env = user_env(identity.as_ref());
    env.extend(secrets);
    // --exit-on-unhealthy: the health side tells the supervisor, never a process.
    let (unhealthy_tx, unhealthy_rx) = tokio::sync::watch::channel(None);
    let unhealthy_tx = args.exit_on_unhealthy.then_some(unhealthy_tx);
    let mut health =
        crate::health::Health::bind(&args, subscriber, claims.clone(), env.clone(), unhealthy_tx)?;

    if let (Some(id), Some(spec)) = (&identity, &args.user) {
        sys::privileges::drop_to(id).map_err(|err| Error::Privileges {
            spec: spec.to_string(),
            err,
        })?;
        debug!(uid = id.uid, gid = id.gid, groups = ?id.groups, "dropped privileges");
    }
    let mut step_env = env.clone();
    step_env.extend(crate::health::without_notify());
    env.extend(health.child_env());
    if args.expand_env {
        expand_all(&mut args, &env)?;
    }
    if args.no_new_privs {
        // Asked for and not in force is a security setting silently off: refuse to start.
        sys::set_no_new_privs().map_err(|e| Error::setup("set no_new_privs")(e.into()))?;
    }
    let options = Options {
        stop_timeout: args.stop_timeout,
        drain_delay: args.drain_delay,
        signal_map: args.signal_map.clone(),
        signal_group: args.signal_group.clone(),
        interactive: sys::tty::in_foreground(),
        pid1,
        claims,
        unhealthy: args.exit_on_unhealthy.then_some(unhealthy_rx),
        pre_step: false,
    };
    // With nothing to wait for or run first, COMMAND starts before the event loop exists:
    // the runtime, the signalfd and the health side are built while the child execs, not
    // before (about 90 µs of every start). Its signals stay blocked and pending until the
    // signalfd reads them, SIGCHLD included.
    let early = args.wait_for.is_empty() && args.pre.is_empty();
    let mut started = None;
    // The OOM count read just before an early spawn, when the cgroup is found after it.
    let mut before = None;
    if early {
        if let Some(signal) = stop_pending(&args.signal_map) {
            return Ok(stopped_before_command(
                signal,
                "just before COMMAND started",
            ));
        }
        before = watches.is_none().then(oom::count_before_spawn).flatten();
        started = Some(spawn_main(
            &args,
            env.clone(),
            &health,
            options.interactive,
        )?);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build();
    let result = (|| {
        let runtime = runtime.map_err(Error::setup("start the event loop"))?;
        let result = runtime.block_on(async move {
            let mut signals = Signals::open().map_err(Error::setup("open a signalfd"))?;
            let late = started.is_none();
            let pid = match started {
                Some(pid) => pid,
                None => {
                    // Answering from here on, before the waits and pre steps: bound as
                    // root, served once root is dropped.
                    health.serve();
                    // Issue 9: OOM kills in the container's cgroup, named and counted.
                    // Watched from here on, so a step's OOM kill is named too (a plain
                    // start finds the cgroup once COMMAND runs, off its start-up path).
                    watch_cgroup(watches.take(), args.memory_warn, None, None);
                    if let Some(code) =
                        before_command(&args, &step_env, &options, &mut signals, &publisher).await?
                    {
                        return Ok(code);
                    }
                    if let Some(signal) = stop_pending(&args.signal_map) {
                        return Ok(stopped_before_command(
                            signal,
                            "just before COMMAND started",
                        ));
                    }
                    spawn_main(&args, env, &health, options.interactive)?
                }
            };
            info!(pid, command = %args.command[0].to_string_lossy(), "started child");
            publisher.send_modify(|s| {
                s.starting = None;
                s.child_pid = Some(pid);
                s.running = true;
                s.started_at = SystemTime::now();
            });
            let command = args.command[0].to_string_lossy().into_owned();
            match late {
                true => oom::watch_child(pid, command),
                false => watch_cgroup(
                    watches.take(),
                    args.memory_warn,
                    before,
                    Some((pid, command)),
                ),
            }
            let health = health.start();

            let state = publisher.subscribe();
            let ended = Supervisor::new(options, pid, publisher)
                .run(&mut signals)
                .await;
            // Said here, not only by the health side's own task: a child that dies at once
            // ends this loop before that task could run.
            health.exiting();
            if state.borrow().stopped_unhealthy {
                return Ok(crate::util::error::UNHEALTHY);
            }
            Ok(exit_code(ended, &args.success_code))
        });
        // kai-init exits right after this: tearing the runtime down (deregistering and
        // closing every descriptor, freeing every buffer) would only delay the exit status
        // the kernel reclaims all of that for anyway.
        std::mem::forget(runtime);
        result
    })();
    if let (Err(_), Some(pid)) = (&result, started) {
        // Started early, and the loop that would supervise it could not be built (no
        // memory or descriptors for the runtime or the signalfd): do not leave it running
        // unsupervised. Rare enough that the group is not proven ours first: it was
        // created by this spawn a moment ago and its leader is not reaped yet.
        let _ = sys::kill_group(pid, libc::SIGKILL);
        let _ = sys::kill(pid, libc::SIGKILL);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    }
    result
}

/// A signal pending now that means COMMAND must not start (see [`ends_start`]): asked at
/// the two moments start-up has no loop to hear it, while secrets are read and just
/// before the spawn (one system call). Without it a stop sent in start-up's last
/// moments reached COMMAND only once it ran.
fn stop_pending(signal_map: &[(i32, i32)]) -> Option<i32> {
    sys::signals::pending(|sig| ends_start(signal_map, sig))
}

/// kai-init's exit code for a stop before COMMAND started: as if it had died of the
/// signal (128+N), as during a wait. `when` says where start-up was.
fn stopped_before_command(signal: i32, when: &str) -> u8 {
    info!(signal = %name(signal), "stop signal {when}; not starting");
    exit_code(Ended::Signaled(signal), &[])
}

/// What watches the container's cgroup: the OOM record's event source and the memory
/// warning's threshold (issues 9 and 21).
type Watches = (
    Option<oom::Prepared>,
    Option<crate::supervise::memory::Prepared>,
);

/// The container's cgroup, found once, and its [`Watches`]. `before`: the OOM count read
/// before COMMAND started, if it was.
fn cgroup_watches(memory_warn: Option<u8>, before: Option<oom::Before>) -> Watches {
    let Some(cgroup) = crate::sys::cgroup::Cgroup::discover() else {
        debug!("no cgroup found: OOM kills and container usage are not reported");
        return (None, None);
    };
    let memory = crate::supervise::memory::prepare(cgroup.clone(), memory_warn);
    (oom::prepare(cgroup, before), memory)
}

/// Starts watching the cgroup, with what was `prepared` as root or else found now: OOM
/// kills (naming `child` if it runs already) and the memory warning. On the runtime.
fn watch_cgroup(
    prepared: Option<Watches>,
    memory_warn: Option<u8>,
    before: Option<oom::Before>,
    child: Option<(i32, String)>,
) {
    let (oom, memory) = prepared.unwrap_or_else(|| cgroup_watches(memory_warn, before));
    if let Some(oom) = oom {
        oom::init(oom, child);
    }
    if let Some(memory) = memory {
        crate::supervise::memory::init(memory);
    }
}

/// Starts COMMAND: its own process group, the terminal if kai-init has it, the notify
/// descriptor if `--notify fd:N`.
fn spawn_main(
    args: &RunArgs,
    env: Vec<(&'static str, Option<OsString>)>,
    health: &crate::health::Health,
    interactive: bool,
) -> Result<i32, Error> {
    let pid = sys::spawn::spawn(Spec {
        argv: &args.command,
        env,
        pre: PreExec {
            take_terminal: interactive,
            dup_fd: health.child_fd(),
        },
    })?;
    // COMMAND has its directory; kai-init must not pin it (issue 17, item 16).
    sys::workdir::leave();
    Ok(pid)
}

/// The `--wait-for` waits, then the `--pre` steps. `Some(code)`: COMMAND must not start,
/// and kai-init exits with `code`.
async fn before_command(
    args: &RunArgs,
    env: &[(&'static str, Option<OsString>)],
    options: &Options,
    signals: &mut Signals,
    publisher: &Publisher,
) -> Result<Option<u8>, Error> {
    if !args.wait_for.is_empty() {
        use crate::start::wait::{wait_all, Interrupted};
        let waited = wait_all(
            &args.wait_for,
            args.wait_timeout,
            &args.signal_map,
            signals,
            publisher,
        );
        match waited.await {
            Ok(()) => {}
            Err(Interrupted::Stopped(sig)) => {
                return Ok(Some(exit_code(Ended::Signaled(sig), &[])))
            }
            Err(Interrupted::TimedOut {
                target,
                error,
                after,
            }) => {
                return Err(Error::WaitTimeout {
                    target,
                    error,
                    after,
                })
            }
        }
    }
    pre::run_pre(&args.pre, env, options, signals, publisher).await
}

/// `--expand-env`: COMMAND's arguments and every `--pre` word, from the child's final
/// environment (kai-init's, with `env` on top: the user's HOME/USER, health variables,
/// `--file-env` values).
fn expand_all(args: &mut RunArgs, env: &[(&'static str, Option<OsString>)]) -> Result<(), Error> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let lookup = |name: &str| -> Option<Vec<u8>> {
        match env.iter().rev().find(|(k, _)| *k == name) {
            Some((_, v)) => v.as_ref().map(|v| v.as_bytes().to_vec()),
            None => std::env::var_os(name).map(OsString::into_vec),
        }
    };
    let expand = |bytes: &[u8]| {
        crate::start::expand::expand(bytes, &lookup).map_err(Error::setting("--expand-env"))
    };
    for word in args.command.iter_mut().chain(args.pre.iter_mut().flatten()) {
        *word = OsString::from_vec(expand(word.as_bytes())?);
    }
    Ok(())
}

fn resolve_user(spec: &UserSpec) -> Result<Identity, Error> {
    let passwd = read_etc("/etc/passwd")?;
    let group = read_etc("/etc/group")?;
    user::resolve(spec, &passwd, &group).map_err(Error::setting("cannot switch user"))
}

/// The bytes of /etc/passwd or /etc/group. A missing file is an empty one (numeric ids
/// still work, names are unknown), as for libc; any other failure (EACCES, EISDIR, EIO)
/// stops start-up: a file that cannot be read must not silently cost the child its
/// supplementary groups or its HOME.
fn read_etc(path: &'static str) -> Result<Vec<u8>, Error> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        read => read.map_err(|err| Error::Read { path, err }),
    }
}

/// HOME, USER and LOGNAME of the new user, as login(1) and gosu set them, byte for byte
/// from /etc/passwd; an id with no /etc/passwd entry has no name, so root's USER must not
/// leak through either. The main child and `exec:` probes get the same.
fn user_env(identity: Option<&Identity>) -> Vec<(&'static str, Option<OsString>)> {
    use std::os::unix::ffi::OsStringExt;
    let Some(id) = identity else {
        return Vec::new();
    };
    let name = id.name.clone().map(OsString::from_vec);
    vec![
        ("HOME", Some(OsString::from_vec(id.home.clone()))),
        ("USER", name.clone()),
        ("LOGNAME", name),
    ]
}
