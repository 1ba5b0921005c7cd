//! kai-init's own log lines: stderr only, one line per event, never mixed into the
//! child's output (the child's stdio is inherited untouched and never passes through here).
//!
//! A `tracing` subscriber of its own rather than tracing-subscriber's `fmt`: kai-init has
//! no spans and writes a handful of lines, and `fmt`'s registry and formatting machinery
//! cost about 70 µs of CPU on the first line of every start (the `started child` line),
//! a quarter of the start-up overhead over tini's.

use std::fmt::{self, Write as _};
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// `--log-format`: kai-init's own lines as text or as JSON objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `--log-level`: the least severe line kai-init writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

pub fn init(format: LogFormat, level: LogLevel) {
    let max = match level {
        LogLevel::Off => LevelFilter::OFF,
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    };
    let _ = tracing::subscriber::set_global_default(Lines { format, max });
}

/// Writes each enabled event as one line, in one write(2), to stderr.
struct Lines {
    format: LogFormat,
    max: LevelFilter,
}

impl Subscriber for Lines {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        meta.level() <= &self.max
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }

    fn event(&self, event: &Event<'_>) {
        let line = match self.format {
            LogFormat::Text => text(event),
            LogFormat::Json => json(event),
        };
        // Nowhere to report a failed write to stderr; the child is not affected by it.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    // kai-init opens no spans; these keep the trait's contract all the same.
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// `kai-init: info: child exited code=0`: the prefix tells kai-init's lines from the
/// child's in `docker logs`; the collector adds the time. Fields as tracing-subscriber
/// writes them: the message first, then `name=value` with each value's Debug form (so a
/// `%` field is bare and a `?` or string field quoted).
fn text(event: &Event<'_>) -> String {
    let mut fields = TextFields(String::new());
    event.record(&mut fields);
    let level = event.metadata().level().as_str().to_ascii_lowercase();
    // Fields may quote the child (its STATUS=, a probe's output): one event stays one
    // line, and no control character reaches the terminal that shows it.
    format!(
        "kai-init: {level}: {}\n",
        crate::util::text::printable(&fields.0)
    )
}

struct TextFields(String);

impl Visit for TextFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.record_debug(field, &format_args!("{value}")),
            _ => self.record_debug(field, &value),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        let _ = match field.name() {
            "message" => write!(self.0, "{value:?}"),
            name => write!(self.0, "{}={value:?}", name.trim_start_matches("r#")),
        };
    }
}

/// One JSON object per line: `{"timestamp":"…","level":"INFO","target":"kai_init::…",
/// "fields":{"message":"child exited","code":0}}`, the shape of tracing-subscriber's own
/// JSON format.
fn json(event: &Event<'_>) -> String {
    let meta = event.metadata();
    let mut fields = JsonFields(String::new());
    event.record(&mut fields);
    let mut line = String::from("{\"timestamp\":\"");
    line.push_str(&crate::util::clock::rfc3339(
        std::time::SystemTime::now(),
        crate::util::clock::Precision::Micros,
    ));
    line.push_str("\",\"level\":\"");
    line.push_str(meta.level().as_str());
    line.push_str("\",\"target\":");
    crate::util::json::string(&mut line, meta.target());
    line.push_str(",\"fields\":{");
    line.push_str(&fields.0);
    line.push_str("}}\n");
    line
}

/// Collects an event's fields as JSON members: numbers and booleans as such, the rest
/// as strings.
struct JsonFields(String);

impl JsonFields {
    fn key(&mut self, field: &Field) {
        if !self.0.is_empty() {
            self.0.push(',');
        }
        crate::util::json::string(&mut self.0, field.name());
        self.0.push(':');
    }
}

impl Visit for JsonFields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        crate::util::json::string(&mut self.0, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        crate::util::json::string(&mut self.0, &format!("{value:?}"));
    }
}
