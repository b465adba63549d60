//! Route translation: one class's Gateways, routes and backends in, the Kong
//! declarative config and every route's status out. Pure: no API calls, no clocks.
//!
//! The steps, one module each:
//! - [`attach`]: which listeners each `parentRef` attaches to (hostnames, namespaces, kinds);
//! - [`http`], [`grpc`], [`stream`]: rules → Kong routes with expressions ([`expression`]) and
//!   precedence ([`priority`]), filters → plugins ([`filters`]);
//! - [`backends`]: backendRefs → Kong services, upstreams and targets;
//! - [`certificates`]: HTTPS / TLS-terminate listener certificates → Kong certificates and SNIs;
//! - [`validate`]: every expression parsed by Kong's own router engine before it goes out;
//! - [`translator`]: all of it put together, redoing from one translation to the next only
//!   what changed ([`Translator`]).

mod attach;
mod backends;
mod certificates;
mod expression;
mod filters;
#[cfg(test)]
mod golden_tests;
mod grpc;
mod hostnames;
mod http;
pub mod kong;
#[cfg(test)]
mod orchestrator_tests;
mod priority;
#[cfg(test)]
mod router_tests;
pub mod routes;
mod stream;
pub mod tags;
#[cfg(test)]
mod testing;
mod translator;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::api::{Gateway, ObjectKey, ReferenceGrant};
use crate::plan::{ClassPlan, ListenerKey, SecretLookup, Verdict};
pub use kong::KongConfig;
pub use routes::{BackendRef, ParentRef, RouteRef, RouteSet, RouteView};
pub use translator::Translator;

/// Everything the translator reads: one class's snapshot.
pub struct TranslateInput<'a> {
    /// The Gateways of the class (any order).
    pub gateways: &'a [Arc<Gateway>],
    /// The planner's verdicts on their listeners.
    pub plan: &'a ClassPlan,
    /// Routes that may name a Gateway of the class (routes of other classes are ignored).
    pub routes: &'a RouteSet,
    /// Services by `namespace/name`.
    pub services: &'a BTreeMap<ObjectKey, Arc<Service>>,
    /// EndpointSlices by the `namespace/name` of the Service they belong to.
    pub endpoint_slices: &'a BTreeMap<ObjectKey, Vec<Arc<EndpointSlice>>>,
    pub secrets: &'a dyn SecretLookup,
    pub grants: &'a [Arc<ReferenceGrant>],
    /// Namespace labels by namespace name (for `allowedRoutes.namespaces.selector`).
    pub namespaces: &'a BTreeMap<String, BTreeMap<String, String>>,
}

/// What the translator decided about one `parentRefs` entry of a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentVerdict {
    pub parent_ref: ParentRef,
    /// `Accepted`.
    pub accepted: Verdict,
    /// `ResolvedRefs`.
    pub resolved_refs: Verdict,
    /// `PartiallyInvalid` (only ever True): some rules were dropped, with why.
    pub partially_invalid: Option<String>,
}

/// What the translator decided about one route: an entry per parentRef it owns, in spec order.
/// A route none of whose parentRefs names a Gateway of the class has no verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteVerdict {
    pub generation: i64,
    pub parents: Vec<ParentVerdict>,
}

/// The translator's whole answer for one class.
#[derive(Clone, Debug, PartialEq)]
pub struct Translation {
    pub config: KongConfig,
    /// Shared with the [`Translator`] that made it: `Arc::make_mut` to change it (which
    /// copies it while the translator holds it too).
    pub routes: Arc<BTreeMap<RouteRef, RouteVerdict>>,
    /// Accepted routes per listener (the listener's `attachedRoutes`); absent means 0.
    pub attached_routes: BTreeMap<ListenerKey, i32>,
}

impl Translation {
    pub fn attached_routes(&self, listener: &ListenerKey) -> i32 {
        self.attached_routes.get(listener).copied().unwrap_or(0)
    }
}

/// Translates one class, from scratch: a fresh [`Translator`] (which gives exactly this answer
/// however much it remembers).
///
/// Route status, per owned parentRef:
/// - `Accepted` comes from attachment; it turns False with the kind translator's problem
///   (e.g. `UnsupportedValue`) only when no rule of the route could be kept;
/// - `ResolvedRefs` covers every backendRef of the route, attached or not, so a route on a
///   listener Kong does not serve (yet) still says what is wrong with its references;
/// - `PartiallyInvalid` only while the parent is accepted (the spec forbids it otherwise).
///
/// `attachedRoutes` counts, per listener, the routes accepted on it, once per route, whether
/// Kong serves that listener or not (the spec counts attachment, not listener health).
///
/// Routes with the same kind and `namespace/name` cannot exist in a cluster; should the input
/// hold two, the later one is translated (as a cache would have replaced the earlier).
pub fn translate(input: &TranslateInput<'_>) -> Translation {
    Translator::new().translate(input)
}

/// The verdict on a route from its attachments (`served`: some are on listeners Kong serves)
/// and what its kind's translator decided (`kept_any`: it kept some Kong route), and the
/// listeners it counts for (`attachedRoutes`), each once.
fn verdict(
    view: &RouteView,
    parents: Vec<attach::ParentAttachment>,
    served: bool,
    rules: &RuleOutcome,
    kept_any: bool,
) -> (RouteVerdict, Vec<attach::ListenerId>) {
    // Without served listeners there are no Kong routes to count, so "some rule was kept"
    // is read from PartiallyInvalid, which a translator sets only when it kept some.
    let nothing_kept = rules.partially_invalid.is_none() && (!served || !kept_any);
    let mut counted: Vec<attach::ListenerId> = Vec::new();
    let mut parent_verdicts = Vec::with_capacity(parents.len());
    for parent in parents {
        let mut accepted = parent.accepted;
        if accepted.ok
            && nothing_kept
            && let Some(problem) = &rules.accepted_problem
        {
            accepted = problem.clone();
        }
        if accepted.ok {
            for listener in parent.listeners {
                if !counted.contains(&listener) {
                    counted.push(listener);
                }
            }
        }
        parent_verdicts.push(ParentVerdict {
            parent_ref: parent.parent_ref,
            partially_invalid: rules.partially_invalid.clone().filter(|_| accepted.ok),
            accepted,
            resolved_refs: rules.resolved_refs.clone(),
        });
    }
    (
        RouteVerdict {
            generation: view.generation,
            parents: parent_verdicts,
        },
        counted,
    )
}

/// The attachments the route's Kong routes are bound to: those on served listeners, once per
/// (port, protocol, hostnames, hostnames listener isolation excludes). Listeners shared by
/// several Gateways, or parentRefs naming the same listener twice, would otherwise give
/// identical Kong routes.
fn serving_attachments(parents: &[attach::ParentAttachment]) -> Vec<&attach::Attachment> {
    let mut attachments: Vec<&attach::Attachment> = Vec::new();
    for attachment in parents.iter().flat_map(|p| p.attachments.iter()) {
        let duplicate = attachments.iter().any(|a| {
            a.port == attachment.port
                && a.protocol == attachment.protocol
                && a.hostnames == attachment.hostnames
                && a.more_specific == attachment.more_specific
        });
        if !duplicate {
            attachments.push(attachment);
        }
    }
    attachments
}

/// What a kind's translator returns for one route (all its rules, all its attachments).
#[derive(Clone, Debug)]
pub struct RuleOutcome {
    /// Kong routes, each with the precedence facts the priority pass needs.
    pub routes: Vec<priority::PendingRoute>,
    /// `ResolvedRefs` over all backendRefs of the route.
    pub resolved_refs: Verdict,
    /// Set when a rule was dropped (`PartiallyInvalid=True`, message says which and why).
    pub partially_invalid: Option<String>,
    /// Set when the route cannot be served as written (`Accepted=False`, e.g. `UnsupportedValue`);
    /// applies only when no rule could be kept.
    pub accepted_problem: Option<Verdict>,
}

impl Default for RuleOutcome {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            resolved_refs: Verdict::ok(
                crate::api::conditions::reasons::RESOLVED_REFS,
                "All references are resolved",
            ),
            partially_invalid: None,
            accepted_problem: None,
        }
    }
}

/// Name of the upstream a config with no other entity carries. Kong 3.9 DB-less reports ready
/// (`/status/ready`) only once it holds a non-empty configuration: a config of nothing but
/// workspaces gets the "empty" hash (`kong/db/declarative/import.lua`, `config_is_empty`) and
/// `kong/status/ready.lua` answers 503 for it. An upstream without targets changes nothing
/// for traffic and makes the config count as loaded.
pub const PLACEHOLDER_UPSTREAM: &str = "kongress-placeholder";
