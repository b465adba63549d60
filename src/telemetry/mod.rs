//! Observability: logs, and OpenTelemetry traces of reconciles, decisions, writes and pushes.
//!
//! [`init`] installs one `tracing` subscriber: the log layer (text or JSON, filtered by
//! `RUST_LOG`) and, only when an OTLP endpoint is configured by the standard `OTEL_*`
//! variables ([`settings`]), an OpenTelemetry layer that exports kongress's own spans in
//! batches ([`export`]). Without an endpoint there is no exporter and no OpenTelemetry
//! layer: the trace spans are `DEBUG` spans that the log filter leaves disabled, and every
//! helper here returns at its first check of [`enabled`].
//!
//! What is traced, and with which attributes, is listed in [`spans`]. A watch event that
//! wakes a class becomes a short span the class's next reconcile links to ([`links`]); a
//! push carries the context of the reconcile that decided its config ([`TraceOrigin`]).
//! Log lines inside a traced span carry its `trace_id`, and so do the Events a reconcile
//! records ([`event_note`]).

mod export;
mod links;
mod logging;
pub mod settings;
pub mod spans;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{SpanContext, TraceContextExt, TraceId};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use links::{forget_links, link_next_reconcile, linked, woke};
pub use logging::LogFormat;
pub use settings::{Protocol, SettingsError, TraceSettings};
pub use spans::TraceOrigin;

/// Set once the OpenTelemetry layer is installed; never unset.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported. Everything trace-related is skipped when not.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid OpenTelemetry setting {0}")]
    Settings(#[from] SettingsError),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("a tracing subscriber is already installed: {0}")]
    Subscriber(String),
}

/// The installed telemetry; [`Telemetry::shutdown`] flushes the spans still queued.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    settings: Option<TraceSettings>,
}

impl Telemetry {
    /// The export settings in use, `None` when traces are off.
    pub fn traces(&self) -> Option<&TraceSettings> {
        self.settings.as_ref()
    }

    /// Exports what is still queued (bounded by the batch processor's export timeout).
    /// Call it while the async runtime still runs: the export happens there.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "could not flush the last spans");
        }
    }
}

/// Installs logging and, when the environment configures an OTLP endpoint, trace export.
/// `runtime` runs the exporter's requests. Reads the process environment.
pub fn init(format: LogFormat, filter: &str, runtime: &tokio::runtime::Handle) -> Result<Telemetry, TelemetryError> {
    let settings = settings::from_env(&|name| std::env::var(name).ok())?;
    let provider = settings
        .as_ref()
        .map(|settings| export::provider(settings, runtime))
        .transpose()
        .map_err(TelemetryError::Exporter)?;
    let traces = provider.as_ref().map(export::layer);
    tracing_subscriber::registry()
        .with(logging::layer(format, filter))
        .with(traces)
        .try_init()
        .map_err(|error| TelemetryError::Subscriber(error.to_string()))?;
    if provider.is_some() {
        ENABLED.store(true, Ordering::Relaxed);
    }
    Ok(Telemetry { provider, settings })
}

/// The trace id (32 lowercase hex digits) of the span the caller runs in, if that span is
/// recorded and exported. Metrics use it for exemplars and Events to lead to the trace.
pub fn current_trace_id() -> Option<String> {
    sampled_context(&Span::current()).map(|context| context.trace_id().to_string())
}

/// The OpenTelemetry context of `span`, when it is exported and sampled.
fn sampled_context(span: &Span) -> Option<SpanContext> {
    if !enabled() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    (span_context.is_valid() && span_context.is_sampled()).then_some(span_context)
}

/// Longest note the API server accepts on an `events.k8s.io/v1` Event, in bytes.
pub const EVENT_NOTE_LIMIT: usize = 1024;

/// An Event's note naming the trace of the reconcile that recorded it: `"<note> (trace
/// <id>)"`, the note shortened (with `…`) when both would not fit the API server's limit.
/// The note alone when there is no trace.
pub fn event_note(note: &str, trace_id: Option<&str>) -> String {
    let Some(trace_id) = trace_id else {
        return note.to_string();
    };
    let suffix = format!(" (trace {trace_id})");
    if note.len() + suffix.len() <= EVENT_NOTE_LIMIT {
        return format!("{note}{suffix}");
    }
    const ELLIPSIS: &str = "…";
    let mut end = EVENT_NOTE_LIMIT.saturating_sub(suffix.len() + ELLIPSIS.len());
    while end > 0 && !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}{suffix}", &note[..end])
}

/// The trace id an Event note names, if it names one (the inverse of [`event_note`]).
pub fn trace_id_in_note(note: &str) -> Option<&str> {
    let id = note.strip_suffix(')')?.rsplit_once(" (trace ")?.1;
    TraceId::from_hex(id).is_ok().then_some(id).filter(|id| id.len() == 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn an_event_note_names_the_trace_at_its_end() {
        assert_eq!(
            event_note("Programmed=True: ready", Some(ID)),
            format!("Programmed=True: ready (trace {ID})")
        );
        assert_eq!(event_note("Programmed=True: ready", None), "Programmed=True: ready");
    }

    #[test]
    fn a_long_note_is_shortened_so_the_trace_id_still_fits_the_api_servers_limit() {
        // Multi-byte characters: the cut must fall on a character boundary.
        let note = "é".repeat(EVENT_NOTE_LIMIT);
        let with_trace = event_note(&note, Some(ID));
        assert!(with_trace.len() <= EVENT_NOTE_LIMIT, "{}", with_trace.len());
        assert!(with_trace.ends_with(&format!("… (trace {ID})")));
        assert_eq!(trace_id_in_note(&with_trace), Some(ID));
        let exact = "x".repeat(EVENT_NOTE_LIMIT - format!(" (trace {ID})").len());
        assert_eq!(event_note(&exact, Some(ID)).len(), EVENT_NOTE_LIMIT);
        assert!(!event_note(&exact, Some(ID)).contains('…'));
    }

    #[test]
    fn the_trace_id_is_read_back_from_a_note_and_nothing_else_is() {
        assert_eq!(trace_id_in_note(&event_note("a (b)", Some(ID))), Some(ID));
        assert_eq!(trace_id_in_note("Accepted=True: fine"), None);
        assert_eq!(trace_id_in_note("x (trace 1234)"), None);
        assert_eq!(trace_id_in_note("x (trace zzf92f3577b34da6a3ce929d0e0e4736)"), None);
    }

    #[test]
    fn without_an_exporter_there_is_no_trace_id() {
        // No OpenTelemetry layer in this test's subscriber (other tests may install one).
        assert_eq!(current_trace_id(), None);
    }
}
