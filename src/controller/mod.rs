//! The thin shell: watches feed caches, a GatewayClass controller reconciles
//! through the pure core, and writes go back to the API server.

mod admin_tls;
mod apply;
mod error;
mod observe;
mod reconcile;
mod stores;
mod triggers;

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use futures::{Stream, StreamExt};
use gateway_api::gatewayclasses::GatewayClass;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, reflector::reflector, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

pub use admin_tls::CA_SECRET_NAME;
pub use apply::WRITE_LOG_TARGET;
pub use error::ReconcileError;
use stores::Stores;

use crate::api::labels::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::api::{Gateway, KongProxy, ReferenceGrant};
use crate::pki::CertificateAuthority;

/// Operator settings from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespace of the operator: home of its CA and of data planes whose class has no KongProxy.
    pub namespace: String,
    /// How many GatewayClasses may reconcile at once.
    pub concurrency: u16,
    /// Identity in Events (usually the pod name).
    pub instance: Option<String>,
}

/// Shared state of every reconcile.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub stores: Stores,
    pub recorder: Recorder,
    /// Signs the admin API certificates; loaded (or created) once at start.
    pub ca: CertificateAuthority,
}

/// Requeue delay after a failed reconcile; conflicts from stale caches resolve quickly.
fn error_policy(_class: Arc<GatewayClass>, error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    warn!(%error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

/// A watch of `api` that keeps a cache up to date, and the stream of objects it
/// touched, which triggers reconciles once the controller polls it.
fn cached<K>(api: Api<K>, config: watcher::Config) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (store, writer) = kube::runtime::reflector::store();
    let events = reflector(writer, watcher(api, config))
        .default_backoff()
        .touched_objects();
    (store, events)
}

/// Runs the controllers until a shutdown signal arrives.
pub async fn run(client: Client, settings: Settings) -> Result<(), ReconcileError> {
    // The API server may still be starting with us (or the namespace being created):
    // retry for a while before giving up and letting the pod restart.
    let ca = (|| admin_tls::load_or_create_ca(&client, &settings.namespace))
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(10))
                .with_total_delay(Some(Duration::from_secs(120)))
                .without_max_times()
                .with_jitter(),
        )
        .notify(|error, delay| warn!(%error, ?delay, "could not load the operator CA; retrying"))
        .await?;
    info!(namespace = %settings.namespace, "operator CA ready");

    let managed = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"));

    let (gateways, gateway_events) = cached(Api::<Gateway>::all(client.clone()), watcher::Config::default());
    let (secrets, secret_events) = cached(Api::<Secret>::all(client.clone()), watcher::Config::default());
    let (grants, grant_events) = cached(Api::<ReferenceGrant>::all(client.clone()), watcher::Config::default());
    let (proxies, proxy_events) = cached(Api::<KongProxy>::all(client.clone()), watcher::Config::default());
    let (deployments, deployment_events) = cached(Api::<Deployment>::all(client.clone()), managed.clone());
    let (services, service_events) = cached(Api::<Service>::all(client.clone()), managed);
    let (crds, crd_events) = cached(
        Api::<PartialObjectMeta<CustomResourceDefinition>>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={}", reconcile::GATEWAY_CRD_NAME)),
    );

    let controller = Controller::new(Api::<GatewayClass>::all(client.clone()), watcher::Config::default()).with_config(
        kube::runtime::controller::Config::default()
            .concurrency(settings.concurrency)
            .debounce(Duration::from_millis(200)),
    );
    let classes = controller.store();
    let stores = Stores {
        classes: classes.clone(),
        gateways: gateways.clone(),
        secrets,
        grants,
        proxies,
        deployments,
        services,
        crds,
    };
    let reporter = Reporter {
        controller: "kongress".into(),
        instance: settings.instance.clone(),
    };
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        settings: settings.clone(),
        stores,
        ca,
    });

    let gateway_trigger = triggers::GatewayTrigger::new(gateways.clone());
    let gateways_for_secrets = gateways.clone();
    let gateways_for_grants = gateways.clone();
    let classes_for_proxies = classes.clone();
    let classes_for_crds = classes.clone();
    controller
        .watches_stream(gateway_events, move |gateway| gateway_trigger.classes_for(&gateway))
        .watches_stream(secret_events, move |secret| {
            triggers::classes_for_secret(&secret, &gateways_for_secrets)
        })
        .watches_stream(grant_events, move |grant| {
            triggers::classes_for_grant(&grant, &gateways_for_grants)
        })
        .watches_stream(proxy_events, move |proxy| {
            triggers::classes_for_proxy(&proxy, &classes_for_proxies)
        })
        .watches_stream(crd_events, move |_crd| triggers::all_owned_classes(&classes_for_crds))
        // Not `owns_stream`: it would look the cluster-scoped owner up in the child's namespace.
        .watches_stream(deployment_events, |deployment| triggers::class_of_managed(&deployment))
        .watches_stream(service_events, |service| triggers::class_of_managed(&service))
        .shutdown_on_signal()
        .run(reconcile::reconcile, error_policy, context)
        .for_each(|result| async move {
            match result {
                Ok((class, _)) => tracing::debug!(gateway_class = %class.name, "reconciled"),
                Err(error) => tracing::debug!(%error, "reconcile error"),
            }
        })
        .await;
    Ok(())
}
