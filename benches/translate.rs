//! Benchmarks of route translation: a class with N HTTPRoutes (realistic hostnames, 2–4
//! matches per rule, 1–3 backends with endpoints), translated whole, and again after a
//! one-route change. Run with `make bench`; figures in BENCHMARKS.md.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gateway_api::gateways::Gateway;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kongress::api::{ObjectKey, PortMode};
use kongress::plan::{PlanInput, PlanSettings, plan_class};
use kongress::translate::{RouteSet, TranslateInput, Translator, translate};

const NAMESPACES: usize = 20;

/// One Gateway per namespace, each with HTTP :80 and :8080 listeners for its own wildcard
/// domain, allowing routes from its namespace.
fn gateways() -> Vec<Arc<Gateway>> {
    (0..NAMESPACES)
        .map(|n| {
            let yaml = format!(
                r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: edge, namespace: team-{n}, creationTimestamp: "2026-01-01T00:00:00Z", generation: 1}}
spec:
  gatewayClassName: kongress
  listeners:
    - {{name: web, port: 80, protocol: HTTP, hostname: "*.team-{n}.example.com"}}
    - {{name: alt, port: 8080, protocol: HTTP, hostname: "*.team-{n}.example.com"}}
"#
            );
            Arc::new(serde_yaml_ng::from_str(&yaml).expect("gateway"))
        })
        .collect()
}

/// Route `i`: one or two hostnames, 1–3 rules of 2–4 matches (exact, prefix, regex paths,
/// methods, headers, queries), 1–3 weighted backends.
fn route(i: usize, generation: i64) -> Arc<HttpRoute> {
    let n = i % NAMESPACES;
    let mut rules = String::new();
    for r in 0..(1 + i % 3) {
        let mut matches = String::new();
        for m in 0..(2 + (i + r) % 3) {
            let path = match (i + r + m) % 3 {
                0 => format!("{{type: PathPrefix, value: /api/v{m}/svc-{i}}}"),
                1 => format!("{{type: Exact, value: /svc-{i}/rule-{r}/item}}"),
                _ => format!("{{type: RegularExpression, value: \"/svc-{i}/[0-9]+/r{r}\"}}"),
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

/// An input over the shared fixtures (its `routes` are replaced by the caller).
fn input_with<'a>(
    gateways: &'a [Arc<Gateway>],
    plan: &'a kongress::plan::ClassPlan,
    services: &'a BTreeMap<ObjectKey, Arc<Service>>,
    endpoint_slices: &'a BTreeMap<ObjectKey, Vec<Arc<EndpointSlice>>>,
    secrets: &'a BTreeMap<ObjectKey, Arc<Secret>>,
    namespaces: &'a BTreeMap<String, BTreeMap<String, String>>,
) -> TranslateInput<'a> {
    static EMPTY: std::sync::OnceLock<RouteSet> = std::sync::OnceLock::new();
    TranslateInput {
        gateways,
        plan,
        routes: EMPTY.get_or_init(RouteSet::default),
        services,
        endpoint_slices,
        secrets,
        grants: &[],
        namespaces,
    }
}

fn bench_translate(c: &mut Criterion) {
    let gateways = gateways();
    let secrets: BTreeMap<ObjectKey, Arc<Secret>> = BTreeMap::new();
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
    let namespaces = BTreeMap::new();
    let mut group = c.benchmark_group("translate");
    group.sample_size(20);
    for count in [1_000usize, 10_000] {
        let routes = RouteSet {
            http: (0..count).map(|i| route(i, 1)).collect(),
            ..RouteSet::default()
        };
        let input = TranslateInput {
            gateways: &gateways,
            plan: &plan,
            routes: &routes,
            services: &services,
            endpoint_slices: &endpoint_slices,
            secrets: &secrets,
            grants: &[],
            namespaces: &namespaces,
        };
        let translation = translate(&input);
        let routes_out: usize = translation.config.services.iter().map(|s| s.routes.len()).sum();
        eprintln!(
            "{count} HTTPRoutes → {} Kong services, {routes_out} Kong routes, {} upstreams",
            translation.config.services.len(),
            translation.config.upstreams.len()
        );
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::new("all_routes", count), &input, |b, input| {
            b.iter(|| black_box(translate(input)))
        });
        let serialized_len = serde_json::to_vec(&translation.config).map(|v| v.len()).unwrap_or(0);
        eprintln!("{count} HTTPRoutes → {serialized_len} bytes of JSON config");
        group.bench_with_input(BenchmarkId::new("serialize_json", count), &translation, |b, t| {
            b.iter(|| black_box(serde_json::to_vec(&t.config).map(|v| v.len())))
        });
        // The controller keeps one Translator per class: a warm one with nothing changed, and
        // one that sees a single route change (a new generation and resourceVersion).
        let mut warm = Translator::new();
        warm.translate(&input);
        group.bench_with_input(BenchmarkId::new("warm_nothing_changed", count), &input, |b, input| {
            b.iter(|| black_box(warm.translate(input)))
        });
        let mut changes = 0_i64;
        group.bench_with_input(BenchmarkId::new("one_route_changed", count), &routes, |b, routes| {
            b.iter_batched(
                || {
                    changes += 1;
                    let mut changed = routes.clone();
                    changed.http[count / 2] = route(count / 2, 1 + changes);
                    changed
                },
                |changed| {
                    let input = TranslateInput {
                        routes: &changed,
                        ..input_with(&gateways, &plan, &services, &endpoint_slices, &secrets, &namespaces)
                    };
                    black_box(warm.translate(&input).config.services.len())
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_translate);
criterion_main!(benches);
