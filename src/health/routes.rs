//! What each request gets: routing, methods, content negotiation and status codes.
//! Synchronous on purpose: an answer is computed from memory without waiting for
//! anything, so a request can never hold up the event loop.
//!
//! GET and HEAD only (405 otherwise); a request with a body is refused (413) and its
//! connection closed, since nothing here reads bodies; unknown paths 404. Every answer
//! carries `Cache-Control: no-store`: a cached health verdict is a wrong one.

use std::time::Instant;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::format;
use super::readiness::{checks, Endpoint, CHECK_NAMES};
use super::shared::Shared;

pub type Body = Full<Bytes>;

const TEXT: &str = "text/plain; charset=utf-8";
const HEALTH_JSON: &str = "application/health+json";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

enum Route {
    Health {
        ep: Endpoint,
        word: &'static str,
        check: Option<&'static str>,
    },
    Metrics,
}

/// The path label for metrics and the route; `None` for paths kai-init does not serve.
fn route(path: &str) -> Option<(&'static str, Route)> {
    let health = |label, ep, word| {
        Some((
            label,
            Route::Health {
                ep,
                word,
                check: None,
            },
        ))
    };
    match path {
        "/livez" => health("/livez", Endpoint::Live, "livez"),
        "/readyz" => health("/readyz", Endpoint::Ready, "readyz"),
        "/healthz" => health("/healthz", Endpoint::Ready, "healthz"),
        "/startupz" => health("/startupz", Endpoint::Startup, "startupz"),
        "/metrics" => Some(("/metrics", Route::Metrics)),
        _ => {
            let (label, ep, word, rest) = if let Some(rest) = path.strip_prefix("/livez/") {
                ("/livez", Endpoint::Live, "livez", rest)
            } else if let Some(rest) = path.strip_prefix("/readyz/") {
                ("/readyz", Endpoint::Ready, "readyz", rest)
            } else {
                return None;
            };
            let check = CHECK_NAMES.iter().find(|n| **n == rest)?;
            Some((
                label,
                Route::Health {
                    ep,
                    word,
                    check: Some(check),
                },
            ))
        }
    }
}

pub fn handle(req: &Request<Incoming>, shared: &Shared) -> Response<Body> {
    let routed = route(req.uri().path());
    let (label, check_label) = match &routed {
        Some((label, Route::Health { check, .. })) => (*label, check.unwrap_or("")),
        Some((label, Route::Metrics)) => (*label, ""),
        None => ("other", ""),
    };
    let response = answer(req, routed.map(|(_, r)| r), shared);
    shared.count(label, check_label, response.status().as_u16());
    response
}

fn answer(req: &Request<Incoming>, routed: Option<Route>, shared: &Shared) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = respond(StatusCode::METHOD_NOT_ALLOWED, TEXT, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if has_body(req) {
        // Never read: closing the connection is the only way not to.
        let mut r = respond(
            StatusCode::PAYLOAD_TOO_LARGE,
            TEXT,
            "request bodies are not accepted\n",
        );
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    let Some(routed) = routed else {
        return respond(StatusCode::NOT_FOUND, TEXT, "not found\n");
    };
    let (ep, word, check) = match routed {
        Route::Metrics => return respond(StatusCode::OK, PROMETHEUS, shared.metrics()),
        Route::Health { ep, word, check } => (ep, word, check),
    };
    let query = req.uri().query().unwrap_or("");
    let verbose = query_has(query, "verbose", None);
    let json = query_has(query, "format", Some("json"))
        || req
            .headers()
            .get_all(header::ACCEPT)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains(HEALTH_JSON)));

    shared.refresh();
    let now = Instant::now();
    shared.view(|cfg, st, s| {
        let mut all = checks(ep, cfg, st, s, now);
        if let Some(name) = check {
            all.retain(|c| c.name == name);
            if all.is_empty() {
                return respond(StatusCode::NOT_FOUND, TEXT, "no such check here\n");
            }
        }
        let ok = all.iter().all(|c| c.ok);
        let code = if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        if json {
            respond(code, HEALTH_JSON, format::json(ep, &all, cfg, st, s, now))
        } else if check.is_some() {
            respond(code, TEXT, format::single(&all[0], verbose))
        } else {
            respond(code, TEXT, format::text(word, &all, verbose))
        }
    })
}

/// A request body announced by Content-Length (other than 0) or Transfer-Encoding.
fn has_body(req: &Request<Incoming>) -> bool {
    let h = req.headers();
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// Whether `query` has `key` (with `value`, when given): `?verbose`, `?verbose=1`,
/// `?format=json`.
fn query_has(query: &str, key: &str, value: Option<&str>) -> bool {
    query.split('&').any(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        k == key && value.map_or(true, |want| v == want)
    })
}

fn respond(code: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = code;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_known_paths_only() {
        assert!(matches!(
            route("/livez"),
            Some((
                "/livez",
                Route::Health {
                    ep: Endpoint::Live,
                    check: None,
                    ..
                }
            ))
        ));
        assert!(matches!(
            route("/healthz"),
            Some((
                "/healthz",
                Route::Health {
                    ep: Endpoint::Ready,
                    ..
                }
            ))
        ));
        assert!(matches!(
            route("/readyz/probe"),
            Some((
                "/readyz",
                Route::Health {
                    check: Some("probe"),
                    ..
                }
            ))
        ));
        assert!(matches!(
            route("/metrics"),
            Some(("/metrics", Route::Metrics))
        ));
        for bad in [
            "/",
            "/livez/",
            "/livez/nope",
            "/livezz",
            "/startupz/ping",
            "/metrics/x",
        ] {
            assert!(route(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn reads_queries() {
        assert!(query_has("verbose", "verbose", None));
        assert!(query_has("a=1&verbose=true", "verbose", None));
        assert!(query_has("format=json", "format", Some("json")));
        assert!(!query_has("format=text", "format", Some("json")));
        assert!(!query_has("verbosely", "verbose", None));
    }
}
