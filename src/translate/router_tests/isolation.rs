//! Listener isolation (Gateway API v1.5 `Gateway.spec.listeners`, feature
//! `GatewayHTTPListenerIsolation`): a request is matched only against the routes of the most
//! specific listener on its port whose hostname matches it. Whole translations (planner
//! included) go through Kong's router, since isolation depends on the other listeners of the
//! class, not only on the route's own.

use super::{KongRouter, get, kong};
use crate::translate::testing::Snapshot;

/// Kong's router over the config a translation of `objects` pushes.
fn translated(objects: &str) -> KongRouter {
    let translation = Snapshot::from_yaml(objects).translate();
    let config = &translation.config;
    let routes: Vec<(u64, &kong::Route)> = config
        .services
        .iter()
        .flat_map(|s| s.routes.iter())
        .chain(config.routes.iter())
        .map(|entry| (entry.priority, entry.route.as_ref()))
        .collect();
    KongRouter::of(routes.into_iter())
}

impl KongRouter {
    /// The Kubernetes name of the route Kong picks (`<kind>.<namespace>.<name>.…`).
    fn owner(&self, request: &super::Request) -> Option<String> {
        self.route(request)
            .and_then(|name| name.split('.').nth(2).map(str::to_string))
    }
}

const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: infra}
spec:
  ports: [{port: 80}]
"#;

/// An HTTPRoute in `infra` on `parent` (`gateway` or `gateway/section`) for one path prefix.
fn http_route(name: &str, parent: &str, hostnames: &[&str], path: &str) -> String {
    let (gateway, section) = parent.split_once('/').unwrap_or((parent, ""));
    let section = if section.is_empty() {
        String::new()
    } else {
        format!(", sectionName: {section}")
    };
    let hostnames = hostnames
        .iter()
        .map(|h| format!("\"{h}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: infra}}
spec:
  parentRefs: [{{name: {gateway}{section}}}]
  hostnames: [{hostnames}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
    backendRefs: [{{name: echo, port: 80}}]
"#
    )
}

/// A Gateway of class `kongress` in `infra` with HTTP listeners `(name, port, hostname)`.
fn gateway(name: &str, listeners: &[(&str, u16, &str)]) -> String {
    let listeners: String = listeners
        .iter()
        .map(|(listener, port, hostname)| {
            let hostname = if hostname.is_empty() {
                String::new()
            } else {
                format!(", hostname: \"{hostname}\"")
            };
            format!("\n  - {{name: {listener}, port: {port}, protocol: HTTP{hostname}}}")
        })
        .collect();
    format!(
        r#"
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: infra}}
spec:
  gatewayClassName: kongress
  listeners:{listeners}
"#
    )
}

#[test]
fn a_host_claimed_by_an_exact_listener_never_reaches_the_wildcard_listeners_routes() {
    let objects = [
        SERVICE.to_string(),
        gateway("gw", &[("wild", 80, "*.example.com"), ("foo", 80, "foo.example.com")]),
        http_route("wild", "gw/wild", &[], "/only-wildcard-path"),
        http_route("foo", "gw/foo", &[], "/foo-path"),
    ]
    .concat();
    let kong = translated(&objects);
    assert_eq!(kong.owner(&get("http://foo.example.com/only-wildcard-path")), None);
    assert_eq!(
        kong.owner(&get("http://bar.example.com/only-wildcard-path")).as_deref(),
        Some("wild")
    );
    assert_eq!(
        kong.owner(&get("http://a.b.example.com/only-wildcard-path")).as_deref(),
        Some("wild")
    );
    assert_eq!(
        kong.owner(&get("http://FOO.example.com/foo-path")).as_deref(),
        Some("foo")
    );
    assert_eq!(kong.owner(&get("http://bar.example.com/foo-path")), None);
}

#[test]
fn isolation_holds_across_gateways_of_one_class_on_one_port() {
    let objects = [
        SERVICE.to_string(),
        gateway("wide", &[("wild", 80, "*.example.com")]),
        gateway("narrow", &[("foo", 80, "foo.example.com")]),
        http_route("wild", "wide", &[], "/only-wildcard-path"),
        http_route("foo", "narrow", &[], "/foo-path"),
    ]
    .concat();
    let kong = translated(&objects);
    assert_eq!(kong.owner(&get("http://foo.example.com/only-wildcard-path")), None);
    assert_eq!(
        kong.owner(&get("http://bar.example.com/only-wildcard-path")).as_deref(),
        Some("wild")
    );
    assert_eq!(
        kong.owner(&get("http://foo.example.com/foo-path")).as_deref(),
        Some("foo")
    );
}

#[test]
fn a_listener_without_hostname_gets_only_hosts_no_other_listener_on_its_port_claims() {
    let objects = [
        SERVICE.to_string(),
        gateway(
            "gw",
            &[
                ("any", 80, ""),
                ("foo", 80, "foo.example.com"),
                ("alt", 8080, "*.example.com"),
            ],
        ),
        http_route("all", "gw/any", &[], "/"),
        http_route("foo", "gw/foo", &[], "/foo-path"),
    ]
    .concat();
    let kong = translated(&objects);
    assert_eq!(kong.owner(&get("http://other.com/x")).as_deref(), Some("all"));
    assert_eq!(kong.owner(&get("http://bar.example.com/x")).as_deref(), Some("all"));
    assert_eq!(kong.owner(&get("http://foo.example.com/x")), None);
    assert_eq!(
        kong.owner(&get("http://foo.example.com/foo-path")).as_deref(),
        Some("foo")
    );
    // A listener on another port claims nothing on this one.
    assert_eq!(kong.owner(&get("http://foo.example.com:8080/x")), None);
}

/// The conformance test `GatewayHTTPListenerIsolation`, second half: route hostnames that
/// intersect more specific listeners are cut back to what their own listener keeps.
#[test]
fn route_hostnames_intersecting_more_specific_listeners_are_isolated_as_in_conformance() {
    let hostnames = ["bar.com", "*.example.com", "*.foo.example.com", "abc.foo.example.com"];
    let objects = [
        SERVICE.to_string(),
        gateway(
            "gw",
            &[
                ("empty-hostname", 80, ""),
                ("wildcard-example-com", 80, "*.example.com"),
                ("wildcard-foo-example-com", 80, "*.foo.example.com"),
                ("abc-foo-example-com", 80, "abc.foo.example.com"),
            ],
        ),
        http_route("empty", "gw/empty-hostname", &hostnames, "/empty-hostname"),
        http_route("wild", "gw/wildcard-example-com", &hostnames, "/wildcard-example-com"),
        http_route(
            "wildfoo",
            "gw/wildcard-foo-example-com",
            &hostnames,
            "/wildcard-foo-example-com",
        ),
        http_route("abc", "gw/abc-foo-example-com", &hostnames, "/abc-foo-example-com"),
    ]
    .concat();
    let kong = translated(&objects);
    let owners = [
        ("bar.com", "empty"),
        ("bar.example.com", "wild"),
        ("bar.foo.example.com", "wildfoo"),
        ("abc.foo.example.com", "abc"),
    ];
    let paths = [
        ("/empty-hostname", "empty"),
        ("/wildcard-example-com", "wild"),
        ("/wildcard-foo-example-com", "wildfoo"),
        ("/abc-foo-example-com", "abc"),
    ];
    for (host, owner) in owners {
        for (path, route) in paths {
            let want = (route == owner).then(|| route.to_string());
            assert_eq!(kong.owner(&get(&format!("http://{host}{path}"))), want, "{host}{path}");
        }
    }
}

#[test]
fn identical_listeners_shared_by_gateways_serve_the_routes_of_both() {
    let objects = [
        SERVICE.to_string(),
        gateway("one", &[("wild", 80, "*.example.com")]),
        gateway("two", &[("wild", 80, "*.example.com")]),
        gateway("three", &[("foo", 80, "foo.example.com")]),
        http_route("one", "one", &[], "/one"),
        http_route("two", "two", &[], "/two"),
    ]
    .concat();
    let kong = translated(&objects);
    assert_eq!(kong.owner(&get("http://bar.example.com/one")).as_deref(), Some("one"));
    assert_eq!(kong.owner(&get("http://bar.example.com/two")).as_deref(), Some("two"));
    assert_eq!(kong.owner(&get("http://foo.example.com/one")), None);
    assert_eq!(kong.owner(&get("http://foo.example.com/two")), None);
}

#[test]
fn a_tls_server_name_claimed_by_a_more_specific_listener_never_reaches_wider_listeners_routes() {
    let objects = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: kongress
  listeners:
  - {name: any, port: 443, protocol: TLS, tls: {mode: Passthrough}}
  - {name: wild, port: 443, protocol: TLS, hostname: "*.example.com", tls: {mode: Passthrough}}
  - {name: foo, port: 443, protocol: TLS, hostname: foo.example.com, tls: {mode: Passthrough}}
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: infra}
spec:
  ports: [{port: 443}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: exact, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: any}]
  hostnames: [other.com, "*.example.com"]
  rules: [{backendRefs: [{name: backend, port: 443}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: deep, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: any}]
  hostnames: ["*.com"]
  rules: [{backendRefs: [{name: backend, port: 443}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: wild, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: wild}]
  hostnames: ["*.example.com"]
  rules: [{backendRefs: [{name: backend, port: 443}]}]
"#;
    let kong = translated(objects);
    let tls = |sni: &str| get("https://ignored/").sni(sni);
    assert_eq!(kong.owner(&tls("other.com")).as_deref(), Some("exact"));
    assert_eq!(kong.owner(&tls("x.other.com")).as_deref(), Some("deep"));
    assert_eq!(kong.owner(&tls("bar.example.com")).as_deref(), Some("wild"));
    assert_eq!(kong.owner(&tls("a.bar.example.com")).as_deref(), Some("wild"));
    assert_eq!(kong.owner(&tls("foo.example.com")), None);
}
