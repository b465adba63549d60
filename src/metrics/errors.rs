//! Reconcile errors sorted into the few categories an alert can act on.

use crate::controller::ReconcileError;

/// What went wrong, as the `category` label of `kongress_reconcile_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCategory {
    /// 409: a write based on a stale cache; retried at once, harmless unless it persists.
    WriteConflict,
    /// 401/403: RBAC does not allow a request; needs an operator's fix.
    Forbidden,
    /// 400/422 and other refusals: the API server (or an admission policy) refused what
    /// kongress rendered; the Gateways say why.
    Invalid,
    /// 404 on a write: the object went away meanwhile.
    NotFound,
    /// 429, 5xx, timeouts and connection failures: the API server is busy or unreachable.
    ApiUnavailable,
    /// A write refused because this process lost the leader election meanwhile.
    NotLeader,
    /// The caches did not finish their first list in time.
    CachesNotReady,
    /// Issuing or loading a certificate failed.
    Certificate,
    Other,
}

impl ErrorCategory {
    pub const ALL: [ErrorCategory; 9] = [
        ErrorCategory::WriteConflict,
        ErrorCategory::Forbidden,
        ErrorCategory::Invalid,
        ErrorCategory::NotFound,
        ErrorCategory::ApiUnavailable,
        ErrorCategory::NotLeader,
        ErrorCategory::CachesNotReady,
        ErrorCategory::Certificate,
        ErrorCategory::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::WriteConflict => "write_conflict",
            ErrorCategory::Forbidden => "forbidden",
            ErrorCategory::Invalid => "invalid",
            ErrorCategory::NotFound => "not_found",
            ErrorCategory::ApiUnavailable => "api_unavailable",
            ErrorCategory::NotLeader => "not_leader",
            ErrorCategory::CachesNotReady => "caches_not_ready",
            ErrorCategory::Certificate => "certificate",
            ErrorCategory::Other => "other",
        }
    }
}

/// The category of a reconcile error.
pub fn categorize(error: &ReconcileError) -> ErrorCategory {
    match error {
        ReconcileError::Kube(error) => categorize_kube(error),
        ReconcileError::Write { source, .. } => categorize_kube(source),
        ReconcileError::Pki(_) => ErrorCategory::Certificate,
        ReconcileError::CachesNotReady => ErrorCategory::CachesNotReady,
        ReconcileError::Encode { .. } | ReconcileError::Listen { .. } => ErrorCategory::Other,
    }
}

fn categorize_kube(error: &kube::Error) -> ErrorCategory {
    match error {
        kube::Error::Api(status) => match status.code {
            409 => ErrorCategory::WriteConflict,
            401 | 403 => ErrorCategory::Forbidden,
            404 | 410 => ErrorCategory::NotFound,
            429 => ErrorCategory::ApiUnavailable,
            code if code >= 500 => ErrorCategory::ApiUnavailable,
            code if (400..500).contains(&code) => ErrorCategory::Invalid,
            _ => ErrorCategory::Other,
        },
        error if crate::leader::is_not_leader(error) => ErrorCategory::NotLeader,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            ErrorCategory::ApiUnavailable
        }
        _ => ErrorCategory::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16) -> kube::Error {
        let mut status = Status::failure("refused", "Reason");
        status.code = code;
        kube::Error::Api(Box::new(status))
    }

    fn write(source: kube::Error) -> ReconcileError {
        ReconcileError::Write {
            verb: "apply",
            kind: "Deployment".into(),
            object: "ns/kong".into(),
            source: Box::new(source),
        }
    }

    #[test]
    fn api_status_codes_map_to_the_category_an_operator_acts_on() {
        let table = [
            (409, ErrorCategory::WriteConflict),
            (403, ErrorCategory::Forbidden),
            (401, ErrorCategory::Forbidden),
            (422, ErrorCategory::Invalid),
            (400, ErrorCategory::Invalid),
            (404, ErrorCategory::NotFound),
            (429, ErrorCategory::ApiUnavailable),
            (500, ErrorCategory::ApiUnavailable),
            (503, ErrorCategory::ApiUnavailable),
        ];
        for (code, category) in table {
            assert_eq!(categorize(&write(api(code))), category, "write answered {code}");
            assert_eq!(
                categorize(&ReconcileError::Kube(api(code))),
                category,
                "read answered {code}"
            );
        }
    }

    #[test]
    fn errors_without_a_status_have_their_own_categories() {
        assert_eq!(
            categorize(&ReconcileError::CachesNotReady),
            ErrorCategory::CachesNotReady
        );
        let not_leader = kube::Error::Service(Box::new(crate::leader::NotLeader));
        assert_eq!(categorize(&write(not_leader)), ErrorCategory::NotLeader);
        let unreachable = kube::Error::Service("connection refused".into());
        assert_eq!(categorize(&write(unreachable)), ErrorCategory::ApiUnavailable);
        let encode = serde_json::from_str::<u8>("x").expect_err("not JSON");
        assert_eq!(
            categorize(&ReconcileError::Encode {
                what: "status",
                source: encode
            }),
            ErrorCategory::Other
        );
    }

    #[test]
    fn category_labels_are_distinct() {
        let all = ErrorCategory::ALL;
        let labels: std::collections::BTreeSet<&str> = all.iter().map(|c| c.as_str()).collect();
        assert_eq!(labels.len(), all.len());
    }
}
