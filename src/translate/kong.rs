//! Kong 3.9 declarative configuration (`_format_version: "3.0"`), as kongress emits it.
//!
//! Only the fields kongress sets are modelled. Field order is serialisation order,
//! and every collection is sorted by the translator, so equal configs are equal bytes.
//! Entities nest the way decK writes them: routes and their plugins inside services,
//! targets inside upstreams, SNIs inside certificates.

use std::ops::Deref;
use std::sync::Arc;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `_format_version` Kong 3.x reads.
pub const FORMAT_VERSION: &str = "3.0";

/// A whole declarative config for one data plane.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KongConfig {
    #[serde(rename = "_format_version")]
    pub format_version: String,
    /// Shared with the translator's cache, like the upstreams and the routes: an answer is
    /// handed out without copying entities that did not change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Arc<Service>>,
    /// Routes without a service: they only run plugins (redirects, fixed responses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<Arc<Upstream>>,
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The id of the certificate Kong presents to the upstream (Gateway `spec.tls.backend`).
    /// A plain string: Kong's declarative schema turns every foreign key into a string
    /// field (`reference_foreign_by_name` in `declarative_config.lua`), so `{id: ...}` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<Plugin>,
}

/// A Kong route of the expressions router, without its `priority` (see [`RouteEntry`]).
/// `Eq`, so comparing two shared routes starts with their addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub name: String,
    /// `http`/`https`, `grpc`/`grpcs`, `tcp`, `tls`, `tls_passthrough`, `udp`.
    pub protocols: Vec<String>,
    pub expression: String,
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

/// A route as a config holds it: Kong's `priority` and the route itself, shared.
///
/// The priority is the route's rank among every route of the config (see the translator's
/// `priority` module), so it moves whenever a route above or below it is added, removed or
/// re-ranked, while the route itself does not change. Keeping it apart lets a config be
/// assembled from the translator's cache without copying a single route, and lets two
/// configs compare their routes by address first. It serialises as one Kong route object,
/// `priority` after `expression`, exactly as Kong's declarative format has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteEntry {
    /// At most 2^46 - 1 (Kong's schema limit for the expressions flavor).
    pub priority: u64,
    pub route: Arc<Route>,
}

impl RouteEntry {
    pub fn new(route: Route, priority: u64) -> Self {
        Self {
            priority,
            route: Arc::new(route),
        }
    }
}

impl Deref for RouteEntry {
    type Target = Route;

    fn deref(&self) -> &Route {
        &self.route
    }
}

impl Serialize for RouteEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The field list of `Route` with `priority` in its place; `the_entry_serialises_as_one_kong_route`
        // fails when a field is added to `Route` and not here.
        let Route {
            name,
            protocols,
            expression,
            strip_path,
            preserve_host,
            https_redirect_status_code,
            tags,
            plugins,
        } = self.route.as_ref();
        let fields = 5
            + usize::from(strip_path.is_some())
            + usize::from(preserve_host.is_some())
            + usize::from(https_redirect_status_code.is_some())
            + usize::from(!plugins.is_empty());
        let mut s = serializer.serialize_struct("Route", fields)?;
        s.serialize_field("name", name)?;
        s.serialize_field("protocols", protocols)?;
        s.serialize_field("expression", expression)?;
        s.serialize_field("priority", &self.priority)?;
        if let Some(value) = strip_path {
            s.serialize_field("strip_path", value)?;
        }
        if let Some(value) = preserve_host {
            s.serialize_field("preserve_host", value)?;
        }
        if let Some(value) = https_redirect_status_code {
            s.serialize_field("https_redirect_status_code", value)?;
        }
        s.serialize_field("tags", tags)?;
        if !plugins.is_empty() {
            s.serialize_field("plugins", plugins)?;
        }
        s.end()
    }
}

impl<'de> Deserialize<'de> for RouteEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct WithPriority {
            #[serde(flatten)]
            route: Route,
            #[serde(default)]
            priority: u64,
        }
        let WithPriority { route, priority } = WithPriority::deserialize(deserializer)?;
        Ok(Self::new(route, priority))
    }
}

/// A plugin instance attached to the route or service it is nested in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plugin {
    pub name: String,
    /// Plugin configuration; a BTreeMap-backed JSON value keeps key order stable.
    pub config: serde_json::Value,
    pub tags: Vec<String>,
}

/// A load-balanced pool of targets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
}

/// One endpoint of an upstream: `ip:port` (IPv6 in brackets) and its weight (0–65535).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_serialises_as_one_kong_route_with_priority_after_expression() {
        let route = Route {
            name: "r".to_string(),
            protocols: vec!["http".to_string()],
            expression: "net.dst.port == 80".to_string(),
            strip_path: Some(false),
            preserve_host: Some(true),
            https_redirect_status_code: Some(426),
            tags: vec!["k8s-name:r".to_string()],
            plugins: vec![Plugin {
                name: "cors".to_string(),
                config: serde_json::json!({}),
                tags: Vec::new(),
            }],
        };
        let entry = RouteEntry::new(route.clone(), 7);
        let text = serde_json::to_string(&entry).expect("serialises");
        assert_eq!(
            text,
            concat!(
                r#"{"name":"r","protocols":["http"],"expression":"net.dst.port == 80","priority":7,"#,
                r#""strip_path":false,"preserve_host":true,"https_redirect_status_code":426,"#,
                r#""tags":["k8s-name:r"],"plugins":[{"name":"cors","config":{},"tags":[]}]}"#
            )
        );
        let back: RouteEntry = serde_json::from_str(&text).expect("deserialises");
        assert_eq!(back, entry);
        // Optional fields left out, as the derived serialisation of the other entities does.
        let bare = RouteEntry::new(
            Route {
                plugins: Vec::new(),
                strip_path: None,
                preserve_host: None,
                https_redirect_status_code: None,
                ..route
            },
            1,
        );
        assert_eq!(
            serde_json::to_string(&bare).expect("serialises"),
            r#"{"name":"r","protocols":["http"],"expression":"net.dst.port == 80","priority":1,"tags":["k8s-name:r"]}"#
        );
    }
}
