//! The push decisions of one class, as a pure state machine: which pod gets which config
//! next, what a pod's answer changes, and what to report.
//!
//! The async loop (`controller::push`) feeds it the decided configs, the class's Kong pods
//! and each pod's answers, and carries out the [`PodAction`]s it hands back. Nothing here
//! does I/O or reads a clock: callers pass `now`.
//!
//! Rules:
//! - A pod whose running hash is unknown (new, restarted, or after a failed request) is
//!   asked for it first; a pod is pushed to only when its hash differs from the target's.
//! - The target is the latest decided config, or its fallback without the objects Kong
//!   rejected, or, when Kong's rejection blames nothing kongress can leave out, the newest
//!   config some pod accepted. Kong validates the same way on every pod, so a config one
//!   pod accepted is good for all of them.
//! - Configs are numbered in the order they are adopted; a pod is never sent a config
//!   numbered below one it accepted. Each pod has at most one request in flight, and a
//!   request always carries the target of the moment it is sent, so a burst of decisions
//!   reaches a busy pod as one push of the newest config.
//! - A failed request (connect, TLS, timeout, 5xx, garbage) makes the pod's hash unknown
//!   and delays its next request with its own exponential backoff; other pods go on.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use super::errors::{self, Rejection};
use super::fallback::without_sources;
use super::hash::PreparedConfig;
use crate::api::ObjectKey;
use crate::translate::KongConfig;
use crate::translate::tags::TaggedSource;

/// Fallback rounds for one decided config before kongress gives up on it: each round
/// leaves out at least one more object, and Kong reports the errors of a config in a few
/// phases (schema, references, uniqueness), so a handful is plenty.
const MAX_FALLBACK_ROUNDS: usize = 8;

/// A Kong pod, by name (pods of one class share its data plane namespace).
pub type PodKey = String;

/// A Kong pod as discovery sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSpec {
    pub name: String,
    pub uid: String,
    /// Pod IP and admin port.
    pub address: SocketAddr,
    pub ready: bool,
    /// Sum of the container restart counts: a restarted Kong may run another config.
    pub restarts: i32,
}

/// What to do with a pod next.
#[derive(Clone, Debug)]
pub enum PodAction {
    /// `GET /status`, to learn the running hash.
    ReadStatus,
    /// `POST /config` with this config.
    Push(Arc<PreparedConfig>),
}

/// How a pod's request ended.
#[derive(Clone, Debug)]
pub enum PodResult {
    /// `GET /status` answered; `None` when the answer had no `configuration_hash`.
    Status(Option<String>),
    /// 201, or 304 (the pod already ran it).
    Accepted(Arc<PreparedConfig>),
    /// 400: Kong refused the config.
    Rejected(Arc<PreparedConfig>, Rejection),
    /// No usable answer; `retry_after` is a delay the pod asked for (429).
    Failed {
        error: String,
        retry_after: Option<Duration>,
    },
}

/// Timing of the push.
#[derive(Clone, Copy, Debug)]
pub struct PushSettings {
    /// Per-pod retry delays after failures.
    pub backoff: ExponentialBuilder,
    /// How often an idle pod's hash is read again, so a Kong that lost its config is
    /// noticed even without a pod event.
    pub verify_interval: Duration,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            backoff: ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(30))
                .with_factor(2.0)
                .with_jitter()
                .without_max_times(),
            verify_interval: Duration::from_secs(30),
        }
    }
}

#[derive(Debug)]
struct PodState {
    spec: PodSpec,
    /// Configuration hash the pod reported or accepted last; `None` when unknown.
    running: Option<String>,
    /// Number of the newest config the pod accepted from us.
    accepted: u64,
    busy: bool,
    last_error: Option<String>,
    backoff: Option<ExponentialBackoff>,
    retry_at: Option<Instant>,
    verified_at: Option<Instant>,
}

impl PodState {
    fn new(spec: PodSpec) -> Self {
        Self {
            spec,
            running: None,
            accepted: 0,
            busy: false,
            last_error: None,
            backoff: None,
            retry_at: None,
            verified_at: None,
        }
    }
}

/// Which config the pods are being given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serving {
    /// No config decided yet, or none that Kong would take.
    Nothing,
    /// The decided config, whole.
    Desired,
    /// The decided config without the objects Kong rejected.
    Fallback,
    /// The decided config was rejected for reasons no object could be blamed for: the
    /// newest config some pod accepted.
    LastAccepted,
}

/// One pod in [`PushState`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodPushState {
    pub pod: String,
    pub ready: bool,
    /// What the pod reported or accepted last; `None` while unknown.
    pub running_hash: Option<String>,
    /// The last request's failure, until a request succeeds.
    pub last_error: Option<String>,
}

/// An object Kong rejected entities of, with Kong's messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedObject {
    pub source: TaggedSource,
    pub messages: Vec<String>,
}

/// The push of one class as plain data, for status.
#[derive(Clone, Debug)]
pub struct PushState {
    /// The latest decided config and its hash.
    pub desired: Option<Arc<KongConfig>>,
    pub desired_hash: Option<String>,
    /// What the pods are being given (see [`Serving`]) and its hash.
    pub serving: Serving,
    pub target_hash: Option<String>,
    /// Every Kong pod of the class with an address, by name.
    pub pods: Vec<PodPushState>,
    /// Objects left out because Kong rejected them (sorted by source).
    pub rejected: Vec<RejectedObject>,
    /// Kong's messages about a rejection no object could be blamed for.
    pub config_error: Option<String>,
}

impl PartialEq for PushState {
    /// Compares hashes, not configs: equal hashes mean equal texts.
    fn eq(&self, other: &Self) -> bool {
        self.desired_hash == other.desired_hash
            && self.serving == other.serving
            && self.target_hash == other.target_hash
            && self.pods == other.pods
            && self.rejected == other.rejected
            && self.config_error == other.config_error
    }
}

impl PushState {
    /// Whether this state is about `config` (the decided config of the latest push).
    pub fn is_for(&self, config: &KongConfig) -> bool {
        self.desired
            .as_deref()
            .is_some_and(|d| std::ptr::eq(d, config) || d == config)
    }

    /// Whether every ready pod runs the target config (true when no pod is ready).
    pub fn ready_pods_in_sync(&self) -> bool {
        let Some(target) = &self.target_hash else {
            return false;
        };
        self.pods
            .iter()
            .filter(|p| p.ready)
            .all(|p| p.running_hash.as_ref() == Some(target))
    }

    /// Kong's messages about the object `kind` `key` of `group` ("" for core), if rejected.
    pub fn rejection_of(&self, group: &str, kind: &str, key: &ObjectKey) -> Option<&[String]> {
        self.rejected
            .iter()
            .find(|r| r.source.group == group && r.source.kind == kind && &r.source.key == key)
            .map(|r| r.messages.as_slice())
    }
}

/// The push state machine of one class.
#[derive(Debug)]
pub struct ClassPush {
    settings: PushSettings,
    /// Number given to the next adopted config.
    next_number: u64,
    /// The decided config as given, and as prepared (see [`loadable`]).
    decided: Option<Arc<KongConfig>>,
    desired: Option<Arc<PreparedConfig>>,
    /// What pods should get: the desired config or its fallback; `None` when stuck.
    current: Option<Arc<PreparedConfig>>,
    /// Sources left out of `current`.
    excluded: BTreeSet<TaggedSource>,
    rounds: usize,
    /// Newest config a pod accepted.
    last_good: Option<Arc<PreparedConfig>>,
    /// Rejections of the decided config numbered `rejected_for`; kept while a newer
    /// decided config is on its way, so status does not flap.
    rejected: BTreeMap<TaggedSource, Vec<String>>,
    config_error: Option<String>,
    rejected_for: u64,
    pods: BTreeMap<PodKey, PodState>,
}

impl ClassPush {
    pub fn new(settings: PushSettings) -> Self {
        Self {
            settings,
            next_number: 1,
            decided: None,
            desired: None,
            current: None,
            excluded: BTreeSet::new(),
            rounds: 0,
            last_good: None,
            rejected: BTreeMap::new(),
            config_error: None,
            rejected_for: 0,
            pods: BTreeMap::new(),
        }
    }

    fn prepare(
        &mut self,
        config: Arc<KongConfig>,
        excluded: Vec<TaggedSource>,
    ) -> Result<Arc<PreparedConfig>, serde_json::Error> {
        let prepared = PreparedConfig::new(self.next_number, config, excluded)?;
        self.next_number += 1;
        Ok(Arc::new(prepared))
    }

    /// Adopts a newly decided config. Returns false when it equals the decided one (same
    /// text), which changes nothing, rejections included.
    pub fn set_desired(&mut self, config: Arc<KongConfig>) -> Result<bool, serde_json::Error> {
        if self
            .decided
            .as_ref()
            .is_some_and(|d| Arc::ptr_eq(d, &config) || *d == config)
        {
            // Same text; keep the newest handle, which is how the state names the decision
            // it reports on (the route propagation metric follows it).
            self.decided = Some(config);
            return Ok(false);
        }
        let prepared = PreparedConfig::new(self.next_number, loadable(&config), Vec::new())?;
        self.decided = Some(config);
        if self.desired.as_ref().is_some_and(|d| d.hash == prepared.hash) {
            return Ok(false);
        }
        self.next_number += 1;
        let prepared = Arc::new(prepared);
        // The whole config first: the user may have fixed what Kong rejected before.
        self.desired = Some(prepared.clone());
        self.current = Some(prepared);
        self.excluded.clear();
        self.rounds = 0;
        Ok(true)
    }

    /// Bytes of the `POST /config` body of the decided config, once one is adopted.
    pub fn desired_body_len(&self) -> Option<usize> {
        self.desired.as_ref().map(|d| d.body.len())
    }

    /// Adopts the class's pods as discovery sees them now; pods not listed are forgotten.
    /// A pod whose uid, address or restart count changed starts over (hash unknown).
    pub fn set_pods(&mut self, pods: Vec<PodSpec>) {
        let mut next = BTreeMap::new();
        for spec in pods {
            let state = match self.pods.remove(&spec.name) {
                Some(mut old)
                    if old.spec.uid == spec.uid
                        && old.spec.address == spec.address
                        && old.spec.restarts == spec.restarts =>
                {
                    old.spec = spec.clone();
                    old
                }
                _ => PodState::new(spec.clone()),
            };
            next.insert(spec.name, state);
        }
        self.pods = next;
    }

    fn target(&self) -> Option<&Arc<PreparedConfig>> {
        self.current.as_ref().or(self.last_good.as_ref())
    }

    /// The requests to start now; each listed pod is then busy until its result comes.
    pub fn next_actions(&mut self, now: Instant) -> Vec<(PodKey, PodAction)> {
        let target = self.target().cloned();
        let verify = self.settings.verify_interval;
        let mut actions = Vec::new();
        for (name, pod) in &mut self.pods {
            if pod.busy || pod.retry_at.is_some_and(|at| at > now) {
                continue;
            }
            let action = match (&pod.running, &target) {
                (None, _) => Some(PodAction::ReadStatus),
                (Some(running), Some(target)) if *running != target.hash && target.version >= pod.accepted => {
                    Some(PodAction::Push(target.clone()))
                }
                (Some(_), _)
                    if pod
                        .verified_at
                        .is_none_or(|at| now.saturating_duration_since(at) >= verify) =>
                {
                    Some(PodAction::ReadStatus)
                }
                _ => None,
            };
            if let Some(action) = action {
                pod.busy = true;
                actions.push((name.clone(), action));
            }
        }
        actions
    }

    /// When the next action may become due without any event: the earliest retry or
    /// verification time of an idle pod.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.pods
            .values()
            .filter(|p| !p.busy)
            .filter_map(|p| match (p.retry_at, p.verified_at) {
                (Some(retry), _) => Some(retry),
                (None, Some(verified)) => verified.checked_add(self.settings.verify_interval),
                (None, None) => None,
            })
            .min()
    }

    /// Records how a pod's request ended. Results of forgotten pods are dropped.
    pub fn record(&mut self, pod: &str, result: PodResult, now: Instant) {
        let Some(state) = self.pods.get_mut(pod) else {
            return;
        };
        state.busy = false;
        match result {
            PodResult::Status(hash) => {
                state.running = Some(hash.unwrap_or_default());
                succeeded(state, now);
            }
            PodResult::Accepted(config) => {
                state.running = Some(config.hash.clone());
                state.accepted = state.accepted.max(config.version);
                succeeded(state, now);
                self.accepted(&config);
            }
            PodResult::Rejected(config, rejection) => {
                // Kong keeps running what it had; the pod itself is fine.
                succeeded(state, now);
                self.rejected(&config, &rejection);
            }
            PodResult::Failed { error, retry_after } => {
                state.running = None;
                state.last_error = Some(error);
                let backoff = state.backoff.get_or_insert_with(|| self.settings.backoff.build());
                let delay = backoff.next().unwrap_or(Duration::from_secs(30));
                let delay = retry_after.map_or(delay, |asked| asked.max(delay));
                state.retry_at = now.checked_add(delay);
            }
        }
    }

    fn accepted(&mut self, config: &Arc<PreparedConfig>) {
        if self.last_good.as_ref().is_none_or(|good| good.version < config.version) {
            self.last_good = Some(config.clone());
        }
        let whole_desired = self.desired.as_ref().is_some_and(|d| d.version == config.version);
        if whole_desired {
            self.rejected.clear();
            self.config_error = None;
        }
    }

    fn rejected(&mut self, config: &Arc<PreparedConfig>, rejection: &Rejection) {
        let (Some(desired), Some(current)) = (&self.desired, &self.current) else {
            return;
        };
        // Only the config being rolled out matters; a stale one was superseded already.
        if current.version != config.version {
            return;
        }
        let desired = desired.clone();
        let blame = errors::blame(rejection, &config.config);
        if self.rejected_for != desired.version {
            self.rejected.clear();
            self.config_error = None;
            self.rejected_for = desired.version;
        }
        for (source, messages) in &blame.by_source {
            let entry = self.rejected.entry(source.clone()).or_default();
            entry.extend(messages.iter().cloned());
            entry.sort();
            entry.dedup();
        }
        let progress = blame.by_source.keys().any(|s| !self.excluded.contains(s));
        self.rounds += 1;
        if !blame.unattributed.is_empty() || !progress || self.rounds > MAX_FALLBACK_ROUNDS {
            let mut messages = blame.unattributed;
            if messages.is_empty() {
                messages.push(rejection.message.clone());
            }
            self.config_error = Some(messages.join("; "));
            self.current = None;
            return;
        }
        self.excluded.extend(blame.by_source.into_keys());
        let fallback = without_sources(&desired.config, &self.excluded);
        match self.prepare(Arc::new(fallback), self.excluded.iter().cloned().collect()) {
            Ok(prepared) => self.current = Some(prepared),
            Err(error) => {
                self.config_error = Some(format!("could not serialise the fallback config: {error}"));
                self.current = None;
            }
        }
    }

    fn serving(&self) -> Serving {
        match (&self.desired, &self.current, &self.last_good) {
            (Some(desired), Some(current), _) if current.version == desired.version => Serving::Desired,
            (Some(_), Some(_), _) => Serving::Fallback,
            (Some(_), None, Some(_)) => Serving::LastAccepted,
            _ => Serving::Nothing,
        }
    }

    /// The state for status.
    pub fn state(&self) -> PushState {
        let target = self.target();
        PushState {
            desired: self.decided.clone(),
            desired_hash: self.desired.as_ref().map(|d| d.hash.clone()),
            serving: self.serving(),
            target_hash: target.map(|t| t.hash.clone()),
            pods: self
                .pods
                .values()
                .map(|p| PodPushState {
                    pod: p.spec.name.clone(),
                    ready: p.spec.ready,
                    running_hash: p.running.clone(),
                    last_error: p.last_error.clone(),
                })
                .collect(),
            rejected: self
                .rejected
                .iter()
                .map(|(source, messages)| RejectedObject {
                    source: source.clone(),
                    messages: messages.clone(),
                })
                .collect(),
            config_error: self.config_error.clone(),
        }
    }
}

/// Name of the upstream added to a config without entities.
pub const PLACEHOLDER_UPSTREAM: &str = "kongress-placeholder";

/// `config`, or when it declares no entity at all, `config` plus an upstream without
/// targets: Kong stores such a config under the empty hash and reports itself not ready
/// (see the module doc of [`crate::kong`]), so a class without routes would never get
/// ready pods. Kong's own controller does the same.
pub fn loadable(config: &Arc<KongConfig>) -> Arc<KongConfig> {
    let empty = config.services.is_empty()
        && config.routes.is_empty()
        && config.upstreams.is_empty()
        && config.certificates.is_empty()
        && config.ca_certificates.is_empty();
    if !empty {
        return config.clone();
    }
    let mut with_placeholder = KongConfig::clone(config);
    with_placeholder
        .upstreams
        .push(Arc::new(crate::translate::kong::Upstream {
            name: PLACEHOLDER_UPSTREAM.to_string(),
            tags: vec![PLACEHOLDER_UPSTREAM.to_string()],
            ..Default::default()
        }));
    Arc::new(with_placeholder)
}

fn succeeded(state: &mut PodState, now: Instant) {
    state.last_error = None;
    state.backoff = None;
    state.retry_at = None;
    state.verified_at = Some(now);
}

#[cfg(test)]
mod tests;
