//! Probes of the child: what to check (parsed from --probe) and, in time, how.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// http://host:port/path; 200-399 passes, as with kubelet.
    Http { host: String, port: u16, path: String },
    /// tcp://host:port; a connection passes.
    Tcp { host: String, port: u16 },
    /// exec:COMMAND ARGS; exit 0 passes. Split on whitespace, run without a shell.
    Exec(Vec<String>),
    /// file:PATH; existing passes.
    File(String),
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, String> {
        if let Some(rest) = text.strip_prefix("http://") {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let (host, port) = host_port(authority, 80, text)?;
            Ok(Target::Http { host, port, path: path.to_owned() })
        } else if let Some(rest) = text.strip_prefix("tcp://") {
            let (host, port) = host_port(rest.trim_end_matches('/'), 0, text)?;
            if port == 0 {
                return Err(format!("'{text}' needs a port (tcp://HOST:PORT)"));
            }
            Ok(Target::Tcp { host, port })
        } else if let Some(rest) = text.strip_prefix("exec:") {
            let argv: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
            if argv.is_empty() {
                return Err("exec: needs a command (exec:COMMAND ARGS)".into());
            }
            Ok(Target::Exec(argv))
        } else if let Some(rest) = text.strip_prefix("file:") {
            if rest.is_empty() {
                return Err("file: needs a path (file:PATH)".into());
            }
            Ok(Target::File(rest.to_owned()))
        } else {
            Err(format!(
                "'{text}' is not a probe (use http://HOST:PORT/PATH, tcp://HOST:PORT, exec:COMMAND or file:PATH)"
            ))
        }
    }
}

/// Splits `host:port` (or `[v6]:port`), with `default` when the port is omitted.
fn host_port(authority: &str, default: u16, whole: &str) -> Result<(String, u16), String> {
    let bad = || format!("'{whole}' has an invalid host or port");
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or_else(bad)?;
        let port = rest[end + 1..].strip_prefix(':');
        (&rest[..end], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
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
            Target::Http { host, port, path } => write!(f, "http://{host}:{port}{path}"),
            Target::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Target::Exec(argv) => write!(f, "exec:{}", argv.join(" ")),
            Target::File(path) => write!(f, "file:{path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            Target::parse("http://127.0.0.1:3000/health"),
            Ok(Target::Http { host: "127.0.0.1".into(), port: 3000, path: "/health".into() })
        );
        assert_eq!(
            Target::parse("http://[::1]:8080"),
            Ok(Target::Http { host: "::1".into(), port: 8080, path: "/".into() })
        );
        assert_eq!(
            Target::parse("tcp://localhost:5432"),
            Ok(Target::Tcp { host: "localhost".into(), port: 5432 })
        );
        assert_eq!(Target::parse("exec:true now"), Ok(Target::Exec(vec!["true".into(), "now".into()])));
        assert_eq!(Target::parse("file:/tmp/ready"), Ok(Target::File("/tmp/ready".into())));
    }

    #[test]
    fn rejects_bad_targets() {
        for bad in ["ftp://x", "tcp://host", "http://:80/", "http://h:99999/", "exec:", "file:"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
