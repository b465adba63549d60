//! Routes against a real API server, kube-controller-manager (EndpointSlices of real
//! Deployments), kwok, and a Kong admin stand-in on every Kong pod: route status,
//! `attachedRoutes`, the config Kong receives, and `kongress translate` agreeing with it.

use anyhow::{Context as _, Result, bail};
use gateway_api::gateways::Gateway;
use kongress_e2e::fleet::Fleet;
use kongress_e2e::scenario::{Scenario, kong_docs_listeners, with_operator};
use kongress_e2e::standin::StandIn;
use kongress_e2e::*;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

fn api_of(client: &Client, namespace: &str, group: &str, version: &str, kind: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// Creates any object from its JSON (kind and apiVersion decide where it goes).
async fn apply(client: &Client, namespace: &str, object: Value) -> Result<()> {
    let api_version = object["apiVersion"].as_str().context("apiVersion")?;
    let kind = object["kind"].as_str().context("kind")?;
    let name = object["metadata"]["name"].as_str().context("name")?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let api = api_of(client, namespace, group, version, kind);
    api.patch(
        name,
        &PatchParams::apply("kongress-e2e").force(),
        &Patch::Apply(&object),
    )
    .await
    .with_context(|| format!("applying {kind} {namespace}/{name}"))?;
    Ok(())
}

/// A Deployment of `replicas` fake pods and a Service in front of them: kube-controller-manager
/// writes its EndpointSlices once kwok makes the pods Ready.
async fn backend(client: &Client, namespace: &str, name: &str, replicas: i32, ports: Value) -> Result<()> {
    apply(
        client,
        namespace,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}
                }
            }
        }),
    )
    .await?;
    apply(
        client,
        namespace,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"app": name}, "ports": ports}
        }),
    )
    .await
}

/// The route's `status.parents` conditions of kongress, as `Type=Status/Reason`.
async fn route_conditions(
    client: &Client,
    namespace: &str,
    version: &str,
    kind: &str,
    name: &str,
) -> Result<Vec<String>> {
    let api = api_of(client, namespace, "gateway.networking.k8s.io", version, kind);
    let route = api.get(name).await?;
    let parents = route.data["status"]["parents"].as_array().cloned().unwrap_or_default();
    let mut lines = Vec::new();
    for parent in parents
        .iter()
        .filter(|p| p["controllerName"] == "kongress.dev/gateway-controller")
    {
        for condition in parent["conditions"].as_array().into_iter().flatten() {
            lines.push(format!(
                "{}={}/{}",
                condition["type"].as_str().unwrap_or_default(),
                condition["status"].as_str().unwrap_or_default(),
                condition["reason"].as_str().unwrap_or_default()
            ));
        }
    }
    Ok(lines)
}

async fn wait_route(
    client: &Client,
    namespace: &str,
    version: &str,
    kind: &str,
    name: &str,
    want: &[&str],
) -> Result<()> {
    eventually(&format!("{kind} {name} {want:?}"), CONVERGE_TIMEOUT, || async move {
        let got = route_conditions(client, namespace, version, kind, name)
            .await
            .map_err(|e| e.to_string())?;
        if want.iter().all(|w| got.iter().any(|g| g == w)) {
            Ok(Some(()))
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await
}

/// Waits until every stand-in has loaded a config for which `check` holds; returns one of them.
async fn wait_config(fleet: &Fleet, what: &str, check: impl Fn(&Value) -> bool) -> Result<Value> {
    eventually(what, CONVERGE_TIMEOUT, || {
        let standins: Vec<StandIn> = fleet.standins().into_values().collect();
        let check = &check;
        async move {
            if standins.is_empty() {
                return Err("no stand-in yet".into());
            }
            let configs: Vec<Value> = standins.iter().filter_map(|s| s.loaded().map(|l| l.config())).collect();
            if configs.len() == standins.len() && configs.iter().all(check) {
                Ok(Some(configs[0].clone()))
            } else {
                Err(format!(
                    "{} stand-ins, {} loaded, none or not all matching",
                    standins.len(),
                    configs.len()
                ))
            }
        }
    })
    .await
}

/// Kong routes of the config whose tags name `kind`.
fn kong_routes_of<'a>(config: &'a Value, kind: &str) -> Vec<&'a Value> {
    let tag = format!("k8s-kind:{kind}");
    config["services"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["routes"].as_array().into_iter().flatten())
        .chain(config["routes"].as_array().into_iter().flatten())
        .filter(|r| r["tags"].as_array().into_iter().flatten().any(|t| t == &json!(tag)))
        .collect()
}

fn attached_routes(gateway: &Gateway) -> Vec<(String, i32)> {
    gateway
        .status
        .as_ref()
        .and_then(|s| s.listeners.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|l| (l.name, l.attached_routes))
        .collect()
}

#[tokio::test]
async fn routes_of_every_kind_attach_report_status_and_reach_kong_as_translate_prints() -> Result<()> {
    let s = Scenario::new("routes-all").await?;
    let fleet = s.fleet.clone();
    let ns = s.namespace.clone();
    s.create_tls_secret("example-tls").await?;
    s.create_gateway("kong", kong_docs_listeners()).await?;
    backend(
        &s.client,
        &ns,
        "echo",
        2,
        json!([
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "raw", "port": 9000, "targetPort": 9000},
            {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"},
            {"name": "tls", "port": 443, "targetPort": 8443}
        ]),
    )
    .await?;
    let gw = "gateway.networking.k8s.io";
    let parent = |section: Option<&str>| match section {
        Some(section) => json!([{"name": "kong", "sectionName": section}]),
        None => json!([{"name": "kong"}]),
    };
    for route in [
        json!({"apiVersion": format!("{gw}/v1"), "kind": "HTTPRoute", "metadata": {"name": "web", "namespace": ns},
               "spec": {"parentRefs": parent(None), "hostnames": ["example.com"],
                        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                                   "backendRefs": [{"name": "echo", "port": 80}]}]}}),
        json!({"apiVersion": format!("{gw}/v1"), "kind": "GRPCRoute", "metadata": {"name": "grpc", "namespace": ns},
               "spec": {"parentRefs": parent(Some("https")), "hostnames": ["example.com"],
                        "rules": [{"matches": [{"method": {"service": "echo.Echo", "method": "Say"}}],
                                   "backendRefs": [{"name": "echo", "port": 80}]}]}}),
        json!({"apiVersion": format!("{gw}/v1"), "kind": "TLSRoute", "metadata": {"name": "secure", "namespace": ns},
               "spec": {"parentRefs": parent(Some("tls")), "hostnames": ["secure.example.com"],
                        "rules": [{"backendRefs": [{"name": "echo", "port": 443}]}]}}),
        json!({"apiVersion": format!("{gw}/v1alpha2"), "kind": "TCPRoute", "metadata": {"name": "raw", "namespace": ns},
               "spec": {"parentRefs": parent(Some("tcp")), "rules": [{"backendRefs": [{"name": "echo", "port": 9000}]}]}}),
        json!({"apiVersion": format!("{gw}/v1alpha2"), "kind": "UDPRoute", "metadata": {"name": "dns", "namespace": ns},
               "spec": {"parentRefs": parent(Some("udp")), "rules": [{"backendRefs": [{"name": "echo", "port": 53}]}]}}),
    ] {
        apply(&s.client, &ns, route).await?;
    }

    with_operator("routes-all", |operator| async move {
        let accepted = ["Accepted=True/Accepted", "ResolvedRefs=True/ResolvedRefs"];
        wait_route(&s.client, &ns, "v1", "HTTPRoute", "web", &accepted).await?;
        wait_route(&s.client, &ns, "v1", "GRPCRoute", "grpc", &accepted).await?;
        wait_route(&s.client, &ns, "v1", "TLSRoute", "secure", &accepted).await?;
        wait_route(&s.client, &ns, "v1alpha2", "TCPRoute", "raw", &accepted).await?;
        wait_route(&s.client, &ns, "v1alpha2", "UDPRoute", "dns", &accepted).await?;

        // The HTTPRoute attaches to both HTTP listeners (no sectionName), the others to one each.
        let want = vec![
            ("http".to_string(), 1),
            ("https".to_string(), 2),
            ("tcp".to_string(), 1),
            ("udp".to_string(), 1),
            ("tls".to_string(), 1),
        ];
        eventually("attachedRoutes per listener", CONVERGE_TIMEOUT, || {
            let gateways = s.gateways();
            let want = want.clone();
            async move {
                let got = attached_routes(&gateways.get("kong").await.map_err(|e| e.to_string())?);
                if got == want { Ok(Some(())) } else { Err(format!("{got:?}")) }
            }
        })
        .await?;

        // Every kind reaches Kong, with the two ready endpoints of the backend as targets.
        let config = wait_config(&fleet, "config with every route kind and endpoints", |config| {
            ["HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"]
                .iter()
                .all(|kind| !kong_routes_of(config, kind).is_empty())
                && config["upstreams"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|u| u["targets"].as_array().is_some_and(|t| t.len() == 2))
        })
        .await?;
        for route in kong_routes_of(&config, "HTTPRoute") {
            assert_eq!(route["strip_path"], json!(false), "{route}");
            assert_eq!(route["preserve_host"], json!(true), "{route}");
        }

        // `kongress translate` on the same objects prints exactly what Kong received.
        let mut objects = run_kubectl(&["get", &format!("gatewayclass/{}", s.class), "-o", "yaml"]).await?;
        objects += "\n---\n";
        objects += &run_kubectl(&[
            "get", "-n", &ns, "-o", "yaml",
            "gateways,httproutes,grpcroutes,tlsroutes,tcproutes,udproutes,services,endpointslices,secrets,referencegrants,kongproxies",
        ])
        .await?;
        objects += "\n---\n";
        objects += &run_kubectl(&["get", "namespace", &ns, "-o", "yaml"]).await?;
        let dump = std::env::temp_dir().join(format!("kongress-routes-all-{}.yaml", std::process::id()));
        std::fs::write(&dump, &objects)?;
        let output = tokio::process::Command::new(kongress_binary()?)
            .args(["translate", "--format", "json", "-f"])
            .arg(&dump)
            .output()
            .await?;
        std::fs::remove_file(&dump).ok();
        if !output.status.success() {
            bail!("kongress translate failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let printed: Value = serde_json::from_slice(&output.stdout)?;
        let latest = wait_config(&fleet, "the latest config", |_| true).await?;
        assert_eq!(printed, latest, "kongress translate prints what the operator pushed");
        Ok(operator)
    })
    .await
}

#[tokio::test]
async fn a_cross_namespace_backend_needs_a_reference_grant_and_revoking_it_removes_the_backend() -> Result<()> {
    let s = Scenario::new("routes-grant").await?;
    let fleet = s.fleet.clone();
    let ns = s.namespace.clone();
    let other = "routes-grant-backends";
    fresh_namespace(&s.client, other).await?;
    s.create_gateway("gw", json!([{"name": "http", "port": 80, "protocol": "HTTP"}]))
        .await?;
    backend(
        &s.client,
        other,
        "api",
        1,
        json!([{"name": "http", "port": 80, "targetPort": 8080}]),
    )
    .await?;
    apply(
        &s.client,
        &ns,
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "cross", "namespace": ns},
            "spec": {"parentRefs": [{"name": "gw"}],
                     "rules": [{"backendRefs": [{"name": "api", "namespace": other, "port": 80}]}]}
        }),
    )
    .await?;
    let grant = json!({
        "apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
        "metadata": {"name": "routes-may-use-api", "namespace": other},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": ns}],
                 "to": [{"group": "", "kind": "Service", "name": "api"}]}
    });
    let has_targets = |config: &Value| {
        config["upstreams"].as_array().into_iter().flatten().any(|u| {
            u["tags"].as_array().into_iter().flatten().any(|t| t == "k8s-name:api")
                && u["targets"].as_array().is_some_and(|t| !t.is_empty())
        })
    };
    with_operator("routes-grant", |operator| async move {
        wait_route(
            &s.client,
            &ns,
            "v1",
            "HTTPRoute",
            "cross",
            &["ResolvedRefs=False/RefNotPermitted"],
        )
        .await?;
        apply(&s.client, other, grant).await?;
        wait_route(
            &s.client,
            &ns,
            "v1",
            "HTTPRoute",
            "cross",
            &["ResolvedRefs=True/ResolvedRefs"],
        )
        .await?;
        wait_config(&fleet, "config with the granted backend's targets", has_targets).await?;
        api_of(
            &s.client,
            other,
            "gateway.networking.k8s.io",
            "v1beta1",
            "ReferenceGrant",
        )
        .delete("routes-may-use-api", &DeleteParams::default())
        .await?;
        wait_route(
            &s.client,
            &ns,
            "v1",
            "HTTPRoute",
            "cross",
            &["ResolvedRefs=False/RefNotPermitted"],
        )
        .await?;
        wait_config(&fleet, "config without the revoked backend", |c| !has_targets(c)).await?;
        Ok(operator)
    })
    .await
}

#[tokio::test]
async fn a_gateway_backend_client_certificate_reaches_its_https_services_once_its_secret_exists() -> Result<()> {
    let s = Scenario::new("routes-client-cert").await?;
    let fleet = s.fleet.clone();
    let ns = s.namespace.clone();
    apply(
        &s.client,
        &ns,
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "mtls", "namespace": ns},
            "spec": {"gatewayClassName": s.class,
                     "tls": {"backend": {"clientCertificateRef": {"name": "client"}}},
                     "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}
        }),
    )
    .await?;
    backend(
        &s.client,
        &ns,
        "secure-api",
        1,
        json!([{"name": "https", "port": 443, "targetPort": 8443, "appProtocol": "https"}]),
    )
    .await?;
    apply(
        &s.client,
        &ns,
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "payments", "namespace": ns},
            "spec": {"parentRefs": [{"name": "mtls"}],
                     "rules": [{"backendRefs": [{"name": "secure-api", "port": 443}]}]}
        }),
    )
    .await?;
    let presents_certificate = |config: &Value| {
        let ids: Vec<&Value> = config["certificates"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| &c["id"])
            .collect();
        config["services"].as_array().into_iter().flatten().any(|service| {
            service["protocol"] == "https"
                && !service["routes"].as_array().is_none_or(|r| r.is_empty())
                && ids.contains(&&service["client_certificate"]["id"])
        })
    };
    with_operator("routes-client-cert", |operator| async move {
        // Without the Secret: the Gateway is served and says why there is no certificate.
        s.wait_for_gateway_condition("mtls", "ResolvedRefs", "False", Some("InvalidClientCertificateRef"))
            .await?;
        s.wait_for_gateway_condition("mtls", "Accepted", "True", Some("Accepted"))
            .await?;
        wait_route(
            &s.client,
            &ns,
            "v1",
            "HTTPRoute",
            "payments",
            &["Accepted=True/Accepted"],
        )
        .await?;
        let config = wait_config(&fleet, "config with the route", |c| {
            !kong_routes_of(c, "HTTPRoute").is_empty()
        })
        .await?;
        assert!(
            !presents_certificate(&config),
            "no certificate before the Secret exists: {config}"
        );

        // The Secret appears: its watch event alone brings the certificate to Kong.
        s.create_tls_secret("client").await?;
        s.wait_for_gateway_condition("mtls", "ResolvedRefs", "True", Some("ResolvedRefs"))
            .await?;
        wait_config(
            &fleet,
            "the https service presenting the client certificate",
            presents_certificate,
        )
        .await?;
        Ok(operator)
    })
    .await
}
