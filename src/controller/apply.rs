//! Writes: server-side apply of owned objects (skipped when nothing changed),
//! deletes, finalizers and status patches.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ReconcileError;

/// Every request that changes the cluster is logged under this target, so tests and
/// operators can tell an idle kongress (no such lines) from a busy one.
pub const WRITE_LOG_TARGET: &str = "kongress::write";

/// Names a failed write after its verb and object.
fn write_error<K: Resource<DynamicType = ()>>(
    verb: &'static str,
    object: &K,
) -> impl FnOnce(kube::Error) -> ReconcileError {
    let kind = K::kind(&()).to_string();
    let name = object.meta().name.clone().unwrap_or_default();
    let object = match object.meta().namespace.as_deref() {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name,
    };
    move |source| ReconcileError::Write {
        verb,
        kind,
        object,
        source: Box::new(source),
    }
}

fn log_write<K: Resource<DynamicType = ()>>(verb: &str, object: &K) {
    tracing::info!(
        target: WRITE_LOG_TARGET,
        verb,
        kind = %K::kind(&()),
        namespace = object.meta().namespace.as_deref().unwrap_or(""),
        name = object.meta().name.as_deref().unwrap_or(""),
        "write"
    );
}
use crate::api::labels::{APPLIED_HASH_ANNOTATION, FIELD_MANAGER};
use crate::render::content_hash;

/// Applies `desired` unless the live object already carries the hash of this exact
/// desired state. Returns whether a write was made.
pub async fn apply_if_changed<K>(client: &Client, live: Option<&K>, mut desired: K) -> Result<bool, ReconcileError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let hash = content_hash(&desired);
    if live.is_some_and(|live| live.annotations().get(APPLIED_HASH_ANNOTATION) == Some(&hash)) {
        return Ok(false);
    }
    desired.annotations_mut().insert(APPLIED_HASH_ANNOTATION.into(), hash);
    let namespace = desired.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    log_write("apply", &desired);
    api.patch(
        &desired.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&desired),
    )
    .await
    .map_err(write_error("apply", &desired))?;
    Ok(true)
}

/// Deletes an object the cache says exists. Returns whether a delete was sent.
pub async fn delete_if_present<K>(client: &Client, live: Option<&K>) -> Result<bool, ReconcileError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    let Some(live) = live else { return Ok(false) };
    if live.meta().deletion_timestamp.is_some() {
        return Ok(false);
    }
    let api: Api<K> = Api::namespaced(client.clone(), &live.namespace().unwrap_or_default());
    log_write("delete", live);
    match api.delete(&live.name_any(), &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(error) => Err(write_error("delete", live)(error)),
    }
}

/// Merge-patches `status` with the object's resourceVersion as a precondition, so a
/// status computed from a stale cache is refused (409) and recomputed instead of
/// overwriting someone else's newer write.
pub async fn patch_status<K>(api: &Api<K>, object: &K, status: &impl Serialize) -> Result<(), ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let patch = serde_json::json!({
        "metadata": { "resourceVersion": object.resource_version() },
        "status": status,
    });
    log_write("patch status", object);
    let result = api
        .patch_status(&object.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await;
    ignore_not_found(result).map_err(write_error("patch status of", object))
}

/// Sets the finalizer list, guarded by resourceVersion like [`patch_status`].
pub async fn set_finalizers<K>(api: &Api<K>, object: &K, finalizers: Vec<String>) -> Result<(), ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let patch = serde_json::json!({
        "metadata": { "resourceVersion": object.resource_version(), "finalizers": finalizers },
    });
    log_write("set finalizers", object);
    let result = api
        .patch(&object.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await;
    ignore_not_found(result).map_err(write_error("set finalizers of", object))
}

/// An object deleted since the cache saw it needs no status or finalizer change.
fn ignore_not_found<T>(result: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error),
    }
}
