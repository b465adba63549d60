//! Attachment rules, one test per rule of the Gateway API spec (v1.5).

use super::*;
use crate::translate::testing::Snapshot;

/// A Gateway in `infra` with HTTP listeners on 80 (any host, same namespace), 8080 (one host,
/// all namespaces) and 8081 (namespaces labelled `team: a`), a TCP listener on 9000 and a
/// TLS passthrough listener on 443 for `*.example.com`.
const GATEWAY: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: kongress
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - name: foo
    port: 8080
    protocol: HTTP
    hostname: foo.example.com
    allowedRoutes: {namespaces: {from: All}}
  - name: team-a
    port: 8081
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Selector
        selector: {matchLabels: {team: a}}
  - {name: tcp, port: 9000, protocol: TCP, allowedRoutes: {namespaces: {from: All}}}
  - name: tls
    port: 443
    protocol: TLS
    hostname: "*.example.com"
    tls: {mode: Passthrough}
    allowedRoutes: {namespaces: {from: All}}
---
apiVersion: v1
kind: Namespace
metadata: {name: apps, labels: {team: a}}
"#;

/// What attachment decided for each owned parentRef: reason, attached listeners, and the
/// hostnames of each served attachment.
#[derive(Debug, PartialEq)]
struct Outcome {
    reason: &'static str,
    listeners: Vec<String>,
    served: Vec<(String, Hostnames)>,
}

fn attach_first_route(route: &str) -> Vec<Outcome> {
    let snapshot = Snapshot::from_yaml(&format!("{GATEWAY}\n---\n{route}"));
    let input = snapshot.input();
    let context = Context::new(&input);
    let views = snapshot.routes.views();
    let view = views.first().expect("one route in the fixture");
    attach(&context, view)
        .into_iter()
        .map(|p| Outcome {
            reason: p.accepted.reason,
            listeners: p
                .listeners
                .into_iter()
                .map(|l| context.listener_key(l).listener.clone())
                .collect(),
            served: p
                .attachments
                .into_iter()
                .map(|a| (a.listener.listener, a.hostnames))
                .collect(),
        })
        .collect()
}

fn http_route(namespace: &str, parent_refs: &str, hostnames: &str) -> String {
    format!(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r, namespace: {namespace}}}
spec:
  parentRefs: {parent_refs}
  hostnames: {hostnames}
  rules: [{{backendRefs: [{{name: svc, port: 80}}]}}]
"#
    )
}

fn reasons(outcomes: &[Outcome]) -> Vec<&'static str> {
    outcomes.iter().map(|o| o.reason).collect()
}

fn listeners(outcome: &Outcome) -> Vec<&str> {
    outcome.listeners.iter().map(String::as_str).collect()
}

#[test]
fn a_parent_ref_without_section_name_attaches_to_every_listener_that_admits_the_route() {
    let outcomes = attach_first_route(&http_route("infra", "[{name: gw}]", "[]"));
    assert_eq!(reasons(&outcomes), ["Accepted"]);
    // team-a: infra is not labelled team=a; tcp and tls: wrong kind.
    assert_eq!(listeners(&outcomes[0]), ["http", "foo"]);
}

#[test]
fn section_name_selects_the_listener_of_that_name() {
    let outcomes = attach_first_route(&http_route("infra", "[{name: gw, sectionName: foo}]", "[]"));
    assert_eq!(listeners(&outcomes[0]), ["foo"]);
}

#[test]
fn an_unknown_section_name_is_no_matching_parent() {
    let outcomes = attach_first_route(&http_route("infra", "[{name: gw, sectionName: nope}]", "[]"));
    assert_eq!(reasons(&outcomes), ["NoMatchingParent"]);
    assert!(outcomes[0].listeners.is_empty());
}

#[test]
fn port_selects_the_listeners_on_that_port() {
    let outcomes = attach_first_route(&http_route("infra", "[{name: gw, port: 8080}]", "[]"));
    assert_eq!(listeners(&outcomes[0]), ["foo"]);
}

#[test]
fn a_port_no_listener_uses_is_no_matching_parent() {
    let outcomes = attach_first_route(&http_route("infra", "[{name: gw, port: 1234}]", "[]"));
    assert_eq!(reasons(&outcomes), ["NoMatchingParent"]);
}

#[test]
fn section_name_and_port_must_both_match_the_same_listener() {
    let outcomes = attach_first_route(&http_route("infra", "[{name: gw, sectionName: foo, port: 80}]", "[]"));
    assert_eq!(reasons(&outcomes), ["NoMatchingParent"]);
}

#[test]
fn same_namespace_is_the_default_for_allowed_routes() {
    let outcomes = attach_first_route(&http_route(
        "other",
        "[{name: gw, namespace: infra, sectionName: http}]",
        "[]",
    ));
    assert_eq!(reasons(&outcomes), ["NotAllowedByListeners"]);
}

#[test]
fn from_all_admits_routes_of_every_namespace() {
    let outcomes = attach_first_route(&http_route("other", "[{name: gw, namespace: infra}]", "[]"));
    assert_eq!(reasons(&outcomes), ["Accepted"]);
    assert_eq!(listeners(&outcomes[0]), ["foo"]);
}

#[test]
fn from_selector_admits_routes_of_namespaces_whose_labels_match() {
    let outcomes = attach_first_route(&http_route(
        "apps",
        "[{name: gw, namespace: infra, sectionName: team-a}]",
        "[]",
    ));
    assert_eq!(reasons(&outcomes), ["Accepted"]);
    let outcomes = attach_first_route(&http_route(
        "other",
        "[{name: gw, namespace: infra, sectionName: team-a}]",
        "[]",
    ));
    assert_eq!(reasons(&outcomes), ["NotAllowedByListeners"]);
}

#[test]
fn selector_expressions_follow_label_selector_semantics() {
    let labels = BTreeMap::from([("team".to_string(), "a".to_string())]);
    let selector = |yaml: &str| -> Selector { serde_yaml_ng::from_str(yaml).expect("selector") };
    let cases = [
        ("{}", true),
        ("{matchExpressions: [{key: team, operator: In, values: [a, b]}]}", true),
        ("{matchExpressions: [{key: team, operator: NotIn, values: [a]}]}", false),
        ("{matchExpressions: [{key: tier, operator: NotIn, values: [a]}]}", true),
        ("{matchExpressions: [{key: team, operator: Exists}]}", true),
        ("{matchExpressions: [{key: team, operator: DoesNotExist}]}", false),
        ("{matchExpressions: [{key: team, operator: Sideways}]}", false),
        (
            "{matchLabels: {team: a}, matchExpressions: [{key: tier, operator: Exists}]}",
            false,
        ),
        ("{matchLabels: {kubernetes.io/metadata.name: apps}}", true),
    ];
    for (yaml, want) in cases {
        assert_eq!(selector_matches(&selector(yaml), "apps", Some(&labels)), want, "{yaml}");
    }
}

#[test]
fn from_selector_without_selector_admits_nothing() {
    let gateway = GATEWAY.replace("selector: {matchLabels: {team: a}}", "");
    let route = http_route("apps", "[{name: gw, namespace: infra, sectionName: team-a}]", "[]");
    let snapshot = Snapshot::from_yaml(&format!("{gateway}\n---\n{route}"));
    let input = snapshot.input();
    let views = snapshot.routes.views();
    let outcome = attach(&Context::new(&input), &views[0]);
    assert_eq!(outcome[0].accepted.reason, "NotAllowedByListeners");
}

#[test]
fn a_route_kind_the_listener_does_not_support_is_not_allowed() {
    let outcomes = attach_first_route(&http_route("infra", "[{name: gw, sectionName: tcp}]", "[]"));
    assert_eq!(reasons(&outcomes), ["NotAllowedByListeners"]);
    assert!(outcomes[0].listeners.is_empty());
}

#[test]
fn allowed_routes_kinds_narrow_what_a_listener_accepts() {
    let gateway = GATEWAY.replace(
        "- {name: http, port: 80, protocol: HTTP}",
        "- {name: http, port: 80, protocol: HTTP, allowedRoutes: {kinds: [{kind: GRPCRoute}]}}",
    );
    let route = http_route("infra", "[{name: gw, sectionName: http}]", "[]");
    let snapshot = Snapshot::from_yaml(&format!("{gateway}\n---\n{route}"));
    let input = snapshot.input();
    let views = snapshot.routes.views();
    let outcome = attach(&Context::new(&input), &views[0]);
    assert_eq!(outcome[0].accepted.reason, "NotAllowedByListeners");
}

#[test]
fn a_tcp_route_attaches_only_to_tcp_listeners() {
    let route = r#"
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: t, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: svc, port: 9000}]}]
"#;
    let outcomes = attach_first_route(route);
    assert_eq!(listeners(&outcomes[0]), ["tcp"]);
    assert_eq!(outcomes[0].served, [("tcp".to_string(), Hostnames::Any)]);
}

#[test]
fn a_tls_route_on_an_http_listener_is_not_allowed_by_listeners() {
    // Conformance (TLSRouteInvalidNoMatchingListener) expects NotAllowedByListeners here.
    let route = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: t, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [a.example.com]
  rules: [{backendRefs: [{name: svc, port: 443}]}]
"#;
    assert_eq!(reasons(&attach_first_route(route)), ["NotAllowedByListeners"]);
}

#[test]
fn a_tls_route_gets_the_intersection_with_a_wildcard_listener() {
    let route = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: t, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  hostnames: [a.b.example.com, other.net]
  rules: [{backendRefs: [{name: svc, port: 443}]}]
"#;
    let outcomes = attach_first_route(route);
    assert_eq!(
        outcomes[0].served,
        [("tls".to_string(), Hostnames::Only(vec!["a.b.example.com".to_string()]))]
    );
}

#[test]
fn route_hostnames_matching_no_listener_hostname_are_no_matching_listener_hostname() {
    let outcomes = attach_first_route(&http_route(
        "infra",
        "[{name: gw, sectionName: foo}]",
        "[bar.example.com]",
    ));
    assert_eq!(reasons(&outcomes), ["NoMatchingListenerHostname"]);
}

#[test]
fn one_listener_accepting_is_enough_for_the_gateway_to_accept() {
    // foo (foo.example.com) does not match, http (any host) does.
    let outcomes = attach_first_route(&http_route("infra", "[{name: gw}]", "[bar.example.com]"));
    assert_eq!(reasons(&outcomes), ["Accepted"]);
    assert_eq!(listeners(&outcomes[0]), ["http"]);
}

#[test]
fn a_listener_hostname_narrows_a_wildcard_route_hostname() {
    let outcomes = attach_first_route(&http_route(
        "infra",
        "[{name: gw, sectionName: foo}]",
        "['*.example.com']",
    ));
    assert_eq!(
        outcomes[0].served,
        [("foo".to_string(), Hostnames::Only(vec!["foo.example.com".to_string()]))]
    );
}

#[test]
fn parent_refs_to_other_gateways_or_kinds_are_not_ours() {
    let outcomes = attach_first_route(&http_route(
        "infra",
        "[{name: elsewhere}, {name: gw, kind: Service, group: ''}, {name: gw, namespace: other}, {name: gw, sectionName: http}]",
        "[]",
    ));
    assert_eq!(reasons(&outcomes), ["Accepted"]);
}

#[test]
fn each_owned_parent_ref_gets_its_own_verdict_in_spec_order() {
    let outcomes = attach_first_route(&http_route(
        "infra",
        "[{name: gw, sectionName: nope}, {name: gw, sectionName: http}]",
        "[]",
    ));
    assert_eq!(reasons(&outcomes), ["NoMatchingParent", "Accepted"]);
}

#[test]
fn a_route_on_a_listener_that_is_not_programmed_is_attached_but_not_served() {
    let gateway = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: kongress
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    tls: {certificateRefs: [{name: does-not-exist}]}
"#;
    let route = http_route("infra", "[{name: gw}]", "[]");
    let snapshot = Snapshot::from_yaml(&format!("{gateway}\n---\n{route}"));
    let input = snapshot.input();
    let views = snapshot.routes.views();
    let outcome = attach(&Context::new(&input), &views[0]);
    assert!(outcome[0].accepted.ok);
    assert_eq!(outcome[0].listeners.len(), 1);
    assert!(outcome[0].attachments.is_empty());
}

#[test]
fn hostnames_of_tcp_listeners_are_ignored() {
    let gateway = GATEWAY.replace(
        "- {name: tcp, port: 9000, protocol: TCP, allowedRoutes: {namespaces: {from: All}}}",
        "- {name: tcp, port: 9000, protocol: TCP, hostname: db.example.com}",
    );
    let route = r#"
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: t, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: svc, port: 9000}]}]
"#;
    let snapshot = Snapshot::from_yaml(&format!("{gateway}\n---\n{route}"));
    let input = snapshot.input();
    let views = snapshot.routes.views();
    let outcome = attach(&Context::new(&input), &views[0]);
    assert_eq!(outcome[0].attachments[0].hostnames, Hostnames::Any);
}

#[test]
fn each_listener_knows_the_widest_more_specific_hostnames_served_on_its_port() {
    // Two Gateways of the class share Kong. `one/wild` and `two/wild` are identical (shared);
    // `one/deep` and `one/deeper` nest, so only the wider is kept; `two/alt` is on another
    // port; `one/tcp` ignores hostnames; `one/bad` is not served (missing certificate).
    let snapshot = Snapshot::from_yaml(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: one, namespace: infra}
spec:
  gatewayClassName: kongress
  listeners:
  - {name: any, port: 80, protocol: HTTP}
  - {name: wild, port: 80, protocol: HTTP, hostname: "*.example.com"}
  - {name: deep, port: 80, protocol: HTTP, hostname: "*.a.example.com"}
  - {name: deeper, port: 80, protocol: HTTP, hostname: "b.a.example.com"}
  - {name: tcp, port: 9000, protocol: TCP}
  - name: bad
    port: 443
    protocol: HTTPS
    hostname: c.example.com
    tls: {certificateRefs: [{name: missing}]}
  - {name: secure, port: 443, protocol: HTTPS, hostname: "*.example.com", tls: {certificateRefs: [{name: cert}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: two, namespace: infra}
spec:
  gatewayClassName: kongress
  listeners:
  - {name: wild, port: 80, protocol: HTTP, hostname: "*.example.com"}
  - {name: exact, port: 80, protocol: HTTP, hostname: "x.example.com"}
  - {name: alt, port: 8080, protocol: HTTP, hostname: "y.example.com"}
---
apiVersion: v1
kind: Secret
metadata: {name: cert, namespace: infra}
type: kubernetes.io/tls
"#,
    );
    let input = snapshot.input();
    let context = Context::new(&input);
    let claimed = |gateway: &str, listener: &str| -> Vec<String> {
        let index = context
            .listener_keys()
            .iter()
            .position(|k| k.gateway.name == gateway && k.listener == listener)
            .expect("listener exists");
        context.more_specific[index].to_vec()
    };
    assert_eq!(claimed("one", "any"), ["*.example.com"]);
    assert_eq!(claimed("one", "wild"), ["*.a.example.com", "x.example.com"]);
    assert_eq!(claimed("two", "wild"), ["*.a.example.com", "x.example.com"]);
    assert_eq!(claimed("one", "deep"), ["b.a.example.com"]);
    assert!(claimed("one", "deeper").is_empty());
    assert!(claimed("two", "exact").is_empty());
    assert!(claimed("two", "alt").is_empty());
    assert!(claimed("one", "tcp").is_empty());
    assert!(claimed("one", "secure").is_empty(), "c.example.com is not served");
}
