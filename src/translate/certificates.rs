//! Listener certificates → Kong certificates with SNIs.
//!
//! Every HTTPS and TLS-Terminate listener the planner programmed serves the first usable
//! Secret of its `certificateRefs` (the planner has already reported the others). A Secret
//! becomes one Kong certificate however many listeners use it, with the listeners' hostnames as
//! SNIs; the certificate id is a UUID derived from the Secret's `namespace/name`, so it stays
//! the same while the Secret's content changes and the config hash moves only with content.
//!
//! How Kong picks a certificate (Kong 3.9 `kong/runloop/certificate.lua`): the exact SNI, then
//! a wildcard one label deep (`*.example.com` for `a.example.com`, never `a.b.example.com`),
//! then `example.*`, then the SNI named `*`; a client sending no SNI at all gets Kong's own
//! default certificate (`ssl_cert`). Certificates are global to the data plane, not per port.
//! Consequences:
//! - a listener without hostname gets the SNI `*`, Kong's catch-all;
//! - a wildcard listener matches any depth in Gateway API but one label in Kong; when no
//!   listener without hostname claims `*`, the first wildcard listener's certificate gets `*`
//!   as well, so deeper names still receive it;
//! - one SNI can name one certificate only: when listeners on different ports name the same
//!   hostname with different Secrets, the listener first in planner precedence (older Gateway,
//!   then listener order) keeps the SNI.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use sha2::{Digest, Sha256};

use super::TranslateInput;
use super::kong;
use super::tags;
use crate::api::{GATEWAY_API_GROUP, Gateway, GatewayListeners, ObjectKey};
use crate::pki::validate_tls_secret;
use crate::plan::ListenerProtocol;
use crate::plan::grants::{CrossNamespaceRef, reference_permitted};

/// Kong's catch-all SNI.
const DEFAULT_SNI: &str = "*";

pub fn translate(input: &TranslateInput<'_>) -> Vec<kong::Certificate> {
    let gateways: BTreeMap<ObjectKey, &Arc<Gateway>> =
        input.gateways.iter().map(|g| (ObjectKey::of(g.as_ref()), g)).collect();
    // SNI → Secret, first claim wins; Secrets in order of first use.
    let mut sni_owner: BTreeMap<String, ObjectKey> = BTreeMap::new();
    let mut secrets: BTreeMap<ObjectKey, Arc<Secret>> = BTreeMap::new();
    let mut first_wildcard: Option<ObjectKey> = None;
    for plan in &input.plan.gateways {
        let Some(gateway) = gateways.get(&plan.key) else {
            continue;
        };
        for verdict in plan.listeners.iter().filter(|l| l.programmed) {
            let Some(listener) = gateway.spec.listeners.iter().find(|l| l.name == verdict.name) else {
                continue;
            };
            let tls_mode = listener.tls.as_ref().and_then(|t| t.mode.as_ref());
            if !ListenerProtocol::parse(&listener.protocol, tls_mode).is_some_and(ListenerProtocol::terminates_tls) {
                continue;
            }
            let Some((key, secret)) = usable_secret(input, &plan.key.namespace, listener) else {
                continue;
            };
            let sni = match listener.hostname.as_deref() {
                Some(hostname) => hostname.to_ascii_lowercase(),
                None => DEFAULT_SNI.to_string(),
            };
            if sni.starts_with("*.") && first_wildcard.is_none() {
                first_wildcard = Some(key.clone());
            }
            sni_owner.entry(sni).or_insert_with(|| key.clone());
            secrets.entry(key).or_insert(secret);
        }
    }
    if let Some(key) = first_wildcard {
        sni_owner.entry(DEFAULT_SNI.to_string()).or_insert(key);
    }

    let mut snis_of: BTreeMap<&ObjectKey, Vec<&str>> = BTreeMap::new();
    for (sni, key) in &sni_owner {
        snis_of.entry(key).or_default().push(sni);
    }
    // Backend client certificates: presented to backends, never chosen by SNI. A Secret that
    // is also a listener certificate stays one Kong certificate.
    let client_secrets: Vec<(ObjectKey, Arc<Secret>)> = input
        .plan
        .gateways
        .iter()
        .filter_map(|plan| plan.backend_client_certificate.as_ref()?.usable())
        .filter_map(|key| Some((key.clone(), input.secrets.secret(key)?)))
        .collect();
    for (key, secret) in &client_secrets {
        secrets.entry(key.clone()).or_insert_with(|| secret.clone());
    }
    for (key, _) in &client_secrets {
        snis_of.entry(key).or_default();
    }
    let mut certificates: Vec<kong::Certificate> = snis_of
        .into_iter()
        .filter_map(|(key, snis)| {
            let secret = secrets.get(key)?;
            let tags = secret_tags(key);
            Some(kong::Certificate {
                id: stable_id(key),
                cert: field(secret, "tls.crt")?,
                key: field(secret, "tls.key")?,
                snis: snis
                    .into_iter()
                    .map(|name| kong::Sni {
                        name: name.to_string(),
                        tags: tags.clone(),
                    })
                    .collect(),
                tags,
            })
        })
        .collect();
    certificates.sort_by(|a, b| a.id.cmp(&b.id));
    certificates
}

/// The first certificate reference of a listener Kong can serve: a core Secret, permitted
/// (same namespace or a ReferenceGrant), present and a valid TLS pair. The planner applies
/// the same checks to decide whether the listener is programmed.
fn usable_secret(
    input: &TranslateInput<'_>,
    gateway_namespace: &str,
    listener: &GatewayListeners,
) -> Option<(ObjectKey, Arc<Secret>)> {
    let refs = listener.tls.as_ref()?.certificate_refs.as_deref()?;
    refs.iter().find_map(|reference| {
        let group = reference.group.as_deref().unwrap_or("");
        let kind = reference.kind.as_deref().unwrap_or("Secret");
        if !group.is_empty() || kind != "Secret" {
            return None;
        }
        let namespace = reference.namespace.as_deref().unwrap_or(gateway_namespace);
        let permitted = reference_permitted(
            &CrossNamespaceRef {
                from_group: GATEWAY_API_GROUP,
                from_kind: "Gateway",
                from_namespace: gateway_namespace,
                to_group: "",
                to_kind: "Secret",
                to_namespace: namespace,
                to_name: &reference.name,
            },
            input.grants,
        );
        if !permitted {
            return None;
        }
        let key = ObjectKey::new(namespace, &reference.name);
        let secret = input.secrets.secret(&key)?;
        validate_tls_secret(&secret).ok()?;
        Some((key, secret))
    })
}

/// A Secret field as text (`data`, or `stringData` on objects that never met an API server).
fn field(secret: &Secret, name: &str) -> Option<String> {
    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(name)) {
        return String::from_utf8(bytes.0.clone()).ok();
    }
    secret.string_data.as_ref().and_then(|d| d.get(name)).cloned()
}

fn secret_tags(key: &ObjectKey) -> Vec<String> {
    tags::of(&tags::Source {
        group: "",
        version: "v1",
        kind: "Secret",
        key,
    })
}

/// A UUID-shaped id (version 8, RFC 9562 variant) from the SHA-256 of `namespace/name`.
pub(super) fn stable_id(key: &ObjectKey) -> String {
    let digest = Sha256::digest(format!("kongress certificate {key}"));
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::testing::Snapshot;

    fn gateway(name: &str, listeners: &str) -> String {
        format!(
            r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: infra}}
spec:
  gatewayClassName: kongress
  listeners: {listeners}
"#
        )
    }

    const SECRETS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: one, namespace: infra}
type: kubernetes.io/tls
---
apiVersion: v1
kind: Secret
metadata: {name: two, namespace: infra}
type: kubernetes.io/tls
"#;

    fn certificates(objects: &str) -> Vec<(String, Vec<String>)> {
        let snapshot = Snapshot::from_yaml(&format!("{SECRETS}\n---\n{objects}"));
        translate(&snapshot.input())
            .into_iter()
            .map(|c| {
                let secret = tags::parse(&c.tags).map(|s| s.key.name).unwrap_or_default();
                (secret, c.snis.into_iter().map(|s| s.name).collect())
            })
            .collect()
    }

    fn sorted(mut list: Vec<(String, Vec<String>)>) -> Vec<(String, Vec<String>)> {
        list.sort();
        list
    }

    fn pair(secret: &str, snis: &[&str]) -> (String, Vec<String>) {
        (secret.to_string(), snis.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn a_secret_used_by_several_listeners_is_one_certificate_with_their_hostnames() {
        let got = certificates(&gateway(
            "gw",
            "[{name: a, port: 443, protocol: HTTPS, hostname: a.example.com, tls: {certificateRefs: [{name: one}]}},
              {name: b, port: 443, protocol: HTTPS, hostname: B.example.com, tls: {certificateRefs: [{name: one}]}},
              {name: c, port: 8443, protocol: TLS, hostname: c.example.com, tls: {mode: Terminate, certificateRefs: [{name: one}]}}]",
        ));
        assert_eq!(got, [pair("one", &["a.example.com", "b.example.com", "c.example.com"])]);
    }

    #[test]
    fn a_listener_without_hostname_serves_its_certificate_for_any_sni() {
        let got = certificates(&gateway(
            "gw",
            "[{name: a, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: one}]}},
              {name: b, port: 443, protocol: HTTPS, hostname: '*.example.com', tls: {certificateRefs: [{name: two}]}}]",
        ));
        assert_eq!(sorted(got), [pair("one", &["*"]), pair("two", &["*.example.com"])]);
    }

    #[test]
    fn a_wildcard_listener_also_takes_the_catch_all_when_nobody_else_does() {
        let got = certificates(&gateway(
            "gw",
            "[{name: b, port: 443, protocol: HTTPS, hostname: '*.example.com', tls: {certificateRefs: [{name: two}]}}]",
        ));
        assert_eq!(got, [pair("two", &["*", "*.example.com"])]);
    }

    #[test]
    fn an_sni_claimed_twice_stays_with_the_first_listener_in_precedence() {
        let got = certificates(&gateway(
            "gw",
            "[{name: a, port: 443, protocol: HTTPS, hostname: a.example.com, tls: {certificateRefs: [{name: one}]}},
              {name: b, port: 8443, protocol: HTTPS, hostname: a.example.com, tls: {certificateRefs: [{name: two}]}}]",
        ));
        assert_eq!(got, [pair("one", &["a.example.com"])]);
    }

    #[test]
    fn passthrough_and_plain_listeners_have_no_certificates() {
        let got = certificates(&gateway(
            "gw",
            "[{name: p, port: 443, protocol: TLS, hostname: p.example.com, tls: {mode: Passthrough, certificateRefs: [{name: one}]}},
              {name: h, port: 80, protocol: HTTP}]",
        ));
        assert!(got.is_empty());
    }

    #[test]
    fn listeners_that_are_not_programmed_have_no_certificates() {
        // Same port, same hostname, different Secrets inside one Gateway: both lose.
        let got = certificates(&gateway(
            "gw",
            "[{name: a, port: 443, protocol: HTTPS, hostname: a.example.com, tls: {certificateRefs: [{name: one}]}},
              {name: b, port: 443, protocol: HTTPS, hostname: a.example.com, tls: {certificateRefs: [{name: two}]}}]",
        ));
        assert!(got.is_empty());
    }

    #[test]
    fn unusable_references_are_skipped_for_the_next_one() {
        let got = certificates(&gateway(
            "gw",
            "[{name: a, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: missing}, {name: two}]}}]",
        ));
        assert_eq!(got, [pair("two", &["*"])]);
    }

    #[test]
    fn certificate_ids_are_uuids_stable_per_secret() {
        let one = stable_id(&ObjectKey::new("infra", "one"));
        assert_eq!(one, stable_id(&ObjectKey::new("infra", "one")));
        assert_ne!(one, stable_id(&ObjectKey::new("infra", "two")));
        let groups: Vec<usize> = one.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(one.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn certificates_carry_the_secret_content_and_tags() {
        let snapshot = Snapshot::from_yaml(&format!(
            "{SECRETS}\n---\n{}",
            gateway(
                "gw",
                "[{name: a, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: one}]}}]"
            )
        ));
        let certificates = translate(&snapshot.input());
        assert!(certificates[0].cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(certificates[0].key.contains("PRIVATE KEY"));
        assert!(certificates[0].tags.contains(&"k8s-kind:Secret".to_string()));
        assert!(certificates[0].snis[0].tags.contains(&"k8s-name:one".to_string()));
    }
}
