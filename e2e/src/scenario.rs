//! A test's world on the local cluster: a namespace, a GatewayClass with its KongProxy,
//! and the waits the scenarios share.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kongress::api::KongProxy;
use kongress::render::data_plane_names;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::fleet::Fleet;
use crate::*;

/// A test's world: its namespace, class and KongProxy.
pub struct Scenario {
    pub client: Client,
    pub namespace: String,
    pub class: String,
    /// A Kong admin stand-in on every Kong pod of the namespace: kongress pushes config to
    /// them and a Gateway is Programmed only once they run it.
    pub fleet: Fleet,
}

/// Where the stand-ins of a namespace record what they receive (fresh for each scenario).
pub fn record_dir(namespace: &str) -> std::path::PathBuf {
    let dir = crate::workspace_dir().join("target/e2e-standin").join(namespace);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

impl Scenario {
    pub async fn new(name: &str) -> Result<Self> {
        Self::with_class(name, name).await
    }

    /// A scenario whose namespace and GatewayClass names differ.
    pub async fn with_class(namespace: &str, name: &str) -> Result<Self> {
        let client = client().await?;
        ensure_namespace(&client, OPERATOR_NAMESPACE).await?;
        fresh_namespace(&client, namespace).await?;
        let scenario = Scenario {
            fleet: Fleet::start(client.clone(), Some(namespace), record_dir(namespace)),
            client,
            namespace: namespace.to_string(),
            class: name.to_string(),
        };
        let classes: Api<GatewayClass> = Api::all(scenario.client.clone());
        if let Some(old) = classes.get_opt(name).await? {
            // A class left by an earlier, aborted run: release it so it can go.
            if !old.finalizers().is_empty() {
                classes
                    .patch(
                        name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await?;
            }
            let _ = classes.delete(name, &DeleteParams::default()).await;
            eventually("old class to go", CONVERGE_TIMEOUT, || {
                let classes = classes.clone();
                async move {
                    Ok(classes
                        .get_opt(name)
                        .await
                        .map_err(|e| e.to_string())?
                        .is_none()
                        .then_some(()))
                }
            })
            .await?;
        }
        create(
            &Api::<KongProxy>::namespaced(scenario.client.clone(), namespace),
            json!({
                "apiVersion": "kongress.dev/v1alpha1", "kind": "KongProxy",
                "metadata": {"name": "proxy", "namespace": namespace},
                "spec": {"replicas": 1}
            }),
        )
        .await?;
        create(
            &Api::<GatewayClass>::all(scenario.client.clone()),
            json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                "metadata": {"name": name},
                "spec": {
                    "controllerName": "kongress.dev/gateway-controller",
                    "parametersRef": {"group": "kongress.dev", "kind": "KongProxy", "name": "proxy", "namespace": namespace}
                }
            }),
        )
        .await?;
        Ok(scenario)
    }

    pub fn names(&self) -> kongress::render::DataPlaneNames {
        data_plane_names(&self.class, &self.namespace)
    }

    pub fn gateways(&self) -> Api<Gateway> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub async fn create_gateway(&self, name: &str, listeners: serde_json::Value) -> Result<Gateway> {
        create(
            &self.gateways(),
            json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": {"gatewayClassName": self.class, "listeners": listeners}
            }),
        )
        .await
    }

    pub async fn create_tls_secret(&self, name: &str) -> Result<()> {
        let (cert, key) = kongress::pki::generate_self_signed_pem("example.com")?;
        create(
            &Api::<Secret>::namespaced(self.client.clone(), &self.namespace),
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": self.namespace},
                "type": "kubernetes.io/tls",
                "stringData": {"tls.crt": cert, "tls.key": key}
            }),
        )
        .await?;
        Ok(())
    }

    /// Waits for the Deployment's Kong env to hold `want` (name → value).
    pub async fn wait_for_env(&self, want: &[(&str, &str)]) -> Result<BTreeMap<String, String>> {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let name = self.names().deployment;
        eventually(&format!("Deployment {name} env {want:?}"), CONVERGE_TIMEOUT, || {
            let deployments = deployments.clone();
            let name = name.clone();
            async move {
                let Some(deployment) = deployments.get_opt(&name).await.map_err(|e| e.to_string())? else {
                    return Err("no Deployment".into());
                };
                let env = kong_env(&deployment);
                if want.iter().all(|(k, v)| env.get(*k).map(String::as_str) == Some(*v)) {
                    Ok(Some(env))
                } else {
                    Err(format!("{env:?}"))
                }
            }
        })
        .await
    }

    /// Waits for the proxy Service to expose exactly `want` (port, protocol) pairs.
    pub async fn wait_for_service_ports(&self, want: &[(i32, &str)]) -> Result<Service> {
        let services: Api<Service> = Api::namespaced(self.client.clone(), &self.namespace);
        let name = self.names().proxy_service;
        let mut want: Vec<(i32, String)> = want.iter().map(|(p, proto)| (*p, proto.to_string())).collect();
        want.sort();
        eventually(&format!("Service {name} ports {want:?}"), CONVERGE_TIMEOUT, || {
            let services = services.clone();
            let name = name.clone();
            let want = want.clone();
            async move {
                let Some(service) = services.get_opt(&name).await.map_err(|e| e.to_string())? else {
                    return Err("no Service".into());
                };
                let mut got: Vec<(i32, String)> = service
                    .spec
                    .as_ref()
                    .and_then(|s| s.ports.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| (p.port, p.protocol.unwrap_or_default()))
                    .collect();
                got.sort();
                if got == want {
                    Ok(Some(service))
                } else {
                    Err(format!("{got:?}"))
                }
            }
        })
        .await
    }

    /// Waits until the Gateway's condition `type_` has `status` (and `reason`, when given).
    pub async fn wait_for_gateway_condition(
        &self,
        gateway: &str,
        type_: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<Gateway> {
        let gateways = self.gateways();
        eventually(
            &format!("Gateway {gateway} {type_}={status} {reason:?}"),
            CONVERGE_TIMEOUT,
            || {
                let gateways = gateways.clone();
                async move {
                    let gw = gateways.get(gateway).await.map_err(|e| e.to_string())?;
                    let conditions = gw
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.clone())
                        .unwrap_or_default();
                    let found = conditions.iter().find(|c| c.type_ == type_);
                    match found {
                        Some(c) if c.status == status && reason.is_none_or(|r| r == c.reason) => Ok(Some(gw)),
                        other => Err(format!("{other:?}")),
                    }
                }
            },
        )
        .await
    }

    /// Waits until a listener's condition `type_` has `status` and `reason`.
    pub async fn wait_for_listener_condition(
        &self,
        gateway: &str,
        listener: &str,
        type_: &str,
        status: &str,
        reason: &str,
    ) -> Result<()> {
        let gateways = self.gateways();
        eventually(
            &format!("{gateway}/{listener} {type_}={status}/{reason}"),
            CONVERGE_TIMEOUT,
            || {
                let gateways = gateways.clone();
                async move {
                    let gw = gateways.get(gateway).await.map_err(|e| e.to_string())?;
                    let listeners = gw.status.as_ref().and_then(|s| s.listeners.clone()).unwrap_or_default();
                    let condition = listeners
                        .iter()
                        .find(|l| l.name == listener)
                        .and_then(|l| l.conditions.iter().find(|c| c.type_ == type_).cloned());
                    match condition {
                        Some(c) if c.status == status && c.reason == reason => Ok(Some(())),
                        other => Err(format!("{other:?}")),
                    }
                }
            },
        )
        .await
    }

    /// Deletes the test's Gateways and class, then checks the data plane is gone.
    pub async fn tear_down(&self) -> Result<()> {
        self.gateways()
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await?;
        let classes: Api<GatewayClass> = Api::all(self.client.clone());
        classes.delete(&self.class, &DeleteParams::default()).await?;
        eventually("GatewayClass to be deleted", CONVERGE_TIMEOUT, || {
            let classes = classes.clone();
            let class = self.class.clone();
            async move {
                Ok(classes
                    .get_opt(&class)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_none()
                    .then_some(()))
            }
        })
        .await?;
        self.assert_no_data_plane().await
    }

    pub async fn assert_no_data_plane(&self) -> Result<()> {
        let names = self.names();
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let services: Api<Service> = Api::namespaced(self.client.clone(), &self.namespace);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        eventually("data plane objects to be gone", CONVERGE_TIMEOUT, || {
            let (deployments, services, secrets, names) =
                (deployments.clone(), services.clone(), secrets.clone(), names.clone());
            async move {
                let left = [
                    deployments
                        .get_opt(&names.deployment)
                        .await
                        .map_err(|e| e.to_string())?
                        .map(|_| "Deployment"),
                    services
                        .get_opt(&names.proxy_service)
                        .await
                        .map_err(|e| e.to_string())?
                        .map(|_| "proxy Service"),
                    services
                        .get_opt(&names.admin_service)
                        .await
                        .map_err(|e| e.to_string())?
                        .map(|_| "admin Service"),
                    secrets
                        .get_opt(&names.admin_tls_secret)
                        .await
                        .map_err(|e| e.to_string())?
                        .map(|_| "admin Secret"),
                ];
                let left: Vec<&str> = left.into_iter().flatten().collect();
                if left.is_empty() {
                    Ok(Some(()))
                } else {
                    Err(format!("still there: {left:?}"))
                }
            }
        })
        .await
    }
}

pub fn kong_env(deployment: &Deployment) -> BTreeMap<String, String> {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .and_then(|c| c.env.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| Some((e.name, e.value?)))
        .collect()
}

pub fn kong_docs_listeners() -> serde_json::Value {
    json!([
        {"name": "http", "port": 80, "protocol": "HTTP"},
        {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "example.com",
         "tls": {"mode": "Terminate", "certificateRefs": [{"name": "example-tls"}]}},
        {"name": "tcp", "port": 9901, "protocol": "TCP"},
        {"name": "udp", "port": 9902, "protocol": "UDP"},
        {"name": "tls", "port": 9903, "protocol": "TLS", "tls": {"mode": "Passthrough"}}
    ])
}

/// Runs a test body with a fresh kongress, and prints the operator log when it fails.
pub async fn with_operator<F, Fut>(name: &str, body: F) -> Result<()>
where
    F: FnOnce(Operator) -> Fut,
    Fut: std::future::Future<Output = Result<Operator>>,
{
    let operator = Operator::start(name).await?;
    let log = operator.log.clone();
    match body(operator).await {
        Ok(operator) => operator.stop().await,
        Err(error) => {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            bail!(
                "{error:#}\n--- kongress log ({}) ---\n{}",
                log.display(),
                tail.join("\n")
            )
        }
    }
}
