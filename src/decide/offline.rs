//! Deciding from objects read from files: what `kongress translate` prints and what the
//! golden tests compare. The same [`decide`](super::decide) runs as in the operator;
//! only the snapshot is built differently (no live data plane, no cluster).

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde_json::{Value, json};

use super::{AdminTls, ClassSnapshot, LiveDataPlane, Outcome, decide, owns};
use crate::api::{CONTROLLER_NAME, GatewayClass, ObjectKey};
use crate::objects::Objects;
use crate::status::InstalledCrd;

/// The Gateway API bundle version assumed offline: the one this build supports.
pub const ASSUMED_BUNDLE_VERSION: &str = "v1.5.1";

/// Offline there are no CRDs to read: the Gateway API CRDs are assumed to be the version
/// this build supports.
pub fn assumed_crds() -> Vec<InstalledCrd> {
    vec![InstalledCrd {
        name: "gateways.gateway.networking.k8s.io".into(),
        bundle_version: Some(ASSUMED_BUNDLE_VERSION.into()),
    }]
}

/// The kongress class to decide: the one named, or the only one in the input.
pub fn choose_class(objects: &Objects, requested: Option<&str>) -> Result<Arc<GatewayClass>, String> {
    let ours: Vec<&Arc<GatewayClass>> = objects.classes.iter().filter(|c| owns(c)).collect();
    match requested {
        Some(name) => match objects.classes.iter().find(|c| c.name_any() == name) {
            Some(class) if owns(class) => Ok(Arc::clone(class)),
            Some(class) => Err(format!(
                "GatewayClass {name} has controllerName {}, not {CONTROLLER_NAME}",
                class.spec.controller_name
            )),
            None => Err(format!("the input has no GatewayClass named {name}")),
        },
        None => match ours.as_slice() {
            [class] => Ok(Arc::clone(class)),
            [] => Err(format!(
                "the input has no GatewayClass with controllerName {CONTROLLER_NAME}"
            )),
            many => {
                let names: Vec<String> = many.iter().map(|c| c.name_any()).collect();
                Err(format!(
                    "the input has {} kongress GatewayClasses ({}); choose one with --gateway-class",
                    many.len(),
                    names.join(", ")
                ))
            }
        },
    }
}

/// Decides one class from files, as the operator would with no data plane running yet.
pub fn decide_offline(objects: &Objects, class: &GatewayClass, operator_namespace: &str, now: Time) -> Outcome {
    let class_name = class.name_any();
    let gateways = objects
        .gateways
        .iter()
        .filter(|g| g.spec.gateway_class_name == class_name)
        .cloned()
        .collect();
    let proxies = |key: &ObjectKey| objects.proxies.get(key).cloned();
    let gateway_class_of = |key: &ObjectKey| {
        objects
            .gateways
            .iter()
            .find(|g| &ObjectKey::of(g.as_ref()) == key)
            .map(|g| g.spec.gateway_class_name.clone())
    };
    decide(&ClassSnapshot {
        class,
        operator_namespace,
        proxies: &proxies,
        crds: assumed_crds(),
        gateways,
        routes: &objects.routes,
        services: &objects.services,
        endpoint_slices: &objects.endpoint_slices,
        secrets: objects,
        grants: &objects.grants,
        namespaces: &objects.namespaces,
        live: LiveDataPlane::default(),
        managed: Vec::new(),
        admin_tls: AdminTls::default(),
        refused: None,
        push: None,
        gateway_class_of: &gateway_class_of,
        now,
    })
}

/// The statuses an outcome writes, as Kubernetes-shaped documents (kind, name, status):
/// the class, then routes, then Gateways.
pub fn status_documents(class: &GatewayClass, outcome: &Outcome) -> Vec<Value> {
    let mut documents = vec![json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": { "name": class.name_any() },
        "status": {
            "conditions": outcome.class_status.conditions,
            "supportedFeatures": outcome.class_status.supported_features.iter().map(|name| json!({ "name": name })).collect::<Vec<_>>(),
        },
    })];
    for write in &outcome.route_statuses {
        let route = &write.route.route;
        documents.push(json!({
            "apiVersion": format!("gateway.networking.k8s.io/{}", crate::translate::routes::api_version(route.kind)),
            "kind": route.kind.as_str(),
            "metadata": { "name": route.key.name, "namespace": route.key.namespace },
            "status": write.status,
        }));
    }
    for write in &outcome.gateway_statuses {
        documents.push(json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {
                "name": write.gateway.name_any(),
                "namespace": write.gateway.namespace().unwrap_or_default(),
            },
            "status": write.status,
        }));
    }
    documents
}
