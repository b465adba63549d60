//! Resolution of a listener's `tls.certificateRefs`.

use std::collections::BTreeSet;
use std::sync::Arc;

use gateway_api::gateways::GatewayListenersTlsCertificateRefs;

use super::grants::{CrossNamespaceRef, reference_permitted};
use super::{SecretLookup, Verdict};
use crate::api::conditions::reasons;
use crate::api::{GATEWAY_API_GROUP, ObjectKey, ReferenceGrant};
use crate::pki::validate_tls_secret;

pub(super) struct CertificateOutcome {
    /// How many references point at a usable certificate.
    pub usable: usize,
    /// The first problem found, as a ResolvedRefs verdict.
    pub problem: Option<Verdict>,
}

/// The Secrets a listener's certificate references name. Two listeners with the same set
/// present the same certificates, whatever order or Gateway namespace they are written in.
pub(super) fn referenced_secrets(
    gateway_namespace: &str,
    refs: &[GatewayListenersTlsCertificateRefs],
) -> BTreeSet<ObjectKey> {
    refs.iter()
        .filter(|r| SecretRef::of_listener(r).is_core_secret())
        .map(|r| ObjectKey::new(r.namespace.as_deref().unwrap_or(gateway_namespace), &r.name))
        .collect()
}

pub(super) fn resolve(
    gateway_namespace: &str,
    refs: &[GatewayListenersTlsCertificateRefs],
    secrets: &dyn SecretLookup,
    grants: &[Arc<ReferenceGrant>],
) -> CertificateOutcome {
    let mut usable = 0;
    let mut problems: Vec<Verdict> = Vec::new();
    if refs.is_empty() {
        problems.push(Verdict::fail(
            reasons::INVALID_CERTIFICATE_REF,
            "Listener terminates TLS but tls.certificateRefs is empty",
        ));
    }
    for reference in refs {
        match check_one(gateway_namespace, reference, secrets, grants) {
            Ok(()) => usable += 1,
            Err(problem) => problems.push(problem),
        }
    }
    // RefNotPermitted outranks InvalidCertificateRef: it tells the user what to create.
    problems.sort_by_key(|p| p.reason != reasons::REF_NOT_PERMITTED);
    CertificateOutcome {
        usable,
        problem: problems.into_iter().next(),
    }
}

/// A reference to a certificate Secret, whichever field of the Gateway holds it.
pub(super) struct SecretRef<'r> {
    pub group: &'r str,
    pub kind: &'r str,
    pub namespace: Option<&'r str>,
    pub name: &'r str,
}

impl<'r> SecretRef<'r> {
    fn of_listener(reference: &'r GatewayListenersTlsCertificateRefs) -> Self {
        Self {
            group: reference.group.as_deref().unwrap_or(""),
            kind: reference.kind.as_deref().unwrap_or("Secret"),
            namespace: reference.namespace.as_deref(),
            name: &reference.name,
        }
    }

    fn is_core_secret(&self) -> bool {
        self.group.is_empty() && self.kind == "Secret"
    }
}

fn check_one(
    gateway_namespace: &str,
    reference: &GatewayListenersTlsCertificateRefs,
    secrets: &dyn SecretLookup,
    grants: &[Arc<ReferenceGrant>],
) -> Result<(), Verdict> {
    check_secret_ref(
        gateway_namespace,
        &SecretRef::of_listener(reference),
        reasons::INVALID_CERTIFICATE_REF,
        secrets,
        grants,
    )
    .map(|_| ())
}

/// Checks one certificate reference of a Gateway: permitted first (RefNotPermitted), then a
/// core Secret that exists and holds a valid TLS pair (`invalid_reason` otherwise). Returns
/// the Secret's key when it can be used.
pub(super) fn check_secret_ref(
    gateway_namespace: &str,
    reference: &SecretRef<'_>,
    invalid_reason: &'static str,
    secrets: &dyn SecretLookup,
    grants: &[Arc<ReferenceGrant>],
) -> Result<ObjectKey, Verdict> {
    let SecretRef { group, kind, name, .. } = *reference;
    let namespace = reference.namespace.unwrap_or(gateway_namespace);
    let key = ObjectKey::new(namespace, name);
    // The grant comes first, checked for the reference's own group and kind: the spec
    // allows the invalid-reference reasons only for references that are permitted.
    let permitted = reference_permitted(
        &CrossNamespaceRef {
            from_group: GATEWAY_API_GROUP,
            from_kind: "Gateway",
            from_namespace: gateway_namespace,
            to_group: group,
            to_kind: kind,
            to_namespace: namespace,
            to_name: name,
        },
        grants,
    );
    if !permitted {
        let what = if reference.is_core_secret() {
            format!("Secret {key}")
        } else {
            format!("{}/{kind} {key}", display_group(group))
        };
        return Err(Verdict::fail(
            reasons::REF_NOT_PERMITTED,
            format!(
                "{what} is in another namespace and no ReferenceGrant in {namespace} allows Gateways from {gateway_namespace} to use it"
            ),
        ));
    }
    if !reference.is_core_secret() {
        return Err(Verdict::fail(
            invalid_reason,
            format!(
                "Certificate reference to {}/{kind} {key} is not supported; use a core Secret",
                display_group(group)
            ),
        ));
    }
    let Some(secret) = secrets.secret(&key) else {
        return Err(Verdict::fail(invalid_reason, format!("Secret {key} does not exist")));
    };
    validate_tls_secret(&secret)
        .map(|()| key)
        .map_err(|message| Verdict::fail(invalid_reason, message))
}

/// The core group is the empty string; messages say so.
fn display_group(group: &str) -> &str {
    if group.is_empty() { "core" } else { group }
}
