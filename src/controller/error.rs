//! Errors of a reconcile. Each is retried with backoff; none stops the operator.

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    /// A write, named by what it did to which object.
    #[error("{verb} {kind} {object} failed: {source}")]
    Write {
        verb: &'static str,
        kind: String,
        /// `namespace/name`, or the name of a cluster-scoped object.
        object: String,
        #[source]
        source: Box<kube::Error>,
    },
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

impl ReconcileError {
    /// Whether the API server rejected a request as invalid or forbidden, which retrying
    /// alone will not fix: conflicts, throttling and missing objects are not refusals.
    pub fn is_refusal(&self) -> bool {
        let error = match self {
            ReconcileError::Kube(error) => error,
            ReconcileError::Write { source, .. } => source.as_ref(),
            _ => return false,
        };
        match error {
            kube::Error::Api(status) => (400..500).contains(&status.code) && ![404, 409, 429].contains(&status.code),
            _ => false,
        }
    }
}
