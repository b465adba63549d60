//! Table tests of the planner. Cases live in `testdata/*.yaml`, one case per spec
//! rule, named after the rule; this file only loads and runs them.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::Deserialize;

use super::*;
use crate::api::conditions::reasons;
use crate::api::{GatewayListeners, ReferenceGrant};
use crate::pki::generate_self_signed_pem;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    rule: String,
    #[serde(default)]
    port_mode: Option<PortMode>,
    gateways: Vec<CaseGateway>,
    #[serde(default)]
    secrets: Vec<CaseSecret>,
    #[serde(default)]
    grants: Vec<ReferenceGrant>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseGateway {
    name: String,
    #[serde(default = "default_namespace")]
    namespace: String,
    /// Minutes after a fixed epoch; defaults to the position in the list.
    #[serde(default)]
    created_minute: Option<i64>,
    listeners: Vec<GatewayListeners>,
    #[serde(default)]
    addresses: Vec<gateway_api::gateways::GatewayAddresses>,
    #[serde(default)]
    infrastructure: Option<gateway_api::gateways::GatewayInfrastructure>,
    #[serde(default)]
    tls: Option<gateway_api::gateways::GatewayTls>,
}

/// A Secret the case needs; its content is generated so fixtures stay readable.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseSecret {
    name: String,
    #[serde(default = "default_namespace")]
    namespace: String,
    content: SecretContent,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum SecretContent {
    ValidTls,
    Opaque,
    GarbagePem,
    MissingKey,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// gateway name → listener name → expectations
    #[serde(default)]
    listeners: BTreeMap<String, BTreeMap<String, ExpectListener>>,
    #[serde(default)]
    gateways: BTreeMap<String, ExpectGateway>,
    proxy_listen: Option<String>,
    stream_listen: Option<String>,
    port_maps: Option<String>,
    /// `port/TCP` or `port/UDP` → port name
    service_ports: Option<BTreeMap<String, String>>,
    requested_addresses: Option<Vec<String>>,
    /// `port/TCP` or `port/UDP` → `namespace/gateway/listener` of every listener the
    /// listen entry serves, in order
    entry_listeners: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectListener {
    accepted: String,
    #[serde(default)]
    conflicted: Option<String>,
    #[serde(default = "resolved")]
    resolved_refs: String,
    programmed: bool,
    #[serde(default)]
    supported_kinds: Option<Vec<String>>,
    /// Whether the conflict is with a listener of the same Gateway (absent: not checked).
    #[serde(default)]
    conflicts_with_sibling: Option<bool>,
    /// A fragment the Accepted or ResolvedRefs message must contain.
    #[serde(default)]
    message_contains: Option<String>,
    /// `namespace/gateway/listener` of every listener of another Gateway this one is
    /// shared with; absent means none.
    #[serde(default)]
    shared_with: Vec<String>,
    /// `namespace/gateway/listener` of every listener whose TLS hostname overlaps this
    /// one's (OverlappingTLSConfig); absent means none.
    #[serde(default)]
    overlapping_tls: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExpectGateway {
    #[serde(default)]
    invalid_parameters: bool,
    #[serde(default)]
    unsupported_address: bool,
    #[serde(default)]
    unusable_address: bool,
    #[serde(default)]
    requested: Vec<String>,
    /// Fragments the AddressNotUsable message must contain.
    #[serde(default)]
    unusable_message_contains: Vec<String>,
    /// The `kongress.dev/ListenersIsolated` message the Gateway's status must carry
    /// (its status is then False/SharedListeners).
    #[serde(default)]
    shared_listeners_message: Option<String>,
    /// `spec.tls.backend.clientCertificateRef`: `none` (not set: the default), `usable
    /// namespace/name`, or the reason it cannot be used.
    #[serde(default = "no_client_certificate")]
    backend_client_certificate: String,
}

fn no_client_certificate() -> String {
    "none".into()
}

fn client_certificate_outcome(plan: &GatewayPlan) -> String {
    match &plan.backend_client_certificate {
        None => "none".into(),
        Some(BackendClientCertificate::Usable(key)) => format!("usable {key}"),
        Some(BackendClientCertificate::Invalid(problem)) => problem.reason.to_string(),
    }
}

fn default_namespace() -> String {
    "default".into()
}
fn resolved() -> String {
    "ResolvedRefs".into()
}

fn gateway(case: &CaseGateway, position: usize) -> Arc<Gateway> {
    let minute = case.created_minute.unwrap_or(position as i64);
    let created = k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + minute * 60).expect("valid time");
    Arc::new(Gateway {
        metadata: ObjectMeta {
            name: Some(case.name.clone()),
            namespace: Some(case.namespace.clone()),
            creation_timestamp: Some(Time(created)),
            generation: Some(1),
            ..Default::default()
        },
        spec: gateway_api::gateways::GatewaySpec {
            gateway_class_name: "kongress".into(),
            listeners: case.listeners.clone(),
            addresses: (!case.addresses.is_empty()).then(|| case.addresses.clone()),
            infrastructure: case.infrastructure.clone(),
            tls: case.tls.clone(),
            ..Default::default()
        },
        status: None,
    })
}

fn secret(case: &CaseSecret) -> Secret {
    let (cert, key) = generate_self_signed_pem("example.com").expect("self-signed pair");
    let mut data = BTreeMap::new();
    let mut type_ = "kubernetes.io/tls";
    match case.content {
        SecretContent::ValidTls => {
            data.insert("tls.crt".to_string(), ByteString(cert.into_bytes()));
            data.insert("tls.key".to_string(), ByteString(key.into_bytes()));
        }
        SecretContent::Opaque => {
            type_ = "Opaque";
            data.insert("tls.crt".to_string(), ByteString(cert.into_bytes()));
            data.insert("tls.key".to_string(), ByteString(key.into_bytes()));
        }
        SecretContent::GarbagePem => {
            data.insert("tls.crt".to_string(), ByteString(b"not a certificate".to_vec()));
            data.insert("tls.key".to_string(), ByteString(key.into_bytes()));
        }
        SecretContent::MissingKey => {
            data.insert("tls.crt".to_string(), ByteString(cert.into_bytes()));
        }
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(case.name.clone()),
            namespace: Some(case.namespace.clone()),
            ..Default::default()
        },
        type_: Some(type_.into()),
        data: Some(data),
        ..Default::default()
    }
}

/// Runs one case and returns every mismatch, so a failing table names all broken rules at once.
fn run(case: &Case) -> Vec<String> {
    let gateways: Vec<Arc<Gateway>> = case.gateways.iter().enumerate().map(|(i, g)| gateway(g, i)).collect();
    let secrets: BTreeMap<ObjectKey, Arc<Secret>> = case
        .secrets
        .iter()
        .map(|s| (ObjectKey::new(&s.namespace, &s.name), Arc::new(secret(s))))
        .collect();
    let grants: Vec<Arc<ReferenceGrant>> = case.grants.iter().cloned().map(Arc::new).collect();
    let plan = plan_class(&PlanInput {
        gateways: &gateways,
        secrets: &secrets,
        grants: &grants,
        settings: PlanSettings {
            status_port: 8100,
            admin_port: 8444,
            port_mode: case.port_mode.unwrap_or_default(),
        },
    });

    let mut errors = Vec::new();
    for (gateway_name, listeners) in &case.expect.listeners {
        let Some(gateway_plan) = plan.gateways.iter().find(|g| &g.key.name == gateway_name) else {
            errors.push(format!("no plan for gateway {gateway_name}"));
            continue;
        };
        for (listener_name, want) in listeners {
            let Some(got) = gateway_plan.listeners.iter().find(|l| &l.name == listener_name) else {
                errors.push(format!("no verdict for {gateway_name}/{listener_name}"));
                continue;
            };
            let at = format!("{gateway_name}/{listener_name}");
            // Status and reason both count, on good verdicts too: a True condition with a
            // wrong reason is as wrong as a wrong False one.
            check(
                &mut errors,
                format!("{at} accepted"),
                describe(&got.accepted),
                &expected(&want.accepted, reasons::ACCEPTED),
            );
            let conflicted = match &got.conflicted {
                None => "none".to_string(),
                Some(c) if c.ok && c.reason == reasons::NO_CONFLICTS => "none".to_string(),
                Some(c) => describe(c),
            };
            let want_conflicted = want
                .conflicted
                .as_deref()
                .map_or_else(|| "none".to_string(), |reason| format!("False/{reason}"));
            check(&mut errors, format!("{at} conflicted"), conflicted, &want_conflicted);
            check(
                &mut errors,
                format!("{at} resolvedRefs"),
                describe(&got.resolved_refs),
                &expected(&want.resolved_refs, reasons::RESOLVED_REFS),
            );
            check(
                &mut errors,
                format!("{at} programmed"),
                got.programmed.to_string(),
                &want.programmed.to_string(),
            );
            if let Some(sibling) = want.conflicts_with_sibling {
                check(
                    &mut errors,
                    format!("{at} conflicts_with_sibling"),
                    got.conflicts_with_sibling.to_string(),
                    &sibling.to_string(),
                );
            }
            if let Some(kinds) = &want.supported_kinds {
                let got_kinds: Vec<&str> = got.supported_kinds.iter().map(|k| k.as_str()).collect();
                check(
                    &mut errors,
                    format!("{at} supportedKinds"),
                    got_kinds.join(","),
                    &kinds.join(","),
                );
            }
            let shared: Vec<String> = got
                .shared_with
                .iter()
                .map(|k| format!("{}/{}", k.gateway, k.listener))
                .collect();
            check(
                &mut errors,
                format!("{at} shared_with"),
                shared.join(","),
                &want.shared_with.join(","),
            );
            let overlapping: Vec<String> = got
                .overlapping_tls
                .iter()
                .map(|k| format!("{}/{}", k.gateway, k.listener))
                .collect();
            check(
                &mut errors,
                format!("{at} overlapping_tls"),
                overlapping.join(","),
                &want.overlapping_tls.join(","),
            );
            if let Some(fragment) = &want.message_contains {
                let messages = format!("{} | {}", got.accepted.message, got.resolved_refs.message);
                if !messages.contains(fragment.as_str()) {
                    errors.push(format!("{at} messages {messages:?} lack {fragment:?}"));
                }
            }
        }
    }
    // A case names every listener it has: a listener nobody looked at is a rule nobody checked.
    for gateway_plan in &plan.gateways {
        let named = case.expect.listeners.get(&gateway_plan.key.name);
        for listener in &gateway_plan.listeners {
            if !named.is_some_and(|n| n.contains_key(&listener.name)) {
                errors.push(format!(
                    "{}/{} is not named in the case's expectations",
                    gateway_plan.key.name, listener.name
                ));
            }
        }
    }
    for (gateway_name, want) in &case.expect.gateways {
        let Some(got) = plan.gateways.iter().find(|g| &g.key.name == gateway_name) else {
            errors.push(format!("no plan for gateway {gateway_name}"));
            continue;
        };
        check(
            &mut errors,
            format!("{gateway_name} invalid_parameters"),
            got.invalid_parameters.is_some().to_string(),
            &want.invalid_parameters.to_string(),
        );
        check(
            &mut errors,
            format!("{gateway_name} unsupported_address"),
            got.addresses.unsupported.is_some().to_string(),
            &want.unsupported_address.to_string(),
        );
        check(
            &mut errors,
            format!("{gateway_name} unusable_address"),
            got.addresses.unusable.is_some().to_string(),
            &want.unusable_address.to_string(),
        );
        let requested: Vec<&str> = got.addresses.requested.iter().map(|r| r.value.as_str()).collect();
        check(
            &mut errors,
            format!("{gateway_name} requested"),
            requested.join(","),
            &want.requested.join(","),
        );
        let unusable = got.addresses.unusable.as_deref().unwrap_or_default();
        for fragment in &want.unusable_message_contains {
            if !unusable.contains(fragment.as_str()) {
                errors.push(format!(
                    "{gateway_name} unusable address message {unusable:?} lacks {fragment:?}"
                ));
            }
        }
        check(
            &mut errors,
            format!("{gateway_name} backend_client_certificate"),
            client_certificate_outcome(got),
            &want.backend_client_certificate,
        );
        if let Some(message) = &want.shared_listeners_message {
            check(
                &mut errors,
                format!("{gateway_name} ListenersIsolated"),
                isolation(got),
                &format!("False/SharedListeners: {message}"),
            );
        }
    }
    if let Some(want) = &case.expect.proxy_listen {
        check(
            &mut errors,
            "KONG_PROXY_LISTEN".into(),
            plan.listen.proxy_listen(),
            want,
        );
    }
    if let Some(want) = &case.expect.stream_listen {
        check(
            &mut errors,
            "KONG_STREAM_LISTEN".into(),
            plan.listen.stream_listen(),
            want,
        );
    }
    if let Some(want) = &case.expect.port_maps {
        check(
            &mut errors,
            "KONG_PORT_MAPS".into(),
            plan.listen.port_maps().unwrap_or_else(|| "none".into()),
            want,
        );
    }
    if let Some(want) = &case.expect.service_ports {
        let got: BTreeMap<String, String> = plan
            .listen
            .entries
            .iter()
            .map(|e| {
                (
                    format!("{}/{}", e.port, e.protocol.transport().service_protocol()),
                    e.port_name.clone(),
                )
            })
            .collect();
        check(
            &mut errors,
            "service ports".into(),
            format!("{got:?}"),
            &format!("{want:?}"),
        );
    }
    if let Some(want) = &case.expect.entry_listeners {
        let got: BTreeMap<String, Vec<String>> = plan
            .listen
            .entries
            .iter()
            .map(|e| {
                (
                    format!("{}/{}", e.port, e.protocol.transport().service_protocol()),
                    e.listeners
                        .iter()
                        .map(|k| format!("{}/{}", k.gateway, k.listener))
                        .collect(),
                )
            })
            .collect();
        check(
            &mut errors,
            "listen entry listeners".into(),
            format!("{got:?}"),
            &format!("{want:?}"),
        );
    }
    if let Some(want) = &case.expect.requested_addresses {
        check(
            &mut errors,
            "requested addresses".into(),
            plan.requested_addresses.join(","),
            &want.join(","),
        );
    }
    errors
}

/// The `kongress.dev/ListenersIsolated` condition the status module makes of a Gateway's plan.
fn isolation(plan: &GatewayPlan) -> String {
    let data_plane = crate::status::DataPlaneState {
        class_problem: None,
        refused: None,
        deployment: crate::status::DeploymentState::Available,
        load_balancer: vec![],
        external_ips: vec![],
        cluster_ips: vec!["10.96.0.1".into()],
        config: crate::status::ConfigState::Applied,
    };
    let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).expect("valid time"));
    let status = crate::status::gateway_status(plan, &data_plane, None, &|_| 0, &now);
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == crate::api::conditions::types::LISTENERS_ISOLATED)
        .map(|c| format!("{}/{}: {}", c.status, c.reason, c.message))
        .unwrap_or_else(|| "no ListenersIsolated condition".into())
}

/// A verdict as `True/Reason` or `False/Reason`.
fn describe(verdict: &Verdict) -> String {
    format!("{}/{}", if verdict.ok { "True" } else { "False" }, verdict.reason)
}

/// What a table cell means: the good reason stands for True with that reason, any other
/// reason for False with it.
fn expected(cell: &str, good: &str) -> String {
    if cell == good {
        format!("True/{good}")
    } else {
        format!("False/{cell}")
    }
}

fn check(errors: &mut Vec<String>, what: String, got: String, want: &str) {
    if got != want {
        errors.push(format!("{what}: got {got:?}, want {want:?}"));
    }
}

fn run_table(file: &str) -> usize {
    let path = format!("{}/src/plan/testdata/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let cases: Vec<Case> = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"));
    let mut failures = Vec::new();
    let mut rules = std::collections::BTreeSet::new();
    for case in &cases {
        assert!(
            rules.insert(case.rule.clone()),
            "rule {} appears twice in {file}",
            case.rule
        );
        for error in run(case) {
            failures.push(format!("{}: {error}", case.rule));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches in {file}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    cases.len()
}

#[test]
fn listener_compatibility_table_rules_hold() {
    assert!(run_table("compatibility.yaml") >= 10);
}

#[test]
fn backend_client_certificate_rules_hold() {
    assert!(run_table("backend-client-certificate.yaml") >= 9);
}

#[test]
fn conflict_scope_rules_hold() {
    assert!(run_table("conflict-scopes.yaml") >= 5);
}

#[test]
fn listener_reason_rules_hold() {
    assert!(run_table("listener-reasons.yaml") >= 10);
}

#[test]
fn defence_against_input_the_api_server_refuses_holds() {
    assert!(run_table("defence.yaml") >= 10);
}

#[test]
fn overlapping_tls_rules_hold() {
    assert!(run_table("overlapping-tls.yaml") >= 5);
}

#[test]
fn shared_listener_rules_hold() {
    assert!(run_table("shared-listeners.yaml") >= 7);
}

#[test]
fn listen_plan_rules_hold() {
    assert!(run_table("listen-plan.yaml") >= 5);
}

#[test]
fn gateway_address_rules_hold() {
    assert!(run_table("addresses.yaml") >= 4);
}

#[test]
fn planning_is_independent_of_input_order() {
    let text = std::fs::read_to_string(format!(
        "{}/src/plan/testdata/conflict-scopes.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    let cases: Vec<Case> = serde_yaml_ng::from_str(&text).expect("parse");
    for case in cases {
        let forward: Vec<Arc<Gateway>> = case.gateways.iter().enumerate().map(|(i, g)| gateway(g, i)).collect();
        let mut backward = forward.clone();
        backward.reverse();
        let empty: BTreeMap<ObjectKey, Arc<Secret>> = BTreeMap::new();
        let settings = PlanSettings {
            status_port: 8100,
            admin_port: 8444,
            port_mode: PortMode::ListenerPort,
        };
        let a = plan_class(&PlanInput {
            gateways: &forward,
            secrets: &empty,
            grants: &[],
            settings,
        });
        let b = plan_class(&PlanInput {
            gateways: &backward,
            secrets: &empty,
            grants: &[],
            settings,
        });
        assert_eq!(a, b, "{}", case.rule);
    }
}
