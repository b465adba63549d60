//! The inputs of the last translation, to tell what changed in the next one.
//!
//! Only what translation reads counts as a change: a Gateway's spec (and the plan made from
//! it), a Service's spec, the addresses, ports and conditions of EndpointSlices, a
//! ReferenceGrant's spec, a Namespace's labels, a Secret's type and data. Status writes,
//! labels, annotations and `resourceVersion` bumps alone change nothing. Objects are
//! compared by address first: the caches hand over the same `Arc` for an object that did not
//! change, so a comparison of contents is the exception.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::api::{Gateway, ObjectKey, ReferenceGrant};
use crate::plan::{ClassPlan, SecretLookup};

/// The Gateways of a class sorted by `namespace/name` (a stable order for listener ids).
pub fn sorted_gateways(gateways: &[Arc<Gateway>]) -> Vec<Arc<Gateway>> {
    let mut sorted = gateways.to_vec();
    // Stable: of two Gateways with one name, the later in the input stays later.
    sorted.sort_by(|a, b| gateway_key(a).cmp(&gateway_key(b)));
    sorted
}

fn gateway_key(gateway: &Gateway) -> (Option<&str>, Option<&str>) {
    (gateway.metadata.namespace.as_deref(), gateway.metadata.name.as_deref())
}

fn same_gateway(a: &Arc<Gateway>, b: &Arc<Gateway>) -> bool {
    Arc::ptr_eq(a, b)
        || (a.metadata.namespace == b.metadata.namespace && a.metadata.name == b.metadata.name && a.spec == b.spec)
}

fn same_service(a: &Arc<Service>, b: &Arc<Service>) -> bool {
    Arc::ptr_eq(a, b) || a.spec == b.spec
}

fn same_slices(a: &[Arc<EndpointSlice>], b: &[Arc<EndpointSlice>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| {
            Arc::ptr_eq(a, b) || (a.address_type == b.address_type && a.ports == b.ports && a.endpoints == b.endpoints)
        })
}

/// Whether two grant lists allow the same references (in any order).
pub fn same_grants(a: &[Arc<ReferenceGrant>], b: &[Arc<ReferenceGrant>]) -> bool {
    if a.len() == b.len() && a.iter().zip(b).all(|(a, b)| Arc::ptr_eq(a, b)) {
        return true;
    }
    let sorted = |grants: &[Arc<ReferenceGrant>]| {
        let mut grants = grants.to_vec();
        grants
            .sort_by(|x, y| (&x.metadata.namespace, &x.metadata.name).cmp(&(&y.metadata.namespace, &y.metadata.name)));
        grants
    };
    let (a, b) = (sorted(a), sorted(b));
    a.len() == b.len()
        && a.iter().zip(&b).all(|(a, b)| {
            Arc::ptr_eq(a, b)
                || (a.metadata.namespace == b.metadata.namespace
                    && a.metadata.name == b.metadata.name
                    && a.spec == b.spec)
        })
}

/// What translation reads of a Secret.
pub fn same_secret(a: Option<&Arc<Secret>>, b: Option<&Arc<Secret>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            Arc::ptr_eq(a, b) || (a.type_ == b.type_ && a.data == b.data && a.string_data == b.string_data)
        }
        _ => false,
    }
}

/// Brings `seen` (sorted by key) up to date with `now`, returning the keys whose value
/// changed (added and removed ones included). `now` is walked once beside `seen`; while both
/// hold the same keys in the same places, each step compares one key and one value.
fn sync_map<V: Clone>(
    seen: &mut Vec<(ObjectKey, V)>,
    now: &BTreeMap<ObjectKey, V>,
    same: impl Fn(&V, &V) -> bool,
) -> Vec<ObjectKey> {
    let mut changed: Vec<ObjectKey> = Vec::new();
    let mut at = 0;
    for (key, value) in now {
        if let Some((old_key, old_value)) = seen.get(at)
            && old_key == key
        {
            if !same(old_value, value) {
                changed.push(key.clone());
            }
            at += 1;
            continue;
        }
        // Out of step: skip what was removed, then this key is new or changed.
        while let Some((old_key, _)) = seen.get(at)
            && old_key < key
        {
            changed.push(old_key.clone());
            at += 1;
        }
        match seen.get(at) {
            Some((old_key, old_value)) if old_key == key => {
                if !same(old_value, value) {
                    changed.push(key.clone());
                }
                at += 1;
            }
            _ => changed.push(key.clone()),
        }
    }
    changed.extend(seen.get(at..).unwrap_or_default().iter().map(|(k, _)| k.clone()));
    changed.sort();
    for key in &changed {
        let position = seen.binary_search_by(|(k, _)| k.cmp(key));
        match (position, now.get(key)) {
            (Ok(i), Some(value)) => {
                if let Some(entry) = seen.get_mut(i) {
                    entry.1 = value.clone();
                }
            }
            (Ok(i), None) => {
                seen.remove(i);
            }
            (Err(i), Some(value)) => seen.insert(i, (key.clone(), value.clone())),
            (Err(_), None) => {}
        }
    }
    changed
}

/// What changed since the last translation.
#[derive(Debug, Default)]
pub struct Changes {
    /// Gateways or the plan changed: every route attaches again.
    pub context: bool,
    /// Namespaces whose labels changed (routes in them attach again).
    pub namespaces: Vec<String>,
    /// Services whose spec or EndpointSlices changed.
    pub services: Vec<ObjectKey>,
    pub grants: bool,
}

/// The inputs of the last translation.
#[derive(Default)]
pub struct Seen {
    /// Sorted by `namespace/name`.
    gateways: Vec<Arc<Gateway>>,
    plan: ClassPlan,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Sorted by key, like the rest of the maps the translation reads.
    services: Vec<(ObjectKey, Arc<Service>)>,
    endpoint_slices: Vec<(ObjectKey, Vec<Arc<EndpointSlice>>)>,
    grants: Vec<Arc<ReferenceGrant>>,
    /// Nothing seen yet.
    empty: bool,
}

impl Seen {
    pub fn new() -> Self {
        Self {
            empty: true,
            ..Self::default()
        }
    }

    /// Records the inputs of this translation; `gateways` sorted by [`sorted_gateways`].
    pub fn update(&mut self, input: &super::TranslateInput<'_>, gateways: &[Arc<Gateway>]) -> Changes {
        let first = std::mem::take(&mut self.empty);
        let mut changes = Changes::default();
        let gateways_changed = self.gateways.len() != gateways.len()
            || self.gateways.iter().zip(gateways).any(|(a, b)| !same_gateway(a, b));
        if gateways_changed {
            self.gateways = gateways.to_vec();
        }
        let plan_changed = self.plan != *input.plan;
        if plan_changed {
            self.plan = input.plan.clone();
        }
        changes.context = first || gateways_changed || plan_changed;

        let mut namespaces = Vec::new();
        if self.namespaces != *input.namespaces {
            for (name, labels) in input.namespaces {
                if self.namespaces.get(name) != Some(labels) {
                    namespaces.push(name.clone());
                }
            }
            for name in self.namespaces.keys() {
                if !input.namespaces.contains_key(name) {
                    namespaces.push(name.clone());
                }
            }
            self.namespaces = input.namespaces.clone();
        }
        changes.namespaces = namespaces;

        let mut services = sync_map(&mut self.services, input.services, same_service);
        services.extend(sync_map(&mut self.endpoint_slices, input.endpoint_slices, |a, b| {
            same_slices(a, b)
        }));
        services.sort();
        services.dedup();
        changes.services = services;

        changes.grants = !same_grants(&self.grants, input.grants);
        if changes.grants {
            self.grants = input.grants.to_vec();
        }
        changes
    }
}

/// A [`SecretLookup`] that remembers what it was asked and answered, so a result computed
/// from Secrets can tell later whether they still say the same.
pub struct RecordingSecrets<'a> {
    pub inner: &'a dyn SecretLookup,
    pub asked: std::cell::RefCell<Vec<(ObjectKey, Option<Arc<Secret>>)>>,
}

impl SecretLookup for RecordingSecrets<'_> {
    fn secret(&self, key: &ObjectKey) -> Option<Arc<Secret>> {
        let answer = self.inner.secret(key);
        self.asked.borrow_mut().push((key.clone(), answer.clone()));
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new("ns", name)
    }

    #[test]
    fn a_map_sync_reports_added_removed_and_changed_keys_and_catches_up() {
        let mut seen: Vec<(ObjectKey, u32)> = Vec::new();
        let first = BTreeMap::from([(key("a"), 1), (key("b"), 2), (key("d"), 4)]);
        assert_eq!(
            sync_map(&mut seen, &first, |x, y| x == y),
            [key("a"), key("b"), key("d")]
        );
        assert!(sync_map(&mut seen, &first, |x, y| x == y).is_empty());
        let second = BTreeMap::from([(key("b"), 3), (key("c"), 3), (key("d"), 4), (key("e"), 5)]);
        assert_eq!(
            sync_map(&mut seen, &second, |x, y| x == y),
            [key("a"), key("b"), key("c"), key("e")]
        );
        let expected: Vec<(ObjectKey, u32)> = second.into_iter().collect();
        assert_eq!(seen, expected);
    }
}
