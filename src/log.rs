//! kai-init's own log lines: stderr only, one line per event, never mixed into the
//! child's output (the child's stdio is inherited untouched and never passes through here).

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

use crate::cli::{LogFormat, LogLevel};

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
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
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
        write!(w, "kai-init: {level}: ")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}
