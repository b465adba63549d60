//! Listener planning: all Gateways of one GatewayClass in, a verdict per listener
//! and the Kong listen plan out. Pure: no API calls, no clocks.

mod addresses;
mod certificates;
mod client_certificate;
mod compat;
mod conflicts;
pub mod grants;
pub mod listen;
mod listener;
mod overlap;
pub mod protocol;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;

use crate::api::{Gateway, ObjectKey, PortMode, ReferenceGrant};
pub use addresses::{AddressRequest, AddressVerdict};
pub use client_certificate::BackendClientCertificate;
pub use listen::{ListenEntry, ListenPlan, ListenerKey};
use listener::Candidate;
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
    /// The conflict is with another listener of the same Gateway: the Gateway's own spec
    /// cannot be served as written, so the listener supports no route kind. A listener that
    /// lost its port to an older Gateway keeps its kinds, which depend on its own spec only.
    pub conflicts_with_sibling: bool,
    /// `ResolvedRefs`.
    pub resolved_refs: Verdict,
    /// Route kinds that may attach (the listener's `supportedKinds`).
    pub supported_kinds: Vec<RouteKind>,
    /// True when Kong serves this listener: it is in the listen plan. An accepted listener
    /// may hold its port without being served (no usable certificate, no route kind).
    pub programmed: bool,
    /// Programmed listeners of other Gateways that Kong cannot tell apart from this one
    /// (same socket, protocol, hostname and certificates), sorted. Their traffic arrives
    /// together, so the routes of all of them are served together.
    pub shared_with: Vec<ListenerKey>,
    /// Served TLS-terminating listeners on the same port (this Gateway's or another's)
    /// whose hostnames overlap this one's, sorted: `OverlappingTLSConfig=True` when not empty.
    pub overlapping_tls: Vec<ListenerKey>,
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
    /// `spec.tls.backend.clientCertificateRef`, resolved; `None` when the Gateway sets none.
    pub backend_client_certificate: Option<BackendClientCertificate>,
}

impl GatewayPlan {
    pub fn accepted_listener_count(&self) -> usize {
        self.listeners.iter().filter(|l| l.accepted.ok).count()
    }

    /// Why the Gateway as a whole is not accepted, if it is not: then none of its
    /// listeners holds a port or reaches Kong.
    pub fn rejection(&self) -> Option<&str> {
        self.invalid_parameters
            .as_deref()
            .or(self.addresses.unsupported.as_deref())
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

/// Plans one GatewayClass.
pub fn plan_class(input: &PlanInput<'_>) -> ClassPlan {
    let gateways = precedence_order(input.gateways);
    let mut plans = Vec::with_capacity(gateways.len());
    let mut candidates_by_gateway = Vec::with_capacity(gateways.len());

    for (gateway_index, gateway) in gateways.iter().enumerate() {
        let mut listeners = Vec::with_capacity(gateway.spec.listeners.len());
        let mut candidates = Vec::new();
        for (listener_index, spec) in gateway.spec.listeners.iter().enumerate() {
            let (verdict, accepted) = listener::check(gateway, spec, input);
            if let Some(accepted) = accepted {
                candidates.push(Candidate {
                    gateway: gateway_index,
                    listener: listener_index,
                    port: accepted.port,
                    protocol: accepted.protocol,
                    hostname: spec.hostname.as_ref().map(|h| h.to_ascii_lowercase()),
                    certificates: accepted.certificates,
                    servable: accepted.servable,
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
            backend_client_certificate: client_certificate::resolve(gateway, input.secrets, input.grants),
        });
        candidates_by_gateway.push(candidates);
    }

    let rejected: Vec<bool> = plans.iter().map(|p| p.rejection().is_some()).collect();
    let holders = conflicts::settle(&mut plans, candidates_by_gateway, &rejected, input.settings.port_mode);
    let served: Vec<&Candidate> = holders.iter().filter(|c| c.servable).collect();
    conflicts::record_sharing(&mut plans, &served);
    overlap::record_overlaps(&mut plans, &served);
    let listen = build_listen_plan(&mut plans, &served, input.settings.port_mode);
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

/// Turns the served listeners into Kong listen entries.
fn build_listen_plan(plans: &mut [GatewayPlan], served: &[&Candidate], mode: PortMode) -> ListenPlan {
    let mut entries: Vec<ListenEntry> = Vec::new();
    let mut entry_of_socket: HashMap<(u16, Transport), usize> = HashMap::new();
    for candidate in served {
        let key = conflicts::key_of(plans, candidate);
        plans[candidate.gateway].listeners[candidate.listener].programmed = true;
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

#[cfg(test)]
mod tests;
