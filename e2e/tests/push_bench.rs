//! Push benchmark (issue 7): the time from an HTTPRoute write to the API server until
//! every Kong pod (2 stand-ins) has loaded the config carrying the change, p50 and p99
//! over `KONGRESS_BENCH_CHANGES` (200) changes, at each route count of
//! `KONGRESS_BENCH_ROUTES` (`100,5000`); also kongress's own share (write → the request
//! on the wire at the last pod) and how a burst of changes faster than the pods coalesces.
//!
//! Not a timed test: ignored by default. On a cluster from `e2e/cluster up`, with a
//! release kongress:
//!
//! ```sh
//! cargo build --release --bin kongress
//! KONGRESS_BIN=target/release/kongress cargo test --release -p kongress-e2e \
//!   --test push_bench -- --ignored --nocapture
//! ```
//!
//! It needs the HTTPRoute translator: each change rewrites one route's path prefix to
//! `/bench/c<i>/` and waits for that text in the pods' config.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use kongress::api::KongProxy;
use kongress_e2e::scenario::Scenario;
use kongress_e2e::standin::StandIn;
use kongress_e2e::*;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

fn route(namespace: &str, i: usize, path: &str) -> serde_json::Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": format!("r{i}"), "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "hostnames": [format!("r{i}.bench.example")],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": path}}],
                "backendRefs": [{"name": "backend", "port": 80}]
            }]
        }
    })
}

/// Waits until every stand-in has loaded a config containing `marker`; returns, over the
/// pods, the latest request arrival and the latest load.
async fn loaded_everywhere(standins: &[StandIn], marker: &str, seen: &mut [usize]) -> Result<(Instant, Instant)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut found: Vec<Option<(Instant, Instant)>> = vec![None; standins.len()];
    loop {
        for (i, standin) in standins.iter().enumerate() {
            if found[i].is_some() {
                continue;
            }
            let received = standin.received();
            for r in &received[seen[i]..] {
                if r.status == 201 && r.text.contains(marker) {
                    found[i] = Some((r.arrived, r.at));
                }
            }
            seen[i] = received.len();
        }
        if found.iter().all(Option::is_some) {
            let arrived = found.iter().flatten().map(|f| f.0).max();
            let loaded = found.iter().flatten().map(|f| f.1).max();
            if let (Some(arrived), Some(loaded)) = (arrived, loaded) {
                return Ok((arrived, loaded));
            }
        }
        if Instant::now() > deadline {
            bail!("no pod config with {marker} after 120 s (has the HTTPRoute translator landed?)");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn run(routes: usize, changes: usize) -> Result<()> {
    let name = format!("push-bench-{routes}");
    let scenario = Scenario::new(&name).await?;
    let fleet = scenario.fleet.clone();
    Api::<KongProxy>::namespaced(scenario.client.clone(), &name)
        .patch(
            "proxy",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await?;
    scenario
        .create_gateway("gw", json!([{"name": "http", "port": 80, "protocol": "HTTP"}]))
        .await?;
    create(
        &Api::<k8s_openapi::api::core::v1::Service>::namespaced(scenario.client.clone(), &name),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "backend", "namespace": name},
               "spec": {"ports": [{"port": 80}], "selector": {"app": "backend"}}}),
    )
    .await?;
    let api: Api<gateway_api::httproutes::HttpRoute> = Api::namespaced(scenario.client.clone(), &name);
    for i in 0..routes {
        let object = serde_json::from_value(route(&name, i, &format!("/bench/r{i}/")))?;
        api.create(&PostParams::default(), &object).await?;
    }
    let _operator = Operator::start_with(&name, &[]).await?;
    let standins: Vec<StandIn> = eventually("two stand-ins", CONVERGE_TIMEOUT, || {
        let standins = fleet.standins();
        async move {
            if standins.len() == 2 {
                Ok(Some(standins.into_values().collect()))
            } else {
                Err(format!("{} stand-ins", standins.len()))
            }
        }
    })
    .await?;
    let mut seen = vec![0; standins.len()];
    loaded_everywhere(&standins, &format!("/bench/r{}/", routes - 1), &mut seen).await?;

    // One change at a time: write → loaded by every pod.
    let (mut total, mut wire) = (Vec::new(), Vec::new());
    for i in 0..changes {
        let target = format!("r{}", i % routes);
        let patch = json!({"spec": {"rules": [{
            "matches": [{"path": {"type": "PathPrefix", "value": format!("/bench/c{i}/")}}],
            "backendRefs": [{"name": "backend", "port": 80}]
        }]}});
        let written = Instant::now();
        api.patch(&target, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        let (arrived, loaded) = loaded_everywhere(&standins, &format!("/bench/c{i}/"), &mut seen).await?;
        wire.push(arrived.saturating_duration_since(written));
        total.push(loaded.saturating_duration_since(written));
    }
    total.sort();
    wire.sort();

    // A burst faster than the pods: how many configs the pods get for 50 writes.
    let before: usize = standins.iter().map(|s| s.received().len()).sum();
    let burst = 50;
    for i in 0..burst {
        let patch = json!({"spec": {"rules": [{
            "matches": [{"path": {"type": "PathPrefix", "value": format!("/bench/b{i}/")}}],
            "backendRefs": [{"name": "backend", "port": 80}]
        }]}});
        api.patch(
            &format!("r{}", i % routes),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await?;
    }
    loaded_everywhere(&standins, &format!("/bench/b{}/", burst - 1), &mut seen).await?;
    let pushes: usize = standins.iter().map(|s| s.received().len()).sum::<usize>() - before;

    println!(
        "routes={routes} changes={changes}: write->loaded p50={:?} p99={:?}; write->on the wire p50={:?} p99={:?}; \
         burst of {burst} writes -> {pushes} pushes over {} pods",
        percentile(&total, 50.0),
        percentile(&total, 99.0),
        percentile(&wire, 50.0),
        percentile(&wire, 99.0),
        standins.len()
    );
    Ok(())
}

#[tokio::test]
#[ignore = "benchmark: run explicitly (see the module doc)"]
async fn push_latency() -> Result<()> {
    let counts = std::env::var("KONGRESS_BENCH_ROUTES").unwrap_or_else(|_| "100,5000".into());
    let changes: usize = std::env::var("KONGRESS_BENCH_CHANGES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(200);
    for routes in counts.split(',').filter_map(|c| c.trim().parse::<usize>().ok()) {
        run(routes.max(1), changes).await?;
    }
    Ok(())
}
