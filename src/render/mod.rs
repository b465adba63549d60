//! The data plane of one GatewayClass as Kubernetes objects: the Kong Deployment, the
//! proxy Service in front of the listeners and the headless admin Service kongress pushes
//! configuration through. Pure: the same input always gives byte-identical objects.

mod deployment;
mod env;
mod names;
mod service;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::api::labels::{COMPONENT_LABEL, GATEWAY_CLASS_LABEL, INSTANCE_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::api::{GATEWAY_API_GROUP, KongProxySpec};
use crate::plan::ListenPlan;
pub use names::{DataPlaneNames, data_plane_names};

/// Pod template annotation carrying the admin server certificate's fingerprint, so a
/// renewed certificate rolls the pods (Kong reads the files only at start).
pub const ADMIN_CERT_ANNOTATION: &str = "kongress.dev/admin-cert";
/// Where the admin TLS Secret (`tls.crt`, `tls.key`, `ca.crt`) is mounted in the Kong container.
pub const ADMIN_TLS_MOUNT_PATH: &str = "/etc/kongress/admin-tls";
/// Kong's prefix directory, on an emptyDir because the root filesystem is read-only.
pub const KONG_PREFIX_PATH: &str = "/kong_prefix";

/// [`COMPONENT_LABEL`] value of the Kong Deployment and its pods.
pub const KONG_COMPONENT: &str = "kong";
/// [`COMPONENT_LABEL`] value of the proxy Service.
pub const PROXY_COMPONENT: &str = "proxy";
/// [`COMPONENT_LABEL`] value of the admin Service.
pub const ADMIN_COMPONENT: &str = "admin";

/// Everything the data plane of one GatewayClass is rendered from.
#[derive(Clone, Copy, Debug)]
pub struct RenderInput<'a> {
    pub class_name: &'a str,
    pub class_uid: &'a str,
    pub names: &'a DataPlaneNames,
    pub proxy: &'a KongProxySpec,
    pub listen: &'a ListenPlan,
    /// Addresses the class's Gateways ask for in `spec.addresses`.
    pub requested_addresses: &'a [String],
    /// Fingerprint of the current admin server certificate.
    pub admin_cert_fingerprint: &'a str,
}

/// The desired data plane objects of one GatewayClass.
#[derive(Clone, Debug, PartialEq)]
pub struct DataPlane {
    pub deployment: Deployment,
    /// `None` when no listener is programmed: a Service needs at least one port.
    pub proxy_service: Option<Service>,
    pub admin_service: Service,
    /// Names of `KongProxy.spec.env` variables that were dropped because kongress sets them.
    pub env_clashes: Vec<String>,
}

/// Renders the data plane of one GatewayClass.
pub fn render(input: &RenderInput) -> DataPlane {
    let kong_env = env::kong_env(input.proxy, input.listen);
    DataPlane {
        deployment: deployment::deployment(input, kong_env.vars),
        proxy_service: service::proxy_service(input),
        admin_service: service::admin_service(input),
        env_clashes: kong_env.clashes,
    }
}

/// Hex sha256 of the JSON form of `value`. k8s-openapi objects keep maps in BTreeMaps, so
/// equal objects always hash equal; the controller uses this to skip unchanged writes.
pub fn content_hash<T: Serialize>(value: &T) -> String {
    let mut hasher = Sha256::new();
    if let Err(error) = serde_json::to_writer(&mut hasher, value) {
        // Such a value cannot be applied either (the client serialises it the same way), so
        // no stored hash can ever equal this one and the failure shows up at the write.
        let mut hasher = Sha256::new();
        hasher.update(b"unserialisable: ");
        hasher.update(error.to_string().as_bytes());
        return hex::encode(hasher.finalize());
    }
    hex::encode(hasher.finalize())
}

/// Labels of every data plane object; `component` tells the objects of one data plane apart.
fn object_labels(input: &RenderInput, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (GATEWAY_CLASS_LABEL.to_string(), input.names.class_label.clone()),
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string()),
        (COMPONENT_LABEL.to_string(), component.to_string()),
        (INSTANCE_LABEL.to_string(), input.names.deployment.clone()),
    ])
}

/// Selects the Kong pods of this data plane. The Deployment selector is immutable, so it
/// holds only labels whose values never change for a data plane.
fn kong_pod_selector(names: &DataPlaneNames) -> BTreeMap<String, String> {
    BTreeMap::from([
        (INSTANCE_LABEL.to_string(), names.deployment.clone()),
        (COMPONENT_LABEL.to_string(), KONG_COMPONENT.to_string()),
    ])
}

/// `extra` overlaid by `ours`: labels kongress selects or finds objects by must not be
/// overridable.
fn overlay(extra: Option<&BTreeMap<String, String>>, ours: BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut merged = extra.cloned().unwrap_or_default();
    merged.extend(ours);
    merged
}

/// The GatewayClass as controller owner, so deleting the class collects its data plane.
fn class_owner(input: &RenderInput) -> OwnerReference {
    OwnerReference {
        api_version: format!("{GATEWAY_API_GROUP}/v1"),
        kind: "GatewayClass".to_string(),
        name: input.class_name.to_string(),
        uid: input.class_uid.to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn object_meta(
    input: &RenderInput,
    name: &str,
    labels: BTreeMap<String, String>,
    annotations: Option<BTreeMap<String, String>>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(input.names.namespace.clone()),
        labels: Some(labels),
        annotations,
        owner_references: Some(vec![class_owner(input)]),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
mod tests;
