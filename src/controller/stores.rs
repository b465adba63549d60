//! The watch caches the reconciler reads, one reflector per kind.

use std::time::Duration;

use gateway_api::gatewayclasses::GatewayClass;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::PartialObjectMeta;
use std::sync::Arc;

use kube::runtime::reflector::{ObjectRef, Store};

use super::error::ReconcileError;
use crate::api::{Gateway, KongProxy, ObjectKey, ReferenceGrant};
use crate::plan::SecretLookup;

/// How long a reconcile waits for the first list of every cache.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Stores {
    pub classes: Store<GatewayClass>,
    pub gateways: Store<Gateway>,
    pub secrets: Store<Secret>,
    pub grants: Store<ReferenceGrant>,
    pub proxies: Store<KongProxy>,
    pub deployments: Store<Deployment>,
    pub services: Store<Service>,
    pub crds: Store<PartialObjectMeta<CustomResourceDefinition>>,
}

impl SecretLookup for Store<Secret> {
    fn secret(&self, key: &ObjectKey) -> Option<Arc<Secret>> {
        self.get(&ObjectRef::new(&key.name).within(&key.namespace))
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
            self.crds.wait_until_ready().await
        };
        match tokio::time::timeout(READY_TIMEOUT, all).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(ReconcileError::CachesNotReady),
        }
    }
}
