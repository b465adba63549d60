//! The proxy Service (the listeners) and the headless admin Service (Kong's admin API).

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{ADMIN_COMPONENT, PROXY_COMPONENT, RenderInput, kong_pod_selector, object_labels, object_meta, overlay};
use crate::api::ServiceType;

pub(super) fn proxy_service(input: &RenderInput) -> Option<Service> {
    if input.listen.entries.is_empty() {
        return None;
    }
    let options = input.proxy.service.clone().unwrap_or_default();
    let service_type = options.type_.unwrap_or_default();
    let ports = input
        .listen
        .entries
        .iter()
        .map(|entry| ServicePort {
            name: Some(entry.port_name.clone()),
            port: i32::from(entry.port),
            target_port: Some(IntOrString::Int(i32::from(entry.container_port))),
            protocol: Some(entry.protocol.transport().service_protocol().to_string()),
            ..ServicePort::default()
        })
        .collect();
    // The API server rejects these fields on Service types they do not apply to.
    let external_traffic_policy = options
        .external_traffic_policy
        .filter(|_| matches!(service_type, ServiceType::LoadBalancer | ServiceType::NodePort))
        .map(|policy| policy.as_str().to_string());
    let load_balancer_class = options
        .load_balancer_class
        .filter(|_| service_type == ServiceType::LoadBalancer);
    let external_ips = (!input.requested_addresses.is_empty()).then(|| input.requested_addresses.to_vec());
    let labels = overlay(options.labels.as_ref(), object_labels(input, PROXY_COMPONENT));

    Some(Service {
        metadata: object_meta(input, &input.names.proxy_service, labels, options.annotations),
        spec: Some(ServiceSpec {
            type_: Some(service_type.as_str().to_string()),
            selector: Some(kong_pod_selector(input.names)),
            ports: Some(ports),
            external_traffic_policy,
            load_balancer_class,
            external_ips,
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

pub(super) fn admin_service(input: &RenderInput) -> Service {
    let admin_port = i32::from(input.proxy.admin_port());
    Service {
        metadata: object_meta(
            input,
            &input.names.admin_service,
            object_labels(input, ADMIN_COMPONENT),
            None,
        ),
        spec: Some(ServiceSpec {
            // kongress reaches every Kong pod on its own, so it needs pod addresses, not a
            // virtual IP; and a pod is unready until it has a config, which kongress must
            // push through this Service.
            cluster_ip: Some("None".to_string()),
            publish_not_ready_addresses: Some(true),
            selector: Some(kong_pod_selector(input.names)),
            ports: Some(vec![ServicePort {
                name: Some("admin".to_string()),
                port: admin_port,
                target_port: Some(IntOrString::Int(admin_port)),
                protocol: Some("TCP".to_string()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}
