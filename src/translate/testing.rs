//! Test support: a class snapshot read from multi-document YAML with [`crate::objects`],
//! planned and ready to translate.
//!
//! Conveniences for readable fixtures on top of the shared loader:
//! - with GatewayClasses in the input, only Gateways of a kongress class are kept;
//! - a `kubernetes.io/tls` Secret without `data` or `stringData` gets a freshly generated
//!   self-signed certificate (golden output shows certificates by Secret, not content);
//! - Gateways are planned with the default settings (status 8100, admin 8444, listener ports).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;

use super::routes::RouteSet;
use super::{TranslateInput, Translation, translate};
use crate::api::{CONTROLLER_NAME, Gateway, ObjectKey, PortMode, ReferenceGrant};
use crate::objects::Objects;
use crate::plan::{ClassPlan, PlanInput, PlanSettings, plan_class};

/// One class's objects, planned.
pub struct Snapshot {
    pub gateways: Vec<Arc<Gateway>>,
    pub plan: ClassPlan,
    pub routes: RouteSet,
    pub services: BTreeMap<ObjectKey, Arc<Service>>,
    pub endpoint_slices: BTreeMap<ObjectKey, Vec<Arc<EndpointSlice>>>,
    pub secrets: BTreeMap<ObjectKey, Arc<Secret>>,
    pub grants: Vec<Arc<ReferenceGrant>>,
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

fn with_certificate(secret: &Secret) -> Secret {
    let mut secret = secret.clone();
    let is_tls = secret.type_.as_deref() == Some("kubernetes.io/tls");
    if is_tls && secret.data.is_none() && secret.string_data.is_none() {
        let (cert, key) = crate::pki::generate_self_signed_pem("example.com").expect("self-signed pair");
        secret.data = Some(BTreeMap::from([
            ("tls.crt".to_string(), ByteString(cert.into_bytes())),
            ("tls.key".to_string(), ByteString(key.into_bytes())),
        ]));
    }
    secret
}

impl Snapshot {
    /// Reads objects from multi-document YAML; panics on anything it cannot read (tests only).
    pub fn from_yaml(text: &str) -> Self {
        let mut objects = Objects::default();
        objects.add_yaml("fixture", text).expect("fixture reads");
        Self::from_objects(objects)
    }

    pub fn from_objects(objects: Objects) -> Self {
        let mut gateways = objects.gateways;
        if !objects.classes.is_empty() {
            gateways.retain(|g| {
                objects
                    .classes
                    .iter()
                    .any(|c| c.name_any() == g.spec.gateway_class_name && c.spec.controller_name == CONTROLLER_NAME)
            });
        }
        let secrets: BTreeMap<ObjectKey, Arc<Secret>> = objects
            .secrets
            .iter()
            .map(|(key, secret)| (key.clone(), Arc::new(with_certificate(secret))))
            .collect();
        let plan = plan_class(&PlanInput {
            gateways: &gateways,
            secrets: &secrets,
            grants: &objects.grants,
            settings: PlanSettings {
                status_port: 8100,
                admin_port: 8444,
                port_mode: PortMode::default(),
            },
        });
        Self {
            gateways,
            plan,
            routes: objects.routes,
            services: objects.services,
            endpoint_slices: objects.endpoint_slices,
            secrets,
            grants: objects.grants,
            namespaces: objects.namespaces,
        }
    }

    pub fn input(&self) -> TranslateInput<'_> {
        TranslateInput {
            gateways: &self.gateways,
            plan: &self.plan,
            routes: &self.routes,
            services: &self.services,
            endpoint_slices: &self.endpoint_slices,
            secrets: &self.secrets,
            grants: &self.grants,
            namespaces: &self.namespaces,
        }
    }

    pub fn translate(&self) -> Translation {
        translate(&self.input())
    }
}

/// The objects of a class in reverse order (what a cache could hand over just as well).
pub fn reversed(objects: &Objects) -> Objects {
    let mut objects = objects.clone();
    objects.gateways.reverse();
    objects.grants.reverse();
    objects.routes.http.reverse();
    objects.routes.grpc.reverse();
    objects.routes.tls.reverse();
    objects.routes.tcp.reverse();
    objects.routes.udp.reverse();
    for slices in objects.endpoint_slices.values_mut() {
        slices.reverse();
    }
    objects
}
