//! backendRef resolution, targets and weights, one test per rule.

use super::*;
use crate::translate::testing::Snapshot;

/// Namespace `app`: Service `echo` (port 80 → named target port `http`, two ready endpoints,
/// one not ready, one terminating), `grpc` (appProtocol kubernetes.io/h2c), `ws`
/// (kubernetes.io/ws), `odd` (appProtocol mysql), `empty` (no endpoints), `dns`
/// (ExternalName), `dns-udp` (UDP port). Namespace `other`: `shared`, with a ReferenceGrant
/// letting HTTPRoutes of `app` use it, and `private`, without.
const OBJECTS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: app}
spec:
  ports: [{name: web, port: 80, targetPort: http}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: echo-1, namespace: app, labels: {kubernetes.io/service-name: echo}}
addressType: IPv4
ports: [{name: web, port: 8080, protocol: TCP}]
endpoints:
- addresses: [10.0.0.2]
  conditions: {ready: true}
- addresses: [10.0.0.1]
- addresses: [10.0.0.3]
  conditions: {ready: false}
- addresses: [10.0.0.4]
  conditions: {ready: false, serving: true, terminating: true}
---
apiVersion: v1
kind: Service
metadata: {name: grpc, namespace: app}
spec:
  ports: [{port: 50051, appProtocol: kubernetes.io/h2c}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: grpc-1, namespace: app, labels: {kubernetes.io/service-name: grpc}}
addressType: IPv6
ports: [{port: 50051}]
endpoints: [{addresses: ["fd00::1"]}]
---
apiVersion: v1
kind: Service
metadata: {name: ws, namespace: app}
spec:
  ports: [{port: 80, targetPort: 8080, appProtocol: kubernetes.io/ws}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ws-1, namespace: app, labels: {kubernetes.io/service-name: ws}}
addressType: IPv4
endpoints: [{addresses: [10.0.1.1]}]
---
apiVersion: v1
kind: Service
metadata: {name: odd, namespace: app}
spec:
  ports: [{port: 3306, appProtocol: mysql}]
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: app}
spec:
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: app}
spec:
  type: ExternalName
  externalName: example.com
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: dns-udp, namespace: app}
spec:
  ports: [{port: 53, protocol: UDP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-udp-1, namespace: app, labels: {kubernetes.io/service-name: dns-udp}}
addressType: IPv4
ports: [{port: 53, protocol: UDP}]
endpoints: [{addresses: [10.0.2.1]}]
---
apiVersion: v1
kind: Service
metadata: {name: shared, namespace: other}
spec:
  ports: [{port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: shared-1, namespace: other, labels: {kubernetes.io/service-name: shared}}
addressType: IPv4
ports: [{port: 80}]
endpoints: [{addresses: [10.1.0.1]}]
---
apiVersion: v1
kind: Service
metadata: {name: private, namespace: other}
spec:
  ports: [{port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: app-routes, namespace: other}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: app}]
  to: [{group: "", kind: Service, name: shared}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: app}
spec:
  rules: [{}]
"#;

fn backend(yaml: &str) -> BackendRef {
    #[derive(serde::Deserialize)]
    struct Written {
        group: Option<String>,
        kind: Option<String>,
        namespace: Option<String>,
        name: String,
        port: Option<i32>,
        weight: Option<i32>,
    }
    let w: Written = serde_yaml_ng::from_str(yaml).expect("backendRef");
    BackendRef {
        group: w.group,
        kind: w.kind,
        namespace: w.namespace,
        name: w.name,
        port: w.port,
        weight: w.weight,
    }
}

/// Resolves `refs` (YAML flow mappings) for the HTTPRoute `app/r` and returns the outcome with
/// the services and upstreams registered.
fn resolve(refs: &[&str], protocol: ServiceProtocol) -> (ResolvedBackends, Vec<kong::Service>, Vec<kong::Upstream>) {
    let snapshot = Snapshot::from_yaml(OBJECTS);
    let input = snapshot.input();
    let views = snapshot.routes.views();
    let mut backends = Backends::new(&input);
    let refs: Vec<BackendRef> = refs.iter().map(|r| backend(r)).collect();
    let resolved = backends.resolve(&views[0], &refs, protocol);
    let (services, upstreams) = backends.finish();
    (resolved, services, upstreams)
}

fn targets(upstream: &kong::Upstream) -> Vec<(&str, u32)> {
    upstream.targets.iter().map(|t| (t.target.as_str(), t.weight)).collect()
}

#[test]
fn a_service_backend_becomes_a_service_and_upstream_named_after_it() {
    let (resolved, services, upstreams) = resolve(&["{name: echo, port: 80}"], ServiceProtocol::Http);
    assert!(resolved.resolved_refs.ok);
    assert_eq!(resolved.service.as_deref(), Some("app.echo.80"));
    assert_eq!(services[0].host, "app.echo.80");
    assert_eq!(services[0].protocol, "http");
    assert!(services[0].tags.contains(&"k8s-kind:Service".to_string()));
    assert_eq!(upstreams[0].name, "app.echo.80");
}

#[test]
fn targets_are_ready_endpoints_at_the_endpoint_slice_port_named_like_the_service_port() {
    let (_, _, upstreams) = resolve(&["{name: echo, port: 80}"], ServiceProtocol::Http);
    // 10.0.0.1 has no conditions (ready), 10.0.0.3 is not ready, 10.0.0.4 is terminating.
    assert_eq!(targets(&upstreams[0]), [("10.0.0.1:8080", 1), ("10.0.0.2:8080", 1)]);
}

#[test]
fn slices_without_ports_use_the_numeric_target_port() {
    let (_, _, upstreams) = resolve(&["{name: ws, port: 80}"], ServiceProtocol::Http);
    assert_eq!(targets(&upstreams[0]), [("10.0.1.1:8080", 1)]);
}

#[test]
fn ipv6_targets_are_written_in_brackets() {
    let (_, _, upstreams) = resolve(&["{name: grpc, port: 50051}"], ServiceProtocol::Grpc);
    assert_eq!(targets(&upstreams[0]), [("[fd00::1]:50051", 1)]);
}

#[test]
fn a_kind_other_than_service_is_invalid_kind() {
    let (resolved, services, _) = resolve(&["{group: example.com, kind: Bucket, name: b}"], ServiceProtocol::Http);
    assert_eq!(resolved.resolved_refs.reason, "InvalidKind");
    assert_eq!(resolved.service, None);
    assert!(services.is_empty());
}

#[test]
fn a_missing_service_is_backend_not_found() {
    let (resolved, _, _) = resolve(&["{name: nope, port: 80}"], ServiceProtocol::Http);
    assert_eq!(resolved.resolved_refs.reason, "BackendNotFound");
}

#[test]
fn a_port_the_service_lacks_is_backend_not_found() {
    let (resolved, _, _) = resolve(&["{name: echo, port: 81}"], ServiceProtocol::Http);
    assert_eq!(resolved.resolved_refs.reason, "BackendNotFound");
    assert!(resolved.resolved_refs.message.contains("no port 81"));
}

#[test]
fn an_external_name_service_is_not_forwarded_to() {
    let (resolved, _, _) = resolve(&["{name: dns, port: 80}"], ServiceProtocol::Http);
    assert_eq!(resolved.resolved_refs.reason, "BackendNotFound");
    assert!(resolved.resolved_refs.message.contains("ExternalName"));
}

#[test]
fn a_cross_namespace_service_needs_a_reference_grant() {
    let (resolved, _, _) = resolve(&["{name: private, namespace: other, port: 80}"], ServiceProtocol::Http);
    assert_eq!(resolved.resolved_refs.reason, "RefNotPermitted");
    let (resolved, _, _) = resolve(&["{name: shared, namespace: other, port: 80}"], ServiceProtocol::Http);
    assert!(resolved.resolved_refs.ok);
    assert_eq!(resolved.service.as_deref(), Some("other.shared.80"));
}

#[test]
fn a_grant_for_another_route_kind_does_not_count() {
    let (resolved, _, _) = resolve(&["{name: shared, namespace: other, port: 80}"], ServiceProtocol::Http);
    assert!(resolved.resolved_refs.ok);
    // The grant names HTTPRoute; the same ref from a GRPCRoute view would be refused. Checked
    // through the grant function itself, which the resolution calls with the route's kind.
    let snapshot = Snapshot::from_yaml(OBJECTS);
    let reference = CrossNamespaceRef {
        from_group: GATEWAY_API_GROUP,
        from_kind: "GRPCRoute",
        from_namespace: "app",
        to_group: "",
        to_kind: "Service",
        to_namespace: "other",
        to_name: "shared",
    };
    assert!(!reference_permitted(&reference, &snapshot.grants));
}

#[test]
fn app_protocol_h2c_makes_the_service_speak_http2_cleartext() {
    let (_, services, _) = resolve(&["{name: grpc, port: 50051}"], ServiceProtocol::Http);
    assert_eq!(services[0].protocol, "grpc");
}

#[test]
fn app_protocol_websocket_stays_http() {
    let (resolved, services, _) = resolve(&["{name: ws, port: 80}"], ServiceProtocol::Http);
    assert!(resolved.resolved_refs.ok);
    assert_eq!(services[0].protocol, "http");
}

#[test]
fn an_unknown_app_protocol_is_unsupported_protocol() {
    let (resolved, _, _) = resolve(&["{name: odd, port: 3306}"], ServiceProtocol::Http);
    assert_eq!(resolved.resolved_refs.reason, "UnsupportedProtocol");
}

#[test]
fn websocket_backends_cannot_serve_grpc() {
    let (resolved, _, _) = resolve(&["{name: ws, port: 80}"], ServiceProtocol::Grpc);
    assert_eq!(resolved.resolved_refs.reason, "UnsupportedProtocol");
}

#[test]
fn a_udp_port_cannot_serve_http_and_a_tcp_port_cannot_serve_udp() {
    let (resolved, _, _) = resolve(&["{name: dns-udp, port: 53}"], ServiceProtocol::Http);
    assert_eq!(resolved.resolved_refs.reason, "UnsupportedProtocol");
    let (resolved, _, _) = resolve(&["{name: echo, port: 80}"], ServiceProtocol::Udp);
    assert_eq!(resolved.resolved_refs.reason, "UnsupportedProtocol");
    let (resolved, services, _) = resolve(&["{name: dns-udp, port: 53}"], ServiceProtocol::Udp);
    assert!(resolved.resolved_refs.ok);
    assert_eq!(services[0].protocol, "udp");
}

#[test]
fn backends_needing_different_protocols_cannot_share_a_rule() {
    let (resolved, services, _) = resolve(
        &["{name: echo, port: 80}", "{name: grpc, port: 50051}"],
        ServiceProtocol::Http,
    );
    assert_eq!(resolved.resolved_refs.reason, "UnsupportedProtocol");
    assert_eq!(services[0].protocol, "http");
}

#[test]
fn each_backend_gets_its_weight_spread_over_its_endpoints() {
    // echo: 2 endpoints at weight 3; ws: 1 endpoint at weight 1 → 3/2 : 3/2 : 1 = 3 : 3 : 2.
    let (_, _, upstreams) = resolve(
        &["{name: echo, port: 80, weight: 3}", "{name: ws, port: 80, weight: 1}"],
        ServiceProtocol::Http,
    );
    assert_eq!(
        targets(&upstreams[0]),
        [("10.0.0.1:8080", 3), ("10.0.0.2:8080", 3), ("10.0.1.1:8080", 2)]
    );
}

#[test]
fn weight_zero_backends_carry_no_traffic() {
    let (_, _, upstreams) = resolve(
        &["{name: echo, port: 80, weight: 0}", "{name: ws, port: 80}"],
        ServiceProtocol::Http,
    );
    assert_eq!(targets(&upstreams[0]), [("10.0.1.1:8080", 1)]);
    assert_eq!(upstreams[0].name, "app.ws.80");
}

#[test]
fn only_weight_zero_backends_leave_the_rule_without_service() {
    let (resolved, _, _) = resolve(&["{name: echo, port: 80, weight: 0}"], ServiceProtocol::Http);
    assert_eq!(resolved.service, None);
}

#[test]
fn weights_too_large_for_kong_are_scaled_and_keep_every_backend() {
    let shares = [
        ("a", 1_000_000_u64, vec!["a".to_string()]),
        ("b", 1, vec!["b".to_string()]),
    ];
    let weights = target_weights(shares.iter().map(|(_, w, t)| (*w, t.as_slice())));
    assert_eq!(weights.get("a"), Some(&65535));
    assert_eq!(weights.get("b"), Some(&1));
}

#[test]
fn exact_weights_are_reduced_to_lowest_terms() {
    let three: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let seven: Vec<String> = (0..7).map(|i| format!("x{i}")).collect();
    let weights = target_weights([(80, three.as_slice()), (20, seven.as_slice())].into_iter());
    // 80/3 : 20/7 = 560 : 60 = 28 : 3.
    assert_eq!(weights.get("a"), Some(&28));
    assert_eq!(weights.get("x0"), Some(&3));
}

#[test]
fn huge_endpoint_counts_fall_back_to_approximate_weights() {
    // Coprime endpoint counts whose product overflows 128 bits.
    let primes = [
        1009_usize, 1013, 1019, 1021, 1031, 1033, 1039, 1049, 1051, 1061, 1063, 1069, 1087,
    ];
    let lists: Vec<Vec<String>> = primes
        .iter()
        .enumerate()
        .map(|(i, n)| (0..*n).map(|j| format!("{i}-{j}")).collect())
        .collect();
    let weights = target_weights(lists.iter().map(|l| (1_000_000, l.as_slice())));
    assert!(weights.values().all(|w| (1..=65535).contains(w)));
    assert_eq!(weights.values().max(), Some(&65535));
}

#[test]
fn a_target_shared_by_two_backends_gets_both_shares() {
    let shared = vec!["10.0.0.1:80".to_string()];
    let weights = target_weights([(1, shared.as_slice()), (2, shared.as_slice())].into_iter());
    assert_eq!(weights.len(), 1);
}

#[test]
fn the_unresolved_share_of_http_requests_answers_500() {
    let (resolved, services, _) = resolve(
        &["{name: ws, port: 80, weight: 3}", "{name: nope, port: 80, weight: 1}"],
        ServiceProtocol::Http,
    );
    assert_eq!(resolved.resolved_refs.reason, "BackendNotFound");
    let plugin = &services[0].plugins[0];
    assert_eq!(plugin.name, "pre-function");
    let code = plugin.config["access"][0].as_str().unwrap_or_default();
    assert!(code.starts_with("local n = math.random(4)"), "{code}");
    assert!(code.contains("if n <= 1 then return kong.response.exit(500"), "{code}");
}

#[test]
fn the_unresolved_share_of_grpc_calls_answers_503_which_kong_sends_as_unavailable() {
    let refs = ["{name: grpc, port: 50051}", "{name: nope, port: 80}"];
    let (grpc, services, _) = resolve(&refs, ServiceProtocol::Grpc);
    let code = services[0].plugins[0].config["access"][0].as_str().unwrap_or_default();
    assert!(code.contains("if n <= 1 then return kong.response.exit(503"), "{code}");
    // An HTTPRoute to the same h2c backends speaks `grpc` to them too, but answers 500: the
    // two must not share a service.
    let (http, services, _) = resolve(&refs, ServiceProtocol::Http);
    let code = services[0].plugins[0].config["access"][0].as_str().unwrap_or_default();
    assert!(code.contains("if n <= 1 then return kong.response.exit(500"), "{code}");
    assert_ne!(grpc.service, http.service);
}

#[test]
fn the_share_of_a_service_without_ready_endpoints_answers_503() {
    let (resolved, services, upstreams) = resolve(
        &["{name: ws, port: 80}", "{name: empty, port: 80}"],
        ServiceProtocol::Http,
    );
    assert!(resolved.resolved_refs.ok);
    let code = services[0].plugins[0].config["access"][0].as_str().unwrap_or_default();
    assert!(code.contains("if n <= 1 then return kong.response.exit(503"), "{code}");
    assert_eq!(targets(&upstreams[0]), [("10.0.1.1:8080", 1)]);
}

#[test]
fn a_service_without_ready_endpoints_alone_still_gets_a_kong_service() {
    let (resolved, services, upstreams) = resolve(&["{name: empty, port: 80}"], ServiceProtocol::Http);
    assert!(resolved.resolved_refs.ok);
    assert!(resolved.service.is_some());
    assert!(upstreams[0].targets.is_empty());
    assert_eq!(services[0].plugins.len(), 1);
}

#[test]
fn no_resolved_backend_leaves_an_http_rule_without_service() {
    let (resolved, services, _) = resolve(
        &["{name: nope, port: 80}", "{name: private, namespace: other, port: 80}"],
        ServiceProtocol::Http,
    );
    assert_eq!(resolved.service, None);
    assert!(services.is_empty());
    // The first failure names the reason; the message lists both.
    assert_eq!(resolved.resolved_refs.reason, "BackendNotFound");
    assert!(resolved.resolved_refs.message.contains("backendRef 1"));
}

#[test]
fn the_unservable_share_of_stream_connections_is_rejected() {
    let (resolved, services, upstreams) = resolve(
        &["{name: echo, port: 80}", "{name: nope, port: 80}"],
        ServiceProtocol::Tcp,
    );
    assert!(resolved.service.is_some());
    assert_eq!(services[0].retries, Some(0));
    assert!(services[0].plugins.is_empty());
    // echo's two endpoints share 1/2, the rejected target the other 1/2.
    assert_eq!(
        targets(&upstreams[0]),
        [("10.0.0.1:8080", 1), ("10.0.0.2:8080", 1), ("[::1]:1", 2)]
    );
}

#[test]
fn a_stream_rule_without_any_backend_rejects_every_connection() {
    let (resolved, _, upstreams) = resolve(&["{name: nope, port: 80}"], ServiceProtocol::Tcp);
    assert!(resolved.service.is_some());
    assert_eq!(targets(&upstreams[0]), [("[::1]:1", 1)]);
}

#[test]
fn equal_backend_sets_share_one_service_whatever_the_order_and_scale_of_weights() {
    let snapshot = Snapshot::from_yaml(OBJECTS);
    let input = snapshot.input();
    let views = snapshot.routes.views();
    let mut backends = Backends::new(&input);
    let a = backends.resolve(
        &views[0],
        &[backend("{name: echo, port: 80}"), backend("{name: ws, port: 80}")],
        ServiceProtocol::Http,
    );
    let b = backends.resolve(
        &views[0],
        &[
            backend("{name: ws, port: 80, weight: 50}"),
            backend("{name: echo, port: 80, weight: 50}"),
        ],
        ServiceProtocol::Http,
    );
    assert_eq!(a.service, b.service);
    let (services, _) = backends.finish();
    assert_eq!(services.len(), 1);
    assert!(services[0].name.starts_with("app.echo.80."));
}

#[test]
fn the_same_backend_for_another_protocol_is_another_service() {
    let snapshot = Snapshot::from_yaml(OBJECTS);
    let input = snapshot.input();
    let views = snapshot.routes.views();
    let mut backends = Backends::new(&input);
    let http = backends.resolve(&views[0], &[backend("{name: echo, port: 80}")], ServiceProtocol::Http);
    let tcp = backends.resolve(&views[0], &[backend("{name: echo, port: 80}")], ServiceProtocol::Tcp);
    assert_eq!(http.service.as_deref(), Some("app.echo.80"));
    assert_eq!(tcp.service.as_deref(), Some("app.echo.80.tcp"));
}

#[test]
fn combined_resolved_refs_keep_the_first_reason_and_every_message() {
    let verdicts = [
        Verdict::ok(reasons::RESOLVED_REFS, "ok"),
        Verdict::fail(reasons::INVALID_KIND, "a"),
        Verdict::fail(reasons::BACKEND_NOT_FOUND, "b"),
    ];
    let combined = combine_resolved_refs(&verdicts);
    assert_eq!(combined.reason, "InvalidKind");
    assert_eq!(combined.message, "a; b");
    assert!(combine_resolved_refs(&verdicts[..1]).ok);
}
