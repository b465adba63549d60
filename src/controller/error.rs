//! Errors of a reconcile. Each is retried with backoff; none stops the operator.

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("certificate handling failed: {0}")]
    Pki(#[from] crate::pki::PkiError),
    #[error("could not encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("the watch caches are not ready yet")]
    CachesNotReady,
}
