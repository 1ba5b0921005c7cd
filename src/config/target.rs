//! Probe, check and wait targets: `http://HOST:PORT/PATH`, `tcp://HOST:PORT`,
//! `grpc://HOST:PORT[/SERVICE]`, `exec:COMMAND ARGS`, `file:PATH`, parsed once at start-up (a bad one exits 125) and
//! shown the same way everywhere (`Display`, `Authority`).

use std::fmt;
use std::net::IpAddr;

/// What a probe, `check` or `--wait-for` looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// http://host:port/path; 200-399 passes, as with kubelet.
    Http {
        host: String,
        port: u16,
        path: String,
    },
    /// tcp://host:port; a connection passes.
    Tcp { host: String, port: u16 },
    /// exec:COMMAND ARGS; exit 0 passes. Split into words as `--pre` steps are
    /// (`words::split`: blanks, quotes, backslashes), run without a shell.
    Exec(Vec<String>),
    /// file:PATH; existing passes.
    File(String),
    /// grpc://host:port[/service]: `grpc.health.v1.Health/Check` over h2c; `SERVING`
    /// passes. An empty service asks about the server as a whole.
    Grpc {
        host: String,
        port: u16,
        service: String,
    },
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, String> {
        if let Some(rest) = text.strip_prefix("http://") {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let (host, port) = host_port(authority, 80, text)?;
            Ok(Target::Http {
                host,
                port,
                path: path.to_owned(),
            })
        } else if let Some(rest) = text.strip_prefix("tcp://") {
            let (host, port) = host_port(rest.trim_end_matches('/'), 0, text)?;
            if port == 0 {
                return Err(format!("'{text}' needs a port (tcp://HOST:PORT)"));
            }
            Ok(Target::Tcp { host, port })
        } else if let Some(rest) = text.strip_prefix("grpc://") {
            let (authority, service) = rest.split_once('/').unwrap_or((rest, ""));
            let (host, port) = host_port(authority, 0, text)?;
            if port == 0 {
                return Err(format!(
                    "'{text}' needs a port (grpc://HOST:PORT[/SERVICE])"
                ));
            }
            // A service name goes into a protobuf string as it is; blanks, controls and a
            // second '/' are no service name anyone registers, and 1 KiB is plenty.
            let odd = |c: char| c.is_whitespace() || c.is_control() || c == '/';
            if service.contains(odd) || service.len() > 1024 {
                return Err(format!("'{text}' has an invalid service name"));
            }
            Ok(Target::Grpc {
                host,
                port,
                service: service.to_owned(),
            })
        } else if let Some(rest) = text.strip_prefix("exec:") {
            match crate::config::words::split(rest) {
                Ok(argv) => Ok(Target::Exec(argv)),
                Err(crate::config::words::WordsError::Empty) => {
                    Err("exec: needs a command (exec:COMMAND ARGS)".into())
                }
                // The caller names the value; this says what is wrong with it.
                Err(e) => Err(format!("exec: {e}")),
            }
        } else if let Some(rest) = text.strip_prefix("file:") {
            if rest.is_empty() {
                return Err("file: needs a path (file:PATH)".into());
            }
            Ok(Target::File(rest.to_owned()))
        } else {
            Err(format!(
                "'{text}' is not a probe (use http://HOST:PORT/PATH, tcp://HOST:PORT, grpc://HOST:PORT[/SERVICE], exec:COMMAND or file:PATH)"
            ))
        }
    }
}

impl Target {
    /// `--probe`'s parser: [`Target::parse`], and for http:// and tcp:// a host that is an
    /// IP address or `localhost`. A probe checks the child in this container, and a name
    /// would need a resolver; getaddrinfo blocks, and kai-init's one thread must not.
    pub fn parse_probe(text: &str) -> Result<Target, String> {
        let target = Target::parse(text)?;
        match &target {
            Target::Http { host, .. } | Target::Tcp { host, .. } | Target::Grpc { host, .. }
                if host != "localhost" && host.parse::<IpAddr>().is_err() =>
            {
                Err(format!(
                    "'{text}': a probe's host must be an IP address or localhost, not '{host}'"
                ))
            }
            _ => Ok(target),
        }
    }
}

impl Target {
    /// `--wait-for`'s parser: an http://, tcp:// or file: target. Unlike a probe's, the
    /// host may be a name (a Compose or Kubernetes service): the wait resolves it on a
    /// helper thread, never on the event loop. `exec:` is refused: nothing runs before
    /// the waits are over.
    pub fn parse_wait(text: &str) -> Result<Target, String> {
        match Target::parse(text) {
            Ok(Target::Exec(_)) | Err(_) => Err(format!(
                "'{text}' is not a wait target (use tcp://HOST:PORT, http://HOST:PORT/PATH, grpc://HOST:PORT[/SERVICE] or file:PATH)"
            )),
            ok => ok,
        }
    }
}

/// Splits `host:port` (or `[v6]:port`), with `default` when the port is omitted.
fn host_port(authority: &str, default: u16, whole: &str) -> Result<(String, u16), String> {
    let bad = || format!("'{whole}' has an invalid host or port");
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        // `[v6]` or `[v6]:port`, and the brackets hold an IPv6 address, nothing else.
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(bad)?),
        };
        (host, port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        // A name or an IPv4 address: an unbracketed `:` (a bare IPv6 address) or any
        // delimiter would make the target mean something other than it shows.
        let delimiter = |c: char| "[]:/@?#%".contains(c) || c.is_whitespace() || c.is_control();
        if host.contains(delimiter) {
            return Err(bad());
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| bad())?,
        None => default,
    };
    Ok((host.to_owned(), port))
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Http { host, port, path } => {
                write!(f, "http://{}{path}", Authority(host, *port))
            }
            Target::Tcp { host, port } => write!(f, "tcp://{}", Authority(host, *port)),
            Target::Exec(argv) => {
                let words: Vec<_> = argv
                    .iter()
                    .map(|w| crate::config::words::quote(w))
                    .collect();
                write!(f, "exec:{}", words.join(" "))
            }
            Target::File(path) => write!(f, "file:{path}"),
            Target::Grpc {
                host,
                port,
                service,
            } => match service.is_empty() {
                true => write!(f, "grpc://{}", Authority(host, *port)),
                false => write!(f, "grpc://{}/{service}", Authority(host, *port)),
            },
        }
    }
}

/// `host:port`, with brackets around an IPv6 address.
pub struct Authority<'a>(pub &'a str, pub u16);

impl fmt::Display for Authority<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.contains(':') {
            true => write!(f, "[{}]:{}", self.0, self.1),
            false => write!(f, "{}:{}", self.0, self.1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Hosts as the grammar allows them: names and IPv4 without `:`, IPv6 (shown in
    /// brackets).
    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9][a-z0-9.-]{0,20}",
            any::<std::net::Ipv4Addr>().prop_map(|ip| ip.to_string()),
            any::<std::net::Ipv6Addr>().prop_map(|ip| ip.to_string()),
        ]
    }

    #[test]
    fn grpc_targets_name_a_server_and_maybe_a_service() {
        let g = |host: &str, port, service: &str| Target::Grpc {
            host: host.into(),
            port,
            service: service.into(),
        };
        assert_eq!(
            Target::parse("grpc://127.0.0.1:50051"),
            Ok(g("127.0.0.1", 50051, ""))
        );
        assert_eq!(
            Target::parse("grpc://[::1]:9/grpc.health.v1.Health"),
            Ok(g("::1", 9, "grpc.health.v1.Health"))
        );
        assert_eq!(
            Target::parse_wait("grpc://db:50051/x"),
            Ok(g("db", 50051, "x"))
        );
        for bad in [
            "grpc://127.0.0.1",
            "grpc://:50051",
            "grpc://h:50051/a b",
            "grpc://h:50051/a/b",
            "grpc://h:99999",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        // A probe dials without a resolver.
        assert!(Target::parse_probe("grpc://db:50051").is_err());
        assert!(Target::parse_probe("grpc://0.0.0.0:50051").is_ok());
        for text in [
            "grpc://127.0.0.1:1",
            "grpc://[::1]:2/svc",
            "grpc://localhost:3/a.B",
        ] {
            assert_eq!(Target::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn wait_targets_may_name_hosts() {
        assert_eq!(
            Target::parse_wait("tcp://db:5432"),
            Ok(Target::Tcp {
                host: "db".into(),
                port: 5432
            })
        );
        assert_eq!(
            Target::parse_wait("http://api.internal/ready"),
            Ok(Target::Http {
                host: "api.internal".into(),
                port: 80,
                path: "/ready".into()
            })
        );
        assert_eq!(
            Target::parse_wait("file:/run/ok"),
            Ok(Target::File("/run/ok".into()))
        );
        assert!(Target::parse_wait("exec:true").is_err());
        assert!(Target::parse_wait("tcp://db").is_err());
        assert!(Target::parse_wait("db:5432").is_err());
        assert!(
            Target::parse_probe("tcp://db:5432").is_err(),
            "a probe still refuses names"
        );
    }

    #[test]
    fn exec_words_split_like_pre_steps() {
        let exec = |t: &str| match Target::parse(t) {
            Ok(Target::Exec(argv)) => argv,
            other => panic!("{t}: {other:?}"),
        };
        assert_eq!(
            exec("exec:sh -c 'pg_isready -q && test -f /tmp/ok'"),
            ["sh", "-c", "pg_isready -q && test -f /tmp/ok"]
        );
        assert_eq!(exec(r#"exec:check "a b" c\ d"#), ["check", "a b", "c d"]);
        // What the old whitespace split gave for text without quotes or backslashes.
        assert_eq!(
            exec("exec:  /bin/check\t--port=3000   x "),
            ["/bin/check", "--port=3000", "x"]
        );
        assert_eq!(
            Target::parse("exec:sh -c 'open").unwrap_err(),
            "exec: a single quote is not closed"
        );
        assert_eq!(
            Target::parse("exec:x\\").unwrap_err(),
            "exec: it ends with a backslash"
        );
        assert!(Target::parse("exec: \t")
            .unwrap_err()
            .contains("needs a command"));
        let t = Target::Exec(vec![
            "sh".into(),
            "-c".into(),
            "echo it's ok".into(),
            "".into(),
        ]);
        assert_eq!(t.to_string(), r#"exec:sh -c "echo it's ok" ''"#);
        assert_eq!(Target::parse(&t.to_string()), Ok(t));
    }

    proptest! {
        #[test]
        fn any_text_is_a_result_not_a_panic(text in any::<String>()) {
            let _ = Target::parse(&text);
            let _ = Target::parse_probe(&text);
        }

        #[test]
        fn exec_targets_display_as_text_that_parses_back(argv in proptest::collection::vec(any::<String>(), 1..5)) {
            let t = Target::Exec(argv);
            prop_assert_eq!(Target::parse(&t.to_string()), Ok(t));
        }

        #[test]
        fn prefixed_text_is_a_result_not_a_panic(
            scheme in prop::sample::select(vec!["http://", "tcp://", "exec:", "file:"]),
            rest in "[\\[\\]:/0-9a-f.%@ ]{0,24}",
        ) {
            if let Ok(t) = Target::parse(&format!("{scheme}{rest}")) {
                // Whatever parses displays as something that parses to the same.
                prop_assert_eq!(Target::parse(&t.to_string()), Ok(t));
            }
        }

        #[test]
        fn wait_targets_are_probe_targets_without_exec(text in any::<String>()) {
            match Target::parse_wait(&text) {
                Ok(t) => {
                    prop_assert!(!matches!(t, Target::Exec(_)));
                    prop_assert_eq!(Target::parse(&text), Ok(t.clone()));
                    prop_assert_eq!(Target::parse_wait(&t.to_string()), Ok(t));
                }
                Err(e) => prop_assert!(e.contains("not a wait target"), "{}", e),
            }
        }

        #[test]
        fn http_displays_and_parses_back(host in host(), port in any::<u16>(), path in "/[!-~]{0,20}") {
            let t = Target::Http { host, port, path };
            prop_assert_eq!(Target::parse(&t.to_string()), Ok(t));
        }

        #[test]
        fn tcp_displays_and_parses_back(host in host(), port in 1..=u16::MAX) {
            let t = Target::Tcp { host, port };
            prop_assert_eq!(Target::parse(&t.to_string()), Ok(t));
        }
    }
}
