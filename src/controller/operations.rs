//! The operations side of the operator, started before the controller: the shutdown
//! signal, leadership (and the election), metrics, health and their HTTP server, and the
//! background tasks that tie them to the controller's caches and push.

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::runtime::reflector::Store;
use tracing::info;

use super::error::ReconcileError;
use super::shutdown::{self, Shutdown};
use super::{Context, Settings};
use crate::leader::{Election, Leadership, Timing, gated_client};
use crate::metrics::health::Health;
use crate::metrics::server::{self, Endpoints};
use crate::metrics::{LiveState, Metrics};

/// What the operations side hands the controller.
pub struct Ops {
    pub leadership: Leadership,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub shutdown: Shutdown,
    election: Option<tokio::task::JoinHandle<()>>,
}

impl Ops {
    /// Starts serving `/metrics`, `/healthz` and `/readyz`, and the election when enabled.
    /// Returns the client every controller request goes through: it refuses writes unless
    /// this process leads. The election's own Lease requests use `client` itself, and so
    /// does the CA Secret, created once by whichever replica starts first (the API server
    /// lets exactly one create succeed).
    pub async fn start(client: &Client, settings: &Settings) -> Result<(Ops, Client), ReconcileError> {
        let shutdown = shutdown::on_signals();
        let leadership = match settings.election {
            Some(_) => Leadership::standby(),
            None => Leadership::always(),
        };
        let metrics = Arc::new(Metrics::new());
        let lease_duration = settings
            .election
            .as_ref()
            .map_or(Timing::default().lease_duration, |e| e.timing.lease_duration);
        let health = Arc::new(Health::new(leadership.clone(), lease_duration));
        let listener = server::bind(settings.metrics_address)
            .await
            .map_err(|source| ReconcileError::Listen {
                address: settings.metrics_address,
                source,
            })?;
        info!(
            address = %listener.local_addr().unwrap_or(settings.metrics_address),
            "serving /metrics, /healthz and /readyz"
        );
        let endpoints = Endpoints {
            metrics: metrics.clone(),
            health: health.clone(),
        };
        tokio::spawn(server::serve(listener, Arc::new(endpoints)));
        let (gated, writes) = gated_client(client.clone(), leadership.clone());
        let election = settings.election.as_ref().map(|election| {
            let election = Election::new(client.clone(), election, leadership.clone(), writes);
            tokio::spawn(election.run(shutdown.clone()))
        });
        let ops = Ops {
            leadership,
            metrics,
            health,
            shutdown,
            election,
        };
        Ok((ops, gated))
    }

    /// Waits for the election to end after the shutdown signal: it has released the Lease
    /// (or left it to expire) by then.
    pub async fn finish(self) {
        if let Some(election) = self.election {
            let _ = election.await;
        }
    }
}

/// A stream that yields each time this process becomes the leader.
pub fn became_leader(leadership: &Leadership) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(leadership.watch(), |mut changes| async move {
        loop {
            changes.changed().await.ok()?;
            if *changes.borrow_and_update() {
                return Some(((), changes));
            }
        }
    })
}

/// The background tasks that tie the operations side to the controller: the readiness of
/// the caches, the scrape-time gauges, and stopping every push when leadership is lost.
pub fn spawn_tasks(context: &Arc<Context>, health: &Arc<Health>, kong_pods: Store<Pod>) {
    let stores = context.stores.clone();
    let synced = health.clone();
    tokio::spawn(async move {
        loop {
            if stores.wait_until_ready().await.is_ok() {
                synced.set_caches_synced();
                info!("watch caches synced");
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });

    let stores = context.stores.clone();
    let leadership = context.leadership.clone();
    context.metrics.set_live_source(move || {
        let routes = &stores.routes;
        let optional = |len: Option<usize>| len.unwrap_or(0);
        LiveState {
            leader: leadership.is_leader(),
            caches: vec![
                ("GatewayClass", stores.classes.len()),
                ("Gateway", stores.gateways.len()),
                ("HTTPRoute", optional(routes.http.as_ref().map(Store::len))),
                ("GRPCRoute", optional(routes.grpc.as_ref().map(Store::len))),
                ("TLSRoute", optional(routes.tls.as_ref().map(Store::len))),
                ("TCPRoute", optional(routes.tcp.as_ref().map(Store::len))),
                ("UDPRoute", optional(routes.udp.as_ref().map(Store::len))),
                ("ReferenceGrant", stores.grants.len()),
                ("KongProxy", stores.proxies.len()),
                ("Secret", stores.secrets.len()),
                ("Service", stores.services.len()),
                ("EndpointSlice", stores.endpoint_slices.len()),
                ("Namespace", stores.namespaces.len()),
                ("Deployment", stores.deployments.len()),
                ("Pod", kong_pods.len()),
                ("CustomResourceDefinition", stores.crds.len()),
            ],
            // The Deployment cache holds only the Kong Deployments kongress manages.
            data_planes: stores.deployments.len(),
        }
    });

    let context = context.clone();
    tokio::spawn(async move {
        let mut changes = context.leadership.watch();
        while changes.changed().await.is_ok() {
            if !*changes.borrow_and_update() {
                // Writes are refused by the gate already; no Kong pod gets a config either.
                context.push.stop_all();
            }
        }
    });
}
