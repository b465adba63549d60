//! Traces in a real backend: Jaeger, built by the e2e tooling from its Go module, runs on
//! loopback beside the cluster; kongress exports to it over OTLP (gRPC in one test,
//! HTTP/protobuf in the other) with nothing but the standard `OTEL_*` variables. From a
//! Gateway's Events the tests follow the trace ids into Jaeger's query API and find the
//! reconcile, its decide steps, its writes, the push to the Kong pod and the links
//! between them. A third test points kongress at collectors that refuse connections or
//! never answer, and checks that the Gateway converges as fast as without tracing.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use kongress::telemetry::trace_id_in_note;
use kongress_e2e::jaeger::{Jaeger, Span, Trace, free_ports};
use kongress_e2e::scenario::Scenario;
use kongress_e2e::*;
use kube::api::{Api, ListParams};
use serde_json::json;

/// Spans leave kongress within this many milliseconds of ending (the SDK's default is 5 s).
const EXPORT_DELAY_MS: &str = "100";

/// A Gateway (HTTP :80), a Service and an HTTPRoute to it.
async fn gateway_and_route(scenario: &Scenario) -> Result<()> {
    let ns = &scenario.namespace;
    create(
        &Api::<Service>::namespaced(scenario.client.clone(), ns),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "echo", "namespace": ns},
            "spec": {"ports": [{"port": 80}]}
        }),
    )
    .await?;
    scenario
        .create_gateway("gw", json!([{"name": "http", "port": 80, "protocol": "HTTP"}]))
        .await?;
    create(
        &Api::<HttpRoute>::namespaced(scenario.client.clone(), ns),
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {
                "parentRefs": [{"name": "gw"}],
                "rules": [{"backendRefs": [{"name": "echo", "port": 80}]}]
            }
        }),
    )
    .await?;
    Ok(())
}

/// Waits until the Gateway is Programmed and the route Accepted.
async fn wait_converged(scenario: &Scenario) -> Result<()> {
    scenario
        .wait_for_gateway_condition("gw", "Programmed", "True", None)
        .await?;
    let routes: Api<HttpRoute> = Api::namespaced(scenario.client.clone(), &scenario.namespace);
    eventually("HTTPRoute web Accepted", CONVERGE_TIMEOUT, || {
        let routes = routes.clone();
        async move {
            let route = routes.get("web").await.map_err(|e| e.to_string())?;
            let accepted = route.status.iter().flat_map(|s| &s.parents).any(|parent| {
                parent
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Accepted" && c.status == "True")
            });
            Ok(accepted.then_some(()))
        }
    })
    .await
}

/// The pod whose stand-in runs a config with the route, and that config's hash.
async fn pod_running_the_route(scenario: &Scenario) -> Result<(String, String)> {
    eventually("a Kong pod running the route", CONVERGE_TIMEOUT, || {
        let standins = scenario.fleet.standins();
        async move {
            for (key, standin) in standins {
                if let Some(loaded) = standin.loaded()
                    && loaded.config().to_string().contains("k8s-name:web")
                {
                    let pod = key.rsplit('/').next().unwrap_or(&key).to_string();
                    return Ok(Some((pod, loaded.hash)));
                }
            }
            Err("no stand-in has loaded the route yet".into())
        }
    })
    .await
}

/// kongress's Events about the Gateway `gw`: `(reason, note)`.
async fn gateway_events(scenario: &Scenario) -> Result<Vec<(String, String)>> {
    let events: Api<Event> = Api::namespaced(scenario.client.clone(), &scenario.namespace);
    Ok(events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("kongress"))
        .filter(|e| {
            e.regarding
                .as_ref()
                .is_some_and(|r| r.kind.as_deref() == Some("Gateway") && r.name.as_deref() == Some("gw"))
        })
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect())
}

/// Waits until Jaeger holds the trace.
/// Waits until Jaeger holds the trace with its root span. Spans are exported in batches as
/// they end, and a reconcile's root ends after its children, so Jaeger can hold the
/// children of a trace a moment before its root.
async fn trace(jaeger: &Jaeger, id: &str) -> Result<Trace> {
    eventually(
        &format!("trace {id} with its root in Jaeger"),
        CONVERGE_TIMEOUT,
        || async move {
            match jaeger.trace(id).await.map_err(|e| e.to_string())? {
                Some(trace) if trace.root().is_some() => Ok(Some(trace)),
                Some(_) => Err("the trace has no root span yet".to_string()),
                None => Ok(None),
            }
        },
    )
    .await
}

/// Waits until Jaeger holds a span `operation` with `tags` that `accept` accepts.
async fn wait_span(
    jaeger: &Jaeger,
    service: &str,
    operation: &str,
    tags: &[(&str, &str)],
    accept: impl Fn(&Span) -> bool,
) -> Result<Span> {
    eventually(&format!("a {operation} span with {tags:?}"), CONVERGE_TIMEOUT, || {
        let accept = &accept;
        async move {
            let spans = jaeger
                .spans(service, operation, tags)
                .await
                .map_err(|e| e.to_string())?;
            let count = spans.len();
            match spans.into_iter().find(|s| accept(s)) {
                Some(span) => Ok(Some(span)),
                None => Err(format!("{count} {operation} spans, none accepted")),
            }
        }
    })
    .await
}

/// Runs `body`; on failure adds the tails of the kongress and Jaeger logs.
async fn explained<T>(
    operator: &Operator,
    jaeger: Option<&Jaeger>,
    body: impl Future<Output = Result<T>>,
) -> Result<T> {
    match body.await {
        Ok(value) => Ok(value),
        Err(error) => {
            let tail = |path: &std::path::Path| {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(40)..].join("\n")
            };
            let mut message = format!(
                "{error:#}\n--- kongress log ({}) ---\n{}",
                operator.log.display(),
                tail(&operator.log)
            );
            if let Some(jaeger) = jaeger {
                message += &format!("\n--- jaeger log ({}) ---\n{}", jaeger.log.display(), tail(&jaeger.log));
            }
            bail!(message)
        }
    }
}

/// The whole path from `kubectl describe gateway` to the traces, over `protocol`.
async fn follow_the_traces(name: &str, protocol: &str) -> Result<()> {
    let jaeger = Jaeger::start(name).await?;
    let scenario = Scenario::new(name).await?;
    let service = format!("kongress-{name}");
    let endpoint = if protocol == "grpc" {
        jaeger.grpc_endpoint()
    } else {
        jaeger.http_endpoint()
    };
    let operator = Operator::start_with_env(
        name,
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_SERVICE_NAME", &service),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=e2e"),
            ("OTEL_BSP_SCHEDULE_DELAY", EXPORT_DELAY_MS),
        ],
    )
    .await?;
    explained(&operator, Some(&jaeger), async {
        gateway_and_route(&scenario).await?;
        wait_converged(&scenario).await?;
        let (pod, hash) = pod_running_the_route(&scenario).await?;
        check_events_lead_to_reconciles(&scenario, &jaeger, &service).await?;
        check_push(&scenario, &jaeger, &service, &pod, &hash).await?;
        check_route(&scenario, &jaeger, &service).await?;
        Ok(())
    })
    .await?;
    operator.stop().await
}

/// Every Event about the Gateway names a trace: a reconcile of the class (a root span,
/// with its decide steps as children) that wrote the Gateway's status and the Event.
async fn check_events_lead_to_reconciles(scenario: &Scenario, jaeger: &Jaeger, service: &str) -> Result<()> {
    let gateway = format!("{}/gw", scenario.namespace);
    let events = eventually("a Programmed=True Event on the Gateway", CONVERGE_TIMEOUT, || async {
        let events = gateway_events(scenario).await.map_err(|e| e.to_string())?;
        if events.iter().any(|(_, note)| note.starts_with("Programmed=True")) {
            Ok(Some(events))
        } else {
            Err(format!("{events:?}"))
        }
    })
    .await?;
    for (reason, note) in &events {
        let id = trace_id_in_note(note).with_context(|| format!("Event {reason} names no trace: {note}"))?;
        let trace = trace(jaeger, id).await?;
        let root = trace.root().context("a trace without a root")?;
        let context = format!("trace {id} of Event {reason} ({note})");
        if root.operation != "reconcile" || root.tag("gateway_class") != Some(scenario.class.as_str()) {
            bail!("{context}: the root is {root:?}");
        }
        if root.service != service || root.process.get("deployment.environment").map(String::as_str) != Some("e2e") {
            bail!("{context}: service and resource from OTEL_*: {root:?}");
        }
        for step in ["plan", "translate", "render", "status"] {
            if !trace
                .named(step)
                .any(|s| s.parent.as_ref().map(|p| &p.1) == Some(&root.span_id))
            {
                bail!("{context}: no {step} span under the reconcile");
            }
        }
        let wrote_status = trace.named("write").any(|s| {
            s.tag("verb") == Some("patch status")
                && s.tag("gateway") == Some(&gateway)
                && s.tag("outcome") == Some("ok")
        });
        let wrote_event = trace.named("write").any(|s| {
            s.tag("kind") == Some("Event") && s.tag("gateway") == Some(&gateway) && s.tag("reason") == Some(reason)
        });
        if !wrote_status || !wrote_event {
            bail!(
                "{context}: status write {wrote_status}, Event write {wrote_event}: {:?}",
                trace.named("write").collect::<Vec<_>>()
            );
        }
    }
    Ok(())
}

/// The push that made the pod run the config is a child of the reconcile that decided it,
/// and the reconcile its result woke links to it.
async fn check_push(scenario: &Scenario, jaeger: &Jaeger, service: &str, pod: &str, hash: &str) -> Result<()> {
    let class = scenario.class.as_str();
    let push = wait_span(
        jaeger,
        service,
        "push",
        &[("gateway_class", class), ("pod", pod), ("config_hash", hash)],
        |s| s.tag("outcome") == Some("accepted"),
    )
    .await?;
    let bytes: usize = push.tag("bytes").unwrap_or_default().parse().unwrap_or_default();
    if bytes == 0 || !push.tag("address").is_some_and(|a| a.starts_with("127.")) {
        bail!("push span without its size or the pod's address: {push:?}");
    }
    let (_, parent_id) = push.parent.clone().context("the push has no parent")?;
    let trace = trace(jaeger, &push.trace_id).await?;
    let parent = trace
        .span(&parent_id)
        .context("the push's parent is not in its trace")?;
    if parent.operation != "reconcile" || parent.tag("gateway_class") != Some(class) {
        bail!("the push's parent is not a reconcile of {class}: {parent:?}");
    }
    let translated_routes = trace
        .named("translate")
        .filter_map(|s| s.tag("routes")?.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    if translated_routes == 0 {
        bail!("the reconcile that decided the pushed config translated no route");
    }
    let woken = (push.trace_id.clone(), push.span_id.clone());
    wait_span(jaeger, service, "reconcile", &[("gateway_class", class)], |s| {
        s.links.contains(&woken)
    })
    .await
    .context("no reconcile links to the push that changed the class's push state")?;
    Ok(())
}

/// The route's change is a watch event a reconcile of the class links to, and its status
/// write is traced.
async fn check_route(scenario: &Scenario, jaeger: &Jaeger, service: &str) -> Result<()> {
    let route = format!("{}/web", scenario.namespace);
    let event = wait_span(
        jaeger,
        service,
        "watch event",
        &[("kind", "HTTPRoute"), ("object", &route)],
        |s| s.tag("gateway_classes") == Some(scenario.class.as_str()),
    )
    .await?;
    let woken = (event.trace_id.clone(), event.span_id.clone());
    wait_span(
        jaeger,
        service,
        "reconcile",
        &[("gateway_class", scenario.class.as_str())],
        |s| s.links.contains(&woken),
    )
    .await
    .context("no reconcile links to the route's watch event")?;
    wait_span(
        jaeger,
        service,
        "write",
        &[("route", &route), ("verb", "patch status")],
        |s| s.tag("route_kind") == Some("HTTPRoute") && s.tag("outcome") == Some("ok"),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_gateways_events_lead_to_its_reconcile_writes_and_push_over_otlp_grpc() -> Result<()> {
    follow_the_traces("traces-grpc", "grpc").await
}

#[tokio::test]
async fn a_gateways_events_lead_to_its_reconcile_writes_and_push_over_otlp_http_protobuf() -> Result<()> {
    follow_the_traces("traces-http", "http/protobuf").await
}

async fn wait_class_accepted(scenario: &Scenario) -> Result<()> {
    let classes: Api<GatewayClass> = Api::all(scenario.client.clone());
    eventually("GatewayClass Accepted", CONVERGE_TIMEOUT, || {
        let classes = classes.clone();
        async move {
            let class = classes.get(&scenario.class).await.map_err(|e| e.to_string())?;
            let accepted = class
                .status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten())
                .any(|c| c.type_ == "Accepted" && c.status == "True");
            Ok(accepted.then_some(()))
        }
    })
    .await
}

/// Time from creating the Gateway and route until both converged, with kongress exporting
/// to `endpoint` (no tracing when `None`).
async fn time_to_converge(name: &str, otlp: Option<(&str, &str)>) -> Result<Duration> {
    let scenario = Scenario::new(name).await?;
    let env: Vec<(&str, &str)> = match otlp {
        Some((endpoint, protocol)) => vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_BSP_SCHEDULE_DELAY", EXPORT_DELAY_MS),
        ],
        None => Vec::new(),
    };
    let operator = Operator::start_with_env(name, &[], &env).await?;
    let took = explained(&operator, None, async {
        // kongress is up once it has reconciled the class (its finalizer needs a Gateway;
        // the class's Accepted condition does not).
        wait_class_accepted(&scenario).await?;
        let started = Instant::now();
        gateway_and_route(&scenario).await?;
        wait_converged(&scenario).await?;
        let took = started.elapsed();
        if otlp.is_some() {
            // The spans were made (the Events name traces), only their export failed.
            let events = gateway_events(&scenario).await?;
            if !events.iter().all(|(_, note)| trace_id_in_note(note).is_some()) {
                bail!("Events without a trace id: {events:?}");
            }
        }
        Ok(took)
    })
    .await?;
    operator.stop().await?;
    Ok(took)
}

#[tokio::test]
async fn an_unreachable_or_hung_collector_does_not_slow_reconciles() -> Result<()> {
    // A port nothing listens on, and one that accepts connections but never answers.
    let [closed] = free_ports::<1>()?;
    let hung = std::net::TcpListener::bind("127.0.0.1:0")?;
    let hung_endpoint = format!("http://{}", hung.local_addr()?);
    let closed_endpoint = format!("http://127.0.0.1:{closed}");

    let baseline = time_to_converge("traces-off", None).await?;
    let refused = time_to_converge("traces-refused", Some((&closed_endpoint, "grpc"))).await?;
    let hanging = time_to_converge("traces-hung", Some((&hung_endpoint, "http/protobuf"))).await?;
    drop(hung);
    eprintln!("time to converge: no tracing {baseline:?}, collector refusing {refused:?}, collector hung {hanging:?}");
    // An export that blocked reconciles would add its 10 s timeout at least.
    let allowed = baseline + Duration::from_secs(3);
    if refused > allowed || hanging > allowed {
        bail!(
            "tracing to a dead collector slowed reconciles: {baseline:?} without, {refused:?} refused, {hanging:?} hung"
        );
    }
    Ok(())
}
