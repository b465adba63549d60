//! The Gateway's `spec.tls.backend.clientCertificateRef`: the certificate Kong presents when
//! it opens TLS to a backend of this Gateway's routes.

use std::sync::Arc;

use super::certificates::{SecretRef, check_secret_ref};
use super::{SecretLookup, Verdict};
use crate::api::conditions::reasons;
use crate::api::{Gateway, ObjectKey, ReferenceGrant};

/// What the planner made of a Gateway's backend client certificate reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendClientCertificate {
    /// The Secret to present: permitted, present, a valid TLS pair.
    Usable(ObjectKey),
    /// Why it cannot be used (`RefNotPermitted` or `InvalidClientCertificateRef`); the
    /// Gateway's routes are then served without a client certificate.
    Invalid(Verdict),
}

impl BackendClientCertificate {
    pub fn usable(&self) -> Option<&ObjectKey> {
        match self {
            Self::Usable(key) => Some(key),
            Self::Invalid(_) => None,
        }
    }
}

/// Resolves the reference; `None` when the Gateway names no backend client certificate.
pub(super) fn resolve(
    gateway: &Gateway,
    secrets: &dyn SecretLookup,
    grants: &[Arc<ReferenceGrant>],
) -> Option<BackendClientCertificate> {
    let reference = gateway
        .spec
        .tls
        .as_ref()?
        .backend
        .as_ref()?
        .client_certificate_ref
        .as_ref()?;
    let namespace = gateway.metadata.namespace.as_deref().unwrap_or_default();
    let reference = SecretRef {
        group: reference.group.as_deref().unwrap_or(""),
        kind: reference.kind.as_deref().unwrap_or("Secret"),
        namespace: reference.namespace.as_deref(),
        name: &reference.name,
    };
    Some(
        match check_secret_ref(
            namespace,
            &reference,
            reasons::INVALID_CLIENT_CERTIFICATE_REF,
            secrets,
            grants,
        ) {
            Ok(key) => BackendClientCertificate::Usable(key),
            Err(problem) => BackendClientCertificate::Invalid(Verdict {
                message: format!("spec.tls.backend.clientCertificateRef: {}", problem.message),
                ..problem
            }),
        },
    )
}
