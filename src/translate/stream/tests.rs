//! Stream routes: passthrough and terminate by SNI, TCP and UDP by port.

use atc_router::ast::{Type, Value};
use atc_router::context::{Context as AtcContext, Match};
use atc_router::interpreter::Execute;
use atc_router::schema::Schema;
use atc_router::semantics::Validate;

use super::*;
use crate::translate::attach::{self, Context};
use crate::translate::testing::Snapshot;

const OBJECTS: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: kongress
  listeners:
  - {name: pass, port: 443, protocol: TLS, tls: {mode: Passthrough}}
  - name: term
    port: 8443
    protocol: TLS
    hostname: "*.example.com"
    tls: {mode: Terminate, certificateRefs: [{name: cert}]}
  - {name: tcp, port: 9000, protocol: TCP}
  - {name: tcp2, port: 9001, protocol: TCP}
  - {name: udp, port: 5353, protocol: UDP}
---
apiVersion: v1
kind: Secret
metadata: {name: cert, namespace: infra}
type: kubernetes.io/tls
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: infra}
spec:
  ports: [{port: 443}, {name: dns, port: 53, protocol: UDP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: backend-1, namespace: infra, labels: {kubernetes.io/service-name: backend}}
addressType: IPv4
ports: [{port: 443}, {name: dns, port: 53, protocol: UDP}]
endpoints: [{addresses: [10.0.0.1]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: exact, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: pass}]
  hostnames: [a.example.com]
  rules: [{backendRefs: [{name: backend, port: 443}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: wild, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  hostnames: ["*.example.com"]
  rules: [{backendRefs: [{name: backend, port: 443}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: tcp, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: tcp}, {name: gw, sectionName: tcp2}]
  rules:
  - backendRefs: [{name: backend, port: 443}]
  - backendRefs: [{name: missing, port: 443}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: UDPRoute
metadata: {name: udp, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: backend, port: 53}]}]
"#;

/// Translates the stream route `infra/<name>` of the fixture.
fn translate_route(name: &str) -> RuleOutcome {
    let snapshot = Snapshot::from_yaml(OBJECTS);
    let input = snapshot.input();
    let context = Context::new(&input);
    let mut backends = Backends::new(&input);
    let views = snapshot.routes.views();
    let view = views
        .iter()
        .find(|v| v.route.key.name == name)
        .expect("route in fixture");
    let parents = attach::attach(&context, view);
    let attachments: Vec<&Attachment> = parents.iter().flat_map(|p| p.attachments.iter()).collect();
    translate(view, &attachments, &mut backends)
}

fn schema() -> Schema {
    let mut schema = Schema::default();
    schema.add_field("tls.sni", Type::String);
    schema.add_field("net.protocol", Type::String);
    schema.add_field("net.dst.port", Type::Int);
    schema
}

/// Whether Kong's router engine matches `expression` for a connection to `port` with `sni`.
fn matches(expression: &str, port: i64, sni: Option<&str>) -> bool {
    let schema = schema();
    let ast = atc_router::parser::parse(expression).expect("expression parses");
    ast.validate(&schema).expect("expression fits Kong's stream schema");
    let mut context = AtcContext::new(&schema);
    context.add_value("net.dst.port", Value::Int(port));
    if let Some(sni) = sni {
        context.add_value("tls.sni", Value::String(sni.to_string()));
    }
    ast.execute(&mut context, &mut Match::new())
}

fn routes(outcome: &RuleOutcome) -> Vec<(&str, &str, &str)> {
    outcome
        .routes
        .iter()
        .map(|r| {
            (
                r.route.name.as_str(),
                r.route.protocols[0].as_str(),
                r.route.expression.as_str(),
            )
        })
        .collect()
}

#[test]
fn a_passthrough_tls_route_matches_its_sni_on_its_listener_port() {
    let outcome = translate_route("exact");
    assert_eq!(
        routes(&outcome),
        [(
            "tlsroute.infra.exact.0.0",
            "tls_passthrough",
            r#"net.dst.port == 443 && tls.sni == "a.example.com""#
        )]
    );
    let expression = &outcome.routes[0].route.expression;
    assert!(matches(expression, 443, Some("a.example.com")));
    assert!(!matches(expression, 443, Some("b.example.com")));
    assert!(!matches(expression, 8443, Some("a.example.com")));
}

#[test]
fn a_wildcard_sni_matches_any_depth_but_not_the_apex() {
    let outcome = translate_route("wild");
    let passthrough = outcome
        .routes
        .iter()
        .find(|r| r.route.protocols == ["tls_passthrough"])
        .expect("passthrough route");
    assert!(matches(&passthrough.route.expression, 443, Some("a.example.com")));
    assert!(matches(&passthrough.route.expression, 443, Some("a.b.example.com")));
    assert!(!matches(&passthrough.route.expression, 443, Some("example.com")));
    assert!(!matches(&passthrough.route.expression, 443, Some("aexample.com")));
    assert_eq!(passthrough.precedence.wildcard_host_len, 13);
    assert_eq!(passthrough.precedence.exact_host_len, 0);
}

#[test]
fn a_tls_route_on_a_terminate_listener_uses_the_tls_protocol() {
    let outcome = translate_route("wild");
    assert_eq!(
        routes(&outcome),
        [
            (
                "tlsroute.infra.wild.0.0",
                "tls",
                r#"net.dst.port == 8443 && tls.sni =^ ".example.com""#
            ),
            (
                "tlsroute.infra.wild.0.1",
                "tls_passthrough",
                r#"net.dst.port == 443 && tls.sni =^ ".example.com""#
            ),
        ]
    );
}

#[test]
fn exact_sni_routes_rank_above_wildcard_ones() {
    let exact = translate_route("exact");
    assert_eq!(exact.routes[0].precedence.exact_host_len, 13);
    assert_eq!(exact.routes[0].precedence.path, PathPrecedence::None);
}

#[test]
fn a_tcp_route_matches_the_ports_of_its_listeners() {
    let outcome = translate_route("tcp");
    assert_eq!(
        routes(&outcome),
        [(
            "tcproute.infra.tcp.0.0",
            "tcp",
            "(net.dst.port == 9000 || net.dst.port == 9001)"
        )]
    );
    assert!(matches(&outcome.routes[0].route.expression, 9001, None));
    assert!(!matches(&outcome.routes[0].route.expression, 9002, None));
    assert_eq!(outcome.routes[0].service.as_deref(), Some("infra.backend.443.tcp"));
}

#[test]
fn only_the_first_rule_of_a_tcp_route_is_served_but_all_are_resolved() {
    let outcome = translate_route("tcp");
    assert_eq!(outcome.routes.len(), 1);
    assert_eq!(outcome.resolved_refs.reason, "BackendNotFound");
}

#[test]
fn a_udp_route_matches_its_listener_port_with_the_udp_protocol() {
    let outcome = translate_route("udp");
    assert_eq!(
        routes(&outcome),
        [("udproute.infra.udp.0.0", "udp", "net.dst.port == 5353")]
    );
    assert_eq!(outcome.routes[0].service.as_deref(), Some("infra.backend.53.udp"));
    assert!(outcome.resolved_refs.ok);
}

#[test]
fn string_literals_escape_what_the_grammar_requires() {
    let literal = string_literal("a\"b\\c\nd");
    assert_eq!(literal, r#""a\"b\\c\nd""#);
    let expression = format!("tls.sni == {literal}");
    let schema = schema();
    let ast = atc_router::parser::parse(&expression).expect("escaped literal parses");
    let mut context = AtcContext::new(&schema);
    context.add_value("tls.sni", Value::String("a\"b\\c\nd".to_string()));
    assert!(ast.execute(&mut context, &mut Match::new()));
}
