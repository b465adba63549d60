//! The Helm chart on the local cluster: lint, schema, a server-side dry run, and a real
//! install → upgrade → uninstall in a namespace that enforces the restricted Pod Security
//! profile, with kongress (run locally as the installed ServiceAccount) serving a Gateway
//! whose Kong pods live in that namespace too.

use std::path::PathBuf;
use std::process::{Output, Stdio};

use anyhow::{Context as _, Result, bail};
use gateway_api::gatewayclasses::GatewayClass;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kongress::api::KongProxy;
use kongress_e2e::fleet::Fleet;
use kongress_e2e::scenario::{Scenario, record_dir};
use kongress_e2e::*;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::process::{Child, Command};

const RELEASE: &str = "kongress-chart";

fn chart() -> String {
    workspace_dir().join("charts/kongress").display().to_string()
}

fn helm_binary() -> Result<PathBuf> {
    let path = workspace_dir().join("e2e/.bin/helm");
    if !path.exists() {
        bail!("{} not found: run `make tools`", path.display());
    }
    Ok(path)
}

async fn helm(args: &[&str]) -> Result<Output> {
    Command::new(helm_binary()?)
        .args(args)
        .env("KUBECONFIG", kubeconfig()?)
        .output()
        .await
        .context("running helm")
}

/// Runs helm and returns its standard output; fails with helm's error otherwise.
async fn helm_ok(args: &[&str]) -> Result<String> {
    let output = helm(args).await?;
    if !output.status.success() {
        bail!(
            "helm {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs kubectl on `manifests` (passed as a file); returns (success, stdout, stderr).
async fn kubectl_on_manifests(args: &[&str], manifests: &str) -> Result<(bool, String, String)> {
    let dir = workspace_dir().join("target/e2e-logs");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("chart-manifests.yaml");
    std::fs::write(&file, manifests)?;
    let file = file.display().to_string();
    let output = Command::new(kubectl()?)
        .args(args)
        .args(["-f", file.as_str()])
        .env("KUBECONFIG", kubeconfig()?)
        .output()
        .await
        .context("running kubectl")?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// A namespace (fresh) whose pods must meet the restricted Pod Security profile; workloads
/// whose pod template would not are warned about, which is what a dry run can see.
async fn restricted_namespace(client: &Client, name: &str) -> Result<()> {
    fresh_namespace(client, name).await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/warn-version": "latest",
            }}})),
        )
        .await?;
    Ok(())
}

/// Value sets that together switch on every template and option of the chart.
fn value_sets() -> Vec<Vec<&'static str>> {
    vec![
        vec![],
        vec![
            "--set",
            "gatewayClass.create=true",
            "--set",
            "gatewayClass.proxy.replicas=3",
        ],
        vec![
            "--set",
            "otel.endpoint=http://otel-collector.observability:4317",
            "--set",
            "otel.headersSecret.name=otlp-headers",
            "--set",
            "otel.resourceAttributes.deployment\\.environment=e2e",
            "--set",
            "otel.sampler=parentbased_traceidratio",
            "--set",
            "otel.samplerArg=0.25",
            "--set",
            "podLabels.team=gateway",
            "--set",
            "podAnnotations.example\\.com/note=chart-e2e",
            "--set",
            "imagePullSecrets[0]=registry",
            "--set",
            "image.digest=sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "--set",
            "metrics.bindAddress=::",
        ],
        vec!["--set", "leaderElection.enabled=false", "--set", "replicas=1"],
    ]
}

#[tokio::test]
async fn chart_passes_strict_lint_with_every_option() -> Result<()> {
    let chart = chart();
    for values in value_sets().into_iter().chain([vec![
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.serviceMonitor.labels.release=prometheus",
    ]]) {
        let mut args = vec!["lint", "--strict", chart.as_str()];
        args.extend(values);
        helm_ok(&args).await?;
    }
    Ok(())
}

#[tokio::test]
async fn bad_values_fail_at_template_time_and_name_the_value() -> Result<()> {
    let chart = chart();
    // (values, a part of helm's error that names what is wrong)
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "replicas=0"], "at '/replicas': minimum"),
        (
            &["--set-string", "replicas=two"],
            "at '/replicas': got string, want integer",
        ),
        (&["--set", "replica=2"], "additional properties 'replica' not allowed"),
        (&["--set", "logs.format=xml"], "at '/logs/format'"),
        (&["--set", "otel.protocol=http"], "at '/otel/protocol'"),
        (&["--set", "otel.sampler=sometimes"], "at '/otel/sampler'"),
        (&["--set", "metrics.port=70000"], "at '/metrics/port'"),
        (
            &["--set", "metrics.listenPort=9090"],
            "additional properties 'listenPort' not allowed",
        ),
        // Two replicas without a Lease would both write.
        (&["--set", "leaderElection.enabled=false"], "at '/replicas': maximum"),
        (
            &["--set", "leaderElection.renewDeadlineSeconds=15"],
            "renewDeadlineSeconds must be less than leaderElection.leaseDurationSeconds",
        ),
        (
            &[
                "--set",
                "metrics.serviceMonitor.enabled=true",
                "--set",
                "metrics.service.enabled=false",
            ],
            "serviceMonitor.enabled needs metrics.service.enabled",
        ),
    ];
    for (values, expected) in cases {
        let mut args = vec!["template", RELEASE, chart.as_str()];
        args.extend(values.iter());
        let output = helm(&args).await?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            bail!("helm template {values:?} succeeded; the chart must refuse these values");
        }
        if !stderr.contains(expected) {
            bail!("helm template {values:?} failed without naming the problem ({expected:?}): {stderr}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn rendered_chart_is_admitted_by_the_api_server_under_restricted_pod_security() -> Result<()> {
    let client = client().await?;
    let namespace = "chart-dry-run";
    restricted_namespace(&client, namespace).await?;
    let chart = chart();
    for values in value_sets() {
        let mut args = vec!["template", RELEASE, chart.as_str(), "--namespace", namespace];
        args.extend(values.iter());
        let manifests = helm_ok(&args).await?;
        let (ok, stdout, stderr) =
            kubectl_on_manifests(&["apply", "--dry-run=server", "-n", namespace], &manifests).await?;
        if !ok {
            bail!("the API server refused the chart rendered with {values:?}: {stderr}");
        }
        if stderr.contains("PodSecurity") {
            bail!("the operator pod template breaks the restricted profile ({values:?}): {stderr}");
        }
        for kind in ["deployment.apps", "clusterrole.rbac.authorization.k8s.io", "service"] {
            if !stdout.contains(&format!("{kind}/{RELEASE}")) {
                bail!("the dry run did not show {kind}/{RELEASE}: {stdout}");
            }
        }
    }
    // The check can fail: a container allowed to escalate privileges is reported.
    let manifests = helm_ok(&[
        "template",
        RELEASE,
        chart.as_str(),
        "--namespace",
        namespace,
        "--set",
        "containerSecurityContext.allowPrivilegeEscalation=true",
    ])
    .await?;
    let (_, _, stderr) = kubectl_on_manifests(&["apply", "--dry-run=server", "-n", namespace], &manifests).await?;
    if !stderr.contains("would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation") {
        bail!("a pod template that breaks the restricted profile was not reported: {stderr}");
    }
    Api::<Namespace>::all(client)
        .delete(namespace, &DeleteParams::default())
        .await?;
    Ok(())
}

/// A kubeconfig for the cluster with a token of `service_account` in `namespace`.
async fn service_account_kubeconfig(namespace: &str, service_account: &str) -> Result<PathBuf> {
    let token = run_kubectl(&["-n", namespace, "create", "token", service_account, "--duration=1h"]).await?;
    let server = run_kubectl(&[
        "config",
        "view",
        "--raw",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ])
    .await?;
    let ca = run_kubectl(&[
        "config",
        "view",
        "--raw",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.certificate-authority-data}",
    ])
    .await?;
    let config = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": service_account, "user": {"token": token.trim()}}],
        "contexts": [{"name": "sa", "context": {"cluster": "e2e", "user": service_account}}],
        "current-context": "sa",
    });
    let dir = workspace_dir().join("target/e2e-logs");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{namespace}-{service_account}.kubeconfig"));
    std::fs::write(&path, serde_json::to_string(&config)?)?;
    Ok(path)
}

/// kongress on this machine with the installed chart's identity and settings: the
/// operator pods kwok fakes run no process, so this one does their job.
async fn start_local_operator(namespace: &str, kubeconfig: &PathBuf) -> Result<(Child, PathBuf)> {
    let log = workspace_dir().join("target/e2e-logs/chart-install.log");
    let file = std::fs::File::create(&log)?;
    let child = Command::new(kongress_binary()?)
        .args(["run", "--namespace", namespace])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info,kongress=debug")
        .env("NO_COLOR", "1")
        // As the chart configures its pods: leader election over the Lease the chart's
        // Role allows, under a pod name of its own.
        .env("POD_NAME", "chart-e2e-local")
        .env("KONGRESS_LEADER_ELECT", "true")
        .env("KONGRESS_METRICS_ADDRESS", "127.0.0.1:0")
        .stdout(Stdio::from(file.try_clone()?))
        .stderr(Stdio::from(file))
        .kill_on_drop(true)
        .spawn()
        .context("starting kongress")?;
    Ok((child, log))
}

fn ready_replicas(deployment: &Deployment) -> i32 {
    deployment
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or_default()
}

fn operator_env(deployment: &Deployment, name: &str) -> Option<String> {
    deployment
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)?
        .value
        .clone()
}

async fn wait_for_ready_operator_pods(client: &Client, namespace: &str, replicas: i32) -> Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    eventually(&format!("{replicas} ready operator pods"), CONVERGE_TIMEOUT, || {
        let deployments = deployments.clone();
        async move {
            let deployment = deployments.get(RELEASE).await.map_err(|e| e.to_string())?;
            let want = deployment.spec.as_ref().and_then(|s| s.replicas);
            let ready = ready_replicas(&deployment);
            if want == Some(replicas) && ready == replicas {
                Ok(Some(()))
            } else {
                Err(format!("spec.replicas {want:?}, ready {ready}"))
            }
        }
    })
    .await
}

#[tokio::test]
async fn helm_install_upgrade_uninstall_in_a_restricted_namespace() -> Result<()> {
    let client = client().await?;
    let namespace = "chart-restricted";
    let class = "chart-restricted";
    restricted_namespace(&client, namespace).await?;
    let chart = chart();

    // The namespace really enforces the profile: a pod without a securityContext is refused.
    let bare_pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "not-restricted", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "example.com/c"}]}
    });
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match pods
        .create(&PostParams::default(), &serde_json::from_value(bare_pod)?)
        .await
    {
        Err(kube::Error::Api(status)) if status.message.contains("violates PodSecurity") => {}
        other => bail!("a pod breaking the restricted profile was not refused: {other:?}"),
    }

    // Install: two operator replicas, admitted, one per node; a PDB; the class and KongProxy.
    let notes = helm_ok(&[
        "install",
        RELEASE,
        chart.as_str(),
        "--namespace",
        namespace,
        "--set",
        "gatewayClass.create=true",
        "--set",
        &format!("gatewayClass.name={class}"),
        "--set",
        "gatewayClass.proxy.replicas=1",
        "--wait",
        "--timeout=2m",
    ])
    .await?;
    for next_step in [
        "kubectl get gatewayclass chart-restricted",
        "kind: Gateway, metadata: {name: example",
        "rollout status deployment/kongress-chart",
    ] {
        if !notes.contains(next_step) {
            bail!("NOTES.txt does not show {next_step:?}:\n{notes}");
        }
    }
    // The commands NOTES.txt tells the user to paste are accepted as they are printed.
    let kubectl_path = kubectl()?.display().to_string();
    let pasted: Vec<&str> = notes
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("echo '") && line.ends_with("| kubectl apply -f -"))
        .collect();
    if pasted.is_empty() {
        bail!("NOTES.txt shows no command that creates an object:\n{notes}");
    }
    for line in pasted {
        let command = line.replace(
            "| kubectl apply -f -",
            &format!("| {kubectl_path} apply --dry-run=server -f -"),
        );
        let output = Command::new("bash")
            .args(["-c", &command])
            .env("KUBECONFIG", kubeconfig()?)
            .output()
            .await?;
        if !output.status.success() {
            bail!(
                "the NOTES.txt command {line:?} fails: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    wait_for_ready_operator_pods(&client, namespace, 2).await?;
    let selector = "app.kubernetes.io/instance=kongress-chart,app.kubernetes.io/component=operator";
    let operator_pods = pods.list(&ListParams::default().labels(selector)).await?;
    let mut nodes: Vec<String> = operator_pods
        .items
        .iter()
        .filter_map(|p| p.spec.as_ref()?.node_name.clone())
        .collect();
    nodes.sort();
    nodes.dedup();
    if operator_pods.items.len() != 2 || nodes.len() != 2 {
        bail!(
            "expected 2 operator pods on 2 nodes (anti-affinity), got {} pods on {nodes:?}",
            operator_pods.items.len()
        );
    }
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), namespace);
    let budget = budgets.get(RELEASE).await?;
    let min_available = budget.spec.as_ref().and_then(|s| s.min_available.clone());
    if min_available != Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1)) {
        bail!("PodDisruptionBudget minAvailable is {min_available:?}, want 1");
    }

    // kongress with the installed ServiceAccount serves a Gateway of the installed class:
    // its Kong pods are created in the same restricted namespace.
    let kubeconfig = service_account_kubeconfig(namespace, RELEASE).await?;
    let (mut operator, log) = start_local_operator(namespace, &kubeconfig).await?;
    let scenario = Scenario {
        client: client.clone(),
        namespace: namespace.to_string(),
        class: class.to_string(),
        fleet: Fleet::start(client.clone(), Some(namespace), record_dir(namespace)),
    };
    let served = async {
        scenario
            .create_gateway("web", json!([{"name": "http", "port": 80, "protocol": "HTTP"}]))
            .await?;
        scenario
            .wait_for_gateway_condition("web", "Programmed", "True", None)
            .await?;
        let kong_pods = pods
            .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={}", scenario.names().deployment)))
            .await?;
        if kong_pods.items.is_empty() {
            bail!("no Kong pod in the restricted namespace");
        }
        Ok(())
    }
    .await;
    if let Err(error) = served {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{error:#}\n--- kongress log ---\n{}", tail.join("\n"));
    }

    // Upgrade with changed values: the Deployment follows; the PDB stays while replicas > 1.
    helm_ok(&[
        "upgrade",
        RELEASE,
        chart.as_str(),
        "--namespace",
        namespace,
        "--reuse-values",
        "--set",
        "replicas=3",
        "--set",
        "logs.level=info\\,kongress=debug",
        "--wait",
        "--timeout=2m",
    ])
    .await?;
    wait_for_ready_operator_pods(&client, namespace, 3).await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployment = deployments.get(RELEASE).await?;
    let level = operator_env(&deployment, "RUST_LOG");
    if level.as_deref() != Some("info,kongress=debug") {
        bail!("after the upgrade RUST_LOG is {level:?}");
    }
    budgets.get(RELEASE).await.context("the PDB after the upgrade")?;
    helm_ok(&[
        "upgrade",
        RELEASE,
        chart.as_str(),
        "--namespace",
        namespace,
        "--reuse-values",
        "--set",
        "replicas=1",
        "--wait",
        "--timeout=2m",
    ])
    .await?;
    wait_for_ready_operator_pods(&client, namespace, 1).await?;
    if budgets.get_opt(RELEASE).await?.is_some() {
        bail!("one replica still has a PodDisruptionBudget (it would block every drain)");
    }

    // Uninstall while a Gateway still uses the class (the README's order avoids this).
    helm_ok(&["uninstall", RELEASE, "--namespace", namespace]).await?;
    // The operator goes with its Deployment; here it is the local process.
    operator.kill().await?;
    eventually("the release's own objects to be gone", CONVERGE_TIMEOUT, || {
        let client = client.clone();
        async move {
            let namespaced = |kind: &'static str, found: bool| found.then_some(kind);
            let left: Vec<&str> = [
                namespaced(
                    "Deployment",
                    Api::<Deployment>::namespaced(client.clone(), namespace)
                        .get_opt(RELEASE)
                        .await
                        .map_err(|e| e.to_string())?
                        .is_some(),
                ),
                namespaced(
                    "ServiceAccount",
                    Api::<ServiceAccount>::namespaced(client.clone(), namespace)
                        .get_opt(RELEASE)
                        .await
                        .map_err(|e| e.to_string())?
                        .is_some(),
                ),
                namespaced(
                    "ClusterRole",
                    Api::<ClusterRole>::all(client.clone())
                        .get_opt(RELEASE)
                        .await
                        .map_err(|e| e.to_string())?
                        .is_some(),
                ),
                namespaced(
                    "metrics Service",
                    Api::<Service>::namespaced(client.clone(), namespace)
                        .get_opt(&format!("{RELEASE}-metrics"))
                        .await
                        .map_err(|e| e.to_string())?
                        .is_some(),
                ),
                namespaced(
                    "KongProxy",
                    Api::<KongProxy>::namespaced(client.clone(), namespace)
                        .get_opt(class)
                        .await
                        .map_err(|e| e.to_string())?
                        .is_some(),
                ),
            ]
            .into_iter()
            .flatten()
            .collect();
            if left.is_empty() {
                Ok(Some(()))
            } else {
                Err(format!("still there: {left:?}"))
            }
        }
    })
    .await?;

    // What stays: the CRDs (Helm never deletes crds/), the CA Secret (kongress made it),
    // and the class, held by its finalizer while a Gateway uses it, with its data plane.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.get("kongproxies.kongress.dev")
        .await
        .context("the KongProxy CRD after uninstall")?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    secrets
        .get("kongress-ca")
        .await
        .context("the CA Secret after uninstall")?;
    let classes: Api<GatewayClass> = Api::all(client.clone());
    let left_class = classes.get(class).await.context("the GatewayClass after uninstall")?;
    if left_class.metadata.deletion_timestamp.is_none()
        || !left_class
            .finalizers()
            .iter()
            .any(|f| f == "gateway-exists-finalizer.gateway.networking.k8s.io")
    {
        bail!(
            "expected the class terminating, held by its finalizer: {:?}",
            left_class.metadata
        );
    }
    let names = scenario.names();
    deployments
        .get(&names.deployment)
        .await
        .context("the Kong Deployment after uninstall")?;

    // The way out without an operator (README, "Uninstall"): delete the Gateway, release
    // the finalizer; the garbage collector removes the data plane the class owned.
    scenario.gateways().delete("web", &DeleteParams::default()).await?;
    classes
        .patch(
            class,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    scenario.assert_no_data_plane().await?;
    Api::<Namespace>::all(client)
        .delete(namespace, &DeleteParams::default())
        .await?;
    Ok(())
}
