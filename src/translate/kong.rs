//! Kong 3.9 declarative configuration (`_format_version: "3.0"`), as kongress emits it.
//!
//! Only the fields kongress sets are modelled. Field order is serialisation order,
//! and every collection is sorted by the translator, so equal configs are equal bytes.
//! Entities nest the way decK writes them: routes and their plugins inside services,
//! targets inside upstreams, SNIs inside certificates.

use serde::{Deserialize, Serialize};

/// The `_format_version` Kong 3.x reads.
pub const FORMAT_VERSION: &str = "3.0";

/// A whole declarative config for one data plane.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KongConfig {
    #[serde(rename = "_format_version")]
    pub format_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    /// Routes without a service: they only run plugins (redirects, fixed responses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<Upstream>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<Certificate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_certificates: Vec<CaCertificate>,
}

impl KongConfig {
    pub fn empty() -> Self {
        Self {
            format_version: FORMAT_VERSION.to_string(),
            ..Self::default()
        }
    }
}

/// A Kong service: where matched requests (or streams) go.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    /// `http`, `https`, `grpc`, `grpcs`, `tcp`, `tls`, `udp`.
    pub protocol: String,
    /// An upstream name (load balanced over its targets) or a host.
    pub host: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_timeout: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_timeout: Option<u64>,
    /// A certificate (by id) Kong presents to the upstream (Gateway `spec.tls.backend`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<EntityRef>,
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<Plugin>,
}

/// A reference to another entity by id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRef {
    pub id: String,
}

/// A Kong route of the expressions router.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub name: String,
    /// `http`/`https`, `grpc`/`grpcs`, `tcp`, `tls`, `tls_passthrough`, `udp`.
    pub protocols: Vec<String>,
    pub expression: String,
    /// At most 2^46 - 1 (Kong's schema limit for the expressions flavor).
    pub priority: u64,
    /// Kong strips the matched prefix by default; Gateway API never does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_path: Option<bool>,
    /// Kong rewrites Host to the upstream by default; Gateway API keeps the client's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_host: Option<bool>,
    /// 426 by default in Kong; kongress never redirects implicitly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_redirect_status_code: Option<u16>,
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<Plugin>,
}

/// A plugin instance attached to the route or service it is nested in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plugin {
    pub name: String,
    /// Plugin configuration; a BTreeMap-backed JSON value keeps key order stable.
    pub config: serde_json::Value,
    pub tags: Vec<String>,
}

/// A load-balanced pool of targets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Upstream {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
}

/// One endpoint of an upstream: `ip:port` (IPv6 in brackets) and its weight (0–65535).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub target: String,
    pub weight: u32,
    pub tags: Vec<String>,
}

/// A TLS certificate Kong serves for the SNIs nested in it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    /// Stable UUID derived from the Secret, so the config hash does not move.
    pub id: String,
    pub cert: String,
    pub key: String,
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snis: Vec<Sni>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sni {
    pub name: String,
    pub tags: Vec<String>,
}

/// A CA certificate (for verifying upstreams).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaCertificate {
    pub id: String,
    pub cert: String,
    pub tags: Vec<String>,
}

/// A plugin config object. serde_json is built without `preserve_order`, so its maps are
/// BTreeMaps and keys serialise sorted whatever the insertion order.
pub fn plugin_config(entries: impl IntoIterator<Item = (&'static str, serde_json::Value)>) -> serde_json::Value {
    serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}
