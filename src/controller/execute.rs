//! The executor: the only code that writes. It performs an [`Outcome`] in a fixed order:
//! finalizer, data plane objects, prunes, statuses, Events.

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::GatewayStatus;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use super::Context;
use super::apply::{apply_if_changed, delete_if_present, patch_status, set_finalizers};
use super::error::ReconcileError;
use super::events::Change;
use crate::api::{Gateway, ObjectKey};
use crate::decide::{FinalizerChange, ManagedKind, ManagedObject, Outcome, RouteStatusWrite};
use crate::status::StatusEvent;
use crate::translate::routes::{GrpcRoute, HttpRoute, RouteObject, TcpRoute, TlsRoute, UdpRoute};

/// How a reconcile ended.
pub enum Executed {
    /// Everything was written; look again at the next resync.
    Done,
    /// The class itself was written (finalizer); its watch event brings the next round.
    AwaitChange,
}

fn live<K>(store: &kube::runtime::reflector::Store<K>, namespace: &str, name: &str) -> Option<std::sync::Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store.get(&ObjectRef::new(name).within(namespace))
}

pub async fn execute(ctx: &Context, class: &GatewayClass, outcome: &Outcome) -> Result<Executed, ReconcileError> {
    let classes: Api<GatewayClass> = Api::all(ctx.client.clone());
    if let Some(FinalizerChange::Add(finalizers)) = &outcome.finalizer {
        set_finalizers(&classes, class, finalizers.clone()).await?;
        return Ok(Executed::AwaitChange);
    }

    let mut wrote = Vec::new();
    if let Some(desired) = &outcome.data_plane {
        let ns = &outcome.names.namespace;
        let stores = &ctx.stores;
        if let Some(secret) = &desired.admin_secret {
            let current = live::<Secret>(&stores.secrets, ns, &outcome.names.admin_tls_secret);
            apply_if_changed(&ctx.client, current.as_deref(), secret.clone()).await?;
            info!(secret = %outcome.names.admin_tls_secret, "issued admin API server certificate");
        }
        let current = live::<Service>(&stores.services, ns, &outcome.names.admin_service);
        if apply_if_changed(&ctx.client, current.as_deref(), desired.admin_service.clone()).await? {
            wrote.push("admin Service");
        }
        if let Some(service) = &desired.proxy_service {
            let current = live::<Service>(&stores.services, ns, &outcome.names.proxy_service);
            if apply_if_changed(&ctx.client, current.as_deref(), service.clone()).await? {
                wrote.push("proxy Service");
            }
        }
        let current = live::<Deployment>(&stores.deployments, ns, &outcome.names.deployment);
        if apply_if_changed(&ctx.client, current.as_deref(), desired.deployment.clone()).await? {
            wrote.push("Deployment");
        }
        if !wrote.is_empty() {
            info!(
                objects = %wrote.join(", "),
                proxy_listen = %desired.proxy_listen,
                stream_listen = %desired.stream_listen,
                "applied data plane"
            );
        }
    }
    if prune(ctx, &outcome.prune).await? {
        info!(
            objects = outcome.prune.len(),
            "removed data plane objects no longer wanted"
        );
    }
    ctx.hold_config(class, outcome);

    if let Some(FinalizerChange::Remove(finalizers)) = &outcome.finalizer {
        set_finalizers(&classes, class, finalizers.clone()).await?;
        info!("last Gateway gone: data plane removed, finalizer released");
        // The finalizer patch changed the resourceVersion; the watch event brings a fresh copy for status.
        return Ok(Executed::AwaitChange);
    }
    write_statuses(ctx, class, outcome).await?;
    Ok(Executed::Done)
}

/// Deletes the managed objects the outcome no longer wants. Returns whether it deleted.
async fn prune(ctx: &Context, objects: &[ManagedObject]) -> Result<bool, ReconcileError> {
    let mut deleted = false;
    for object in objects {
        let ObjectKey { namespace, name } = &object.key;
        let stores = &ctx.stores;
        deleted |= match object.kind {
            ManagedKind::Deployment => {
                delete_if_present(
                    &ctx.client,
                    live::<Deployment>(&stores.deployments, namespace.as_str(), name.as_str()).as_deref(),
                )
                .await?
            }
            ManagedKind::Service => {
                delete_if_present(
                    &ctx.client,
                    live::<Service>(&stores.services, namespace.as_str(), name.as_str()).as_deref(),
                )
                .await?
            }
            ManagedKind::Secret => {
                delete_if_present(
                    &ctx.client,
                    live::<Secret>(&stores.secrets, namespace.as_str(), name.as_str()).as_deref(),
                )
                .await?
            }
        };
    }
    Ok(deleted)
}

/// Writes the Gateway, route and class statuses of an outcome, and their Events.
pub async fn write_statuses(ctx: &Context, class: &GatewayClass, outcome: &Outcome) -> Result<(), ReconcileError> {
    for write in outcome.gateway_statuses.iter().filter(|w| w.changed) {
        write_gateway_status(ctx, &write.gateway, &write.status).await?;
        publish_events(ctx, write.gateway.as_ref(), &write.events).await;
    }
    for write in outcome.route_statuses.iter().filter(|w| w.changed) {
        write_route_status(ctx, write).await?;
    }
    if outcome.class_status.changed {
        let api: Api<GatewayClass> = Api::all(ctx.client.clone());
        let supported_features: Vec<serde_json::Value> = outcome
            .class_status
            .supported_features
            .iter()
            .map(|name| serde_json::json!({ "name": name }))
            .collect();
        let body = serde_json::json!({
            "conditions": outcome.class_status.conditions,
            "supportedFeatures": supported_features,
        });
        patch_status(&api, class, &body).await?;
    }
    Ok(())
}

async fn write_gateway_status(ctx: &Context, gateway: &Gateway, status: &GatewayStatus) -> Result<(), ReconcileError> {
    let api: Api<Gateway> = Api::namespaced(ctx.client.clone(), &gateway.namespace().unwrap_or_default());
    let mut body = serde_json::to_value(status).map_err(|source| ReconcileError::Encode {
        what: "Gateway status",
        source,
    })?;
    if status.addresses.is_none() {
        // A merge patch leaves absent fields alone; an explicit null clears stale addresses.
        body["addresses"] = serde_json::Value::Null;
    }
    patch_status(&api, gateway, &body).await
}

/// Patches one route's `status` (any of the five kinds), guarded by its resourceVersion.
async fn write_route_status(ctx: &Context, write: &RouteStatusWrite) -> Result<(), ReconcileError> {
    let namespace = write.route.namespace();
    let body = serde_json::json!({ "parents": write.status.get("parents").cloned().unwrap_or_default() });
    macro_rules! patch {
        ($route:expr, $kind:ty) => {{
            let api: Api<$kind> = Api::namespaced(ctx.client.clone(), namespace);
            patch_status(&api, $route.as_ref(), &body).await?;
            publish_events(ctx, $route.as_ref(), &write.events).await;
        }};
    }
    match &write.route.object {
        RouteObject::Http(route) => patch!(route, HttpRoute),
        RouteObject::Grpc(route) => patch!(route, GrpcRoute),
        RouteObject::Tls(route) => patch!(route, TlsRoute),
        RouteObject::Tcp(route) => patch!(route, TcpRoute),
        RouteObject::Udp(route) => patch!(route, UdpRoute),
    }
    Ok(())
}

/// Publishes the Events of a status change, so `kubectl describe` tells the story; each
/// names the trace of this reconcile.
async fn publish_events<K: Resource<DynamicType = ()>>(ctx: &Context, object: &K, events: &[StatusEvent]) {
    let reference = object.object_ref(&());
    let trace_id = crate::telemetry::current_trace_id();
    for status_event in events {
        let change = Change {
            warning: status_event.warning,
            reason: &status_event.reason,
            note: &status_event.note,
        };
        if let Err(error) = ctx.recorder.publish(&reference, &change, trace_id.as_deref()).await {
            warn!(%error, "could not publish Event");
        }
    }
}
