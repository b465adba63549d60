//! Reads the state of a data plane's Deployment and proxy Service (as the caches hold them) into plain data.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;

use super::{DeploymentState, ServiceAddress};

/// Where a Deployment stands, from its status.
pub fn deployment_state(deployment: Option<&Deployment>) -> DeploymentState {
    let Some(deployment) = deployment else {
        return DeploymentState::Missing;
    };
    let status = deployment.status.clone().unwrap_or_default();
    if status.available_replicas.unwrap_or(0) > 0 {
        return DeploymentState::Available;
    }
    let conditions = status.conditions.unwrap_or_default();
    let failed = conditions.iter().find(|c| {
        (c.type_ == "ReplicaFailure" && c.status == "True")
            || (c.type_ == "Progressing"
                && c.status == "False"
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
    });
    if let Some(failure) = failed {
        return DeploymentState::NoResources {
            message: format!(
                "The Kong Deployment cannot run: {}",
                failure
                    .message
                    .as_deref()
                    .unwrap_or(failure.reason.as_deref().unwrap_or("unknown reason"))
            ),
        };
    }
    let wanted = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    DeploymentState::Progressing {
        message: format!(
            "Waiting for a Kong replica to become available ({}/{wanted} ready)",
            status.ready_replicas.unwrap_or(0)
        ),
    }
}

/// Load balancer ingress, external IPs and cluster IPs of the proxy Service.
pub fn service_addresses(service: Option<&Service>) -> (Vec<ServiceAddress>, Vec<String>, Vec<String>) {
    let Some(service) = service else {
        return (Vec::new(), Vec::new(), Vec::new());
    };
    let load_balancer = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|ingress| {
            ingress
                .iter()
                .filter_map(|i| match (&i.ip, &i.hostname) {
                    (Some(ip), _) => Some(ServiceAddress {
                        type_: "IPAddress",
                        value: ip.clone(),
                    }),
                    (None, Some(hostname)) => Some(ServiceAddress {
                        type_: "Hostname",
                        value: hostname.clone(),
                    }),
                    (None, None) => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let spec = service.spec.clone().unwrap_or_default();
    let external_ips = spec.external_ips.unwrap_or_default();
    let cluster_ips = match spec.cluster_ips {
        Some(ips) => ips,
        None => spec.cluster_ip.into_iter().collect(),
    }
    .into_iter()
    .filter(|ip| !ip.is_empty() && ip != "None")
    .collect();
    (load_balancer, external_ips, cluster_ips)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus};
    use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceSpec, ServiceStatus};

    #[test]
    fn deployment_with_an_available_replica_is_available() {
        let d = Deployment {
            status: Some(DeploymentStatus {
                available_replicas: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(deployment_state(Some(&d)), DeploymentState::Available);
    }

    #[test]
    fn replica_failure_is_no_resources() {
        let d = Deployment {
            status: Some(DeploymentStatus {
                conditions: Some(vec![DeploymentCondition {
                    type_: "ReplicaFailure".into(),
                    status: "True".into(),
                    message: Some("exceeded quota".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(
            matches!(deployment_state(Some(&d)), DeploymentState::NoResources { message } if message.contains("quota"))
        );
    }

    #[test]
    fn headless_cluster_ip_is_not_an_address() {
        let s = Service {
            spec: Some(ServiceSpec {
                cluster_ip: Some("None".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(service_addresses(Some(&s)).2.is_empty());
    }

    #[test]
    fn load_balancer_hostname_is_a_hostname_address() {
        let s = Service {
            status: Some(ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(vec![LoadBalancerIngress {
                        hostname: Some("lb.example.com".into()),
                        ..Default::default()
                    }]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            service_addresses(Some(&s)).0,
            vec![ServiceAddress {
                type_: "Hostname",
                value: "lb.example.com".into()
            }]
        );
    }
}
