//! The spans kongress records, and their attributes (names and values are the contract
//! the README documents and the traces e2e test checks).
//!
//! | span | where | attributes |
//! |---|---|---|
//! | `reconcile` | one reconcile of a class; a root span, linked to what woke it | `gateway_class`, `generation`, `gateways`, `routes`, `outcome` (`done`, `await_change`, `refused`, `error`), `error`, `links`, `links_dropped` |
//! | `plan`, `translate`, `render`, `status` | the decide steps, children of `reconcile` | counts: `gateways`, `listeners`; `routes`, `kong_services`, `kong_routes`; `deployment`; `gateway_writes`, `route_writes` |
//! | `write` | every request that changes the cluster, child of `reconcile` | `verb` (`apply`, `delete`, `patch status`, `set finalizers`, `create`/`patch` for Events), `kind`, `object` (`namespace/name`), `generation`, `gateway` or `route` (`namespace/name`, for Gateway and route objects), `route_kind`, `reason` (Events), `outcome` (`ok`, `not_found`, `error`), `error` |
//! | `push` | one `POST /config` to one Kong pod; child of the reconcile that decided the config (after [`CHILD_PUSHES`] pushes of one config, a root linked to it) | `gateway_class`, `pod`, `address`, `config_hash`, `bytes`, `excluded`, `outcome` (`accepted` (also when the pod already ran it), `rejected`, `failed`), `kong_error`, `error` |
//! | `watch event` | an object change that woke classes; the woken reconciles link to it | `kind`, `object`, `resource_version`, `gateway_classes` |
//!
//! A reconcile woken by a push result links to the `push` spans whose results changed the
//! class's push state. Failed spans carry `otel.status_code=ERROR`.

use std::fmt::Display;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::ObjectMeta;
use opentelemetry::trace::{SpanContext, TraceContextExt};
use tracing::{Span, field};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::links::PENDING;

/// Pushes of one decided config recorded as children of its reconcile; later ones (retries
/// of a failing pod) are roots linked to it, so a trace stays readable.
pub const CHILD_PUSHES: usize = 16;
use super::{enabled, logging, sampled_context};

/// Starts an exported span now, so its trace id is known, and keeps that id for the log
/// lines inside it.
fn start(span: &Span) {
    if let Some(context) = sampled_context(span) {
        logging::remember(span, context.trace_id());
    }
}

/// The span of one reconcile of `class` (at the class's `generation`). It is a trace of
/// its own, linked to the watch events and push results that woke the class since its
/// last reconcile.
pub fn reconcile(class: &str, generation: Option<i64>) -> Span {
    let span = tracing::info_span!(
        "reconcile",
        gateway_class = class,
        generation = field::Empty,
        gateways = field::Empty,
        routes = field::Empty,
        outcome = field::Empty,
        error = field::Empty,
        links = field::Empty,
        links_dropped = field::Empty,
        otel.status_code = field::Empty,
    );
    if let Some(generation) = generation {
        span.record("generation", generation);
    }
    if enabled() {
        // A root whatever runs around it: the controller's own span is not exported.
        let _ = span.set_parent(opentelemetry::Context::new());
        let taken = PENDING.take(class);
        span.record("links", taken.links.len());
        if taken.dropped > 0 {
            span.record("links_dropped", taken.dropped);
        }
        for link in taken.links {
            span.add_link(link);
        }
        start(&span);
    }
    span
}

/// Records how a reconcile (or a push) ended.
pub fn record_outcome(span: &Span, outcome: &str) {
    span.record("outcome", outcome);
}

/// Records a failure: the span's `error`, and an error status for the backend.
pub fn record_error(span: &Span, error: &dyn Display) {
    span.record("error", field::display(error));
    span.record("otel.status_code", "ERROR");
}

/// The span of one write to the API server: `verb` of the object `kind` described by `meta`.
pub fn write(verb: &'static str, kind: &str, meta: &ObjectMeta) -> Span {
    let span = tracing::debug_span!(
        "write",
        verb,
        kind,
        object = field::Empty,
        generation = field::Empty,
        gateway = field::Empty,
        route = field::Empty,
        route_kind = field::Empty,
        reason = field::Empty,
        outcome = field::Empty,
        error = field::Empty,
        otel.status_code = field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let object = object_name(meta.namespace.as_deref(), meta.name.as_deref().unwrap_or_default());
    span.record("object", object.as_str());
    if let Some(generation) = meta.generation {
        span.record("generation", generation);
    }
    record_role(&span, kind, &object);
    span
}

/// `namespace/name`, or `name` for a cluster-scoped object.
fn object_name(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.to_string(),
    }
}

/// Names a Gateway or route by the attribute a person filters on.
fn record_role(span: &Span, kind: &str, object: &str) {
    if kind == "Gateway" {
        span.record("gateway", object);
    } else if kind.ends_with("Route") {
        span.record("route", object);
        span.record("route_kind", kind);
    }
}

/// The span of writing an Event (`meta` names the Event) about `regarding`, which is
/// named as `gateway` or `route` like the object of a write.
pub fn event_write(verb: &'static str, meta: &ObjectMeta, regarding: &ObjectReference, reason: &str) -> Span {
    let span = write(verb, "Event", meta);
    if !span.is_disabled() {
        span.record("reason", reason);
        let name = regarding.name.as_deref().unwrap_or_default();
        record_role(
            &span,
            regarding.kind.as_deref().unwrap_or_default(),
            &object_name(regarding.namespace.as_deref(), name),
        );
    }
    span
}

/// Records how a write ended (`not_found` when the object was gone).
pub fn record_write<T>(span: &Span, result: &Result<T, kube::Error>) {
    match result {
        Ok(_) => record_outcome(span, "ok"),
        Err(kube::Error::Api(status)) if status.code == 404 => record_outcome(span, "not_found"),
        Err(error) => {
            record_outcome(span, "error");
            record_error(span, error);
        }
    }
}

/// The span a decision was taken in, carried to the work it causes elsewhere: the push of
/// a decided config runs after its reconcile, in the push loop, and is recorded as the
/// reconcile's child. Empty without an exporter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceOrigin {
    context: Option<SpanContext>,
    /// Link to the origin instead of being its child (see [`TraceOrigin::linked`]).
    link_only: bool,
}

impl TraceOrigin {
    /// The span the caller runs in (sampled or not: its children follow its decision).
    pub fn current() -> Self {
        if !enabled() {
            return Self::default();
        }
        let context = Span::current().context();
        let span_context = context.span().span_context().clone();
        Self {
            context: span_context.is_valid().then_some(span_context),
            link_only: false,
        }
    }

    /// The same origin, for work that should link to it rather than grow its trace: a
    /// pod that keeps failing is retried for as long as the config stands, and a trace
    /// with a child per retry would grow without end.
    pub fn linked(&self) -> Self {
        Self {
            context: self.context.clone(),
            link_only: true,
        }
    }
}

/// What a push sends to one pod.
#[derive(Clone, Copy)]
pub struct PushTarget<'a> {
    pub class: &'a str,
    pub pod: &'a str,
    pub address: &'a dyn Display,
    pub config_hash: &'a str,
    pub bytes: usize,
    /// Objects left out of the config because Kong rejected them.
    pub excluded: usize,
}

/// The span of one `POST /config` to one Kong pod, a child of `origin` (or a root linked
/// to it).
pub fn push(origin: &TraceOrigin, target: PushTarget<'_>) -> Span {
    let span = tracing::debug_span!(
        parent: None,
        "push",
        gateway_class = target.class,
        pod = target.pod,
        address = %target.address,
        config_hash = target.config_hash,
        bytes = target.bytes,
        excluded = target.excluded,
        outcome = field::Empty,
        kong_error = field::Empty,
        error = field::Empty,
        otel.status_code = field::Empty,
    );
    match &origin.context {
        Some(origin_context) if origin.link_only => {
            let _ = span.set_parent(opentelemetry::Context::new());
            span.add_link(origin_context.clone());
        }
        Some(parent) => {
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent.clone()));
        }
        None => {}
    }
    start(&span);
    span
}

/// Records Kong's refusal of a pushed config.
pub fn record_kong_error(span: &Span, message: &str) {
    span.record("kong_error", message);
    span.record("otel.status_code", "ERROR");
}

/// The context of an exported, sampled span, for a link to it.
pub fn link_to(span: &Span) -> Option<SpanContext> {
    sampled_context(span)
}

#[cfg(test)]
mod tests;
