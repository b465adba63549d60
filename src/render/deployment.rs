//! The Kong Deployment.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, ExecAction, HTTPGetAction, Lifecycle,
    LifecycleHandler, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecretVolumeSource,
    SecurityContext, Sysctl, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{
    ADMIN_CERT_ANNOTATION, ADMIN_TLS_MOUNT_PATH, KONG_COMPONENT, KONG_PREFIX_PATH, RenderInput, env, kong_pod_selector,
    object_labels, object_meta, overlay,
};
use crate::api::PortMode;
use crate::api::labels::LISTEN_HASH_ANNOTATION;

const KONG_CONTAINER: &str = "kong";
/// User and group of the `kong` user in the official Kong image.
const KONG_UID: i64 = 1000;
const STATUS_PORT_NAME: &str = "status";
const ADMIN_PORT_NAME: &str = "admin";

const PREFIX_VOLUME: &str = "kong-prefix";
const TMP_VOLUME: &str = "tmp";
const ADMIN_TLS_VOLUME: &str = "admin-tls";
/// Owner and group may read the admin key; with `fsGroup` the group is Kong's.
const ADMIN_TLS_FILE_MODE: i32 = 0o440;

/// Lets a non-root Kong bind ports below 1024; the restricted Pod Security profile allows it.
const UNPRIVILEGED_PORT_SYSCTL: &str = "net.ipv4.ip_unprivileged_port_start";

/// Seconds `kong quit` keeps serving before it stops accepting connections, so endpoint
/// removal reaches kube-proxy and load balancers before the sockets close.
const DRAIN_WAIT_SECONDS: i64 = 15;
/// Seconds `kong quit` then lets in-flight requests finish before it forces Kong down.
const QUIT_TIMEOUT_SECONDS: i64 = 30;
/// Longer than the whole `kong quit`, so the kubelet's SIGKILL never cuts a drain short.
const TERMINATION_GRACE_SECONDS: i64 = DRAIN_WAIT_SECONDS + QUIT_TIMEOUT_SECONDS + 15;

pub(super) fn deployment(input: &RenderInput, env: Vec<EnvVar>) -> Deployment {
    let proxy = input.proxy;
    let selector = kong_pod_selector(input.names);
    Deployment {
        metadata: object_meta(
            input,
            &input.names.deployment,
            object_labels(input, KONG_COMPONENT),
            None,
        ),
        spec: Some(DeploymentSpec {
            replicas: Some(proxy.replicas()),
            selector: LabelSelector {
                match_labels: Some(selector),
                match_expressions: None,
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_string()),
                // A new Kong pod serves nothing until kongress has pushed it a config, so an
                // old pod may only go once a new one is ready.
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(overlay(proxy.pod_labels.as_ref(), object_labels(input, KONG_COMPONENT))),
                    annotations: Some(pod_annotations(input)),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(input, env)),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

fn pod_annotations(input: &RenderInput) -> BTreeMap<String, String> {
    let ours = BTreeMap::from([
        (LISTEN_HASH_ANNOTATION.to_string(), env::listen_hash(input.listen)),
        (
            ADMIN_CERT_ANNOTATION.to_string(),
            input.admin_cert_fingerprint.to_string(),
        ),
    ]);
    overlay(input.proxy.pod_annotations.as_ref(), ours)
}

fn pod_spec(input: &RenderInput, env: Vec<EnvVar>) -> PodSpec {
    let proxy = input.proxy;
    PodSpec {
        // Kong never talks to the Kubernetes API.
        automount_service_account_token: Some(false),
        // Service links would add `<SERVICE>_PORT`-style variables, and Kong reads its
        // settings from `KONG_*` variables.
        enable_service_links: Some(false),
        security_context: Some(pod_security_context(input.listen.port_mode)),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
        containers: vec![kong_container(input, env)],
        volumes: Some(volumes(input)),
        node_selector: proxy.node_selector.clone(),
        tolerations: proxy.tolerations.clone(),
        affinity: proxy.affinity.clone(),
        ..PodSpec::default()
    }
}

fn pod_security_context(port_mode: PortMode) -> PodSecurityContext {
    let sysctls = match port_mode {
        PortMode::ListenerPort => Some(vec![Sysctl {
            name: UNPRIVILEGED_PORT_SYSCTL.to_string(),
            value: "0".to_string(),
        }]),
        // Shifted mode exists for clusters that forbid this sysctl.
        PortMode::Shifted => None,
    };
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(KONG_UID),
        run_as_group: Some(KONG_UID),
        fs_group: Some(KONG_UID),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            localhost_profile: None,
        }),
        sysctls,
        ..PodSecurityContext::default()
    }
}

fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            add: None,
            drop: Some(vec!["ALL".to_string()]),
        }),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        ..SecurityContext::default()
    }
}

fn kong_container(input: &RenderInput, env: Vec<EnvVar>) -> Container {
    let proxy = input.proxy;
    Container {
        name: KONG_CONTAINER.to_string(),
        image: Some(proxy.image().to_string()),
        env: Some(env),
        ports: Some(container_ports(input)),
        readiness_probe: Some(status_probe("/status/ready", 5, 3)),
        liveness_probe: Some(Probe {
            // Kong needs a few seconds to build its prefix and start nginx.
            initial_delay_seconds: Some(10),
            ..status_probe("/status", 10, 3)
        }),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(vec![
                        "kong".to_string(),
                        "quit".to_string(),
                        format!("--wait={DRAIN_WAIT_SECONDS}"),
                        format!("--timeout={QUIT_TIMEOUT_SECONDS}"),
                    ]),
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        resources: proxy.resources.clone(),
        security_context: Some(container_security_context()),
        volume_mounts: Some(vec![
            VolumeMount {
                name: PREFIX_VOLUME.to_string(),
                mount_path: KONG_PREFIX_PATH.to_string(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: TMP_VOLUME.to_string(),
                mount_path: "/tmp".to_string(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: ADMIN_TLS_VOLUME.to_string(),
                mount_path: ADMIN_TLS_MOUNT_PATH.to_string(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    }
}

fn container_ports(input: &RenderInput) -> Vec<ContainerPort> {
    let port = |name: &str, number: u16, protocol: &str| ContainerPort {
        name: Some(name.to_string()),
        container_port: i32::from(number),
        protocol: Some(protocol.to_string()),
        ..ContainerPort::default()
    };
    let mut ports: Vec<ContainerPort> = input
        .listen
        .entries
        .iter()
        .map(|entry| {
            port(
                &entry.port_name,
                entry.container_port,
                entry.protocol.transport().service_protocol(),
            )
        })
        .collect();
    ports.push(port(STATUS_PORT_NAME, input.proxy.status_port(), "TCP"));
    ports.push(port(ADMIN_PORT_NAME, input.proxy.admin_port(), "TCP"));
    ports
}

fn status_probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String(STATUS_PORT_NAME.to_string()),
            scheme: Some("HTTP".to_string()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(3),
        success_threshold: Some(1),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

fn volumes(input: &RenderInput) -> Vec<Volume> {
    let empty_dir = |name: &str| Volume {
        name: name.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    vec![
        empty_dir(PREFIX_VOLUME),
        empty_dir(TMP_VOLUME),
        Volume {
            name: ADMIN_TLS_VOLUME.to_string(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(input.names.admin_tls_secret.clone()),
                default_mode: Some(ADMIN_TLS_FILE_MODE),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
    ]
}
