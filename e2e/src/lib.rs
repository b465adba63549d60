//! Harness of the e2e tests: a kube client for the local cluster that `e2e/cluster`
//! started, a kongress process per test, and polling helpers.
//!
//! [`standin`] is the Kong admin stand-in and [`fleet`] runs one per Kong pod.
//!
//! The tests never skip: without `KUBECONFIG` pointing at a cluster they fail and
//! say how to start one.

pub mod fleet;
pub mod standin;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::process::{Child, Command};

/// The operator namespace every test's kongress runs with.
pub const OPERATOR_NAMESPACE: &str = "kongress-system";

/// How long a condition may take to hold before a test fails.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);

pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The kubeconfig of the e2e cluster, or an error that says how to get one.
pub fn kubeconfig() -> Result<PathBuf> {
    let path = std::env::var_os("KUBECONFIG")
        .map(PathBuf::from)
        .context("KUBECONFIG is not set: run the e2e tests with `make e2e` (it starts the local cluster), or `eval $(e2e/cluster env)` after `e2e/cluster up`")?;
    if !path.exists() {
        bail!(
            "KUBECONFIG {} does not exist: is the local cluster up? (`e2e/cluster up`)",
            path.display()
        );
    }
    Ok(path)
}

/// The kubeconfig kongress runs with: `KONGRESS_KUBECONFIG` (the chart's ServiceAccount,
/// set by `make e2e` to prove the chart's RBAC), else the admin `KUBECONFIG`.
pub fn operator_kubeconfig() -> Result<PathBuf> {
    match std::env::var_os("KONGRESS_KUBECONFIG") {
        Some(path) => Ok(PathBuf::from(path)),
        None => kubeconfig(),
    }
}

/// A client for the e2e cluster.
pub async fn client() -> Result<Client> {
    kubeconfig()?;
    let client = Client::try_default()
        .await
        .context("building a client from KUBECONFIG")?;
    client
        .apiserver_version()
        .await
        .context("the e2e cluster's API server does not answer")?;
    Ok(client)
}

/// The kongress binary under test (`KONGRESS_BIN`, else the workspace's debug build).
pub fn kongress_binary() -> Result<PathBuf> {
    let path = std::env::var_os("KONGRESS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("target/debug/kongress"));
    if !path.exists() {
        bail!(
            "kongress binary {} not found: run `cargo build --bin kongress` first",
            path.display()
        );
    }
    Ok(path)
}

/// A kubectl built by the e2e tooling (`e2e/.bin/kubectl`).
pub fn kubectl() -> Result<PathBuf> {
    let path = workspace_dir().join("e2e/.bin/kubectl");
    if !path.exists() {
        bail!("{} not found: run `make tools`", path.display());
    }
    Ok(path)
}

/// decK built by the e2e tooling (`e2e/.bin/deck`), for offline validation of Kong configs.
pub fn deck() -> Result<PathBuf> {
    let path = workspace_dir().join("e2e/.bin/deck");
    if !path.exists() {
        bail!("{} not found: run `make tools`", path.display());
    }
    Ok(path)
}

/// Runs kubectl against the e2e cluster and returns its standard output.
pub async fn run_kubectl(args: &[&str]) -> Result<String> {
    let output = Command::new(kubectl()?)
        .args(args)
        .env("KUBECONFIG", kubeconfig()?)
        .output()
        .await
        .context("running kubectl")?;
    if !output.status.success() {
        bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A running kongress process; killed when dropped.
pub struct Operator {
    child: Child,
    pub log: PathBuf,
}

impl Operator {
    /// Starts kongress with its log in `target/e2e-logs/<name>.log`.
    pub async fn start(name: &str) -> Result<Self> {
        Self::start_with(name, &[]).await
    }

    /// [`Operator::start`] with extra command-line arguments.
    pub async fn start_with(name: &str, extra: &[&str]) -> Result<Self> {
        let logs = workspace_dir().join("target/e2e-logs");
        std::fs::create_dir_all(&logs)?;
        let log = logs.join(format!("{name}.log"));
        // Truncated: a log holds one run, so a test reading it never sees an earlier run's lines.
        let file = std::fs::File::create(&log)?;
        let child = Command::new(kongress_binary()?)
            .args(["run", "--namespace", OPERATOR_NAMESPACE])
            .args(extra)
            .env("KUBECONFIG", operator_kubeconfig()?)
            .env("RUST_LOG", "info,kongress=debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .context("starting kongress")?;
        Ok(Self { child, log })
    }

    /// Stops kongress and waits for it to exit.
    pub async fn stop(mut self) -> Result<()> {
        self.child.kill().await.context("stopping kongress")?;
        Ok(())
    }
}

/// Polls `probe` every 250 ms until it returns `Some`, or fails after `timeout`
/// with the last observation in the message.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, String>>,
{
    let start = Instant::now();
    let mut last = String::from("no observation yet");
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(observation) => last = observation,
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Creates a namespace, deleting a leftover one of an earlier run first.
pub async fn fresh_namespace(client: &Client, name: &str) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(name).await?.is_some() {
        let _ = namespaces.delete(name, &DeleteParams::default()).await;
        eventually(
            &format!("namespace {name} to be gone"),
            Duration::from_secs(120),
            || {
                let namespaces = namespaces.clone();
                async move {
                    match namespaces.get_opt(name).await {
                        Ok(None) => Ok(Some(())),
                        Ok(Some(_)) => Err("still terminating".into()),
                        Err(e) => Err(e.to_string()),
                    }
                }
            },
        )
        .await?;
    }
    ensure_namespace(client, name).await
}

/// Creates a namespace unless it exists.
pub async fn ensure_namespace(client: &Client, name: &str) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(name).await?.is_none() {
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
        namespaces.create(&PostParams::default(), &ns).await?;
    }
    Ok(())
}

/// Creates an object from its JSON form through `api` (namespaced or cluster-wide).
pub async fn create<K>(api: &Api<K>, value: serde_json::Value) -> Result<K>
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(value).context("fixture does not decode")?;
    Ok(api.create(&PostParams::default(), &object).await?)
}
pub mod scenario;
