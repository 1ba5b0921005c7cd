//! Command-line and environment interface: the option table, a small parser over it, the
//! help text it renders, and the value parsers. No I/O but reading the environment.
//!
//! Every supervisor option also reads `KAI_INIT_<NAME>` so that an image can set it with
//! `ENV`; a flag on the command line wins over the variable, and an empty variable counts
//! as unset (`docker run -e KAI_INIT_USER=` clears an image's setting).
//!
//! Options are parsed by hand from a table per command (which also renders `--help`), not
//! by clap: building clap's command (twenty arguments, their help and environment
//! look-ups) cost about 190 µs per start, measured here, which put kai-init's start-up
//! overhead behind tini's, and clap was a tenth of the binary. `kai-init check` runs in
//! every container at every health interval and gains the same.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use crate::config::{CheckArgs, LogFormat, LogLevel, Notify, RunArgs, Target};
use crate::user::UserSpec;

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
126 COMMAND cannot be executed; 127 COMMAND not found; 2 usage error.";

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
    help: &'static str,
}

const fn opt(long: &'static str, value_name: &'static str, help: &'static str) -> Opt {
    Opt {
        long,
        short: None,
        value_name,
        default: None,
        list: false,
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
            "Abstract Unix socket for the health endpoint (\"off\" disables it)",
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
        "Probe the child: http://HOST:PORT/PATH, tcp://HOST:PORT, exec:COMMAND or file:PATH",
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
            Stop::Usage(spec, msg) => {
                eprintln!("{}: {msg} (see {} --help)", spec.name, spec.name);
                spec.usage_code
            }
            Stop::Invalid(spec, msg) => {
                eprintln!("{}: {msg}", spec.name);
                spec.invalid_code
            }
        }
    }
}

/// Parses the supervisor's arguments (without the program name) and environment.
pub fn parse(args: &[OsString]) -> Result<RunArgs, Stop> {
    let (given, command) = scan(&SUPERVISOR, args, true)?;
    let mut s = Settings {
        spec: &SUPERVISOR,
        given,
    };
    Ok(RunArgs {
        user: s.one("user", UserSpec::parse)?,
        no_new_privs: s.switch("no-new-privs")?,
        stop_timeout: s.value("stop-timeout", crate::duration::parse)?,
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
        probe_initial_delay: s.value("probe-initial-delay", crate::duration::parse)?,
        notify: s.one("notify", parse_notify)?,
        drain_delay: s.value("drain-delay", crate::duration::parse)?,
        command,
    })
}

/// Parses `kai-init check`'s arguments (without `check`).
pub fn parse_check(args: &[OsString]) -> Result<CheckArgs, Stop> {
    let (given, words) = scan(&CHECK, args, false)?;
    let mut s = Settings {
        spec: &CHECK,
        given,
    };
    let targets = words
        .into_iter()
        .map(|w| {
            w.into_string()
                .map_err(|w| Stop::Usage(&CHECK, format!("target {w:?} is not valid UTF-8")))
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

/// Option values by long name, and the other words.
type Scanned = (HashMap<&'static str, Vec<String>>, Vec<OsString>);

/// Splits arguments into option values and the other words. With `trailing`, the first
/// other word starts the child's command line, which is taken whole; otherwise words and
/// options may mix. `--` ends the options either way.
fn scan(spec: &'static Spec, args: &[OsString], trailing: bool) -> Result<Scanned, Stop> {
    let mut given: HashMap<&'static str, Vec<String>> = HashMap::new();
    let mut words = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let Some(text) = arg.to_str().filter(|t| t.starts_with('-') && *t != "-") else {
            words.push(arg.clone());
            if trailing {
                break;
            }
            continue;
        };
        if text == "--" {
            break;
        }
        if text == "-h" || text == "--help" {
            return Err(Stop::Help(spec));
        }
        if text == "-V" || text == "--version" {
            return Err(Stop::Version);
        }
        let (o, inline) = find(spec, text)
            .ok_or_else(|| Stop::Usage(spec, format!("unexpected argument '{text}'")))?;
        let value = if o.value_name.is_empty() {
            if inline.is_some() {
                return Err(Stop::Usage(spec, format!("--{} takes no value", o.long)));
            }
            "true".to_owned()
        } else {
            match inline {
                Some(v) => v.to_owned(),
                None => match rest.next() {
                    Some(v) => v.to_str().map(str::to_owned).ok_or_else(|| {
                        Stop::Invalid(
                            spec,
                            format!("the value for {} is not valid UTF-8", flag(o)),
                        )
                    })?,
                    None => {
                        return Err(Stop::Usage(
                            spec,
                            format!("a value is required for {}", flag(o)),
                        ))
                    }
                },
            }
        };
        let values = given.entry(o.long).or_default();
        if !values.is_empty() && !o.list {
            return Err(Stop::Usage(
                spec,
                format!("{} cannot be given more than once", flag(o)),
            ));
        }
        values.push(value);
    }
    words.extend(rest.cloned());
    Ok((given, words))
}

/// The option a command-line word names, and a value given inline (`--name=value`, `-uVALUE`).
fn find<'a>(spec: &Spec, text: &'a str) -> Option<(&'static Opt, Option<&'a str>)> {
    if let Some(long) = text.strip_prefix("--") {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (long, None),
        };
        return spec
            .options
            .iter()
            .find(|o| o.long == name)
            .map(|o| (o, inline));
    }
    let mut chars = text[1..].chars();
    let short = chars.next()?;
    let o = spec.options.iter().find(|o| o.short == Some(short))?;
    let tail = chars.as_str();
    let inline = tail.strip_prefix('=').unwrap_or(tail);
    Some((o, (!inline.is_empty()).then_some(inline)))
}

/// `--stop-timeout <DURATION>`, as messages name an option.
fn flag(o: &Opt) -> String {
    match o.value_name {
        "" => format!("'--{}'", o.long),
        v => format!("'--{} <{v}>'", o.long),
    }
}

fn env_name(o: &Opt) -> String {
    format!("KAI_INIT_{}", o.long.to_ascii_uppercase().replace('-', "_"))
}

/// What was given on the command line; the environment and defaults are read on demand.
struct Settings {
    spec: &'static Spec,
    given: HashMap<&'static str, Vec<String>>,
}

impl Settings {
    /// The raw values of `long` and where they came from: the flags, else the variable
    /// (split at commas for a list), else the default.
    fn raw(&mut self, long: &str) -> (Vec<String>, String) {
        let o = (self.spec.options.iter())
            .find(|o| o.long == long)
            .expect("an option of the table");
        if let Some(values) = self.given.remove(long) {
            return (values, flag(o));
        }
        let var = env_name(o);
        let set = self.spec.env.then(|| std::env::var(&var).ok()).flatten();
        if let Some(value) = set.filter(|v| !v.is_empty()) {
            let values = if o.list {
                value.split(',').map(str::to_owned).collect()
            } else {
                vec![value]
            };
            return (values, var);
        }
        (o.default.map(str::to_owned).into_iter().collect(), flag(o))
    }

    fn list<T>(
        &mut self,
        long: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Vec<T>, Stop> {
        let (values, source) = self.raw(long);
        values
            .iter()
            .map(|v| {
                parse(v).map_err(|why| {
                    Stop::Invalid(
                        self.spec,
                        format!("invalid value '{v}' for {source}: {why}"),
                    )
                })
            })
            .collect()
    }

    fn one<T>(
        &mut self,
        long: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, Stop> {
        Ok(self.list(long, parse)?.pop())
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
        crate::signal_names::parse(from, false)?,
        crate::signal_names::parse(to, true)?,
    ))
}

/// One `--signal-group` value: signals separated by commas, or `all` for every signal.
fn parse_signal_group(text: &str) -> Result<Vec<i32>, String> {
    if text.trim().eq_ignore_ascii_case("all") {
        return Ok((1..=crate::signal_names::RTMAX).collect());
    }
    text.split(',')
        .map(|sig| crate::signal_names::parse(sig, false))
        .collect()
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match crate::duration::parse(text)? {
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

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
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
        assert_eq!(a.user.unwrap().user, "node");
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
            "nobody"
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
}
