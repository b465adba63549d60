//! Listener planning: all Gateways of one GatewayClass in, a verdict per listener
//! and the Kong listen plan out. Pure: no API calls, no clocks.

mod addresses;
mod certificates;
mod compat;
pub mod grants;
pub mod listen;
pub mod protocol;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;

use crate::api::conditions::reasons;
use crate::api::{GATEWAY_API_GROUP, Gateway, GatewayListeners, ObjectKey, PortMode, ReferenceGrant};
pub use addresses::{AddressRequest, AddressVerdict};
use compat::{PortClaim, Relation};
pub use listen::{ListenEntry, ListenPlan, ListenerKey};
pub use protocol::{ListenerProtocol, RouteKind, Transport};

/// Looks up Secrets by key; the controller backs it with its watch cache.
pub trait SecretLookup {
    fn secret(&self, key: &ObjectKey) -> Option<Arc<Secret>>;
}

impl SecretLookup for BTreeMap<ObjectKey, Arc<Secret>> {
    fn secret(&self, key: &ObjectKey) -> Option<Arc<Secret>> {
        self.get(key).cloned()
    }
}

/// Settings of the data plane that constrain listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanSettings {
    pub status_port: u16,
    pub admin_port: u16,
    pub port_mode: PortMode,
}

/// Everything the planner reads.
pub struct PlanInput<'a> {
    /// The Gateways of the class, in any order.
    pub gateways: &'a [Arc<Gateway>],
    pub secrets: &'a dyn SecretLookup,
    pub grants: &'a [Arc<ReferenceGrant>],
    pub settings: PlanSettings,
}

/// A condition-to-be: the status and reason the spec asks for, and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Verdict {
    pub fn ok(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            ok: true,
            reason,
            message: message.into(),
        }
    }
    pub fn fail(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            ok: false,
            reason,
            message: message.into(),
        }
    }
}

/// What the planner decided about one listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerVerdict {
    pub name: String,
    pub port: i32,
    pub protocol: String,
    /// `Accepted`.
    pub accepted: Verdict,
    /// `Conflicted`; `ok` here means "no conflict" and maps to status False.
    pub conflicted: Option<Verdict>,
    /// `ResolvedRefs`.
    pub resolved_refs: Verdict,
    /// Route kinds that may attach (the listener's `supportedKinds`).
    pub supported_kinds: Vec<RouteKind>,
    /// True when Kong serves this listener: it is in the listen plan.
    pub programmed: bool,
    /// Programmed listeners of other Gateways that Kong cannot tell apart from this one
    /// (same socket, protocol, hostname and certificates), sorted. Their traffic arrives
    /// together, so the routes of all of them are served together.
    pub shared_with: Vec<ListenerKey>,
}

impl ListenerVerdict {
    pub fn is_conflicted(&self) -> bool {
        self.conflicted.as_ref().is_some_and(|c| !c.ok)
    }
}

/// What the planner decided about one Gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayPlan {
    pub key: ObjectKey,
    pub generation: Option<i64>,
    /// Listener verdicts in spec order.
    pub listeners: Vec<ListenerVerdict>,
    /// Problems with the Gateway itself (for example an unsupported `infrastructure.parametersRef`).
    pub invalid_parameters: Option<String>,
    pub addresses: AddressVerdict,
}

impl GatewayPlan {
    pub fn accepted_listener_count(&self) -> usize {
        self.listeners.iter().filter(|l| l.accepted.ok).count()
    }
}

/// The planner's whole answer for one class.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassPlan {
    /// Gateways in precedence order (oldest first).
    pub gateways: Vec<GatewayPlan>,
    pub listen: ListenPlan,
    /// Addresses requested by accepted Gateways, for the proxy Service.
    pub requested_addresses: Vec<String>,
}

impl ClassPlan {
    pub fn gateway(&self, key: &ObjectKey) -> Option<&GatewayPlan> {
        self.gateways.iter().find(|g| &g.key == key)
    }
}

/// Orders Gateways the way conflicts are settled: older first, then by namespace/name.
pub fn precedence_order(gateways: &[Arc<Gateway>]) -> Vec<Arc<Gateway>> {
    let mut sorted = gateways.to_vec();
    sorted.sort_by(|a, b| {
        let created = |g: &Gateway| g.metadata.creation_timestamp.as_ref().map(|t| t.0);
        created(a)
            .cmp(&created(b))
            .then_with(|| ObjectKey::of(a.as_ref()).cmp(&ObjectKey::of(b.as_ref())))
    });
    sorted
}

/// A listener that passed its own checks and may claim its port.
struct Candidate {
    gateway: usize,
    listener: usize,
    port: u16,
    protocol: ListenerProtocol,
    hostname: Option<String>,
    /// The certificate Secrets it names, when it terminates TLS.
    certificates: BTreeSet<ObjectKey>,
}

impl Candidate {
    fn claim(&self) -> PortClaim<'_> {
        PortClaim {
            protocol: self.protocol,
            hostname: self.hostname.as_deref(),
            certificates: &self.certificates,
        }
    }
}

/// What [`check_listener`] found out about a listener that may claim its port.
struct Claimable {
    protocol: ListenerProtocol,
    port: u16,
    certificates: BTreeSet<ObjectKey>,
}

/// Plans one GatewayClass.
pub fn plan_class(input: &PlanInput<'_>) -> ClassPlan {
    let gateways = precedence_order(input.gateways);
    let mut plans = Vec::with_capacity(gateways.len());
    let mut candidates_by_gateway = Vec::with_capacity(gateways.len());

    for (gateway_index, gateway) in gateways.iter().enumerate() {
        let mut listeners = Vec::with_capacity(gateway.spec.listeners.len());
        let mut candidates = Vec::new();
        for (listener_index, listener) in gateway.spec.listeners.iter().enumerate() {
            let (verdict, claimable) = check_listener(gateway, listener, input);
            if let Some(Claimable {
                protocol,
                port,
                certificates,
            }) = claimable
            {
                candidates.push(Candidate {
                    gateway: gateway_index,
                    listener: listener_index,
                    port,
                    protocol,
                    hostname: listener.hostname.as_ref().map(|h| h.to_ascii_lowercase()),
                    certificates,
                });
            }
            listeners.push(verdict);
        }
        plans.push(GatewayPlan {
            key: ObjectKey::of(gateway.as_ref()),
            generation: gateway.metadata.generation,
            listeners,
            invalid_parameters: gateway_parameters_problem(gateway),
            addresses: addresses::check(gateway),
        });
        candidates_by_gateway.push(candidates);
    }

    let claimed = settle_conflicts(&mut plans, candidates_by_gateway, input.settings.port_mode);
    let listen = build_listen_plan(&mut plans, claimed, input.settings.port_mode);
    let requested_addresses = addresses::requested(&plans);
    ClassPlan {
        gateways: plans,
        listen,
        requested_addresses,
    }
}

/// kongress takes data plane parameters from the GatewayClass only.
fn gateway_parameters_problem(gateway: &Gateway) -> Option<String> {
    let reference = gateway.spec.infrastructure.as_ref()?.parameters_ref.as_ref()?;
    Some(format!(
        "infrastructure.parametersRef ({}/{} {}) is not supported: kongress reads data plane parameters from the GatewayClass parametersRef (a KongProxy)",
        reference.group, reference.kind, reference.name
    ))
}

/// Checks one listener on its own. Returns its verdict and, when it may claim a
/// port, what its claim is made of.
fn check_listener(
    gateway: &Gateway,
    listener: &GatewayListeners,
    input: &PlanInput<'_>,
) -> (ListenerVerdict, Option<Claimable>) {
    let tls_mode = listener.tls.as_ref().and_then(|t| t.mode.as_ref());
    let protocol = ListenerProtocol::parse(&listener.protocol, tls_mode);
    let mut verdict = ListenerVerdict {
        name: listener.name.clone(),
        port: listener.port,
        protocol: listener.protocol.clone(),
        accepted: Verdict::ok(reasons::ACCEPTED, "Listener is accepted"),
        conflicted: None,
        resolved_refs: Verdict::ok(reasons::RESOLVED_REFS, "All references are resolved"),
        supported_kinds: Vec::new(),
        programmed: false,
        shared_with: Vec::new(),
    };

    let Some(protocol) = protocol else {
        verdict.accepted = Verdict::fail(
            reasons::UNSUPPORTED_PROTOCOL,
            format!(
                "Protocol {:?} is not supported; kongress serves HTTP, HTTPS, TLS, TCP and UDP",
                listener.protocol
            ),
        );
        return (verdict, None);
    };

    let (kinds, kinds_problem) = supported_kinds(listener, protocol);
    verdict.supported_kinds = kinds;
    if let Some(problem) = kinds_problem {
        verdict.resolved_refs = Verdict::fail(reasons::INVALID_ROUTE_KINDS, problem);
    }

    let mut certificates = BTreeSet::new();
    if protocol.terminates_tls() {
        let gateway_namespace = gateway.metadata.namespace.as_deref().unwrap_or_default();
        let refs = listener
            .tls
            .as_ref()
            .and_then(|t| t.certificate_refs.as_deref())
            .unwrap_or_default();
        certificates = certificates::referenced_secrets(gateway_namespace, refs);
        let outcome = certificates::resolve(gateway_namespace, refs, input.secrets, input.grants);
        // InvalidRouteKinds is reported first; a certificate problem is added to its message.
        if let Some(problem) = outcome.problem {
            if verdict.resolved_refs.ok {
                verdict.resolved_refs = problem;
            } else {
                verdict.resolved_refs.message = format!("{}; {}", verdict.resolved_refs.message, problem.message);
            }
        }
        if outcome.usable == 0 {
            // Without a certificate Kong would answer with its own default one.
            return (verdict, None);
        }
    }

    let Some(port) = u16::try_from(listener.port).ok().filter(|p| *p > 0) else {
        verdict.accepted = Verdict::fail(
            reasons::PORT_UNAVAILABLE,
            format!("Port {} is not a valid port", listener.port),
        );
        return (verdict, None);
    };
    let settings = input.settings;
    let container = listen::container_port(port, settings.port_mode);
    for (internal, what) in [
        (settings.status_port, "Kong status API"),
        (settings.admin_port, "Kong admin API"),
    ] {
        if port == internal || container == internal {
            verdict.accepted = Verdict::fail(
                reasons::PORT_UNAVAILABLE,
                format!(
                    "Port {port} is reserved for the {what} of this data plane; choose another port or change it in the KongProxy"
                ),
            );
            return (verdict, None);
        }
    }

    if verdict.supported_kinds.is_empty() {
        return (verdict, None);
    }
    (
        verdict,
        Some(Claimable {
            protocol,
            port,
            certificates,
        }),
    )
}

/// The listener's `supportedKinds`, and a message when it asked for kinds we cannot serve.
fn supported_kinds(listener: &GatewayListeners, protocol: ListenerProtocol) -> (Vec<RouteKind>, Option<String>) {
    let allowed = protocol.route_kinds();
    // The spec: "When unspecified or empty, the kinds of Routes selected are determined
    // using the Listener protocol."
    let Some(requested) = listener
        .allowed_routes
        .as_ref()
        .and_then(|a| a.kinds.as_ref())
        .filter(|kinds| !kinds.is_empty())
    else {
        return (allowed.to_vec(), None);
    };
    let mut kinds = Vec::new();
    let mut invalid = Vec::new();
    for kind in requested {
        let group = kind.group.as_deref().unwrap_or(GATEWAY_API_GROUP);
        match RouteKind::parse(&kind.kind).filter(|k| group == GATEWAY_API_GROUP && allowed.contains(k)) {
            Some(k) if !kinds.contains(&k) => kinds.push(k),
            Some(_) => {}
            None => invalid.push(if group.is_empty() {
                kind.kind.clone()
            } else {
                format!("{group}/{}", kind.kind)
            }),
        }
    }
    let problem = (!invalid.is_empty()).then(|| {
        let names: Vec<&str> = allowed.iter().map(|k| k.as_str()).collect();
        format!(
            "Route kinds {} are not supported on a {} listener; supported kinds: {}",
            invalid.join(", "),
            listener.protocol,
            names.join(", ")
        )
    });
    (kinds, problem)
}

/// Why a listener lost its port to another one.
struct Clash {
    /// `Some` for a Conflicted reason; `None` when two ports map to one container port.
    conflict: Option<compat::Conflict>,
    detail: String,
}

/// How `candidate` relates to `other`, a listener on the same container port that either
/// holds it already (an older Gateway's) or is a sibling in the same Gateway. `owner`
/// describes `other` for messages; it is only called on a clash, so the common case
/// allocates nothing.
fn relation_to(candidate: &Candidate, other: &Candidate, owner: impl Fn() -> String, mode: PortMode) -> Outcome {
    if other.port == candidate.port {
        return match compat::relation(candidate.claim(), other.claim()) {
            Relation::Distinct => Outcome::Free,
            Relation::Identical => Outcome::Shared,
            Relation::Conflict(c) => Outcome::Lost(Clash {
                conflict: Some(c),
                detail: format!("conflicts with {} on port {}", owner(), candidate.port),
            }),
        };
    }
    let same_socket = other.protocol.transport() == candidate.protocol.transport()
        && listen::container_port(other.port, mode) == listen::container_port(candidate.port, mode);
    if !same_socket {
        return Outcome::Free;
    }
    Outcome::Lost(Clash {
        conflict: None,
        detail: format!(
            "port {} maps to container port {} in Shifted port mode, which {} already uses for port {}",
            candidate.port,
            listen::container_port(candidate.port, mode),
            owner(),
            other.port
        ),
    })
}

/// Where a listener stands against the listeners that already hold ports.
enum Outcome {
    /// Nobody it cannot be told apart from.
    Free,
    /// Identical to a listener of an older Gateway: both are served on one socket.
    Shared,
    Lost(Clash),
}

/// The listeners that kept their ports so far, indexed by container port: only listeners
/// on the same container port can clash (the same listener port implies it).
#[derive(Default)]
struct Claims {
    in_order: Vec<Candidate>,
    by_container_port: HashMap<u16, Vec<usize>>,
}

impl Claims {
    fn on_container_port(&self, port: u16) -> impl Iterator<Item = &Candidate> {
        self.by_container_port
            .get(&port)
            .into_iter()
            .flatten()
            .map(|&i| &self.in_order[i])
    }

    fn push(&mut self, candidate: Candidate, mode: PortMode) {
        let port = listen::container_port(candidate.port, mode);
        self.by_container_port
            .entry(port)
            .or_default()
            .push(self.in_order.len());
        self.in_order.push(candidate);
    }
}

/// Applies the conflict rules and returns the listeners that keep their ports, in precedence order.
fn settle_conflicts(
    plans: &mut [GatewayPlan],
    candidates_by_gateway: Vec<Vec<Candidate>>,
    mode: PortMode,
) -> Vec<Candidate> {
    let mut claims = Claims::default();
    for candidates in candidates_by_gateway {
        let clashes: Vec<Option<Clash>> = candidates
            .iter()
            .map(|candidate| {
                // Inside one Gateway every listener of an indistinct group loses, identical
                // ones too: the spec names no winner, and a Gateway has no reason to say
                // the same thing twice.
                let inside = candidates
                    .iter()
                    .filter(|other| other.listener != candidate.listener)
                    .find_map(|other| {
                        let name = &plans[other.gateway].listeners[other.listener].name;
                        let owner = || format!("listener {name:?} of the same Gateway");
                        match relation_to(candidate, other, owner, mode) {
                            Outcome::Free => None,
                            Outcome::Shared => Some(Clash {
                                conflict: Some(compat::Conflict::Hostname),
                                detail: format!(
                                    "conflicts with listener {name:?} of the same Gateway on port {}",
                                    candidate.port
                                ),
                            }),
                            Outcome::Lost(clash) => Some(clash),
                        }
                    });
                // Across Gateways the listeners of older Gateways keep their ports, and an
                // identical listener joins them. A listener identical to one holder relates to
                // every other holder as that holder does, so it cannot be both shared and lost.
                inside.or_else(|| {
                    claims
                        .on_container_port(listen::container_port(candidate.port, mode))
                        .find_map(|owner| {
                            let plan = &plans[owner.gateway];
                            let name = &plan.listeners[owner.listener].name;
                            let describe = || format!("listener {name:?} of the older Gateway {}", plan.key);
                            match relation_to(candidate, owner, describe, mode) {
                                Outcome::Free | Outcome::Shared => None,
                                Outcome::Lost(clash) => Some(clash),
                            }
                        })
                })
            })
            .collect();
        for (candidate, clash) in candidates.into_iter().zip(clashes) {
            let verdict = &mut plans[candidate.gateway].listeners[candidate.listener];
            match clash {
                Some(Clash {
                    conflict: Some(conflict),
                    detail,
                }) => {
                    let message = format!("Listener {detail}");
                    verdict.conflicted = Some(Verdict::fail(conflict.reason(), message.clone()));
                    verdict.accepted = Verdict::fail(conflict.reason(), message);
                }
                Some(Clash { conflict: None, detail }) => {
                    verdict.conflicted = Some(Verdict::ok(reasons::NO_CONFLICTS, "No conflicts"));
                    verdict.accepted = Verdict::fail(reasons::PORT_UNAVAILABLE, format!("Listener {detail}"));
                }
                None => {
                    verdict.conflicted = Some(Verdict::ok(reasons::NO_CONFLICTS, "No conflicts"));
                    claims.push(candidate, mode);
                }
            }
        }
    }
    claims.in_order
}

/// Turns the listeners that kept their ports into Kong listen entries.
fn build_listen_plan(plans: &mut [GatewayPlan], claimed: Vec<Candidate>, mode: PortMode) -> ListenPlan {
    let mut entries: Vec<ListenEntry> = Vec::new();
    let mut entry_of_socket: HashMap<(u16, Transport), usize> = HashMap::new();
    for candidate in &claimed {
        let plan = &mut plans[candidate.gateway];
        let key = ListenerKey {
            gateway: plan.key.clone(),
            listener: plan.listeners[candidate.listener].name.clone(),
        };
        plan.listeners[candidate.listener].programmed = true;
        let socket = (candidate.port, candidate.protocol.transport());
        match entry_of_socket.get(&socket) {
            Some(&index) => entries[index].listeners.push(key),
            None => {
                entry_of_socket.insert(socket, entries.len());
                entries.push(ListenEntry {
                    port: candidate.port,
                    container_port: listen::container_port(candidate.port, mode),
                    protocol: candidate.protocol,
                    port_name: String::new(),
                    listeners: vec![key],
                });
            }
        }
    }
    record_sharing(plans, &claimed);
    entries.sort_by_key(|e| (e.port, e.protocol.transport()));
    let mut taken = BTreeSet::new();
    for entry in &mut entries {
        entry.port_name = listen::port_name(&entry.listeners[0].listener, entry.protocol, entry.port, &taken);
        taken.insert(entry.port_name.clone());
    }
    ListenPlan {
        entries,
        port_mode: mode,
    }
}

/// Fills `shared_with`: programmed listeners of different Gateways on one port, transport
/// and hostname are identical (anything else would have been a conflict), so each is shared
/// with the others.
fn record_sharing(plans: &mut [GatewayPlan], claimed: &[Candidate]) {
    let mut groups: HashMap<(u16, Transport, Option<&str>), Vec<&Candidate>> = HashMap::new();
    for candidate in claimed {
        groups
            .entry((
                candidate.port,
                candidate.protocol.transport(),
                candidate.hostname.as_deref(),
            ))
            .or_default()
            .push(candidate);
    }
    for group in groups.values().filter(|g| g.len() > 1) {
        let keys: Vec<ListenerKey> = group
            .iter()
            .map(|c| ListenerKey {
                gateway: plans[c.gateway].key.clone(),
                listener: plans[c.gateway].listeners[c.listener].name.clone(),
            })
            .collect();
        for candidate in group {
            let mut others: Vec<ListenerKey> = keys
                .iter()
                .filter(|k| k.gateway != plans[candidate.gateway].key)
                .cloned()
                .collect();
            others.sort();
            plans[candidate.gateway].listeners[candidate.listener].shared_with = others;
        }
    }
}

#[cfg(test)]
mod tests;
