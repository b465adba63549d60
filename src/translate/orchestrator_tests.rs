//! The orchestrator: verdicts per parent, attachedRoutes, config assembly, and translation as
//! a whole (no panics on arbitrary input, output independent of input order).

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::json;

use super::testing::{self, Snapshot};
use super::*;
use crate::objects::Objects;

const GATEWAYS: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: a, namespace: infra}
spec:
  gatewayClassName: kongress
  listeners:
  - {name: pass, port: 443, protocol: TLS, hostname: "*.example.com", tls: {mode: Passthrough}, allowedRoutes: {namespaces: {from: All}}}
  - {name: tcp, port: 9000, protocol: TCP, allowedRoutes: {namespaces: {from: All}}}
  - {name: udp, port: 9000, protocol: UDP, allowedRoutes: {namespaces: {from: All}}}
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: b, namespace: infra}
spec:
  gatewayClassName: kongress
  listeners:
  - {name: shared-pass, port: 443, protocol: TLS, hostname: "*.example.com", tls: {mode: Passthrough}, allowedRoutes: {namespaces: {from: All}}}
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: app}
spec:
  ports: [{name: tcp, port: 80}, {name: dns, port: 53, protocol: UDP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc-1, namespace: app, labels: {kubernetes.io/service-name: svc}}
addressType: IPv4
ports: [{name: tcp, port: 8080}, {name: dns, port: 5353, protocol: UDP}]
endpoints: [{addresses: [10.0.0.1]}, {addresses: [10.0.0.2]}]
"#;

fn translate_yaml(routes: &str) -> Translation {
    Snapshot::from_yaml(&format!("{GATEWAYS}\n---\n{routes}")).translate()
}

fn listener(gateway: &str, name: &str) -> ListenerKey {
    ListenerKey {
        gateway: ObjectKey::new("infra", gateway),
        listener: name.to_string(),
    }
}

#[test]
fn a_class_without_routes_still_sends_kong_a_non_empty_config() {
    let translation = translate_yaml("");
    assert!(translation.config.services.is_empty());
    assert_eq!(translation.config.upstreams.len(), 1);
    assert_eq!(translation.config.upstreams[0].name, PLACEHOLDER_UPSTREAM);
    assert!(translation.routes.is_empty());
}

#[test]
fn a_route_on_shared_listeners_counts_on_each_and_is_bound_once() {
    let translation = translate_yaml(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: t, namespace: app}
spec:
  parentRefs: [{name: a, namespace: infra}, {name: b, namespace: infra}]
  hostnames: [x.example.com]
  rules: [{backendRefs: [{name: svc, port: 80}]}]
"#,
    );
    assert_eq!(translation.attached_routes(&listener("a", "pass")), 1);
    assert_eq!(translation.attached_routes(&listener("b", "shared-pass")), 1);
    let routes: Vec<&kong::RouteEntry> = translation.config.services.iter().flat_map(|s| &s.routes).collect();
    assert_eq!(routes.len(), 1);
}

#[test]
fn routes_that_are_not_accepted_are_not_counted() {
    let translation = translate_yaml(
        r#"
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: t, namespace: app}
spec:
  parentRefs: [{name: a, namespace: infra, sectionName: pass}]
  rules: [{backendRefs: [{name: svc, port: 80}]}]
"#,
    );
    let verdict = &translation.routes.values().next().expect("verdict").parents[0];
    assert_eq!(verdict.accepted.reason, "NotAllowedByListeners");
    assert_eq!(translation.attached_routes(&listener("a", "pass")), 0);
    assert!(translation.config.services.is_empty());
}

#[test]
fn resolved_refs_is_reported_on_every_parent() {
    let translation = translate_yaml(
        r#"
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: t, namespace: app}
spec:
  parentRefs: [{name: a, namespace: infra, sectionName: nope}, {name: a, namespace: infra, sectionName: tcp}]
  rules: [{backendRefs: [{name: missing, port: 80}]}]
"#,
    );
    let parents = &translation.routes.values().next().expect("verdict").parents;
    assert_eq!(parents[0].accepted.reason, "NoMatchingParent");
    assert_eq!(parents[1].accepted.reason, "Accepted");
    assert!(parents.iter().all(|p| p.resolved_refs.reason == "BackendNotFound"));
}

#[test]
fn services_no_served_rule_uses_are_left_out() {
    let translation = translate_yaml(
        r#"
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: t, namespace: app}
spec:
  parentRefs: [{name: a, namespace: infra, sectionName: tcp}]
  rules:
  - backendRefs: [{name: svc, port: 80}]
  - backendRefs: [{name: svc, port: 80, weight: 2}, {name: missing, port: 80}]
"#,
    );
    let names: Vec<&str> = translation.config.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["app.svc.80.tcp"]);
    let upstreams: Vec<&str> = translation.config.upstreams.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(upstreams, ["app.svc.80.tcp"]);
}

#[test]
fn routes_naming_only_other_gateways_get_no_verdict() {
    let translation = translate_yaml(
        r#"
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: t, namespace: app}
spec:
  parentRefs: [{name: elsewhere, namespace: infra}]
  rules: [{backendRefs: [{name: svc, port: 80}]}]
"#,
    );
    assert!(translation.routes.is_empty());
}

/// A route of a random kind with random parentRefs, hostnames and backendRefs.
fn arbitrary_route() -> impl Strategy<Value = serde_json::Value> {
    let parent_ref = (
        prop::sample::select(vec!["a", "b", "elsewhere"]),
        prop::option::of(prop::sample::select(vec!["infra", "app", ""])),
        prop::option::of(prop::sample::select(vec!["pass", "tcp", "udp", "http", "shared-pass", "nope", ""])),
        prop::option::of(prop::sample::select(vec![80, 443, 9000, 1, 0])),
        prop::option::of(prop::sample::select(vec!["Gateway", "Service"])),
    )
        .prop_map(|(name, namespace, section, port, kind)| {
            json!({"name": name, "namespace": namespace, "sectionName": section, "port": port, "kind": kind})
        });
    let backend_ref = (
        prop::sample::select(vec!["svc", "missing"]),
        prop::option::of(prop::sample::select(vec!["app", "infra"])),
        prop::option::of(prop::sample::select(vec![80, 53, 81])),
        prop::option::of(0..5_i32),
        prop::option::of(prop::sample::select(vec!["Service", "Bucket"])),
    )
        .prop_map(|(name, namespace, port, weight, kind)| {
            json!({"name": name, "namespace": namespace, "port": port, "weight": weight, "kind": kind})
        });
    let hostnames = prop::collection::vec(
        prop::sample::select(vec![
            "x.example.com",
            "*.example.com",
            "a.b.example.com",
            "other.net",
            "*.b.example.com",
        ]),
        0..3,
    );
    (
        prop::sample::select(vec![
            ("HTTPRoute", "v1"),
            ("TLSRoute", "v1"),
            ("TCPRoute", "v1alpha2"),
            ("UDPRoute", "v1alpha2"),
        ]),
        prop::sample::select(vec!["app", "infra"]),
        0..1000_u32,
        prop::collection::vec(parent_ref, 0..4),
        hostnames,
        prop::collection::vec(prop::collection::vec(backend_ref, 0..4), 1..3),
    )
        .prop_map(|((kind, version), namespace, id, parent_refs, hostnames, rules)| {
            let rules: Vec<serde_json::Value> = rules.into_iter().map(|refs| json!({"backendRefs": refs})).collect();
            json!({
                "apiVersion": format!("gateway.networking.k8s.io/{version}"),
                "kind": kind,
                "metadata": {"name": format!("r{id}"), "namespace": namespace, "generation": 1},
                "spec": {"parentRefs": parent_refs, "hostnames": hostnames, "rules": rules},
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_routes_translate_without_panic_and_independently_of_input_order(
        routes in prop::collection::vec(arbitrary_route(), 0..12)
    ) {
        let mut objects = Objects::default();
        objects.add_yaml("gateways", GATEWAYS).expect("fixture reads");
        let mut seen = BTreeSet::new();
        for route in routes {
            let key = (route["kind"].clone().to_string(), route["metadata"]["namespace"].to_string(), route["metadata"]["name"].to_string());
            if !seen.insert(key) {
                continue;
            }
            let text = serde_json::to_string(&route).expect("json");
            objects.add_yaml("route", &text).expect("route reads");
        }
        let forward = Snapshot::from_objects(objects.clone()).translate();
        let backward = Snapshot::from_objects(testing::reversed(&objects)).translate();
        prop_assert_eq!(&forward, &backward);
        let text = serde_yaml_ng::to_string(&forward.config).expect("config serialises");
        prop_assert_eq!(text, serde_yaml_ng::to_string(&backward.config).expect("config serialises"));
        for upstream in &forward.config.upstreams {
            for target in &upstream.targets {
                prop_assert!((1..=65535).contains(&target.weight));
            }
        }
        let mut names = BTreeSet::new();
        for route in forward.config.services.iter().flat_map(|s| &s.routes) {
            prop_assert!(names.insert(route.name.clone()), "duplicate route name {}", route.name);
        }
    }
}
