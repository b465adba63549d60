//! Route translation: one class's Gateways, routes and backends in, the Kong
//! declarative config and every route's status out. Pure: no API calls, no clocks.
//!
//! The steps, one module each:
//! - [`attach`]: which listeners each `parentRef` attaches to (hostnames, namespaces, kinds);
//! - [`http`], [`grpc`], [`stream`]: rules → Kong routes with expressions ([`expression`]) and
//!   precedence ([`priority`]), filters → plugins ([`filters`]);
//! - [`backends`]: backendRefs → Kong services, upstreams and targets;
//! - [`certificates`]: HTTPS / TLS-terminate listener certificates → Kong certificates and SNIs;
//! - [`validate`]: every expression parsed by Kong's own router engine before it goes out.

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
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::api::{Gateway, ObjectKey, ReferenceGrant};
use crate::plan::{ClassPlan, ListenerKey, SecretLookup, Verdict};
pub use kong::KongConfig;
pub use routes::{BackendRef, ParentRef, RouteRef, RouteSet, RouteView};

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
    pub routes: BTreeMap<RouteRef, RouteVerdict>,
    /// Accepted routes per listener (the listener's `attachedRoutes`); absent means 0.
    pub attached_routes: BTreeMap<ListenerKey, i32>,
}

impl Translation {
    pub fn attached_routes(&self, listener: &ListenerKey) -> i32 {
        self.attached_routes.get(listener).copied().unwrap_or(0)
    }
}

/// Translates one class.
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
pub fn translate(input: &TranslateInput<'_>) -> Translation {
    let context = attach::Context::new(input);
    let mut backends = backends::Backends::new(input);
    let mut kong_routes: Vec<priority::PendingRoute> = Vec::new();
    let mut verdicts = Vec::new();
    let mut attached = vec![0_i32; context.listener_keys().len()];

    for view in input.routes.views() {
        let parents = attach::attach(&context, &view);
        if parents.is_empty() {
            continue;
        }
        let attachments = serving_attachments(&parents);
        let rules = match &view.object {
            routes::RouteObject::Http(route) => http::translate(&view, route, &attachments, &mut backends),
            routes::RouteObject::Grpc(route) => grpc::translate(&view, route, &attachments, &mut backends),
            routes::RouteObject::Tls(_) | routes::RouteObject::Tcp(_) | routes::RouteObject::Udp(_) => {
                stream::translate(&view, &attachments, &mut backends)
            }
        };
        let rules = validate::keep_valid(&view, rules);
        // Without served listeners there are no Kong routes to count, so "some rule was kept"
        // is read from PartiallyInvalid, which a translator sets only when it kept some.
        let nothing_kept = rules.partially_invalid.is_none() && (attachments.is_empty() || rules.routes.is_empty());
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
                        if let Some(count) = attached.get_mut(listener.index()) {
                            *count = count.saturating_add(1);
                        }
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
        kong_routes.extend(rules.routes);
        verdicts.push((
            view.route.clone(),
            RouteVerdict {
                generation: view.generation,
                parents: parent_verdicts,
            },
        ));
    }
    // Views come sorted, so collecting builds the map in one pass.
    let verdicts: BTreeMap<RouteRef, RouteVerdict> = verdicts.into_iter().collect();
    let attached_routes: BTreeMap<ListenerKey, i32> = context
        .listener_keys()
        .iter()
        .zip(attached)
        .filter(|(_, count)| *count > 0)
        .map(|(key, count)| (key.clone(), count))
        .collect();

    priority::assign(&mut kong_routes);
    let config = assemble(kong_routes, backends, certificates::translate(input));
    Translation {
        config,
        routes: verdicts,
        attached_routes,
    }
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

/// Puts the pieces into one config, every collection sorted by name so the output is
/// byte-identical whatever the input order. Services no route uses (rules of routes that are
/// not served, later TCP/UDP rules, routes validation dropped) are left out with their upstreams.
fn assemble(
    routes: Vec<priority::PendingRoute>,
    backends: backends::Backends<'_>,
    certificates: Vec<kong::Certificate>,
) -> KongConfig {
    let (services, upstreams) = backends.finish();
    let mut by_service: BTreeMap<String, Vec<kong::Route>> = BTreeMap::new();
    let mut serviceless = Vec::new();
    for pending in routes {
        match pending.service {
            Some(service) => by_service.entry(service).or_default().push(pending.route),
            None => serviceless.push(pending.route),
        }
    }
    let mut services: Vec<kong::Service> = services
        .into_iter()
        .filter_map(|mut service| {
            let mut routes = by_service.remove(&service.name)?;
            routes.sort_by(|a, b| a.name.cmp(&b.name));
            service.routes = routes;
            Some(service)
        })
        .collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    let used: BTreeSet<&str> = services.iter().map(|s| s.host.as_str()).collect();
    let mut upstreams: Vec<kong::Upstream> = upstreams
        .into_iter()
        .filter(|u| used.contains(u.name.as_str()))
        .collect();
    upstreams.sort_by(|a, b| a.name.cmp(&b.name));
    serviceless.sort_by(|a, b| a.name.cmp(&b.name));
    if services.is_empty() && serviceless.is_empty() && upstreams.is_empty() && certificates.is_empty() {
        upstreams.push(kong::Upstream {
            name: PLACEHOLDER_UPSTREAM.to_string(),
            algorithm: None,
            tags: vec!["kongress:placeholder".to_string()],
            targets: Vec::new(),
        });
    }
    let mut config = KongConfig::empty();
    config.services = services;
    config.routes = serviceless;
    config.upstreams = upstreams;
    config.certificates = certificates;
    config
}
