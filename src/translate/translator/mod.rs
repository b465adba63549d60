//! Incremental translation: [`Translator`] remembers what it translated, so the next
//! translation of the same class redoes only what a change can affect. Its answer is always
//! exactly the one a fresh translator gives (the free [`super::translate`] is one), byte for
//! byte: the cache is an optimisation, never a source of truth.
//!
//! What is kept, and what a cached piece depends on (a change to any of it drops the piece):
//! - per Kubernetes route, its attachment, kind translation and validation: the route as
//!   translation reads it (kind, `namespace/name`, generation, creation time, spec — see
//!   [`RouteObject::translates_like`]), the Gateways and the plan (any change re-attaches
//!   every route), the labels of its namespace, and every backend resolution its rules used
//!   (by version, below). A route attached again whose kind translator would read the same
//!   attachments (ports, protocols, hostnames, hostnames of more specific listeners) keeps
//!   its Kong routes; only its verdict and `attachedRoutes` are renewed;
//! - per distinct rule `backendRefs` (with the route's namespace and kind, and the protocol),
//!   the resolution: the Services it names, their EndpointSlices, and the ReferenceGrants
//!   when a ref crosses namespaces. A resolution asked again after such a change keeps its
//!   version when it answers the same, so routes whose backends merely changed endpoints
//!   keep their Kong routes and only the upstream is made again;
//! - per distinct expression, atc-router's verdict (an expression is parsed once, however
//!   often it is sent; every expression is still checked before it goes out);
//! - the order of all Kong routes ([`priority::Order`]): changed routes are placed by
//!   binary search and the priorities renumbered in one pass;
//! - the certificates, while Gateways, plan, grants and the Secrets they read are the same.
//!
//! Objects are compared by address first (the caches hand over the same `Arc` while an object
//! is unchanged), then by the content translation reads. The answer shares its routes,
//! services, upstreams and verdicts with the cache ([`kong::RouteEntry`], `Arc`s in
//! [`kong::KongConfig`], [`Translation::routes`]): a service is assembled again only when its
//! routes, their priorities, its backend set or its owning route changed, and handing out an
//! answer copies no route.

mod assemble;
mod seen;
mod slots;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::attach::{self, ListenerId};
use super::backends::{BackendCache, Backends, FxMap, Used};
use super::priority::{self, Order, SortKey, Source};
use super::routes::{RouteObject, RouteRef, RouteView};
use super::validate::{self, Checked};
use super::{RouteVerdict, TranslateInput, Translation, grpc, http, kong, stream};
use crate::plan::ListenerKey;
use assemble::{CertificateMemo, ServiceIndex};
use seen::{Changes, Seen};

/// One Kubernetes route as last translated.
struct CachedRoute {
    route: RouteRef,
    object: RouteObject,
    /// The translation that saw it last.
    seen: u64,
    /// The context generation it was attached in.
    context: u64,
    /// Backend resolutions its rules used, with the version they answered.
    used: Vec<Used>,
    /// Listeners it counts for (`attachedRoutes`), by id in the context of `context`.
    listeners: Vec<ListenerId>,
    /// Its Kong routes, by id.
    kong: Vec<u32>,
    /// Whether it has a verdict (some parentRef names a Gateway of the class).
    owned: bool,
    /// What its kind's translator read of its attachments, and what it decided: enough to
    /// give a route that attaches again to the same listeners its verdict without translating
    /// it again.
    served: Vec<Served>,
    rules: RulesSummary,
}

/// What a kind's translator reads of an attachment: all of it but the listener's name
/// (the client certificate picks the service copy a rule's Kong routes point at).
type Served = (
    u16,
    crate::plan::ListenerProtocol,
    attach::Hostnames,
    Arc<[String]>,
    Option<Arc<str>>,
);

fn served(attachments: &[&attach::Attachment]) -> Vec<Served> {
    attachments
        .iter()
        .map(|attachment| {
            // Destructured, so a field added to `Attachment` must be decided on here: a field
            // left out would let a route keep Kong routes made for other attachments.
            let attach::Attachment {
                listener: _,
                port,
                protocol,
                hostnames,
                more_specific,
                client_certificate,
            } = attachment;
            (
                *port,
                *protocol,
                hostnames.clone(),
                more_specific.clone(),
                client_certificate.clone(),
            )
        })
        .collect()
}

/// A [`super::RuleOutcome`] without its Kong routes (what the verdict reads).
#[derive(Default)]
struct RulesSummary {
    outcome: super::RuleOutcome,
    kept_any: bool,
}

/// A Kong route of the current answer.
struct KongSlot {
    route: Arc<kong::Route>,
    service: Option<String>,
    /// Its service's place in the [`ServiceIndex`].
    service_slot: Option<u32>,
    key: SortKey,
}

/// Translates one class again and again, redoing only what changed (see the module doc).
///
/// Keep one per GatewayClass and hand it every snapshot of that class: a translator fed
/// another class's snapshot stays correct but finds nothing to reuse. The answer shares its
/// routes and verdicts with the cache; dropping the previous [`Translation`]'s `routes`
/// before the next call lets the verdicts be updated in place instead of copied.
pub struct Translator {
    seen: Seen,
    /// Bumped whenever the Gateways or the plan change.
    context: u64,
    /// Listener keys of the current context, by [`ListenerId`].
    listener_keys: Vec<ListenerKey>,
    /// Accepted routes per listener (`attachedRoutes`), by [`ListenerId`].
    attached: Vec<i32>,
    /// Counts translations.
    epoch: u64,
    backends: BackendCache,
    checked: Checked,
    routes: Vec<Option<CachedRoute>>,
    free_routes: Vec<u32>,
    live_routes: usize,
    by_address: FxMap<usize, u32>,
    by_ref: FxMap<RouteRef, u32>,
    kong: Vec<Option<KongSlot>>,
    free_kong: Vec<u32>,
    order: Order,
    /// Priority by Kong route id, for the current order.
    priorities: Vec<u64>,
    services: ServiceIndex,
    verdicts: Arc<BTreeMap<RouteRef, RouteVerdict>>,
    certificates: Option<CertificateMemo>,
    scratch: Scratch,
}

impl Default for Translator {
    fn default() -> Self {
        Self::new()
    }
}

impl Translator {
    pub fn new() -> Self {
        Self {
            seen: Seen::new(),
            context: 0,
            listener_keys: Vec::new(),
            attached: Vec::new(),
            epoch: 0,
            backends: BackendCache::default(),
            checked: Checked::default(),
            routes: Vec::new(),
            free_routes: Vec::new(),
            live_routes: 0,
            by_address: FxMap::default(),
            by_ref: FxMap::default(),
            kong: Vec::new(),
            free_kong: Vec::new(),
            order: Order::default(),
            priorities: Vec::new(),
            services: ServiceIndex::default(),
            verdicts: Arc::new(BTreeMap::new()),
            certificates: None,
            scratch: Scratch::default(),
        }
    }

    /// Translates one class (see [`super::translate`] for what the answer says).
    pub fn translate(&mut self, input: &TranslateInput<'_>) -> Translation {
        self.epoch = self.epoch.wrapping_add(1);
        // Listener ids are positions in the Gateways' listeners: sorted Gateways make them
        // independent of input order, so cached routes can keep theirs.
        let gateways = seen::sorted_gateways(input.gateways);
        let input = TranslateInput {
            gateways: &gateways,
            ..*input
        };
        let changes = self.seen.update(&input, &gateways);
        if changes.context {
            self.context = self.context.wrapping_add(1);
        }
        let stale = self.backends.forget(&changes.services, changes.grants);
        let answers_changed = self.backends.refresh(&input, &stale);
        if changes.context {
            // Every route attaches again and counts itself anew.
            self.attached.clear();
        }

        let (mut todo, reattach, seen) = self.find_changed_routes(&input, &changes, answers_changed);
        // Kong routes replaced or removed: their slots are emptied at once (so their memory
        // serves the new ones) and reused once they are out of the order. Scratch vectors
        // are kept from call to call: freeing large blocks amid many small frees makes
        // glibc's allocator consolidate, which showed as a fifth of a full translation.
        let mut dead = std::mem::take(&mut self.scratch.dead);
        let mut added = std::mem::take(&mut self.scratch.added);
        let removed: Vec<u32> = if seen == self.live_routes {
            Vec::new()
        } else {
            self.routes
                .iter()
                .enumerate()
                .filter(|(_, r)| r.as_ref().is_some_and(|r| r.seen != self.epoch))
                .filter_map(|(i, _)| u32::try_from(i).ok())
                .collect()
        };
        for id in removed {
            let verdicts = Arc::make_mut(&mut self.verdicts);
            let Some(entry) = self.routes.get_mut(id as usize).and_then(Option::take) else {
                continue;
            };
            self.free_routes.push(id);
            self.live_routes = self.live_routes.saturating_sub(1);
            count(&mut self.attached, &entry.listeners, -1);
            self.by_address.remove(&entry.object.address());
            self.by_ref.remove(&entry.route);
            verdicts.remove(&entry.route);
            for (resolution, _) in &entry.used {
                self.backends.release(*resolution);
            }
            for kong_id in entry.kong {
                self.services.remove(kong_id, &self.kong);
                empty_slot(&mut self.kong, kong_id);
                dead.push(kong_id);
            }
        }

        if !todo.is_empty() || !reattach.is_empty() || changes.context {
            let context = attach::Context::new(&input);
            if changes.context {
                self.listener_keys = context.listener_keys().to_vec();
                self.attached = vec![0; self.listener_keys.len()];
            }
            for id in reattach {
                if !self.reattach(&context, id) {
                    todo.push(id);
                }
            }
            // Every route again (a first translation, a change of Gateway): the index is
            // made anew rather than emptied route by route.
            let all = todo.len() == self.live_routes;
            if all {
                self.services.clear();
            }
            for id in todo {
                self.retranslate(&input, &context, id, all, &mut dead, &mut added);
            }
        }

        let order_changed = !dead.is_empty() || !added.is_empty();
        if !dead.is_empty() {
            let gone = &mut self.scratch.gone;
            gone.clear();
            gone.resize(self.kong.len(), false);
            for &id in &dead {
                if let Some(flag) = gone.get_mut(id as usize) {
                    *flag = true;
                }
            }
            self.order.remove(|id| gone.get(id as usize).copied().unwrap_or(false));
            self.free_kong.extend_from_slice(&dead);
        }
        let kong = &self.kong;
        let fallback = priority::SortKey::placeholder();
        self.order.insert(&mut added, |id| {
            kong.get(id as usize)
                .and_then(Option::as_ref)
                .map_or(&fallback, |slot| &slot.key)
        });
        dead.clear();
        added.clear();
        self.scratch.dead = dead;
        self.scratch.added = added;
        if order_changed {
            // Ranks move: the services of the Kong routes whose priority changed are
            // assembled again (new and removed routes changed theirs already).
            self.priorities.resize(self.kong.len(), 0);
            let count = self.order.ids().len();
            for (position, &id) in self.order.ids().iter().enumerate() {
                let priority = priority::priority_at(position, count);
                if let Some(old) = self.priorities.get_mut(id as usize)
                    && *old != priority
                {
                    *old = priority;
                    let service = self
                        .kong
                        .get(id as usize)
                        .and_then(Option::as_ref)
                        .and_then(|s| s.service_slot);
                    self.services.touch(service);
                }
            }
        }

        let attached_routes = self.attached_routes();
        let certificates = self.certificates(&input, &changes);
        let config = assemble::config(
            &mut self.services,
            &self.kong,
            &self.priorities,
            &self.backends,
            certificates,
        );
        self.backends.sweep();
        self.forget_expressions();
        Translation {
            config,
            routes: self.verdicts.clone(),
            attached_routes,
        }
    }

    /// Marks every route of the input as seen. Returns the routes to translate again, those
    /// to attach again (only Gateways, plan or namespace labels changed for them), and how
    /// many cached routes were seen. `answers_changed`: some backend resolution answers
    /// differently.
    fn find_changed_routes(
        &mut self,
        input: &TranslateInput<'_>,
        changes: &Changes,
        answers_changed: bool,
    ) -> (Vec<u32>, Vec<u32>, usize) {
        let namespaces: HashSet<&str> = changes.namespaces.iter().map(String::as_str).collect();
        let mut todo = Vec::new();
        let mut reattach = Vec::new();
        let mut seen = 0;
        for object in input.routes.objects() {
            let address = object.address();
            let by_address = self.by_address.get(&address).copied().filter(|&id| {
                self.route(id)
                    .is_some_and(|r| r.object.address() == address && r.object.kind() == object.kind())
            });
            let id = match by_address {
                Some(id) => Some(id),
                None => self.by_ref.get(&object.route_ref()).copied(),
            };
            let Some(id) = id else {
                let id = self.new_route(object);
                todo.push(id);
                seen += 1;
                continue;
            };
            let epoch = self.epoch;
            let context = self.context;
            let Some(entry) = self.routes.get_mut(id as usize).and_then(Option::as_mut) else {
                continue;
            };
            // A second object with the same kind and `namespace/name`: the later one wins.
            let duplicate = entry.seen == epoch;
            if !duplicate {
                seen += 1;
            }
            let same = !duplicate && entry.object.translates_like(&object);
            if entry.object.address() != address {
                self.by_address.remove(&entry.object.address());
                self.by_address.insert(address, id);
                entry.object = object;
            }
            entry.seen = epoch;
            let stale = duplicate
                || !same
                || (answers_changed
                    && entry
                        .used
                        .iter()
                        .any(|(resolution, version)| self.backends.version(*resolution) != Some(*version)));
            if stale {
                todo.push(id);
            } else if entry.context != context
                || (!namespaces.is_empty() && namespaces.contains(entry.route.key.namespace.as_str()))
            {
                reattach.push(id);
            }
        }
        todo.sort_unstable();
        todo.dedup();
        // A duplicate may have been put in both lists.
        reattach.retain(|id| todo.binary_search(id).is_err());
        (todo, reattach, seen)
    }

    /// Attaches a route again; when its kind's translator would read the same attachments,
    /// only its verdict and listener counts are renewed. Returns false when it must be
    /// translated again.
    fn reattach(&mut self, context: &attach::Context<'_>, id: u32) -> bool {
        let Some(entry) = self.routes.get_mut(id as usize).and_then(Option::as_mut) else {
            return true;
        };
        let view = RouteView::of(&entry.object);
        let parents = attach::attach(context, &view);
        let attachments = super::serving_attachments(&parents);
        if parents.is_empty() || !entry.owned || served(&attachments) != entry.served {
            return false;
        }
        let served = !attachments.is_empty();
        let (verdict, listeners) = super::verdict(&view, parents, served, &entry.rules.outcome, entry.rules.kept_any);
        if entry.context == self.context {
            count(&mut self.attached, &entry.listeners, -1);
        }
        count(&mut self.attached, &listeners, 1);
        entry.listeners = listeners;
        entry.context = self.context;
        if self.verdicts.get(&entry.route) != Some(&verdict) {
            Arc::make_mut(&mut self.verdicts).insert(entry.route.clone(), verdict);
        }
        true
    }

    fn route(&self, id: u32) -> Option<&CachedRoute> {
        self.routes.get(id as usize).and_then(Option::as_ref)
    }

    fn new_route(&mut self, object: RouteObject) -> u32 {
        let route = object.route_ref();
        let entry = CachedRoute {
            route: route.clone(),
            seen: self.epoch,
            context: self.context,
            used: Vec::new(),
            listeners: Vec::new(),
            kong: Vec::new(),
            owned: false,
            served: Vec::new(),
            rules: RulesSummary::default(),
            object,
        };
        let address = entry.object.address();
        let id = slots::place(&mut self.routes, &mut self.free_routes, entry);
        self.by_address.insert(address, id);
        self.by_ref.insert(route, id);
        self.live_routes += 1;
        id
    }

    /// Attaches and translates one route again, replacing what it had.
    fn retranslate(
        &mut self,
        input: &TranslateInput<'_>,
        context: &attach::Context<'_>,
        id: u32,
        index_cleared: bool,
        dead: &mut Vec<u32>,
        added: &mut Vec<u32>,
    ) {
        let Some(entry) = self.routes.get_mut(id as usize).and_then(Option::as_mut) else {
            return;
        };
        let verdicts = Arc::make_mut(&mut self.verdicts);
        entry.served.clear();
        entry.rules = RulesSummary::default();
        for kong_id in entry.kong.drain(..) {
            if !index_cleared {
                self.services.remove(kong_id, &self.kong);
            }
            empty_slot(&mut self.kong, kong_id);
            dead.push(kong_id);
        }
        let previous = std::mem::take(&mut entry.used);
        // After a context change the counts were reset, and these ids are of the old context.
        if entry.context == self.context {
            count(&mut self.attached, &entry.listeners, -1);
        }
        entry.listeners.clear();
        entry.context = self.context;

        let view = RouteView::of(&entry.object);
        let parents = attach::attach(context, &view);
        entry.owned = !parents.is_empty();
        if parents.is_empty() {
            verdicts.remove(&entry.route);
        } else {
            let attachments = super::serving_attachments(&parents);
            let mut backends = Backends::with_cache(input, &mut self.backends);
            let rules = match &view.object {
                RouteObject::Http(route) => http::translate(&view, route, &attachments, &mut backends),
                RouteObject::Grpc(route) => grpc::translate(&view, route, &attachments, &mut backends),
                RouteObject::Tls(_) | RouteObject::Tcp(_) | RouteObject::Udp(_) => {
                    stream::translate(&view, &attachments, &mut backends)
                }
            };
            entry.used = backends.take_used();
            for (resolution, _) in &entry.used {
                self.backends.acquire(*resolution);
            }
            let served_attachments = served(&attachments);
            let served = !attachments.is_empty();
            let mut rules = validate::keep_valid_with(&mut self.checked, rules);
            let kong_routes = std::mem::take(&mut rules.routes);
            let kept_any = !kong_routes.is_empty();
            let (verdict, listeners) = super::verdict(&view, parents, served, &rules, kept_any);
            entry.served = served_attachments;
            entry.rules = RulesSummary {
                outcome: rules,
                kept_any,
            };
            verdicts.insert(entry.route.clone(), verdict);
            count(&mut self.attached, &listeners, 1);
            entry.listeners = listeners;
            let source = Arc::new(Source {
                created: view.created,
                route: view.route.clone(),
            });
            for pending in kong_routes {
                let route = Arc::new(pending.route);
                let slot = KongSlot {
                    key: SortKey::new(&pending.precedence, source.clone(), route.clone()),
                    route,
                    service: pending.service,
                    service_slot: None,
                };
                let kong_id = slots::place(&mut self.kong, &mut self.free_kong, slot);
                self.services.insert(kong_id, &mut self.kong);
                entry.kong.push(kong_id);
                added.push(kong_id);
            }
        }
        // Released after the new ones are held, so a resolution both use is kept.
        for (resolution, _) in previous {
            self.backends.release(resolution);
        }
    }

    fn attached_routes(&self) -> BTreeMap<ListenerKey, i32> {
        self.listener_keys
            .iter()
            .zip(self.attached.iter().copied())
            .filter(|(_, count)| *count > 0)
            .map(|(key, count)| (key.clone(), count))
            .collect()
    }

    fn certificates(&mut self, input: &TranslateInput<'_>, changes: &Changes) -> Vec<kong::Certificate> {
        if changes.context || changes.grants {
            self.certificates = None;
        }
        if let Some(memo) = &self.certificates
            && memo.still_valid(input)
        {
            return memo.certificates.clone();
        }
        let memo = CertificateMemo::new(input);
        let certificates = memo.certificates.clone();
        self.certificates = Some(memo);
        certificates
    }

    /// Keeps the expression cache to about what the current routes use.
    fn forget_expressions(&mut self) {
        let live = self.order.ids().len();
        if self.checked.len() <= live.saturating_mul(2).saturating_add(4096) {
            return;
        }
        let expressions: HashSet<&str> = self
            .kong
            .iter()
            .flatten()
            .map(|s| s.route.expression.as_str())
            .collect();
        self.checked.retain(|e| expressions.contains(e));
    }
}

/// Empties the slot of a Kong route that is gone (its id is reused once out of the order).
fn empty_slot(kong: &mut [Option<KongSlot>], id: u32) {
    if let Some(slot) = kong.get_mut(id as usize) {
        *slot = None;
    }
}

/// Vectors kept from one translation to the next (see [`Translator::translate`]).
#[derive(Default)]
struct Scratch {
    dead: Vec<u32>,
    added: Vec<u32>,
    gone: Vec<bool>,
}

/// Adds `delta` to the count of each listener.
fn count(counts: &mut [i32], listeners: &[ListenerId], delta: i32) {
    for listener in listeners {
        if let Some(count) = counts.get_mut(listener.index()) {
            *count = count.saturating_add(delta);
        }
    }
}

#[cfg(test)]
mod tests;
