//! `kai-init check`: the HEALTHCHECK client (issue 3). Docker runs it every interval in
//! every container, so it is plain synchronous std: no async runtime, no logging set-up,
//! one request (`http::get_request`, the probe's too) and only the status line (and the
//! first lines of the body, for the message) read back.
//!
//! With no TARGET it asks the running kai-init: the TCP listener in KAI_INIT_HEALTH_LISTEN
//! if set (an unspecified address such as 0.0.0.0 means loopback), else the abstract socket
//! in KAI_INIT_HEALTH_SOCKET (default @kai-init: this container's own name, see
//! `health::socket`), path --path (default /healthz). The server on the socket is believed
//! only if the kernel says it runs in this container's mount namespace. Given http:// and
//! tcp:// targets it checks those instead; grpc:// targets are asked with the gRPC
//! health protocol (`client::grpc`); all must pass.
//!
//! --timeout bounds the whole check, not each step: name look-up (on a helper thread that
//! is abandoned at the deadline; getaddrinfo cannot be cancelled), connect, write and every
//! read share one deadline.
//!
//! Exit 0 healthy, 1 unhealthy or unreachable, 64 usage error (never 2: Docker reserves
//! it). It prints one line under 500 bytes saying what it saw.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::config::target::{Authority, Target};
use crate::config::CheckArgs;
use crate::health::client::{grpc, http};
use crate::health::socket::{Setting, Stranger};
use crate::util::text::short;

const USAGE: u8 = 64;
const MAX_LINE: usize = 499;

/// Where one request goes.
#[derive(Debug, Clone, PartialEq)]
enum Dest {
    /// A name or an address.
    Tcp { host: String, port: u16 },
    /// A dual-stack listener on `[::]`: ::1, then 127.0.0.1 (see `plan`).
    Loopback { port: u16 },
    /// An abstract socket: this name, or (`None`) this container's own.
    Abstract(Option<String>),
}

#[derive(Debug, Clone, PartialEq)]
struct Probe {
    dest: Dest,
    /// `Some(path)` for an HTTP GET, `None` for a bare TCP connect.
    path: Option<String>,
    /// `Some(service)` for a gRPC health check (`grpc://`; "" for the whole server).
    grpc: Option<String>,
    /// How it is named in the output.
    label: String,
}

pub fn main(argv: &[OsString]) -> u8 {
    let args = match crate::config::cli::parse_check(&argv[1..]) {
        Ok(args) => args,
        Err(stop) => return stop.report(),
    };
    // A variable that is set but unreadable is a usage error, never "unset": unset would
    // quietly ask another server than the one configured.
    for key in ["KAI_INIT_HEALTH_LISTEN", "KAI_INIT_HEALTH_SOCKET"] {
        if std::env::var_os(key).is_some_and(|v| v.to_str().is_none()) {
            println!("kai-init check: {key} is not valid UTF-8");
            return USAGE;
        }
    }
    let plan = match plan(&args, |k| std::env::var(k).ok()) {
        Ok(p) => p,
        Err(msg) => {
            println!("{}", one_line(&format!("kai-init check: {msg}")));
            return USAGE;
        }
    };
    let expect = match parse_statuses(&args.expect_status) {
        Ok(e) => e,
        Err(msg) => {
            println!("{}", one_line(&format!("kai-init check: {msg}")));
            return USAGE;
        }
    };
    // `Instant + Duration` panics on overflow; --timeout is at most 24h
    // (`util::duration::MAX`), which cannot overflow it.
    let deadline = Instant::now() + args.timeout;
    let mut healthy = true;
    let mut parts = Vec::with_capacity(plan.len());
    for probe in &plan {
        let (ok, seen) = match run(probe, &args.header, deadline) {
            Ok(Seen::Connected) => (true, "connected".to_string()),
            Ok(Seen::Grpc(health)) => (health.is_serving(), health.to_string()),
            Err(Failed::Grpc(seen)) => (false, seen),
            Ok(Seen::Http(code, summary)) => {
                let ok = expect.iter().any(|(lo, hi)| (*lo..=*hi).contains(&code));
                (ok, format!("{code} {summary}").trim_end().to_string())
            }
            Err(Failed::TimedOut) => (
                false,
                format!(
                    "timed out after {}",
                    crate::util::duration::format(args.timeout)
                ),
            ),
            Err(Failed::Stranger(s)) => (false, s.to_string()),
            Err(Failed::Io(e)) => (false, format!("unreachable ({})", short(&e))),
            Err(Failed::Invalid(what)) => (false, format!("unreachable ({what})")),
        };
        healthy &= ok;
        parts.push(format!("{} {seen}", probe.label));
    }
    let verdict = if healthy { "healthy" } else { "unhealthy" };
    println!("{}", one_line(&format!("{verdict}: {}", parts.join("; "))));
    u8::from(!healthy)
}

/// What to ask, from the arguments and the environment (`env` is injectable for tests).
fn plan(args: &CheckArgs, env: impl Fn(&str) -> Option<String>) -> Result<Vec<Probe>, String> {
    for h in &args.header {
        let valid_name = h.split_once(':').is_some_and(|(n, _)| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b))
        });
        if !valid_name || h.contains(['\r', '\n']) {
            return Err(format!("header '{h}' is not 'Name: value'"));
        }
    }
    if !args.targets.is_empty() {
        return args.targets.iter().map(|t| direct(t)).collect();
    }
    let path = &args.path;
    if !path.starts_with('/') || path.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "--path '{path}' must be an absolute path such as /livez"
        ));
    }
    if let Some(listen) = env("KAI_INIT_HEALTH_LISTEN").filter(|v| !v.trim().is_empty()) {
        let addr: SocketAddr = listen.trim().parse().map_err(|_| {
            format!("KAI_INIT_HEALTH_LISTEN='{listen}' is not an address such as 0.0.0.0:8081")
        })?;
        // A server bound to the unspecified address answers on loopback. `[::]` is
        // dual-stack, and either family's loopback may be missing: Docker turns IPv6 off in
        // its containers (no ::1), `bindv6only` refuses IPv4 on it (no 127.0.0.1).
        let port = addr.port();
        let dest = match addr.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => Dest::Tcp {
                host: Ipv4Addr::LOCALHOST.to_string(),
                port,
            },
            IpAddr::V6(v6) if v6.is_unspecified() => Dest::Loopback { port },
            ip => Dest::Tcp {
                host: ip.to_string(),
                port,
            },
        };
        let label = format!("http://{}{path}", dest.authority());
        return Ok(vec![Probe {
            dest,
            path: Some(path.clone()),
            grpc: None,
            label,
        }]);
    }
    let socket = env("KAI_INIT_HEALTH_SOCKET").unwrap_or_else(|| "@kai-init".into());
    let setting = Setting::parse(&socket);
    if setting == Setting::Off {
        return Err("the health socket is off (KAI_INIT_HEALTH_SOCKET) and KAI_INIT_HEALTH_LISTEN is not set; give a target".into());
    }
    // The label is the name as configured: the derived one is long and says nothing.
    let label = match setting {
        Setting::Named(name) => format!("@{name}{path}"),
        _ => format!("@{}{path}", crate::health::socket::DEFAULT),
    };
    Ok(vec![Probe {
        dest: Dest::Abstract(match setting {
            Setting::Named(name) => Some(name.to_owned()),
            _ => None,
        }),
        path: Some(path.clone()),
        grpc: None,
        label,
    }])
}

fn direct(text: &str) -> Result<Probe, String> {
    let bad = || {
        format!("'{text}' is not a target (use http://HOST:PORT/PATH, tcp://HOST:PORT or grpc://HOST:PORT[/SERVICE])")
    };
    let target = Target::parse(text).map_err(|_| bad())?;
    let label = target.to_string();
    let (dest, path, grpc) = match target {
        Target::Http { host, port, path } => (Dest::Tcp { host, port }, Some(path), None),
        Target::Tcp { host, port } => (Dest::Tcp { host, port }, None, None),
        Target::Grpc {
            host,
            port,
            service,
        } => (Dest::Tcp { host, port }, None, Some(service)),
        Target::Exec(_) | Target::File(_) => return Err(bad()),
    };
    Ok(Probe {
        dest,
        path,
        grpc,
        label,
    })
}

/// `200-399`, `200,204`, `200-299,304`.
fn parse_statuses(text: &str) -> Result<Vec<(u16, u16)>, String> {
    let bad =
        || format!("--expect-status '{text}' is not a list of codes or ranges such as 200-399");
    text.split(',')
        .map(|part| {
            let part = part.trim();
            let (lo, hi) = part.split_once('-').unwrap_or((part, part));
            let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
            let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
            if !(100..=999).contains(&lo) || !(lo..=999).contains(&hi) {
                return Err(bad());
            }
            Ok((lo, hi))
        })
        .collect()
}

enum Seen {
    Connected,
    /// A gRPC server's serving status.
    Grpc(grpc::Health),
    /// Status code and a short summary of the body.
    Http(u16, String),
}

/// Why one target failed.
#[derive(Debug)]
enum Failed {
    TimedOut,
    Io(io::Error),
    /// Not an HTTP response, or none at all.
    Invalid(&'static str),
    /// The socket's server is not this container's kai-init.
    Stranger(Stranger),
    /// What a gRPC check saw instead of an answer, as the client words it.
    Grpc(String),
}

impl From<io::Error> for Failed {
    fn from(e: io::Error) -> Failed {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Failed::TimedOut,
            _ => Failed::Io(e),
        }
    }
}

impl Dest {
    /// The Host header: `HOST:PORT` (as the label shows it too), or `kai-init` for the
    /// abstract socket.
    fn authority(&self) -> String {
        match self {
            Dest::Tcp { host, port } => Authority(host, *port).to_string(),
            Dest::Loopback { port } => Authority("localhost", *port).to_string(),
            Dest::Abstract(_) => "kai-init".into(),
        }
    }
}

fn run(probe: &Probe, headers: &[String], deadline: Instant) -> Result<Seen, Failed> {
    let tcp = |stream: TcpStream| match &probe.path {
        None => Ok(Seen::Connected),
        Some(path) => {
            let req = http::get_request(path, &probe.dest.authority(), "kai-init-check", headers);
            exchange(Conn::Tcp(stream), &req, deadline)
        }
    };
    match &probe.dest {
        Dest::Tcp { host, port } if probe.grpc.is_some() => {
            let service = probe.grpc.as_deref().unwrap_or_default();
            let (addrs, authority) = match grpc::dial(host, *port) {
                Some(dialled) => dialled,
                None => (resolve(host, *port, deadline)?, probe.dest.authority()),
            };
            match grpc::check_at(&addrs, &authority, service, deadline) {
                Ok(health) => Ok(Seen::Grpc(health)),
                Err(seen) => Err(Failed::Grpc(seen)),
            }
        }
        Dest::Tcp { host, port } => {
            let addrs = match host.parse::<IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, *port)],
                Err(_) => resolve(host, *port, deadline)?,
            };
            tcp(connect_first(&addrs, deadline)?)
        }
        Dest::Loopback { port } => {
            let addrs = [Ipv6Addr::LOCALHOST.into(), Ipv4Addr::LOCALHOST.into()]
                .map(|ip: IpAddr| SocketAddr::new(ip, *port));
            tcp(connect_first(&addrs, deadline)?)
        }
        Dest::Abstract(name) => {
            let name = match name {
                Some(name) => name.clone(),
                None => own_name()?,
            };
            let stream = connect_abstract(&name, deadline)?;
            crate::health::socket::verify(&stream).map_err(Failed::Stranger)?;
            let path = probe.path.as_deref().unwrap_or("/healthz");
            let req = http::get_request(path, &probe.dest.authority(), "kai-init-check", headers);
            exchange(Conn::Unix(stream), &req, deadline)
        }
    }
}

/// This container's own socket name; not knowing it fails the check.
fn own_name() -> Result<String, Failed> {
    match Setting::Own.name() {
        Ok(Some(name)) => Ok(name),
        Ok(None) => Err(Failed::Invalid("no socket name")),
        Err(e) => Err(Failed::Stranger(Stranger::Unknown(e))),
    }
}

/// Time left before `deadline`, or a timeout.
fn left(deadline: Instant) -> io::Result<Duration> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
    }
    Ok(d)
}

/// Connects to the first of `addrs` that answers, all before `deadline`; the error is the
/// last address's.
fn connect_first(addrs: &[SocketAddr], deadline: Instant) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect_timeout(addr, left(deadline)?) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// getaddrinfo on a helper thread, waited for until `deadline`, and left behind if that
/// passes first (it holds nothing but its own stack, and the process exits right after).
/// One value crosses, so a slot and park/unpark do what a channel would.
fn resolve(host: &str, port: u16, deadline: Instant) -> io::Result<Vec<SocketAddr>> {
    use std::sync::{Arc, Mutex};
    type Slot = Mutex<Option<io::Result<Vec<SocketAddr>>>>;
    let slot: Arc<Slot> = Arc::default();
    let (theirs, name, waiter) = (slot.clone(), host.to_owned(), std::thread::current());
    std::thread::Builder::new()
        .name("resolve".into())
        .spawn(move || {
            let found = (name.as_str(), port).to_socket_addrs().map(Vec::from_iter);
            *crate::util::lock::lock(&theirs) = Some(found);
            waiter.unpark();
        })?;
    loop {
        if let Some(found) = crate::util::lock::lock(&slot).take() {
            return found;
        }
        // Wakes early on unpark (or spuriously): the slot says which.
        std::thread::park_timeout(left(deadline)?);
    }
}

/// connect(2) on an abstract Unix socket with a deadline: a stream socket's connect
/// blocks while the listener's backlog is full (a hung kai-init), for at most SO_SNDTIMEO.
fn connect_abstract(name: &str, deadline: Instant) -> io::Result<UnixStream> {
    use nix::sys::socket::{
        connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, UnixAddr,
    };
    use nix::sys::time::{TimeVal, TimeValLike};
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let ms = i64::try_from(left(deadline)?.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    setsockopt(&fd, sockopt::SendTimeout, &TimeVal::milliseconds(ms))?;
    connect(fd.as_raw_fd(), &UnixAddr::new_abstract(name.as_bytes())?).map_err(|e| match e {
        nix::errno::Errno::EAGAIN => io::Error::new(io::ErrorKind::TimedOut, "timed out"),
        e => io::Error::from(e),
    })?;
    Ok(UnixStream::from(fd))
}

/// A connected stream of either kind.
enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    /// Bounds the next read or write by the time left before `deadline`, so that a server
    /// that sends a byte now and then cannot stretch the check past it.
    fn bound(&self, deadline: Instant) -> io::Result<()> {
        let d = Some(left(deadline)?);
        match self {
            Conn::Tcp(s) => s.set_read_timeout(d).and(s.set_write_timeout(d)),
            Conn::Unix(s) => s.set_read_timeout(d).and(s.set_write_timeout(d)),
        }
    }

    fn io(&mut self) -> &mut dyn ReadWrite {
        match self {
            Conn::Tcp(s) => s,
            Conn::Unix(s) => s,
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Writes `request` and reads at most 4 KiB of the answer, all before `deadline`.
fn exchange(mut conn: Conn, request: &[u8], deadline: Instant) -> Result<Seen, Failed> {
    let mut sent = 0;
    while sent < request.len() {
        conn.bound(deadline)?;
        match conn.io().write(&request[sent..]) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut buf = [0u8; 4096];
    let mut len = 0;
    while len < buf.len() {
        let read = conn
            .bound(deadline)
            .and_then(|()| conn.io().read(&mut buf[len..]));
        match read {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => match Failed::from(e) {
                // What arrived before the deadline still counts if the status line is in
                // it: the server is judged by its code, as kubelet does.
                Failed::TimedOut if matches!(http::status(&buf[..len]), Ok(Some(_))) => break,
                failed => return Err(failed),
            },
        }
    }
    let data = &buf[..len];
    match http::status(data) {
        Ok(Some(code)) => Ok(Seen::Http(code, summary(data))),
        _ if len == 0 => Err(Failed::Invalid("connection closed without a response")),
        _ => Err(Failed::Invalid("not an HTTP response")),
    }
}

/// The most telling line of the body: the first failed check (`[-]...`) if any, else the
/// first line.
fn summary(response: &[u8]) -> String {
    let body = match http::parse_head(response) {
        http::Head::Complete { len, .. } => String::from_utf8_lossy(&response[len..]),
        _ => return String::new(),
    };
    let line = body
        .lines()
        .find(|l| l.starts_with("[-]"))
        .or_else(|| body.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("");
    line.chars().take(200).collect()
}

/// Control characters become spaces and the line is cut under 500 bytes, on a character
/// boundary.
fn one_line(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > MAX_LINE {
        let mut cut = MAX_LINE - 3;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(targets: &[&str]) -> CheckArgs {
        let argv: Vec<OsString> = targets.iter().map(OsString::from).collect();
        crate::config::cli::parse_check(&argv).expect("parses")
    }

    #[test]
    fn defaults_to_the_abstract_socket() {
        let p = plan(&args(&[]), |_| None).unwrap();
        assert_eq!(p[0].dest, Dest::Abstract(None));
        assert_eq!(p[0].label, "@kai-init/healthz");
        assert_eq!(p[0].path.as_deref(), Some("/healthz"));
        let p = plan(&args(&["--path", "/livez"]), |k| {
            (k == "KAI_INIT_HEALTH_SOCKET").then(|| "@other".into())
        })
        .unwrap();
        assert_eq!(p[0].label, "@other/livez");
        assert_eq!(p[0].dest, Dest::Abstract(Some("other".into())));
    }

    #[test]
    fn prefers_the_tcp_listener_and_maps_unspecified_to_loopback() {
        let env =
            |v: &'static str| move |k: &str| (k == "KAI_INIT_HEALTH_LISTEN").then(|| v.to_string());
        let p = plan(&args(&[]), env("0.0.0.0:8081")).unwrap();
        assert_eq!(
            p[0].dest,
            Dest::Tcp {
                host: "127.0.0.1".into(),
                port: 8081
            }
        );
        let p = plan(&args(&[]), env("[::]:9")).unwrap();
        assert_eq!(p[0].dest, Dest::Loopback { port: 9 });
        assert_eq!(p[0].label, "http://localhost:9/healthz");
        let p = plan(&args(&[]), env("[::1]:9")).unwrap();
        assert_eq!(p[0].label, "http://[::1]:9/healthz");
        assert!(plan(&args(&[]), env("nonsense")).is_err());
    }

    #[test]
    fn direct_targets_replace_kai_init() {
        let p = plan(
            &args(&["http://127.0.0.1:3000/x", "tcp://localhost:5432"]),
            |_| None,
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].path, None);
        assert!(plan(&args(&["exec:true"]), |_| None).is_err());
        assert!(plan(&args(&["-H", "bad header", "tcp://h:1"]), |_| None).is_err());
        assert!(plan(&args(&["-H", "X-A: b", "tcp://h:1"]), |_| None).is_ok());
        assert!(plan(&args(&["--path", "livez"]), |_| None).is_err());
        assert!(plan(&args(&[]), |_| Some("off".into())).is_err());
    }

    /// A header's name must be a non-empty HTTP token (RFC 9110): with a space in it, a
    /// byte outside ASCII, or no name at all, it is no header a server can parse, so
    /// check refuses it (64) instead of sending it.
    #[test]
    fn header_names_must_be_non_empty_tokens() {
        for bad in ["X A: b", ": b", "X\u{e9}: b", "X-A: b\r\nX-B: c"] {
            assert!(
                plan(&args(&["-H", bad, "tcp://h:1"]), |_| None).is_err(),
                "{bad:?}"
            );
        }
        for good in ["X-A: b", "x_a!#$%&'*+.^`|~:", "A:b c"] {
            assert!(
                plan(&args(&["-H", good, "tcp://h:1"]), |_| None).is_ok(),
                "{good:?}"
            );
        }
    }

    /// --path goes into the request line as is: whitespace or a control character in it
    /// would split or end that line, so an absolute path with either is refused too.
    #[test]
    fn a_path_with_whitespace_or_control_characters_is_refused() {
        for bad in ["/a b", "/a\tb", "/a\u{7f}", "/\u{85}"] {
            assert!(plan(&args(&["--path", bad]), |_| None).is_err(), "{bad:?}");
        }
        assert!(plan(&args(&["--path", "/a%20b"]), |_| None).is_ok());
    }

    /// Only the unspecified address stands for loopback; a listener on one address of
    /// the machine is asked there.
    #[test]
    fn a_listener_on_a_specific_ipv4_address_is_asked_at_that_address() {
        let env = |k: &str| (k == "KAI_INIT_HEALTH_LISTEN").then(|| "10.1.2.3:8081".to_string());
        let p = plan(&args(&[]), env).unwrap();
        assert_eq!(
            p[0].dest,
            Dest::Tcp {
                host: "10.1.2.3".into(),
                port: 8081
            }
        );
        assert_eq!(p[0].label, "http://10.1.2.3:8081/healthz");
    }

    #[test]
    fn parses_status_lists() {
        assert_eq!(parse_statuses("200-399"), Ok(vec![(200, 399)]));
        assert_eq!(parse_statuses("200,204"), Ok(vec![(200, 200), (204, 204)]));
        for bad in ["", "2xx", "399-200", "200-", "1000"] {
            assert!(parse_statuses(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn summarises_bodies_and_bounds_lines() {
        let r = b"HTTP/1.1 503 x\r\nA: b\r\n\r\n[+]ping ok\n[-]probe failed: HTTP 500\nreadyz check failed\n";
        assert_eq!(summary(r), "[-]probe failed: HTTP 500");
        assert_eq!(summary(b"HTTP/1.1 200 OK\r\n\r\nok"), "ok");
        let long = "é".repeat(400);
        let line = one_line(&format!("a\nb{long}"));
        assert!(line.len() <= MAX_LINE && line.starts_with("a b"));
    }

    /// A line of exactly MAX_LINE bytes is left whole; one byte more is cut to MAX_LINE
    /// bytes, the last three of them "...": as much of the line as fits is kept.
    #[test]
    fn lines_are_cut_only_past_the_limit_and_then_to_it() {
        let fits = "x".repeat(MAX_LINE);
        assert_eq!(one_line(&fits), fits);
        let over = one_line(&"y".repeat(MAX_LINE + 1));
        assert_eq!(over.len(), MAX_LINE);
        assert_eq!(over, format!("{}...", "y".repeat(MAX_LINE - 3)));
    }
}
