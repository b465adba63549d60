//! The decide step: one GatewayClass's snapshot in, every effect as data out.
//!
//! A reconcile gathers a [`ClassSnapshot`] from the caches, [`decide`] turns it into an
//! [`Outcome`] (plan → translate → render → status), and the controller's executor is the
//! only code that writes. `kongress translate` runs the same function on objects read
//! from files. Pure: no API calls, no clocks (the snapshot carries `now`), no randomness.

mod offline;
mod parameters;
mod routes;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gateway_api::gateways::GatewayStatus;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, OwnerReference, Time};
use kube::ResourceExt;
use tracing::field;

use crate::api::conditions::types;
use crate::api::labels::{GATEWAY_CLASS_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::api::{
    CONTROLLER_NAME, GATEWAY_API_GROUP, GATEWAY_CLASS_FINALIZER, Gateway, GatewayClass, KongProxy, ObjectKey,
    ReferenceGrant,
};
use crate::kong::PushState;
use crate::plan::{ClassPlan, ListenerKey, PlanInput, PlanSettings, SecretLookup, plan_class};
use crate::render::{DataPlaneNames, RenderInput, data_plane_names, render};
use crate::status::{
    ClassVerdict, DataPlaneState, InstalledCrd, SUPPORTED_FEATURES, StatusEvent, crd_versions,
    gateway_class_conditions, gateway_status, gateway_status_events,
};
use crate::translate::{RouteSet, RouteView, TranslateInput, Translation, Translator};
pub use offline::{ASSUMED_BUNDLE_VERSION, choose_class, decide_offline, status_documents};
pub use parameters::{ClassParameters, parameters_target, resolve_parameters};
use routes::{config_state, report_rejections, route_statuses};

/// The admin API server certificate of a data plane, prepared before deciding (issuing
/// one needs randomness and the operator CA, which the pure core does not hold).
#[derive(Clone, Debug, Default)]
pub struct AdminTls {
    /// `tls.crt`, `tls.key`, `ca.crt` of the Secret as it should be.
    pub data: BTreeMap<String, ByteString>,
    /// True when `data` was freshly issued and the Secret must be written.
    pub issued: bool,
}

/// The data plane objects of a class as the caches hold them.
#[derive(Clone, Debug, Default)]
pub struct LiveDataPlane {
    pub deployment: Option<Arc<Deployment>>,
    pub proxy_service: Option<Arc<Service>>,
}

/// A kind of object kongress creates for a data plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ManagedKind {
    Deployment,
    Service,
    Secret,
}

/// An object labelled as managed by kongress for some class.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManagedObject {
    pub kind: ManagedKind,
    pub key: ObjectKey,
    /// Value of its GatewayClass label.
    pub class_label: String,
    /// Already being deleted: no need to delete it again.
    pub deleting: bool,
}

/// Everything one decision reads: a plain snapshot of one class.
pub struct ClassSnapshot<'a> {
    pub class: &'a GatewayClass,
    /// Namespace of the operator: home of data planes whose class names no KongProxy.
    pub operator_namespace: &'a str,
    /// KongProxies by `namespace/name` (only the one the class names is read).
    pub proxies: &'a (dyn Fn(&ObjectKey) -> Option<Arc<KongProxy>> + Sync),
    /// Installed CRDs with their `gateway.networking.k8s.io/bundle-version` annotation
    /// (only Gateway API groups are considered).
    pub crds: Vec<InstalledCrd>,
    /// Gateways whose `gatewayClassName` is this class.
    pub gateways: Vec<Arc<Gateway>>,
    /// Routes that may name those Gateways.
    pub routes: &'a RouteSet,
    pub services: &'a BTreeMap<ObjectKey, Arc<Service>>,
    pub endpoint_slices: &'a BTreeMap<ObjectKey, Vec<Arc<EndpointSlice>>>,
    pub secrets: &'a (dyn SecretLookup + Sync),
    pub grants: &'a [Arc<ReferenceGrant>],
    pub namespaces: &'a BTreeMap<String, BTreeMap<String, String>>,
    pub live: LiveDataPlane,
    /// Every object labelled as managed by kongress (any class); the class's own are pruned
    /// when no longer wanted.
    pub managed: Vec<ManagedObject>,
    pub admin_tls: AdminTls,
    /// The API server's refusal of the last attempt to write this data plane, if any.
    pub refused: Option<String>,
    /// What the push made of the class's config so far (`None` before the first push).
    pub push: Option<PushState>,
    /// The class of any Gateway by `namespace/name` (`None`: no such Gateway), so route
    /// status entries for other classes' Gateways are left to those classes.
    pub gateway_class_of: &'a (dyn Fn(&ObjectKey) -> Option<String> + Sync),
    pub now: Time,
}

/// What to do with the class's finalizer; when it changes, nothing else is done this round
/// (the write changes the class, whose watch event brings the next reconcile).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinalizerChange {
    Add(Vec<String>),
    Remove(Vec<String>),
}

/// The data plane objects to apply (each is skipped by the executor when unchanged).
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredDataPlane {
    /// The admin TLS Secret when a certificate was issued.
    pub admin_secret: Option<Secret>,
    pub admin_service: Service,
    pub proxy_service: Option<Service>,
    pub deployment: Deployment,
    /// Listen configuration, for the log line of a write.
    pub proxy_listen: String,
    pub stream_listen: String,
}

/// A Gateway's desired status, with the Events its condition changes deserve.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayStatusWrite {
    pub gateway: Arc<Gateway>,
    pub status: GatewayStatus,
    /// False when the Gateway already carries exactly this status (nothing to write).
    pub changed: bool,
    pub events: Vec<StatusEvent>,
}

/// The GatewayClass's desired status: its conditions and the features kongress supports.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassStatusWrite {
    pub conditions: Vec<Condition>,
    pub supported_features: Vec<String>,
    /// False when the class already carries exactly these.
    pub changed: bool,
}

/// A route's desired status, as the JSON of its kind's `status`.
#[derive(Clone, Debug)]
pub struct RouteStatusWrite {
    pub route: RouteView,
    pub status: serde_json::Value,
    /// False when the route already carries exactly this status.
    pub changed: bool,
    pub events: Vec<StatusEvent>,
}

/// Every effect of one reconcile of one class.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub finalizer: Option<FinalizerChange>,
    /// `None` when the class has no Gateway or is not accepted (its data plane is left as is).
    pub data_plane: Option<DesiredDataPlane>,
    /// Managed objects of this class that are no longer wanted.
    pub prune: Vec<ManagedObject>,
    /// Every Gateway's status, in precedence order.
    pub gateway_statuses: Vec<GatewayStatusWrite>,
    /// The status of every route of the class (and of routes it must clean up), by route.
    pub route_statuses: Vec<RouteStatusWrite>,
    pub class_status: ClassStatusWrite,
    pub plan: ClassPlan,
    /// The Kong config for the class's data plane, and every route's verdict.
    pub translation: Translation,
    pub names: DataPlaneNames,
}

/// Decides everything about one class, translating from scratch.
pub fn decide(snapshot: &ClassSnapshot<'_>) -> Outcome {
    decide_with(snapshot, &mut Translator::new())
}

/// Decides everything about one class with the class's long-lived [`Translator`], which
/// redoes only the routes a change can affect (its answer equals a fresh translation).
pub fn decide_with(snapshot: &ClassSnapshot<'_>, translator: &mut Translator) -> Outcome {
    let class = snapshot.class;
    let class_name = class.name_any();
    let parameters = resolve_parameters(class, snapshot.operator_namespace, snapshot.proxies);
    let names = data_plane_names(&class_name, &parameters.namespace);

    // Spans are instrumentation only: disabled (and skipped) unless traces are exported or
    // the log filter asks for them.
    let plan = {
        let span = tracing::debug_span!("plan", gateways = snapshot.gateways.len(), listeners = field::Empty);
        let _entered = span.enter();
        let plan = plan_class(&PlanInput {
            gateways: &snapshot.gateways,
            secrets: snapshot.secrets,
            grants: snapshot.grants,
            settings: PlanSettings {
                status_port: parameters.proxy.status_port(),
                admin_port: parameters.proxy.admin_port(),
                port_mode: parameters.proxy.port_mode(),
            },
        });
        if !span.is_disabled() {
            span.record(
                "listeners",
                plan.gateways.iter().map(|g| g.listeners.len()).sum::<usize>(),
            );
        }
        plan
    };
    let translation = {
        let span = tracing::debug_span!(
            "translate",
            routes = field::Empty,
            kong_services = field::Empty,
            kong_routes = field::Empty
        );
        let _entered = span.enter();
        let mut translation = translator.translate(&TranslateInput {
            gateways: &snapshot.gateways,
            plan: &plan,
            routes: snapshot.routes,
            services: snapshot.services,
            endpoint_slices: snapshot.endpoint_slices,
            secrets: snapshot.secrets,
            grants: snapshot.grants,
            namespaces: snapshot.namespaces,
        });
        if let Some(push) = &snapshot.push {
            report_rejections(&mut translation, push);
        }
        if !span.is_disabled() {
            let config = &translation.config;
            span.record("routes", translation.routes.len());
            span.record("kong_services", config.services.len());
            span.record(
                "kong_routes",
                config.routes.len() + config.services.iter().map(|s| s.routes.len()).sum::<usize>(),
            );
        }
        translation
    };

    let verdict = ClassVerdict {
        invalid_parameters: parameters.problem.clone(),
        versions: crd_versions(&snapshot.crds),
    };
    let class_problem = (!verdict.accepted()).then(|| {
        let why = verdict
            .invalid_parameters
            .clone()
            .unwrap_or_else(|| "the installed Gateway API version is not supported".into());
        format!("GatewayClass {class_name} is not accepted ({why}); its data plane is left as it was")
    });

    let finalizer = finalizer_change(class, !snapshot.gateways.is_empty());
    let serve = class_problem.is_none() && !snapshot.gateways.is_empty();
    let rendered = serve.then(|| {
        let _span =
            tracing::debug_span!("render", deployment = %names.deployment, namespace = %names.namespace).entered();
        desired_data_plane(snapshot, &parameters, &names, &plan)
    });
    let prune = prune_list(snapshot, &names, rendered.as_ref().map(|(d, _)| d), serve);
    let env_clashes = rendered
        .as_ref()
        .map(|(_, clashes)| clashes.clone())
        .unwrap_or_default();

    let (load_balancer, external_ips, cluster_ips) =
        crate::status::service_addresses(snapshot.live.proxy_service.as_deref());
    let data_plane = DataPlaneState {
        class_problem,
        refused: snapshot
            .refused
            .as_ref()
            .map(|error| format!("The API server refused the data plane: {error}")),
        deployment: crate::status::deployment_state(snapshot.live.deployment.as_deref()),
        load_balancer,
        external_ips,
        cluster_ips,
        config: config_state(snapshot.push.as_ref(), &translation),
    };
    let (gateway_statuses, class_status, route_statuses) = {
        let span = tracing::debug_span!("status", gateway_writes = field::Empty, route_writes = field::Empty);
        let _entered = span.enter();
        let gateway_statuses = gateway_statuses(snapshot, &plan, &translation, &data_plane);
        let class_status = class_status(class, &verdict, &env_clashes, &snapshot.now);
        let route_statuses = route_statuses(snapshot, &translation);
        if !span.is_disabled() {
            span.record("gateway_writes", gateway_statuses.iter().filter(|w| w.changed).count());
            span.record("route_writes", route_statuses.iter().filter(|w| w.changed).count());
        }
        (gateway_statuses, class_status, route_statuses)
    };

    Outcome {
        finalizer,
        data_plane: rendered.map(|(desired, _)| desired),
        prune,
        gateway_statuses,
        route_statuses,
        class_status,
        plan,
        translation,
        names,
    }
}

fn finalizer_change(class: &GatewayClass, has_gateways: bool) -> Option<FinalizerChange> {
    let holds = class.finalizers().iter().any(|f| f == GATEWAY_CLASS_FINALIZER);
    if has_gateways && !holds && class.metadata.deletion_timestamp.is_none() {
        let mut finalizers = class.finalizers().to_vec();
        finalizers.push(GATEWAY_CLASS_FINALIZER.into());
        return Some(FinalizerChange::Add(finalizers));
    }
    if !has_gateways && holds {
        let finalizers = class
            .finalizers()
            .iter()
            .filter(|f| *f != GATEWAY_CLASS_FINALIZER)
            .cloned()
            .collect();
        return Some(FinalizerChange::Remove(finalizers));
    }
    None
}

fn class_owner(class: &GatewayClass) -> OwnerReference {
    OwnerReference {
        api_version: format!("{GATEWAY_API_GROUP}/v1"),
        kind: "GatewayClass".into(),
        name: class.name_any(),
        uid: class.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The class's data plane objects, and the KongProxy env names that were ignored.
fn desired_data_plane(
    snapshot: &ClassSnapshot<'_>,
    parameters: &ClassParameters,
    names: &DataPlaneNames,
    plan: &ClassPlan,
) -> (DesiredDataPlane, Vec<String>) {
    let owner = class_owner(snapshot.class);
    let class_name = snapshot.class.name_any();
    let admin_secret = snapshot.admin_tls.issued.then(|| Secret {
        metadata: ObjectMeta {
            name: Some(names.admin_tls_secret.clone()),
            namespace: Some(names.namespace.clone()),
            labels: Some(BTreeMap::from([
                (GATEWAY_CLASS_LABEL.to_string(), names.class_label.clone()),
                (MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string()),
            ])),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(snapshot.admin_tls.data.clone()),
        ..Default::default()
    });
    let rendered = render(&RenderInput {
        class_name: &class_name,
        class_uid: &owner.uid,
        names,
        proxy: &parameters.proxy,
        listen: &plan.listen,
        requested_addresses: &plan.requested_addresses,
        admin_cert_fingerprint: &crate::pki::certificate_fingerprint(&snapshot.admin_tls.data),
    });
    (
        DesiredDataPlane {
            admin_secret,
            admin_service: rendered.admin_service,
            proxy_service: rendered.proxy_service,
            deployment: rendered.deployment,
            proxy_listen: plan.listen.proxy_listen(),
            stream_listen: plan.listen.stream_listen(),
        },
        rendered.env_clashes,
    )
}

/// Managed objects of this class that the desired data plane does not contain: all of
/// them once no Gateway is left, a proxy Service without ports, what an earlier KongProxy
/// namespace left behind. A class that is not accepted keeps everything.
fn prune_list(
    snapshot: &ClassSnapshot<'_>,
    names: &DataPlaneNames,
    desired: Option<&DesiredDataPlane>,
    serve: bool,
) -> Vec<ManagedObject> {
    if !serve && !snapshot.gateways.is_empty() {
        return Vec::new();
    }
    let mut keep = BTreeSet::new();
    if let Some(desired) = desired {
        let ns = &names.namespace;
        keep.insert((ManagedKind::Deployment, ObjectKey::new(ns, &names.deployment)));
        keep.insert((ManagedKind::Service, ObjectKey::new(ns, &names.admin_service)));
        keep.insert((ManagedKind::Secret, ObjectKey::new(ns, &names.admin_tls_secret)));
        if desired.proxy_service.is_some() {
            keep.insert((ManagedKind::Service, ObjectKey::new(ns, &names.proxy_service)));
        }
    }
    let mut prune: Vec<ManagedObject> = snapshot
        .managed
        .iter()
        .filter(|m| m.class_label == names.class_label && !m.deleting)
        .filter(|m| !keep.contains(&(m.kind, m.key.clone())))
        .cloned()
        .collect();
    prune.sort();
    prune
}

fn gateway_statuses(
    snapshot: &ClassSnapshot<'_>,
    plan: &ClassPlan,
    translation: &Translation,
    data_plane: &DataPlaneState,
) -> Vec<GatewayStatusWrite> {
    // One map lookup per Gateway, not a plan search: classes can be large.
    let by_key: BTreeMap<ObjectKey, &Arc<Gateway>> = snapshot
        .gateways
        .iter()
        .map(|g| (ObjectKey::of(g.as_ref()), g))
        .collect();
    let mut writes = Vec::new();
    for gateway_plan in &plan.gateways {
        let Some(gateway) = by_key.get(&gateway_plan.key) else {
            continue;
        };
        let existing = gateway.status.as_ref();
        let attached = |listener: &str| {
            translation.attached_routes(&ListenerKey {
                gateway: gateway_plan.key.clone(),
                listener: listener.to_string(),
            })
        };
        let desired = gateway_status(gateway_plan, data_plane, existing, &attached, &snapshot.now);
        writes.push(GatewayStatusWrite {
            gateway: Arc::clone(gateway),
            changed: existing != Some(&desired),
            events: gateway_status_events(existing, &desired),
            status: desired,
        });
    }
    writes
}

fn class_status(class: &GatewayClass, verdict: &ClassVerdict, env_clashes: &[String], now: &Time) -> ClassStatusWrite {
    let status = class.status.as_ref();
    let existing = status.and_then(|s| s.conditions.clone()).unwrap_or_default();
    let existing_features: Vec<&str> = status
        .and_then(|s| s.supported_features.as_ref())
        .map(|features| features.iter().map(|f| f.name.as_str()).collect())
        .unwrap_or_default();
    let mut conditions =
        gateway_class_conditions(verdict, &existing, class.metadata.generation.unwrap_or_default(), now);
    if !env_clashes.is_empty()
        && let Some(accepted) = conditions
            .iter_mut()
            .find(|c| c.type_ == types::ACCEPTED && c.status == "True")
    {
        accepted.message = format!(
            "{}; KongProxy env {} ignored: kongress derives these from the listeners",
            accepted.message,
            env_clashes.join(", ")
        );
    }
    ClassStatusWrite {
        changed: conditions != existing || existing_features != SUPPORTED_FEATURES,
        conditions,
        supported_features: SUPPORTED_FEATURES.iter().map(|f| f.to_string()).collect(),
    }
}

/// Whether kongress owns this class.
pub fn owns(class: &GatewayClass) -> bool {
    class.spec.controller_name == CONTROLLER_NAME
}

#[cfg(test)]
mod tests;
