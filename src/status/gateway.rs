//! Gateway and listener status.

use gateway_api::gateways::{
    GatewayStatus, GatewayStatusAddresses, GatewayStatusListeners, GatewayStatusListenersSupportedKinds,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use std::net::IpAddr;

use super::conditions::{DesiredCondition, drop_condition, merge_conditions};
use crate::api::GATEWAY_API_GROUP;
use crate::api::conditions::{reasons, types};
use crate::plan::{BackendClientCertificate, GatewayPlan, ListenerKey, ListenerVerdict};

/// Where the class's Kong Deployment stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeploymentState {
    /// Not created yet (or not yet in the cache).
    Missing,
    /// Created, but no replica is available yet.
    Progressing { message: String },
    /// The cluster cannot run it (for example a quota or an admission refusal).
    NoResources { message: String },
    /// At least one replica is available.
    Available,
}

/// One address of the proxy Service, with its Gateway API type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAddress {
    /// `IPAddress` or `Hostname`.
    pub type_: &'static str,
    pub value: String,
}

/// What the data plane of the class looks like right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataPlaneState {
    /// `Some(message)` when the class itself cannot be served (not accepted).
    pub class_problem: Option<String>,
    /// `Some(message)` when the API server refused to store the rendered data plane.
    pub refused: Option<String>,
    pub deployment: DeploymentState,
    /// Load balancer ingress addresses of the proxy Service.
    pub load_balancer: Vec<ServiceAddress>,
    /// `externalIPs` the proxy Service carries.
    pub external_ips: Vec<String>,
    /// Cluster IPs of the proxy Service.
    pub cluster_ips: Vec<String>,
    /// Whether the Kong pods run the class's current configuration.
    pub config: ConfigState,
}

/// Where the class's Kong configuration stands on its pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigState {
    /// The push has not reported on the current configuration yet (just started, or a new
    /// configuration was just handed over).
    Unknown,
    /// Every ready Kong pod runs the current configuration (objects Kong rejected left out;
    /// those are reported on the objects).
    Applied,
    /// The configuration is on its way to the pods.
    Pending(String),
    /// Kong refused the configuration for a reason no Kubernetes object could be blamed for.
    Rejected(String),
}

/// The addresses a Gateway reports: those it asked for (when the Service carries
/// them, as the user wrote them), else the load balancer's, else the Service's cluster IPs.
fn gateway_addresses(plan: &GatewayPlan, data_plane: &DataPlaneState) -> Vec<GatewayStatusAddresses> {
    let ip = |value: &str| GatewayStatusAddresses {
        r#type: Some("IPAddress".into()),
        value: value.to_string(),
    };
    if !plan.addresses.requested.is_empty() {
        let carried: Vec<IpAddr> = data_plane
            .external_ips
            .iter()
            .map(String::as_str)
            .chain(data_plane.load_balancer.iter().map(|a| a.value.as_str()))
            .filter_map(|v| v.parse().ok())
            .collect();
        return plan
            .addresses
            .requested
            .iter()
            .filter(|r| carried.contains(&r.ip))
            .map(|r| ip(&r.value))
            .collect();
    }
    if !data_plane.load_balancer.is_empty() {
        return data_plane
            .load_balancer
            .iter()
            .map(|a| GatewayStatusAddresses {
                r#type: Some(a.type_.into()),
                value: a.value.clone(),
            })
            .collect();
    }
    data_plane.cluster_ips.iter().map(|v| ip(v)).collect()
}

/// Said on every condition kongress cannot decide while the class is not accepted.
fn class_pending(problem: &str) -> String {
    format!("{problem}; kongress applies no change for this Gateway until its GatewayClass is accepted")
}

/// `name (Reason)` of each listener, joined.
fn named(listeners: &[&ListenerVerdict], reason: impl Fn(&ListenerVerdict) -> &str) -> String {
    let names: Vec<String> = listeners
        .iter()
        .map(|l| format!("{} ({})", l.name, reason(l)))
        .collect();
    names.join(", ")
}

/// The Gateway's `Accepted` condition.
fn accepted_condition(plan: &GatewayPlan, data_plane: &DataPlaneState) -> DesiredCondition {
    if let Some(problem) = &data_plane.class_problem {
        // InvalidParameters is for the Gateway's own parametersRef. The class's problem leaves
        // this Gateway undecided: kongress neither serves its changes nor withdraws it.
        return DesiredCondition::unknown(types::ACCEPTED, reasons::PENDING, class_pending(problem));
    }
    if let Some(problem) = &plan.invalid_parameters {
        return DesiredCondition::new(types::ACCEPTED, false, reasons::INVALID_PARAMETERS, problem.clone());
    }
    if let Some(problem) = &plan.addresses.unsupported {
        return DesiredCondition::new(types::ACCEPTED, false, reasons::UNSUPPORTED_ADDRESS, problem.clone());
    }
    let rejected: Vec<&ListenerVerdict> = plan.listeners.iter().filter(|l| !l.accepted.ok).collect();
    // Accepted but not served: no usable certificate, or no route kind it can serve.
    let idle: Vec<&ListenerVerdict> = plan
        .listeners
        .iter()
        .filter(|l| l.accepted.ok && !l.programmed)
        .collect();
    let served: Vec<&str> = plan
        .listeners
        .iter()
        .filter(|l| l.programmed)
        .map(|l| l.name.as_str())
        .collect();
    if !plan.listeners.is_empty() && rejected.len() == plan.listeners.len() {
        return DesiredCondition::new(
            types::ACCEPTED,
            false,
            reasons::LISTENERS_NOT_VALID,
            format!(
                "No listener is valid: {}; see the listener conditions",
                named(&rejected, |l| l.accepted.reason)
            ),
        );
    }
    if rejected.is_empty() && idle.is_empty() {
        return DesiredCondition::new(types::ACCEPTED, true, reasons::ACCEPTED, "Gateway is accepted");
    }
    let mut parts = Vec::new();
    if !rejected.is_empty() {
        parts.push(format!("not accepted: {}", named(&rejected, |l| l.accepted.reason)));
    }
    if !idle.is_empty() {
        parts.push(format!(
            "accepted but not served: {}",
            named(&idle, |l| l.resolved_refs.reason)
        ));
    }
    parts.push(if served.is_empty() {
        "served: none".to_string()
    } else {
        format!("served: {}", served.join(", "))
    });
    DesiredCondition::new(
        types::ACCEPTED,
        true,
        reasons::LISTENERS_NOT_VALID,
        format!("Listeners {}; see the listener conditions", parts.join("; ")),
    )
}

/// The Gateway's `Programmed` condition. It is True only when Kong can serve the Gateway:
/// accepted, some listener in Kong's listen plan, a Kong replica available, an address
/// assigned. When route translation pushes configuration, "the Kong pods accepted the
/// current config" joins here.
fn programmed_condition(
    accepted: &DesiredCondition,
    plan: &GatewayPlan,
    data_plane: &DataPlaneState,
    addresses: &[GatewayStatusAddresses],
    existing: Option<&Condition>,
) -> DesiredCondition {
    let not = |reason, message: String| DesiredCondition::new(types::PROGRAMMED, false, reason, message);
    if let Some(problem) = &data_plane.class_problem {
        return DesiredCondition::unknown(types::PROGRAMMED, reasons::PENDING, class_pending(problem));
    }
    if !accepted.is_true() {
        return not(
            reasons::INVALID,
            format!("Gateway is not accepted: {}", accepted.message),
        );
    }
    if !plan.listeners.iter().any(|l| l.programmed) {
        return not(
            reasons::INVALID,
            format!("No listener of this Gateway can be served: {}", accepted.message),
        );
    }
    if let Some(problem) = &plan.addresses.unusable {
        return not(reasons::ADDRESS_NOT_USABLE, problem.clone());
    }
    if let Some(problem) = &data_plane.refused {
        return not(reasons::INVALID, problem.clone());
    }
    match &data_plane.deployment {
        DeploymentState::Missing => {
            return not(reasons::PENDING, "Waiting for the Kong Deployment to be created".into());
        }
        DeploymentState::Progressing { message } => return not(reasons::PENDING, message.clone()),
        DeploymentState::NoResources { message } => return not(reasons::NO_RESOURCES, message.clone()),
        DeploymentState::Available => {}
    }
    if addresses.is_empty() {
        let message = if plan.addresses.requested.is_empty() {
            "The proxy Service has no address yet".to_string()
        } else {
            let wanted: Vec<&str> = plan.addresses.requested.iter().map(|r| r.value.as_str()).collect();
            format!(
                "The proxy Service does not carry the requested addresses {} yet",
                wanted.join(", ")
            )
        };
        return not(reasons::ADDRESS_NOT_ASSIGNED, message);
    }
    match &data_plane.config {
        // Until the push reports on the new config, a Gateway Kong was serving stays
        // Programmed: a restart or a route change must not flap every Gateway's status.
        ConfigState::Unknown => match existing.filter(|c| c.status == "True" && c.reason == reasons::PROGRAMMED) {
            Some(current) => {
                DesiredCondition::new(types::PROGRAMMED, true, reasons::PROGRAMMED, current.message.clone())
            }
            None => not(
                reasons::PENDING,
                "Waiting for the Kong pods to report the configuration they run".into(),
            ),
        },
        ConfigState::Pending(message) => not(reasons::PENDING, message.clone()),
        ConfigState::Rejected(message) => not(reasons::INVALID, message.clone()),
        ConfigState::Applied => DesiredCondition::new(
            types::PROGRAMMED,
            true,
            reasons::PROGRAMMED,
            "Kong is serving this Gateway with the current configuration",
        ),
    }
}

/// `kongress.dev/ListenersIsolated`: False when Kong cannot tell some listener's traffic
/// from another Gateway's, naming every such listener and who it is shared with.
fn isolation_condition(plan: &GatewayPlan) -> DesiredCondition {
    let shared: Vec<String> = plan
        .listeners
        .iter()
        .filter(|l| !l.shared_with.is_empty())
        .enumerate()
        .map(|(i, l)| {
            format!(
                "{} {:?} (port {}, {}) is shared with {}",
                if i == 0 { "Listener" } else { "listener" },
                l.name,
                l.port,
                l.protocol,
                describe_listeners(&l.shared_with)
            )
        })
        .collect();
    if shared.is_empty() {
        return DesiredCondition::new(
            types::LISTENERS_ISOLATED,
            true,
            reasons::ISOLATED,
            "No listener is shared with another Gateway",
        );
    }
    let pronoun = if shared.len() == 1 { "it" } else { "them" };
    DesiredCondition::new(
        types::LISTENERS_ISOLATED,
        false,
        reasons::SHARED_LISTENERS,
        format!(
            "{}; traffic to {pronoun} cannot be told apart, routes of all these Gateways are served together",
            shared.join("; ")
        ),
    )
}

/// `namespace/gateway (listener "name")`, joined.
fn describe_listeners(keys: &[ListenerKey]) -> String {
    let described: Vec<String> = keys
        .iter()
        .map(|k| format!("{} (listener {:?})", k.gateway, k.listener))
        .collect();
    described.join(", ")
}

/// The listener's `Programmed` condition.
fn listener_programmed(
    listener: &ListenerVerdict,
    plan: &GatewayPlan,
    data_plane: &DataPlaneState,
    gateway_programmed: &DesiredCondition,
) -> DesiredCondition {
    let not = |reason, message: String| DesiredCondition::new(types::PROGRAMMED, false, reason, message);
    if let Some(problem) = &data_plane.class_problem {
        return DesiredCondition::unknown(types::PROGRAMMED, reasons::PENDING, class_pending(problem));
    }
    if let Some(why) = plan.rejection() {
        return not(reasons::INVALID, format!("The Gateway is not accepted: {why}"));
    }
    if let Some(conflict) = listener.conflicted.as_ref().filter(|c| !c.ok) {
        // The v1.5.1 conformance tests expect the conflict reason here too.
        return not(conflict.reason, conflict.message.clone());
    }
    if !listener.programmed {
        let why = if !listener.accepted.ok {
            &listener.accepted.message
        } else {
            &listener.resolved_refs.message
        };
        return not(reasons::INVALID, format!("Listener is not served: {why}"));
    }
    if !gateway_programmed.is_true() {
        return not(reasons::PENDING, gateway_programmed.message.clone());
    }
    DesiredCondition::new(
        types::PROGRAMMED,
        true,
        reasons::PROGRAMMED,
        "Kong listens for this listener",
    )
}

fn listener_conditions(
    listener: &ListenerVerdict,
    plan: &GatewayPlan,
    data_plane: &DataPlaneState,
    gateway_programmed: &DesiredCondition,
) -> Vec<DesiredCondition> {
    let accepted = DesiredCondition::new(
        types::ACCEPTED,
        listener.accepted.ok,
        listener.accepted.reason,
        listener.accepted.message.clone(),
    );
    let resolved = DesiredCondition::new(
        types::RESOLVED_REFS,
        listener.resolved_refs.ok,
        listener.resolved_refs.reason,
        listener.resolved_refs.message.clone(),
    );
    let conflicted = match listener.conflicted.as_ref().filter(|c| !c.ok) {
        Some(conflict) => DesiredCondition::new(types::CONFLICTED, true, conflict.reason, conflict.message.clone()),
        None => DesiredCondition::new(types::CONFLICTED, false, reasons::NO_CONFLICTS, "No conflicts"),
    };
    let programmed = listener_programmed(listener, plan, data_plane, gateway_programmed);
    let mut conditions = vec![accepted, programmed, resolved, conflicted];
    if !listener.overlapping_tls.is_empty() {
        conditions.push(DesiredCondition::new(
            types::OVERLAPPING_TLS_CONFIG,
            true,
            reasons::OVERLAPPING_HOSTNAMES,
            format!(
                "The hostname overlaps those of {} on port {}: with HTTP connection coalescing a client may send requests for one over a connection made for the other",
                describe_listeners(&listener.overlapping_tls),
                listener.port
            ),
        ));
    }
    conditions
}

/// The Gateway's `ResolvedRefs`: its own references (the backend client certificate) first,
/// then a summary of its listeners'. It does not change `Accepted` or `Programmed`.
fn resolved_refs_condition(plan: &GatewayPlan) -> DesiredCondition {
    if let Some(BackendClientCertificate::Invalid(problem)) = &plan.backend_client_certificate {
        return DesiredCondition::new(
            types::RESOLVED_REFS,
            false,
            problem.reason,
            format!(
                "{}; Kong reaches this Gateway's backends without a client certificate",
                problem.message
            ),
        );
    }
    let unresolved: Vec<&str> = plan
        .listeners
        .iter()
        .filter(|l| !l.resolved_refs.ok)
        .map(|l| l.name.as_str())
        .collect();
    if unresolved.is_empty() {
        DesiredCondition::new(
            types::RESOLVED_REFS,
            true,
            reasons::RESOLVED_REFS,
            "All references are resolved",
        )
    } else {
        DesiredCondition::new(
            types::RESOLVED_REFS,
            false,
            reasons::LISTENERS_NOT_RESOLVED,
            format!("Listeners with unresolved references: {}", unresolved.join(", ")),
        )
    }
}

/// The full Gateway status. Listener entries follow the spec's listener order;
/// `attached_routes` gives each listener's accepted route count (by name).
pub fn gateway_status(
    plan: &GatewayPlan,
    data_plane: &DataPlaneState,
    existing: Option<&GatewayStatus>,
    attached_routes: &dyn Fn(&str) -> i32,
    now: &Time,
) -> GatewayStatus {
    let generation = plan.generation.unwrap_or_default();
    let addresses = gateway_addresses(plan, data_plane);
    let accepted = accepted_condition(plan, data_plane);
    let existing_conditions = existing.and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let existing_programmed = existing_conditions.iter().find(|c| c.type_ == types::PROGRAMMED);
    let programmed = programmed_condition(&accepted, plan, data_plane, &addresses, existing_programmed);
    let conditions = merge_conditions(
        existing_conditions,
        &[
            accepted,
            programmed.clone(),
            resolved_refs_condition(plan),
            isolation_condition(plan),
        ],
        generation,
        now,
    );

    let existing_listeners = existing.and_then(|s| s.listeners.as_deref()).unwrap_or_default();
    let listeners = plan
        .listeners
        .iter()
        .map(|listener| {
            let previous = existing_listeners
                .iter()
                .find(|l| l.name == listener.name)
                .map(|l| l.conditions.as_slice())
                .unwrap_or_default();
            // OverlappingTLSConfig is never False: the spec wants it absent instead.
            let previous = if listener.overlapping_tls.is_empty() {
                drop_condition(previous, types::OVERLAPPING_TLS_CONFIG, generation)
            } else {
                previous.to_vec()
            };
            GatewayStatusListeners {
                name: listener.name.clone(),
                attached_routes: attached_routes(&listener.name),
                // A listener its own Gateway's spec makes conflicted supports no kind (the
                // v1.5.1 conformance tests expect the list empty); one that lost its port to
                // an older Gateway keeps the kinds of its own spec. Attachment still follows
                // allowedRoutes, as the spec says.
                supported_kinds: Some(
                    listener
                        .supported_kinds
                        .iter()
                        .filter(|_| !(listener.is_conflicted() && listener.conflicts_with_sibling))
                        .map(|k| GatewayStatusListenersSupportedKinds {
                            group: Some(GATEWAY_API_GROUP.into()),
                            kind: k.as_str().into(),
                        })
                        .collect(),
                ),
                conditions: merge_conditions(
                    &previous,
                    &listener_conditions(listener, plan, data_plane, &programmed),
                    generation,
                    now,
                ),
            }
        })
        .collect();

    GatewayStatus {
        addresses: (!addresses.is_empty()).then_some(addresses),
        conditions: Some(conditions),
        listeners: Some(listeners),
        ..existing.cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
