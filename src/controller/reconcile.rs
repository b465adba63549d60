//! The reconcile of one GatewayClass: gather a snapshot from the caches, decide, execute.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gateway_api::gatewayclasses::GatewayClass;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use tracing::instrument;

use super::Context;
use super::admin_tls::admin_secret_data;
use super::error::ReconcileError;
use super::execute;
use crate::api::labels::{GATEWAY_CLASS_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::api::{BUNDLE_VERSION_ANNOTATION, Gateway, ObjectKey};
use crate::decide::{AdminTls, ClassSnapshot, LiveDataPlane, ManagedKind, ManagedObject, owns, resolve_parameters};
use crate::render::data_plane_names;
use crate::status::InstalledCrd;
use crate::translate::RouteSet;

/// How often a converged class is looked at again even without a watch event, so a
/// certificate nearing expiry is renewed in time.
const RESYNC: Duration = Duration::from_secs(3600);

/// Every installed CRD with its Gateway API bundle-version annotation; the status rules
/// pick the Gateway API groups out.
fn installed_crds(ctx: &Context) -> Vec<InstalledCrd> {
    ctx.stores
        .crds
        .state()
        .iter()
        .map(|crd| InstalledCrd {
            name: crd.name_any(),
            bundle_version: crd.annotations().get(BUNDLE_VERSION_ANNOTATION).cloned(),
        })
        .collect()
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn cached<K>(store: &Store<K>, key: &ObjectKey) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store.get(&ObjectRef::new(&key.name).within(&key.namespace))
}

/// Every object labelled as managed by kongress, from the caches.
fn managed_objects(ctx: &Context) -> Vec<ManagedObject> {
    fn entry<K: Resource>(kind: ManagedKind, object: &K) -> Option<ManagedObject> {
        let labels = object.meta().labels.as_ref()?;
        if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY_VALUE) {
            return None;
        }
        Some(ManagedObject {
            kind,
            key: ObjectKey::of(object),
            class_label: labels.get(GATEWAY_CLASS_LABEL)?.clone(),
            deleting: object.meta().deletion_timestamp.is_some(),
        })
    }
    let stores = &ctx.stores;
    let deployments = stores.deployments.state();
    let deployments = deployments
        .iter()
        .filter_map(|d| entry(ManagedKind::Deployment, d.as_ref()));
    let services = stores.services.state();
    let services = services.iter().filter_map(|s| entry(ManagedKind::Service, s.as_ref()));
    let secrets = stores.secrets.state();
    let secrets = secrets.iter().filter_map(|s| entry(ManagedKind::Secret, s.as_ref()));
    deployments.chain(services).chain(secrets).collect()
}

/// Routes with a parentRef naming one of `gateways` (the class's), by kind.
fn class_routes(ctx: &Context, gateways: &[Arc<Gateway>]) -> RouteSet {
    let keys: std::collections::BTreeSet<ObjectKey> = gateways.iter().map(|g| ObjectKey::of(g.as_ref())).collect();
    let names_a_gateway = |namespace: &str, group: Option<&str>, kind: Option<&str>, ns: Option<&str>, name: &str| {
        group.unwrap_or(crate::api::GATEWAY_API_GROUP) == crate::api::GATEWAY_API_GROUP
            && kind.unwrap_or("Gateway") == "Gateway"
            && keys.contains(&ObjectKey::new(ns.unwrap_or(namespace), name))
    };
    macro_rules! select {
        ($store:expr) => {
            $store
                .as_ref()
                .map(|store| {
                    store
                        .state()
                        .into_iter()
                        .filter(|route| {
                            let namespace = route.metadata.namespace.as_deref().unwrap_or_default();
                            // A route whose status still has our entry for one of our Gateways
                            // (or a Gateway since deleted) is ours to clean up.
                            let stale_entry = route.status.iter().flat_map(|s| s.parents.iter()).any(|p| {
                                p.controller_name == crate::api::CONTROLLER_NAME && {
                                    let key = ObjectKey::new(
                                        p.parent_ref.namespace.as_deref().unwrap_or(namespace),
                                        &p.parent_ref.name,
                                    );
                                    keys.contains(&key)
                                        || ctx
                                            .stores
                                            .gateways
                                            .get(&ObjectRef::new(&key.name).within(&key.namespace))
                                            .is_none()
                                }
                            });
                            stale_entry
                                || route.spec.parent_refs.iter().flatten().any(|p| {
                                    names_a_gateway(
                                        namespace,
                                        p.group.as_deref(),
                                        p.kind.as_deref(),
                                        p.namespace.as_deref(),
                                        &p.name,
                                    )
                                })
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
    }
    let routes = &ctx.stores.routes;
    RouteSet {
        http: select!(routes.http),
        grpc: select!(routes.grpc),
        tls: select!(routes.tls),
        tcp: select!(routes.tcp),
        udp: select!(routes.udp),
    }
}

#[instrument(skip_all, fields(gateway_class = %class.name_any()))]
pub async fn reconcile(class: Arc<GatewayClass>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    if !owns(&class) {
        ctx.push.forget(&class.name_any());
        ctx.forget_translator(&class.name_any());
        return Ok(Action::await_change());
    }
    ctx.stores.wait_until_ready().await?;
    let class_name = class.name_any();
    let gateways: Vec<Arc<Gateway>> = ctx
        .stores
        .gateways
        .state()
        .into_iter()
        .filter(|g| g.spec.gateway_class_name == class_name)
        .collect();
    let proxies = |key: &ObjectKey| cached(&ctx.stores.proxies, key);
    let parameters = resolve_parameters(&class, &ctx.settings.namespace, &proxies);
    let names = data_plane_names(&class_name, &parameters.namespace);
    let ns = ObjectKey::new(&names.namespace, "");
    let at = |name: &str| ObjectKey::new(&ns.namespace, name);

    let live_admin_secret: Option<Arc<Secret>> = cached(&ctx.stores.secrets, &at(&names.admin_tls_secret));
    let admin_tls = match admin_secret_data(&ctx.ca, &names, live_admin_secret.as_deref())? {
        Some(data) => AdminTls { data, issued: true },
        None => AdminTls {
            data: live_admin_secret.and_then(|s| s.data.clone()).unwrap_or_default(),
            issued: false,
        },
    };
    let routes = class_routes(&ctx, &gateways);
    let mut services = BTreeMap::new();
    let mut endpoint_slices: BTreeMap<ObjectKey, Vec<_>> = BTreeMap::new();
    for view in routes.views() {
        for key in view.backend_services() {
            if let Some(service) = cached::<Service>(&ctx.stores.services, &key) {
                services.insert(key.clone(), service);
            }
        }
    }
    for slice in ctx.stores.endpoint_slices.state() {
        let Some(service) = slice.labels().get(crate::objects::SERVICE_NAME_LABEL) else {
            continue;
        };
        let key = ObjectKey::new(slice.namespace().unwrap_or_default(), service);
        if services.contains_key(&key) {
            endpoint_slices.entry(key).or_default().push(slice);
        }
    }
    let grants = ctx.stores.grants.state();
    let namespaces: BTreeMap<String, BTreeMap<String, String>> = ctx
        .stores
        .namespaces
        .state()
        .iter()
        .map(|n| (n.name_any(), n.labels().clone()))
        .collect();

    let gateway_class_of =
        |key: &ObjectKey| cached(&ctx.stores.gateways, key).map(|g| g.spec.gateway_class_name.clone());
    let mut snapshot = ClassSnapshot {
        class: &class,
        operator_namespace: &ctx.settings.namespace,
        proxies: &proxies,
        crds: installed_crds(&ctx),
        gateways,
        routes: &routes,
        services: &services,
        endpoint_slices: &endpoint_slices,
        secrets: &ctx.stores.secrets,
        grants: &grants,
        namespaces: &namespaces,
        live: LiveDataPlane {
            deployment: cached::<Deployment>(&ctx.stores.deployments, &at(&names.deployment)),
            proxy_service: cached::<Service>(&ctx.stores.services, &at(&names.proxy_service)),
        },
        managed: managed_objects(&ctx),
        admin_tls,
        refused: None,
        push: ctx.push_state_of(&class_name),
        gateway_class_of: &gateway_class_of,
        now: now(),
    };
    let outcome = ctx.decide(&class_name, &snapshot);
    match execute::execute(&ctx, &class, &outcome).await {
        Ok(execute::Executed::Done) => Ok(Action::requeue(RESYNC)),
        Ok(execute::Executed::AwaitChange) => Ok(Action::await_change()),
        // The API server refused what the user's input produced (an admission policy, an
        // invalid resource request): decide again knowing that, so the Gateways say so.
        Err(error) if error.is_refusal() => {
            snapshot.refused = Some(error.to_string());
            let outcome = ctx.decide(&class_name, &snapshot);
            execute::write_statuses(&ctx, &class, &outcome).await?;
            Err(error)
        }
        Err(error) => Err(error),
    }
}
