//! The write gate: a Kubernetes client that sends requests which change the cluster (POST,
//! PUT, PATCH, DELETE) only while this process leads, and counts those in flight.
//!
//! Every write of the controller (server-side apply, deletes, finalizers, status patches,
//! Events) goes through one client; wrapping that client checks leadership at the moment a
//! request leaves, whatever code path built it. Reads and watches pass untouched, so a
//! standby keeps its caches warm. The election itself uses the plain client.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use tokio::sync::Notify;

use super::Leadership;

/// Every write that leaves the gate, and every one it refuses, is logged (at debug) under
/// this target with its method and path: the record of which process wrote when.
pub const GATE_LOG_TARGET: &str = "kongress::gate";

/// The error of a write attempted by a process that does not lead.
#[derive(Debug, thiserror::Error)]
#[error("not the leader: kongress writes only while it holds the leader election Lease")]
pub struct NotLeader;

/// Whether a request changes the cluster.
pub fn is_write(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
}

/// Writes that left the gate and have not been answered yet.
#[derive(Debug, Default)]
pub struct WritesInFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl WritesInFlight {
    fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until no write is in flight, at most `limit`. Returns whether none is left.
    pub async fn drain(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let idle = self.idle.notified();
                if self.count() == 0 {
                    return;
                }
                idle.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

struct InFlightGuard(Arc<WritesInFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// The gate as a tower service in front of the plain client.
#[derive(Clone)]
struct Gate {
    client: Client,
    leadership: Leadership,
    writes: Arc<WritesInFlight>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Request<Body>> for Gate {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let guard = if is_write(request.method()) {
            let method = request.method().as_str();
            let path = request.uri().path();
            if !self.leadership.is_leader() {
                tracing::debug!(target: GATE_LOG_TARGET, method, path, "write refused: not the leader");
                return Box::pin(std::future::ready(Err(Box::new(NotLeader) as BoxError)));
            }
            tracing::debug!(target: GATE_LOG_TARGET, method, path, "write sent");
            Some(self.writes.enter())
        } else {
            None
        };
        let client = self.client.clone();
        Box::pin(async move {
            let response = client.send(request).await;
            drop(guard);
            response.map_err(|e| Box::new(e) as BoxError)
        })
    }
}

/// A client that writes only while `leadership` says this process leads, and the count of
/// its writes in flight (the election waits for them before it releases the Lease).
pub fn gated_client(client: Client, leadership: Leadership) -> (Client, Arc<WritesInFlight>) {
    let writes = Arc::new(WritesInFlight::default());
    let namespace = client.default_namespace().to_string();
    let gate = Gate {
        client,
        leadership,
        writes: writes.clone(),
    };
    (Client::new(gate, namespace), writes)
}

/// Whether a client error is the gate's refusal.
pub fn is_not_leader(error: &kube::Error) -> bool {
    match error {
        kube::Error::Service(source) => source.downcast_ref::<NotLeader>().is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::Api;
    use kube::api::PostParams;

    /// A client whose every request fails to connect (nothing listens on port 9 of loopback),
    /// so a test can tell "refused by the gate" from "sent".
    fn unreachable_client() -> Client {
        let config = kube::Config::new("https://127.0.0.1:9".parse().expect("uri"));
        Client::try_from(config).expect("client")
    }

    #[test]
    fn only_requests_that_change_the_cluster_are_writes() {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(is_write(&method), "{method}");
        }
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(!is_write(&method), "{method}");
        }
    }

    #[tokio::test]
    async fn a_standby_write_is_refused_before_it_leaves_and_reads_pass() {
        let (client, writes) = gated_client(unreachable_client(), Leadership::standby());
        let api: Api<ConfigMap> = Api::namespaced(client, "default");
        let write = api.create(&PostParams::default(), &ConfigMap::default()).await;
        let error = write.expect_err("refused");
        assert!(is_not_leader(&error), "{error}");
        let read = api.get_opt("x").await.expect_err("nothing listens");
        assert!(!is_not_leader(&read), "reads are not gated: {read}");
        assert_eq!(writes.count(), 0);
    }

    #[tokio::test]
    async fn a_leader_write_leaves_the_gate_and_is_counted_until_answered() {
        let (client, writes) = gated_client(unreachable_client(), Leadership::always());
        let api: Api<ConfigMap> = Api::namespaced(client, "default");
        let error = api
            .create(&PostParams::default(), &ConfigMap::default())
            .await
            .expect_err("nothing listens");
        assert!(!is_not_leader(&error), "sent, failed to connect: {error}");
        assert_eq!(writes.count(), 0, "answered writes are no longer in flight");
        assert!(writes.drain(Duration::from_millis(10)).await);
    }

    #[tokio::test]
    async fn drain_waits_for_the_last_write() {
        let writes = Arc::new(WritesInFlight::default());
        let guard = writes.enter();
        assert!(
            !writes.drain(Duration::from_millis(20)).await,
            "one write still in flight"
        );
        let waiter = {
            let writes = writes.clone();
            tokio::spawn(async move { writes.drain(Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(guard);
        assert!(waiter.await.expect("join"));
    }
}
