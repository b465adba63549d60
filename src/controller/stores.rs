//! The watch caches the reconciler reads, one reflector per kind.

use std::sync::Arc;
use std::time::Duration;

use gateway_api::gatewayclasses::GatewayClass;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

use super::error::ReconcileError;
use crate::api::{Gateway, KongProxy, ObjectKey, ReferenceGrant};
use crate::plan::SecretLookup;
use crate::translate::routes::{GrpcRoute, HttpRoute, TcpRoute, TlsRoute, UdpRoute};

/// How long a reconcile waits for the first list of every cache.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Route caches; a kind whose CRD is not installed has no cache (and no routes).
#[derive(Clone, Default)]
pub struct RouteStores {
    pub http: Option<Store<HttpRoute>>,
    pub grpc: Option<Store<GrpcRoute>>,
    pub tls: Option<Store<TlsRoute>>,
    pub tcp: Option<Store<TcpRoute>>,
    pub udp: Option<Store<UdpRoute>>,
}

#[derive(Clone)]
pub struct Stores {
    pub classes: Store<GatewayClass>,
    pub gateways: Store<Gateway>,
    pub secrets: Store<Secret>,
    pub grants: Store<ReferenceGrant>,
    pub proxies: Store<KongProxy>,
    /// Only the Deployments kongress manages.
    pub deployments: Store<Deployment>,
    /// Every Service: route backends and the data planes' own Services.
    pub services: Store<Service>,
    pub endpoint_slices: Store<EndpointSlice>,
    pub namespaces: Store<Namespace>,
    pub routes: RouteStores,
    pub crds: Store<PartialObjectMeta<CustomResourceDefinition>>,
}

impl SecretLookup for Store<Secret> {
    fn secret(&self, key: &ObjectKey) -> Option<Arc<Secret>> {
        self.get(&ObjectRef::new(&key.name).within(&key.namespace))
    }
}

async fn ready<K>(store: &Option<Store<K>>) -> Result<(), kube::runtime::reflector::store::WriterDropped>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    match store {
        Some(store) => store.wait_until_ready().await,
        None => Ok(()),
    }
}

impl Stores {
    /// Waits until every cache holds its first full list. Acting on a partial cache
    /// could look like "no Gateways left" and tear down a serving data plane.
    pub async fn wait_until_ready(&self) -> Result<(), ReconcileError> {
        let all = async {
            self.classes.wait_until_ready().await?;
            self.gateways.wait_until_ready().await?;
            self.secrets.wait_until_ready().await?;
            self.grants.wait_until_ready().await?;
            self.proxies.wait_until_ready().await?;
            self.deployments.wait_until_ready().await?;
            self.services.wait_until_ready().await?;
            self.endpoint_slices.wait_until_ready().await?;
            self.namespaces.wait_until_ready().await?;
            ready(&self.routes.http).await?;
            ready(&self.routes.grpc).await?;
            ready(&self.routes.tls).await?;
            ready(&self.routes.tcp).await?;
            ready(&self.routes.udp).await?;
            self.crds.wait_until_ready().await
        };
        match tokio::time::timeout(READY_TIMEOUT, all).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(ReconcileError::CachesNotReady),
        }
    }
}
