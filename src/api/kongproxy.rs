//! `KongProxy`: the parameters a GatewayClass may point at to shape its Kong data plane.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, EnvVar, ResourceRequirements, Toleration};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Kong image used when a KongProxy does not name one.
pub const DEFAULT_KONG_IMAGE: &str = "kong:3.9";
/// Port of Kong's status API (readiness), unless a KongProxy says otherwise.
pub const DEFAULT_STATUS_PORT: u16 = 8100;
/// Port of Kong's admin API (mutual TLS), unless a KongProxy says otherwise.
pub const DEFAULT_ADMIN_PORT: u16 = 8444;

/// Shapes the Kong data plane of every GatewayClass whose `parametersRef` names it.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "kongress.dev",
    version = "v1alpha1",
    kind = "KongProxy",
    plural = "kongproxies",
    shortname = "kp",
    namespaced,
    derive = "Default",
    derive = "PartialEq",
    validation = "!has(self.spec.statusPort) || !has(self.spec.adminPort) || self.spec.statusPort != self.spec.adminPort",
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".spec.image"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Service","type":"string","jsonPath":".spec.service.type"}"#,
    printcolumn = r#"{"name":"Port Mode","type":"string","jsonPath":".spec.portMode"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct KongProxySpec {
    /// Kong container image. Defaults to `kong:3.9`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Number of Kong pods. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,
    /// Compute resources of the Kong container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Extra labels on the Kong pods. Labels kongress needs for selection win over these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_labels: Option<BTreeMap<String, String>>,
    /// Extra annotations on the Kong pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_annotations: Option<BTreeMap<String, String>>,
    /// Node selector of the Kong pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Tolerations of the Kong pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Affinity of the Kong pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Extra environment of the Kong container. A variable kongress derives from the
    /// listeners (for example `KONG_PROXY_LISTEN`) cannot be overridden; such a clash
    /// is ignored and reported on the GatewayClass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    /// Options of the proxy Service that exposes the listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ProxyServiceOptions>,
    /// Port of Kong's status API (readiness probe). Internal; a listener may not use it. Defaults to 8100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub status_port: Option<i32>,
    /// Port of Kong's admin API (mutual TLS, used by kongress only). Internal; a listener may not use it. Defaults to 8444.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub admin_port: Option<i32>,
    /// How listener ports map to container ports. `ListenerPort` (default) binds each
    /// listener port as is and sets the sysctl `net.ipv4.ip_unprivileged_port_start=0`;
    /// `Shifted` is for clusters that forbid that sysctl: ports below 1024 are bound at
    /// port + 10000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_mode: Option<PortMode>,
}

/// How listener ports map to Kong's container ports.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PortMode {
    /// Container port = listener port; the pod may bind privileged ports through a safe sysctl.
    #[default]
    ListenerPort,
    /// Ports below 1024 are bound at port + 10000; the Service maps them back.
    Shifted,
}

/// Options of the proxy Service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyServiceOptions {
    /// Service type. Defaults to `LoadBalancer`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<ServiceType>,
    /// Extra annotations on the proxy Service (for example a cloud load balancer's settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Extra labels on the proxy Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// `externalTrafficPolicy` of the proxy Service (`Cluster` or `Local`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_traffic_policy: Option<ExternalTrafficPolicy>,
    /// `loadBalancerClass` of the proxy Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_class: Option<String>,
}

/// Type of the proxy Service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    #[default]
    LoadBalancer,
    NodePort,
    ClusterIP,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::LoadBalancer => "LoadBalancer",
            ServiceType::NodePort => "NodePort",
            ServiceType::ClusterIP => "ClusterIP",
        }
    }
}

/// `externalTrafficPolicy` of the proxy Service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ExternalTrafficPolicy {
    Cluster,
    Local,
}

impl ExternalTrafficPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ExternalTrafficPolicy::Cluster => "Cluster",
            ExternalTrafficPolicy::Local => "Local",
        }
    }
}

impl KongProxySpec {
    pub fn image(&self) -> &str {
        self.image.as_deref().unwrap_or(DEFAULT_KONG_IMAGE)
    }
    pub fn replicas(&self) -> i32 {
        self.replicas.unwrap_or(1)
    }
    /// The status port. The CRD schema keeps it in 1..=65535; anything else falls back to the default.
    pub fn status_port(&self) -> u16 {
        port_or(self.status_port, DEFAULT_STATUS_PORT)
    }
    /// The admin port, checked like [`Self::status_port`].
    pub fn admin_port(&self) -> u16 {
        port_or(self.admin_port, DEFAULT_ADMIN_PORT)
    }
    pub fn port_mode(&self) -> PortMode {
        self.port_mode.unwrap_or_default()
    }
}

// Ports are i32 in the schema (as in every Kubernetes API); u16 would publish the
// non-standard format "uint16", which the API server warns about.
fn port_or(port: Option<i32>, default: u16) -> u16 {
    port.and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(default)
}
