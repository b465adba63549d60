//! The span helpers against a real OpenTelemetry pipeline that exports into memory, with
//! the log layer writing into a buffer.

use std::io;
use std::sync::{Arc, Mutex};

use gateway_api::gatewayclasses::GatewayClass;
use kube::runtime::reflector::ObjectRef;
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use super::*;
use crate::telemetry::links::WatchEvent;
use crate::telemetry::{LogFormat, current_trace_id, export};

#[derive(Clone, Debug, Default)]
struct Memory(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Memory {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().expect("memory").extend(batch);
        Ok(())
    }
}

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

struct Traced<R> {
    result: R,
    spans: Vec<SpanData>,
    log: String,
}

impl<R> Traced<R> {
    fn span(&self, name: &str) -> &SpanData {
        self.spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span in {:?}", self.names()))
    }

    fn names(&self) -> Vec<&str> {
        self.spans.iter().map(|s| s.name.as_ref()).collect()
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// Runs `body` with the text log layer and the exporting layer installed, as `init` does.
fn traced<R>(sampler: Sampler, body: impl FnOnce() -> R) -> Traced<R> {
    traced_as(LogFormat::Text, sampler, body)
}

fn traced_as<R>(format: LogFormat, sampler: Sampler, body: impl FnOnce() -> R) -> Traced<R> {
    crate::telemetry::ENABLED.store(true, std::sync::atomic::Ordering::Relaxed);
    let memory = Memory::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(memory.clone())
        .with_sampler(sampler)
        .build();
    let log = LogBuffer::default();
    let subscriber = tracing_subscriber::registry()
        .with(crate::telemetry::logging::layer_to(format, "info", false, log.clone()))
        .with(export::layer(&provider));
    let result = tracing::subscriber::with_default(subscriber, body);
    let _ = provider.force_flush();
    let spans = memory.0.lock().expect("memory").clone();
    let log = String::from_utf8_lossy(&log.0.lock().expect("log")).into_owned();
    Traced { result, spans, log }
}

fn gateway_event(class: &str) {
    let gateway: crate::api::Gateway = serde_json::from_value(serde_json::json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "apps", "resourceVersion": "42"},
        "spec": {"gatewayClassName": class, "listeners": []}
    }))
    .expect("gateway");
    WatchEvent::of(&gateway).woke(&[ObjectRef::<GatewayClass>::new(class)]);
}

#[test]
fn a_reconcile_is_a_root_span_linked_to_the_watch_events_that_woke_it() {
    let traced = traced(Sampler::AlwaysOn, || {
        gateway_event("linked-class");
        gateway_event("linked-class");
        // What the controller runs the reconcile in: not exported, so not a parent.
        let controller = tracing::info_span!(target: "kube_runtime::controller", "reconciling object");
        let _inside = controller.enter();
        drop(reconcile("linked-class", Some(7)));
        // Taken: the next reconcile has nothing to link to.
        drop(reconcile("linked-class", Some(7)));
    });
    let events: Vec<&SpanData> = traced.spans.iter().filter(|s| s.name == "watch event").collect();
    assert_eq!(events.len(), 2);
    assert_eq!(attribute(events[0], "kind").as_deref(), Some("Gateway"));
    assert_eq!(attribute(events[0], "object").as_deref(), Some("apps/gw"));
    assert_eq!(attribute(events[0], "resource_version").as_deref(), Some("42"));
    let reconciles: Vec<&SpanData> = traced.spans.iter().filter(|s| s.name == "reconcile").collect();
    assert_eq!(reconciles.len(), 2, "{:?}", traced.names());
    let first = reconciles[0];
    assert_eq!(first.parent_span_id, SpanId::INVALID, "a root");
    assert_eq!(attribute(first, "gateway_class").as_deref(), Some("linked-class"));
    assert_eq!(attribute(first, "generation").as_deref(), Some("7"));
    assert_eq!(attribute(first, "links").as_deref(), Some("2"));
    let linked: Vec<SpanId> = first.links.iter().map(|l| l.span_context.span_id()).collect();
    assert_eq!(
        linked,
        events.iter().map(|e| e.span_context.span_id()).collect::<Vec<_>>()
    );
    assert!(reconciles[1].links.is_empty());
    assert_ne!(first.span_context.trace_id(), reconciles[1].span_context.trace_id());
}

#[test]
fn writes_and_event_trace_ids_belong_to_the_reconciles_trace() {
    let traced = traced(Sampler::AlwaysOn, || {
        let span = reconcile("write-class", None);
        let _inside = span.enter();
        let meta = ObjectMeta {
            name: Some("web".into()),
            namespace: Some("apps".into()),
            generation: Some(3),
            ..ObjectMeta::default()
        };
        let write = write("patch status", "HTTPRoute", &meta);
        let _writing = write.enter();
        let not_found: Result<(), kube::Error> = Err(kube::Error::Api(Box::new(kube::core::Status {
            code: 404,
            ..kube::core::Status::default()
        })));
        record_write(&write, &not_found);
        current_trace_id()
    });
    let reconcile = traced.span("reconcile");
    let write = traced.span("write");
    assert_eq!(write.parent_span_id, reconcile.span_context.span_id());
    assert_eq!(attribute(write, "route").as_deref(), Some("apps/web"));
    assert_eq!(attribute(write, "route_kind").as_deref(), Some("HTTPRoute"));
    assert_eq!(attribute(write, "generation").as_deref(), Some("3"));
    assert_eq!(attribute(write, "outcome").as_deref(), Some("not_found"));
    assert_eq!(attribute(write, "gateway"), None);
    assert_eq!(traced.result, Some(reconcile.span_context.trace_id().to_string()));
}

#[test]
fn a_push_is_a_child_of_the_reconcile_that_decided_its_config() {
    let traced = traced(Sampler::AlwaysOn, || {
        let origin = {
            let span = reconcile("push-class", None);
            let _inside = span.enter();
            TraceOrigin::current()
        };
        let push = push(
            &origin,
            PushTarget {
                class: "push-class",
                pod: "kong-1",
                address: &"127.244.0.1:8444",
                config_hash: "abc",
                bytes: 1234,
                excluded: 0,
            },
        );
        record_outcome(&push, "rejected");
        record_kong_error(&push, "declarative config is invalid");
        link_to(&push)
    });
    let reconcile = traced.span("reconcile");
    let push = traced.span("push");
    assert_eq!(push.span_context.trace_id(), reconcile.span_context.trace_id());
    assert_eq!(push.parent_span_id, reconcile.span_context.span_id());
    assert_eq!(attribute(push, "pod").as_deref(), Some("kong-1"));
    assert_eq!(attribute(push, "config_hash").as_deref(), Some("abc"));
    assert_eq!(attribute(push, "bytes").as_deref(), Some("1234"));
    assert_eq!(
        attribute(push, "kong_error").as_deref(),
        Some("declarative config is invalid")
    );
    assert_eq!(
        traced.result.as_ref().map(|c| c.span_id()),
        Some(push.span_context.span_id())
    );
}

#[test]
fn a_push_past_the_children_limit_is_a_root_linked_to_its_reconcile() {
    let traced = traced(Sampler::AlwaysOn, || {
        let origin = {
            let span = reconcile("retry-class", None);
            let _inside = span.enter();
            TraceOrigin::current()
        };
        let target = PushTarget {
            class: "retry-class",
            pod: "kong-1",
            address: &"127.244.0.1:8444",
            config_hash: "abc",
            bytes: 1,
            excluded: 0,
        };
        drop(push(&origin.linked(), target));
    });
    let reconcile = traced.span("reconcile");
    let push = traced.span("push");
    assert_eq!(push.parent_span_id, SpanId::INVALID);
    assert_ne!(push.span_context.trace_id(), reconcile.span_context.trace_id());
    let linked: Vec<SpanId> = push.links.iter().map(|l| l.span_context.span_id()).collect();
    assert_eq!(linked, vec![reconcile.span_context.span_id()]);
}

#[test]
fn json_log_lines_inside_a_traced_span_start_with_its_trace_id() {
    let traced = traced_as(LogFormat::Json, Sampler::AlwaysOn, || {
        let span = reconcile("json-class", None);
        let _inside = span.enter();
        tracing::info!(objects = 2, "inside");
    });
    let trace_id = traced.span("reconcile").span_context.trace_id().to_string();
    let line = traced.log.lines().find(|l| l.contains("inside")).expect("inside line");
    assert!(line.starts_with(&format!("{{\"trace_id\":\"{trace_id}\",")), "{line}");
    let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
    assert_eq!(value["fields"]["objects"], 2);
}

#[test]
fn log_lines_inside_a_traced_span_name_its_trace_and_others_do_not() {
    let traced = traced(Sampler::AlwaysOn, || {
        tracing::info!("before");
        let span = reconcile("log-class", None);
        let _inside = span.enter();
        tracing::info!("inside");
    });
    let trace_id = traced.span("reconcile").span_context.trace_id().to_string();
    let inside = traced.log.lines().find(|l| l.contains("inside")).expect("inside line");
    assert!(inside.ends_with(&format!("trace_id={trace_id}")), "{inside}");
    let before = traced.log.lines().find(|l| l.contains("before")).expect("before line");
    assert!(!before.contains("trace_id"), "{before}");
}

#[test]
fn a_reconcile_the_sampler_drops_names_no_trace() {
    let traced = traced(Sampler::AlwaysOff, || {
        let span = reconcile("unsampled-class", None);
        let _inside = span.enter();
        tracing::info!("inside");
        (current_trace_id(), TraceOrigin::current())
    });
    assert!(traced.spans.is_empty());
    assert_eq!(traced.result.0, None);
    assert!(!traced.log.contains("trace_id"), "{}", traced.log);
    // The push still follows the reconcile's decision instead of sampling on its own.
    let origin = traced.result.1.context.expect("an origin");
    assert!(!origin.is_sampled() && origin.trace_id() != TraceId::INVALID);
}
