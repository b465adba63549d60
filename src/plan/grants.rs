//! ReferenceGrant checks: may an object in one namespace refer to one in another?

use std::sync::Arc;

use crate::api::ReferenceGrant;

/// What refers to what, by group and kind (core group is the empty string).
#[derive(Clone, Copy, Debug)]
pub struct CrossNamespaceRef<'a> {
    pub from_group: &'a str,
    pub from_kind: &'a str,
    pub from_namespace: &'a str,
    pub to_group: &'a str,
    pub to_kind: &'a str,
    pub to_namespace: &'a str,
    pub to_name: &'a str,
}

/// True when the reference stays in its namespace or a ReferenceGrant in the
/// target namespace allows it. Grants elsewhere never count: only the owner of
/// the target namespace may open it up.
pub fn reference_permitted(reference: &CrossNamespaceRef<'_>, grants: &[Arc<ReferenceGrant>]) -> bool {
    if reference.from_namespace == reference.to_namespace {
        return true;
    }
    grants
        .iter()
        .filter(|grant| grant.metadata.namespace.as_deref() == Some(reference.to_namespace))
        .any(|grant| {
            let from_ok = grant.spec.from.iter().any(|from| {
                from.group == reference.from_group
                    && from.kind == reference.from_kind
                    && from.namespace == reference.from_namespace
            });
            let to_ok = grant.spec.to.iter().any(|to| {
                to.group == reference.to_group
                    && to.kind == reference.to_kind
                    && to.name.as_deref().is_none_or(|name| name == reference.to_name)
            });
            from_ok && to_ok
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_api::referencegrants::{ReferenceGrantFrom, ReferenceGrantSpec, ReferenceGrantTo};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    /// A Gateway in `apps` referring to the Secret `certs/cert`.
    fn gateway_to_secret() -> CrossNamespaceRef<'static> {
        CrossNamespaceRef {
            from_group: "gateway.networking.k8s.io",
            from_kind: "Gateway",
            from_namespace: "apps",
            to_group: "",
            to_kind: "Secret",
            to_namespace: "certs",
            to_name: "cert",
        }
    }

    fn grant(namespace: &str, from: (&str, &str, &str), to: (&str, &str, Option<&str>)) -> Arc<ReferenceGrant> {
        Arc::new(ReferenceGrant {
            metadata: ObjectMeta {
                name: Some("grant".into()),
                namespace: Some(namespace.into()),
                ..Default::default()
            },
            spec: ReferenceGrantSpec {
                from: vec![ReferenceGrantFrom {
                    group: from.0.into(),
                    kind: from.1.into(),
                    namespace: from.2.into(),
                }],
                to: vec![ReferenceGrantTo {
                    group: to.0.into(),
                    kind: to.1.into(),
                    name: to.2.map(str::to_string),
                }],
            },
        })
    }

    const GATEWAYS_FROM_APPS: (&str, &str, &str) = ("gateway.networking.k8s.io", "Gateway", "apps");

    #[test]
    fn a_reference_inside_its_namespace_needs_no_grant() {
        let mut reference = gateway_to_secret();
        reference.to_namespace = "apps";
        assert!(reference_permitted(&reference, &[]));
    }

    #[test]
    fn a_matching_grant_in_the_target_namespace_permits_the_reference() {
        let grants = [grant("certs", GATEWAYS_FROM_APPS, ("", "Secret", None))];
        assert!(reference_permitted(&gateway_to_secret(), &grants));
    }

    #[test]
    fn a_grant_for_another_from_kind_does_not_permit() {
        let grants = [grant(
            "certs",
            ("gateway.networking.k8s.io", "HTTPRoute", "apps"),
            ("", "Secret", None),
        )];
        assert!(!reference_permitted(&gateway_to_secret(), &grants));
    }

    #[test]
    fn a_grant_for_another_from_group_does_not_permit() {
        let grants = [grant("certs", ("example.com", "Gateway", "apps"), ("", "Secret", None))];
        assert!(!reference_permitted(&gateway_to_secret(), &grants));
    }

    #[test]
    fn a_grant_for_another_to_kind_does_not_permit() {
        let grants = [grant("certs", GATEWAYS_FROM_APPS, ("", "Service", None))];
        assert!(!reference_permitted(&gateway_to_secret(), &grants));
    }

    #[test]
    fn a_grant_for_another_to_group_does_not_permit() {
        let grants = [grant("certs", GATEWAYS_FROM_APPS, ("example.com", "Secret", None))];
        assert!(!reference_permitted(&gateway_to_secret(), &grants));
    }

    #[test]
    fn a_grant_naming_another_object_does_not_permit_but_one_naming_it_does() {
        let other = [grant("certs", GATEWAYS_FROM_APPS, ("", "Secret", Some("other")))];
        assert!(!reference_permitted(&gateway_to_secret(), &other));
        let named = [grant("certs", GATEWAYS_FROM_APPS, ("", "Secret", Some("cert")))];
        assert!(reference_permitted(&gateway_to_secret(), &named));
    }

    #[test]
    fn only_a_grant_in_the_target_namespace_counts() {
        let grants = [grant("apps", GATEWAYS_FROM_APPS, ("", "Secret", None))];
        assert!(!reference_permitted(&gateway_to_secret(), &grants));
    }
}
