//! Properties of planning and rendering over arbitrary Gateways: no panic, a consistent
//! listen plan, listeners on one Kong socket always distinct or identical, verdicts that
//! do not depend on the input order, rejected Gateways that never reach Kong, and older
//! Gateways never disturbed by newer ones. Creation times tie often, so the namespace/name
//! tie-break is exercised too.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gateway_api::gateways::{
    Gateway, GatewayAddresses, GatewayInfrastructure, GatewayInfrastructureParametersRef, GatewayListeners,
    GatewayListenersAllowedRoutes, GatewayListenersAllowedRoutesKinds, GatewayListenersTls,
    GatewayListenersTlsCertificateRefs, GatewayListenersTlsMode, GatewaySpec,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kongress::api::{KongProxySpec, ObjectKey, PortMode};
use kongress::plan::{ClassPlan, ListenerKey, ListenerVerdict, PlanInput, PlanSettings, plan_class, precedence_order};
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

/// What a generated Gateway may carry besides listeners.
#[derive(Clone, Debug)]
struct Extras {
    /// Minutes after an epoch; few values, so that creation times tie and the
    /// namespace/name tie-break decides.
    created: i64,
    namespace: &'static str,
    /// An `infrastructure.parametersRef`, which kongress refuses (InvalidParameters).
    parameters_ref: bool,
    address: Option<(&'static str, &'static str)>,
}

fn extras() -> impl Strategy<Value = Extras> {
    (
        0..3i64,
        prop::sample::select(vec!["default", "team-b"]),
        prop::bool::weighted(0.1),
        prop::option::weighted(
            0.2,
            prop::sample::select(vec![
                ("IPAddress", "192.0.2.10"),
                ("IPAddress", "2001:DB8::1"),
                ("IPAddress", "127.0.0.1"),
                ("IPAddress", "not-an-ip"),
                ("Hostname", "gw.example.com"),
            ]),
        ),
    )
        .prop_map(|(created, namespace, parameters_ref, address)| Extras {
            created,
            namespace,
            parameters_ref,
            address,
        })
}

fn gateways_of(listener: impl Strategy<Value = GatewayListeners>) -> impl Strategy<Value = Vec<Arc<Gateway>>> {
    prop::collection::vec((prop::collection::vec(listener, 0..5), extras()), 1..5).prop_map(|all| {
        all.into_iter()
            .enumerate()
            .map(|(i, (mut listeners, extras))| {
                // Listener names are unique inside a Gateway (the API server enforces it).
                let mut seen = BTreeSet::new();
                listeners.retain(|l| seen.insert(l.name.clone()));
                Arc::new(Gateway {
                    metadata: ObjectMeta {
                        name: Some(format!("gw-{i}")),
                        namespace: Some(extras.namespace.into()),
                        creation_timestamp: Some(Time(
                            Timestamp::from_second(1_700_000_000 + extras.created * 60).expect("time"),
                        )),
                        ..Default::default()
                    },
                    spec: GatewaySpec {
                        gateway_class_name: "kongress".into(),
                        listeners,
                        infrastructure: extras.parameters_ref.then(|| GatewayInfrastructure {
                            parameters_ref: Some(GatewayInfrastructureParametersRef {
                                group: "example.com".into(),
                                kind: "Params".into(),
                                name: "p".into(),
                            }),
                            ..Default::default()
                        }),
                        addresses: extras.address.map(|(type_, value)| {
                            vec![GatewayAddresses {
                                r#type: Some(type_.into()),
                                value: Some(value.into()),
                            }]
                        }),
                        ..Default::default()
                    },
                    status: None,
                })
            })
            .collect()
    })
}

/// Two valid certificate Secrets, `good` and `other`, in each namespace the generated
/// Gateways use; `missing` does not exist.
fn secrets() -> BTreeMap<ObjectKey, Arc<Secret>> {
    let (cert, key) = kongress::pki::generate_self_signed_pem("example.com").expect("certificate");
    ["default", "team-b"]
        .into_iter()
        .flat_map(|namespace| ["good", "other"].map(|name| (namespace, name)))
        .map(|(namespace, name)| {
            let secret: Secret = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": namespace},
                "type": "kubernetes.io/tls",
                "stringData": {"tls.crt": cert, "tls.key": key}
            }))
            .expect("secret");
            (ObjectKey::new(namespace, name), Arc::new(secret))
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

/// The certificate Secrets a TLS-terminating listener of a Gateway in `namespace` names.
fn certificate_keys(namespace: &str, listener: &GatewayListeners) -> BTreeSet<ObjectKey> {
    let terminates = listener.protocol == "HTTPS" || (listener.protocol == "TLS" && !passthrough(listener));
    if !terminates {
        return BTreeSet::new();
    }
    listener
        .tls
        .iter()
        .flat_map(|t| t.certificate_refs.iter().flatten())
        .map(|r| ObjectKey::new(r.namespace.as_deref().unwrap_or(namespace), &r.name))
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
                    prop_assert_eq!(
                        certificate_keys(&a_key.gateway.namespace, a),
                        certificate_keys(&b_key.gateway.namespace, b),
                        "{}",
                        pair
                    );
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
        newer_gateway_leaves_older_verdicts(&gateways)?;
    }

    #[test]
    fn a_newer_gateway_never_changes_the_verdicts_of_older_tls_listeners(gateways in gateways_of(tls_listener())) {
        newer_gateway_leaves_older_verdicts(&gateways)?;
    }

    #[test]
    fn verdicts_do_not_depend_on_the_input_order_of_gateways(
        (gateways, shuffled) in gateways().prop_flat_map(|g| (Just(g.clone()), Just(g).prop_shuffle())),
        shifted in prop::bool::ANY,
    ) {
        let secrets = secrets();
        let mode = if shifted { PortMode::Shifted } else { PortMode::ListenerPort };
        prop_assert_eq!(plan(&gateways, &secrets, mode), plan(&shuffled, &secrets, mode));
    }

    #[test]
    fn a_gateway_that_is_not_accepted_reaches_neither_kong_nor_the_service(gateways in gateways()) {
        let secrets = secrets();
        let plan = plan(&gateways, &secrets, PortMode::ListenerPort);
        let listed: BTreeSet<&ObjectKey> = plan.listen.entries.iter().flat_map(|e| e.listeners.iter().map(|k| &k.gateway)).collect();
        for gateway in plan.gateways.iter().filter(|g| g.rejection().is_some()) {
            prop_assert!(!listed.contains(&gateway.key), "{} is rejected but in the listen plan", gateway.key);
            prop_assert!(gateway.listeners.iter().all(|l| !l.programmed && l.shared_with.is_empty()));
            for request in &gateway.addresses.requested {
                // Another accepted Gateway may ask for the same address; none here does.
                let asked_elsewhere = plan.gateways.iter().any(|g| {
                    g.rejection().is_none() && g.addresses.requested.iter().any(|r| r.ip == request.ip)
                });
                prop_assert!(asked_elsewhere || !plan.requested_addresses.contains(&request.ip.to_string()));
            }
        }
        // And it takes no port from anyone: planning without it changes no other verdict.
        let accepted_only: Vec<Arc<Gateway>> = gateways
            .iter()
            .filter(|g| plan.gateway(&ObjectKey::of(g.as_ref())).is_some_and(|p| p.rejection().is_none()))
            .cloned()
            .collect();
        let without = self::plan(&accepted_only, &secrets, PortMode::ListenerPort);
        for gateway in &without.gateways {
            prop_assert_eq!(Some(gateway), plan.gateway(&gateway.key));
        }
        prop_assert_eq!(&without.listen, &plan.listen);
    }

    #[test]
    fn supported_kinds_never_repeat_a_kind(gateways in gateways()) {
        let secrets = secrets();
        let plan = plan(&gateways, &secrets, PortMode::ListenerPort);
        for listener in plan.gateways.iter().flat_map(|g| &g.listeners) {
            let unique: BTreeSet<_> = listener.supported_kinds.iter().collect();
            prop_assert_eq!(unique.len(), listener.supported_kinds.len(), "{:?}", listener);
        }
    }
}

/// A Gateway added last in precedence order changes no verdict of the older ones, except
/// that it may join their listeners or overlap their hostnames.
fn newer_gateway_leaves_older_verdicts(gateways: &[Arc<Gateway>]) -> Result<(), TestCaseError> {
    let secrets = secrets();
    let ordered = precedence_order(gateways);
    let older = &ordered[..ordered.len() - 1];
    let before = plan(older, &secrets, PortMode::ListenerPort);
    let after = plan(gateways, &secrets, PortMode::ListenerPort);
    for gateway in &before.gateways {
        let later = after.gateway(&gateway.key);
        prop_assert!(later.is_some());
        let Some(later) = later else { continue };
        prop_assert_eq!(gateway.listeners.len(), later.listeners.len());
        for (then, now) in gateway.listeners.iter().zip(&later.listeners) {
            // The newer Gateway may join a listener (shared_with grows) or serve a hostname
            // overlapping it (overlapping_tls grows); nothing else moves.
            prop_assert!(
                then.shared_with.iter().all(|k| now.shared_with.contains(k)),
                "{:?} -> {:?}",
                then,
                now
            );
            prop_assert!(
                then.overlapping_tls.iter().all(|k| now.overlapping_tls.contains(k)),
                "{:?} -> {:?}",
                then,
                now
            );
            let mut now = now.clone();
            now.shared_with.clone_from(&then.shared_with);
            now.overlapping_tls.clone_from(&then.overlapping_tls);
            prop_assert_eq!(then, &now);
        }
        prop_assert_eq!(&gateway.addresses, &later.addresses);
        prop_assert_eq!(&gateway.invalid_parameters, &later.invalid_parameters);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

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
