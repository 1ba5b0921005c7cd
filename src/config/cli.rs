//! Command-line and environment interface: the option table, a small parser over it, the
//! help text it renders, and the value parsers. No I/O but reading the environment.
//!
//! Every supervisor option also reads `KAI_INIT_<NAME>` so that an image can set it with
//! `ENV`; a flag on the command line wins over the variable, and an empty variable counts
//! as unset (`docker run -e KAI_INIT_USER=` clears an image's setting). The variables:
//!
//! | variable | value |
//! |---|---|
//! | `KAI_INIT_USER` | `USER[:GROUP]`, names or numbers; bytes (need not be UTF-8) |
//! | `KAI_INIT_NO_NEW_PRIVS` | `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`) |
//! | `KAI_INIT_STOP_TIMEOUT` | duration, default `8s` |
//! | `KAI_INIT_SIGNAL_MAP` | `FROM:TO,...` |
//! | `KAI_INIT_SIGNAL_GROUP` | `SIGNAL,...` or `all` |
//! | `KAI_INIT_SUCCESS_CODE` | `N,...` |
//! | `KAI_INIT_LOG_FORMAT` | `text` or `json` |
//! | `KAI_INIT_LOG_LEVEL` | `off`, `error`, `warn`, `info`, `debug`, `trace` |
//! | `KAI_INIT_HEALTH_SOCKET` | abstract socket name or `off` (also read by `check`) |
//! | `KAI_INIT_HEALTH_LISTEN` | `IP:PORT` (also read by `check`) |
//! | `KAI_INIT_PROBE` | `http://`, `tcp://`, `exec:` or `file:` target |
//! | `KAI_INIT_PROBE_INTERVAL`, `KAI_INIT_PROBE_TIMEOUT` | duration above zero |
//! | `KAI_INIT_PROBE_FAILURES` | whole number, at least 1 |
//! | `KAI_INIT_EXIT_ON_UNHEALTHY` | `true`/`false` |
//! | `KAI_INIT_MEMORY_WARN` | percentage 1..=100 or `off`, default `90` |
//! | `KAI_INIT_PROBE_INITIAL_DELAY`, `KAI_INIT_DRAIN_DELAY` | duration |
//! | `KAI_INIT_NOTIFY` | `sd` or `fd:N` |
//! | `KAI_INIT_WAIT_FOR` | `tcp://`, `http://` or `file:` targets, comma-separated |
//! | `KAI_INIT_WAIT_TIMEOUT` | duration, default `60s` |
//! | `KAI_INIT_FILE_ENV` | `NAME,...` (fill these), or `true`/`false` (every `NAME_FILE` under /run/secrets/) |
//! | `KAI_INIT_EXPAND_ENV` | `true`/`false` |
//! | `KAI_INIT_PRE` | command lines (see `words`), separated by unquoted `;` or newlines |
//!
//! Durations are at most 24 hours (see `duration`). A value that does not parse, or that
//! is not UTF-8 (all but the user's name), stops kai-init with exit 125 and one line naming
//! the flag or variable: a setting that cannot be read is never taken as unset. Usage
//! errors exit 2; `kai-init check` exits 64 for both (Docker reserves 2). The full list of
//! exit codes is in `error`.
//!
//! Words are scanned by lexopt, under a table of options per command (which also renders
//! `--help`), not by clap: building clap's command (twenty arguments, their help and
//! environment look-ups) cost about 190 µs per start, measured here, which put kai-init's
//! start-up overhead behind tini's, and clap was a tenth of the binary. lexopt only
//! splits words, keeps each an `OsString` (so a word that is not UTF-8 but starts with `-`
//! is an option, never COMMAND), and costs nothing measurable. `kai-init check` runs in
//! every container at every health interval and gains the same.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::Duration;

use crate::config::user::UserSpec;
use crate::config::{CheckArgs, FileEnv, LogFormat, LogLevel, Notify, RunArgs, Target};
use crate::util::text::Shown;

/// One command line: its options, its help text, and what its failures exit with.
#[derive(Debug)]
pub struct Spec {
    name: &'static str,
    about: &'static str,
    usage: &'static str,
    /// What the words that are not options are, for `--help`.
    words: &'static str,
    examples: &'static str,
    options: &'static [Opt],
    /// Whether each option also reads `KAI_INIT_<NAME>`.
    env: bool,
    usage_code: u8,
    invalid_code: u8,
}

const SUPERVISOR: Spec = Spec {
    name: "kai-init",
    about: "A tiny PID 1 for containers: drops root, forwards signals, reaps zombies, serves health probes.",
    usage: "\
Usage: kai-init [OPTIONS] [--] COMMAND [ARGS...]
       kai-init run [OPTIONS] [--] COMMAND [ARGS...]
       kai-init check [OPTIONS] [TARGET...]   (see kai-init check --help)",
    words: "COMMAND [ARGS...]  the program to run and its arguments",
    examples: EXAMPLES,
    options: OPTIONS,
    env: true,
    usage_code: 2,
    invalid_code: 125,
};

const EXAMPLES: &str = "\
Examples:
  kai-init -- node server.js                      run Node as PID 1: signals forwarded, zombies reaped
  kai-init --user node -- node server.js          drop root to the node user first (gosu semantics)
  kai-init --probe http://127.0.0.1:3000/health -- node server.js
  kai-init --signal-map TERM:QUIT -- nginx -g 'daemon off;'
  kai-init -- npm run dev                         a local debugging wrapper: Ctrl-C and Ctrl-Z behave
  kai-init check                                  the HEALTHCHECK command: asks the running kai-init

Exit codes: the child's code; 128+N if it died of signal N; 125 kai-init could not start;
126 COMMAND cannot be executed; 127 COMMAND not found; 124 a --wait-for target was not up
in time; 2 usage error.";

/// One option: `--long`, its variable `KAI_INIT_<LONG>`, and how it reads.
#[derive(Debug)]
struct Opt {
    long: &'static str,
    short: Option<char>,
    /// Empty for a flag without a value.
    value_name: &'static str,
    default: Option<&'static str>,
    /// May be given several times, and its variable holds a comma-separated list.
    list: bool,
    /// The value is optional and attached (`--file-env=A,B`); bare, the flag reads `true`.
    optional: bool,
    /// How a list's variable is cut into values (commas, or `--pre`'s unquoted `;`).
    env_split: fn(&[u8]) -> Vec<Vec<u8>>,
    help: &'static str,
}

/// A list variable's values: comma-separated.
fn commas(value: &[u8]) -> Vec<Vec<u8>> {
    value.split(|b| *b == b',').map(<[u8]>::to_vec).collect()
}

const fn opt(long: &'static str, value_name: &'static str, help: &'static str) -> Opt {
    Opt {
        long,
        short: None,
        value_name,
        default: None,
        list: false,
        optional: false,
        env_split: commas,
        help,
    }
}

const fn with_default(o: Opt, default: &'static str) -> Opt {
    Opt {
        default: Some(default),
        ..o
    }
}

const fn list(o: Opt) -> Opt {
    Opt { list: true, ..o }
}

/// Every option of the supervisor, in the order `--help` shows them.
const OPTIONS: &[Opt] = &[
    Opt {
        short: Some('u'),
        ..opt(
            "user",
            "USER[:GROUP]",
            "Drop root to USER[:GROUP] (names or numbers) before starting COMMAND",
        )
    },
    opt(
        "no-new-privs",
        "",
        "Set PR_SET_NO_NEW_PRIVS so neither COMMAND nor its children can gain privileges",
    ),
    with_default(
        opt(
            "stop-timeout",
            "DURATION",
            "After a stop signal, how long to wait before SIGKILL to the child's process group",
        ),
        "8s",
    ),
    list(opt(
        "signal-map",
        "FROM:TO",
        "Rewrite a signal before forwarding it, e.g. TERM:QUIT; TO=0 drops it (repeatable)",
    )),
    list(opt(
        "signal-group",
        "SIGNAL|all",
        "Forward this signal to the child's whole process group, not only to the child, e.g. TERM,INT for a wrapper that does not pass signals on (repeatable)",
    )),
    list(opt(
        "success-code",
        "N",
        "Report this exit code as 0, e.g. 143 for JVMs (repeatable)",
    )),
    with_default(
        opt(
            "log-format",
            "text|json",
            "Format of kai-init's own log lines on stderr",
        ),
        "text",
    ),
    with_default(
        opt(
            "log-level",
            "LEVEL",
            "Least severe level of kai-init's own log lines: off, error, warn, info, debug, trace",
        ),
        "info",
    ),
    with_default(
        opt(
            "health-socket",
            "NAME|off",
            "Abstract Unix socket for the health endpoint; the default stands for this container's own name, @kai-init/<mount-namespace inode> (\"off\" disables it)",
        ),
        "@kai-init",
    ),
    opt(
        "health-listen",
        "ADDR",
        "Also serve the health endpoint on TCP, e.g. 0.0.0.0:8081 (for Kubernetes httpGet probes)",
    ),
    opt(
        "probe",
        "URL",
        "Probe the child: http://HOST:PORT/PATH, tcp://HOST:PORT, exec:COMMAND (words split like --pre's) or file:PATH",
    ),
    with_default(
        opt("probe-interval", "DURATION", "Time between probes"),
        "10s",
    ),
    with_default(
        opt(
            "probe-start-interval",
            "DURATION",
            "Time between probes until the first one passes (at most --probe-interval)",
        ),
        "100ms",
    ),
    with_default(
        opt("probe-timeout", "DURATION", "How long one probe may take"),
        "1s",
    ),
    with_default(
        opt(
            "probe-failures",
            "N",
            "Failed probes in a row before /livez fails",
        ),
        "3",
    ),
    opt(
        "exit-on-unhealthy",
        "",
        "When /livez turns failing after the child was ready (--probe-failures failed probes in a row, or an expired watchdog), stop the child as for SIGTERM and exit 69, so a restart policy restarts the container",
    ),
    with_default(
        opt(
            "memory-warn",
            "PERCENT|off",
            "Log one warning, naming the largest processes, when the container's working set crosses this share of its memory limit",
        ),
        "90",
    ),
    with_default(
        opt(
            "probe-initial-delay",
            "DURATION",
            "Wait this long after start before the first probe",
        ),
        "0s",
    ),
    opt(
        "notify",
        "sd|fd:N",
        "Readiness notification from the child: sd (NOTIFY_SOCKET) or fd:N (s6 style)",
    ),
    with_default(
        opt(
            "drain-delay",
            "DURATION",
            "On SIGTERM, fail /readyz at once but wait this long before forwarding the stop signal",
        ),
        "0s",
    ),
    list(opt(
        "wait-for",
        "URL",
        "Before starting COMMAND, wait until this is up: tcp://HOST:PORT, http://HOST:PORT/PATH (200-399) or file:PATH; HOST may be a name (repeatable, in order)",
    )),
    with_default(
        opt(
            "wait-timeout",
            "DURATION",
            "Give up the --wait-for waits after this long: exit 124 and COMMAND never starts",
        ),
        "60s",
    ),
    Opt {
        optional: true,
        ..opt(
            "file-env",
            "NAME,...",
            "Set each NAME listed to the content of the file NAME_FILE=PATH names (one trailing newline removed; NAME_FILE removed), read before root is dropped; a listed NAME left unset is an error. Bare: every NAME_FILE whose PATH lies under /run/secrets/ (other *_FILE variables are left as they are). NAME=content up to 128 KiB, Linux's limit for one variable",
        )
    },
    opt(
        "expand-env",
        "",
        "Expand ${NAME} and ${NAME:-default} in COMMAND's arguments and --pre steps from the child's environment; $$ is a literal $, anything else stays as written",
    ),
    Opt {
        env_split: crate::config::words::steps,
        ..list(opt(
            "pre",
            "COMMAND",
            "Run this command line to completion before COMMAND, after the waits, as the same user with the same environment; words split like sh's, quotes and backslashes only; a failing step's status is kai-init's and COMMAND never starts (repeatable, in order)",
        ))
    },
];

/// `kai-init check`: usage errors exit 64, never 2, which Docker reserves.
const CHECK: Spec = Spec {
    name: "kai-init check",
    about: "Ask a running kai-init, or the given targets, whether they are healthy.",
    usage: "Usage: kai-init check [OPTIONS] [TARGET...]",
    words: "TARGET...  check these instead of kai-init: http://HOST:PORT/PATH or tcp://HOST:PORT (all must pass)",
    examples: "\
Examples:
  HEALTHCHECK CMD [\"/sbin/kai-init\", \"check\"]          ask the running kai-init (/healthz)
  kai-init check --path /livez
  kai-init check http://127.0.0.1:3000/health tcp://127.0.0.1:5432

Exit codes: 0 healthy, 1 unhealthy or unreachable, 64 usage error.
Environment: KAI_INIT_HEALTH_LISTEN (TCP address, used first), KAI_INIT_HEALTH_SOCKET
(abstract socket name, default @kai-init).",
    options: &[
        with_default(opt("path", "PATH", "Path to ask the running kai-init for"), "/healthz"),
        with_default(opt("timeout", "DURATION", "Give up after this long"), "2s"),
        with_default(opt("expect-status", "RANGES", "HTTP statuses that pass, e.g. 200-399 or 200,204"), "200-399"),
        Opt {
            short: Some('H'),
            ..list(opt("header", "NAME: VALUE", "Extra request header for http:// targets (repeatable)"))
        },
    ],
    env: false,
    usage_code: 64,
    invalid_code: 64,
};

/// Why parsing stopped.
#[derive(Debug)]
pub enum Stop {
    Help(&'static Spec),
    Version,
    /// Unknown flag, missing value (kai-init: exit 2; check: 64).
    Usage(&'static Spec, String),
    /// A value that does not parse (kai-init cannot start: exit 125; check: 64).
    Invalid(&'static Spec, String),
}

impl Stop {
    /// Prints what the stop calls for, one line on stderr for a failure, and returns the
    /// exit code.
    pub fn report(self) -> u8 {
        match self {
            Stop::Help(spec) => {
                print!("{}", help(spec));
                0
            }
            Stop::Version => {
                println!("kai-init {}", env!("CARGO_PKG_VERSION"));
                0
            }
            // Messages quote what they were given: escaped, so one failure is one line.
            Stop::Usage(spec, msg) => {
                let msg = crate::util::text::printable(&msg);
                eprintln!("{}: {msg} (see {} --help)", spec.name, spec.name);
                spec.usage_code
            }
            Stop::Invalid(spec, msg) => {
                eprintln!("{}: {}", spec.name, crate::util::text::printable(&msg));
                spec.invalid_code
            }
        }
    }
}

/// Parses the supervisor's arguments (without the program name) and environment.
pub fn parse(args: &[OsString]) -> Result<RunArgs, Stop> {
    parse_with(args, &|name| std::env::var_os(name))
}

/// [`parse`] with the environment as a function, so that tests need not change the
/// process's own.
pub fn parse_with(args: &[OsString], env: Lookup<'_>) -> Result<RunArgs, Stop> {
    let (given, command) = scan(&SUPERVISOR, args, true)?;
    let mut s = Settings {
        spec: &SUPERVISOR,
        given,
        env,
    };
    Ok(RunArgs {
        // Names are bytes (as in gosu): the one value that need not be UTF-8.
        user: s.bytes("user", |v| UserSpec::parse(v))?,
        no_new_privs: s.switch("no-new-privs")?,
        stop_timeout: s.value("stop-timeout", crate::util::duration::parse)?,
        signal_map: s.list("signal-map", parse_signal_map)?,
        signal_group: s.list("signal-group", parse_signal_group)?.concat(),
        success_code: s.list("success-code", parse_code)?,
        log_format: s.value("log-format", parse_log_format)?,
        log_level: s.value("log-level", parse_log_level)?,
        health_socket: s.value("health-socket", |t| Ok(t.to_owned()))?,
        health_listen: s.one("health-listen", parse_addr)?,
        probe: s.one("probe", Target::parse_probe)?,
        probe_interval: s.value("probe-interval", parse_positive_duration)?,
        probe_start_interval: s.value("probe-start-interval", parse_positive_duration)?,
        probe_timeout: s.value("probe-timeout", parse_positive_duration)?,
        probe_failures: s.value("probe-failures", parse_failures)?,
        exit_on_unhealthy: s.switch("exit-on-unhealthy")?,
        memory_warn: s.value("memory-warn", parse_memory_warn)?,
        probe_initial_delay: s.value("probe-initial-delay", crate::util::duration::parse)?,
        notify: s.one("notify", parse_notify)?,
        drain_delay: s.value("drain-delay", crate::util::duration::parse)?,
        wait_for: s.list("wait-for", Target::parse_wait)?,
        wait_timeout: s.value("wait-timeout", crate::util::duration::parse)?,
        file_env: s.one("file-env", parse_file_env)?.flatten(),
        expand_env: s.switch("expand-env")?,
        pre: s.list("pre", |t| match crate::config::words::split(t) {
            Ok(words) => Ok(words.into_iter().map(OsString::from).collect()),
            Err(e) => Err(e.to_string()),
        })?,
        command,
    })
}

/// Parses `kai-init check`'s arguments (without `check`).
pub fn parse_check(args: &[OsString]) -> Result<CheckArgs, Stop> {
    let (given, words) = scan(&CHECK, args, false)?;
    let mut s = Settings {
        spec: &CHECK,
        given,
        env: &|_| None,
    };
    let targets = words
        .into_iter()
        .map(|w| {
            w.into_string().map_err(|w| {
                Stop::Usage(
                    &CHECK,
                    format!("target '{}' is not valid UTF-8", Shown(w.as_bytes())),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(CheckArgs {
        path: s.value("path", |t| Ok(t.to_owned()))?,
        timeout: s.value("timeout", parse_positive_duration)?,
        expect_status: s.value("expect-status", |t| Ok(t.to_owned()))?,
        header: s.list("header", |t| Ok(t.to_owned()))?,
        targets,
    })
}

/// Reads one variable of the environment; `None` when it is not set.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// Option values by long name, as given, and the other words.
type Scanned = (HashMap<&'static str, Vec<OsString>>, Vec<OsString>);

/// Splits arguments into option values and the other words, with lexopt (which keeps
/// every word an `OsString`: a word that is not UTF-8 is a value, or an unknown option
/// when it starts with `-`). With `trailing`, the first other word starts the child's
/// command line, which is taken whole; otherwise words and options may mix. `--` ends the
/// options either way.
fn scan(spec: &'static Spec, args: &[OsString], trailing: bool) -> Result<Scanned, Stop> {
    use lexopt::Arg::{Long, Short, Value};
    let usage = |msg: String| Stop::Usage(spec, msg);
    let mut given: HashMap<&'static str, Vec<OsString>> = HashMap::new();
    let mut words = Vec::new();
    let mut parser = lexopt::Parser::from_args(args);
    // lexopt's only errors here are values attached to a flag, which `--flag=value` below
    // reports itself; a stray one cannot remain, but say so rather than panic.
    while let Some(arg) = parser.next().map_err(|e| usage(e.to_string()))? {
        let o = match arg {
            Value(word) => {
                words.push(word);
                if trailing {
                    let rest = parser.raw_args().map_err(|e| usage(e.to_string()))?;
                    words.extend(rest);
                    break;
                }
                continue;
            }
            Short('h') | Long("help") => return Err(Stop::Help(spec)),
            Short('V') | Long("version") => return Err(Stop::Version),
            Short(c) => (spec.options.iter().find(|o| o.short == Some(c)))
                .ok_or_else(|| usage(format!("unexpected argument '-{}'", c.escape_default())))?,
            Long(name) => (spec.options.iter().find(|o| o.long == name)).ok_or_else(|| {
                usage(format!(
                    "unexpected argument '--{}'",
                    Shown(name.as_bytes())
                ))
            })?,
        };
        let value = if o.value_name.is_empty() || o.optional {
            match parser.optional_value() {
                Some(value) if o.optional => value,
                Some(_) => return Err(usage(format!("--{} takes no value", o.long))),
                None => OsString::from("true"),
            }
        } else {
            (parser.value()).map_err(|_| usage(format!("a value is required for {}", flag(o))))?
        };
        let values = given.entry(o.long).or_default();
        if !values.is_empty() && !o.list {
            return Err(usage(format!("{} cannot be given more than once", flag(o))));
        }
        values.push(value);
    }
    Ok((given, words))
}

/// `--stop-timeout <DURATION>`, as messages name an option.
fn flag(o: &Opt) -> String {
    match o.value_name {
        "" => format!("'--{}'", o.long),
        v if o.optional => format!("'--{}[={v}]'", o.long),
        v => format!("'--{} <{v}>'", o.long),
    }
}

fn env_name(o: &Opt) -> String {
    // Built by hand, not with format!: this runs for every option at every start, and
    // the formatting machinery cost more than the rest of parsing (measured with
    // callgrind).
    let mut name = String::with_capacity(9 + o.long.len());
    name.push_str("KAI_INIT_");
    name.extend(o.long.chars().map(|c| match c {
        '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    name
}

/// What was given on the command line; the environment and defaults are read on demand.
struct Settings<'e> {
    spec: &'static Spec,
    given: HashMap<&'static str, Vec<OsString>>,
    env: Lookup<'e>,
}

/// Where an option's values came from: its flag (or its default), or its variable.
enum Source {
    Flag(&'static Opt),
    Var(String),
}

impl Settings<'_> {
    /// The raw values of `long` and where they came from: the flags, else the variable
    /// (split at commas for a list; empty counts as unset), else the default.
    /// The source is named only when a value is refused, so nothing is formatted on the
    /// way to a successful start.
    fn raw(&mut self, long: &str) -> (Vec<OsString>, Source) {
        let o = (self.spec.options.iter())
            .find(|o| o.long == long)
            .expect("an option of the table");
        if let Some(values) = self.given.remove(long) {
            return (values, Source::Flag(o));
        }
        let var = env_name(o);
        let set = self.spec.env.then(|| (self.env)(&var)).flatten();
        if let Some(value) = set.filter(|v| !v.is_empty()) {
            let values = match o.list {
                true => ((o.env_split)(value.as_bytes()).into_iter())
                    .map(OsString::from_vec)
                    .collect(),
                false => vec![value],
            };
            return (values, Source::Var(var));
        }
        (
            o.default.map(OsString::from).into_iter().collect(),
            Source::Flag(o),
        )
    }

    /// Every value of `long`, each read by `parse` from its bytes.
    fn list_bytes<T>(
        &mut self,
        long: &str,
        parse: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<Vec<T>, Stop> {
        let (values, source) = self.raw(long);
        (values.iter())
            .map(|v| {
                parse(v.as_bytes()).map_err(|why| {
                    let v = Shown(v.as_bytes());
                    let source = match &source {
                        Source::Flag(o) => flag(o),
                        Source::Var(var) => var.clone(),
                    };
                    Stop::Invalid(
                        self.spec,
                        format!("invalid value '{v}' for {source}: {why}"),
                    )
                })
            })
            .collect()
    }

    /// Every value of `long`, each read by `parse` from its text: a value that is not
    /// UTF-8 is invalid, never unset (a `KAI_INIT_USER` that could not be read once ran
    /// the child as root).
    fn list<T>(
        &mut self,
        long: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Vec<T>, Stop> {
        self.list_bytes(long, |bytes| match std::str::from_utf8(bytes) {
            Ok(text) => parse(text),
            Err(_) => Err("not valid UTF-8".into()),
        })
    }

    fn one<T>(
        &mut self,
        long: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, Stop> {
        Ok(self.list(long, parse)?.pop())
    }

    fn bytes<T>(
        &mut self,
        long: &str,
        parse: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<Option<T>, Stop> {
        Ok(self.list_bytes(long, parse)?.pop())
    }

    /// An option with a default, so always a value.
    fn value<T>(
        &mut self,
        long: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, Stop> {
        Ok(self.one(long, parse)?.expect("an option with a default"))
    }

    fn switch(&mut self, long: &str) -> Result<bool, Stop> {
        Ok(self.one(long, parse_bool)?.unwrap_or(false))
    }
}

/// The `--help` text, rendered from the option table.
fn help(spec: &Spec) -> String {
    let cells: Vec<(String, &Opt)> = (spec.options.iter())
        .map(|o| {
            let short = o.short.map_or("    ".to_owned(), |c| format!("-{c}, "));
            let value = match o.value_name {
                "" => String::new(),
                v if o.optional => format!("[={v}]"),
                v => format!(" <{v}>"),
            };
            (format!("{short}--{}{value}", o.long), o)
        })
        .collect();
    let width = cells
        .iter()
        .map(|(c, _)| c.len())
        .max()
        .unwrap_or(0)
        .max(13);
    let mut out = format!(
        "{}\n\n{}\n\nArguments:\n  {}\n\nOptions:\n",
        spec.about, spec.usage, spec.words
    );
    for (cell, o) in cells {
        let default = (o.default)
            .map(|d| format!(" [default: {d}]"))
            .unwrap_or_default();
        let env = if spec.env {
            format!(" [env: {}]", env_name(o))
        } else {
            String::new()
        };
        out += &format!("  {cell:width$}  {}{default}{env}\n", o.help);
    }
    out += &format!(
        "  {:width$}  Print help\n  {:width$}  Print version\n\n{}\n",
        "-h, --help", "-V, --version", spec.examples
    );
    out
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// `--file-env[=VALUE]` and `KAI_INIT_FILE_ENV`: a boolean (the bare flag reads `true`)
/// for every `NAME_FILE`, or the NAMEs to fill. A boolean spelling wins: a variable called
/// `ON` alone cannot be listed (`ON,X` can).
fn parse_file_env(text: &str) -> Result<Option<FileEnv>, String> {
    match parse_bool(text) {
        Ok(true) => Ok(Some(FileEnv::Every)),
        Ok(false) => Ok(None),
        Err(_) => super::env_names::parse_names(text).map(|names| Some(FileEnv::Only(names))),
    }
}

fn parse_code(text: &str) -> Result<u8, String> {
    text.trim()
        .parse()
        .map_err(|_| "expected an exit code from 0 to 255".into())
}

fn parse_failures(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of at least 1".into()),
    }
}

/// `--memory-warn`: a whole percentage 1..=100, or `off`.
fn parse_memory_warn(text: &str) -> Result<Option<u8>, String> {
    match text.trim() {
        "off" => Ok(None),
        t => match t.strip_suffix('%').unwrap_or(t).parse::<u8>() {
            Ok(n @ 1..=100) => Ok(Some(n)),
            _ => Err("expected a whole percentage from 1 to 100, or off".into()),
        },
    }
}

fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| "expected IP:PORT, e.g. 0.0.0.0:8081 or [::]:8081".into())
}

fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    match text {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("expected text or json".into()),
    }
}

fn parse_log_level(text: &str) -> Result<LogLevel, String> {
    Ok(match text {
        "off" => LogLevel::Off,
        "error" => LogLevel::Error,
        "warn" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "trace" => LogLevel::Trace,
        _ => return Err("expected off, error, warn, info, debug or trace".into()),
    })
}

fn parse_signal_map(text: &str) -> Result<(i32, i32), String> {
    let (from, to) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not FROM:TO (e.g. TERM:QUIT)"))?;
    Ok((
        crate::config::signal_names::parse(from, false)?,
        crate::config::signal_names::parse(to, true)?,
    ))
}

/// One `--signal-group` value: signals separated by commas, or `all` for every signal.
fn parse_signal_group(text: &str) -> Result<Vec<i32>, String> {
    if text.trim().eq_ignore_ascii_case("all") {
        return Ok((1..=crate::config::signal_names::RTMAX).collect());
    }
    text.split(',')
        .map(|sig| crate::config::signal_names::parse(sig, false))
        .collect()
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match crate::util::duration::parse(text)? {
        Duration::ZERO => Err(format!("duration '{text}' must be greater than zero")),
        d => Ok(d),
    }
}

fn parse_notify(text: &str) -> Result<Notify, String> {
    if text == "sd" {
        return Ok(Notify::Sd);
    }
    match text.strip_prefix("fd:").map(str::parse::<i32>) {
        Some(Ok(fd)) if fd >= 3 => Ok(Notify::Fd(fd)),
        Some(Ok(_)) => Err("fd:N needs N >= 3 (0-2 are the child's stdio)".into()),
        _ => Err(format!("'{text}' is not sd or fd:N")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    /// [`super::parse`] with an empty environment: these tests must not depend on the
    /// variables of whoever runs them.
    fn parse(args: &[OsString]) -> Result<RunArgs, Stop> {
        parse_with(args, &|_| None)
    }

    /// [`super::parse`] with exactly these variables.
    fn parse_env(args: &[&str], vars: &[(&str, &[u8])]) -> Result<RunArgs, Stop> {
        let vars: HashMap<String, OsString> = (vars.iter())
            .map(|(k, v)| (k.to_string(), OsString::from_vec(v.to_vec())))
            .collect();
        parse_with(&os(args), &|k| vars.get(k).cloned())
    }

    fn bytes(b: &[u8]) -> OsString {
        OsString::from_vec(b.to_vec())
    }

    fn invalid_message(r: Result<RunArgs, Stop>) -> String {
        match r {
            Err(Stop::Invalid(_, m)) => m,
            other => panic!("expected an invalid value, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_command() {
        let a = parse(&os(&["--", "node", "--inspect", "app.js"])).unwrap();
        assert_eq!(a.command, os(&["node", "--inspect", "app.js"]));
        assert_eq!(a.stop_timeout, Duration::from_secs(8));
        assert_eq!(a.health_socket, "@kai-init");
        assert_eq!(a.probe_failures, 3);
        assert!(a.signal_group.is_empty() && a.user.is_none() && a.signal_map.is_empty());
    }

    #[test]
    fn flags_in_every_form() {
        let a = parse(&os(&[
            "-u",
            "node",
            "--stop-timeout=2s",
            "--signal-map",
            "TERM:QUIT",
            "--signal-map=USR1:0",
            "--signal-group",
            "TERM,INT",
            "--signal-group=HUP",
            "--success-code",
            "143",
            "sleep",
            "-x",
        ]))
        .unwrap();
        assert_eq!(a.user.unwrap().user, b"node");
        assert_eq!(a.stop_timeout, Duration::from_secs(2));
        assert_eq!(a.signal_map, vec![(15, 3), (10, 0)]);
        assert_eq!(a.signal_group, vec![15, 2, 1]);
        assert_eq!(a.success_code, vec![143]);
        assert_eq!(
            a.command,
            os(&["sleep", "-x"]),
            "flags after COMMAND are the child's"
        );
        assert_eq!(
            parse(&os(&["-unobody", "true"]))
                .unwrap()
                .user
                .unwrap()
                .user,
            b"nobody"
        );
    }

    #[test]
    fn stops_with_the_right_kind() {
        assert!(matches!(parse(&os(&["--help"])), Err(Stop::Help(_))));
        assert!(matches!(parse(&os(&["-V", "x"])), Err(Stop::Version)));
        let usage = |args: &[&str]| matches!(parse(&os(args)), Err(Stop::Usage(..)));
        assert!(usage(&["--frob", "x"]) && usage(&["--user"]));
        assert!(usage(&["--no-new-privs=yes", "x"]) && usage(&["-u", "a", "-u", "b", "x"]));
        let invalid = |args: &[&str]| match parse(&os(args)) {
            Err(Stop::Invalid(_, m)) => m,
            other => panic!("{other:?}"),
        };
        let m = invalid(&["--stop-timeout", "9x", "x"]);
        assert!(m.contains("'9x'") && m.contains("--stop-timeout"), "{m}");
        invalid(&["--probe-failures", "0", "x"]);
        invalid(&["--log-level", "chatty", "x"]);
        assert_eq!(
            parse(&os(&["--frob", "x"])).err().map(Stop::report),
            Some(2)
        );
        assert_eq!(
            parse(&os(&["--log-level", "chatty", "x"]))
                .err()
                .map(Stop::report),
            Some(125)
        );
    }

    #[test]
    fn check_mixes_targets_and_options_and_exits_64() {
        let a = parse_check(&os(&[
            "tcp://127.0.0.1:1",
            "-H",
            "A: b, c",
            "--path=/livez",
            "-H",
            "X: y",
        ]))
        .unwrap();
        assert_eq!(a.targets, vec!["tcp://127.0.0.1:1"]);
        assert_eq!(
            a.header,
            vec!["A: b, c", "X: y"],
            "headers are not split at commas"
        );
        assert_eq!(
            (a.path.as_str(), a.timeout),
            ("/livez", Duration::from_secs(2))
        );
        assert_eq!(
            parse_check(&os(&["--bogus"])).err().map(Stop::report),
            Some(64)
        );
        assert_eq!(
            parse_check(&os(&["--timeout", "0s"]))
                .err()
                .map(Stop::report),
            Some(64)
        );
    }

    #[test]
    fn help_lists_every_option_with_its_variable() {
        let text = help(&SUPERVISOR);
        for o in OPTIONS {
            assert!(
                text.contains(&format!("--{}", o.long)) && text.contains(&env_name(o)),
                "{}",
                o.long
            );
        }
    }

    #[test]
    fn signal_maps_parse() {
        assert_eq!(parse_signal_map("TERM:QUIT"), Ok((15, 3)));
        assert_eq!(parse_signal_map("SIGHUP:0"), Ok((1, 0)));
        assert!(parse_signal_map("TERM").is_err());
        assert!(parse_signal_map("BOGUS:TERM").is_err());
    }

    #[test]
    fn notify_parses() {
        assert_eq!(parse_notify("sd"), Ok(Notify::Sd));
        assert_eq!(parse_notify("fd:3"), Ok(Notify::Fd(3)));
        assert!(parse_notify("fd:1").is_err());
        assert!(parse_notify("pipe").is_err());
    }

    #[test]
    fn a_word_that_is_not_utf8_and_starts_with_a_dash_is_an_option() {
        for arg in [&b"--us\xffer"[..], b"-\xff", b"--\xff=x", b"-\xe9u"] {
            let r = parse(&[bytes(arg), "true".into()]);
            assert!(matches!(r, Err(Stop::Usage(..))), "{arg:?}: {r:?}");
        }
        // Not an option: the command itself (a program name need not be UTF-8).
        let a = parse(&[bytes(b"caf\xe9"), bytes(b"-\xff")]).unwrap();
        assert_eq!(a.command, [bytes(b"caf\xe9"), bytes(b"-\xff")]);
    }

    #[test]
    fn values_that_are_not_utf8_are_invalid_unless_bytes_are_names() {
        let m = invalid_message(parse(&[
            "--stop-timeout".into(),
            bytes(b"8s\xff"),
            "true".into(),
        ]));
        assert!(m.contains("--stop-timeout") && m.contains(r"8s\xff"), "{m}");
        let m = invalid_message(parse(&[bytes(b"--log-level=\xff"), "true".into()]));
        assert!(m.contains("--log-level"), "{m}");
        // A user name is bytes, as in gosu: `-u` takes it in every form.
        for args in [
            vec![bytes(b"-ucaf\xe9:gr\xfcn"), "true".into()],
            vec!["--user".into(), bytes(b"caf\xe9:gr\xfcn"), "true".into()],
            vec![bytes(b"--user=caf\xe9:gr\xfcn"), "true".into()],
        ] {
            let user = parse(&args).unwrap().user.unwrap();
            assert_eq!(
                (user.user, user.group),
                (b"caf\xe9".to_vec(), Some(b"gr\xfcn".to_vec()))
            );
        }
    }

    #[test]
    fn variables_that_cannot_be_read_are_errors_naming_them() {
        for var in [
            "KAI_INIT_STOP_TIMEOUT",
            "KAI_INIT_NO_NEW_PRIVS",
            "KAI_INIT_SIGNAL_MAP",
            "KAI_INIT_PROBE",
        ] {
            let m = invalid_message(parse_env(&["true"], &[(var, b"1\xff")]));
            assert!(m.contains(var) && m.contains("UTF-8"), "{m}");
        }
        // A list: every item must be readable.
        let m = invalid_message(parse_env(
            &["true"],
            &[("KAI_INIT_SUCCESS_CODE", b"143,1\xff")],
        ));
        assert!(m.contains("KAI_INIT_SUCCESS_CODE"), "{m}");
        // The user's bytes are a name: read, not ignored (resolving it is launch's job).
        let user = parse_env(&["true"], &[("KAI_INIT_USER", b"nobody\xff")])
            .unwrap()
            .user;
        assert_eq!(user.unwrap().user, b"nobody\xff");
        // Empty counts as unset; the command line wins over a variable.
        let a = parse_env(
            &["true"],
            &[("KAI_INIT_USER", b""), ("KAI_INIT_STOP_TIMEOUT", b"")],
        )
        .unwrap();
        assert!(a.user.is_none() && a.stop_timeout == Duration::from_secs(8));
        let a = parse_env(
            &["--stop-timeout", "1s", "true"],
            &[("KAI_INIT_STOP_TIMEOUT", b"\xff")],
        )
        .unwrap();
        assert_eq!(a.stop_timeout, Duration::from_secs(1));
    }

    #[test]
    fn absurd_durations_are_rejected_naming_the_flag_or_variable() {
        for long in [
            "stop-timeout",
            "drain-delay",
            "probe-interval",
            "probe-timeout",
            "probe-initial-delay",
        ] {
            let m = invalid_message(parse(&os(&[&format!("--{long}"), "1e19", "true"])));
            assert!(
                m.contains(&format!("--{long}")) && m.contains("1e19"),
                "{m}"
            );
            let m = invalid_message(parse(&os(&[&format!("--{long}=25h"), "true"])));
            assert!(m.contains("maximum"), "{m}");
            let var = format!("KAI_INIT_{}", long.to_uppercase().replace('-', "_"));
            let m = invalid_message(parse_env(&["true"], &[(&var, b"10000000000000000000")]));
            assert!(m.contains(&var), "{m}");
        }
        let check = parse_check(&os(&["--timeout", "1e19"])).err().unwrap();
        assert!(matches!(check, Stop::Invalid(_, ref m) if m.contains("--timeout")));
        assert_eq!(check.report(), 64);
    }

    #[test]
    fn inline_values_and_short_equals() {
        assert_eq!(
            parse(&os(&["-u=node", "true"])).unwrap().user.unwrap().user,
            b"node"
        );
        assert_eq!(
            parse(&os(&["--user=", "true"])).err().map(Stop::report),
            Some(125)
        );
        let a = parse(&os(&["--", "--user", "x"])).unwrap();
        assert_eq!((a.user, a.command), (None, os(&["--user", "x"])));
        let a = parse(&os(&["-", "x"])).unwrap();
        assert_eq!(a.command, os(&["-", "x"]), "a lone dash is a word");
        assert!(matches!(parse(&os(&["--help=x"])), Err(Stop::Help(_))));
    }

    #[test]
    fn file_env_takes_an_optional_list_of_names() {
        let only =
            |names: &[&str]| Some(FileEnv::Only(names.iter().map(|n| n.to_string()).collect()));
        let file_env = |args: &[&str]| parse(&os(args)).unwrap().file_env;
        assert_eq!(file_env(&["true"]), None);
        assert_eq!(file_env(&["--file-env", "true"]), Some(FileEnv::Every));
        assert_eq!(
            file_env(&["--file-env=DB_PASSWORD", "x"]),
            only(&["DB_PASSWORD"])
        );
        assert_eq!(file_env(&["--file-env=A, B,A", "x"]), only(&["A", "B"]));
        assert_eq!(file_env(&["--file-env=Yes", "x"]), Some(FileEnv::Every));
        assert_eq!(file_env(&["--file-env=off", "x"]), None);
        assert_eq!(file_env(&["--file-env=ON,X", "x"]), only(&["ON", "X"]));
        // The names go after `=`: a separate word is COMMAND, as for any optional value.
        let a = parse(&os(&["--file-env", "DB_PASSWORD", "x"])).unwrap();
        assert_eq!(
            (a.file_env, a.command),
            (Some(FileEnv::Every), os(&["DB_PASSWORD", "x"]))
        );
        for bad in [
            "--file-env=",
            "--file-env=1A",
            "--file-env=A,,B",
            "--file-env=DB-PASSWORD",
        ] {
            let m = invalid_message(parse(&os(&[bad, "x"])));
            assert!(m.contains("'--file-env[=NAME,...]'"), "{bad}: {m}");
        }
        let usage = parse(&os(&["--file-env", "--file-env=A", "x"]));
        assert!(matches!(usage, Err(Stop::Usage(..))), "{usage:?}");
    }

    #[test]
    fn file_env_variable_reads_the_same_values() {
        let var = |value: &str| parse_env(&["true"], &[("KAI_INIT_FILE_ENV", value.as_bytes())]);
        for every in ["1", "true", "TRUE", "yes", "on"] {
            assert_eq!(
                var(every).unwrap().file_env,
                Some(FileEnv::Every),
                "{every}"
            );
        }
        for off in ["", "0", "false", "no", "off"] {
            assert_eq!(var(off).unwrap().file_env, None, "{off}");
        }
        assert_eq!(
            var("DB_PASSWORD,API_TOKEN").unwrap().file_env,
            Some(FileEnv::Only(vec![
                "DB_PASSWORD".into(),
                "API_TOKEN".into()
            ]))
        );
        let m = invalid_message(var("DB_PASSWORD,api-token"));
        assert!(
            m.contains("KAI_INIT_FILE_ENV") && m.contains("'api-token'"),
            "{m}"
        );
        assert_eq!(var("2").err().map(Stop::report), Some(125));
        // The flag wins over the variable.
        let a = parse_env(&["--file-env=A", "x"], &[("KAI_INIT_FILE_ENV", b"true")]).unwrap();
        assert_eq!(a.file_env, Some(FileEnv::Only(vec!["A".into()])));
        assert!(help(&SUPERVISOR).contains("    --file-env[=NAME,...]  "));
    }

    /// Option-like words, values, and arbitrary bytes.
    fn word() -> impl Strategy<Value = OsString> {
        let long = prop::sample::select(
            OPTIONS
                .iter()
                .map(|o| o.long)
                .chain(["help", "version", "path", "timeout", "header", "bogus"])
                .collect::<Vec<_>>(),
        );
        prop_oneof![
            long.clone().prop_map(|l| OsString::from(format!("--{l}"))),
            (long, proptest::collection::vec(any::<u8>(), 0..8)).prop_map(|(l, v)| {
                OsString::from_vec([format!("--{l}=").into_bytes(), v].concat())
            }),
            prop::sample::select(vec![
                "--",
                "-",
                "-u",
                "-H",
                "-h",
                "-V",
                "-unobody",
                "-x",
                "1s",
                "TERM:QUIT",
                "",
                "true"
            ])
            .prop_map(OsString::from),
            proptest::collection::vec(any::<u8>(), 0..12).prop_map(OsString::from_vec),
            // A dash and then any bytes: options whether UTF-8 or not.
            proptest::collection::vec(any::<u8>(), 1..6)
                .prop_map(|b| OsString::from_vec([&b"-"[..], &b].concat())),
            "-{1,2}[a-zA-Z=-]{0,12}".prop_map(OsString::from),
        ]
    }

    proptest! {
        #[test]
        fn any_arguments_parse_or_stop(args in proptest::collection::vec(word(), 0..8)) {
            // Ok or a Stop, never a panic; the command is what followed the options.
            if let Ok(run) = parse(&args) {
                prop_assert!(args.ends_with(&run.command));
                // COMMAND starts with a dash only after `--`: such a word is an option.
                let before = &args[..args.len() - run.command.len()];
                let first = run.command.first().map_or(&b""[..], |w| w.as_bytes());
                if first.len() > 1 && first[0] == b'-' {
                    prop_assert!(before.iter().any(|a| a == "--"), "{:?}", args);
                }
            }
            if let Ok(check) = parse_check(&args) {
                prop_assert!(check.targets.len() <= args.len());
            }
        }

        #[test]
        fn any_variables_parse_or_stop(
            values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..16), OPTIONS.len()),
        ) {
            let vars: HashMap<String, OsString> = (OPTIONS.iter().zip(values))
                .map(|(o, v)| (env_name(o), OsString::from_vec(v)))
                .collect();
            let r = parse_with(&os(&["true"]), &|k| vars.get(k).cloned());
            // A variable that is not UTF-8 (except the user's name) never counts as unset.
            let unreadable = (vars.iter())
                .any(|(k, v)| k != "KAI_INIT_USER" && v.to_str().is_none());
            if unreadable {
                prop_assert!(matches!(r, Err(Stop::Invalid(..))), "{:?}", r);
            }
        }

        #[test]
        fn any_signal_specs_are_a_result_not_a_panic(text in any::<String>(), shaped in "(SIG)?(TERM|RTMIN|RTMAX|[0-9]{1,3})([-+][0-9]{1,12})?(:(0|QUIT|[0-9]{1,12}))?(,(ALL|all|HUP))?") {
            for t in [&text, &shaped] {
                if let Ok((from, to)) = parse_signal_map(t) {
                    prop_assert!((1..=64).contains(&from) && (0..=64).contains(&to));
                }
                if let Ok(sigs) = parse_signal_group(t) {
                    prop_assert!(sigs.iter().all(|s| (1..=64).contains(s)));
                }
            }
        }

        #[test]
        fn any_file_env_value_is_a_setting_or_refused(text in "[ -~]{0,24}", names in "[A-Za-z_][A-Za-z0-9_]{0,6}(,[A-Za-z_][A-Za-z0-9_]{0,6}){0,3}") {
            for t in [&text, &names] {
                let r = parse_env(&["true"], &[("KAI_INIT_FILE_ENV", t.as_bytes())]);
                match r.map(|a| a.file_env) {
                    Ok(Some(FileEnv::Only(list))) => {
                        prop_assert!(list.iter().all(|n| crate::config::env_names::is_name(n.as_bytes())));
                        prop_assert!(parse_bool(t).is_err());
                    }
                    Ok(other) => prop_assert_eq!(other.is_some(), parse_bool(t).unwrap_or(false)),
                    Err(Stop::Invalid(_, m)) => prop_assert!(m.contains("KAI_INIT_FILE_ENV")),
                    Err(other) => prop_assert!(false, "{:?}", other),
                }
            }
            // A comma-separated list of valid names is always a list (or a boolean spelling).
            let r = parse(&os(&[&format!("--file-env={names}"), "x"])).map(|a| a.file_env);
            prop_assert!(matches!(r, Ok(Some(_)) | Ok(None)), "{:?}", r);
        }

        #[test]
        fn signal_maps_round_trip(from in 1..=64i32, to in 0..=64i32) {
            let text = format!("{}:{}", crate::config::signal_names::name(from), if to == 0 { "0".into() } else { crate::config::signal_names::name(to) });
            prop_assert_eq!(parse_signal_map(&text), Ok((from, to)));
        }
    }
}
