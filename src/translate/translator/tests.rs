//! The translator's one promise: whatever it remembers, its answer is exactly a fresh
//! translation's. Random classes go through random sequences of changes (routes added,
//! edited, removed, rewritten with the same content or only a new status; Services,
//! EndpointSlices, ReferenceGrants, Namespace labels, Gateways and Secrets changed; input
//! order shuffled), and after every step one long-lived translator answers like
//! [`translate`].

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::Translator;
use crate::api::{Gateway, ObjectKey, PortMode, ReferenceGrant};
use crate::plan::{PlanInput, PlanSettings, plan_class};
use crate::translate::routes::RouteObject;
use crate::translate::{RouteSet, TranslateInput, Translation, translate};

/// The routes' objects by kind and `namespace/name`, each kept as the same `Arc` until it
/// changes (as the operator's caches do).
#[derive(Clone, Default)]
struct World {
    gateway_variant: usize,
    routes: BTreeMap<(String, String), (Value, RouteObject)>,
    services: BTreeMap<ObjectKey, Arc<Service>>,
    slices: BTreeMap<ObjectKey, Vec<Arc<EndpointSlice>>>,
    grants: Vec<Arc<ReferenceGrant>>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    secrets: BTreeMap<ObjectKey, Arc<Secret>>,
    reversed: bool,
    resource_version: u64,
    /// A second object with the kind and name of an existing route (and fewer rules).
    duplicate: Option<RouteObject>,
}

fn object<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("object reads")
}

fn route_object(value: &Value) -> RouteObject {
    match value["kind"].as_str() {
        Some("HTTPRoute") => RouteObject::Http(Arc::new(object(value.clone()))),
        Some("GRPCRoute") => RouteObject::Grpc(Arc::new(object(value.clone()))),
        Some("TLSRoute") => RouteObject::Tls(Arc::new(object(value.clone()))),
        Some("TCPRoute") => RouteObject::Tcp(Arc::new(object(value.clone()))),
        _ => RouteObject::Udp(Arc::new(object(value.clone()))),
    }
}

/// Two certificate pairs, made once.
fn certificate(which: usize) -> &'static (String, String) {
    static PAIRS: OnceLock<[(String, String); 2]> = OnceLock::new();
    let pairs = PAIRS.get_or_init(|| {
        let pair = || crate::pki::generate_self_signed_pem("example.com").expect("self-signed pair");
        [pair(), pair()]
    });
    &pairs[which % 2]
}

fn tls_secret(name: &str, which: usize) -> Arc<Secret> {
    let (cert, key) = certificate(which);
    let mut secret: Secret = object(json!({
        "metadata": {"name": name, "namespace": "infra"},
        "type": "kubernetes.io/tls",
    }));
    secret.data = Some(BTreeMap::from([
        ("tls.crt".to_string(), ByteString(cert.clone().into_bytes())),
        ("tls.key".to_string(), ByteString(key.clone().into_bytes())),
    ]));
    Arc::new(secret)
}

/// Gateway `a` (every protocol) and `b` (a shared passthrough listener), in three shapes.
fn gateways(variant: usize) -> Vec<Arc<Gateway>> {
    let all = json!({"namespaces": {"from": "All"}});
    let mut a_listeners = vec![
        json!({"name": "pass", "port": 443, "protocol": "TLS", "hostname": "*.example.com", "tls": {"mode": "Passthrough"}, "allowedRoutes": all}),
        json!({"name": "tcp", "port": 9000, "protocol": "TCP", "allowedRoutes": all}),
        json!({"name": "udp", "port": 9000, "protocol": "UDP", "allowedRoutes": all}),
        json!({"name": "https", "port": 8443, "protocol": "HTTPS", "hostname": "*.example.com", "tls": {"certificateRefs": [{"name": "cert"}]}, "allowedRoutes": all}),
    ];
    let http_hostname = if variant == 2 { Some("x.example.com") } else { None };
    a_listeners
        .push(json!({"name": "http", "port": 80, "protocol": "HTTP", "hostname": http_hostname, "allowedRoutes": all}));
    a_listeners.push(json!({
        "name": "sel", "port": 8081, "protocol": "HTTP",
        "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"team": "x"}}}},
    }));
    let mut b_listeners = vec![
        json!({"name": "shared-pass", "port": 443, "protocol": "TLS", "hostname": "*.example.com", "tls": {"mode": "Passthrough"}, "allowedRoutes": all}),
    ];
    if variant == 1 {
        // On the port of `a`'s `http`, more specific: isolation takes its hostnames from it.
        b_listeners.push(json!({
            "name": "alt", "port": 80, "protocol": "HTTP", "hostname": "*.example.com",
            "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"team": "x"}}}},
        }));
    }
    let gateway = |name: &str, created: &str, listeners: Vec<Value>| -> Arc<Gateway> {
        Arc::new(object(json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": name, "namespace": "infra", "generation": 1, "creationTimestamp": created},
            "spec": {"gatewayClassName": "kongress", "listeners": listeners},
        })))
    };
    vec![
        gateway("a", "2026-01-01T00:00:00Z", a_listeners),
        gateway("b", "2026-01-02T00:00:00Z", b_listeners),
    ]
}

fn service(namespace: &str, name: &str, variant: usize) -> Arc<Service> {
    let ports = match variant {
        0 => json!([{"name": "tcp", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]),
        1 => json!([{"name": "tcp", "port": 80, "appProtocol": "kubernetes.io/h2c"}]),
        _ => json!([{"name": "tcp", "port": 81}]),
    };
    let spec = if variant == 3 {
        json!({"type": "ExternalName", "externalName": "example.com"})
    } else {
        json!({"ports": ports})
    };
    Arc::new(object(
        json!({"metadata": {"name": name, "namespace": namespace}, "spec": spec}),
    ))
}

fn slices(namespace: &str, name: &str, variant: usize) -> Vec<Arc<EndpointSlice>> {
    let endpoints = match variant {
        0 => json!([{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]),
        1 => json!([{"addresses": ["10.0.0.1"], "conditions": {"ready": false}}, {"addresses": ["10.0.0.3"]}]),
        _ => json!([]),
    };
    vec![Arc::new(object(json!({
        "metadata": {"name": format!("{name}-1"), "namespace": namespace, "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "ports": [{"name": "tcp", "port": 8080}, {"name": "dns", "port": 5353, "protocol": "UDP"}],
        "endpoints": endpoints,
    })))]
}

fn grant() -> Arc<ReferenceGrant> {
    Arc::new(object(json!({
        "metadata": {"name": "from-infra", "namespace": "app"},
        "spec": {
            "from": [
                {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "infra"},
                {"group": "gateway.networking.k8s.io", "kind": "TCPRoute", "namespace": "infra"},
            ],
            "to": [{"group": "", "kind": "Service"}],
        },
    })))
}

/// One change to the world.
#[derive(Clone, Debug)]
enum Change {
    /// Add or replace (same kind and name) a route.
    Route(Value),
    Remove(usize),
    /// The same route as a new object: the spec as it was, or only a new status.
    Rewrite(usize, bool),
    Service(&'static str, &'static str, Option<usize>),
    Slices(&'static str, &'static str, Option<usize>),
    ToggleGrant,
    Labels(&'static str, bool),
    Gateways(usize),
    /// The listener certificate: one of two, or none.
    Certificate(Option<usize>),
    Reverse,
    /// Another object for one route's kind and name (none, with `None`).
    Duplicate(Option<usize>),
}

fn arbitrary_route() -> impl Strategy<Value = Value> {
    let parent_ref = (
        prop::sample::select(vec!["a", "b", "elsewhere"]),
        prop::option::of(prop::sample::select(vec![
            "pass",
            "tcp",
            "udp",
            "http",
            "https",
            "sel",
            "alt",
            "shared-pass",
        ])),
    )
        .prop_map(|(name, section)| json!({"name": name, "namespace": "infra", "sectionName": section}));
    let backend_ref = (
        prop::sample::select(vec!["svc", "other", "missing"]),
        prop::option::of(prop::sample::select(vec!["app", "infra"])),
        prop::sample::select(vec![80, 53]),
        prop::option::of(0..3_i32),
    )
        .prop_map(|(name, namespace, port, weight)| {
            json!({"name": name, "namespace": namespace, "port": port, "weight": weight})
        });
    let path = prop::sample::select(vec![
        json!({"type": "PathPrefix", "value": "/"}),
        json!({"type": "PathPrefix", "value": "/a"}),
        json!({"type": "PathPrefix", "value": "/a/b"}),
        json!({"type": "Exact", "value": "/x"}),
        json!({"type": "RegularExpression", "value": "/r[0-9]+"}),
        json!({"type": "RegularExpression", "value": "/(unclosed"}),
    ]);
    let filter = prop::sample::select(vec![
        json!([]),
        json!([{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]),
        json!([{"type": "URLRewrite", "urlRewrite": {"hostname": "h.example.com"}}]),
        json!([{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "svc", "port": 80}}}]),
        json!([{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-a", "value": "1"}]}}]),
    ]);
    let rule = (
        prop::collection::vec(
            (path, prop::option::of(prop::sample::select(vec!["GET", "POST"]))),
            0..3,
        ),
        filter,
        prop::collection::vec(backend_ref, 0..3),
        prop::option::of(prop::sample::select(vec!["10s", "0s"])),
    )
        .prop_map(|(matches, filters, backends, timeout)| {
            let matches: Vec<Value> = matches
                .into_iter()
                .map(|(path, method)| json!({"path": path, "method": method}))
                .collect();
            let mut rule = json!({"matches": matches, "filters": filters, "backendRefs": backends});
            if let Some(timeout) = timeout {
                rule["timeouts"] = json!({"request": timeout});
            }
            rule
        });
    let hostnames = prop::collection::vec(
        prop::sample::select(vec!["x.example.com", "*.example.com", "a.b.example.com", "other.net"]),
        0..3,
    );
    (
        prop::sample::select(vec!["HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"]),
        prop::sample::select(vec!["app", "infra"]),
        0..6_u32,
        prop::collection::vec(parent_ref, 0..3),
        hostnames,
        prop::collection::vec(rule, 1..3),
        1..4_i64,
        prop::option::of(prop::sample::select(vec!["2026-03-01T00:00:00Z", "2026-02-01T00:00:00Z"])),
    )
        .prop_map(|(kind, namespace, id, parent_refs, hostnames, rules, generation, created)| {
            let version = if matches!(kind, "TCPRoute" | "UDPRoute") { "v1alpha2" } else { "v1" };
            let rules: Vec<Value> = match kind {
                "HTTPRoute" => rules,
                "GRPCRoute" => rules
                    .into_iter()
                    .map(|r| {
                        let method = json!({"service": "shop.Cart", "method": "Get"});
                        json!({"matches": [{"method": method}], "backendRefs": r["backendRefs"]})
                    })
                    .collect(),
                _ => rules.into_iter().map(|r| json!({"backendRefs": r["backendRefs"]})).collect(),
            };
            let mut spec = json!({"parentRefs": parent_refs, "rules": rules});
            if matches!(kind, "HTTPRoute" | "GRPCRoute" | "TLSRoute") {
                spec["hostnames"] = json!(hostnames);
            }
            json!({
                "apiVersion": format!("gateway.networking.k8s.io/{version}"),
                "kind": kind,
                "metadata": {"name": format!("r{id}"), "namespace": namespace, "generation": generation, "creationTimestamp": created},
                "spec": spec,
            })
        })
}

fn arbitrary_change() -> impl Strategy<Value = Change> {
    let namespace = prop::sample::select(vec!["app", "infra"]);
    let name = prop::sample::select(vec!["svc", "other"]);
    prop_oneof![
        4 => arbitrary_route().prop_map(Change::Route),
        1 => (0..8_usize).prop_map(Change::Remove),
        1 => (0..8_usize, any::<bool>()).prop_map(|(i, status)| Change::Rewrite(i, status)),
        1 => (namespace.clone(), name.clone(), prop::option::of(0..4_usize)).prop_map(|(n, s, v)| Change::Service(n, s, v)),
        1 => (namespace, name, prop::option::of(0..3_usize)).prop_map(|(n, s, v)| Change::Slices(n, s, v)),
        1 => Just(Change::ToggleGrant),
        2 => (prop::sample::select(vec!["app", "infra"]), any::<bool>()).prop_map(|(n, on)| Change::Labels(n, on)),
        1 => (0..3_usize).prop_map(Change::Gateways),
        1 => prop::option::of(0..2_usize).prop_map(Change::Certificate),
        1 => Just(Change::Reverse),
        1 => prop::option::of(0..8_usize).prop_map(Change::Duplicate),
    ]
}

impl World {
    fn new() -> Self {
        let mut world = Self::default();
        for namespace in ["app", "infra"] {
            let key = ObjectKey::new(namespace, "svc");
            world.services.insert(key.clone(), service(namespace, "svc", 0));
            world.slices.insert(key, slices(namespace, "svc", 0));
            world.namespaces.insert(namespace.to_string(), BTreeMap::new());
        }
        world
            .secrets
            .insert(ObjectKey::new("infra", "cert"), tls_secret("cert", 0));
        world
    }

    fn apply(&mut self, change: Change) {
        self.resource_version += 1;
        match change {
            Change::Route(value) => {
                let key = (
                    value["kind"].as_str().unwrap_or_default().to_string(),
                    format!("{}/{}", value["metadata"]["namespace"], value["metadata"]["name"]),
                );
                let object = route_object(&value);
                self.routes.insert(key, (value, object));
            }
            Change::Remove(index) => {
                if let Some(key) = self.routes.keys().nth(index).cloned() {
                    self.routes.remove(&key);
                }
            }
            Change::Rewrite(index, status) => {
                if let Some((value, object)) = self.routes.values_mut().nth(index) {
                    let mut value = value.clone();
                    value["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
                    if status {
                        value["status"] = json!({"parents": []});
                    }
                    *object = route_object(&value);
                }
            }
            Change::Service(namespace, name, variant) => {
                let key = ObjectKey::new(namespace, name);
                match variant {
                    Some(v) => self.services.insert(key, service(namespace, name, v)),
                    None => self.services.remove(&key),
                };
            }
            Change::Slices(namespace, name, variant) => {
                let key = ObjectKey::new(namespace, name);
                match variant {
                    Some(v) => self.slices.insert(key, slices(namespace, name, v)),
                    None => self.slices.remove(&key),
                };
            }
            Change::ToggleGrant => {
                if self.grants.is_empty() {
                    self.grants.push(grant());
                } else {
                    self.grants.clear();
                }
            }
            Change::Labels(namespace, on) => {
                let labels = if on {
                    BTreeMap::from([("team".to_string(), "x".to_string())])
                } else {
                    BTreeMap::new()
                };
                self.namespaces.insert(namespace.to_string(), labels);
            }
            Change::Gateways(variant) => self.gateway_variant = variant,
            Change::Certificate(which) => {
                let key = ObjectKey::new("infra", "cert");
                match which {
                    Some(which) => self.secrets.insert(key, tls_secret("cert", which)),
                    None => self.secrets.remove(&key),
                };
            }
            Change::Reverse => self.reversed = !self.reversed,
            Change::Duplicate(index) => {
                self.duplicate = index.and_then(|i| self.routes.values().nth(i)).map(|(value, _)| {
                    let mut value = value.clone();
                    value["metadata"]["generation"] = json!(99);
                    if let Some(rules) = value["spec"]["rules"].as_array_mut() {
                        rules.truncate(1);
                    }
                    route_object(&value)
                });
            }
        }
    }

    fn route_set(&self) -> RouteSet {
        let mut set = RouteSet::default();
        let mut objects: Vec<&RouteObject> = self.routes.values().map(|(_, o)| o).collect();
        if self.reversed {
            objects.reverse();
        }
        objects.extend(&self.duplicate);
        for object in objects {
            match object {
                RouteObject::Http(r) => set.http.push(r.clone()),
                RouteObject::Grpc(r) => set.grpc.push(r.clone()),
                RouteObject::Tls(r) => set.tls.push(r.clone()),
                RouteObject::Tcp(r) => set.tcp.push(r.clone()),
                RouteObject::Udp(r) => set.udp.push(r.clone()),
            }
        }
        set
    }

    /// Translates with `translator` and from scratch; both answers.
    fn translate_both(&self, translator: &mut Translator) -> (Translation, Translation) {
        let mut gateways = gateways(self.gateway_variant);
        if self.reversed {
            gateways.reverse();
        }
        let plan = plan_class(&PlanInput {
            gateways: &gateways,
            secrets: &self.secrets,
            grants: &self.grants,
            settings: PlanSettings {
                status_port: 8100,
                admin_port: 8444,
                port_mode: PortMode::default(),
            },
        });
        let routes = self.route_set();
        let input = TranslateInput {
            gateways: &gateways,
            plan: &plan,
            routes: &routes,
            services: &self.services,
            endpoint_slices: &self.slices,
            secrets: &self.secrets,
            grants: &self.grants,
            namespaces: &self.namespaces,
        };
        (translator.translate(&input), translate(&input))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_long_lived_translator_answers_exactly_like_a_fresh_translation(
        start in prop::collection::vec(arbitrary_route(), 0..6),
        changes in prop::collection::vec(arbitrary_change(), 1..16),
    ) {
        let mut world = World::new();
        for route in start {
            world.apply(Change::Route(route));
        }
        let mut translator = Translator::new();
        let (cached, fresh) = world.translate_both(&mut translator);
        prop_assert_eq!(&cached, &fresh);
        for (step, change) in changes.into_iter().enumerate() {
            world.apply(change.clone());
            let (cached, fresh) = world.translate_both(&mut translator);
            prop_assert_eq!(&cached, &fresh, "after change {} ({:?})", step, change);
            let text = serde_json::to_string(&cached.config).expect("serialises");
            prop_assert_eq!(text, serde_json::to_string(&fresh.config).expect("serialises"));
        }
    }
}

#[test]
fn an_unchanged_class_gives_the_same_answer_sharing_every_route() {
    let mut world = World::new();
    world.apply(Change::Route(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "app", "generation": 1},
        "spec": {"parentRefs": [{"name": "a", "namespace": "infra", "sectionName": "http"}],
                 "rules": [{"backendRefs": [{"name": "svc", "port": 80}]}]},
    })));
    let mut translator = Translator::new();
    let (first, _) = world.translate_both(&mut translator);
    let (second, fresh) = world.translate_both(&mut translator);
    assert_eq!(first, second);
    assert_eq!(second, fresh);
    let route = |t: &Translation| t.config.services[0].routes[0].route.clone();
    assert!(Arc::ptr_eq(&route(&first), &route(&second)));
    assert!(!Arc::ptr_eq(&route(&second), &route(&fresh)));
}

#[test]
fn a_client_certificate_that_becomes_usable_reaches_the_services_of_a_long_lived_translator() {
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/translate/testdata/backend-client-certificate.yaml"
    ))
    .expect("fixture");
    let with_secret = crate::translate::testing::Snapshot::from_yaml(&fixture);
    let without_secret = crate::translate::testing::Snapshot::from_yaml(&fixture.replace(
        "metadata: {name: client, namespace: infra}",
        "metadata: {name: not-the-client, namespace: infra}",
    ));
    let mut translator = Translator::new();
    let before = translator.translate(&without_secret.input());
    assert!(before.config.services.iter().all(|s| s.client_certificate.is_none()));
    let after = translator.translate(&with_secret.input());
    assert_eq!(after, with_secret.translate());
    assert!(after.config.services.iter().any(|s| s.client_certificate.is_some()));
    // And back: the certificate goes when its Secret does.
    let again = translator.translate(&without_secret.input());
    assert_eq!(again, without_secret.translate());
}
