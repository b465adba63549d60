use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pretty_assertions::assert_eq;

use super::*;
use crate::api::kongproxy::ExternalTrafficPolicy;
use crate::api::labels::LISTEN_HASH_ANNOTATION;
use crate::api::{ObjectKey, PortMode, ProxyServiceOptions, ServiceType};
use crate::plan::{ListenEntry, ListenerKey, ListenerProtocol};

const CLASS: &str = "kong";
const CLASS_UID: &str = "7c6f0a8e-5d3b-4f0e-9a51-2b8f6d1e4c90";
const FINGERPRINT: &str = "3f1d0c9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f10";
const GOLDEN_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/src/render/testdata/kong-docs-gateway.golden.yaml"
);

fn entry(port: u16, protocol: ListenerProtocol, name: &str, mode: PortMode) -> ListenEntry {
    ListenEntry {
        port,
        container_port: crate::plan::listen::container_port(port, mode),
        protocol,
        port_name: name.to_string(),
        listeners: vec![ListenerKey {
            gateway: ObjectKey::new("default", "kong"),
            listener: name.to_string(),
        }],
    }
}

/// The listeners of the Gateway in Kong's Gateway API documentation.
fn kong_docs_plan(mode: PortMode) -> ListenPlan {
    ListenPlan {
        entries: vec![
            entry(80, ListenerProtocol::Http, "http", mode),
            entry(443, ListenerProtocol::Https, "https", mode),
            entry(9901, ListenerProtocol::Tcp, "tcp", mode),
            entry(9902, ListenerProtocol::Udp, "udp", mode),
            entry(9903, ListenerProtocol::TlsPassthrough, "tls", mode),
        ],
        port_mode: mode,
    }
}

/// Owns what a [`RenderInput`] borrows.
struct Fixture {
    names: DataPlaneNames,
    proxy: KongProxySpec,
    listen: ListenPlan,
    addresses: Vec<String>,
}

impl Fixture {
    fn new(listen: ListenPlan) -> Self {
        Self {
            names: data_plane_names(CLASS, "kongress-system"),
            proxy: KongProxySpec::default(),
            listen,
            addresses: Vec::new(),
        }
    }

    fn kong_docs() -> Self {
        Self::new(kong_docs_plan(PortMode::ListenerPort))
    }

    fn input(&self) -> RenderInput<'_> {
        RenderInput {
            class_name: CLASS,
            class_uid: CLASS_UID,
            names: &self.names,
            proxy: &self.proxy,
            listen: &self.listen,
            requested_addresses: &self.addresses,
            admin_cert_fingerprint: FINGERPRINT,
        }
    }

    fn render(&self) -> DataPlane {
        render(&self.input())
    }
}

fn pod_spec(plane: &DataPlane) -> &PodSpec {
    plane
        .deployment
        .spec
        .as_ref()
        .and_then(|spec| spec.template.spec.as_ref())
        .expect("pod spec")
}

fn kong_container(plane: &DataPlane) -> &Container {
    &pod_spec(plane).containers[0]
}

fn pod_annotations(plane: &DataPlane) -> BTreeMap<String, String> {
    plane
        .deployment
        .spec
        .as_ref()
        .and_then(|spec| spec.template.metadata.as_ref())
        .and_then(|meta| meta.annotations.clone())
        .expect("pod annotations")
}

fn env_value(plane: &DataPlane, name: &str) -> Option<String> {
    kong_container(plane)
        .env
        .as_ref()
        .expect("env")
        .iter()
        .find(|var| var.name == name)
        .and_then(|var| var.value.clone())
}

fn service_ports(service: &Service) -> Vec<ServicePort> {
    service
        .spec
        .as_ref()
        .and_then(|spec| spec.ports.clone())
        .expect("service ports")
}

fn plain_env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        value_from: None,
    }
}

fn golden_yaml(plane: &DataPlane) -> String {
    let mut documents = vec![serde_yaml_ng::to_string(&plane.deployment).expect("deployment yaml")];
    if let Some(proxy) = &plane.proxy_service {
        documents.push(serde_yaml_ng::to_string(proxy).expect("proxy service yaml"));
    }
    documents.push(serde_yaml_ng::to_string(&plane.admin_service).expect("admin service yaml"));
    documents.join("---\n")
}

#[test]
fn listener_ports_become_container_and_service_ports() {
    let plane = Fixture::kong_docs().render();

    let container_ports: Vec<(String, i32, String)> = kong_container(&plane)
        .ports
        .as_ref()
        .expect("container ports")
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.container_port,
                p.protocol.clone().unwrap_or_default(),
            )
        })
        .collect();
    let expected: Vec<(String, i32, String)> = [
        ("http", 80, "TCP"),
        ("https", 443, "TCP"),
        ("tcp", 9901, "TCP"),
        ("udp", 9902, "UDP"),
        ("tls", 9903, "TCP"),
        ("status", 8100, "TCP"),
        ("admin", 8444, "TCP"),
    ]
    .into_iter()
    .map(|(name, port, protocol)| (name.to_string(), port, protocol.to_string()))
    .collect();
    assert_eq!(container_ports, expected);

    let service = plane.proxy_service.expect("proxy service");
    let service_ports: Vec<(String, i32, Option<IntOrString>)> = service_ports(&service)
        .into_iter()
        .map(|p| (p.name.unwrap_or_default(), p.port, p.target_port))
        .collect();
    let expected: Vec<(String, i32, Option<IntOrString>)> = [
        ("http", 80),
        ("https", 443),
        ("tcp", 9901),
        ("udp", 9902),
        ("tls", 9903),
    ]
    .into_iter()
    .map(|(name, port)| (name.to_string(), port, Some(IntOrString::Int(port))))
    .collect();
    assert_eq!(service_ports, expected);
}

#[test]
fn https_listener_goes_to_proxy_listen_with_ssl_and_http2() {
    let plane = Fixture::kong_docs().render();
    assert_eq!(
        env_value(&plane, "KONG_PROXY_LISTEN").as_deref(),
        Some("0.0.0.0:80 reuseport backlog=16384, 0.0.0.0:443 ssl http2 reuseport backlog=16384")
    );
    assert_eq!(
        env_value(&plane, "KONG_STREAM_LISTEN").as_deref(),
        Some(
            "0.0.0.0:9901 reuseport backlog=16384, 0.0.0.0:9902 udp reuseport, 0.0.0.0:9903 ssl reuseport backlog=16384"
        )
    );
}

#[test]
fn udp_listener_gets_udp_service_port() {
    let plane = Fixture::new(ListenPlan {
        entries: vec![
            entry(5353, ListenerProtocol::Tcp, "dns-tcp", PortMode::ListenerPort),
            entry(5353, ListenerProtocol::Udp, "dns-udp", PortMode::ListenerPort),
        ],
        port_mode: PortMode::ListenerPort,
    })
    .render();
    let service = plane.proxy_service.expect("proxy service");
    let protocols: Vec<(String, i32, String)> = service_ports(&service)
        .into_iter()
        .map(|p| (p.name.unwrap_or_default(), p.port, p.protocol.unwrap_or_default()))
        .collect();
    assert_eq!(
        protocols,
        vec![
            ("dns-tcp".to_string(), 5353, "TCP".to_string()),
            ("dns-udp".to_string(), 5353, "UDP".to_string()),
        ]
    );
}

#[test]
fn listener_change_changes_pod_template_hash_annotation() {
    let before = Fixture::kong_docs();
    let mut after = Fixture::kong_docs();
    after.listen.entries.pop();

    let hash_before = pod_annotations(&before.render())[LISTEN_HASH_ANNOTATION].clone();
    let hash_after = pod_annotations(&after.render())[LISTEN_HASH_ANNOTATION].clone();
    assert_ne!(hash_before, hash_after);
    assert_eq!(hash_before.len(), 64);
}

#[test]
fn listener_rename_on_same_sockets_keeps_pod_template_hash_annotation() {
    let before = Fixture::kong_docs();
    let mut after = Fixture::kong_docs();
    after.listen.entries[0].listeners[0].listener = "web".to_string();

    assert_eq!(
        pod_annotations(&before.render())[LISTEN_HASH_ANNOTATION],
        pod_annotations(&after.render())[LISTEN_HASH_ANNOTATION]
    );
}

#[test]
fn admin_certificate_renewal_changes_pod_template_annotation() {
    let fixture = Fixture::kong_docs();
    let renewed = RenderInput {
        admin_cert_fingerprint: "renewed",
        ..fixture.input()
    };
    assert_eq!(pod_annotations(&fixture.render())[ADMIN_CERT_ANNOTATION], FINGERPRINT);
    assert_eq!(pod_annotations(&render(&renewed))[ADMIN_CERT_ANNOTATION], "renewed");
}

#[test]
fn unchanged_input_renders_byte_identical_objects() {
    let mut fixture = Fixture::kong_docs();
    fixture.proxy.pod_labels = Some(BTreeMap::from([
        ("team".to_string(), "edge".to_string()),
        ("app".to_string(), "kong".to_string()),
    ]));
    fixture.proxy.env = Some(vec![
        plain_env("KONG_LOG_LEVEL", "info"),
        plain_env("KONG_NGINX_WORKER_PROCESSES", "2"),
    ]);
    let first = fixture.render();
    let second = fixture.render();

    let json = |plane: &DataPlane| {
        (
            serde_json::to_string(&plane.deployment).expect("deployment json"),
            serde_json::to_string(&plane.proxy_service).expect("proxy json"),
            serde_json::to_string(&plane.admin_service).expect("admin json"),
        )
    };
    assert_eq!(json(&first), json(&second));
    assert_eq!(content_hash(&first.deployment), content_hash(&second.deployment));
    assert_eq!(content_hash(&first.admin_service), content_hash(&second.admin_service));
}

#[test]
fn content_hash_changes_with_the_object() {
    let plane = Fixture::kong_docs().render();
    let mut scaled = plane.deployment.clone();
    if let Some(spec) = scaled.spec.as_mut() {
        spec.replicas = Some(3);
    }
    assert_ne!(content_hash(&plane.deployment), content_hash(&scaled));
    assert_eq!(content_hash(&plane.deployment).len(), 64);
}

#[test]
fn kongress_env_is_sorted_and_comes_before_user_env() {
    let mut fixture = Fixture::kong_docs();
    fixture.proxy.env = Some(vec![plain_env("ZZ_FIRST", "1"), plain_env("AA_SECOND", "2")]);
    let plane = fixture.render();
    let names: Vec<String> = kong_container(&plane)
        .env
        .as_ref()
        .expect("env")
        .iter()
        .map(|var| var.name.clone())
        .collect();
    let (ours, users) = names.split_at(names.len() - 2);
    assert!(ours.windows(2).all(|pair| pair[0] < pair[1]), "{ours:?}");
    assert!(ours.iter().all(|name| name.starts_with("KONG_")));
    assert_eq!(users, ["ZZ_FIRST", "AA_SECOND"]);
}

#[test]
fn user_env_cannot_override_listen_env_and_clash_is_reported() {
    let mut fixture = Fixture::kong_docs();
    fixture.proxy.env = Some(vec![
        plain_env("KONG_PROXY_LISTEN", "0.0.0.0:8000"),
        plain_env("KONG_LOG_LEVEL", "debug"),
        plain_env("KONG_DATABASE", "postgres"),
        plain_env("KONG_PROXY_LISTEN", "0.0.0.0:8001"),
    ]);
    let plane = fixture.render();

    assert_eq!(plane.env_clashes, vec!["KONG_DATABASE", "KONG_PROXY_LISTEN"]);
    assert_eq!(
        env_value(&plane, "KONG_PROXY_LISTEN").as_deref(),
        Some("0.0.0.0:80 reuseport backlog=16384, 0.0.0.0:443 ssl http2 reuseport backlog=16384")
    );
    assert_eq!(env_value(&plane, "KONG_DATABASE").as_deref(), Some("off"));
    assert_eq!(env_value(&plane, "KONG_LOG_LEVEL").as_deref(), Some("debug"));
    let env = kong_container(&plane).env.as_ref().expect("env");
    assert_eq!(env.iter().filter(|var| var.name == "KONG_PROXY_LISTEN").count(), 1);
}

#[test]
fn repeated_user_env_keeps_the_last_value_once() {
    let mut fixture = Fixture::kong_docs();
    fixture.proxy.env = Some(vec![
        plain_env("KONG_LOG_LEVEL", "debug"),
        plain_env("KONG_LOG_LEVEL", "warn"),
    ]);
    let plane = fixture.render();
    let env = kong_container(&plane).env.as_ref().expect("env");
    assert_eq!(env.iter().filter(|var| var.name == "KONG_LOG_LEVEL").count(), 1);
    assert_eq!(env_value(&plane, "KONG_LOG_LEVEL").as_deref(), Some("warn"));
    assert!(plane.env_clashes.is_empty());
}

/// Sysctls the Kubernetes Pod Security Standards call safe (baseline and restricted).
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

#[test]
fn pod_meets_restricted_pod_security() {
    let plane = Fixture::kong_docs().render();
    let pod = pod_spec(&plane);

    let pod_security = pod.security_context.as_ref().expect("pod securityContext");
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_ne!(pod_security.run_as_user, Some(0));
    assert_eq!(
        pod_security.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
        Some("RuntimeDefault")
    );
    let sysctls = pod_security.sysctls.as_deref().unwrap_or_default();
    assert!(
        !sysctls.is_empty(),
        "ListenerPort mode needs the unprivileged port sysctl"
    );
    for sysctl in sysctls {
        assert!(
            SAFE_SYSCTLS.contains(&sysctl.name.as_str()),
            "unsafe sysctl {}",
            sysctl.name
        );
    }

    assert_ne!(pod.host_network, Some(true));
    assert_ne!(pod.host_pid, Some(true));
    assert_ne!(pod.host_ipc, Some(true));
    assert_eq!(pod.automount_service_account_token, Some(false));
    for volume in pod.volumes.as_deref().unwrap_or_default() {
        assert!(
            volume.empty_dir.is_some() || volume.secret.is_some(),
            "volume {} has a type the restricted profile may forbid",
            volume.name
        );
    }

    for container in &pod.containers {
        let security = container.security_context.as_ref().expect("container securityContext");
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_ne!(security.privileged, Some(true));
        let capabilities = security.capabilities.as_ref().expect("capabilities");
        assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert!(capabilities.add.as_deref().unwrap_or_default().is_empty());
        for port in container.ports.as_deref().unwrap_or_default() {
            assert_eq!(port.host_port, None);
        }
    }
}

#[test]
fn read_only_root_leaves_kong_prefix_and_tmp_writable() {
    let plane = Fixture::kong_docs().render();
    let pod = pod_spec(&plane);
    let mounts = kong_container(&plane).volume_mounts.as_deref().unwrap_or_default();
    for path in [KONG_PREFIX_PATH, "/tmp"] {
        let mount = mounts.iter().find(|m| m.mount_path == path).expect("mount");
        let volume = pod
            .volumes
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|v| v.name == mount.name)
            .expect("volume");
        assert!(volume.empty_dir.is_some(), "{path} is not on an emptyDir");
    }
    assert_eq!(env_value(&plane, "KONG_PREFIX").as_deref(), Some(KONG_PREFIX_PATH));
}

#[test]
fn admin_api_requires_client_certificates_from_mounted_secret() {
    let fixture = Fixture::kong_docs();
    let plane = fixture.render();
    assert_eq!(
        env_value(&plane, "KONG_ADMIN_LISTEN").as_deref(),
        Some("0.0.0.0:8444 ssl")
    );
    assert_eq!(
        env_value(&plane, "KONG_NGINX_ADMIN_SSL_VERIFY_CLIENT").as_deref(),
        Some("on")
    );
    for (var, file) in [
        ("KONG_ADMIN_SSL_CERT", "tls.crt"),
        ("KONG_ADMIN_SSL_CERT_KEY", "tls.key"),
        ("KONG_NGINX_ADMIN_SSL_CLIENT_CERTIFICATE", "ca.crt"),
    ] {
        assert_eq!(env_value(&plane, var), Some(format!("{ADMIN_TLS_MOUNT_PATH}/{file}")));
    }

    let pod = pod_spec(&plane);
    let secret_volume = pod
        .volumes
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find_map(|v| v.secret.as_ref())
        .expect("admin TLS volume");
    assert_eq!(
        secret_volume.secret_name.as_deref(),
        Some(fixture.names.admin_tls_secret.as_str())
    );
    let mounts = kong_container(&plane).volume_mounts.as_deref().unwrap_or_default();
    let mount = mounts
        .iter()
        .find(|m| m.mount_path == ADMIN_TLS_MOUNT_PATH)
        .expect("admin TLS mount");
    assert_eq!(mount.read_only, Some(true));
}

#[test]
fn internal_ports_follow_the_kong_proxy() {
    let mut fixture = Fixture::kong_docs();
    fixture.proxy.status_port = Some(9100);
    fixture.proxy.admin_port = Some(9444);
    let plane = fixture.render();
    assert_eq!(env_value(&plane, "KONG_STATUS_LISTEN").as_deref(), Some("0.0.0.0:9100"));
    assert_eq!(
        env_value(&plane, "KONG_ADMIN_LISTEN").as_deref(),
        Some("0.0.0.0:9444 ssl")
    );
    let admin_ports = service_ports(&plane.admin_service);
    assert_eq!(admin_ports[0].port, 9444);
    let ports = kong_container(&plane).ports.as_deref().unwrap_or_default();
    assert!(
        ports
            .iter()
            .any(|p| p.name.as_deref() == Some("status") && p.container_port == 9100)
    );
}

#[test]
fn readiness_probe_waits_for_a_loaded_config() {
    let plane = Fixture::kong_docs().render();
    let container = kong_container(&plane);
    let probe_target = |probe: Option<&k8s_openapi::api::core::v1::Probe>| {
        probe
            .and_then(|p| p.http_get.as_ref())
            .map(|get| (get.path.clone().unwrap_or_default(), get.port.clone()))
    };
    let status = IntOrString::String("status".to_string());
    assert_eq!(
        probe_target(container.readiness_probe.as_ref()),
        Some(("/status/ready".to_string(), status.clone()))
    );
    assert_eq!(
        probe_target(container.liveness_probe.as_ref()),
        Some(("/status".to_string(), status))
    );
}

#[test]
fn termination_grace_outlasts_kong_quit() {
    let plane = Fixture::kong_docs().render();
    let command = kong_container(&plane)
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
        .and_then(|h| h.exec.as_ref())
        .and_then(|e| e.command.clone())
        .expect("preStop exec");
    assert_eq!(&command[..2], ["kong", "quit"]);
    let seconds = |flag: &str| -> i64 {
        command
            .iter()
            .find_map(|arg| arg.strip_prefix(flag))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let quit_seconds = seconds("--wait=") + seconds("--timeout=");
    assert!(quit_seconds > 0);
    let grace = pod_spec(&plane).termination_grace_period_seconds.expect("grace period");
    assert!(grace > quit_seconds, "grace {grace}s <= kong quit {quit_seconds}s");
}

#[test]
fn shifted_mode_sets_port_maps_and_no_sysctl() {
    let plane = Fixture::new(kong_docs_plan(PortMode::Shifted)).render();

    assert_eq!(
        env_value(&plane, "KONG_PORT_MAPS").as_deref(),
        Some("80:10080, 443:10443, 9901:9901, 9902:9902, 9903:9903")
    );
    assert_eq!(
        env_value(&plane, "KONG_PROXY_LISTEN").as_deref(),
        Some("0.0.0.0:10080 reuseport backlog=16384, 0.0.0.0:10443 ssl http2 reuseport backlog=16384")
    );
    let pod_security = pod_spec(&plane).security_context.as_ref().expect("pod securityContext");
    assert_eq!(pod_security.sysctls, None);

    let service = plane.proxy_service.as_ref().expect("proxy service");
    let http = &service_ports(service)[0];
    assert_eq!(http.port, 80);
    assert_eq!(http.target_port, Some(IntOrString::Int(10080)));
    let ports = kong_container(&plane).ports.as_deref().unwrap_or_default();
    assert_eq!(ports[0].container_port, 10080);
}

#[test]
fn listener_port_mode_sets_no_port_maps() {
    let plane = Fixture::kong_docs().render();
    assert_eq!(env_value(&plane, "KONG_PORT_MAPS"), None);
}

#[test]
fn no_entries_renders_no_proxy_service() {
    let plane = Fixture::new(ListenPlan::default()).render();
    assert_eq!(plane.proxy_service, None);
    assert_eq!(env_value(&plane, "KONG_PROXY_LISTEN").as_deref(), Some("off"));
    assert_eq!(env_value(&plane, "KONG_STREAM_LISTEN").as_deref(), Some("off"));
    let ports = kong_container(&plane).ports.as_deref().unwrap_or_default();
    let names: Vec<&str> = ports.iter().filter_map(|p| p.name.as_deref()).collect();
    assert_eq!(names, ["status", "admin"]);
}

#[test]
fn objects_are_owned_by_the_gateway_class() {
    let plane = Fixture::kong_docs().render();
    let proxy = plane.proxy_service.as_ref().expect("proxy service");
    let objects = [
        (&plane.deployment.metadata, KONG_COMPONENT),
        (&proxy.metadata, PROXY_COMPONENT),
        (&plane.admin_service.metadata, ADMIN_COMPONENT),
    ];
    for (meta, component) in objects {
        assert_eq!(meta.namespace.as_deref(), Some("kongress-system"));
        let owners = meta.owner_references.as_deref().unwrap_or_default();
        assert_eq!(owners.len(), 1);
        let owner = &owners[0];
        assert_eq!(owner.api_version, "gateway.networking.k8s.io/v1");
        assert_eq!(owner.kind, "GatewayClass");
        assert_eq!(owner.name, CLASS);
        assert_eq!(owner.uid, CLASS_UID);
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.block_owner_deletion, Some(true));

        let labels = meta.labels.clone().unwrap_or_default();
        assert_eq!(labels[GATEWAY_CLASS_LABEL], CLASS);
        assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY_VALUE);
        assert_eq!(labels[COMPONENT_LABEL], component);
        assert_eq!(labels[INSTANCE_LABEL], "kongress-kong");
    }
}

#[test]
fn user_labels_and_annotations_cannot_override_ours() {
    let mut fixture = Fixture::kong_docs();
    fixture.proxy.pod_labels = Some(BTreeMap::from([
        (INSTANCE_LABEL.to_string(), "hijacked".to_string()),
        ("team".to_string(), "edge".to_string()),
    ]));
    fixture.proxy.pod_annotations = Some(BTreeMap::from([
        (LISTEN_HASH_ANNOTATION.to_string(), "stale".to_string()),
        ("prometheus.io/scrape".to_string(), "true".to_string()),
    ]));
    fixture.proxy.service = Some(ProxyServiceOptions {
        labels: Some(BTreeMap::from([(COMPONENT_LABEL.to_string(), "mine".to_string())])),
        annotations: Some(BTreeMap::from([(
            "lb.example.com/internal".to_string(),
            "true".to_string(),
        )])),
        ..ProxyServiceOptions::default()
    });
    let plane = fixture.render();

    let template = plane
        .deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .expect("pod template metadata");
    let labels = template.labels.clone().unwrap_or_default();
    assert_eq!(labels[INSTANCE_LABEL], "kongress-kong");
    assert_eq!(labels["team"], "edge");
    let annotations = pod_annotations(&plane);
    assert_ne!(annotations[LISTEN_HASH_ANNOTATION], "stale");
    assert_eq!(annotations["prometheus.io/scrape"], "true");

    let proxy = plane.proxy_service.expect("proxy service");
    let service_labels = proxy.metadata.labels.unwrap_or_default();
    assert_eq!(service_labels[COMPONENT_LABEL], PROXY_COMPONENT);
    let service_annotations = proxy.metadata.annotations.unwrap_or_default();
    assert_eq!(service_annotations["lb.example.com/internal"], "true");
}

#[test]
fn services_select_the_deployment_pods() {
    let plane = Fixture::kong_docs().render();
    let spec = plane.deployment.spec.as_ref().expect("deployment spec");
    let selector = spec.selector.match_labels.clone().expect("match labels");
    assert_eq!(
        selector,
        BTreeMap::from([
            (INSTANCE_LABEL.to_string(), "kongress-kong".to_string()),
            (COMPONENT_LABEL.to_string(), KONG_COMPONENT.to_string()),
        ])
    );
    let pod_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    assert!(selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));

    let proxy = plane.proxy_service.as_ref().expect("proxy service");
    for service in [proxy, &plane.admin_service] {
        assert_eq!(
            service.spec.as_ref().and_then(|s| s.selector.clone()),
            Some(selector.clone())
        );
    }
}

#[test]
fn admin_service_is_headless_and_publishes_not_ready_addresses() {
    let plane = Fixture::kong_docs().render();
    let spec = plane.admin_service.spec.as_ref().expect("admin service spec");
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(spec.publish_not_ready_addresses, Some(true));
    let ports = spec.ports.as_deref().unwrap_or_default();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].name.as_deref(), Some("admin"));
    assert_eq!(ports[0].port, 8444);
    assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
    assert_eq!(
        plane.admin_service.metadata.name.as_deref(),
        Some("kongress-kong-admin")
    );
}

#[test]
fn proxy_service_defaults_to_load_balancer() {
    let plane = Fixture::kong_docs().render();
    let proxy = plane.proxy_service.expect("proxy service");
    assert_eq!(proxy.spec.and_then(|s| s.type_).as_deref(), Some("LoadBalancer"));
}

fn proxy_spec_with(service_type: ServiceType) -> k8s_openapi::api::core::v1::ServiceSpec {
    let mut fixture = Fixture::kong_docs();
    fixture.proxy.service = Some(ProxyServiceOptions {
        type_: Some(service_type),
        external_traffic_policy: Some(ExternalTrafficPolicy::Local),
        load_balancer_class: Some("example.com/lb".to_string()),
        ..ProxyServiceOptions::default()
    });
    fixture
        .render()
        .proxy_service
        .and_then(|s| s.spec)
        .expect("proxy service spec")
}

#[test]
fn external_traffic_policy_is_dropped_for_cluster_ip_services() {
    let cluster_ip = proxy_spec_with(ServiceType::ClusterIP);
    assert_eq!(cluster_ip.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(cluster_ip.external_traffic_policy, None);
    assert_eq!(cluster_ip.load_balancer_class, None);

    let node_port = proxy_spec_with(ServiceType::NodePort);
    assert_eq!(node_port.external_traffic_policy.as_deref(), Some("Local"));
    assert_eq!(node_port.load_balancer_class, None);

    let load_balancer = proxy_spec_with(ServiceType::LoadBalancer);
    assert_eq!(load_balancer.external_traffic_policy.as_deref(), Some("Local"));
    assert_eq!(load_balancer.load_balancer_class.as_deref(), Some("example.com/lb"));
}

#[test]
fn requested_addresses_become_external_ips() {
    let mut fixture = Fixture::kong_docs();
    let spec = fixture.render().proxy_service.and_then(|s| s.spec).expect("spec");
    assert_eq!(spec.external_ips, None);

    fixture.addresses = vec!["192.0.2.10".to_string(), "2001:db8::10".to_string()];
    let spec = fixture.render().proxy_service.and_then(|s| s.spec).expect("spec");
    assert_eq!(
        spec.external_ips,
        Some(vec!["192.0.2.10".to_string(), "2001:db8::10".to_string()])
    );
}

#[test]
fn kong_proxy_shapes_the_pods() {
    let mut fixture = Fixture::kong_docs();
    fixture.proxy.image = Some("kong:3.9.1".to_string());
    fixture.proxy.replicas = Some(3);
    fixture.proxy.node_selector = Some(BTreeMap::from([("edge".to_string(), "true".to_string())]));
    let plane = fixture.render();
    assert_eq!(plane.deployment.spec.as_ref().and_then(|s| s.replicas), Some(3));
    assert_eq!(kong_container(&plane).image.as_deref(), Some("kong:3.9.1"));
    assert_eq!(pod_spec(&plane).node_selector, fixture.proxy.node_selector);
}

#[test]
fn kong_docs_gateway_matches_golden_file() {
    let mut fixture = Fixture::kong_docs();
    fixture.addresses = vec!["192.0.2.10".to_string()];
    let actual = golden_yaml(&fixture.render());

    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(GOLDEN_PATH, &actual).expect("write golden file");
        return;
    }
    let expected =
        std::fs::read_to_string(GOLDEN_PATH).expect("golden file missing; run with UPDATE_GOLDEN=1 to create it");
    assert_eq!(actual, expected);
}
