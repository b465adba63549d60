//! The reconcile of one GatewayClass: read caches, call the core, write what changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::GatewayStatus;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tracing::{info, instrument, warn};

use super::Context;
use super::admin_tls::{admin_secret_data, fingerprint};
use super::apply::{apply_if_changed, delete_if_present, patch_status, set_finalizers};
use super::error::ReconcileError;
use super::observe::{deployment_state, service_addresses};
use crate::api::conditions::types;
use crate::api::labels::{GATEWAY_CLASS_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::api::{
    BUNDLE_VERSION_ANNOTATION, CONTROLLER_NAME, GATEWAY_API_GROUP, GATEWAY_CLASS_FINALIZER, Gateway, KongProxySpec,
    ObjectKey,
};
use crate::plan::{ClassPlan, GatewayPlan, PlanInput, PlanSettings, plan_class};
use crate::render::{DataPlaneNames, RenderInput, data_plane_names, render};
use crate::status::{
    ClassVerdict, DataPlaneState, InstalledCrd, crd_versions, gateway_class_conditions, gateway_status,
    gateway_status_events,
};

/// The Gateway CRD, whose bundle-version annotation says which Gateway API is installed.
pub const GATEWAY_CRD_NAME: &str = "gateways.gateway.networking.k8s.io";

/// How often a converged class is looked at again even without a watch event, so a
/// certificate nearing expiry is renewed in time.
const RESYNC: Duration = Duration::from_secs(3600);

/// What the class's `parametersRef` resolves to.
struct ClassParameters {
    proxy: KongProxySpec,
    namespace: String,
    problem: Option<String>,
}

fn resolve_parameters(class: &GatewayClass, ctx: &Context) -> ClassParameters {
    let defaults = |problem| ClassParameters {
        proxy: KongProxySpec::default(),
        namespace: ctx.settings.namespace.clone(),
        problem,
    };
    let Some(reference) = &class.spec.parameters_ref else {
        return defaults(None);
    };
    if reference.group != "kongress.dev" || reference.kind != "KongProxy" {
        return defaults(Some(format!(
            "parametersRef must name a kongress.dev KongProxy, not {}/{}",
            reference.group, reference.kind
        )));
    }
    let Some(namespace) = reference.namespace.clone() else {
        return defaults(Some(format!(
            "parametersRef to KongProxy {} lacks a namespace; KongProxy is namespaced",
            reference.name
        )));
    };
    match ctx
        .stores
        .proxies
        .get(&ObjectRef::new(&reference.name).within(&namespace))
    {
        Some(proxy) => ClassParameters {
            proxy: proxy.spec.clone(),
            namespace,
            problem: None,
        },
        None => ClassParameters {
            proxy: KongProxySpec::default(),
            namespace: namespace.clone(),
            problem: Some(format!("KongProxy {namespace}/{} does not exist", reference.name)),
        },
    }
}

fn bundle_version(ctx: &Context) -> Option<String> {
    let crd = ctx.stores.crds.get(&ObjectRef::new(GATEWAY_CRD_NAME))?;
    crd.metadata
        .annotations
        .as_ref()?
        .get(BUNDLE_VERSION_ANNOTATION)
        .cloned()
}

fn now() -> Time {
    Time(Timestamp::now())
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

/// The live data plane objects of a class, from the caches.
struct LiveDataPlane {
    deployment: Option<Arc<Deployment>>,
    proxy_service: Option<Arc<Service>>,
    admin_service: Option<Arc<Service>>,
    admin_secret: Option<Arc<Secret>>,
}

fn live_data_plane(ctx: &Context, names: &DataPlaneNames) -> LiveDataPlane {
    let ns = &names.namespace;
    LiveDataPlane {
        deployment: ctx
            .stores
            .deployments
            .get(&ObjectRef::new(&names.deployment).within(ns)),
        proxy_service: ctx
            .stores
            .services
            .get(&ObjectRef::new(&names.proxy_service).within(ns)),
        admin_service: ctx
            .stores
            .services
            .get(&ObjectRef::new(&names.admin_service).within(ns)),
        admin_secret: ctx
            .stores
            .secrets
            .get(&ObjectRef::new(&names.admin_tls_secret).within(ns)),
    }
}

#[instrument(skip_all, fields(gateway_class = %class.name_any()))]
pub async fn reconcile(class: Arc<GatewayClass>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    if class.spec.controller_name != CONTROLLER_NAME {
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
    let parameters = resolve_parameters(&class, &ctx);
    let names = data_plane_names(&class_name, &parameters.namespace);
    let live = live_data_plane(&ctx, &names);
    let classes: Api<GatewayClass> = Api::all(ctx.client.clone());

    if gateways.is_empty() {
        if prune_data_plane(&ctx, &names.class_label, &[]).await? {
            info!("no Gateway uses this class: removed its data plane");
        }
        let finalizers: Vec<String> = class
            .finalizers()
            .iter()
            .filter(|f| *f != GATEWAY_CLASS_FINALIZER)
            .cloned()
            .collect();
        if finalizers.len() != class.finalizers().len() {
            set_finalizers(&classes, &class, finalizers).await?;
            info!("last Gateway gone: data plane removed, finalizer released");
            // The finalizer patch changed the resourceVersion; the watch event brings a fresh copy for status.
            return Ok(Action::await_change());
        }
    } else if class.meta().deletion_timestamp.is_none()
        && !class.finalizers().iter().any(|f| f == GATEWAY_CLASS_FINALIZER)
    {
        let mut finalizers = class.finalizers().to_vec();
        finalizers.push(GATEWAY_CLASS_FINALIZER.into());
        set_finalizers(&classes, &class, finalizers).await?;
        return Ok(Action::await_change());
    }

    let verdict = ClassVerdict {
        invalid_parameters: parameters.problem.clone(),
        // Only the Gateway CRD is watched so far; the SupportedVersion rule wants every
        // Gateway API CRD (status::crd_versions takes them all once the watch is widened).
        versions: crd_versions(&[InstalledCrd {
            name: GATEWAY_CRD_NAME.into(),
            bundle_version: bundle_version(&ctx),
        }]),
    };
    let class_problem = (!verdict.accepted()).then(|| {
        let why = verdict
            .invalid_parameters
            .clone()
            .unwrap_or_else(|| "the installed Gateway API version is not supported".into());
        format!("GatewayClass {class_name} is not accepted ({why}); its data plane is left as it was")
    });

    let plan = plan_class(&PlanInput {
        gateways: &gateways,
        secrets: &ctx.stores.secrets,
        grants: &ctx.stores.grants.state(),
        settings: PlanSettings {
            status_port: parameters.proxy.status_port(),
            admin_port: parameters.proxy.admin_port(),
            port_mode: parameters.proxy.port_mode(),
        },
    });

    let mut env_clashes = Vec::new();
    let mut refused = None;
    if class_problem.is_none() && !gateways.is_empty() {
        match apply_data_plane(&ctx, &class, &parameters.proxy, &names, &plan, &live).await {
            Ok(clashes) => env_clashes = clashes,
            // The API server refused what the user's input produced (an admission policy,
            // an invalid resource request): say so on the Gateways, then retry with backoff.
            Err(error) if error.is_refusal() => refused = Some(error),
            Err(error) => return Err(error),
        }
    }

    let (load_balancer, external_ips, cluster_ips) = service_addresses(live.proxy_service.as_deref());
    let data_plane = DataPlaneState {
        class_problem,
        refused: refused
            .as_ref()
            .map(|error| format!("The API server refused the data plane: {error}")),
        deployment: deployment_state(live.deployment.as_deref()),
        load_balancer,
        external_ips,
        cluster_ips,
    };
    // One pass over the plan with a map, not a plan search per Gateway: classes can be large.
    let by_key: HashMap<ObjectKey, &Gateway> = gateways
        .iter()
        .map(|g| (ObjectKey::of(g.as_ref()), g.as_ref()))
        .collect();
    for gateway_plan in &plan.gateways {
        if let Some(gateway) = by_key.get(&gateway_plan.key) {
            write_gateway_status(&ctx, gateway, gateway_plan, &data_plane).await?;
        }
    }
    write_class_status(&ctx, &class, &verdict, &env_clashes).await?;
    match refused {
        Some(error) => Err(error),
        None => Ok(Action::requeue(RESYNC)),
    }
}

/// Creates or updates the data plane. Returns the KongProxy env names that were ignored.
async fn apply_data_plane(
    ctx: &Context,
    class: &GatewayClass,
    proxy: &KongProxySpec,
    names: &DataPlaneNames,
    plan: &ClassPlan,
    live: &LiveDataPlane,
) -> Result<Vec<String>, ReconcileError> {
    let class_name = class.name_any();
    let owner = class_owner(class);
    let labels = std::collections::BTreeMap::from([
        (GATEWAY_CLASS_LABEL.to_string(), names.class_label.clone()),
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string()),
    ]);

    let admin_data = match admin_secret_data(&ctx.ca, names, live.admin_secret.as_deref())? {
        Some(data) => {
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(names.admin_tls_secret.clone()),
                    namespace: Some(names.namespace.clone()),
                    labels: Some(labels.clone()),
                    owner_references: Some(vec![owner.clone()]),
                    ..Default::default()
                },
                type_: Some("kubernetes.io/tls".into()),
                data: Some(data.clone()),
                ..Default::default()
            };
            apply_if_changed(&ctx.client, live.admin_secret.as_deref(), secret).await?;
            info!(secret = %names.admin_tls_secret, "issued admin API server certificate");
            data
        }
        None => live
            .admin_secret
            .as_ref()
            .and_then(|s| s.data.clone())
            .unwrap_or_default(),
    };

    let desired = render(&RenderInput {
        class_name: &class_name,
        class_uid: &owner.uid,
        names,
        proxy,
        listen: &plan.listen,
        requested_addresses: &plan.requested_addresses,
        admin_cert_fingerprint: &fingerprint(&admin_data),
    });
    let mut wrote = Vec::new();
    if apply_if_changed(&ctx.client, live.admin_service.as_deref(), desired.admin_service).await? {
        wrote.push("admin Service");
    }
    let mut keep = vec![
        ObjectKey::new(&names.namespace, &names.deployment),
        ObjectKey::new(&names.namespace, &names.admin_service),
        ObjectKey::new(&names.namespace, &names.admin_tls_secret),
    ];
    if let Some(service) = desired.proxy_service {
        keep.push(ObjectKey::new(&names.namespace, &names.proxy_service));
        if apply_if_changed(&ctx.client, live.proxy_service.as_deref(), service).await? {
            wrote.push("proxy Service");
        }
    }
    if apply_if_changed(&ctx.client, live.deployment.as_deref(), desired.deployment).await? {
        wrote.push("Deployment");
    }
    if prune_data_plane(ctx, &names.class_label, &keep).await? {
        wrote.push("pruned objects no longer wanted");
    }
    if !wrote.is_empty() {
        info!(
            objects = %wrote.join(", "),
            proxy_listen = %plan.listen.proxy_listen(),
            stream_listen = %plan.listen.stream_listen(),
            "applied data plane"
        );
    }
    Ok(desired.env_clashes)
}

/// Deletes every object labelled as part of this class's data plane that is not in
/// `keep`: the whole data plane once no Gateway is left, a proxy Service without
/// ports, and what an earlier KongProxy namespace left behind. Returns whether it deleted.
async fn prune_data_plane(ctx: &Context, class_label: &str, keep: &[ObjectKey]) -> Result<bool, ReconcileError> {
    fn unwanted<K: Resource>(object: &K, class_label: &str, keep: &[ObjectKey]) -> bool {
        let labels = object.meta().labels.as_ref();
        let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
        label(MANAGED_BY_LABEL) == Some(MANAGED_BY_VALUE)
            && label(GATEWAY_CLASS_LABEL) == Some(class_label)
            && !keep.contains(&ObjectKey::of(object))
    }
    let mut deleted = false;
    for deployment in ctx.stores.deployments.state() {
        if unwanted(deployment.as_ref(), class_label, keep) {
            deleted |= delete_if_present(&ctx.client, Some(deployment.as_ref())).await?;
        }
    }
    for service in ctx.stores.services.state() {
        if unwanted(service.as_ref(), class_label, keep) {
            deleted |= delete_if_present(&ctx.client, Some(service.as_ref())).await?;
        }
    }
    for secret in ctx.stores.secrets.state() {
        if unwanted(secret.as_ref(), class_label, keep) {
            deleted |= delete_if_present(&ctx.client, Some(secret.as_ref())).await?;
        }
    }
    Ok(deleted)
}

async fn write_gateway_status(
    ctx: &Context,
    gateway: &Gateway,
    gateway_plan: &GatewayPlan,
    data_plane: &DataPlaneState,
) -> Result<(), ReconcileError> {
    let key = &gateway_plan.key;
    let existing = gateway.status.as_ref();
    let existing_attached = |name: &str| {
        existing
            .and_then(|s| s.listeners.as_ref())
            .and_then(|ls| ls.iter().find(|l| l.name == name))
            .map_or(0, |l| l.attached_routes)
    };
    let desired = gateway_status(gateway_plan, data_plane, existing, &existing_attached, &now());
    if existing == Some(&desired) {
        return Ok(());
    }
    let api: Api<Gateway> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let mut body = serde_json::to_value(&desired).map_err(|source| ReconcileError::Encode {
        what: "Gateway status",
        source,
    })?;
    if desired.addresses.is_none() {
        // A merge patch leaves absent fields alone; an explicit null clears stale addresses.
        body["addresses"] = serde_json::Value::Null;
    }
    patch_status(&api, gateway, &body).await?;
    publish_condition_events(ctx, gateway, existing, &desired).await;
    Ok(())
}

/// Publishes the Events of a Gateway status change, so `kubectl describe` tells the story.
async fn publish_condition_events(
    ctx: &Context,
    gateway: &Gateway,
    before: Option<&GatewayStatus>,
    after: &GatewayStatus,
) {
    let reference = gateway.object_ref(&());
    for status_event in gateway_status_events(before, after) {
        let event = Event {
            type_: if status_event.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: status_event.reason,
            note: Some(status_event.note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(error) = ctx.recorder.publish(&event, &reference).await {
            warn!(%error, "could not publish Event");
        }
    }
}

async fn write_class_status(
    ctx: &Context,
    class: &GatewayClass,
    verdict: &ClassVerdict,
    env_clashes: &[String],
) -> Result<(), ReconcileError> {
    let existing = class
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut conditions = gateway_class_conditions(
        verdict,
        &existing,
        class.metadata.generation.unwrap_or_default(),
        &now(),
    );
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
    if conditions == existing {
        return Ok(());
    }
    let api: Api<GatewayClass> = Api::all(ctx.client.clone());
    let status = serde_json::json!({ "conditions": conditions });
    patch_status(&api, class, &status).await
}
