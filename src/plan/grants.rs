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
