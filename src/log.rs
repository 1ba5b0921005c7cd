//! kai-init's own log lines: stderr only, one line per event, never mixed into the
//! child's output (the child's stdio is inherited untouched and never passes through here).

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

use crate::config::{LogFormat, LogLevel};

pub fn init(format: LogFormat, level: LogLevel) {
    use tracing::level_filters::LevelFilter;
    let filter = match level {
        LogLevel::Off => LevelFilter::OFF,
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(filter)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Text => builder.event_format(Text).try_init(),
        LogFormat::Json => builder.event_format(Json).try_init(),
    };
}

/// `kai-init: info: child exited code=0`: the prefix tells kai-init's lines from the
/// child's in `docker logs`; the collector adds the time.
struct Text;

impl<S, N> FormatEvent<S, N> for Text
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        // Fields may quote the child (its STATUS=, a probe's output): one event stays one
        // line, and no control character reaches the terminal that shows it.
        let mut fields = String::new();
        ctx.field_format()
            .format_fields(Writer::new(&mut fields), event)?;
        writeln!(w, "kai-init: {level}: {}", crate::text::printable(&fields))
    }
}

/// One JSON object per line: `{"timestamp":"…","level":"INFO","target":"kai_init::…",
/// "fields":{"message":"child exited","code":0}}`, the shape of tracing-subscriber's own
/// JSON format, written by hand: its `json` feature pulls in serde_json and tracing-serde,
/// a tenth of the binary, for these few lines.
struct Json;

impl<S, N> FormatEvent<S, N> for Json
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        w.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut w)?;
        let mut fields = JsonFields(String::new());
        event.record(&mut fields);
        let mut target = String::new();
        crate::json::string(&mut target, meta.target());
        writeln!(
            w,
            "\",\"level\":\"{}\",\"target\":{target},\"fields\":{{{}}}}}",
            meta.level(),
            fields.0
        )
    }
}

/// Collects an event's fields as JSON members: numbers and booleans as such, the rest
/// as strings.
struct JsonFields(String);

impl JsonFields {
    fn key(&mut self, field: &Field) {
        if !self.0.is_empty() {
            self.0.push(',');
        }
        crate::json::string(&mut self.0, field.name());
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
        crate::json::string(&mut self.0, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        crate::json::string(&mut self.0, &format!("{value:?}"));
    }
}
