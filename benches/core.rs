//! Benchmarks of the pure core: how long planning, rendering and status computation
//! take for one GatewayClass as its number of Gateways grows. Run with `make bench`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gateway_api::gateways::{Gateway, GatewayListeners, GatewaySpec};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kongress::api::{KongProxySpec, ObjectKey, PortMode};
use kongress::plan::{PlanInput, PlanSettings, plan_class};
use kongress::render::{RenderInput, data_plane_names, render};
use kongress::status::{DataPlaneState, DeploymentState, gateway_status};

/// `count` Gateways, each with an HTTP listener on a shared port 80 (distinct hostnames,
/// so all merge), an HTTP listener on its own port, and a TCP listener that clashes with
/// the previous Gateway's every other time: a class where merging and conflicts both happen.
fn gateways(count: usize) -> Vec<Arc<Gateway>> {
    (0..count)
        .map(|i| {
            let listener = |name: &str, port: i32, protocol: &str, hostname: Option<String>| GatewayListeners {
                name: name.into(),
                port,
                protocol: protocol.into(),
                hostname,
                ..Default::default()
            };
            Arc::new(Gateway {
                metadata: ObjectMeta {
                    name: Some(format!("gateway-{i}")),
                    namespace: Some(format!("team-{}", i % 10)),
                    creation_timestamp: Some(Time(Timestamp::from_second(1_700_000_000 + i as i64).expect("time"))),
                    generation: Some(1),
                    ..Default::default()
                },
                spec: GatewaySpec {
                    gateway_class_name: "kongress".into(),
                    listeners: vec![
                        listener("web", 80, "HTTP", Some(format!("app-{i}.example.com"))),
                        listener("api", 10_000 + i as i32, "HTTP", None),
                        listener("db", 20_000 + (i / 2) as i32, "TCP", None),
                    ],
                    ..Default::default()
                },
                status: None,
            })
        })
        .collect()
}

fn settings() -> PlanSettings {
    PlanSettings {
        status_port: 8100,
        admin_port: 8444,
        port_mode: PortMode::ListenerPort,
    }
}

fn bench_core(c: &mut Criterion) {
    let secrets: BTreeMap<ObjectKey, Arc<Secret>> = BTreeMap::new();
    let mut group = c.benchmark_group("class");
    for count in [1usize, 10, 100, 1000] {
        let gateways = gateways(count);
        let input = PlanInput {
            gateways: &gateways,
            secrets: &secrets,
            grants: &[],
            settings: settings(),
        };
        group.bench_with_input(BenchmarkId::new("plan", count), &input, |b, input| {
            b.iter(|| plan_class(black_box(input)))
        });

        let plan = plan_class(&input);
        let names = data_plane_names("kongress", "kongress-system");
        let proxy = KongProxySpec::default();
        let render_input = RenderInput {
            class_name: "kongress",
            class_uid: "uid",
            names: &names,
            proxy: &proxy,
            listen: &plan.listen,
            requested_addresses: &plan.requested_addresses,
            admin_cert_fingerprint: "fingerprint",
        };
        group.bench_with_input(BenchmarkId::new("render", count), &render_input, |b, input| {
            b.iter(|| render(black_box(input)))
        });

        let data_plane = DataPlaneState {
            class_problem: None,
            refused: None,
            deployment: DeploymentState::Available,
            load_balancer: vec![],
            external_ips: vec![],
            cluster_ips: vec!["10.96.0.10".into()],
            config: kongress::status::ConfigState::Applied,
        };
        let now = Time(Timestamp::from_second(1_800_000_000).expect("time"));
        group.bench_with_input(BenchmarkId::new("status", count), &plan, |b, plan| {
            b.iter(|| {
                for gateway in &plan.gateways {
                    black_box(gateway_status(gateway, &data_plane, None, &|_| 0, &now));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_core);
criterion_main!(benches);
