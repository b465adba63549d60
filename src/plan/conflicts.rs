//! Distinctness of the accepted listeners of a class: who keeps a port, who shares it,
//! who loses it (design doc, section 4).

use std::collections::HashMap;

use super::compat::{self, Conflict, Relation};
use super::listener::Candidate;
use super::{GatewayPlan, ListenerKey, Transport, Verdict, listen};
use crate::api::PortMode;
use crate::api::conditions::reasons;

/// Why a listener lost its port to another one.
struct Clash {
    /// `Some` for a Conflicted reason; `None` when two ports map to one container port.
    conflict: Option<Conflict>,
    detail: String,
}

/// Whom a listener lost its port to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rival {
    /// Another listener of the same Gateway.
    Sibling,
    /// A listener of an older Gateway of the class.
    OlderGateway,
}

/// Where a listener stands against another on the same container port.
enum Outcome {
    /// Kong tells them apart.
    Free,
    /// Identical: one socket, one hostname, one set of certificates.
    Shared,
    Lost(Clash),
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

/// Applies the distinctness rules to the accepted listeners, Gateway by Gateway in
/// precedence order, and returns the listeners that keep their ports (servable or not),
/// in precedence order. Listeners of a `rejected` Gateway are checked against their
/// siblings only and never hold a port: a Gateway that is not accepted is not served.
pub(super) fn settle(
    plans: &mut [GatewayPlan],
    candidates_by_gateway: Vec<Vec<Candidate>>,
    rejected: &[bool],
    mode: PortMode,
) -> Vec<Candidate> {
    let mut claims = Claims::default();
    for (candidates, rejected) in candidates_by_gateway.into_iter().zip(rejected.iter().copied()) {
        let clashes: Vec<Option<(Clash, Rival)>> = candidates
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
                                conflict: Some(Conflict::Hostname),
                                detail: format!(
                                    "conflicts with listener {name:?} of the same Gateway on port {}",
                                    candidate.port
                                ),
                            }),
                            Outcome::Lost(clash) => Some(clash),
                        }
                    });
                let inside = inside.map(|clash| (clash, Rival::Sibling));
                if rejected {
                    return inside;
                }
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
                                Outcome::Lost(clash) => Some((clash, Rival::OlderGateway)),
                            }
                        })
                })
            })
            .collect();
        for (candidate, clash) in candidates.into_iter().zip(clashes) {
            let verdict = &mut plans[candidate.gateway].listeners[candidate.listener];
            match clash {
                Some((
                    Clash {
                        conflict: Some(conflict),
                        detail,
                    },
                    rival,
                )) => {
                    let message = format!("Listener {detail}");
                    verdict.conflicted = Some(Verdict::fail(conflict.reason(), message.clone()));
                    verdict.accepted = Verdict::fail(conflict.reason(), message);
                    verdict.conflicts_with_sibling = rival == Rival::Sibling;
                }
                Some((Clash { conflict: None, detail }, _)) => {
                    verdict.conflicted = Some(Verdict::ok(reasons::NO_CONFLICTS, "No conflicts"));
                    verdict.accepted = Verdict::fail(reasons::PORT_UNAVAILABLE, format!("Listener {detail}"));
                }
                None => {
                    verdict.conflicted = Some(Verdict::ok(reasons::NO_CONFLICTS, "No conflicts"));
                    if !rejected {
                        claims.push(candidate, mode);
                    }
                }
            }
        }
    }
    claims.in_order
}

/// Fills `shared_with`: served listeners of different Gateways on one port, transport
/// and hostname are identical (anything else would have been a conflict), so each is shared
/// with the others.
pub(super) fn record_sharing(plans: &mut [GatewayPlan], served: &[&Candidate]) {
    let mut groups: HashMap<(u16, Transport, Option<&str>), Vec<&Candidate>> = HashMap::new();
    for candidate in served {
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
        let keys: Vec<ListenerKey> = group.iter().map(|c| key_of(plans, c)).collect();
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

pub(super) fn key_of(plans: &[GatewayPlan], candidate: &Candidate) -> ListenerKey {
    let plan = &plans[candidate.gateway];
    ListenerKey {
        gateway: plan.key.clone(),
        listener: plan.listeners[candidate.listener].name.clone(),
    }
}
