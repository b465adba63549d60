//! Provisioning against a real API server, kube-controller-manager, scheduler and kwok.
//! Each test owns a GatewayClass and a namespace named after it, and its own kongress.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use gateway_api::gatewayclasses::GatewayClass;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kongress::api::KongProxy;
use kongress::controller::WRITE_LOG_TARGET;
use kongress_e2e::fleet::Fleet;
use kongress_e2e::scenario::*;
use kongress_e2e::*;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;

#[tokio::test]
async fn kong_documentation_gateway_gets_a_matching_data_plane_and_becomes_programmed() -> Result<()> {
    let s = Scenario::new("e2e-kong-docs").await?;
    with_operator("kong-docs", |operator| async move {
        s.create_tls_secret("example-tls").await?;
        s.create_gateway("kong", kong_docs_listeners()).await?;

        s.wait_for_env(&[
            ("KONG_PROXY_LISTEN", "0.0.0.0:80 reuseport backlog=16384, 0.0.0.0:443 ssl http2 reuseport backlog=16384"),
            ("KONG_STREAM_LISTEN", "0.0.0.0:9901 reuseport backlog=16384, 0.0.0.0:9902 udp reuseport, 0.0.0.0:9903 ssl reuseport backlog=16384"),
            ("KONG_DATABASE", "off"),
            ("KONG_ROUTER_FLAVOR", "expressions"),
        ])
        .await?;
        s.wait_for_service_ports(&[(80, "TCP"), (443, "TCP"), (9901, "TCP"), (9902, "UDP"), (9903, "TCP")])
            .await?;

        // kwok runs the pod: the scheduler placed it on a fake node and it reports Ready.
        let pods: Api<Pod> = Api::namespaced(s.client.clone(), &s.namespace);
        let selector = format!("app.kubernetes.io/instance={}", s.names().deployment);
        eventually("a Ready Kong pod", CONVERGE_TIMEOUT, || {
            let pods = pods.clone();
            let selector = selector.clone();
            async move {
                let list = pods
                    .list(&ListParams::default().labels(&selector))
                    .await
                    .map_err(|e| e.to_string())?;
                let ready = list.items.iter().any(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                });
                if ready {
                    Ok(Some(()))
                } else {
                    Err(format!("{} pods, none Ready", list.items.len()))
                }
            }
        })
        .await?;

        let gateway = s
            .wait_for_gateway_condition("kong", "Programmed", "True", Some("Programmed"))
            .await?;
        let status = gateway.status.clone().context("status")?;
        assert!(
            !status.addresses.clone().unwrap_or_default().is_empty(),
            "Gateway has no address: {status:?}"
        );
        for listener in ["http", "https", "tcp", "udp", "tls"] {
            s.wait_for_listener_condition("kong", listener, "Accepted", "True", "Accepted")
                .await?;
            s.wait_for_listener_condition("kong", listener, "Programmed", "True", "Programmed")
                .await?;
            s.wait_for_listener_condition("kong", listener, "ResolvedRefs", "True", "ResolvedRefs")
                .await?;
            s.wait_for_listener_condition("kong", listener, "Conflicted", "False", "NoConflicts")
                .await?;
        }

        let table = run_kubectl(&["get", "gateway", "kong", "-n", &s.namespace]).await?;
        let row = table.lines().nth(1).context("kubectl printed no row")?;
        let columns: Vec<&str> = row.split_whitespace().collect();
        // NAME CLASS ADDRESS PROGRAMMED AGE
        assert_eq!(columns.get(3), Some(&"True"), "kubectl get gateway:\n{table}");
        assert!(
            columns.get(2).is_some_and(|a| a.parse::<std::net::IpAddr>().is_ok()),
            "no address in:\n{table}"
        );

        let classes: Api<GatewayClass> = Api::all(s.client.clone());
        let class = classes.get(&s.class).await?;
        assert!(
            class
                .finalizers()
                .iter()
                .any(|f| f == "gateway-exists-finalizer.gateway.networking.k8s.io")
        );
        let accepted = class.status.and_then(|st| st.conditions).unwrap_or_default();
        assert!(
            accepted.iter().any(|c| c.type_ == "Accepted" && c.status == "True"),
            "class conditions: {accepted:?}"
        );
        assert!(
            accepted
                .iter()
                .any(|c| c.type_ == "SupportedVersion" && c.status == "True"),
            "class conditions: {accepted:?}"
        );

        s.tear_down().await?;
        Ok(operator)
    })
    .await
}

#[tokio::test]
async fn gateways_of_one_class_merge_and_a_newer_conflict_leaves_the_older_gateway_serving() -> Result<()> {
    let s = Scenario::new("e2e-merge").await?;
    with_operator("merge", |operator| async move {
        s.create_gateway(
            "first",
            json!([
                {"name": "web", "port": 80, "protocol": "HTTP", "hostname": "first.example.com"},
                {"name": "db", "port": 5432, "protocol": "TCP"}
            ]),
        )
        .await?;
        s.wait_for_gateway_condition("first", "Programmed", "True", None)
            .await?;
        s.create_gateway(
            "second",
            json!([
                {"name": "web", "port": 80, "protocol": "HTTP", "hostname": "second.example.com"},
                {"name": "api", "port": 8080, "protocol": "HTTP"}
            ]),
        )
        .await?;
        s.wait_for_env(&[
            (
                "KONG_PROXY_LISTEN",
                "0.0.0.0:80 reuseport backlog=16384, 0.0.0.0:8080 reuseport backlog=16384",
            ),
            ("KONG_STREAM_LISTEN", "0.0.0.0:5432 reuseport backlog=16384"),
        ])
        .await?;
        s.wait_for_service_ports(&[(80, "TCP"), (8080, "TCP"), (5432, "TCP")])
            .await?;
        s.wait_for_gateway_condition("second", "Programmed", "True", None)
            .await?;

        let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), &s.namespace);
        // Deployment status moves with kube-controller-manager; its generation moves only with the spec.
        let before = deployments.get(&s.names().deployment).await?.metadata.generation;

        // A newer Gateway asks for 5432 as HTTP: it loses; the older TCP listener keeps serving.
        s.create_gateway("third", json!([{"name": "clash", "port": 5432, "protocol": "HTTP"}]))
            .await?;
        s.wait_for_listener_condition("third", "clash", "Conflicted", "True", "ProtocolConflict")
            .await?;
        s.wait_for_listener_condition("third", "clash", "Accepted", "False", "ProtocolConflict")
            .await?;
        s.wait_for_gateway_condition("third", "Accepted", "False", Some("ListenersNotValid"))
            .await?;
        s.wait_for_listener_condition("first", "db", "Conflicted", "False", "NoConflicts")
            .await?;
        s.wait_for_gateway_condition("first", "Programmed", "True", None)
            .await?;
        let after = deployments.get(&s.names().deployment).await?.metadata.generation;
        assert_eq!(
            before, after,
            "a rejected listener must not touch the serving Deployment"
        );

        s.tear_down().await?;
        Ok(operator)
    })
    .await
}

#[tokio::test]
async fn removing_a_listener_removes_its_service_port_and_env_entry() -> Result<()> {
    let s = Scenario::new("e2e-remove-listener").await?;
    with_operator("remove-listener", |operator| async move {
        s.create_gateway(
            "gw",
            json!([
                {"name": "web", "port": 80, "protocol": "HTTP"},
                {"name": "dns", "port": 53, "protocol": "UDP"}
            ]),
        )
        .await?;
        s.wait_for_env(&[("KONG_STREAM_LISTEN", "0.0.0.0:53 udp reuseport")])
            .await?;
        s.wait_for_service_ports(&[(80, "TCP"), (53, "UDP")]).await?;
        let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), &s.namespace);
        let template_hash = |d: &Deployment| {
            d.spec
                .as_ref()
                .and_then(|s| s.template.metadata.as_ref())
                .and_then(|m| m.annotations.clone())
                .unwrap_or_default()
                .get("kongress.dev/listen-hash")
                .cloned()
        };
        let before = template_hash(&deployments.get(&s.names().deployment).await?);

        s.gateways()
            .patch(
                "gw",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"listeners": [{"name": "web", "port": 80, "protocol": "HTTP"}]}})),
            )
            .await?;
        s.wait_for_env(&[
            ("KONG_STREAM_LISTEN", "off"),
            ("KONG_PROXY_LISTEN", "0.0.0.0:80 reuseport backlog=16384"),
        ])
        .await?;
        s.wait_for_service_ports(&[(80, "TCP")]).await?;
        let after = template_hash(&deployments.get(&s.names().deployment).await?);
        assert_ne!(
            before, after,
            "a listener change must roll the pods (pod template annotation)"
        );

        s.tear_down().await?;
        Ok(operator)
    })
    .await
}

#[tokio::test]
async fn certificate_secret_appearing_resolves_the_listener() -> Result<()> {
    let s = Scenario::new("e2e-late-secret").await?;
    with_operator("late-secret", |operator| async move {
        s.create_gateway(
            "gw",
            json!([
                {"name": "web", "port": 80, "protocol": "HTTP"},
                {"name": "secure", "port": 443, "protocol": "HTTPS", "tls": {"certificateRefs": [{"name": "late-tls"}]}}
            ]),
        )
        .await?;
        s.wait_for_listener_condition("gw", "secure", "ResolvedRefs", "False", "InvalidCertificateRef")
            .await?;
        s.wait_for_env(&[("KONG_PROXY_LISTEN", "0.0.0.0:80 reuseport backlog=16384")])
            .await?;
        s.create_tls_secret("late-tls").await?;
        s.wait_for_listener_condition("gw", "secure", "ResolvedRefs", "True", "ResolvedRefs")
            .await?;
        s.wait_for_env(&[(
            "KONG_PROXY_LISTEN",
            "0.0.0.0:80 reuseport backlog=16384, 0.0.0.0:443 ssl http2 reuseport backlog=16384",
        )])
        .await?;
        s.tear_down().await?;
        Ok(operator)
    })
    .await
}

#[tokio::test]
async fn garbage_collector_removes_the_data_plane_of_a_deleted_class() -> Result<()> {
    let s = Scenario::new("e2e-gc").await?;
    let operator = Operator::start("gc").await?;
    s.create_gateway("gw", json!([{"name": "web", "port": 80, "protocol": "HTTP"}]))
        .await?;
    s.wait_for_gateway_condition("gw", "Programmed", "True", None).await?;
    // Without kongress nobody deletes the objects explicitly: only ownerReferences can.
    operator.stop().await?;
    let classes: Api<GatewayClass> = Api::all(s.client.clone());
    classes
        .patch(
            &s.class,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    classes.delete(&s.class, &DeleteParams::default()).await?;
    s.assert_no_data_plane().await?;
    s.gateways()
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    Ok(())
}

#[tokio::test]
async fn restarting_kongress_on_a_converged_cluster_makes_zero_writes() -> Result<()> {
    let s = Scenario::new("e2e-restart").await?;
    let first = Operator::start("restart-first").await?;
    s.create_tls_secret("example-tls").await?;
    s.create_gateway("kong", kong_docs_listeners()).await?;
    s.wait_for_gateway_condition("kong", "Programmed", "True", None).await?;
    // Let late events (Deployment status, EndpointSlices) settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let snapshot = resource_versions(&s).await?;
    let first_log = std::fs::read_to_string(&first.log)?;
    first.stop().await?;
    assert!(
        first_log.contains(WRITE_LOG_TARGET),
        "the write log lines this test relies on are missing"
    );

    let second = Operator::start("restart-second").await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = resource_versions(&s).await?;
    let log = std::fs::read_to_string(&second.log)?;
    // Quiet is not the same as alive: the restarted kongress must still act on a change.
    s.gateways()
        .patch(
            "kong",
            &PatchParams::default(),
            &Patch::Json::<()>(serde_json::from_value(json!([
                {"op": "add", "path": "/spec/listeners/-", "value": {"name": "alt", "port": 8080, "protocol": "HTTP"}}
            ]))?),
        )
        .await?;
    let reacted = s
        .wait_for_env(&[(
            "KONG_PROXY_LISTEN",
            "0.0.0.0:80 reuseport backlog=16384, 0.0.0.0:443 ssl http2 reuseport backlog=16384, 0.0.0.0:8080 reuseport backlog=16384",
        )])
        .await;
    second.stop().await?;
    reacted?;
    assert_eq!(
        snapshot, after,
        "kongress changed a converged cluster after a restart; log:\n{log}"
    );
    // Even a write that changes nothing (a no-op apply or patch) is a request kongress must not make.
    let writes: Vec<&str> = log.lines().filter(|l| l.contains(WRITE_LOG_TARGET)).collect();
    assert!(
        writes.is_empty(),
        "kongress sent {} writes after a restart:\n{}",
        writes.len(),
        writes.join("\n")
    );

    let teardown = Operator::start("restart-teardown").await?;
    let result = s.tear_down().await;
    teardown.stop().await?;
    result
}

/// resourceVersion of every object kongress writes for the scenario.
async fn resource_versions(s: &Scenario) -> Result<BTreeMap<String, String>> {
    let names = s.names();
    let mut versions = BTreeMap::new();
    let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), &s.namespace);
    let services: Api<Service> = Api::namespaced(s.client.clone(), &s.namespace);
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.namespace);
    let classes: Api<GatewayClass> = Api::all(s.client.clone());
    let deployment = deployments.get(&names.deployment).await?;
    // Deployment status moves with kube-controller-manager; compare what kongress owns.
    versions.insert(
        "Deployment generation".into(),
        deployment.metadata.generation.unwrap_or_default().to_string(),
    );
    versions.insert(
        "proxy Service".into(),
        services
            .get(&names.proxy_service)
            .await?
            .resource_version()
            .unwrap_or_default(),
    );
    versions.insert(
        "admin Service".into(),
        services
            .get(&names.admin_service)
            .await?
            .resource_version()
            .unwrap_or_default(),
    );
    versions.insert(
        "admin Secret".into(),
        secrets
            .get(&names.admin_tls_secret)
            .await?
            .resource_version()
            .unwrap_or_default(),
    );
    versions.insert(
        "GatewayClass".into(),
        classes.get(&s.class).await?.resource_version().unwrap_or_default(),
    );
    for gateway in s.gateways().list(&ListParams::default()).await? {
        versions.insert(
            format!("Gateway {}", gateway.name_any()),
            gateway.resource_version().unwrap_or_default(),
        );
    }
    if versions.values().any(String::is_empty) {
        bail!("an object has no resourceVersion: {versions:?}");
    }
    Ok(versions)
}

#[tokio::test]
async fn a_class_whose_kong_proxy_vanishes_keeps_serving_and_says_why() -> Result<()> {
    let s = Scenario::new("e2e-lost-params").await?;
    with_operator("lost-params", |operator| async move {
        s.create_gateway("gw", json!([{"name": "web", "port": 80, "protocol": "HTTP"}]))
            .await?;
        s.wait_for_gateway_condition("gw", "Programmed", "True", None).await?;
        let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), &s.namespace);
        let generation = deployments.get(&s.names().deployment).await?.metadata.generation;

        let proxies: Api<KongProxy> = Api::namespaced(s.client.clone(), &s.namespace);
        proxies.delete("proxy", &DeleteParams::default()).await?;
        let classes: Api<GatewayClass> = Api::all(s.client.clone());
        eventually("class Accepted=False/InvalidParameters", CONVERGE_TIMEOUT, || {
            let classes = classes.clone();
            let class = s.class.clone();
            async move {
                let class = classes.get(&class).await.map_err(|e| e.to_string())?;
                let conditions = class.status.and_then(|st| st.conditions).unwrap_or_default();
                let accepted = conditions.iter().find(|c| c.type_ == "Accepted");
                match accepted {
                    Some(c) if c.status == "False" && c.reason == "InvalidParameters" => Ok(Some(())),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await?;
        s.wait_for_gateway_condition("gw", "Accepted", "Unknown", Some("Pending"))
            .await?;
        // The data plane that was serving stays exactly as it was.
        let kept = deployments.get(&s.names().deployment).await?;
        assert_eq!(kept.metadata.generation, generation);
        assert!(kept.metadata.deletion_timestamp.is_none());

        // A Gateway whose listeners are all invalid is rejected without touching the others.
        create(
            &Api::<KongProxy>::namespaced(s.client.clone(), &s.namespace),
            json!({
                "apiVersion": "kongress.dev/v1alpha1", "kind": "KongProxy",
                "metadata": {"name": "proxy", "namespace": s.namespace}, "spec": {}
            }),
        )
        .await?;
        s.wait_for_gateway_condition("gw", "Accepted", "True", Some("Accepted"))
            .await?;
        s.create_gateway(
            "odd",
            json!([{"name": "quic", "port": 7000, "protocol": "example.com/quic"}]),
        )
        .await?;
        s.wait_for_gateway_condition("odd", "Accepted", "False", Some("ListenersNotValid"))
            .await?;
        s.wait_for_listener_condition("odd", "quic", "Accepted", "False", "UnsupportedProtocol")
            .await?;
        s.wait_for_gateway_condition("gw", "Programmed", "True", None).await?;

        s.tear_down().await?;
        Ok(operator)
    })
    .await
}

#[tokio::test]
async fn moving_the_kong_proxy_to_another_namespace_moves_the_data_plane() -> Result<()> {
    let s = Scenario::new("e2e-move").await?;
    let target = "e2e-move-target";
    fresh_namespace(&s.client, target).await?;

    with_operator("move", |operator| async move {
        s.create_gateway("gw", json!([{"name": "web", "port": 80, "protocol": "HTTP"}]))
            .await?;
        s.wait_for_gateway_condition("gw", "Programmed", "True", None).await?;

        create(
            &Api::<KongProxy>::namespaced(s.client.clone(), target),
            json!({
                "apiVersion": "kongress.dev/v1alpha1", "kind": "KongProxy",
                "metadata": {"name": "proxy", "namespace": target}, "spec": {}
            }),
        )
        .await?;
        let classes: Api<GatewayClass> = Api::all(s.client.clone());
        classes
            .patch(
                &s.class,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"parametersRef": {"namespace": target}}})),
            )
            .await?;

        let moved = Scenario {
            client: s.client.clone(),
            namespace: target.to_string(),
            class: s.class.clone(),
            // The data plane moves there: its Kong pods need stand-ins too.
            fleet: Fleet::start(s.client.clone(), Some(target), record_dir(target)),
        };
        moved
            .wait_for_env(&[("KONG_PROXY_LISTEN", "0.0.0.0:80 reuseport backlog=16384")])
            .await?;
        // What the old namespace held is pruned, not left for the class's deletion.
        s.assert_no_data_plane().await?;
        s.wait_for_gateway_condition("gw", "Programmed", "True", None).await?;

        s.tear_down().await?;
        moved.assert_no_data_plane().await?;
        Ok(operator)
    })
    .await
}

#[tokio::test]
async fn a_253_character_dotted_class_name_gets_a_valid_data_plane() -> Result<()> {
    // The longest name a GatewayClass may have, with dots no Service name may contain.
    let class = format!(
        "{}.example.com",
        "long-class-name".repeat(20).chars().take(241).collect::<String>()
    );
    assert_eq!(class.len(), 253);
    let s = Scenario::with_class("e2e-long-name", &class).await?;
    with_operator("long-name", |operator| async move {
        s.create_gateway("gw", json!([{"name": "web", "port": 80, "protocol": "HTTP"}]))
            .await?;
        s.wait_for_env(&[("KONG_PROXY_LISTEN", "0.0.0.0:80 reuseport backlog=16384")])
            .await?;
        s.wait_for_gateway_condition("gw", "Programmed", "True", None).await?;
        let names = s.names();
        for name in [
            &names.deployment,
            &names.proxy_service,
            &names.admin_service,
            &names.admin_tls_secret,
        ] {
            assert!(name.len() <= 63 && !name.contains('.'), "{name}");
        }
        s.tear_down().await?;
        Ok(operator)
    })
    .await
}

#[tokio::test]
async fn a_data_plane_the_api_server_refuses_is_reported_on_the_gateway() -> Result<()> {
    let s = Scenario::new("e2e-refused").await?;
    with_operator("refused", |operator| async move {
        // Requests above limits: the API server rejects the Deployment kongress renders.
        let proxies: Api<KongProxy> = Api::namespaced(s.client.clone(), &s.namespace);
        proxies
            .patch(
                "proxy",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}})),
            )
            .await?;
        s.create_gateway("gw", json!([{"name": "web", "port": 80, "protocol": "HTTP"}]))
            .await?;
        let gateway = s
            .wait_for_gateway_condition("gw", "Programmed", "False", Some("Invalid"))
            .await?;
        let message = gateway
            .status
            .and_then(|st| st.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Programmed")
            .map(|c| c.message)
            .unwrap_or_default();
        assert!(message.contains("refused") && message.contains("limit"), "{message}");

        // Fixing the input lets the data plane through.
        proxies
            .patch(
                "proxy",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"resources": null}})),
            )
            .await?;
        s.wait_for_gateway_condition("gw", "Programmed", "True", None).await?;
        s.tear_down().await?;
        Ok(operator)
    })
    .await
}
