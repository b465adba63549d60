//! The environment of the Kong container: how kongress configures Kong.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::EnvVar;
use sha2::{Digest, Sha256};

use super::{ADMIN_TLS_MOUNT_PATH, KONG_PREFIX_PATH};
use crate::api::KongProxySpec;
use crate::plan::ListenPlan;

/// The Kong container's environment and the user variables that were dropped.
pub(super) struct KongEnv {
    pub vars: Vec<EnvVar>,
    /// Names of user variables that tried to set something kongress sets, sorted.
    pub clashes: Vec<String>,
}

/// The variables derived from the listen plan, in a fixed order. Their values decide which
/// sockets Kong opens, and Kong reads them only at start, so they feed the pod template hash.
fn listen_vars(plan: &ListenPlan) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("KONG_PROXY_LISTEN", plan.proxy_listen()),
        ("KONG_STREAM_LISTEN", plan.stream_listen()),
    ];
    if let Some(maps) = plan.port_maps() {
        vars.push(("KONG_PORT_MAPS", maps));
    }
    vars
}

/// Hex sha256 over the listen variables, for the pod template annotation that rolls the
/// pods when listeners change.
pub(super) fn listen_hash(plan: &ListenPlan) -> String {
    let mut hasher = Sha256::new();
    for (name, value) in listen_vars(plan) {
        hasher.update(name.as_bytes());
        hasher.update(b"=");
        hasher.update(value.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

/// Every variable kongress sets, by name; the BTreeMap gives the sorted order.
fn kongress_vars(proxy: &KongProxySpec, plan: &ListenPlan) -> BTreeMap<&'static str, String> {
    let admin_tls = |file: &str| format!("{ADMIN_TLS_MOUNT_PATH}/{file}");
    let mut vars: BTreeMap<&'static str, String> = BTreeMap::from([
        ("KONG_DATABASE", "off".to_string()),
        ("KONG_ROUTER_FLAVOR", "expressions".to_string()),
        ("KONG_PREFIX", KONG_PREFIX_PATH.to_string()),
        ("KONG_ADMIN_LISTEN", format!("0.0.0.0:{} ssl", proxy.admin_port())),
        ("KONG_ADMIN_SSL_CERT", admin_tls("tls.crt")),
        ("KONG_ADMIN_SSL_CERT_KEY", admin_tls("tls.key")),
        ("KONG_NGINX_ADMIN_SSL_CLIENT_CERTIFICATE", admin_tls("ca.crt")),
        ("KONG_NGINX_ADMIN_SSL_VERIFY_CLIENT", "on".to_string()),
        // Kong Manager (on by default since Kong 3.4) would open two more ports that
        // nothing here exposes or protects.
        ("KONG_ADMIN_GUI_LISTEN", "off".to_string()),
        ("KONG_STATUS_LISTEN", format!("0.0.0.0:{}", proxy.status_port())),
        ("KONG_PROXY_ACCESS_LOG", "/dev/stdout".to_string()),
        ("KONG_PROXY_ERROR_LOG", "/dev/stderr".to_string()),
        ("KONG_ADMIN_ACCESS_LOG", "/dev/stdout".to_string()),
        ("KONG_ADMIN_ERROR_LOG", "/dev/stderr".to_string()),
    ]);
    vars.extend(listen_vars(plan));
    vars
}

fn plain_var(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value),
        value_from: None,
    }
}

/// kongress's variables (sorted by name) followed by the user's, minus those that clash.
pub(super) fn kong_env(proxy: &KongProxySpec, plan: &ListenPlan) -> KongEnv {
    let ours = kongress_vars(proxy, plan);
    let mut vars: Vec<EnvVar> = ours
        .iter()
        .map(|(name, value)| plain_var(name, value.clone()))
        .collect();

    let user_vars = proxy.env.as_deref().unwrap_or_default();
    let mut clashes = BTreeSet::new();
    for (index, var) in user_vars.iter().enumerate() {
        if ours.contains_key(var.name.as_str()) {
            clashes.insert(var.name.clone());
            continue;
        }
        // Server-side apply rejects two entries with one name; Kubernetes would let the
        // last one win, so keep that one. User order is kept because `$(VAR)` references
        // only see variables defined earlier.
        let redefined_later = user_vars[index + 1..].iter().any(|later| later.name == var.name);
        if !redefined_later {
            vars.push(var.clone());
        }
    }

    KongEnv {
        vars,
        clashes: clashes.into_iter().collect(),
    }
}
