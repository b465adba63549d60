//! The operator CA and each data plane's admin-API server certificate, kept in Secrets.

use std::collections::BTreeMap;

use chrono::Utc;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};

use super::error::ReconcileError;
use crate::api::labels::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::pki::{CertificateAuthority, LEAF_VALIDITY, needs_renewal_for_names};
use crate::render::DataPlaneNames;

/// Name of the Secret that holds kongress's CA, in the operator's namespace.
pub const CA_SECRET_NAME: &str = "kongress-ca";
const CA_COMMON_NAME: &str = "kongress admin API CA";

const CERT_KEY: &str = "tls.crt";
const KEY_KEY: &str = "tls.key";
const CA_KEY: &str = "ca.crt";

fn text(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

/// Loads the CA from its Secret, creating both on first start. Two replicas starting
/// at once race on the create; the loser reads the winner's CA.
pub async fn load_or_create_ca(client: &Client, namespace: &str) -> Result<CertificateAuthority, ReconcileError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    if let Some(existing) = secrets.get_opt(CA_SECRET_NAME).await?
        && let (Some(cert), Some(key)) = (text(&existing, CERT_KEY), text(&existing, KEY_KEY))
    {
        return Ok(CertificateAuthority::from_pem(&cert, &key)?);
    }
    let ca = CertificateAuthority::generate(CA_COMMON_NAME, Utc::now())?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(CA_SECRET_NAME.into()),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into())])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            (CERT_KEY.into(), ByteString(ca.cert_pem().as_bytes().to_vec())),
            (KEY_KEY.into(), ByteString(ca.key_pem().as_bytes().to_vec())),
        ])),
        ..Default::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(ca),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let winner = secrets.get(CA_SECRET_NAME).await?;
            let cert = text(&winner, CERT_KEY).unwrap_or_default();
            let key = text(&winner, KEY_KEY).unwrap_or_default();
            Ok(CertificateAuthority::from_pem(&cert, &key)?)
        }
        Err(error) => Err(error.into()),
    }
}

/// DNS names the admin server certificate carries: the headless admin Service in
/// every form a client may use, and each pod behind it.
pub fn admin_dns_names(names: &DataPlaneNames) -> Vec<String> {
    let service = &names.admin_service;
    let namespace = &names.namespace;
    vec![
        service.clone(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("*.{service}.{namespace}.svc"),
        "localhost".into(),
    ]
}

/// The admin TLS Secret data to write, or `None` when the live one is still good.
pub fn admin_secret_data(
    ca: &CertificateAuthority,
    names: &DataPlaneNames,
    live: Option<&Secret>,
) -> Result<Option<BTreeMap<String, ByteString>>, ReconcileError> {
    let dns_names = admin_dns_names(names);
    let now = Utc::now();
    let current_is_good = live.is_some_and(|secret| {
        text(secret, CA_KEY).as_deref() == Some(ca.cert_pem())
            && text(secret, KEY_KEY).is_some()
            && text(secret, CERT_KEY).is_some_and(|cert| !needs_renewal_for_names(&cert, ca, &dns_names, &[], now))
    });
    if current_is_good {
        return Ok(None);
    }
    let issued = ca.issue_server(&dns_names, &[], now, LEAF_VALIDITY)?;
    Ok(Some(BTreeMap::from([
        (CERT_KEY.into(), ByteString(issued.cert_pem.into_bytes())),
        (KEY_KEY.into(), ByteString(issued.key_pem.into_bytes())),
        (CA_KEY.into(), ByteString(ca.cert_pem().as_bytes().to_vec())),
    ])))
}
