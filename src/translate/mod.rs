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
mod grpc;
mod hostnames;
mod http;
pub mod kong;
mod priority;
#[cfg(test)]
mod router_tests;
pub mod routes;
mod stream;
pub mod tags;
mod validate;

use std::collections::BTreeMap;
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
pub fn translate(input: &TranslateInput<'_>) -> Translation {
    let context = attach::Context::new(input);
    let mut backends = backends::Backends::new(input);
    let mut kong_routes: Vec<priority::PendingRoute> = Vec::new();
    let mut verdicts = BTreeMap::new();
    let mut attached_routes: BTreeMap<ListenerKey, i32> = BTreeMap::new();

    for view in input.routes.views() {
        let parents = attach::attach(&context, &view);
        if parents.is_empty() {
            continue;
        }
        let attachments: Vec<&attach::Attachment> = parents.iter().flat_map(|p| p.attachments.iter()).collect();
        let rules = if attachments.is_empty() {
            RuleOutcome::default()
        } else {
            match &view.object {
                routes::RouteObject::Http(route) => http::translate(&view, route, &attachments, &mut backends),
                routes::RouteObject::Grpc(route) => grpc::translate(&view, route, &attachments, &mut backends),
                routes::RouteObject::Tls(_) | routes::RouteObject::Tcp(_) | routes::RouteObject::Udp(_) => {
                    stream::translate(&view, &attachments, &mut backends)
                }
            }
        };
        let rules = validate::keep_valid(&view, rules);
        let served = !rules.routes.is_empty() || rules.accepted_problem.is_none();
        let parent_verdicts = parents
            .into_iter()
            .map(|parent| {
                let mut accepted = parent.accepted;
                if accepted.ok
                    && let Some(problem) = &rules.accepted_problem
                    && !served
                {
                    accepted = problem.clone();
                }
                if accepted.ok {
                    for attachment in &parent.attachments {
                        *attached_routes.entry(attachment.listener.clone()).or_default() += 1;
                    }
                }
                ParentVerdict {
                    parent_ref: parent.parent_ref,
                    accepted,
                    resolved_refs: rules.resolved_refs.clone(),
                    partially_invalid: rules.partially_invalid.clone(),
                }
            })
            .collect();
        kong_routes.extend(rules.routes);
        verdicts.insert(
            view.route.clone(),
            RouteVerdict {
                generation: view.generation,
                parents: parent_verdicts,
            },
        );
    }

    priority::assign(&mut kong_routes);
    let config = assemble(kong_routes, backends, certificates::translate(input));
    Translation {
        config,
        routes: verdicts,
        attached_routes,
    }
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

/// Puts the pieces into one config, every collection sorted by name so the output is
/// byte-identical whatever the input order.
fn assemble(
    routes: Vec<priority::PendingRoute>,
    backends: backends::Backends<'_>,
    certificates: Vec<kong::Certificate>,
) -> KongConfig {
    let (mut services, upstreams) = backends.finish();
    let mut by_service: BTreeMap<String, Vec<kong::Route>> = BTreeMap::new();
    let mut serviceless = Vec::new();
    for pending in routes {
        match pending.service {
            Some(service) => by_service.entry(service).or_default().push(pending.route),
            None => serviceless.push(pending.route),
        }
    }
    for service in &mut services {
        if let Some(mut routes) = by_service.remove(&service.name) {
            routes.sort_by(|a, b| a.name.cmp(&b.name));
            service.routes = routes;
        }
    }
    services.sort_by(|a, b| a.name.cmp(&b.name));
    serviceless.sort_by(|a, b| a.name.cmp(&b.name));
    let mut config = KongConfig::empty();
    config.services = services;
    config.routes = serviceless;
    config.upstreams = upstreams;
    config.certificates = certificates;
    config
}
