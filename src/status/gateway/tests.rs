//! Gateway status rules, one test per rule of design section 5.

use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::api::ObjectKey;
use crate::plan::{AddressRequest, AddressVerdict, ListenerKey, ListenerVerdict, RouteKind, Verdict};

fn now() -> Time {
    Time(Timestamp::from_second(1_000).expect("time"))
}

fn ok(reason: &'static str) -> Verdict {
    Verdict {
        ok: true,
        reason,
        message: "ok".into(),
    }
}

fn fail(reason: &'static str) -> Verdict {
    Verdict {
        ok: false,
        reason,
        message: format!("because {reason}"),
    }
}

fn listener(name: &str, accepted: Verdict, programmed: bool) -> ListenerVerdict {
    ListenerVerdict {
        name: name.into(),
        port: 80,
        protocol: "HTTP".into(),
        accepted,
        conflicted: None,
        resolved_refs: ok(reasons::RESOLVED_REFS),
        supported_kinds: vec![RouteKind::HttpRoute, RouteKind::GrpcRoute],
        programmed,
        shared_with: vec![],
        overlapping_tls: vec![],
        conflicts_with_sibling: false,
    }
}

fn plan(listeners: Vec<ListenerVerdict>) -> GatewayPlan {
    GatewayPlan {
        key: ObjectKey::new("default", "gw"),
        generation: Some(7),
        listeners,
        invalid_parameters: None,
        addresses: AddressVerdict::default(),
        backend_client_certificate: None,
    }
}

fn serving() -> DataPlaneState {
    DataPlaneState {
        class_problem: None,
        refused: None,
        deployment: DeploymentState::Available,
        load_balancer: vec![],
        external_ips: vec![],
        cluster_ips: vec!["10.96.0.10".into()],
        config: crate::status::ConfigState::Applied,
    }
}

fn status(plan: &GatewayPlan, data_plane: &DataPlaneState) -> GatewayStatus {
    gateway_status(plan, data_plane, None, &|_| 0, &now())
}

fn condition<'a>(status: &'a GatewayStatus, type_: &str) -> (&'a str, &'a str) {
    let c = status
        .conditions
        .as_ref()
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .expect("condition present");
    (c.status.as_str(), c.reason.as_str())
}

fn listener_condition<'a>(status: &'a GatewayStatus, name: &str, type_: &str) -> (&'a str, &'a str) {
    let l = status
        .listeners
        .as_ref()
        .and_then(|ls| ls.iter().find(|l| l.name == name))
        .expect("listener present");
    let c = l
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .expect("condition present");
    (c.status.as_str(), c.reason.as_str())
}

#[test]
fn gateway_with_all_listeners_valid_and_a_running_data_plane_is_programmed() {
    let s = status(&plan(vec![listener("web", ok("Accepted"), true)]), &serving());
    assert_eq!(condition(&s, "Accepted"), ("True", "Accepted"));
    assert_eq!(condition(&s, "Programmed"), ("True", "Programmed"));
    assert_eq!(listener_condition(&s, "web", "Programmed"), ("True", "Programmed"));
    assert_eq!(listener_condition(&s, "web", "Conflicted"), ("False", "NoConflicts"));
    assert_eq!(listener_condition(&s, "web", "ResolvedRefs"), ("True", "ResolvedRefs"));
}

#[test]
fn some_rejected_listeners_keep_the_gateway_accepted_with_listeners_not_valid() {
    let s = status(
        &plan(vec![
            listener("web", ok("Accepted"), true),
            listener("odd", fail(reasons::UNSUPPORTED_PROTOCOL), false),
        ]),
        &serving(),
    );
    assert_eq!(condition(&s, "Accepted"), ("True", "ListenersNotValid"));
    assert_eq!(condition(&s, "Programmed"), ("True", "Programmed"));
    assert_eq!(
        listener_condition(&s, "odd", "Accepted"),
        ("False", "UnsupportedProtocol")
    );
    assert_eq!(listener_condition(&s, "odd", "Programmed"), ("False", "Invalid"));
}

#[test]
fn all_rejected_listeners_make_the_gateway_not_accepted_with_listeners_not_valid() {
    let s = status(
        &plan(vec![listener("odd", fail(reasons::UNSUPPORTED_PROTOCOL), false)]),
        &serving(),
    );
    assert_eq!(condition(&s, "Accepted"), ("False", "ListenersNotValid"));
    assert_eq!(condition(&s, "Programmed"), ("False", "Invalid"));
}

#[test]
fn conflicted_listener_reports_conflicted_true_with_the_conflict_reason() {
    let mut l = listener("web", fail(reasons::HOSTNAME_CONFLICT), false);
    l.conflicted = Some(fail(reasons::HOSTNAME_CONFLICT));
    let s = status(&plan(vec![l]), &serving());
    assert_eq!(
        listener_condition(&s, "web", "Conflicted"),
        ("True", "HostnameConflict")
    );
}

#[test]
fn missing_deployment_is_programmed_false_pending() {
    let data_plane = DataPlaneState {
        deployment: DeploymentState::Missing,
        ..serving()
    };
    let s = status(&plan(vec![listener("web", ok("Accepted"), true)]), &data_plane);
    assert_eq!(condition(&s, "Programmed"), ("False", "Pending"));
    assert_eq!(listener_condition(&s, "web", "Programmed"), ("False", "Pending"));
}

#[test]
fn deployment_without_available_replica_is_programmed_false_pending() {
    let data_plane = DataPlaneState {
        deployment: DeploymentState::Progressing {
            message: "0/1 ready".into(),
        },
        ..serving()
    };
    let s = status(&plan(vec![listener("web", ok("Accepted"), true)]), &data_plane);
    assert_eq!(condition(&s, "Programmed"), ("False", "Pending"));
}

#[test]
fn deployment_the_cluster_cannot_run_is_programmed_false_no_resources() {
    let data_plane = DataPlaneState {
        deployment: DeploymentState::NoResources {
            message: "quota".into(),
        },
        ..serving()
    };
    let s = status(&plan(vec![listener("web", ok("Accepted"), true)]), &data_plane);
    assert_eq!(condition(&s, "Programmed"), ("False", "NoResources"));
}

#[test]
fn service_without_address_is_programmed_false_address_not_assigned() {
    let data_plane = DataPlaneState {
        cluster_ips: vec![],
        config: crate::status::ConfigState::Applied,
        ..serving()
    };
    let s = status(&plan(vec![listener("web", ok("Accepted"), true)]), &data_plane);
    assert_eq!(condition(&s, "Programmed"), ("False", "AddressNotAssigned"));
    assert!(s.addresses.is_none());
}

#[test]
fn load_balancer_ingress_is_preferred_over_cluster_ip() {
    let data_plane = DataPlaneState {
        load_balancer: vec![ServiceAddress {
            type_: "Hostname",
            value: "lb.example.com".into(),
        }],
        ..serving()
    };
    let s = status(&plan(vec![listener("web", ok("Accepted"), true)]), &data_plane);
    let addresses = s.addresses.expect("addresses");
    assert_eq!(addresses.len(), 1);
    assert_eq!(
        (addresses[0].r#type.as_deref(), addresses[0].value.as_str()),
        (Some("Hostname"), "lb.example.com")
    );
}

#[test]
fn cluster_ip_is_the_address_without_a_load_balancer() {
    let s = status(&plan(vec![listener("web", ok("Accepted"), true)]), &serving());
    let addresses = s.addresses.expect("addresses");
    assert_eq!(addresses[0].value, "10.96.0.10");
    assert_eq!(addresses[0].r#type.as_deref(), Some("IPAddress"));
}

#[test]
fn requested_address_is_reported_once_the_service_carries_it() {
    let mut p = plan(vec![listener("web", ok("Accepted"), true)]);
    p.addresses.requested = vec![AddressRequest {
        value: "192.0.2.10".into(),
        ip: "192.0.2.10".parse().expect("ip"),
    }];
    let waiting = status(&p, &serving());
    assert_eq!(condition(&waiting, "Programmed"), ("False", "AddressNotAssigned"));
    let carried = DataPlaneState {
        external_ips: vec!["192.0.2.10".into()],
        ..serving()
    };
    let s = status(&p, &carried);
    assert_eq!(condition(&s, "Programmed"), ("True", "Programmed"));
    assert_eq!(s.addresses.expect("addresses")[0].value, "192.0.2.10");
}

#[test]
fn data_plane_refused_by_the_api_server_is_programmed_false_invalid_with_the_reason() {
    let data_plane = DataPlaneState {
        refused: Some("The API server refused the data plane: quota".into()),
        ..serving()
    };
    let s = status(&plan(vec![listener("web", ok("Accepted"), true)]), &data_plane);
    assert_eq!(condition(&s, "Programmed"), ("False", "Invalid"));
    let message = &s
        .conditions
        .as_ref()
        .expect("conditions")
        .iter()
        .find(|c| c.type_ == "Programmed")
        .expect("Programmed")
        .message;
    assert!(message.contains("quota"), "{message}");
}

#[test]
fn unusable_address_is_programmed_false_address_not_usable() {
    let mut p = plan(vec![listener("web", ok("Accepted"), true)]);
    p.addresses.unusable = Some("bad".into());
    let s = status(&p, &serving());
    assert_eq!(condition(&s, "Programmed"), ("False", "AddressNotUsable"));
}

#[test]
fn unsupported_address_type_is_accepted_false_unsupported_address() {
    let mut p = plan(vec![listener("web", ok("Accepted"), true)]);
    p.addresses.unsupported = Some("Hostname".into());
    let s = status(&p, &serving());
    assert_eq!(condition(&s, "Accepted"), ("False", "UnsupportedAddress"));
}

#[test]
fn a_class_problem_leaves_the_gateway_pending_not_invalid_parameters() {
    let data_plane = DataPlaneState {
        class_problem: Some("GatewayClass kong is not accepted (KongProxy missing)".into()),
        ..serving()
    };
    let s = status(&plan(vec![listener("web", ok("Accepted"), true)]), &data_plane);
    // InvalidParameters is for the Gateway's own parametersRef; kongress keeps the class's
    // data plane as it was, so it can say neither "not accepted" nor "programmed".
    assert_eq!(condition(&s, "Accepted"), ("Unknown", "Pending"));
    assert_eq!(condition(&s, "Programmed"), ("Unknown", "Pending"));
    assert_eq!(listener_condition(&s, "web", "Programmed"), ("Unknown", "Pending"));
    assert!(condition_message(&s, "Accepted").contains("KongProxy missing"));
}

#[test]
fn gateway_parameters_ref_makes_the_gateway_not_accepted_with_invalid_parameters() {
    let mut p = plan(vec![listener("web", ok("Accepted"), true)]);
    p.invalid_parameters = Some("not supported".into());
    let s = status(&p, &serving());
    assert_eq!(condition(&s, "Accepted"), ("False", "InvalidParameters"));
}

#[test]
fn conditions_carry_the_gateway_generation() {
    let s = status(&plan(vec![listener("web", ok("Accepted"), true)]), &serving());
    for c in s.conditions.iter().flatten() {
        assert_eq!(c.observed_generation, Some(7));
    }
    for l in s.listeners.iter().flatten() {
        assert!(l.conditions.iter().all(|c| c.observed_generation == Some(7)));
    }
}

#[test]
fn supported_kinds_name_the_gateway_api_group() {
    let s = status(&plan(vec![listener("web", ok("Accepted"), true)]), &serving());
    let kinds = s.listeners.expect("listeners")[0]
        .supported_kinds
        .clone()
        .expect("kinds");
    let names: Vec<(Option<&str>, &str)> = kinds.iter().map(|k| (k.group.as_deref(), k.kind.as_str())).collect();
    assert_eq!(
        names,
        [
            (Some(GATEWAY_API_GROUP), "HTTPRoute"),
            (Some(GATEWAY_API_GROUP), "GRPCRoute")
        ]
    );
}

#[test]
fn a_listener_conflicted_within_its_gateway_lists_no_supported_kinds_but_one_beaten_by_an_older_gateway_keeps_them() {
    let mut within = listener("tls", fail(reasons::PROTOCOL_CONFLICT), false);
    within.conflicted = Some(fail(reasons::PROTOCOL_CONFLICT));
    within.conflicts_with_sibling = true;
    let mut across = listener("web", fail(reasons::HOSTNAME_CONFLICT), false);
    across.conflicted = Some(fail(reasons::HOSTNAME_CONFLICT));
    let s = status(
        &plan(vec![within, across, listener("other", ok("Accepted"), true)]),
        &serving(),
    );
    let kinds: Vec<usize> = s
        .listeners
        .expect("listeners")
        .iter()
        .map(|l| l.supported_kinds.as_ref().map_or(0, Vec::len))
        .collect();
    assert_eq!(kinds, [0, 2, 2]);
}

#[test]
fn attached_routes_count_even_on_a_rejected_listener() {
    let p = plan(vec![listener("odd", fail(reasons::UNSUPPORTED_PROTOCOL), false)]);
    let s = gateway_status(&p, &serving(), None, &|name| if name == "odd" { 2 } else { 0 }, &now());
    assert_eq!(s.listeners.expect("listeners")[0].attached_routes, 2);
}

#[test]
fn recomputing_an_unchanged_status_gives_an_equal_status() {
    let p = plan(vec![listener("web", ok("Accepted"), true)]);
    let first = status(&p, &serving());
    let later = Time(Timestamp::from_second(9_000).expect("time"));
    let second = gateway_status(&p, &serving(), Some(&first), &|_| 0, &later);
    assert_eq!(first, second);
}

fn condition_message<'a>(status: &'a GatewayStatus, type_: &str) -> &'a str {
    status
        .conditions
        .as_ref()
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .map(|c| c.message.as_str())
        .expect("condition present")
}

fn shared(name: &str, port: i32, protocol: &str, with: &[(&str, &str, &str)]) -> ListenerVerdict {
    let mut l = listener(name, ok("Accepted"), true);
    l.port = port;
    l.protocol = protocol.into();
    l.shared_with = with
        .iter()
        .map(|(namespace, gateway, listener)| ListenerKey {
            gateway: ObjectKey::new(*namespace, *gateway),
            listener: (*listener).into(),
        })
        .collect();
    l
}

#[test]
fn gateway_without_shared_listeners_is_listeners_isolated_true() {
    let s = status(&plan(vec![listener("web", ok("Accepted"), true)]), &serving());
    assert_eq!(condition(&s, "kongress.dev/ListenersIsolated"), ("True", "Isolated"));
    let c = s
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "kongress.dev/ListenersIsolated")
        .expect("condition");
    assert_eq!(c.observed_generation, Some(7));
}

#[test]
fn shared_listener_makes_listeners_isolated_false_naming_the_listener_and_the_other_gateway() {
    let s = status(
        &plan(vec![shared("web", 80, "HTTP", &[("default", "other", "http")])]),
        &serving(),
    );
    assert_eq!(
        condition(&s, "kongress.dev/ListenersIsolated"),
        ("False", "SharedListeners")
    );
    assert_eq!(
        condition_message(&s, "kongress.dev/ListenersIsolated"),
        "Listener \"web\" (port 80, HTTP) is shared with default/other (listener \"http\"); traffic to it cannot be told apart, routes of all these Gateways are served together"
    );
    // Sharing is how the listener is served, not a fault of it.
    assert_eq!(listener_condition(&s, "web", "Accepted"), ("True", "Accepted"));
    assert_eq!(listener_condition(&s, "web", "Conflicted"), ("False", "NoConflicts"));
    assert_eq!(listener_condition(&s, "web", "Programmed"), ("True", "Programmed"));
}

#[test]
fn listeners_isolated_message_names_every_shared_listener_and_every_other_gateway() {
    let s = status(
        &plan(vec![
            shared("web", 80, "HTTP", &[("a", "one", "http"), ("b", "two", "web")]),
            listener("own", ok("Accepted"), true),
            shared("secure", 443, "HTTPS", &[("a", "one", "https")]),
        ]),
        &serving(),
    );
    let message = condition_message(&s, "kongress.dev/ListenersIsolated");
    assert_eq!(
        message,
        "Listener \"web\" (port 80, HTTP) is shared with a/one (listener \"http\"), b/two (listener \"web\"); \
         listener \"secure\" (port 443, HTTPS) is shared with a/one (listener \"https\"); \
         traffic to them cannot be told apart, routes of all these Gateways are served together"
    );
}

#[test]
fn a_gateway_whose_only_listener_waits_for_its_secret_is_listeners_not_valid_and_not_programmed() {
    let mut secure = listener("secure", ok("Accepted"), false);
    secure.protocol = "HTTPS".into();
    secure.resolved_refs = fail(reasons::INVALID_CERTIFICATE_REF);
    let s = status(&plan(vec![secure]), &serving());
    assert_eq!(condition(&s, "Accepted"), ("True", "ListenersNotValid"));
    assert_eq!(condition(&s, "Programmed"), ("False", "Invalid"));
    assert!(
        condition_message(&s, "Accepted").contains("accepted but not served: secure (InvalidCertificateRef)"),
        "{}",
        condition_message(&s, "Accepted")
    );
    assert_eq!(listener_condition(&s, "secure", "Programmed"), ("False", "Invalid"));
    assert_eq!(
        listener_condition(&s, "secure", "ResolvedRefs"),
        ("False", "InvalidCertificateRef")
    );
}

#[test]
fn listeners_not_valid_names_the_rejected_the_idle_and_the_served_listeners() {
    let mut idle = listener("idle", ok("Accepted"), false);
    idle.resolved_refs = fail(reasons::INVALID_ROUTE_KINDS);
    let s = status(
        &plan(vec![
            listener("web", ok("Accepted"), true),
            listener("odd", fail(reasons::UNSUPPORTED_PROTOCOL), false),
            idle,
        ]),
        &serving(),
    );
    assert_eq!(condition(&s, "Accepted"), ("True", "ListenersNotValid"));
    assert_eq!(condition(&s, "Programmed"), ("True", "Programmed"));
    assert_eq!(
        condition_message(&s, "Accepted"),
        "Listeners not accepted: odd (UnsupportedProtocol); accepted but not served: idle (InvalidRouteKinds); served: web; see the listener conditions"
    );
}

#[test]
fn a_conflicted_listener_is_programmed_false_with_the_conflict_reason() {
    let mut l = listener("web", fail(reasons::PROTOCOL_CONFLICT), false);
    l.conflicted = Some(fail(reasons::PROTOCOL_CONFLICT));
    let s = status(&plan(vec![l, listener("api", ok("Accepted"), true)]), &serving());
    assert_eq!(
        listener_condition(&s, "web", "Programmed"),
        ("False", "ProtocolConflict")
    );
    assert_eq!(listener_condition(&s, "web", "Accepted"), ("False", "ProtocolConflict"));
    assert_eq!(
        listener_condition(&s, "web", "Conflicted"),
        ("True", "ProtocolConflict")
    );
}

#[test]
fn listeners_of_a_rejected_gateway_are_programmed_false_naming_the_gateway_problem() {
    let mut p = plan(vec![listener("web", ok("Accepted"), false)]);
    p.invalid_parameters = Some("infrastructure.parametersRef is not supported".into());
    let s = status(&p, &serving());
    assert_eq!(condition(&s, "Accepted"), ("False", "InvalidParameters"));
    assert_eq!(condition(&s, "Programmed"), ("False", "Invalid"));
    assert_eq!(listener_condition(&s, "web", "Programmed"), ("False", "Invalid"));
    let message = &s.listeners.as_ref().expect("listeners")[0]
        .conditions
        .iter()
        .find(|c| c.type_ == "Programmed")
        .expect("Programmed")
        .message;
    assert!(message.contains("parametersRef"), "{message}");
}

#[test]
fn status_addresses_echo_the_requested_address_as_written() {
    let mut p = plan(vec![listener("web", ok("Accepted"), true)]);
    p.addresses.requested = vec![AddressRequest {
        value: "2001:DB8:0::10".into(),
        ip: "2001:db8::10".parse().expect("ip"),
    }];
    let carried = DataPlaneState {
        external_ips: vec!["2001:db8::10".into()],
        ..serving()
    };
    let s = status(&p, &carried);
    assert_eq!(condition(&s, "Programmed"), ("True", "Programmed"));
    assert_eq!(s.addresses.expect("addresses")[0].value, "2001:DB8:0::10");
}

#[test]
fn a_requested_address_not_carried_yet_is_named_in_address_not_assigned() {
    let mut p = plan(vec![listener("web", ok("Accepted"), true)]);
    p.addresses.requested = vec![AddressRequest {
        value: "192.0.2.10".into(),
        ip: "192.0.2.10".parse().expect("ip"),
    }];
    let s = status(&p, &serving());
    assert_eq!(condition(&s, "Programmed"), ("False", "AddressNotAssigned"));
    assert!(condition_message(&s, "Programmed").contains("192.0.2.10"));
}

#[test]
fn an_unusable_requested_address_is_address_not_usable_naming_it() {
    let mut p = plan(vec![listener("web", ok("Accepted"), true)]);
    p.addresses.unusable = Some("Requested addresses cannot be used: 127.0.0.1 is in the loopback range".into());
    let s = status(&p, &serving());
    assert_eq!(condition(&s, "Accepted"), ("True", "Accepted"));
    assert_eq!(condition(&s, "Programmed"), ("False", "AddressNotUsable"));
    assert!(condition_message(&s, "Programmed").contains("127.0.0.1"));
}

#[test]
fn overlapping_tls_config_is_true_on_overlapping_listeners_and_absent_otherwise() {
    let mut wild = listener("wild", ok("Accepted"), true);
    wild.port = 443;
    wild.overlapping_tls = vec![ListenerKey {
        gateway: ObjectKey::new("default", "gw"),
        listener: "shop".into(),
    }];
    let plain = listener("web", ok("Accepted"), true);
    let s = status(&plan(vec![wild, plain]), &serving());
    assert_eq!(
        listener_condition(&s, "wild", "OverlappingTLSConfig"),
        ("True", "OverlappingHostnames")
    );
    let web = &s.listeners.as_ref().expect("listeners")[1];
    assert!(web.conditions.iter().all(|c| c.type_ != "OverlappingTLSConfig"));
}

#[test]
fn overlapping_tls_config_is_removed_when_the_overlap_goes_away() {
    let mut wild = listener("wild", ok("Accepted"), true);
    wild.overlapping_tls = vec![ListenerKey {
        gateway: ObjectKey::new("default", "gw"),
        listener: "shop".into(),
    }];
    let before = status(&plan(vec![wild.clone()]), &serving());
    wild.overlapping_tls.clear();
    let after = gateway_status(&plan(vec![wild]), &serving(), Some(&before), &|_| 0, &now());
    let conditions = &after.listeners.expect("listeners")[0].conditions;
    assert!(conditions.iter().all(|c| c.type_ != "OverlappingTLSConfig"));
    let types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, ["Accepted", "Programmed", "ResolvedRefs", "Conflicted"]);
}

#[test]
fn a_gateway_kong_serves_stays_programmed_until_the_push_reports_on_a_new_config() {
    let plan = plan(vec![listener("web", ok("Accepted"), true)]);
    let before = status(&plan, &serving());
    assert_eq!(condition(&before, "Programmed"), ("True", "Programmed"));
    let unknown = DataPlaneState {
        config: ConfigState::Unknown,
        ..serving()
    };
    let after = gateway_status(&plan, &unknown, Some(&before), &|_| 0, &now());
    assert_eq!(condition(&after, "Programmed"), ("True", "Programmed"));
    assert_eq!(before.conditions, after.conditions, "nothing to write");
}

#[test]
fn a_new_gateway_waits_for_the_push_before_it_is_programmed() {
    let plan = plan(vec![listener("web", ok("Accepted"), true)]);
    let unknown = DataPlaneState {
        config: ConfigState::Unknown,
        ..serving()
    };
    assert_eq!(condition(&status(&plan, &unknown), "Programmed"), ("False", "Pending"));
    let pending = DataPlaneState {
        config: ConfigState::Pending("1 of 2 ready Kong pods run the current configuration".into()),
        ..serving()
    };
    assert_eq!(condition(&status(&plan, &pending), "Programmed"), ("False", "Pending"));
    let rejected = DataPlaneState {
        config: ConfigState::Rejected("Kong rejected the configuration: boom".into()),
        ..serving()
    };
    assert_eq!(condition(&status(&plan, &rejected), "Programmed"), ("False", "Invalid"));
}

#[test]
fn gateway_resolved_refs_is_true_when_the_client_certificate_and_every_listener_resolve() {
    let mut p = plan(vec![listener("web", ok("Accepted"), true)]);
    p.backend_client_certificate = Some(BackendClientCertificate::Usable(ObjectKey::new("default", "client")));
    let s = status(&p, &serving());
    assert_eq!(condition(&s, "ResolvedRefs"), ("True", "ResolvedRefs"));
}

#[test]
fn an_unusable_client_certificate_is_gateway_resolved_refs_false_with_its_reason_and_keeps_it_programmed() {
    for reason in [reasons::INVALID_CLIENT_CERTIFICATE_REF, reasons::REF_NOT_PERMITTED] {
        let mut p = plan(vec![listener("web", ok("Accepted"), true)]);
        p.backend_client_certificate = Some(BackendClientCertificate::Invalid(fail(reason)));
        let s = status(&p, &serving());
        assert_eq!(condition(&s, "ResolvedRefs"), ("False", reason));
        assert_eq!(condition(&s, "Accepted"), ("True", "Accepted"));
        assert_eq!(condition(&s, "Programmed"), ("True", "Programmed"));
        let message = s
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "ResolvedRefs")
            .map(|c| c.message.clone())
            .unwrap_or_default();
        assert!(message.contains(&format!("because {reason}")), "{message}");
    }
}

#[test]
fn a_listener_with_unresolved_references_makes_gateway_resolved_refs_false_listeners_not_resolved() {
    let mut broken = listener("secure", ok("Accepted"), false);
    broken.resolved_refs = fail(reasons::INVALID_CERTIFICATE_REF);
    let s = status(&plan(vec![listener("web", ok("Accepted"), true), broken]), &serving());
    assert_eq!(condition(&s, "ResolvedRefs"), ("False", "ListenersNotResolved"));
}

#[test]
fn the_client_certificate_problem_outranks_unresolved_listeners_in_gateway_resolved_refs() {
    let mut broken = listener("secure", ok("Accepted"), false);
    broken.resolved_refs = fail(reasons::INVALID_CERTIFICATE_REF);
    let mut p = plan(vec![broken]);
    p.backend_client_certificate = Some(BackendClientCertificate::Invalid(fail(reasons::REF_NOT_PERMITTED)));
    let s = status(&p, &serving());
    assert_eq!(condition(&s, "ResolvedRefs"), ("False", "RefNotPermitted"));
}
