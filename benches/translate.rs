//! Benchmarks of route translation: a class with N HTTPRoutes (realistic hostnames, 2–4
//! matches per rule, 1–3 backends with endpoints), translated from scratch (`cold`), again
//! with nothing changed (`warm_unchanged`), after a one-route change (`one_route_change`:
//! one route's path and resourceVersion change), after a Gateway change (`gateway_change`: a
//! listener no route uses comes and goes, every route attaches again), after a change that
//! makes every route translate again with expressions atc-router already checked
//! (`retranslate_all`: a listener port moves back and forth), after one EndpointSlice changes
//! (`endpoints_change`), the config serialised to JSON, and what atc-router alone takes to
//! parse every expression of the config (`atc_router_parse`). Run with
//! `cargo bench --bench translate`; figures in BENCHMARKS.md.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gateway_api::gateways::Gateway;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kongress::api::{ObjectKey, PortMode};
use kongress::plan::{ClassPlan, PlanInput, PlanSettings, plan_class};
use kongress::translate::{RouteSet, TranslateInput, Translator, translate};

const NAMESPACES: usize = 20;

/// How the Gateways of the class look.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// One Gateway per namespace, each with HTTP :80 and :8080 listeners for its own
    /// wildcard domain, allowing routes from its namespace.
    Base,
    /// The first Gateway has a third listener no route attaches to.
    ExtraListener,
    /// Every second listener is on :8081 instead of :8080 (so every route's expressions).
    OtherPort,
}

fn gateways(shape: Shape) -> Vec<Arc<Gateway>> {
    let alt_port = if shape == Shape::OtherPort { 8081 } else { 8080 };
    (0..NAMESPACES)
        .map(|n| {
            let extra = if shape == Shape::ExtraListener && n == 0 {
                "\n    - {name: extra, port: 9090, protocol: HTTP, hostname: \"*.elsewhere.example.com\"}"
            } else {
                ""
            };
            let yaml = format!(
                r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: edge, namespace: team-{n}, creationTimestamp: "2026-01-01T00:00:00Z", generation: 1}}
spec:
  gatewayClassName: kongress
  listeners:
    - {{name: web, port: 80, protocol: HTTP, hostname: "*.team-{n}.example.com"}}
    - {{name: alt, port: {alt_port}, protocol: HTTP, hostname: "*.team-{n}.example.com"}}{extra}
"#
            );
            Arc::new(serde_yaml_ng::from_str(&yaml).expect("gateway"))
        })
        .collect()
}

/// Route `i`: two hostnames, 1–3 rules of 2–4 matches (exact, prefix, regex paths, methods,
/// headers, queries), 1–3 weighted backends. Generation 2 and later have other paths.
fn route(i: usize, generation: i64) -> Arc<HttpRoute> {
    let edited = if generation > 1 { "-edited" } else { "" };
    let n = i % NAMESPACES;
    let mut rules = String::new();
    for r in 0..(1 + i % 3) {
        let mut matches = String::new();
        for m in 0..(2 + (i + r) % 3) {
            let path = match (i + r + m) % 3 {
                0 => format!("{{type: PathPrefix, value: /api/v{m}/svc-{i}{edited}}}"),
                1 => format!("{{type: Exact, value: /svc-{i}/rule-{r}/item{edited}}}"),
                _ => format!("{{type: RegularExpression, value: \"/svc-{i}{edited}/[0-9]+/r{r}\"}}"),
            };
            matches += &format!(
                "        - path: {path}\n          method: {}\n          headers: [{{name: x-tenant, value: t-{m}}}]\n          queryParams: [{{name: v, value: \"{r}\"}}]\n",
                ["GET", "POST", "PUT"][m % 3]
            );
        }
        let mut backends = String::new();
        for b in 0..(1 + (i + r) % 3) {
            backends += &format!(
                "        - {{name: svc-{}, port: 80, weight: {}}}\n",
                (i + b) % 500,
                1 + b
            );
        }
        rules += &format!("    - matches:\n{matches}      backendRefs:\n{backends}");
    }
    let yaml = format!(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: route-{i}, namespace: team-{n}, generation: {generation}, resourceVersion: "{generation}", creationTimestamp: "2026-01-02T00:00:00Z"}}
spec:
  parentRefs: [{{name: edge}}]
  hostnames: ["app-{i}.team-{n}.example.com", "www-{i}.team-{n}.example.com"]
  rules:
{rules}"#
    );
    Arc::new(serde_yaml_ng::from_str(&yaml).expect("route"))
}

/// 500 Services per namespace, each with one EndpointSlice of three ready endpoints.
/// Services and their EndpointSlices by Service key.
type Backends = (
    BTreeMap<ObjectKey, Arc<Service>>,
    BTreeMap<ObjectKey, Vec<Arc<EndpointSlice>>>,
);

fn backends() -> Backends {
    let mut services = BTreeMap::new();
    let mut slices = BTreeMap::new();
    for n in 0..NAMESPACES {
        for s in 0..500 {
            let key = ObjectKey::new(format!("team-{n}"), format!("svc-{s}"));
            let service: Service = serde_yaml_ng::from_str(&format!(
                "metadata: {{name: svc-{s}, namespace: team-{n}}}\nspec: {{ports: [{{name: http, port: 80, targetPort: 8080}}]}}\n"
            ))
            .expect("service");
            let slice: EndpointSlice = serde_yaml_ng::from_str(&format!(
                r#"
metadata: {{name: svc-{s}-abc, namespace: team-{n}, labels: {{kubernetes.io/service-name: svc-{s}}}}}
addressType: IPv4
ports: [{{name: http, port: 8080, protocol: TCP}}]
endpoints:
  - {{addresses: [10.{n}.{}.1], conditions: {{ready: true}}}}
  - {{addresses: [10.{n}.{}.2], conditions: {{ready: true}}}}
  - {{addresses: [10.{n}.{}.3], conditions: {{ready: true}}}}
"#,
                s % 250,
                s % 250,
                s % 250
            ))
            .expect("slice");
            services.insert(key.clone(), Arc::new(service));
            slices.insert(key, vec![Arc::new(slice)]);
        }
    }
    (services, slices)
}

/// A planned class: Gateways, plan, Services and EndpointSlices.
struct Class {
    gateways: Vec<Arc<Gateway>>,
    plan: ClassPlan,
    secrets: BTreeMap<ObjectKey, Arc<Secret>>,
    services: BTreeMap<ObjectKey, Arc<Service>>,
    endpoint_slices: BTreeMap<ObjectKey, Vec<Arc<EndpointSlice>>>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

impl Class {
    fn new(shape: Shape) -> Self {
        let gateways = gateways(shape);
        let secrets = BTreeMap::new();
        let plan = plan_class(&PlanInput {
            gateways: &gateways,
            secrets: &secrets,
            grants: &[],
            settings: PlanSettings {
                status_port: 8100,
                admin_port: 8444,
                port_mode: PortMode::ListenerPort,
            },
        });
        let (services, endpoint_slices) = backends();
        Self {
            gateways,
            plan,
            secrets,
            services,
            endpoint_slices,
            namespaces: BTreeMap::new(),
        }
    }

    fn input<'a>(&'a self, routes: &'a RouteSet) -> TranslateInput<'a> {
        TranslateInput {
            gateways: &self.gateways,
            plan: &self.plan,
            routes,
            services: &self.services,
            endpoint_slices: &self.endpoint_slices,
            secrets: &self.secrets,
            grants: &[],
            namespaces: &self.namespaces,
        }
    }
}

fn routes(count: usize) -> RouteSet {
    RouteSet {
        http: (0..count).map(|i| route(i, 1)).collect(),
        ..RouteSet::default()
    }
}

/// The same routes with route `index` edited (new path, generation and resourceVersion).
fn with_one_edited(routes: &RouteSet, index: usize) -> RouteSet {
    let mut edited = routes.clone();
    edited.http[index] = route(index, 2);
    edited
}

/// The first translation from scratch: every route attached, translated and its
/// expressions parsed by atc-router.
fn bench_cold(c: &mut Criterion) {
    let class = Class::new(Shape::Base);
    let mut group = c.benchmark_group("translate/cold");
    group.sample_size(10);
    for count in [1_000usize, 5_000, 10_000] {
        let routes = routes(count);
        let input = class.input(&routes);
        let translation = translate(&input);
        let routes_out: usize = translation.config.services.iter().map(|s| s.routes.len()).sum();
        eprintln!(
            "{count} HTTPRoutes → {} Kong services, {routes_out} Kong routes, {} upstreams",
            translation.config.services.len(),
            translation.config.upstreams.len()
        );
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::from_parameter(count), &input, |b, input| {
            b.iter(|| black_box(translate(input)))
        });
    }
    group.finish();
}

/// A long-lived translator: nothing changed, one route changed, a Gateway changed, one
/// EndpointSlice changed.
/// Times `translator` on two inputs in turn, so that every call sees one change.
fn bench_alternating(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    translator: &mut Translator,
    inputs: [&TranslateInput<'_>; 2],
) {
    let mut next = 0;
    group.bench_function(id, |b| {
        b.iter(|| {
            next = 1 - next;
            black_box(translator.translate(inputs[next]))
        })
    });
}

fn bench_incremental(c: &mut Criterion) {
    let class = Class::new(Shape::Base);
    let extra = Class::new(Shape::ExtraListener);
    let other_port = Class::new(Shape::OtherPort);
    let mut group = c.benchmark_group("translate");
    group.sample_size(20);
    for count in [1_000usize, 5_000, 10_000] {
        let routes = routes(count);
        let edited = with_one_edited(&routes, count / 2);
        let input = class.input(&routes);
        let input_edited = class.input(&edited);
        let mut translator = Translator::new();
        let first = translator.translate(&input);
        assert_eq!(first, translate(&input), "the warm translator answers like a fresh one");
        group.throughput(Throughput::Elements(count as u64));

        group.bench_with_input(BenchmarkId::new("warm_unchanged", count), &input, |b, input| {
            b.iter(|| black_box(translator.translate(input)))
        });

        // Every call sees the other version of the edited route: one route changed.
        let inputs = [&input_edited, &input];
        bench_alternating(
            &mut group,
            BenchmarkId::new("one_route_change", count),
            &mut translator,
            inputs,
        );
        assert_eq!(translator.translate(&input_edited), translate(&input_edited));

        if count == 10_000 {
            // A Gateway gains (and loses) a listener no route attaches to: every route is
            // attached again, and keeps its Kong routes since its attachments are the same.
            let inputs = [&extra.input(&routes), &input];
            bench_alternating(
                &mut group,
                BenchmarkId::new("gateway_change", count),
                &mut translator,
                inputs,
            );

            // Every second listener moves between two ports: every route is translated again,
            // each time with the expressions of a port atc-router already checked. This is a
            // first translation without the cost of atc-router.
            let inputs = [&other_port.input(&routes), &input];
            group.sample_size(10);
            bench_alternating(
                &mut group,
                BenchmarkId::new("retranslate_all", count),
                &mut translator,
                inputs,
            );
            assert_eq!(translator.translate(&input), translate(&input));

            // One Service loses an endpoint: its upstreams change, no route does.
            let mut fewer = class.endpoint_slices.clone();
            let key = ObjectKey::new("team-0", "svc-0");
            let mut slice: EndpointSlice = (*fewer[&key][0]).clone();
            if let Some(endpoints) = slice.endpoints.as_mut() {
                endpoints.pop();
            }
            fewer.insert(key, vec![Arc::new(slice)]);
            let mut input_fewer = class.input(&routes);
            input_fewer.endpoint_slices = &fewer;
            let inputs = [&input_fewer, &input];
            group.sample_size(20);
            bench_alternating(
                &mut group,
                BenchmarkId::new("endpoints_change", count),
                &mut translator,
                inputs,
            );
            assert_eq!(translator.translate(&input_fewer), translate(&input_fewer));
        }

        if count == 10_000 {
            // What atc-router alone costs: every expression of the config parsed once, as a
            // first translation must (the parse compiles the regular expressions).
            let expressions: Vec<&str> = first
                .config
                .services
                .iter()
                .flat_map(|s| s.routes.iter())
                .chain(first.config.routes.iter())
                .map(|r| r.expression.as_str())
                .collect();
            group.sample_size(10);
            group.bench_function(BenchmarkId::new("atc_router_parse", count), |b| {
                b.iter(|| {
                    expressions
                        .iter()
                        .filter(|e| atc_router::parser::parse(e).is_ok())
                        .count()
                })
            });
            group.sample_size(20);
        }

        let serialized_len = serde_json::to_vec(&first.config).map(|v| v.len()).unwrap_or(0);
        eprintln!("{count} HTTPRoutes → {serialized_len} bytes of JSON config");
        group.bench_with_input(BenchmarkId::new("serialize_json", count), &first, |b, t| {
            b.iter(|| black_box(serde_json::to_vec(&t.config).map(|v| v.len())))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_incremental, bench_cold);
criterion_main!(benches);
