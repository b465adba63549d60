//! Which GatewayClasses to reconcile when a watched object changes.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use gateway_api::gatewayclasses::GatewayClass;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::labels::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::api::{CONTROLLER_NAME, Gateway, KongProxy, ObjectKey, ReferenceGrant};
use crate::objects::SERVICE_NAME_LABEL;
use crate::translate::{RouteRef, RouteView};

fn class_ref(name: &str) -> ObjectRef<GatewayClass> {
    ObjectRef::new(name)
}

/// What the Gateway trigger remembers between events.
#[derive(Default)]
struct GatewayIndex {
    /// Each Gateway's last class.
    class_of: HashMap<ObjectKey, String>,
    /// Each Gateway's certificate Secrets, and the reverse.
    secrets_of: HashMap<ObjectKey, BTreeSet<ObjectKey>>,
    gateways_of_secret: HashMap<ObjectKey, BTreeSet<ObjectKey>>,
}

/// Maps Gateways to their class, kept up to date by Gateway watch events. It remembers each
/// Gateway's last class, so a Gateway that moves to another class (or is deleted) also
/// wakes the class it left, and which Gateways use which certificate Secret, so a Secret
/// event wakes only the classes of the Gateways that use it, without a scan.
#[derive(Clone)]
pub struct GatewayTrigger {
    index: Arc<Mutex<GatewayIndex>>,
    gateways: Store<Gateway>,
}

/// The certificate Secrets a Gateway's listeners name.
fn certificate_secrets(gateway: &Gateway) -> BTreeSet<ObjectKey> {
    let namespace = gateway.namespace().unwrap_or_default();
    gateway
        .spec
        .listeners
        .iter()
        .filter_map(|l| l.tls.as_ref()?.certificate_refs.as_ref())
        .flatten()
        .filter(|r| r.group.as_deref().unwrap_or("").is_empty() && r.kind.as_deref().unwrap_or("Secret") == "Secret")
        .map(|r| ObjectKey::new(r.namespace.as_deref().unwrap_or(&namespace), &r.name))
        .collect()
}

impl GatewayTrigger {
    pub fn new(gateways: Store<Gateway>) -> Self {
        Self {
            index: Arc::default(),
            gateways,
        }
    }

    pub fn classes_for(&self, gateway: &Gateway) -> Vec<ObjectRef<GatewayClass>> {
        let key = ObjectKey::of(gateway);
        let class = gateway.spec.gateway_class_name.clone();
        // The reflector updates the cache before the event reaches us, so a Gateway that
        // is no longer cached was deleted: forget it, or the index would grow forever.
        let cached = self
            .gateways
            .get(&ObjectRef::new(&key.name).within(&key.namespace))
            .is_some();
        let deleted = gateway.metadata.deletion_timestamp.is_some() || !cached;
        let secrets = if deleted {
            BTreeSet::new()
        } else {
            certificate_secrets(gateway)
        };
        let previous = match self.index.lock() {
            Ok(mut index) => {
                let old_secrets = index.secrets_of.remove(&key).unwrap_or_default();
                for secret in old_secrets.difference(&secrets) {
                    if let Some(gateways) = index.gateways_of_secret.get_mut(secret) {
                        gateways.remove(&key);
                        if gateways.is_empty() {
                            index.gateways_of_secret.remove(secret);
                        }
                    }
                }
                for secret in &secrets {
                    index
                        .gateways_of_secret
                        .entry(secret.clone())
                        .or_default()
                        .insert(key.clone());
                }
                if deleted {
                    index.class_of.remove(&key)
                } else {
                    index.secrets_of.insert(key.clone(), secrets);
                    index.class_of.insert(key, class.clone())
                }
            }
            // A poisoned index only loses hints; the current class still wakes.
            Err(_) => None,
        };
        let mut classes = vec![class_ref(&class)];
        if let Some(previous) = previous.filter(|p| p != &class) {
            classes.push(class_ref(&previous));
        }
        classes
    }

    /// Classes whose Gateways use the Secret as a listener certificate, plus the class
    /// whose admin TLS Secret it is.
    pub fn classes_for_secret(&self, secret: &Secret) -> Vec<ObjectRef<GatewayClass>> {
        let mut classes = BTreeSet::new();
        if let Some(class) = owning_class(secret) {
            classes.insert(class);
        }
        if let Ok(index) = self.index.lock() {
            let gateways = index.gateways_of_secret.get(&ObjectKey::of(secret));
            classes.extend(
                gateways
                    .into_iter()
                    .flatten()
                    .filter_map(|g| index.class_of.get(g).cloned()),
            );
        }
        classes.iter().map(|c| class_ref(c)).collect()
    }
}

/// Classes with Gateways in a namespace the grant opens its namespace to.
pub fn classes_for_grant(grant: &ReferenceGrant, gateways: &Store<Gateway>) -> Vec<ObjectRef<GatewayClass>> {
    let namespaces: BTreeSet<&str> = grant.spec.from.iter().map(|f| f.namespace.as_str()).collect();
    let classes: BTreeSet<String> = gateways
        .state()
        .iter()
        .filter(|g| {
            g.metadata
                .namespace
                .as_deref()
                .is_some_and(|ns| namespaces.contains(ns))
        })
        .map(|g| g.spec.gateway_class_name.clone())
        .collect();
    classes.iter().map(|c| class_ref(c)).collect()
}

/// Classes whose `parametersRef` names this KongProxy.
pub fn classes_for_proxy(proxy: &KongProxy, classes: &Store<GatewayClass>) -> Vec<ObjectRef<GatewayClass>> {
    let namespace = proxy.namespace();
    let name = proxy.name_any();
    classes
        .state()
        .iter()
        .filter(|c| c.spec.controller_name == CONTROLLER_NAME)
        .filter(|c| {
            c.spec.parameters_ref.as_ref().is_some_and(|p| {
                p.kind == "KongProxy" && p.name == name && p.namespace.as_deref() == namespace.as_deref()
            })
        })
        .map(|c| class_ref(&c.name_any()))
        .collect()
}

/// The GatewayClass that controls a data plane object, from its ownerReference (the
/// class label may hold a shortened name).
fn owning_class<K: ResourceExt>(object: &K) -> Option<String> {
    if object.labels().get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY_VALUE) {
        return None;
    }
    object
        .owner_references()
        .iter()
        .find(|owner| owner.controller == Some(true) && owner.kind == "GatewayClass")
        .map(|owner| owner.name.clone())
}

/// The class a data plane object belongs to.
pub fn class_of_managed<K: ResourceExt>(object: &K) -> Option<ObjectRef<GatewayClass>> {
    owning_class(object).map(|class| class_ref(&class))
}

/// Every class kongress owns (used when the installed Gateway API version changes).
pub fn all_owned_classes(classes: &Store<GatewayClass>) -> Vec<ObjectRef<GatewayClass>> {
    classes
        .state()
        .iter()
        .filter(|c| c.spec.controller_name == CONTROLLER_NAME)
        .map(|c| class_ref(&c.name_any()))
        .collect()
}

/// What the index remembers of one route.
#[derive(Default)]
struct IndexedRoute {
    classes: BTreeSet<String>,
    services: BTreeSet<ObjectKey>,
    generation: i64,
}

#[derive(Default)]
struct RouteIndexState {
    routes: HashMap<RouteRef, IndexedRoute>,
    routes_by_service: HashMap<ObjectKey, BTreeSet<RouteRef>>,
}

/// Reverse index kept up to date by route watch events: route → classes of its parent
/// Gateways and the Services it sends to; Service → routes. A Service or EndpointSlice
/// event wakes only the classes whose routes use it, and a route that leaves a class (or
/// is deleted) still wakes the class it left.
#[derive(Clone)]
pub struct RouteIndex {
    state: Arc<Mutex<RouteIndexState>>,
    gateways: Store<Gateway>,
}

impl RouteIndex {
    pub fn new(gateways: Store<Gateway>) -> Self {
        Self {
            state: Arc::default(),
            gateways,
        }
    }

    /// Records a route event; returns the classes to reconcile (now and before).
    pub fn classes_for_route(&self, view: &RouteView, still_cached: bool) -> Vec<ObjectRef<GatewayClass>> {
        let deleted = !still_cached;
        let classes: BTreeSet<String> = if deleted {
            BTreeSet::new()
        } else {
            view.parent_refs
                .iter()
                .filter(|p| p.is_gateway())
                .filter_map(|p| {
                    let key = p.gateway_key(view.namespace());
                    self.gateways.get(&ObjectRef::new(&key.name).within(&key.namespace))
                })
                .map(|g| g.spec.gateway_class_name.clone())
                .collect()
        };
        let services: BTreeSet<ObjectKey> = if deleted {
            BTreeSet::new()
        } else {
            view.backend_services().into_iter().collect()
        };
        let Ok(mut state) = self.state.lock() else {
            // A poisoned index only loses hints; the route's current classes still wake.
            return classes.iter().map(|c| class_ref(c)).collect();
        };
        let previous = state.routes.remove(&view.route).unwrap_or_default();
        // Same spec (generation), same parents' classes: a status or metadata change, which
        // translates to nothing new. Kongress's own route status writes land here, and must
        // not cost every class another reconcile.
        let unchanged = !deleted && previous.generation == view.generation && previous.classes == classes;
        for service in previous.services.difference(&services) {
            if let Some(routes) = state.routes_by_service.get_mut(service) {
                routes.remove(&view.route);
                if routes.is_empty() {
                    state.routes_by_service.remove(service);
                }
            }
        }
        for service in &services {
            state
                .routes_by_service
                .entry(service.clone())
                .or_default()
                .insert(view.route.clone());
        }
        let wake: BTreeSet<String> = if unchanged {
            BTreeSet::new()
        } else {
            classes.union(&previous.classes).cloned().collect()
        };
        if !deleted {
            state.routes.insert(
                view.route.clone(),
                IndexedRoute {
                    classes,
                    services,
                    generation: view.generation,
                },
            );
        }
        wake.iter().map(|c| class_ref(c)).collect()
    }

    /// Classes whose routes send to this Service.
    pub fn classes_for_service(&self, service: &ObjectKey) -> Vec<ObjectRef<GatewayClass>> {
        let Ok(state) = self.state.lock() else {
            return Vec::new();
        };
        let classes: BTreeSet<&String> = state
            .routes_by_service
            .get(service)
            .into_iter()
            .flatten()
            .filter_map(|route| state.routes.get(route))
            .flat_map(|indexed| indexed.classes.iter())
            .collect();
        classes.into_iter().map(|c| class_ref(c)).collect()
    }
}

/// Classes to wake for a Service event: those whose routes use it, and the class whose data
/// plane Service it is.
pub fn classes_for_service(service: &Service, index: &RouteIndex) -> Vec<ObjectRef<GatewayClass>> {
    let mut classes = index.classes_for_service(&ObjectKey::of(service));
    classes.extend(class_of_managed(service));
    classes
}

/// Classes to wake for an EndpointSlice event: those whose routes use its Service.
pub fn classes_for_endpoint_slice(slice: &EndpointSlice, index: &RouteIndex) -> Vec<ObjectRef<GatewayClass>> {
    match slice.labels().get(SERVICE_NAME_LABEL) {
        Some(service) => index.classes_for_service(&ObjectKey::new(slice.namespace().unwrap_or_default(), service)),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use kube::runtime::watcher;

    use super::*;

    fn gateway(name: &str, class: &str, secrets: &[&str]) -> Gateway {
        let refs: Vec<String> = secrets.iter().map(|s| format!("{{name: {s}}}")).collect();
        serde_yaml_ng::from_str(&format!(
            "metadata: {{name: {name}, namespace: default}}\nspec:\n  gatewayClassName: {class}\n  listeners:\n  - {{name: https, port: 443, protocol: HTTPS, tls: {{certificateRefs: [{}]}}}}\n",
            refs.join(", ")
        ))
        .expect("gateway yaml")
    }

    fn secret(name: &str) -> Secret {
        serde_yaml_ng::from_str(&format!("metadata: {{name: {name}, namespace: default}}")).expect("secret yaml")
    }

    fn names(classes: Vec<ObjectRef<GatewayClass>>) -> Vec<String> {
        classes.into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn a_secret_wakes_the_classes_of_the_gateways_that_use_it_until_they_stop() {
        let (store, mut writer) = kube::runtime::reflector::store();
        let trigger = GatewayTrigger::new(store);
        let uses = gateway("web", "blue", &["tls"]);
        writer.apply_watcher_event(&watcher::Event::Apply(uses.clone()));
        assert_eq!(names(trigger.classes_for(&uses)), ["blue"]);
        assert_eq!(names(trigger.classes_for_secret(&secret("tls"))), ["blue"]);
        assert!(trigger.classes_for_secret(&secret("other")).is_empty());

        // The Gateway moves to another class and another Secret: both classes wake, and the
        // old Secret no longer wakes anyone.
        let moved = gateway("web", "green", &["other"]);
        writer.apply_watcher_event(&watcher::Event::Apply(moved.clone()));
        assert_eq!(names(trigger.classes_for(&moved)), ["green", "blue"]);
        assert!(trigger.classes_for_secret(&secret("tls")).is_empty());
        assert_eq!(names(trigger.classes_for_secret(&secret("other"))), ["green"]);

        // Deleted: it wakes its class once more, then is forgotten.
        writer.apply_watcher_event(&watcher::Event::Delete(moved.clone()));
        assert_eq!(names(trigger.classes_for(&moved)), ["green"]);
        assert!(trigger.classes_for_secret(&secret("other")).is_empty());
    }

    fn route(generation: i64, backend: &str) -> RouteView {
        let route: crate::translate::routes::HttpRoute = serde_yaml_ng::from_str(&format!(
            "metadata: {{name: r, namespace: default, generation: {generation}}}\nspec:\n  parentRefs: [{{name: web}}]\n  rules: [{{backendRefs: [{{name: {backend}, port: 80}}]}}]\n"
        ))
        .expect("route yaml");
        RouteView::http(&Arc::new(route))
    }

    #[test]
    fn a_route_wakes_its_class_on_spec_changes_and_deletion_but_not_on_status_writes() {
        let (store, mut writer) = kube::runtime::reflector::store();
        writer.apply_watcher_event(&watcher::Event::Apply(gateway("web", "blue", &[])));
        let index = RouteIndex::new(store);
        assert_eq!(names(index.classes_for_route(&route(1, "api"), true)), ["blue"]);
        assert_eq!(
            names(index.classes_for_service(&ObjectKey::new("default", "api"))),
            ["blue"]
        );
        // Same generation: kongress's own status write coming back.
        assert!(index.classes_for_route(&route(1, "api"), true).is_empty());
        // A new spec moves the route to another backend.
        assert_eq!(names(index.classes_for_route(&route(2, "web"), true)), ["blue"]);
        assert!(index.classes_for_service(&ObjectKey::new("default", "api")).is_empty());
        assert_eq!(
            names(index.classes_for_route(&route(2, "web"), false)),
            ["blue"],
            "deleted"
        );
        assert!(index.classes_for_service(&ObjectKey::new("default", "web")).is_empty());
    }
}
