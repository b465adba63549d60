//! Properties of planning and rendering over arbitrary Gateways the API server could
//! admit: no panic, a consistent listen plan, and older Gateways never disturbed by
//! newer ones.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gateway_api::gateways::{
    Gateway, GatewayListeners, GatewayListenersAllowedRoutes, GatewayListenersAllowedRoutesKinds, GatewayListenersTls,
    GatewayListenersTlsCertificateRefs, GatewayListenersTlsMode, GatewaySpec,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kongress::api::{KongProxySpec, ObjectKey, PortMode};
use kongress::plan::{ClassPlan, PlanInput, PlanSettings, plan_class};
use kongress::render::{RenderInput, data_plane_names, render};
use proptest::prelude::*;

fn listener() -> impl Strategy<Value = GatewayListeners> {
    let protocol = prop::sample::select(vec!["HTTP", "HTTPS", "TLS", "TCP", "UDP", "example.com/odd"]);
    // Few ports and hostnames, so that clashes are common.
    let port = prop::sample::select(vec![0, 53, 80, 443, 8100, 8444, 9000, 10080, 65535]);
    let hostname = prop::option::of(prop::sample::select(vec![
        "a.example.com",
        "b.example.com",
        "*.example.com",
    ]));
    let mode = prop::option::of(prop::bool::ANY);
    let kinds = prop::option::of(prop::collection::vec(
        prop::sample::select(vec![
            "HTTPRoute",
            "GRPCRoute",
            "TLSRoute",
            "TCPRoute",
            "UDPRoute",
            "Ingress",
        ]),
        0..3,
    ));
    let certificate = prop::option::of(prop::sample::select(vec!["good", "missing"]));
    (
        protocol,
        port,
        hostname,
        mode,
        kinds,
        certificate,
        "[a-z][a-z0-9-]{0,20}",
    )
        .prop_map(
            |(protocol, port, hostname, mode, kinds, certificate, name)| GatewayListeners {
                name,
                port,
                protocol: protocol.to_string(),
                hostname: hostname.map(str::to_string),
                tls: mode.map(|passthrough| GatewayListenersTls {
                    mode: Some(if passthrough {
                        GatewayListenersTlsMode::Passthrough
                    } else {
                        GatewayListenersTlsMode::Terminate
                    }),
                    certificate_refs: certificate.map(|name| {
                        vec![GatewayListenersTlsCertificateRefs {
                            name: name.into(),
                            ..Default::default()
                        }]
                    }),
                    options: None,
                }),
                allowed_routes: kinds.map(|kinds| GatewayListenersAllowedRoutes {
                    kinds: Some(
                        kinds
                            .into_iter()
                            .map(|k| GatewayListenersAllowedRoutesKinds {
                                group: None,
                                kind: k.into(),
                            })
                            .collect(),
                    ),
                    namespaces: None,
                }),
            },
        )
}

fn gateways() -> impl Strategy<Value = Vec<Arc<Gateway>>> {
    prop::collection::vec(prop::collection::vec(listener(), 0..5), 1..5).prop_map(|all| {
        all.into_iter()
            .enumerate()
            .map(|(i, mut listeners)| {
                // Listener names are unique inside a Gateway (the API server enforces it).
                let mut seen = BTreeSet::new();
                listeners.retain(|l| seen.insert(l.name.clone()));
                Arc::new(Gateway {
                    metadata: ObjectMeta {
                        name: Some(format!("gw-{i}")),
                        namespace: Some("default".into()),
                        creation_timestamp: Some(Time(Timestamp::from_second(1_700_000_000 + i as i64).expect("time"))),
                        ..Default::default()
                    },
                    spec: GatewaySpec {
                        gateway_class_name: "kongress".into(),
                        listeners,
                        ..Default::default()
                    },
                    status: None,
                })
            })
            .collect()
    })
}

fn secrets() -> BTreeMap<ObjectKey, Arc<Secret>> {
    let (cert, key) = kongress::pki::generate_self_signed_pem("example.com").expect("certificate");
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "good", "namespace": "default"},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": cert, "tls.key": key}
    }))
    .expect("secret");
    BTreeMap::from([(ObjectKey::new("default", "good"), Arc::new(secret))])
}

fn plan(gateways: &[Arc<Gateway>], secrets: &BTreeMap<ObjectKey, Arc<Secret>>, mode: PortMode) -> ClassPlan {
    plan_class(&PlanInput {
        gateways,
        secrets,
        grants: &[],
        settings: PlanSettings {
            status_port: 8100,
            admin_port: 8444,
            port_mode: mode,
        },
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn listen_plan_is_consistent_with_the_verdicts(gateways in gateways(), shifted in prop::bool::ANY) {
        let secrets = secrets();
        let mode = if shifted { PortMode::Shifted } else { PortMode::ListenerPort };
        let plan = plan(&gateways, &secrets, mode);

        let mut sockets = BTreeSet::new();
        let mut port_names = BTreeSet::new();
        let mut served = BTreeSet::new();
        for entry in &plan.listen.entries {
            let transport = entry.protocol.transport();
            prop_assert!(sockets.insert((entry.container_port, transport)), "two entries bind {:?}", entry);
            prop_assert!(port_names.insert(entry.port_name.clone()), "port name {} used twice", entry.port_name);
            prop_assert!(entry.port != 8100 && entry.port != 8444 && entry.port != 0);
            for key in &entry.listeners {
                prop_assert!(served.insert(key.clone()), "{:?} served twice", key);
            }
        }
        for gateway in &plan.gateways {
            for listener in &gateway.listeners {
                let key = kongress::plan::ListenerKey { gateway: gateway.key.clone(), listener: listener.name.clone() };
                prop_assert_eq!(listener.programmed, served.contains(&key), "{:?}", listener);
                if listener.programmed {
                    prop_assert!(listener.accepted.ok && !listener.is_conflicted());
                }
            }
        }
    }

    #[test]
    fn a_newer_gateway_never_changes_the_verdicts_of_older_ones(gateways in gateways()) {
        let secrets = secrets();
        let older = &gateways[..gateways.len() - 1];
        let before = plan(older, &secrets, PortMode::ListenerPort);
        let after = plan(&gateways, &secrets, PortMode::ListenerPort);
        for gateway in &before.gateways {
            prop_assert_eq!(Some(gateway), after.gateway(&gateway.key));
        }
    }

    #[test]
    fn any_plan_renders_a_data_plane(gateways in gateways()) {
        let secrets = secrets();
        let plan = plan(&gateways, &secrets, PortMode::ListenerPort);
        let names = data_plane_names("kongress", "kongress-system");
        let data_plane = render(&RenderInput {
            class_name: "kongress",
            class_uid: "uid",
            names: &names,
            proxy: &KongProxySpec::default(),
            listen: &plan.listen,
            requested_addresses: &plan.requested_addresses,
            admin_cert_fingerprint: "fp",
        });
        let ports = data_plane.deployment.spec.and_then(|s| s.template.spec).map(|p| p.containers[0].ports.clone().unwrap_or_default()).unwrap_or_default();
        let names: BTreeSet<String> = ports.iter().filter_map(|p| p.name.clone()).collect();
        prop_assert_eq!(names.len(), ports.len(), "container port names must be unique");
        prop_assert_eq!(data_plane.proxy_service.is_some(), !plan.listen.entries.is_empty());
    }
}
