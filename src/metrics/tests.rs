use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::kong::{PodPushState, Serving};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn traced() -> Option<String> {
    Some(TRACE_ID.to_string())
}

fn untraced() -> Option<String> {
    None
}

fn lines_of<'a>(text: &'a str, metric: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(metric)).collect()
}

#[test]
fn histograms_carry_the_trace_id_of_the_span_they_were_observed_in() {
    let metrics = Metrics::with_trace_source(traced);
    metrics.reconciled(Duration::from_millis(200), None);
    metrics.decided("web", Duration::from_millis(3));
    metrics.pushed("web", "kong-0", PushResult::Accepted, Duration::from_millis(40));
    let text = metrics.encode().expect("encode");
    let exemplar = format!("# {{trace_id=\"{TRACE_ID}\"}}");
    for (metric, bucket) in [
        ("kongress_reconcile_duration_seconds_bucket", "le=\"0.25\""),
        ("kongress_translation_duration_seconds_bucket", "le=\"0.005\""),
        ("kongress_push_duration_seconds_bucket", "le=\"0.05\""),
    ] {
        let line = lines_of(&text, metric)
            .into_iter()
            .find(|l| l.contains(bucket))
            .unwrap_or_else(|| panic!("no {metric} {bucket} in\n{text}"));
        assert!(line.contains(&exemplar), "{line}");
    }
}

#[test]
fn without_a_recorded_span_histograms_have_no_exemplars() {
    let metrics = Metrics::with_trace_source(untraced);
    metrics.reconciled(Duration::from_millis(200), None);
    let text = metrics.encode().expect("encode");
    assert!(!text.contains("trace_id"), "{text}");
    assert!(
        text.contains("kongress_reconcile_duration_seconds_count{controller=\"gatewayclass\"} 1"),
        "{text}"
    );
}

#[test]
fn reconcile_errors_are_counted_by_category_beside_the_total() {
    let metrics = Metrics::with_trace_source(untraced);
    metrics.reconciled(Duration::from_millis(1), None);
    metrics.reconciled(Duration::from_millis(1), Some(&ReconcileError::CachesNotReady));
    let text = metrics.encode().expect("encode");
    assert!(
        text.contains("kongress_reconciles_total{controller=\"gatewayclass\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("kongress_reconcile_errors_total{controller=\"gatewayclass\",category=\"caches_not_ready\"} 1"),
        "{text}"
    );
}

#[test]
fn a_gone_pod_takes_its_push_series_with_it() {
    let metrics = Metrics::with_trace_source(untraced);
    metrics.pushed("web", "kong-0", PushResult::Accepted, Duration::from_millis(5));
    metrics.pushed("web", "kong-1", PushResult::Failed, Duration::from_millis(5));
    let text = metrics.encode().expect("encode");
    assert!(
        text.contains("kongress_pushes_total{gateway_class=\"web\",pod=\"kong-1\",result=\"failed\"} 1"),
        "{text}"
    );
    metrics.forget_pod("web", "kong-1");
    let text = metrics.encode().expect("encode");
    assert!(!text.contains("kong-1"), "{text}");
    assert!(text.contains("pod=\"kong-0\""), "{text}");
    metrics.config_prepared("web", 1234, &KongConfig::empty());
    metrics.forget_class("web");
    let text = metrics.encode().expect("encode");
    assert!(!text.contains("gateway_class=\"web\""), "{text}");
}

#[test]
fn scrape_time_gauges_read_the_live_state() {
    let metrics = Metrics::with_trace_source(untraced);
    metrics.set_live_source(|| LiveState {
        leader: true,
        caches: vec![("Gateway", 3), ("HTTPRoute", 7)],
        data_planes: 2,
    });
    let text = metrics.encode().expect("encode");
    for want in [
        "kongress_leader 1",
        "kongress_data_planes 2",
        "kongress_cache_objects{kind=\"Gateway\"} 3",
        "kongress_cache_objects{kind=\"HTTPRoute\"} 7",
    ] {
        assert!(text.lines().any(|l| l == want), "{want} missing from\n{text}");
    }
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn config_size_counts_bytes_and_nested_entities() {
    let config: KongConfig = serde_json::from_value(serde_json::json!({
        "_format_version": "3.0",
        "services": [{
            "name": "s", "protocol": "http", "host": "u", "port": 80, "tags": [],
            "plugins": [{"name": "p", "config": {}, "tags": []}],
            "routes": [{"name": "r", "protocols": ["http"], "expression": "true", "tags": [],
                        "plugins": [{"name": "q", "config": {}, "tags": []}]}]
        }],
        "upstreams": [{"name": "u", "tags": [], "targets": [{"target": "10.0.0.1:80", "weight": 1, "tags": []}]}]
    }))
    .expect("config");
    assert_eq!(
        entity_count(&config),
        6,
        "service, its plugin, route, route plugin, upstream, target"
    );
    let metrics = Metrics::with_trace_source(untraced);
    metrics.config_prepared("web", 2048, &config);
    let text = metrics.encode().expect("encode");
    assert!(
        text.contains("kongress_config_bytes{gateway_class=\"web\"} 2048"),
        "{text}"
    );
    assert!(
        text.contains("kongress_config_entities{gateway_class=\"web\"} 6"),
        "{text}"
    );
}

#[test]
fn route_propagation_is_observed_once_every_ready_pod_runs_the_config() {
    let metrics = Metrics::with_trace_source(untraced);
    let route = crate::translate::RouteRef {
        kind: crate::plan::RouteKind::HttpRoute,
        key: crate::api::ObjectKey::new("default", "echo"),
    };
    metrics.route_event(&route, 2, false, &["web".to_string()], true);
    metrics.reconcile_started("web");
    let config = Arc::new(KongConfig::empty());
    metrics.config_decided("web", &config);
    let mut state = PushState {
        desired: Some(config.clone()),
        desired_hash: Some("h".into()),
        serving: Serving::Desired,
        target_hash: Some("h".into()),
        pods: vec![PodPushState {
            pod: "kong-0".into(),
            ready: true,
            running_hash: Some("old".into()),
            last_error: None,
        }],
        rejected: Vec::new(),
        config_error: None,
    };
    metrics.push_state("web", &state);
    let count = "kongress_route_propagation_seconds_count{gateway_class=\"web\"}";
    assert!(!metrics.encode().expect("encode").contains(count), "the pod still lags");
    state.pods[0].running_hash = Some("h".into());
    metrics.push_state("web", &state);
    metrics.push_state("web", &state);
    let text = metrics.encode().expect("encode");
    assert!(text.contains(&format!("{count} 1")), "observed once:\n{text}");
}
