//! The config push: one task per GatewayClass runs [`ClassPush`] (the pure decisions), and
//! one worker per Kong pod carries out its requests, so a hung or failing pod only ever
//! holds up itself. It runs beside the reconciles, outside their error handling: a
//! reconcile hands over the decided config and returns; what Kong made of it comes back
//! as a [`PushState`] per class, and a change of that state triggers the class's
//! reconcile so status can follow.
//!
//! Kong pods are found from the class's own Pods (label-selected watch; pod IP and the
//! `admin` container port), ready or not: a DB-less Kong is unready until its first config.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use futures::channel::mpsc::UnboundedSender;
use gateway_api::gatewayclasses::GatewayClass;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use opentelemetry::trace::SpanContext;
use rustls::ClientConfig;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, Span, debug, info, warn};

use crate::api::labels::{COMPONENT_LABEL, INSTANCE_LABEL};
use crate::kong::admin::{AdminTarget, ClientTls, PodAdmin, PostOutcome, Timeouts};
use crate::kong::push::{ClassPush, PodAction, PodResult, PodSpec, PushSettings, PushState};
use crate::leader::Leadership;
use crate::metrics::{Metrics, PushResult};
use crate::pki::{CertificateAuthority, LEAF_VALIDITY};
use crate::render::{DataPlaneNames, KONG_COMPONENT};
use crate::telemetry;
use crate::telemetry::spans::{self, PushTarget, TraceOrigin};
use crate::translate::KongConfig;

/// Name of the Kong container and of its admin port, as the renderer writes them.
const KONG_CONTAINER: &str = "kong";
const ADMIN_PORT_NAME: &str = "admin";
/// Common name of kongress's client certificate.
const CLIENT_COMMON_NAME: &str = "kongress";

/// Settings of the push, from the command line.
#[derive(Clone, Copy, Debug)]
pub struct PushOptions {
    pub timeouts: Timeouts,
    /// `POST /config` requests in flight at once, over all classes.
    pub concurrency: usize,
    pub settings: PushSettings,
}

impl Default for PushOptions {
    fn default() -> Self {
        Self {
            timeouts: Timeouts::default(),
            concurrency: 16,
            settings: PushSettings::default(),
        }
    }
}

impl PushOptions {
    /// Defaults with `POST /config` limited to `config` and `GET /status` to at most 5 s.
    pub fn with_timeout(config: std::time::Duration, concurrency: usize) -> Self {
        let defaults = Timeouts::default();
        Self {
            timeouts: Timeouts {
                connect: defaults.connect.min(config),
                status: defaults.status.min(config),
                config,
            },
            concurrency,
            settings: PushSettings::default(),
        }
    }
}

/// What a class's push works on: its data plane's names and the decided config, with the
/// reconcile that decided it (the parent of the push spans).
#[derive(Clone, Debug)]
struct ClassTarget {
    names: DataPlaneNames,
    config: Arc<KongConfig>,
    origin: TraceOrigin,
}

struct ClassHandle {
    names: DataPlaneNames,
    target: watch::Sender<Option<ClassTarget>>,
    pods_changed: Arc<Notify>,
    task: JoinHandle<()>,
}

/// kongress's client certificate, issued from the operator CA and renewed once two thirds
/// of its lifetime have passed.
struct ClientIdentity {
    ca: Arc<CertificateAuthority>,
    current: Mutex<Option<(Arc<ClientConfig>, DateTime<Utc>)>>,
}

impl ClientIdentity {
    fn tls(&self) -> Result<Arc<ClientConfig>, String> {
        let now = Utc::now();
        let mut current = self
            .current
            .lock()
            .map_err(|_| "client identity lock poisoned".to_string())?;
        if let Some((config, renew_at)) = current.as_ref()
            && now < *renew_at
        {
            return Ok(config.clone());
        }
        let issued = self
            .ca
            .issue_client(CLIENT_COMMON_NAME, now, LEAF_VALIDITY)
            .map_err(|e| format!("issuing the admin client certificate: {e}"))?;
        let config = ClientTls::config(self.ca.cert_pem(), &issued.cert_pem, &issued.key_pem)
            .map_err(|e| format!("loading the admin client certificate: {e}"))?;
        let lifetime = issued.not_after.signed_duration_since(now);
        let renew_at = now
            .checked_add_signed(lifetime * 2 / 3)
            .unwrap_or(issued.not_after)
            .max(now + TimeDelta::minutes(1));
        info!(not_after = %issued.not_after, "issued the admin client certificate");
        *current = Some((config.clone(), renew_at));
        Ok(config)
    }
}

/// Shared by the class tasks and pod workers.
struct Shared {
    identity: ClientIdentity,
    options: PushOptions,
    permits: Semaphore,
    pods: Store<Pod>,
    states: Mutex<HashMap<String, PushState>>,
    trigger: UnboundedSender<ObjectRef<GatewayClass>>,
    /// Only the leader sends configs.
    leadership: Leadership,
    metrics: Arc<Metrics>,
}

/// The push of every class.
pub struct PushHub {
    shared: Arc<Shared>,
    classes: Mutex<HashMap<String, ClassHandle>>,
}

impl PushHub {
    /// `pods` caches the Kong pods of every class; `trigger` wakes a class's reconcile.
    pub fn new(
        ca: Arc<CertificateAuthority>,
        pods: Store<Pod>,
        trigger: UnboundedSender<ObjectRef<GatewayClass>>,
        options: PushOptions,
        leadership: Leadership,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                identity: ClientIdentity {
                    ca,
                    current: Mutex::new(None),
                },
                permits: Semaphore::new(options.concurrency.max(1)),
                options,
                pods,
                states: Mutex::default(),
                trigger,
                leadership,
                metrics,
            }),
            classes: Mutex::default(),
        }
    }

    /// Hands the class's decided config to its push (starting the push on first use).
    pub fn desire(&self, class: &str, names: &DataPlaneNames, config: Arc<KongConfig>) {
        // A reconcile that outlived this process's leadership starts no push.
        if !self.shared.leadership.is_leader() {
            return;
        }
        let Ok(mut classes) = self.classes.lock() else {
            return;
        };
        let target = ClassTarget {
            names: names.clone(),
            config,
            origin: TraceOrigin::current(),
        };
        if let Some(handle) = classes.get_mut(class)
            && !handle.task.is_finished()
        {
            let moved = handle.names != *names;
            handle.names = names.clone();
            handle.target.send_replace(Some(target));
            if moved {
                handle.pods_changed.notify_one();
            }
            return;
        }
        let (sender, receiver) = watch::channel(Some(target));
        let pods_changed = Arc::new(Notify::new());
        let task = tokio::spawn(run_class(
            class.to_string(),
            self.shared.clone(),
            receiver,
            pods_changed.clone(),
        ));
        classes.insert(
            class.to_string(),
            ClassHandle {
                names: names.clone(),
                target: sender,
                pods_changed,
                task,
            },
        );
    }

    /// Stops the push of a class kongress no longer serves.
    pub fn forget(&self, class: &str) {
        if let Ok(mut classes) = self.classes.lock()
            && let Some(handle) = classes.remove(class)
        {
            handle.task.abort();
        }
        if let Ok(mut states) = self.shared.states.lock() {
            states.remove(class);
        }
        self.shared.metrics.forget_class(class);
    }

    /// Stops every push (leadership lost): requests in flight are dropped, and the next
    /// leader starts from the pods' hashes.
    pub fn stop_all(&self) {
        let classes: Vec<String> = match self.classes.lock() {
            Ok(classes) => classes.keys().cloned().collect(),
            Err(_) => return,
        };
        for class in classes {
            self.forget(&class);
        }
    }

    /// The push state of a class, once its push has started.
    pub fn state_of(&self, class: &str) -> Option<PushState> {
        self.shared.states.lock().ok()?.get(class).cloned()
    }

    /// Tells the push of the class owning `pod` that its pods changed.
    pub fn pod_changed(&self, pod: &Pod) {
        let (Some(namespace), Some(instance)) = (pod.namespace(), pod.labels().get(INSTANCE_LABEL)) else {
            return;
        };
        let Ok(classes) = self.classes.lock() else {
            return;
        };
        for handle in classes.values() {
            if handle.names.namespace == namespace && handle.names.deployment == *instance {
                handle.pods_changed.notify_one();
            }
        }
    }
}

impl Drop for PushHub {
    fn drop(&mut self) {
        if let Ok(classes) = self.classes.lock() {
            classes.values().for_each(|handle| handle.task.abort());
        }
    }
}

/// The Kong pods of a data plane that can be talked to: not being deleted, with an IP and
/// an admin port.
fn kong_pods(store: &Store<Pod>, names: &DataPlaneNames) -> Vec<PodSpec> {
    let mut pods: Vec<PodSpec> = store
        .state()
        .iter()
        .filter(|pod| pod.namespace().as_deref() == Some(names.namespace.as_str()))
        .filter(|pod| {
            let labels = pod.labels();
            labels.get(INSTANCE_LABEL) == Some(&names.deployment)
                && labels.get(COMPONENT_LABEL).map(String::as_str) == Some(KONG_COMPONENT)
        })
        .filter_map(|pod| pod_spec(pod))
        .collect();
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    pods
}

fn pod_spec(pod: &Pod) -> Option<PodSpec> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let ip: IpAddr = status.pod_ip.as_deref()?.parse().ok()?;
    let containers = &pod.spec.as_ref()?.containers;
    let admin_port = containers
        .iter()
        .filter(|c| c.name == KONG_CONTAINER)
        .chain(containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(ADMIN_PORT_NAME))
        .and_then(|p| u16::try_from(p.container_port).ok())?;
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let restarts = status
        .container_statuses
        .iter()
        .flatten()
        .map(|c| c.restart_count)
        .fold(0i32, i32::saturating_add);
    Some(PodSpec {
        name: pod.name_any(),
        uid: pod.uid().unwrap_or_default(),
        address: SocketAddr::new(ip, admin_port),
        ready,
        restarts,
    })
}

/// One pod's worker: its identity, its generation (results of a replaced worker are
/// dropped) and its command queue (one request in flight at most).
struct Worker {
    identity: (String, SocketAddr, i32),
    generation: u64,
    commands: mpsc::Sender<(PodAction, TraceOrigin)>,
    task: JoinHandle<()>,
}

/// A pod's answer, from the worker of that generation, with the span of its push (if any
/// was traced) for the reconcile it wakes to link to.
type WorkerResult = (String, u64, PodResult, Option<SpanContext>);

async fn run_class(
    class: String,
    shared: Arc<Shared>,
    mut targets: watch::Receiver<Option<ClassTarget>>,
    pods_changed: Arc<Notify>,
) {
    let mut state = ClassPush::new(shared.options.settings);
    let mut names: Option<DataPlaneNames> = None;
    let mut workers: HashMap<String, Worker> = HashMap::new();
    let mut generation = 0u64;
    let (results_tx, mut results) = mpsc::unbounded_channel::<WorkerResult>();
    let mut target_changed = true;
    let mut pods_dirty = true;
    // The reconcile that decided the config being pushed, and the traced pushes whose
    // results are not yet published.
    let mut origin = TraceOrigin::default();
    let mut pushes_of_origin = 0usize;
    let mut traced_results: Vec<SpanContext> = Vec::new();
    // The last failure logged per pod: a pod failing the same way again logs at debug.
    let mut logged_failures: HashMap<String, String> = HashMap::new();
    loop {
        if target_changed {
            target_changed = false;
            let target = targets.borrow_and_update().clone();
            if let Some(target) = target {
                if names.as_ref() != Some(&target.names) {
                    names = Some(target.names.clone());
                    pods_dirty = true;
                }
                match state.set_desired(target.config.clone()) {
                    Ok(true) => {
                        debug!(gateway_class = %class, "new config to push");
                        if let Some(bytes) = state.desired_body_len() {
                            shared.metrics.config_prepared(&class, bytes, &target.config);
                        }
                        origin = target.origin;
                        pushes_of_origin = 0;
                    }
                    Ok(false) => {}
                    Err(error) => warn!(gateway_class = %class, %error, "could not serialise the config"),
                }
            }
        }
        if pods_dirty && let Some(names) = &names {
            pods_dirty = false;
            let pods = kong_pods(&shared.pods, names);
            for spec in &pods {
                let identity = (spec.uid.clone(), spec.address, spec.restarts);
                let current = workers.get(&spec.name).map(|w| &w.identity);
                if current != Some(&identity) {
                    generation += 1;
                    if let Some(old) = workers.remove(&spec.name) {
                        old.task.abort();
                    }
                    let target = AdminTarget {
                        address: spec.address,
                        server_name: format!("{}.{}.svc", names.admin_service, names.namespace),
                    };
                    debug!(gateway_class = %class, pod = %spec.name, address = %spec.address, "Kong pod found");
                    workers.insert(
                        spec.name.clone(),
                        spawn_worker(
                            &class,
                            spec.name.clone(),
                            identity,
                            generation,
                            target,
                            &shared,
                            results_tx.clone(),
                        ),
                    );
                }
            }
            logged_failures.retain(|name, _| pods.iter().any(|p| &p.name == name));
            workers.retain(|name, worker| {
                let keep = pods.iter().any(|p| &p.name == name);
                if !keep {
                    debug!(gateway_class = %class, pod = %name, "Kong pod gone");
                    worker.task.abort();
                    shared.metrics.forget_pod(&class, name);
                }
                keep
            });
            state.set_pods(pods);
        }

        let now = Instant::now();
        for (pod, action) in state.next_actions(now) {
            let action_origin = match action {
                PodAction::Push(_) => {
                    pushes_of_origin += 1;
                    if pushes_of_origin > spans::CHILD_PUSHES {
                        origin.linked()
                    } else {
                        origin.clone()
                    }
                }
                PodAction::ReadStatus => TraceOrigin::default(),
            };
            let sent = workers
                .get(&pod)
                .is_some_and(|w| w.commands.try_send((action, action_origin)).is_ok());
            if !sent {
                // Cannot happen while the state and the workers agree; never leave the pod busy.
                state.record(
                    &pod,
                    PodResult::Failed {
                        error: "internal: the pod's worker was not ready".into(),
                        retry_after: None,
                    },
                    now,
                );
            }
        }
        publish(&shared, &class, state.state(), &mut traced_results);

        let wakeup = state.next_wakeup().map(tokio::time::Instant::from_std);
        tokio::select! {
            changed = targets.changed() => {
                if changed.is_err() {
                    break;
                }
                target_changed = true;
            }
            () = pods_changed.notified() => pods_dirty = true,
            Some((pod, worker_generation, result, push)) = results.recv() => {
                if workers.get(&pod).is_some_and(|w| w.generation == worker_generation) {
                    traced_results.extend(push);
                    match &result {
                        PodResult::Failed { error, .. } if logged_failures.get(&pod) == Some(error) => {
                            debug!(gateway_class = %class, %pod, %error, "Kong admin request failed again");
                        }
                        PodResult::Failed { error, .. } => {
                            logged_failures.insert(pod.clone(), error.clone());
                            log_result(&class, &pod, &result);
                        }
                        _ => {
                            logged_failures.remove(&pod);
                            log_result(&class, &pod, &result);
                        }
                    }
                    state.record(&pod, result, Instant::now());
                }
            }
            () = sleep_until(wakeup) => {}
        }
    }
    workers.values().for_each(|w| w.task.abort());
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Keeps the class's push state and, when it changed, wakes the class's reconcile, which
/// links to `pushes` (the traced pushes since the last publish; emptied either way).
fn publish(shared: &Shared, class: &str, state: PushState, pushes: &mut Vec<SpanContext>) {
    shared.metrics.push_state(class, &state);
    let Ok(mut states) = shared.states.lock() else {
        return;
    };
    if states.get(class) == Some(&state) {
        pushes.clear();
        return;
    }
    // Before the state is visible: a reconcile that reads it also takes the links.
    pushes
        .drain(..)
        .for_each(|push| telemetry::link_next_reconcile(class, push));
    states.insert(class.to_string(), state);
    // The controller may be shutting down; nothing to wake then.
    let _ = shared.trigger.unbounded_send(ObjectRef::new(class));
}

fn push_result(result: &PodResult) -> PushResult {
    match result {
        PodResult::Accepted(_) => PushResult::Accepted,
        PodResult::Rejected(..) => PushResult::Rejected,
        // A push never answers with a status read; count it as no usable answer.
        PodResult::Failed { .. } | PodResult::Status(_) => PushResult::Failed,
    }
}

fn log_result(class: &str, pod: &str, result: &PodResult) {
    match result {
        PodResult::Status(hash) => debug!(gateway_class = %class, %pod, hash = ?hash, "read Kong's config hash"),
        PodResult::Accepted(config) => {
            info!(gateway_class = %class, %pod, hash = %config.hash, excluded = config.excluded.len(), "Kong runs the config");
        }
        PodResult::Rejected(config, rejection) => warn!(
            gateway_class = %class, %pod, hash = %config.hash, entities = rejection.entities.len(),
            message = %rejection.message, "Kong rejected the config"
        ),
        PodResult::Failed { error, .. } => warn!(gateway_class = %class, %pod, %error, "Kong admin request failed"),
    }
}

fn spawn_worker(
    class: &str,
    pod: String,
    identity: (String, SocketAddr, i32),
    generation: u64,
    target: AdminTarget,
    shared: &Arc<Shared>,
    results: mpsc::UnboundedSender<WorkerResult>,
) -> Worker {
    let (commands, mut queue) = mpsc::channel::<(PodAction, TraceOrigin)>(1);
    let shared = shared.clone();
    let class = class.to_string();
    let task = tokio::spawn(async move {
        let mut admin: Option<PodAdmin> = None;
        while let Some((action, origin)) = queue.recv().await {
            let started = Instant::now();
            let push = matches!(action, PodAction::Push(_));
            let span = push_span(&origin, &class, &pod, &target, &action);
            let result = match shared.identity.tls() {
                // Checked as the request leaves: leadership may have gone since it was queued.
                _ if push && !shared.leadership.is_leader() => PodResult::Failed {
                    error: "not the leader".into(),
                    retry_after: None,
                },
                Err(error) => PodResult::Failed {
                    error,
                    retry_after: None,
                },
                Ok(tls) => {
                    let admin = match &mut admin {
                        Some(admin) => {
                            admin.set_tls(tls);
                            admin
                        }
                        None => admin.insert(PodAdmin::new(target.clone(), tls, shared.options.timeouts)),
                    };
                    perform(admin, action, &shared).instrument(span.clone()).await
                }
            };
            record_push(&span, &result);
            if push {
                // Inside the push's span, so the histogram's exemplar names its trace.
                span.in_scope(|| {
                    shared
                        .metrics
                        .pushed(&class, &pod, push_result(&result), started.elapsed())
                });
            }
            let traced = spans::link_to(&span);
            drop(span);
            debug!(gateway_class = %class, %pod, elapsed = ?started.elapsed(), "admin request done");
            if results.send((pod.clone(), generation, result, traced)).is_err() {
                break;
            }
        }
    });
    Worker {
        identity,
        generation,
        commands,
        task,
    }
}

/// The span of a `POST /config` (none for a status read, which changes nothing).
fn push_span(origin: &TraceOrigin, class: &str, pod: &str, target: &AdminTarget, action: &PodAction) -> Span {
    match action {
        PodAction::ReadStatus => Span::none(),
        PodAction::Push(config) => spans::push(
            origin,
            PushTarget {
                class,
                pod,
                address: &target.address,
                config_hash: &config.hash,
                bytes: config.body.len(),
                excluded: config.excluded.len(),
            },
        ),
    }
}

fn record_push(span: &Span, result: &PodResult) {
    match result {
        PodResult::Status(_) => {}
        PodResult::Accepted(_) => spans::record_outcome(span, "accepted"),
        PodResult::Rejected(_, rejection) => {
            spans::record_outcome(span, "rejected");
            spans::record_kong_error(span, &rejection.message);
        }
        PodResult::Failed { error, .. } => {
            spans::record_outcome(span, "failed");
            spans::record_error(span, error);
        }
    }
}

async fn perform(admin: &mut PodAdmin, action: PodAction, shared: &Shared) -> PodResult {
    let failed = |error: crate::kong::AdminError| PodResult::Failed {
        retry_after: error.retry_after(),
        error: error.to_string(),
    };
    match action {
        PodAction::ReadStatus => match admin.configuration_hash().await {
            Ok(hash) => PodResult::Status(hash),
            Err(error) => failed(error),
        },
        PodAction::Push(config) => {
            // Bounds the memory and CPU Kong pods spend loading configs at once; a closed
            // semaphore cannot happen (it is never closed).
            let _permit = shared.permits.acquire().await;
            match admin.post_config(&config).await {
                Ok(PostOutcome::Accepted | PostOutcome::Unchanged) => PodResult::Accepted(config),
                Ok(PostOutcome::Rejected(rejection)) => PodResult::Rejected(config, rejection),
                Err(error) => failed(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, ContainerStatus, PodCondition, PodSpec as K8sPodSpec, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn kong_pod(ip: Option<&str>, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("kong-1".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..ObjectMeta::default()
            },
            spec: Some(K8sPodSpec {
                containers: vec![Container {
                    name: "kong".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some("admin".into()),
                        container_port: 8444,
                        ..ContainerPort::default()
                    }]),
                    ..Container::default()
                }],
                ..K8sPodSpec::default()
            }),
            status: Some(PodStatus {
                pod_ip: ip.map(str::to_string),
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                container_statuses: Some(vec![ContainerStatus {
                    restart_count: 2,
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    #[test]
    fn a_pod_is_reached_at_its_ip_and_admin_port_ready_or_not() {
        let spec = pod_spec(&kong_pod(Some("127.244.0.7"), false)).expect("usable pod");
        assert_eq!(spec.address, "127.244.0.7:8444".parse().expect("address"));
        assert!(!spec.ready);
        assert_eq!(spec.restarts, 2);
        assert!(pod_spec(&kong_pod(Some("127.244.0.7"), true)).is_some_and(|s| s.ready));
    }

    #[test]
    fn pods_without_an_ip_or_being_deleted_are_not_talked_to() {
        assert!(pod_spec(&kong_pod(None, false)).is_none());
        let mut deleting = kong_pod(Some("127.0.0.2"), true);
        deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
        assert!(pod_spec(&deleting).is_none());
    }
}
