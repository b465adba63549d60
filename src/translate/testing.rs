//! Test support: a class snapshot read from multi-document YAML of Kubernetes objects, planned
//! and ready to translate.
//!
//! A stand-in until `crate::objects` (the shared loader) lands; it reads the same kinds:
//! GatewayClass, Gateway, the five route kinds, Service, EndpointSlice, Secret,
//! ReferenceGrant and Namespace. Conveniences for readable fixtures:
//! - objects without a namespace go to `default`;
//! - a `kubernetes.io/tls` Secret without `data` or `stringData` gets a freshly generated
//!   self-signed certificate (golden output shows certificates by Secret name, not content);
//! - Gateways are planned with the default settings (status 8100, admin 8444, listener ports).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use serde::Deserialize;

use super::TranslateInput;
use super::routes::{GrpcRoute, HttpRoute, RouteSet, TcpRoute, TlsRoute, UdpRoute};
use crate::api::{CONTROLLER_NAME, Gateway, GatewayClass, ObjectKey, PortMode, ReferenceGrant};
use crate::plan::{ClassPlan, PlanInput, PlanSettings, plan_class};

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

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

fn with_default_namespace<K: kube::Resource>(mut object: K) -> K {
    if object.meta().namespace.is_none() {
        object.meta_mut().namespace = Some("default".into());
    }
    object
}

fn parse<K: for<'de> Deserialize<'de> + kube::Resource>(value: serde_yaml_ng::Value) -> K {
    with_default_namespace(serde_yaml_ng::from_value(value).expect("object matches its kind"))
}

fn generate_certificate(mut secret: Secret) -> Secret {
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
        let mut classes: Vec<GatewayClass> = Vec::new();
        let mut gateways: Vec<Gateway> = Vec::new();
        let mut routes = RouteSet::default();
        let mut services = BTreeMap::new();
        let mut slices: BTreeMap<ObjectKey, Vec<Arc<EndpointSlice>>> = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        let mut grants = Vec::new();
        let mut namespaces = BTreeMap::new();
        for document in serde_yaml_ng::Deserializer::from_str(text) {
            let value = serde_yaml_ng::Value::deserialize(document).expect("valid YAML");
            if value.is_null() {
                continue;
            }
            let kind = value
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or_default()
                .to_string();
            match kind.as_str() {
                "GatewayClass" => classes.push(serde_yaml_ng::from_value(value).expect("GatewayClass")),
                "Gateway" => gateways.push(parse(value)),
                "HTTPRoute" => routes.http.push(Arc::new(parse::<HttpRoute>(value))),
                "GRPCRoute" => routes.grpc.push(Arc::new(parse::<GrpcRoute>(value))),
                "TLSRoute" => routes.tls.push(Arc::new(parse::<TlsRoute>(value))),
                "TCPRoute" => routes.tcp.push(Arc::new(parse::<TcpRoute>(value))),
                "UDPRoute" => routes.udp.push(Arc::new(parse::<UdpRoute>(value))),
                "Service" => {
                    let service: Service = parse(value);
                    services.insert(ObjectKey::of(&service), Arc::new(service));
                }
                "EndpointSlice" => {
                    let slice: EndpointSlice = parse(value);
                    let service = slice.labels().get(SERVICE_NAME_LABEL).cloned().unwrap_or_default();
                    let key = ObjectKey::new(slice.namespace().unwrap_or_default(), service);
                    slices.entry(key).or_default().push(Arc::new(slice));
                }
                "Secret" => {
                    let secret = generate_certificate(parse(value));
                    secrets.insert(ObjectKey::of(&secret), Arc::new(secret));
                }
                "ReferenceGrant" => grants.push(Arc::new(parse::<ReferenceGrant>(value))),
                "Namespace" => {
                    let namespace: Namespace = serde_yaml_ng::from_value(value).expect("Namespace");
                    namespaces.insert(namespace.name_any(), namespace.labels().clone());
                }
                other => panic!("unexpected kind {other:?} in fixture"),
            }
        }
        // With classes in the input, only Gateways of a kongress class belong to the snapshot.
        if !classes.is_empty() {
            gateways.retain(|g| {
                classes
                    .iter()
                    .any(|c| c.name_any() == g.spec.gateway_class_name && c.spec.controller_name == CONTROLLER_NAME)
            });
        }
        let gateways: Vec<Arc<Gateway>> = gateways.into_iter().map(Arc::new).collect();
        let plan = plan_class(&PlanInput {
            gateways: &gateways,
            secrets: &secrets,
            grants: &grants,
            settings: PlanSettings {
                status_port: 8100,
                admin_port: 8444,
                port_mode: PortMode::default(),
            },
        });
        Self {
            gateways,
            plan,
            routes,
            services,
            endpoint_slices: slices,
            secrets,
            grants,
            namespaces,
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
}
