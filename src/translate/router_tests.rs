//! Routing tests: the Kong routes kongress generates, loaded into atc-router the way Kong 3.9
//! loads them, answering synthetic requests. Each test names the Gateway API rule it checks.
//!
//! Kong's side, reproduced here (Kong 3.9 `kong/router/expressions.lua`, `atc.lua`,
//! `fields.lua`): the expression gets `&& (net.protocol == …)` from `protocols` unless they are
//! exactly `["https"]`; `http.host` is the Host header without its port; `net.dst.port` is the
//! Host header's port when it has one, else the socket's; every value of a repeated header or
//! query parameter is added to the field; routes are tried by descending priority.

use std::collections::BTreeMap;
use std::sync::Arc;

use atc_router::ast::Value;
use atc_router::context::Context;
use atc_router::router::Router;
use proptest::prelude::*;

use super::attach::{Attachment, Hostnames};
use super::backends::Backends;
use super::priority::{self, PendingRoute};
use super::routes::{GrpcRoute, HttpRoute, RouteSet, RouteView};
use super::{RuleOutcome, TranslateInput, grpc, http, kong, validate};
use crate::api::ObjectKey;
use crate::plan::{ClassPlan, ListenerKey, ListenerProtocol};

mod isolation;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

pub(super) fn http_route(yaml: &str) -> Arc<HttpRoute> {
    Arc::new(serde_yaml_ng::from_str(yaml).expect("HTTPRoute yaml"))
}

pub(super) fn grpc_route(yaml: &str) -> Arc<GrpcRoute> {
    Arc::new(serde_yaml_ng::from_str(yaml).expect("GRPCRoute yaml"))
}

/// A listener a route attached to, with the intersected hostnames (empty: any).
pub(super) fn listener(name: &str, port: u16, protocol: ListenerProtocol, hostnames: &[&str]) -> Attachment {
    Attachment {
        listener: ListenerKey {
            gateway: ObjectKey::new("infra", "gateway"),
            listener: name.to_string(),
        },
        port,
        protocol,
        hostnames: if hostnames.is_empty() {
            Hostnames::Any
        } else {
            Hostnames::Only(hostnames.iter().map(|h| h.to_string()).collect())
        },
        more_specific: Arc::default(),
    }
}

pub(super) fn http80() -> Attachment {
    listener("http", 80, ListenerProtocol::Http, &[])
}

/// The objects a `TranslateInput` borrows: a Service `default/echo` (port 80) and
/// `default/other` (port 8080) so backendRefs to them resolve.
pub(super) struct Fixture {
    plan: ClassPlan,
    routes: RouteSet,
    services: BTreeMap<ObjectKey, Arc<k8s_openapi::api::core::v1::Service>>,
    slices: BTreeMap<ObjectKey, Vec<Arc<k8s_openapi::api::discovery::v1::EndpointSlice>>>,
    secrets: BTreeMap<ObjectKey, Arc<k8s_openapi::api::core::v1::Secret>>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

impl Fixture {
    pub(super) fn new() -> Self {
        let service = |name: &str, port: i32| {
            let yaml = format!(
                "metadata: {{name: {name}, namespace: default}}\nspec: {{ports: [{{name: http, port: {port}, targetPort: 8080}}]}}"
            );
            let service: k8s_openapi::api::core::v1::Service = serde_yaml_ng::from_str(&yaml).expect("Service yaml");
            (ObjectKey::new("default", name), Arc::new(service))
        };
        Self {
            plan: ClassPlan::default(),
            routes: RouteSet::default(),
            services: BTreeMap::from([service("echo", 80), service("other", 8080)]),
            slices: BTreeMap::new(),
            secrets: BTreeMap::new(),
            namespaces: BTreeMap::new(),
        }
    }

    pub(super) fn input(&self) -> TranslateInput<'_> {
        TranslateInput {
            gateways: &[],
            plan: &self.plan,
            routes: &self.routes,
            services: &self.services,
            endpoint_slices: &self.slices,
            secrets: &self.secrets,
            grants: &[],
            namespaces: &self.namespaces,
        }
    }
}

/// One HTTPRoute through `http::translate` and `validate::keep_valid`.
pub(super) fn translate_http(yaml: &str, attachments: &[Attachment]) -> RuleOutcome {
    let fixture = Fixture::new();
    let input = fixture.input();
    let mut backends = Backends::new(&input);
    let route = http_route(yaml);
    let view = RouteView::http(&route);
    let attachments: Vec<&Attachment> = attachments.iter().collect();
    validate::keep_valid(&view, http::translate(&view, &route, &attachments, &mut backends))
}

/// One GRPCRoute through `grpc::translate` and `validate::keep_valid`.
pub(super) fn translate_grpc(yaml: &str, attachments: &[Attachment]) -> RuleOutcome {
    let fixture = Fixture::new();
    let input = fixture.input();
    let mut backends = Backends::new(&input);
    let route = grpc_route(yaml);
    let view = RouteView::grpc(&route);
    let attachments: Vec<&Attachment> = attachments.iter().collect();
    validate::keep_valid(&view, grpc::translate(&view, &route, &attachments, &mut backends))
}

/// A route of either kind with its attachments.
enum Input<'a> {
    Http(&'a str, Vec<Attachment>),
    Grpc(&'a str, Vec<Attachment>),
}

/// Every route translated, validated and given priorities, as the orchestrator does.
fn kong_routes(inputs: Vec<Input<'_>>) -> Vec<PendingRoute> {
    let mut all = Vec::new();
    for input in inputs {
        let outcome = match input {
            Input::Http(yaml, attachments) => translate_http(yaml, &attachments),
            Input::Grpc(yaml, attachments) => translate_grpc(yaml, &attachments),
        };
        assert!(outcome.accepted_problem.is_none(), "{:?}", outcome.accepted_problem);
        assert!(outcome.partially_invalid.is_none(), "{:?}", outcome.partially_invalid);
        all.extend(outcome.routes);
    }
    all
}

/// HTTPRoutes on one plain HTTP listener on port 80.
fn on_http80(routes: &[&str]) -> KongRouter {
    KongRouter::new(&kong_routes(
        routes.iter().map(|y| Input::Http(y, vec![http80()])).collect(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Kong's router
// ---------------------------------------------------------------------------------------------

/// The expression Kong evaluates: the route's, plus `net.protocol` from `protocols` unless
/// they are exactly one of https/tls/tls_passthrough (grpc counts as http, grpcs as https).
fn kong_expression(route: &kong::Route) -> String {
    if let [only] = route.protocols.as_slice()
        && matches!(only.as_str(), "https" | "tls" | "tls_passthrough")
    {
        return route.expression.clone();
    }
    let protocols: Vec<String> = route
        .protocols
        .iter()
        .map(|p| {
            let p = match p.as_str() {
                "grpc" => "http",
                "grpcs" => "https",
                "tls_passthrough" => "tcp",
                other => other,
            };
            format!("net.protocol == r#\"{p}\"#")
        })
        .collect();
    format!("{} && ({})", route.expression, protocols.join(" || "))
}

struct KongRouter {
    router: Router<'static>,
    names: BTreeMap<String, String>,
}

impl KongRouter {
    fn new(routes: &[PendingRoute]) -> Self {
        let priorities = priority::priorities(routes);
        Self::of(
            routes
                .iter()
                .zip(priorities)
                .map(|(pending, priority)| (priority, &pending.route)),
        )
    }

    /// Kong's router over Kong routes and their priorities (every field lives in the HTTP
    /// schema, `tls.sni` too).
    fn of<'r>(routes: impl Iterator<Item = (u64, &'r kong::Route)>) -> Self {
        let mut router = Router::new(validate::http_schema());
        let mut names = BTreeMap::new();
        for (i, (priority, route)) in routes.enumerate() {
            let uuid = format!("00000000-0000-0000-0000-{i:012x}");
            let priority = usize::try_from(priority).expect("priority fits");
            router
                .add_matcher(priority, uuid.parse().expect("uuid"), &kong_expression(route))
                .unwrap_or_else(|e| panic!("{}: {e}\n{}", route.name, route.expression));
            names.insert(uuid, route.name.clone());
        }
        Self { router, names }
    }

    /// The name of the Kong route Kong picks, and the regex captures of the match.
    fn matched(&self, request: &Request) -> Option<(String, BTreeMap<String, String>)> {
        let mut context = Context::new(validate::http_schema());
        request.fill(&mut context);
        if !self.router.execute(&mut context) {
            return None;
        }
        let result = context.result.as_ref()?;
        let name = self.names.get(&result.uuid.to_string())?.clone();
        Some((
            name,
            result.captures.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        ))
    }

    fn route(&self, request: &Request) -> Option<String> {
        self.matched(request).map(|(name, _)| name)
    }

    /// The name of the matched route without its `<kind>.<namespace>.` prefix.
    fn pick(&self, request: &Request) -> Option<String> {
        self.route(request)
            .map(|name| name.splitn(3, '.').nth(2).unwrap_or_default().to_string())
    }
}

/// A synthetic request.
#[derive(Clone, Debug)]
struct Request {
    scheme: &'static str,
    /// The port the connection arrived on (the listener port).
    socket_port: u16,
    /// The Host header as sent (may carry a port).
    host: String,
    path: String,
    method: &'static str,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    /// The TLS server name, when the client sends one.
    sni: Option<String>,
}

/// `GET url`, as a client sends it: the Host header carries the port when the URL does.
fn get(url: &str) -> Request {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let scheme = if scheme == "https" { "https" } else { "http" };
    let (authority, path_query) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    let socket_port = match authority.split_once(':') {
        Some((_, port)) => port.parse().expect("port"),
        None if scheme == "https" => 443,
        None => 80,
    };
    Request {
        scheme,
        socket_port,
        host: authority.to_string(),
        path: path.to_string(),
        method: "GET",
        headers: Vec::new(),
        query: query
            .split('&')
            .filter(|q| !q.is_empty())
            .map(|q| {
                let (k, v) = q.split_once('=').unwrap_or((q, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        sni: None,
    }
}

impl Request {
    fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sends this TLS server name.
    fn sni(mut self, name: &str) -> Self {
        self.sni = Some(name.to_string());
        self
    }

    /// Arrives on another socket port, Host header unchanged.
    fn on_port(mut self, port: u16) -> Self {
        self.socket_port = port;
        self
    }

    fn fill(&self, context: &mut Context<'_>) {
        let (host, host_port) = match self.host.split_once(':') {
            Some((host, port)) => (host, port.parse::<i64>().ok()),
            None => (self.host.as_str(), None),
        };
        context.add_value("net.protocol", Value::String(self.scheme.to_string()));
        context.add_value(
            "net.dst.port",
            Value::Int(host_port.unwrap_or(i64::from(self.socket_port))),
        );
        context.add_value("http.host", Value::String(host.to_string()));
        context.add_value("http.path", Value::String(self.path.clone()));
        context.add_value("http.method", Value::String(self.method.to_string()));
        for (name, value) in &self.headers {
            let field = format!("http.headers.{}", name.to_ascii_lowercase().replace('-', "_"));
            context.add_value(&field, Value::String(value.clone()));
        }
        for (name, value) in &self.query {
            context.add_value(&format!("http.queries.{name}"), Value::String(value.clone()));
        }
        if let Some(sni) = &self.sni {
            context.add_value("tls.sni", Value::String(sni.clone()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTPRoute precedence
// ---------------------------------------------------------------------------------------------

const EXACT_FOO: &str = r#"
metadata: {name: exact, namespace: default}
spec:
  rules:
  - matches: [{path: {type: Exact, value: /foo}}]
    backendRefs: [{name: echo, port: 80}]
"#;

const PREFIX_FOO: &str = r#"
metadata: {name: prefix, namespace: default}
spec:
  rules:
  - matches: [{path: {type: PathPrefix, value: /foo}}]
    backendRefs: [{name: echo, port: 80}]
"#;

const PREFIX_FOO_BAR: &str = r#"
metadata: {name: longer, namespace: default}
spec:
  rules:
  - matches: [{path: {type: PathPrefix, value: /foo/bar/}}]
    backendRefs: [{name: echo, port: 80}]
"#;

const CATCH_ALL: &str = r#"
metadata: {name: all, namespace: default}
spec:
  rules:
  - backendRefs: [{name: echo, port: 80}]
"#;

#[test]
fn exact_path_beats_a_prefix_of_the_same_path() {
    let kong = on_http80(&[PREFIX_FOO, EXACT_FOO]);
    assert_eq!(
        kong.pick(&get("http://a.example.com/foo")).as_deref(),
        Some("exact.0.0.0")
    );
    assert_eq!(
        kong.pick(&get("http://a.example.com/foo/x")).as_deref(),
        Some("prefix.0.0.0")
    );
}

#[test]
fn the_longest_prefix_wins_and_a_trailing_slash_is_ignored() {
    let kong = on_http80(&[PREFIX_FOO, PREFIX_FOO_BAR, CATCH_ALL]);
    assert_eq!(kong.pick(&get("http://h/foo/bar")).as_deref(), Some("longer.0.0.0"));
    assert_eq!(kong.pick(&get("http://h/foo/bar/baz")).as_deref(), Some("longer.0.0.0"));
    assert_eq!(kong.pick(&get("http://h/foo/barn")).as_deref(), Some("prefix.0.0.0"));
    assert_eq!(kong.pick(&get("http://h/other")).as_deref(), Some("all.0.0.0"));
}

#[test]
fn prefixes_match_whole_path_elements_only() {
    let kong = on_http80(&[PREFIX_FOO]);
    assert_eq!(kong.pick(&get("http://h/foo")).as_deref(), Some("prefix.0.0.0"));
    assert_eq!(kong.pick(&get("http://h/foo/")).as_deref(), Some("prefix.0.0.0"));
    assert_eq!(kong.pick(&get("http://h/foo/a/b")).as_deref(), Some("prefix.0.0.0"));
    assert_eq!(kong.pick(&get("http://h/foobar")), None);
    assert_eq!(kong.pick(&get("http://h/fo")), None);
    assert_eq!(kong.pick(&get("http://h/Foo")), None, "paths are case-sensitive");
}

#[test]
fn exact_path_matches_only_itself() {
    let kong = on_http80(&[EXACT_FOO]);
    assert_eq!(kong.pick(&get("http://h/foo")).as_deref(), Some("exact.0.0.0"));
    assert_eq!(kong.pick(&get("http://h/foo/")), None);
    assert_eq!(kong.pick(&get("http://h/foox")), None);
}

#[test]
fn regex_paths_rank_below_real_prefixes_and_above_the_catch_all() {
    let regex = r#"
metadata: {name: regex, namespace: default}
spec:
  rules:
  - matches: [{path: {type: RegularExpression, value: "/foo/[0-9]+"}}]
    backendRefs: [{name: echo, port: 80}]
"#;
    let kong = on_http80(&[regex, PREFIX_FOO, CATCH_ALL]);
    assert_eq!(kong.pick(&get("http://h/foo/12")).as_deref(), Some("prefix.0.0.0"));
    let kong = on_http80(&[regex, CATCH_ALL]);
    assert_eq!(kong.pick(&get("http://h/foo/12")).as_deref(), Some("regex.0.0.0"));
    assert_eq!(
        kong.pick(&get("http://h/foo/12/x")).as_deref(),
        Some("all.0.0.0"),
        "the regex must match the whole path"
    );
}

#[test]
fn a_method_match_beats_no_method_match() {
    let get_only = r#"
metadata: {name: get-only, namespace: default}
spec:
  rules:
  - matches: [{path: {value: /foo}, method: GET}]
    backendRefs: [{name: echo, port: 80}]
"#;
    let kong = on_http80(&[PREFIX_FOO, get_only]);
    assert_eq!(kong.pick(&get("http://h/foo")).as_deref(), Some("get-only.0.0.0"));
    assert_eq!(
        kong.pick(&get("http://h/foo").method("POST")).as_deref(),
        Some("prefix.0.0.0")
    );
}

#[test]
fn more_header_matches_win_then_more_query_matches() {
    let one_header = r#"
metadata: {name: one-header, namespace: default}
spec:
  rules:
  - matches: [{path: {value: /}, headers: [{name: a, value: "1"}], queryParams: [{name: q, value: "1"}, {name: r, value: "1"}]}]
    backendRefs: [{name: echo, port: 80}]
"#;
    let two_headers = r#"
metadata: {name: two-headers, namespace: default}
spec:
  rules:
  - matches: [{headers: [{name: a, value: "1"}, {name: B, value: "2"}]}]
    backendRefs: [{name: echo, port: 80}]
"#;
    let one_header_one_query = r#"
metadata: {name: one-header-one-query, namespace: default}
spec:
  rules:
  - matches: [{headers: [{name: a, value: "1"}], queryParams: [{name: q, value: "1"}]}]
    backendRefs: [{name: echo, port: 80}]
"#;
    let kong = on_http80(&[one_header, two_headers, one_header_one_query, CATCH_ALL]);
    let request = get("http://h/x?q=1&r=1").header("A", "1").header("b", "2");
    assert_eq!(kong.pick(&request).as_deref(), Some("two-headers.0.0.0"));
    let request = get("http://h/x?q=1&r=1").header("a", "1");
    assert_eq!(kong.pick(&request).as_deref(), Some("one-header.0.0.0"));
    let request = get("http://h/x?q=1").header("a", "1");
    assert_eq!(kong.pick(&request).as_deref(), Some("one-header-one-query.0.0.0"));
}

fn same_match(name: &str, namespace: &str, created: &str) -> String {
    format!(
        r#"
metadata: {{name: {name}, namespace: {namespace}, creationTimestamp: "{created}"}}
spec:
  rules:
  - matches: [{{path: {{value: /same}}}}]
    backendRefs: [{{name: echo, port: 80}}]
"#
    )
}

#[test]
fn on_equal_matches_the_oldest_route_wins() {
    let old = same_match("zzz", "zzz", "2020-01-01T00:00:00Z");
    let new = same_match("aaa", "aaa", "2024-01-01T00:00:00Z");
    let kong = on_http80(&[&new, &old]);
    assert_eq!(
        kong.route(&get("http://h/same")).as_deref(),
        Some("httproute.zzz.zzz.0.0.0")
    );
}

#[test]
fn on_equal_age_namespace_then_name_alphabetically_wins() {
    let at = "2024-01-01T00:00:00Z";
    let (b_a, a_b, a_c) = (
        same_match("a", "b", at),
        same_match("b", "a", at),
        same_match("c", "a", at),
    );
    let kong = on_http80(&[&b_a, &a_c, &a_b]);
    assert_eq!(
        kong.route(&get("http://h/same")).as_deref(),
        Some("httproute.a.b.0.0.0")
    );
    let kong = on_http80(&[&b_a, &a_c]);
    assert_eq!(
        kong.route(&get("http://h/same")).as_deref(),
        Some("httproute.a.c.0.0.0")
    );
}

#[test]
fn within_a_route_the_first_rule_and_then_the_first_match_wins() {
    let rules = r#"
metadata: {name: rules, namespace: default}
spec:
  rules:
  - matches: [{path: {value: /other}}, {path: {value: /same}}, {path: {value: /same}}]
    backendRefs: [{name: echo, port: 80}]
  - matches: [{path: {value: /same}}]
    backendRefs: [{name: other, port: 8080}]
"#;
    let kong = on_http80(&[rules]);
    assert_eq!(kong.pick(&get("http://h/same")).as_deref(), Some("rules.0.1.0"));
}

#[test]
fn precedence_spans_routes_a_more_specific_match_of_a_newer_route_still_wins() {
    let old = same_match("old", "default", "2020-01-01T00:00:00Z");
    let newer_exact = r#"
metadata: {name: new, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  rules:
  - matches: [{path: {type: Exact, value: /same}}]
    backendRefs: [{name: echo, port: 80}]
"#;
    let kong = on_http80(&[&old, newer_exact]);
    assert_eq!(kong.pick(&get("http://h/same")).as_deref(), Some("new.0.0.0"));
    assert_eq!(kong.pick(&get("http://h/same/x")).as_deref(), Some("old.0.0.0"));
}

// ---------------------------------------------------------------------------------------------
// Hostnames and listeners
// ---------------------------------------------------------------------------------------------

fn with_hosts(name: &str, hosts: &[&str], path: &str) -> String {
    format!(
        r#"
metadata: {{name: {name}, namespace: default}}
spec:
  hostnames: [{}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: "{path}"}}}}]
    backendRefs: [{{name: echo, port: 80}}]
"#,
        hosts.iter().map(|h| format!("\"{h}\"")).collect::<Vec<_>>().join(", ")
    )
}

/// The route's hostnames on an HTTP :80 listener without a hostname (the intersection is the
/// route's own).
fn hosts_on_http80(routes: &[(&str, &[&str], &str)]) -> KongRouter {
    let yamls: Vec<String> = routes.iter().map(|(n, h, p)| with_hosts(n, h, p)).collect();
    let inputs = yamls
        .iter()
        .zip(routes)
        .map(|(yaml, (_, hosts, _))| Input::Http(yaml, vec![listener("http", 80, ListenerProtocol::Http, hosts)]))
        .collect();
    KongRouter::new(&kong_routes(inputs))
}

#[test]
fn an_exact_hostname_beats_a_wildcard_and_a_wildcard_never_matches_its_apex() {
    let kong = hosts_on_http80(&[("wild", &["*.example.com"], "/"), ("exact", &["a.example.com"], "/")]);
    assert_eq!(kong.pick(&get("http://a.example.com/")).as_deref(), Some("exact.0.0.0"));
    assert_eq!(kong.pick(&get("http://b.example.com/")).as_deref(), Some("wild.0.0.0"));
    assert_eq!(
        kong.pick(&get("http://x.y.example.com/")).as_deref(),
        Some("wild.0.0.0"),
        "any depth"
    );
    assert_eq!(kong.pick(&get("http://example.com/")), None, "never the apex");
    assert_eq!(kong.pick(&get("http://aexample.com/")), None);
    assert_eq!(
        kong.pick(&get("http://A.Example.COM/")).as_deref(),
        Some("exact.0.0.0"),
        "hosts are case-insensitive"
    );
}

#[test]
fn a_longer_wildcard_beats_a_shorter_one_and_hostname_beats_path() {
    let kong = hosts_on_http80(&[
        ("short", &["*.example.com"], "/very/long/path"),
        ("long", &["*.a.example.com"], "/"),
    ]);
    assert_eq!(
        kong.pick(&get("http://x.a.example.com/very/long/path")).as_deref(),
        Some("long.0.0.0")
    );
    assert_eq!(
        kong.pick(&get("http://x.b.example.com/very/long/path")).as_deref(),
        Some("short.0.0.0")
    );
}

#[test]
fn one_route_with_exact_and_wildcard_hostnames_is_split_by_class() {
    let yaml = with_hosts("mixed", &["*.example.com", "a.example.com", "bb.example.com"], "/");
    let other = with_hosts("other", &["*.example.com"], "/x");
    let routes = kong_routes(vec![
        Input::Http(
            &yaml,
            vec![listener(
                "http",
                80,
                ListenerProtocol::Http,
                &["*.example.com", "a.example.com", "bb.example.com"],
            )],
        ),
        Input::Http(
            &other,
            vec![listener("http", 80, ListenerProtocol::Http, &["*.example.com"])],
        ),
    ]);
    let kong = KongRouter::new(&routes);
    // Three classes: bb.example.com (14), a.example.com (13), *.example.com.
    let names: Vec<&str> = routes.iter().map(|r| r.route.name.as_str()).collect();
    assert!(names.contains(&"httproute.default.mixed.0.0.2"), "{names:?}");
    // A request to a.example.com/x takes the exact-host part although `other` has a longer path.
    assert_eq!(
        kong.pick(&get("http://a.example.com/x")).as_deref(),
        Some("mixed.0.0.1")
    );
    assert_eq!(
        kong.pick(&get("http://bb.example.com/x")).as_deref(),
        Some("mixed.0.0.0")
    );
    assert_eq!(
        kong.pick(&get("http://c.example.com/x")).as_deref(),
        Some("other.0.0.0")
    );
    assert_eq!(
        kong.pick(&get("http://c.example.com/y")).as_deref(),
        Some("mixed.0.0.2")
    );
}

#[test]
fn a_route_bound_to_port_80_never_matches_on_port_8080() {
    let routes = kong_routes(vec![
        Input::Http(CATCH_ALL, vec![http80()]),
        Input::Http(PREFIX_FOO, vec![listener("alt", 8080, ListenerProtocol::Http, &[])]),
    ]);
    let kong = KongRouter::new(&routes);
    assert_eq!(kong.pick(&get("http://h/foo")).as_deref(), Some("all.0.0.0"));
    assert_eq!(kong.pick(&get("http://h:8080/foo")).as_deref(), Some("prefix.0.0.0"));
    assert_eq!(
        kong.pick(&get("http://h:8080/bar")),
        None,
        "the catch-all is bound to :80"
    );
    assert_eq!(kong.pick(&get("http://h:9090/foo")), None);
}

#[test]
fn kong_takes_net_dst_port_from_a_host_header_that_carries_one() {
    // Kong 3.9 quirk (atc.lua split_host_port → params.port, fields.lua net.dst.port): a client
    // on port 80 naming port 8080 in its Host header is routed as if it came in on 8080.
    let routes = kong_routes(vec![Input::Http(
        PREFIX_FOO,
        vec![listener("alt", 8080, ListenerProtocol::Http, &[])],
    )]);
    let kong = KongRouter::new(&routes);
    assert_eq!(
        kong.pick(&get("http://h:8080/foo").on_port(80)).as_deref(),
        Some("prefix.0.0.0")
    );
}

#[test]
fn listeners_sharing_a_hostname_set_are_grouped_in_the_binding() {
    let yaml = with_hosts("r", &["a.example.com", "b.example.com"], "/");
    let outcome = translate_http(
        &yaml,
        &[
            listener("http", 80, ListenerProtocol::Http, &["a.example.com", "b.example.com"]),
            listener(
                "https",
                443,
                ListenerProtocol::Https,
                &["a.example.com", "b.example.com"],
            ),
            listener("alt", 8080, ListenerProtocol::Http, &["a.example.com"]),
        ],
    );
    let routes: Vec<&kong::Route> = outcome.routes.iter().map(|r| &r.route).collect();
    assert_eq!(routes.len(), 1);
    assert_eq!(
        routes[0].expression,
        concat!(
            r#"((net.dst.port == 8080 && lower(http.host) == "a.example.com")"#,
            r#" || ((net.dst.port == 80 || net.dst.port == 443)"#,
            r#" && (lower(http.host) == "a.example.com" || lower(http.host) == "b.example.com")))"#
        )
    );
    assert_eq!(routes[0].protocols, ["http", "https"]);
}

#[test]
fn a_route_only_on_https_listeners_gets_protocol_https_alone() {
    let routes = kong_routes(vec![Input::Http(
        CATCH_ALL,
        vec![listener("https", 443, ListenerProtocol::Https, &[])],
    )]);
    assert_eq!(routes[0].route.protocols, ["https"]);
    let kong = KongRouter::new(&routes);
    assert_eq!(kong.pick(&get("https://h/")).as_deref(), Some("all.0.0.0"));
    assert_eq!(kong.pick(&get("http://h/")), None, "bound to the TLS port");
}

#[test]
fn routing_follows_the_host_header_not_the_tls_server_name() {
    // HTTPRoute hostnames match Host (the spec says so); the SNI only picked the certificate.
    let yaml = with_hosts("r", &["a.example.com"], "/");
    let routes = kong_routes(vec![Input::Http(
        &yaml,
        vec![listener("https", 443, ListenerProtocol::Https, &["a.example.com"])],
    )]);
    let kong = KongRouter::new(&routes);
    let mut context = Context::new(validate::http_schema());
    let request = get("https://a.example.com/");
    request.fill(&mut context);
    context.add_value("tls.sni", Value::String("other.example.com".to_string()));
    assert!(kong.router.execute(&mut context));
}

// ---------------------------------------------------------------------------------------------
// Match conditions and near misses
// ---------------------------------------------------------------------------------------------

#[test]
fn near_misses_select_nothing() {
    let strict = r#"
metadata: {name: strict, namespace: default}
spec:
  hostnames: [api.example.com]
  rules:
  - matches:
    - path: {type: Exact, value: /v1/items}
      method: PUT
      headers: [{name: X-Version, value: Two}]
      queryParams: [{name: page, value: "1"}]
    backendRefs: [{name: echo, port: 80}]
"#;
    let routes = kong_routes(vec![Input::Http(
        strict,
        vec![listener("http", 80, ListenerProtocol::Http, &["api.example.com"])],
    )]);
    let kong = KongRouter::new(&routes);
    let ok = get("http://api.example.com/v1/items?page=1")
        .method("PUT")
        .header("x-version", "Two");
    assert_eq!(kong.pick(&ok).as_deref(), Some("strict.0.0.0"));
    let misses = [
        get("http://api.example.com/v1/items?page=1").header("x-version", "Two"),
        get("http://api.example.com/v1/items?page=2")
            .method("PUT")
            .header("x-version", "Two"),
        get("http://api.example.com/v1/items")
            .method("PUT")
            .header("x-version", "Two"),
        get("http://api.example.com/v1/items?page=1")
            .method("PUT")
            .header("x-version", "two"),
        get("http://api.example.com/v1/items?page=1").method("PUT"),
        get("http://api.example.com/v1/items/?page=1")
            .method("PUT")
            .header("x-version", "Two"),
        get("http://www.example.com/v1/items?page=1")
            .method("PUT")
            .header("x-version", "Two"),
        get("http://api.example.com:8080/v1/items?page=1")
            .method("PUT")
            .header("x-version", "Two"),
    ];
    for miss in misses {
        assert_eq!(kong.pick(&miss), None, "{miss:?}");
    }
}

#[test]
fn header_names_are_case_insensitive_values_exact_or_whole_regex() {
    let yaml = r#"
metadata: {name: h, namespace: default}
spec:
  rules:
  - matches: [{headers: [{name: X-Env, type: RegularExpression, value: "prod|stage"}, {name: x-env, value: ignored}]}]
    backendRefs: [{name: echo, port: 80}]
"#;
    let kong = on_http80(&[yaml]);
    assert_eq!(
        kong.pick(&get("http://h/").header("X-ENV", "prod")).as_deref(),
        Some("h.0.0.0")
    );
    assert_eq!(
        kong.pick(&get("http://h/").header("x-env", "stage")).as_deref(),
        Some("h.0.0.0")
    );
    assert_eq!(
        kong.pick(&get("http://h/").header("x-env", "production")),
        None,
        "whole value"
    );
    assert_eq!(
        kong.pick(&get("http://h/").header("x-env", "Prod")),
        None,
        "values are case-sensitive"
    );
}

#[test]
fn a_repeated_header_must_match_in_every_value_and_a_repeated_query_in_one() {
    let yaml = r#"
metadata: {name: m, namespace: default}
spec:
  rules:
  - matches: [{headers: [{name: tier, value: gold}], queryParams: [{name: v, value: "2"}]}]
    backendRefs: [{name: echo, port: 80}]
"#;
    let kong = on_http80(&[yaml]);
    let both_gold = get("http://h/?v=2").header("tier", "gold").header("tier", "gold");
    assert_eq!(kong.pick(&both_gold).as_deref(), Some("m.0.0.0"));
    let mixed = get("http://h/?v=2").header("tier", "gold").header("tier", "silver");
    assert_eq!(kong.pick(&mixed), None, "RFC 7230: 'gold, silver' is not 'gold'");
    let first_query = get("http://h/?v=2&v=3").header("tier", "gold");
    assert_eq!(kong.pick(&first_query).as_deref(), Some("m.0.0.0"));
}

#[test]
fn a_prefix_rewrite_route_matches_like_a_prefix_and_captures_the_rest() {
    let yaml = r#"
metadata: {name: rw, namespace: default}
spec:
  rules:
  - matches: [{path: {type: PathPrefix, value: /old/}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}}]
    backendRefs: [{name: echo, port: 80}]
"#;
    let kong = on_http80(&[yaml]);
    for (path, rest) in [("/old", ""), ("/old/", "/"), ("/old/a/b", "/a/b")] {
        let (name, captures) = kong.matched(&get(&format!("http://h{path}"))).expect("matched");
        assert_eq!(name, "httproute.default.rw.0.0.0");
        assert_eq!(captures.get("kongress_rest").map(String::as_str), Some(rest), "{path}");
    }
    assert_eq!(kong.pick(&get("http://h/older")), None);
}

// ---------------------------------------------------------------------------------------------
// GRPCRoute
// ---------------------------------------------------------------------------------------------

fn grpc(name: &str, method: &str) -> String {
    format!(
        r#"
metadata: {{name: {name}, namespace: default}}
spec:
  rules:
  - matches: [{{method: {method}}}]
    backendRefs: [{{name: echo, port: 80}}]
"#
    )
}

fn grpc_router(routes: &[&str]) -> KongRouter {
    KongRouter::new(&kong_routes(
        routes
            .iter()
            .map(|y| Input::Grpc(y, vec![listener("grpc", 80, ListenerProtocol::Http, &[])]))
            .collect(),
    ))
}

#[test]
fn grpc_exact_service_and_method_match_the_call_path() {
    let both = grpc("both", "{service: pkg.Svc, method: Get}");
    let service = grpc("service", "{service: pkg.Svc}");
    let method = grpc("method", "{method: Get}");
    let kong = grpc_router(&[&both, &service, &method]);
    let call = |path: &str| get(&format!("http://h{path}")).method("POST");
    assert_eq!(kong.pick(&call("/pkg.Svc/Get")).as_deref(), Some("both.0.0.0"));
    assert_eq!(kong.pick(&call("/pkg.Svc/List")).as_deref(), Some("service.0.0.0"));
    assert_eq!(kong.pick(&call("/other.Svc/Get")).as_deref(), Some("method.0.0.0"));
    assert_eq!(kong.pick(&call("/pkgXSvc/List")), None, "the service's dot is literal");
    assert_eq!(kong.pick(&call("/other.Svc/List")), None);
}

#[test]
fn grpc_regex_matches_and_service_characters_rank_first() {
    let regex = grpc(
        "regex",
        "{type: RegularExpression, service: 'pkg\\..*', method: 'Get.*'}",
    );
    let longer_service = grpc("longer-service", "{service: pkg.v1.Svc}");
    let kong = grpc_router(&[&regex, &longer_service]);
    let call = |path: &str| get(&format!("http://h{path}")).method("POST");
    assert_eq!(
        kong.pick(&call("/pkg.v1.Svc/GetX")).as_deref(),
        Some("longer-service.0.0.0")
    );
    assert_eq!(kong.pick(&call("/pkg.Other/GetX")).as_deref(), Some("regex.0.0.0"));
    assert_eq!(kong.pick(&call("/pkg.Other/List")), None);
}

#[test]
fn grpc_routes_use_grpc_protocols() {
    let routes = kong_routes(vec![Input::Grpc(
        &grpc("g", "{service: s.S}"),
        vec![
            listener("grpc", 80, ListenerProtocol::Http, &[]),
            listener("grpcs", 443, ListenerProtocol::Https, &[]),
        ],
    )]);
    assert_eq!(routes[0].route.protocols, ["grpc", "grpcs"]);
    assert_eq!(routes[0].route.strip_path, Some(false));
    let kong = KongRouter::new(&routes);
    assert_eq!(
        kong.pick(&get("https://h/s.S/M").method("POST")).as_deref(),
        Some("g.0.0.0")
    );
}

#[test]
fn the_longest_hostname_and_path_the_api_admits_route_and_outrank_shorter_ones() {
    let label = "a".repeat(63);
    let host = format!("{label}.{label}.{label}.{}", "b".repeat(61));
    assert_eq!(host.len(), 253);
    let path = format!("/{}", "p".repeat(1023));
    let long = format!(
        r#"
metadata: {{name: long, namespace: default}}
spec:
  hostnames: ["{host}"]
  rules:
  - matches: [{{path: {{type: Exact, value: "{path}"}}}}]
    backendRefs: [{{name: echo, port: 80}}]
"#
    );
    let wildcard_host = format!("*.{label}.{label}.{}", "b".repeat(61));
    let wildcard = with_hosts("wild", &[&wildcard_host], "/");
    let routes = kong_routes(vec![
        Input::Http(&long, vec![listener("http", 80, ListenerProtocol::Http, &[&host])]),
        Input::Http(
            &wildcard,
            vec![listener("http", 80, ListenerProtocol::Http, &[&wildcard_host])],
        ),
        Input::Http(CATCH_ALL, vec![http80()]),
    ]);
    let kong = KongRouter::new(&routes);
    assert_eq!(
        kong.pick(&get(&format!("http://{host}{path}"))).as_deref(),
        Some("long.0.0.0")
    );
    assert_eq!(
        kong.pick(&get(&format!("http://{host}/"))).as_deref(),
        Some("wild.0.0.0")
    );
    assert_eq!(kong.pick(&get("http://other/")).as_deref(), Some("all.0.0.0"));
}

// ---------------------------------------------------------------------------------------------
// Arbitrary input never panics and always yields routes Kong parses, or a report
// ---------------------------------------------------------------------------------------------

fn route_with(path_type: &str, path: &str, header: (&str, &str), query: (&str, &str)) -> Arc<HttpRoute> {
    let mut route: HttpRoute = serde_yaml_ng::from_str(
        "metadata: {name: p, namespace: default}\nspec:\n  rules:\n  - matches: [{}]\n    backendRefs: [{name: echo, port: 80}]",
    )
    .expect("yaml");
    let value = serde_json::json!({
        "path": {"type": path_type, "value": path},
        "headers": [{"name": header.0, "value": header.1, "type": "RegularExpression"}, {"name": "x-exact", "value": header.1}],
        "queryParams": [{"name": query.0, "value": query.1}],
    });
    if let Some(rules) = route.spec.rules.as_mut()
        && let Some(rule) = rules.first_mut()
    {
        rule.matches = Some(vec![serde_json::from_value(value).expect("match")]);
    }
    Arc::new(route)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_paths_headers_queries_and_hosts_parse_or_are_reported(
        path_type in prop::sample::select(vec!["Exact", "PathPrefix", "RegularExpression"]),
        path in "\\PC{0,40}",
        header_name in "[!-~]{1,12}",
        header_value in "\\PC{0,40}",
        query_name in "[!-~]{1,12}",
        query_value in "\\PC{0,20}",
        host in "(\\*\\.)?[a-z0-9\"\\\\-]{1,20}(\\.[a-z0-9]{1,5})?",
        nul in any::<bool>(),
    ) {
        let header_value = if nul { format!("{header_value}\0") } else { header_value };
        let route = route_with(path_type, &path, (&header_name, &header_value), (&query_name, &query_value));
        let fixture = Fixture::new();
        let input = fixture.input();
        let mut backends = Backends::new(&input);
        let view = RouteView::http(&route);
        let attachment = listener("http", 80, ListenerProtocol::Http, &[host.as_str()]);
        let outcome = validate::keep_valid(&view, http::translate(&view, &route, &[&attachment], &mut backends));
        for pending in &outcome.routes {
            prop_assert_eq!(validate::check_expression(&pending.route.expression, &pending.route.protocols), Ok(()));
        }
        if outcome.routes.is_empty() {
            prop_assert!(outcome.accepted_problem.is_some(), "dropped without a report");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_grpc_services_and_methods_parse_or_are_reported(
        regex in any::<bool>(),
        service in prop::option::of("\\PC{0,30}"),
        method in prop::option::of("\\PC{0,30}"),
        header_name in "[!-~]{1,12}",
    ) {
        let mut route: GrpcRoute = serde_yaml_ng::from_str(
            "metadata: {name: g, namespace: default}\nspec:\n  rules:\n  - backendRefs: [{name: echo, port: 80}]",
        )
        .expect("yaml");
        let value = serde_json::json!({
            "method": {"type": if regex { "RegularExpression" } else { "Exact" }, "service": service, "method": method},
            "headers": [{"name": header_name, "value": "v"}],
        });
        if let Some(rule) = route.spec.rules.as_mut().and_then(|r| r.first_mut()) {
            rule.matches = Some(vec![serde_json::from_value(value).expect("match")]);
        }
        let route = Arc::new(route);
        let fixture = Fixture::new();
        let input = fixture.input();
        let mut backends = Backends::new(&input);
        let view = RouteView::grpc(&route);
        let attachment = http80();
        let outcome = validate::keep_valid(&view, grpc::translate(&view, &route, &[&attachment], &mut backends));
        for pending in &outcome.routes {
            prop_assert_eq!(validate::check_expression(&pending.route.expression, &pending.route.protocols), Ok(()));
        }
        if outcome.routes.is_empty() {
            prop_assert!(outcome.accepted_problem.is_some(), "dropped without a report");
        }
    }
}
