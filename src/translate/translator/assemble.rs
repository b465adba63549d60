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

/// The Kong routes of the answer by the service they belong to, each list sorted by route name.
#[derive(Default)]
pub struct ServiceIndex {
    by_service: BTreeMap<String, Vec<u32>>,
    serviceless: Vec<u32>,
}

fn slot(kong: &[Option<KongSlot>], id: u32) -> Option<&KongSlot> {
    kong.get(id as usize).and_then(Option::as_ref)
}

fn name_of(kong: &[Option<KongSlot>], id: u32) -> &str {
    slot(kong, id).map_or("", |s| s.route.name.as_str())
}

impl ServiceIndex {
    fn list(&mut self, service: Option<&str>) -> &mut Vec<u32> {
        match service {
            Some(name) => {
                if !self.by_service.contains_key(name) {
                    self.by_service.insert(name.to_string(), Vec::new());
                }
                self.by_service.get_mut(name).unwrap_or(&mut self.serviceless)
            }
            None => &mut self.serviceless,
        }
    }

    /// Adds Kong route `id` (its slot must be filled).
    pub fn insert(&mut self, id: u32, kong: &[Option<KongSlot>]) {
        let Some(new) = slot(kong, id) else {
            return;
        };
        let name = new.route.name.as_str();
        let list = self.list(new.service.as_deref());
        let at = list.partition_point(|&other| name_of(kong, other) < name);
        list.insert(at, id);
    }

    /// Removes Kong route `id` (while its slot is still filled).
    pub fn remove(&mut self, id: u32, kong: &[Option<KongSlot>]) {
        let Some(old) = slot(kong, id) else {
            return;
        };
        let name = old.route.name.as_str();
        let service = old.service.as_deref();
        let list = self.list(service);
        let from = list.partition_point(|&other| name_of(kong, other) < name);
        if let Some(offset) = list
            .get(from..)
            .and_then(|rest| rest.iter().position(|&other| other == id))
        {
            list.remove(from + offset);
        }
        if list.is_empty()
            && let Some(name) = service
        {
            self.by_service.remove(name);
        }
    }
}

/// The tags of the Kubernetes route that owns a service no Service port serves: the first,
/// in kind then `namespace/name` order, of the routes whose Kong routes use it (directly or
/// through a copy with timeouts).
fn route_owners<'a>(
    index: &'a ServiceIndex,
    kong: &'a [Option<KongSlot>],
    backends: &'a BackendCache,
) -> HashMap<&'a str, &'a RouteRef> {
    let mut owners: HashMap<&str, &RouteRef> = HashMap::new();
    for (name, ids) in &index.by_service {
        let base = backends.base_of(name);
        if !backends.route_owned(base) {
            continue;
        }
        for &id in ids {
            let Some(route) = slot(kong, id).map(|s| &s.key.source().route) else {
                continue;
            };
            let owner = owners.entry(base).or_insert(route);
            if route < *owner {
                *owner = route;
            }
        }
    }
    owners
}

fn owner_tags(owners: &HashMap<&str, &RouteRef>, base: &str) -> Vec<String> {
    owners
        .get(base)
        .map(|route| tags::of(&super::super::routes::tag_source(route)))
        .unwrap_or_default()
}

pub fn config(
    index: &ServiceIndex,
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
    let mut services = Vec::with_capacity(index.by_service.len());
    let mut bases: Vec<&str> = Vec::with_capacity(index.by_service.len());
    for (name, ids) in &index.by_service {
        let base = backends.base_of(name);
        let Some(mut service) = backends.service(name, || owner_tags(&owners, base)) else {
            continue;
        };
        service.routes = ids.iter().filter_map(entry).collect();
        services.push(service);
        bases.push(base);
    }
    bases.sort_unstable();
    bases.dedup();
    let mut upstreams: Vec<kong::Upstream> = bases
        .into_iter()
        .filter_map(|base| backends.upstream(base, || owner_tags(&owners, base)))
        .collect();
    let serviceless: Vec<kong::RouteEntry> = index.serviceless.iter().filter_map(entry).collect();
    if services.is_empty() && serviceless.is_empty() && upstreams.is_empty() && certificates.is_empty() {
        upstreams.push(kong::Upstream {
            name: PLACEHOLDER_UPSTREAM.to_string(),
            algorithm: None,
            tags: vec!["kongress:placeholder".to_string()],
            targets: Vec::new(),
        });
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
