//! `/metrics`, `/healthz` and `/readyz` of a running kongress, scraped over loopback during
//! a scenario on the real API server: every scrape must parse as strict OpenMetrics text,
//! and the counters must move as the scenario drives them.

use std::net::SocketAddr;

use anyhow::{Context as _, Result, bail};
use kongress_e2e::openmetrics::{self, Exposition};
use kongress_e2e::scenario::{Scenario, with_operator};
use kongress_e2e::*;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

async fn scrape(address: SocketAddr) -> Result<Exposition> {
    let (status, body) = http_get(address, "/metrics").await?;
    if status != 200 {
        bail!("/metrics answered {status}: {body}");
    }
    openmetrics::parse(&body).map_err(|error| anyhow::anyhow!("/metrics is not valid OpenMetrics: {error}\n{body}"))
}

fn value(exposition: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition.sum(name, labels).unwrap_or(0.0)
}

/// Every counter series of `before` is still there in `after`, and no smaller.
fn assert_counters_never_decrease(before: &Exposition, after: &Exposition) -> Result<()> {
    for family in before.families.iter().filter(|f| f.kind == openmetrics::Kind::Counter) {
        for sample in family.samples.iter().filter(|s| s.name.ends_with("_total")) {
            let labels: Vec<(&str, &str)> = sample.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let later = after.sum(&sample.name, &labels);
            match later {
                Some(later) if later >= sample.value => {}
                other => bail!(
                    "{} {:?} went from {} to {other:?}",
                    sample.name,
                    sample.labels,
                    sample.value
                ),
            }
        }
    }
    Ok(())
}

async fn create_route(scenario: &Scenario) -> Result<()> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"));
    let routes: Api<DynamicObject> = Api::namespaced_with(scenario.client.clone(), &scenario.namespace, &resource);
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": scenario.namespace},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "hostnames": ["metrics.example.com"],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                       "backendRefs": [{"name": "nowhere", "port": 80}]}]
        }
    });
    routes
        .patch(
            "web",
            &PatchParams::apply("kongress-e2e").force(),
            &Patch::Apply(&route),
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn metrics_parse_strictly_and_counters_follow_the_scenario() -> Result<()> {
    let scenario = Scenario::new("metrics").await?;
    with_operator("metrics", |operator| async {
        let address = operator.metrics_address().await?;
        assert!(address.ip().is_loopback(), "{address}");

        let (status, body) = http_get(address, "/healthz").await?;
        assert_eq!((status, body.as_str()), (200, "ok\n"), "/healthz");
        let ready = eventually("/readyz to say ready", CONVERGE_TIMEOUT, || async move {
            let (status, body) = http_get(address, "/readyz").await.map_err(|e| e.to_string())?;
            if status == 200 {
                Ok(Some(body))
            } else {
                Err(format!("{status} {body}"))
            }
        })
        .await?;
        assert_eq!(
            ready, "ready: leader\n",
            "one replica without --leader-elect always leads"
        );
        let (status, _) = http_get(address, "/nothing").await?;
        assert_eq!(status, 404);

        let class = scenario.class.as_str();
        scenario
            .create_gateway("gw", json!([{"name": "http", "port": 80, "protocol": "HTTP"}]))
            .await?;
        scenario
            .wait_for_gateway_condition("gw", "Programmed", "True", None)
            .await?;
        let first = scrape(address).await?;
        let reconciles = value(&first, "kongress_reconciles_total", &[("controller", "gatewayclass")]);
        assert!(reconciles >= 1.0, "the Gateway took reconciles: {reconciles}");
        let pushes = value(
            &first,
            "kongress_pushes_total",
            &[("gateway_class", class), ("result", "accepted")],
        );
        assert!(pushes >= 1.0, "the stand-in accepted a config: {pushes}");
        assert_eq!(value(&first, "kongress_leader", &[]), 1.0);
        assert!(value(&first, "kongress_data_planes", &[]) >= 1.0);
        assert!(value(&first, "kongress_cache_objects", &[("kind", "Gateway")]) >= 1.0);
        assert!(value(&first, "kongress_cache_objects", &[("kind", "GatewayClass")]) >= 1.0);
        assert!(
            value(
                &first,
                "kongress_translation_duration_seconds_count",
                &[("gateway_class", class)]
            ) >= 1.0
        );
        for category in ["write_conflict", "forbidden", "api_unavailable", "other"] {
            assert!(
                first
                    .sum("kongress_reconcile_errors_total", &[("category", category)])
                    .is_some(),
                "error category {category} is exported from the start"
            );
        }

        // A route change: translated, pushed to the stand-in, timed until the pod runs it.
        create_route(&scenario).await?;
        let second = eventually(
            "the route's config to be pushed and timed",
            CONVERGE_TIMEOUT,
            || async {
                let now = scrape(address).await.map_err(|e| format!("{e:#}"))?;
                let timed = value(
                    &now,
                    "kongress_route_propagation_seconds_count",
                    &[("gateway_class", class)],
                );
                let pushed = value(
                    &now,
                    "kongress_pushes_total",
                    &[("gateway_class", class), ("result", "accepted")],
                );
                if timed >= 1.0 && pushed > pushes {
                    Ok(Some(now))
                } else {
                    Err(format!("propagation count {timed}, accepted pushes {pushed}"))
                }
            },
        )
        .await?;
        assert_counters_never_decrease(&first, &second)?;
        assert!(value(&second, "kongress_reconciles_total", &[]) > reconciles);
        assert!(value(&second, "kongress_cache_objects", &[("kind", "HTTPRoute")]) >= 1.0);

        // Per pod: one series per stand-in, and durations counted with every push.
        let standins = scenario.fleet.standins();
        let (key, standin) = standins.iter().next().context("a stand-in")?;
        // The fleet names stand-ins `namespace/pod`; kongress labels series with the pod name.
        let pod = key.rsplit('/').next().unwrap_or(key).to_string();
        let pod = pod.as_str();
        let pod_pushes = second
            .sum("kongress_pushes_total", &[("gateway_class", class), ("pod", pod)])
            .context("pushes of the pod")?;
        let pod_durations = value(
            &second,
            "kongress_push_duration_seconds_count",
            &[("gateway_class", class), ("pod", pod)],
        );
        assert_eq!(pod_pushes, pod_durations, "every push to {pod} is timed");
        let accepted_by_standin = standin
            .received()
            .iter()
            .filter(|r| r.status == 201 || r.status == 304)
            .count();
        let accepted = value(
            &second,
            "kongress_pushes_total",
            &[("gateway_class", class), ("pod", pod), ("result", "accepted")],
        );
        assert_eq!(
            accepted, accepted_by_standin as f64,
            "kongress counts what the stand-in took"
        );

        let loaded = standin.loaded().context("the stand-in runs a config")?;
        let bytes = value(&second, "kongress_config_bytes", &[("gateway_class", class)]);
        assert!(
            bytes >= loaded.text.len() as f64,
            "body {bytes} holds the config text {}",
            loaded.text.len()
        );
        let entities = value(&second, "kongress_config_entities", &[("gateway_class", class)]);
        assert!(entities >= 2.0, "a route and its service at least: {entities}");
        scenario.tear_down().await?;
        Ok(operator)
    })
    .await
}
