//! One Kong admin stand-in per Kong pod: watches the Kong pods kongress manages (in one
//! namespace, or all) and starts a [`StandIn`] on each pod's IP — a loopback address
//! the `kongress-kong-pod-ready` kwok stage gives them — and the pod's admin and status
//! ports, with the data plane's admin TLS Secret. A pod that goes away takes its stand-in
//! with it.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};

use crate::standin::{Fault, StandIn, StandInConfig};

/// A pod's stand-in and the identity it was started for.
struct Running {
    uid: String,
    standin: StandIn,
}

/// The stand-ins of the watched pods, by `namespace/name`.
#[derive(Clone, Default)]
pub struct Fleet {
    running: Arc<Mutex<BTreeMap<String, Running>>>,
    /// Faults the next stand-ins start with, one each, so a test can break a pod before
    /// kongress first talks to it.
    next_faults: Arc<Mutex<VecDeque<Fault>>>,
    /// Entity name → message every stand-in refuses (Kong validates alike on all pods).
    rejections: Arc<Mutex<BTreeMap<String, String>>>,
    task: Option<Arc<tokio::task::JoinHandle<()>>>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(task) = &self.task
            && Arc::strong_count(task) == 1
        {
            task.abort();
        }
    }
}

fn lock(running: &Mutex<BTreeMap<String, Running>>) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
    running.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Fleet {
    /// Watches Kong pods in `namespace` (all namespaces when `None`); each stand-in
    /// records into `record_root/<namespace>/<pod>/`.
    pub fn start(client: Client, namespace: Option<&str>, record_root: PathBuf) -> Self {
        let pods: Api<Pod> = match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let config =
            watcher::Config::default().labels("app.kubernetes.io/managed-by=kongress,app.kubernetes.io/component=kong");
        let running: Arc<Mutex<BTreeMap<String, Running>>> = Arc::default();
        let fleet_running = running.clone();
        let next_faults: Arc<Mutex<VecDeque<Fault>>> = Arc::default();
        let fleet_faults = next_faults.clone();
        let rejections: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
        let fleet_rejections = rejections.clone();
        let task = tokio::spawn(async move {
            let mut events = watcher::watcher(pods, config).boxed();
            // Pods whose stand-in could not start yet (no loopback IP, Secret not readable):
            // retried on a timer, since a pod that is already Running brings no more events.
            let mut waiting: BTreeMap<String, Pod> = BTreeMap::new();
            let mut retry = tokio::time::interval(std::time::Duration::from_millis(500));
            loop {
                let pods: Vec<Pod> = tokio::select! {
                    event = events.next() => match event {
                        None => break,
                        Some(Ok(Event::Apply(pod) | Event::InitApply(pod))) => vec![pod],
                        Some(Ok(Event::Delete(pod))) => {
                            waiting.remove(&key(&pod));
                            lock(&running).remove(&key(&pod));
                            continue;
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(error)) => {
                            tracing::warn!(%error, "stand-in fleet: pod watch error");
                            continue;
                        }
                    },
                    _ = retry.tick() => {
                        // Read them again: the copy from the last event may predate their IP.
                        let mut fresh = Vec::new();
                        for (_, pod) in std::mem::take(&mut waiting) {
                            let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
                            match api.get_opt(&pod.name_any()).await {
                                Ok(Some(current)) => fresh.push(current),
                                Ok(None) => {}
                                Err(_) => fresh.push(pod),
                            }
                        }
                        fresh
                    }
                };
                for pod in pods {
                    let pod_key = key(&pod);
                    if pod.metadata.deletion_timestamp.is_some() {
                        waiting.remove(&pod_key);
                        lock(&running).remove(&pod_key);
                        continue;
                    }
                    let uid = pod.uid().unwrap_or_default();
                    if lock(&running).get(&pod_key).is_some_and(|r| r.uid == uid) {
                        continue;
                    }
                    let fault = next_faults
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .pop_front();
                    let reject = rejections
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .clone();
                    let started = start_for(&client, &pod, &record_root, fault.unwrap_or_default(), reject).await;
                    if !matches!(started, Ok(Some(_)))
                        && let Some(fault) = fault
                    {
                        next_faults
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push_front(fault);
                    }
                    match started {
                        Ok(Some(standin)) => {
                            tracing::info!(pod = %pod_key, admin = %standin.admin, "stand-in started");
                            waiting.remove(&pod_key);
                            lock(&running).insert(pod_key, Running { uid, standin });
                        }
                        Ok(None) => {
                            waiting.insert(pod_key, pod);
                        }
                        Err(error) => {
                            tracing::warn!(pod = %pod_key, "stand-in not started yet: {error:#}");
                            waiting.insert(pod_key, pod);
                        }
                    }
                }
            }
        });
        Self {
            running: fleet_running,
            next_faults: fleet_faults,
            rejections: fleet_rejections,
            task: Some(Arc::new(task)),
        }
    }

    /// Every stand-in, running or to come, refuses entities named `name` with `message`.
    pub fn reject_everywhere(&self, name: &str, message: &str) {
        self.rejections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_string(), message.to_string());
        for standin in self.standins().values() {
            standin.reject(name, message);
        }
    }

    /// The next stand-in to start begins with `fault` (queued: one per call).
    pub fn fault_next(&self, fault: Fault) {
        self.next_faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push_back(fault);
    }

    /// The stand-ins running now, by pod name (`namespace/name`).
    pub fn standins(&self) -> BTreeMap<String, StandIn> {
        lock(&self.running)
            .iter()
            .map(|(k, r)| (k.clone(), r.standin.clone()))
            .collect()
    }
}

fn key(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

fn port(pod: &Pod, name: &str) -> Option<u16> {
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(name))
        .and_then(|p| u16::try_from(p.container_port).ok())
}

/// Starts the stand-in of `pod`, or `None` while it has no loopback IP yet.
async fn start_for(
    client: &Client,
    pod: &Pod,
    record_root: &std::path::Path,
    fault: Fault,
    reject: BTreeMap<String, String>,
) -> Result<Option<StandIn>> {
    let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()) else {
        return Ok(None);
    };
    let ip: IpAddr = ip.parse().context("pod IP")?;
    if !ip.is_loopback() {
        bail!("pod IP {ip} is not a loopback address (is the kongress kwok stage loaded?)");
    }
    let namespace = pod.namespace().unwrap_or_default();
    let admin_port = port(pod, "admin").context("no admin port")?;
    let status_port = port(pod, "status");
    let secret_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .find(|v| v.name == "admin-tls")
        .and_then(|v| v.secret.as_ref()?.secret_name.clone())
        .context("no admin-tls volume")?;
    let secret = Api::<Secret>::namespaced(client.clone(), &namespace)
        .get(&secret_name)
        .await
        .with_context(|| format!("reading Secret {namespace}/{secret_name}"))?;
    let data = secret.data.unwrap_or_default();
    let text = |key: &str| -> Result<String> {
        let bytes = data
            .get(key)
            .with_context(|| format!("Secret {secret_name} has no {key}"))?;
        Ok(String::from_utf8(bytes.0.clone())?)
    };
    let standin = StandIn::start(StandInConfig {
        admin: SocketAddr::new(ip, admin_port),
        status: status_port.map(|p| SocketAddr::new(ip, p)),
        cert_pem: text("tls.crt")?,
        key_pem: text("tls.key")?,
        client_ca_pem: text("ca.crt")?,
        record_dir: Some(record_root.join(&namespace).join(pod.name_any())),
        fault,
        reject,
    })
    .await?;
    Ok(Some(standin))
}
