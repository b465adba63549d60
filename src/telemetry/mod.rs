//! Observability: OpenTelemetry traces of reconciles, decisions, writes and pushes.

/// The trace id (32 lowercase hex digits) of the span the caller runs in, if that span is
/// recorded and exported. Metrics use it for exemplars and Events to lead to the trace.
pub fn current_trace_id() -> Option<String> {
    // Filled in by the trace exporter work (issue 8): until then no span is exported.
    None
}
