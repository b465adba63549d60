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
use kongress::plan::{ClassPlan, ListenerKey, ListenerVerdict, PlanInput, PlanSettings, plan_class};
use kongress::render::{RenderInput, data_plane_names, render};
use proptest::prelude::*;

/// Any listener: few ports and hostnames, so that clashes are common.
fn listener() -> impl Strategy<Value = GatewayListeners> {
    listener_with(
        vec!["HTTP", "HTTPS", "TLS", "TCP", "UDP", "example.com/odd"],
        vec![0, 53, 80, 443, 8100, 8444, 9000, 10080, 65535],
    )
}

/// TLS listeners on one port: the rare case of one hostname with two sets of
/// certificates becomes common.
fn tls_listener() -> impl Strategy<Value = GatewayListeners> {
    listener_with(vec!["HTTPS", "TLS"], vec![443])
}

fn listener_with(protocols: Vec<&'static str>, ports: Vec<i32>) -> impl Strategy<Value = GatewayListeners> {
    let protocol = prop::sample::select(protocols);
    let port = prop::sample::select(ports);
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
    let certificate = prop::option::of(prop::collection::vec(
        prop::sample::select(vec!["good", "other", "missing"]),
        0..3,
    ));
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
                    certificate_refs: certificate.map(|names| {
                        names
                            .into_iter()
                            .map(|name| GatewayListenersTlsCertificateRefs {
                                name: name.into(),
                                ..Default::default()
                            })
                            .collect()
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
    gateways_of(listener())
}

fn gateways_of(listener: impl Strategy<Value = GatewayListeners>) -> impl Strategy<Value = Vec<Arc<Gateway>>> {
    prop::collection::vec(prop::collection::vec(listener, 0..5), 1..5).prop_map(|all| {
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

/// Two valid certificate Secrets, `good` and `other`; `missing` does not exist.
fn secrets() -> BTreeMap<ObjectKey, Arc<Secret>> {
    let (cert, key) = kongress::pki::generate_self_signed_pem("example.com").expect("certificate");
    ["good", "other"]
        .into_iter()
        .map(|name| {
            let secret: Secret = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "default"},
                "type": "kubernetes.io/tls",
                "stringData": {"tls.crt": cert, "tls.key": key}
            }))
            .expect("secret");
            (ObjectKey::new("default", name), Arc::new(secret))
        })
        .collect()
}

/// Whether a listener passes TLS through (only TLS listeners have a mode that counts).
fn passthrough(listener: &GatewayListeners) -> bool {
    listener.protocol == "TLS"
        && matches!(
            listener.tls.as_ref().and_then(|t| t.mode.as_ref()),
            Some(GatewayListenersTlsMode::Passthrough)
        )
}

fn hostname(listener: &GatewayListeners) -> Option<String> {
    listener.hostname.as_ref().map(|h| h.to_ascii_lowercase())
}

/// The certificate names of a TLS-terminating listener (the generated Gateways are all in
/// one namespace).
fn certificate_names(listener: &GatewayListeners) -> BTreeSet<String> {
    let terminates = listener.protocol == "HTTPS" || (listener.protocol == "TLS" && !passthrough(listener));
    if !terminates {
        return BTreeSet::new();
    }
    listener
        .tls
        .iter()
        .flat_map(|t| t.certificate_refs.iter().flatten())
        .map(|r| r.name.clone())
        .collect()
}

fn verdict<'a>(plan: &'a ClassPlan, key: &ListenerKey) -> &'a ListenerVerdict {
    plan.gateway(&key.gateway)
        .and_then(|g| g.listeners.iter().find(|l| l.name == key.listener))
        .expect("a listener of the plan")
}

/// Listeners on one Kong socket are told apart by hostname, or belong to different Gateways
/// and are identical (and then recorded as shared); sharing is recorded for nothing else.
fn sockets_hold_only_distinct_or_identical_listeners(gateways: &[Arc<Gateway>]) -> Result<(), TestCaseError> {
    let secrets = secrets();
    let plan = plan(gateways, &secrets, PortMode::ListenerPort);
    let spec = |key: &ListenerKey| {
        gateways
            .iter()
            .find(|g| ObjectKey::of(g.as_ref()) == key.gateway)
            .and_then(|g| g.spec.listeners.iter().find(|l| l.name == key.listener).cloned())
    };
    for entry in &plan.listen.entries {
        let listeners: Vec<(ListenerKey, GatewayListeners)> = entry
            .listeners
            .iter()
            .filter_map(|k| spec(k).map(|l| (k.clone(), l)))
            .collect();
        prop_assert_eq!(listeners.len(), entry.listeners.len());
        for (i, (a_key, a)) in listeners.iter().enumerate() {
            for (b_key, b) in &listeners[i + 1..] {
                prop_assert_eq!(a.port, b.port);
                let pair = format!("{a_key:?} and {b_key:?} on {entry:?}");
                // Checked from the spec objects, not from the planner's own notion of a claim.
                prop_assert!(
                    matches!(a.protocol.as_str(), "HTTP" | "HTTPS" | "TLS"),
                    "{} cannot share a socket: {}",
                    a.protocol,
                    pair
                );
                prop_assert_eq!(&a.protocol, &b.protocol, "{}", pair);
                prop_assert_eq!(passthrough(a), passthrough(b), "{}", pair);
                let same_host = hostname(a) == hostname(b);
                if a_key.gateway == b_key.gateway {
                    prop_assert!(!same_host, "indistinct listeners of one Gateway: {}", pair);
                } else if same_host {
                    prop_assert_eq!(certificate_names(a), certificate_names(b), "{}", pair);
                    let a_verdict = verdict(&plan, a_key);
                    prop_assert!(a_verdict.shared_with.contains(b_key), "{} not recorded as shared", pair);
                    prop_assert!(
                        verdict(&plan, b_key).shared_with.contains(a_key),
                        "{} not recorded as shared",
                        pair
                    );
                }
            }
        }
    }
    // Sharing is only ever recorded between listeners on one socket with one hostname.
    for gateway in &plan.gateways {
        for listener in &gateway.listeners {
            let key = ListenerKey {
                gateway: gateway.key.clone(),
                listener: listener.name.clone(),
            };
            for other in &listener.shared_with {
                prop_assert!(other.gateway != gateway.key);
                let (Some(a), Some(b)) = (spec(&key), spec(other)) else {
                    prop_assert!(false, "unknown listener in shared_with of {:?}", key);
                    continue;
                };
                prop_assert_eq!(a.port, b.port);
                prop_assert_eq!(hostname(&a), hostname(&b));
                prop_assert!(verdict(&plan, other).programmed && listener.programmed);
            }
        }
    }
    Ok(())
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
            let later = after.gateway(&gateway.key);
            prop_assert!(later.is_some());
            let Some(later) = later else { continue };
            prop_assert_eq!(gateway.listeners.len(), later.listeners.len());
            for (then, now) in gateway.listeners.iter().zip(&later.listeners) {
                // The newer Gateway may join a listener (shared_with grows); nothing else moves.
                prop_assert!(then.shared_with.iter().all(|k| now.shared_with.contains(k)), "{:?} -> {:?}", then, now);
                let mut now = now.clone();
                now.shared_with.clone_from(&then.shared_with);
                prop_assert_eq!(then, &now);
            }
            prop_assert_eq!(&gateway.addresses, &later.addresses);
            prop_assert_eq!(&gateway.invalid_parameters, &later.invalid_parameters);
        }
    }

    #[test]
    fn listeners_on_one_kong_socket_are_always_distinct_or_identical_across_gateways(gateways in gateways()) {
        sockets_hold_only_distinct_or_identical_listeners(&gateways)?;
    }

    #[test]
    fn tls_listeners_share_a_socket_and_hostname_only_with_the_same_certificates(gateways in gateways_of(tls_listener())) {
        sockets_hold_only_distinct_or_identical_listeners(&gateways)?;
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
