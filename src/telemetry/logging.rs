//! Log lines, as text or JSON, filtered by `RUST_LOG`. A line emitted inside a traced span
//! carries the span's `trace_id`: at the end of a text line, as the first key of a JSON
//! line, so a log search leads to the trace and back.

use std::fmt;

use opentelemetry::trace::TraceId;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{DefaultFields, Format, Full, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written to standard error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The trace id of a traced span, kept in the span's extensions by [`remember`] so log
/// lines can name it without asking OpenTelemetry (which cannot be asked from inside the
/// subscriber).
#[derive(Clone, Copy, Debug)]
pub(super) struct TracedSpan(pub TraceId);

/// Keeps `trace_id` on `span` for its log lines (and those of its children).
pub(super) fn remember(span: &tracing::Span, trace_id: TraceId) {
    span.with_subscriber(|(id, dispatch)| {
        if let Some(registry) = dispatch.downcast_ref::<tracing_subscriber::Registry>()
            && let Some(data) = registry.span(id)
        {
            data.extensions_mut().replace(TracedSpan(trace_id));
        }
    });
}

/// The log layer: `filter` in `EnvFilter` syntax (an invalid one falls back to `info`).
pub(super) fn layer<S>(format: LogFormat, filter: &str) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    // Colours only for a terminal: redirected logs stay greppable.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    layer_to(format, filter, ansi, std::io::stderr)
}

/// [`layer`] writing to `writer`.
pub(super) fn layer_to<S, W>(format: LogFormat, filter: &str, ansi: bool, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let layer = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(ansi);
    match format {
        LogFormat::Text => layer
            .event_format(WithTraceId::<Format<Full>>::text(
                tracing_subscriber::fmt::format().with_ansi(ansi),
            ))
            .fmt_fields(DefaultFields::new())
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => layer
            .event_format(WithTraceId::<Format<Json>>::json(
                tracing_subscriber::fmt::format().json(),
            ))
            .fmt_fields(JsonFields::new())
            .with_filter(filter)
            .boxed(),
    }
}

/// A line format that adds the trace id to `inner`'s lines.
pub(super) struct WithTraceId<F> {
    inner: F,
    json: bool,
}

impl<F> WithTraceId<F> {
    pub(super) fn text(inner: F) -> Self {
        Self { inner, json: false }
    }

    pub(super) fn json(inner: F) -> Self {
        Self { inner, json: true }
    }
}

/// The trace id of the innermost traced span around `event`.
fn trace_id_of<S, N>(ctx: &FmtContext<'_, S, N>) -> Option<TraceId>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    N: for<'writer> FormatFields<'writer> + 'static,
{
    ctx.event_scope()?
        .find_map(|span| span.extensions().get::<TracedSpan>().map(|traced| traced.0))
}

impl<S, N, F> FormatEvent<S, N> for WithTraceId<F>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    N: for<'writer> FormatFields<'writer> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let trace_id = if super::enabled() { trace_id_of(ctx) } else { None };
        let Some(trace_id) = trace_id else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&with_trace_id(&line, &trace_id.to_string(), self.json))
    }
}

/// `line` (one formatted log line, newline included) with the trace id added.
fn with_trace_id(line: &str, trace_id: &str, json: bool) -> String {
    let body = line.strip_suffix('\n').unwrap_or(line);
    if json && let Some(rest) = body.strip_prefix('{') {
        // Every line the JSON format writes has keys (at least the level), hence the comma.
        return format!("{{\"trace_id\":\"{trace_id}\",{rest}\n");
    }
    format!("{body} trace_id={trace_id}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn a_text_line_ends_with_the_trace_id() {
        assert_eq!(
            with_trace_id(
                "2026-01-01T00:00:00Z  INFO reconcile{gateway_class=a}: applied\n",
                ID,
                false
            ),
            format!("2026-01-01T00:00:00Z  INFO reconcile{{gateway_class=a}}: applied trace_id={ID}\n")
        );
    }

    #[test]
    fn a_json_line_gets_the_trace_id_as_its_first_key_and_stays_json() {
        let line = with_trace_id(
            "{\"timestamp\":\"t\",\"level\":\"INFO\",\"fields\":{\"message\":\"a}\"}}\n",
            ID,
            true,
        );
        assert!(line.ends_with('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).expect("still JSON");
        assert_eq!(value["trace_id"], ID);
        assert_eq!(value["fields"]["message"], "a}");
    }
}
