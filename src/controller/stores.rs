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

/// How often a waiter looks at a cache's readiness again.
const READY_POLL: Duration = Duration::from_millis(100);

/// Waits for one cache's first list. kube signals readiness through a oneshot channel,
/// which keeps the waker of the last task that polled it only: with several waiters (the
/// reconciles of several classes, the readiness check) the others would sleep until their
/// timeout. Polling again every 100 ms bounds a lost wake-up to that.
async fn ready<K>(store: &Store<K>) -> Result<(), kube::runtime::reflector::store::WriterDropped>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        if let Ok(result) = tokio::time::timeout(READY_POLL, store.wait_until_ready()).await {
            return result;
        }
    }
}

async fn ready_if_watched<K>(store: &Option<Store<K>>) -> Result<(), kube::runtime::reflector::store::WriterDropped>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    match store {
        Some(store) => ready(store).await,
        None => Ok(()),
    }
}

impl Stores {
    /// Waits until every cache holds its first full list. Acting on a partial cache
    /// could look like "no Gateways left" and tear down a serving data plane.
    pub async fn wait_until_ready(&self) -> Result<(), ReconcileError> {
        let all = async {
            ready(&self.classes).await?;
            ready(&self.gateways).await?;
            ready(&self.secrets).await?;
            ready(&self.grants).await?;
            ready(&self.proxies).await?;
            ready(&self.deployments).await?;
            ready(&self.services).await?;
            ready(&self.endpoint_slices).await?;
            ready(&self.namespaces).await?;
            ready_if_watched(&self.routes.http).await?;
            ready_if_watched(&self.routes.grpc).await?;
            ready_if_watched(&self.routes.tls).await?;
            ready_if_watched(&self.routes.tcp).await?;
            ready_if_watched(&self.routes.udp).await?;
            ready(&self.crds).await
        };
        match tokio::time::timeout(READY_TIMEOUT, all).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(ReconcileError::CachesNotReady),
        }
    }
}
