//! The config of an answer, put together from the cache: every collection sorted by name so
//! the output is byte-identical whatever the input order, routes shared with the cache.
//! Services no route uses (rules of routes that are not served, later TCP/UDP rules, routes
//! validation dropped) are left out with their upstreams.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;

use super::super::backends::BackendCache;
use super::super::routes::RouteRef;
use super::super::{PLACEHOLDER_UPSTREAM, TranslateInput, certificates, kong, tags};
use super::KongSlot;
use super::seen::{RecordingSecrets, same_secret};
use crate::api::ObjectKey;

/// The Kong routes of the answer by the service they belong to, each list sorted by route
/// name, with the service as last assembled until something in it changes.
#[derive(Default)]
pub struct ServiceIndex {
    by_name: BTreeMap<String, u32>,
    slots: Vec<Option<ServiceSlot>>,
    free: Vec<u32>,
    serviceless: Vec<u32>,
    /// The service of the last insertion: the Kong routes of a rule come one after the
    /// other and share it.
    last: Option<(String, u32)>,
}

struct ServiceSlot {
    ids: Vec<u32>,
    /// The service as last assembled, and what it was assembled from: when the set's
    /// entities were made, and the route whose tags a route-owned one carries.
    built: Option<(Arc<kong::Service>, u64, Option<RouteRef>)>,
}

fn slot(kong: &[Option<KongSlot>], id: u32) -> Option<&KongSlot> {
    kong.get(id as usize).and_then(Option::as_ref)
}

fn name_of(kong: &[Option<KongSlot>], id: u32) -> &str {
    slot(kong, id).map_or("", |s| s.route.name.as_str())
}

impl ServiceIndex {
    /// Forgets every route and service.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    fn service_slot(&mut self, name: &str) -> u32 {
        if let Some((last, id)) = &self.last
            && last == name
        {
            return *id;
        }
        if let Some(&id) = self.by_name.get(name) {
            self.last = Some((name.to_string(), id));
            return id;
        }
        let new = ServiceSlot {
            ids: Vec::new(),
            built: None,
        };
        let id = super::slots::place(&mut self.slots, &mut self.free, new);
        self.by_name.insert(name.to_string(), id);
        self.last = Some((name.to_string(), id));
        id
    }

    fn list(&mut self, service: Option<u32>) -> Option<&mut Vec<u32>> {
        match service {
            Some(id) => {
                let slot = self.slots.get_mut(id as usize)?.as_mut()?;
                slot.built = None;
                Some(&mut slot.ids)
            }
            None => Some(&mut self.serviceless),
        }
    }

    /// Adds Kong route `id` (its slot must be filled), noting its service slot in it.
    pub fn insert(&mut self, id: u32, kong: &mut [Option<KongSlot>]) {
        let service = match kong.get(id as usize).and_then(Option::as_ref) {
            Some(new) => new.service.as_deref().map(|name| self.service_slot(name)),
            None => return,
        };
        if let Some(new) = kong.get_mut(id as usize).and_then(Option::as_mut) {
            new.service_slot = service;
        }
        let name = name_of(kong, id);
        if let Some(list) = self.list(service) {
            // Routes mostly arrive in name order.
            if list.last().is_none_or(|&last| name_of(kong, last) < name) {
                list.push(id);
            } else {
                let at = list.partition_point(|&other| name_of(kong, other) < name);
                list.insert(at, id);
            }
        }
    }

    /// Removes Kong route `id` (while its slot is still filled).
    pub fn remove(&mut self, id: u32, kong: &[Option<KongSlot>]) {
        let Some(old) = slot(kong, id) else {
            return;
        };
        let name = old.route.name.as_str();
        let service = old.service_slot;
        let Some(list) = self.list(service) else {
            return;
        };
        let from = list.partition_point(|&other| name_of(kong, other) < name);
        if let Some(offset) = list
            .get(from..)
            .and_then(|rest| rest.iter().position(|&other| other == id))
        {
            list.remove(from + offset);
        }
        if list.is_empty()
            && let (Some(service_id), Some(service_name)) = (service, old.service.as_deref())
        {
            self.by_name.remove(service_name);
            self.last = None;
            if let Some(emptied) = self.slots.get_mut(service_id as usize) {
                *emptied = None;
                self.free.push(service_id);
            }
        }
    }

    /// The service of Kong route `id` must be assembled again (its priority changed).
    pub fn touch(&mut self, service: Option<u32>) {
        if let Some(slot) = service
            .and_then(|id| self.slots.get_mut(id as usize))
            .and_then(Option::as_mut)
        {
            slot.built = None;
        }
    }
}

/// The Kubernetes route that owns a service no Service port serves: the first, in kind then
/// `namespace/name` order, of the routes whose Kong routes use it (directly or through a copy
/// with timeouts). Its tags go on the service, its plugins and its upstream.
fn route_owners(index: &ServiceIndex, kong: &[Option<KongSlot>], backends: &BackendCache) -> HashMap<String, RouteRef> {
    let mut owners: HashMap<String, RouteRef> = HashMap::new();
    for (name, &service) in &index.by_name {
        let base = backends.base_of(name);
        if !backends.route_owned(base) {
            continue;
        }
        let ids = index
            .slots
            .get(service as usize)
            .and_then(Option::as_ref)
            .map(|s| s.ids.as_slice())
            .unwrap_or_default();
        for &id in ids {
            let Some(route) = slot(kong, id).map(|s| &s.key.source().route) else {
                continue;
            };
            match owners.get_mut(base) {
                Some(owner) if route < owner => *owner = route.clone(),
                Some(_) => {}
                None => {
                    owners.insert(base.to_string(), route.clone());
                }
            }
        }
    }
    owners
}

fn owner_tags(owner: Option<&RouteRef>) -> Vec<String> {
    owner
        .map(|route| tags::of(&super::super::routes::tag_source(route)))
        .unwrap_or_default()
}

/// The config: services (assembled again only where something in them changed), their
/// upstreams, routes without a service, certificates.
pub fn config(
    index: &mut ServiceIndex,
    kong: &[Option<KongSlot>],
    priorities: &[u64],
    backends: &BackendCache,
    certificates: Vec<kong::Certificate>,
) -> kong::KongConfig {
    let entry = |id: &u32| -> Option<kong::RouteEntry> {
        let slot = slot(kong, *id)?;
        Some(kong::RouteEntry {
            priority: priorities.get(*id as usize).copied().unwrap_or(1),
            route: Arc::clone(&slot.route),
        })
    };
    let owners = route_owners(index, kong, backends);
    let mut services = Vec::with_capacity(index.by_name.len());
    let mut bases: Vec<&str> = Vec::with_capacity(index.by_name.len());
    for (name, &id) in &index.by_name {
        let Some(slot) = index.slots.get_mut(id as usize).and_then(Option::as_mut) else {
            continue;
        };
        let base = backends.base_of(name);
        // A service its set does not (or no longer) register: its routes are left out.
        let Some(made) = backends.made(base) else {
            continue;
        };
        let owner = owners.get(base);
        let reusable = slot
            .built
            .as_ref()
            .filter(|(_, built_made, built_owner)| *built_made == made && built_owner.as_ref() == owner);
        let service = match reusable {
            Some((service, _, _)) => service.clone(),
            None => {
                let Some(mut service) = backends.service(name, || owner_tags(owner)) else {
                    continue;
                };
                service.routes = slot.ids.iter().filter_map(entry).collect();
                let service = Arc::new(service);
                slot.built = Some((service.clone(), made, owner.cloned()));
                service
            }
        };
        services.push(service);
        bases.push(base);
    }
    // Already in order unless a timeout copy's base sorts after another set's service.
    if !bases.is_sorted() {
        bases.sort_unstable();
    }
    bases.dedup();
    let mut upstreams: Vec<Arc<kong::Upstream>> = bases
        .into_iter()
        .filter_map(|base| backends.upstream(base, || owner_tags(owners.get(base))))
        .collect();
    let serviceless: Vec<kong::RouteEntry> = index.serviceless.iter().filter_map(entry).collect();
    if services.is_empty() && serviceless.is_empty() && upstreams.is_empty() && certificates.is_empty() {
        upstreams.push(Arc::new(kong::Upstream {
            name: PLACEHOLDER_UPSTREAM.to_string(),
            algorithm: None,
            tags: vec!["kongress:placeholder".to_string()],
            targets: Vec::new(),
        }));
    }
    let mut config = kong::KongConfig::empty();
    config.services = services;
    config.routes = serviceless;
    config.upstreams = upstreams;
    config.certificates = certificates;
    config
}

/// The certificates of the last translation, with the Secrets they were made from.
pub struct CertificateMemo {
    asked: Vec<(ObjectKey, Option<Arc<Secret>>)>,
    pub certificates: Vec<kong::Certificate>,
}

impl CertificateMemo {
    pub fn new(input: &TranslateInput<'_>) -> Self {
        let recorder = RecordingSecrets {
            inner: input.secrets,
            asked: std::cell::RefCell::new(Vec::new()),
        };
        let recorded = TranslateInput {
            secrets: &recorder,
            ..*input
        };
        let certificates = certificates::translate(&recorded);
        Self {
            asked: recorder.asked.into_inner(),
            certificates,
        }
    }

    /// Whether every Secret read then reads the same now (Gateways, plan and grants are the
    /// caller's to compare).
    pub fn still_valid(&self, input: &TranslateInput<'_>) -> bool {
        self.asked
            .iter()
            .all(|(key, answer)| same_secret(input.secrets.secret(key).as_ref(), answer.as_ref()))
    }
}
