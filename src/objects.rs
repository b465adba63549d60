//! Kubernetes objects read from YAML files, for `kongress translate` and golden tests.
//!
//! Accepts what `kubectl get -o yaml` and hand-written manifests contain: multi-document
//! YAML, `List` objects, namespaced objects without a namespace (they land in `default`,
//! as with `kubectl apply`). Anything else is an error that names the file and document.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use serde::de::DeserializeOwned;

use crate::api::{GATEWAY_API_GROUP, Gateway, GatewayClass, KongProxy, ObjectKey, ReferenceGrant};
use crate::plan::SecretLookup;
use crate::translate::RouteSet;
use crate::translate::routes::{GrpcRoute, HttpRoute, TcpRoute, TlsRoute, UdpRoute};

/// The label EndpointSlices carry to name their Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Why a file could not be read as Kubernetes objects.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{source_name}: document {document} is not valid YAML: {message}")]
    Yaml {
        source_name: String,
        document: usize,
        message: String,
    },
    #[error("{source_name}: document {document} has no apiVersion and kind")]
    NotAnObject { source_name: String, document: usize },
    #[error(
        "{source_name}: document {document} is a {kind} ({api_version}), which kongress does not read; \
         it reads GatewayClass, Gateway, HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, UDPRoute, ReferenceGrant, \
         Service, EndpointSlice, Secret, Namespace and KongProxy"
    )]
    UnknownKind {
        source_name: String,
        document: usize,
        api_version: String,
        kind: String,
    },
    #[error("{source_name}: document {document} ({kind} {name}) does not match its schema: {message}")]
    Invalid {
        source_name: String,
        document: usize,
        kind: String,
        name: String,
        message: String,
    },
}

/// Every object kongress reads, as the caches of the operator would hold them.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub classes: Vec<Arc<GatewayClass>>,
    pub gateways: Vec<Arc<Gateway>>,
    pub routes: RouteSet,
    pub services: BTreeMap<ObjectKey, Arc<Service>>,
    /// By the Service they belong to.
    pub endpoint_slices: BTreeMap<ObjectKey, Vec<Arc<EndpointSlice>>>,
    pub secrets: BTreeMap<ObjectKey, Arc<Secret>>,
    pub grants: Vec<Arc<ReferenceGrant>>,
    /// Namespace labels by name.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    pub proxies: BTreeMap<ObjectKey, Arc<KongProxy>>,
}

impl SecretLookup for Objects {
    fn secret(&self, key: &ObjectKey) -> Option<Arc<Secret>> {
        self.secrets.get(key).cloned()
    }
}

impl Objects {
    /// Reads every document of `text`; `source_name` is used in errors.
    pub fn add_yaml(&mut self, source_name: &str, text: &str) -> Result<(), LoadError> {
        for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let document_number = index + 1;
            let value =
                <serde_json::Value as serde::Deserialize>::deserialize(document).map_err(|e| LoadError::Yaml {
                    source_name: source_name.to_string(),
                    document: document_number,
                    message: e.to_string(),
                })?;
            self.add_value(source_name, document_number, value)?;
        }
        Ok(())
    }

    fn add_value(&mut self, source_name: &str, document: usize, value: serde_json::Value) -> Result<(), LoadError> {
        if value.is_null() {
            return Ok(()); // an empty document, e.g. a trailing `---`
        }
        let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_string);
        let (Some(api_version), Some(kind)) = (field("apiVersion"), field("kind")) else {
            return Err(LoadError::NotAnObject {
                source_name: source_name.to_string(),
                document,
            });
        };
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        let reader = Reader {
            source_name,
            document,
            kind: &kind,
        };
        match (group, kind.as_str()) {
            ("", "List") => {
                let items = value
                    .get("items")
                    .and_then(|i| i.as_array())
                    .cloned()
                    .unwrap_or_default();
                for item in items {
                    self.add_value(source_name, document, item)?;
                }
            }
            (GATEWAY_API_GROUP, "GatewayClass") => self.classes.push(Arc::new(reader.read(value, false)?)),
            (GATEWAY_API_GROUP, "Gateway") => self.gateways.push(Arc::new(reader.read(value, true)?)),
            (GATEWAY_API_GROUP, "HTTPRoute") => self.routes.http.push(Arc::new(reader.read::<HttpRoute>(value, true)?)),
            (GATEWAY_API_GROUP, "GRPCRoute") => self.routes.grpc.push(Arc::new(reader.read::<GrpcRoute>(value, true)?)),
            (GATEWAY_API_GROUP, "TLSRoute") => self.routes.tls.push(Arc::new(reader.read::<TlsRoute>(value, true)?)),
            (GATEWAY_API_GROUP, "TCPRoute") => self.routes.tcp.push(Arc::new(reader.read::<TcpRoute>(value, true)?)),
            (GATEWAY_API_GROUP, "UDPRoute") => self.routes.udp.push(Arc::new(reader.read::<UdpRoute>(value, true)?)),
            (GATEWAY_API_GROUP, "ReferenceGrant") => self.grants.push(Arc::new(reader.read(value, true)?)),
            ("kongress.dev", "KongProxy") => {
                let proxy: KongProxy = reader.read(value, true)?;
                self.proxies.insert(ObjectKey::of(&proxy), Arc::new(proxy));
            }
            ("", "Service") => {
                let service: Service = reader.read(value, true)?;
                self.services.insert(ObjectKey::of(&service), Arc::new(service));
            }
            ("discovery.k8s.io", "EndpointSlice") => {
                let slice: EndpointSlice = reader.read(value, true)?;
                let service = slice.labels().get(SERVICE_NAME_LABEL).cloned().unwrap_or_default();
                let key = ObjectKey::new(slice.namespace().unwrap_or_default(), service);
                self.endpoint_slices.entry(key).or_default().push(Arc::new(slice));
            }
            ("", "Secret") => {
                let secret: Secret = reader.read(value, true)?;
                self.secrets.insert(ObjectKey::of(&secret), Arc::new(secret));
            }
            ("", "Namespace") => {
                let namespace: Namespace = reader.read(value, false)?;
                self.namespaces.insert(namespace.name_any(), namespace.labels().clone());
            }
            _ => {
                return Err(LoadError::UnknownKind {
                    source_name: source_name.to_string(),
                    document,
                    api_version,
                    kind,
                });
            }
        }
        Ok(())
    }
}

/// Decodes one document into its typed object.
struct Reader<'a> {
    source_name: &'a str,
    document: usize,
    kind: &'a str,
}

impl Reader<'_> {
    fn read<K: DeserializeOwned + ResourceExt>(
        &self,
        value: serde_json::Value,
        namespaced: bool,
    ) -> Result<K, LoadError> {
        let name = value
            .pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .unwrap_or("(unnamed)")
            .to_string();
        let mut object: K = serde_json::from_value(value).map_err(|e| LoadError::Invalid {
            source_name: self.source_name.to_string(),
            document: self.document,
            kind: self.kind.to_string(),
            name: name.clone(),
            message: e.to_string(),
        })?;
        if object.meta().name.as_deref().unwrap_or_default().is_empty() {
            return Err(LoadError::Invalid {
                source_name: self.source_name.to_string(),
                document: self.document,
                kind: self.kind.to_string(),
                name,
                message: "metadata.name is missing".into(),
            });
        }
        if namespaced && object.meta().namespace.is_none() {
            object.meta_mut().namespace = Some("default".into());
        }
        Ok(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_of_every_kind_are_read_and_namespaces_default() {
        let mut objects = Objects::default();
        objects
            .add_yaml(
                "test.yaml",
                r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: kongress}
spec: {controllerName: kongress.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec: {}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: shop, labels: {team: shop}}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: web-abc, namespace: shop, labels: {kubernetes.io/service-name: web}}
  addressType: IPv4
  endpoints: []
---
"#,
            )
            .expect("valid input");
        assert_eq!(objects.classes.len(), 1);
        assert_eq!(objects.routes.http[0].metadata.namespace.as_deref(), Some("default"));
        assert_eq!(objects.namespaces["shop"]["team"], "shop");
        assert!(objects.endpoint_slices.contains_key(&ObjectKey::new("shop", "web")));
    }

    #[test]
    fn an_unknown_kind_is_an_error_naming_the_file_and_document() {
        let error = Objects::default()
            .add_yaml("in.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n")
            .expect_err("Pods are not read");
        assert!(error.to_string().starts_with("in.yaml: document 1 is a Pod"), "{error}");
    }

    #[test]
    fn a_document_that_does_not_match_its_schema_is_an_error() {
        let error = Objects::default()
            .add_yaml(
                "in.yaml",
                "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec: {listeners: 3}\n",
            )
            .expect_err("listeners must be a list");
        assert!(
            error.to_string().contains("(Gateway g) does not match its schema"),
            "{error}"
        );
    }

    #[test]
    fn broken_yaml_is_an_error_not_a_panic() {
        assert!(Objects::default().add_yaml("in.yaml", "a: [b\n").is_err());
        assert!(Objects::default().add_yaml("in.yaml", "just text\n").is_err());
    }
}
