//! Prometheus metrics (OpenMetrics text on `/metrics`), and the small HTTP server that also
//! answers `/healthz` and `/readyz` ([`server`], [`health`]).
//!
//! The controller calls the hooks of [`Metrics`] where things happen; gauges that describe
//! the present (cache sizes, leadership, data planes) are read at scrape time from a
//! [`LiveState`] source. Histograms carry the trace id of the span they were observed in
//! as an exemplar, so a slow bucket leads to a trace.

pub mod errors;
pub mod health;
pub mod propagation;
pub mod server;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::{Registry, Unit};

use crate::controller::ReconcileError;
use crate::kong::PushState;
use crate::translate::{KongConfig, RouteRef};
use errors::categorize;
use propagation::{Propagation, settled};

/// The `controller` label of the reconcile metrics. kongress has one controller today;
/// the label keeps dashboards stable when it gets more.
pub const GATEWAYCLASS_CONTROLLER: &str = "gatewayclass";

/// Where exemplars get their trace id: the span the observation is made in.
pub type TraceSource = fn() -> Option<String>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: String,
    category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    gateway_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PodLabels {
    gateway_class: String,
    pod: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PushLabels {
    gateway_class: String,
    pod: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TraceLabels {
    trace_id: String,
}

type Histogram = HistogramWithExemplars<TraceLabels>;

/// How one `POST /config` ended, as the `result` label of `kongress_pushes_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushResult {
    /// Kong runs the config (201, or 304 when it already did).
    Accepted,
    /// Kong refused it (400).
    Rejected,
    /// No usable answer: connection, TLS, timeout, 5xx.
    Failed,
}

impl PushResult {
    fn as_str(self) -> &'static str {
        match self {
            PushResult::Accepted => "accepted",
            PushResult::Rejected => "rejected",
            PushResult::Failed => "failed",
        }
    }
}

/// What the scrape-time gauges describe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveState {
    pub leader: bool,
    /// Objects in each watch cache, by kind.
    pub caches: Vec<(&'static str, usize)>,
    /// Kong data planes (Deployments) kongress manages.
    pub data_planes: usize,
}

type LiveSource = Box<dyn Fn() -> LiveState + Send + Sync>;

/// Reads [`LiveState`] at every scrape.
#[derive(Default)]
struct LiveCollector {
    source: Arc<OnceLock<LiveSource>>,
}

impl std::fmt::Debug for LiveCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveCollector")
    }
}

impl Collector for LiveCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(source) = self.source.get() else {
            return Ok(());
        };
        let live = source();
        let leader = ConstGauge::new(i64::from(live.leader));
        let metric = encoder.encode_descriptor(
            "leader",
            "1 while this process is the leader (writes and pushes), 0 while it stands by.",
            None,
            leader.metric_type(),
        )?;
        leader.encode(metric)?;
        let planes = ConstGauge::new(i64::try_from(live.data_planes).unwrap_or(i64::MAX));
        let metric = encoder.encode_descriptor(
            "data_planes",
            "Kong data planes (one Deployment per GatewayClass) managed by kongress.",
            None,
            planes.metric_type(),
        )?;
        planes.encode(metric)?;
        let mut family = encoder.encode_descriptor(
            "cache_objects",
            "Objects in each watch cache, by kind.",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (kind, count) in &live.caches {
            let labels = [("kind", *kind)];
            let gauge = ConstGauge::new(i64::try_from(*count).unwrap_or(i64::MAX));
            gauge.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

const RECONCILE_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const TRANSLATION_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
const PUSH_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const PROPAGATION_BUCKETS: [f64; 11] = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn reconcile_histogram() -> Histogram {
    HistogramWithExemplars::new(RECONCILE_BUCKETS.into_iter())
}

fn translation_histogram() -> Histogram {
    HistogramWithExemplars::new(TRANSLATION_BUCKETS.into_iter())
}

fn push_histogram() -> Histogram {
    HistogramWithExemplars::new(PUSH_BUCKETS.into_iter())
}

fn propagation_histogram() -> Histogram {
    HistogramWithExemplars::new(PROPAGATION_BUCKETS.into_iter())
}

/// Every metric kongress exports, and the hooks that move them.
pub struct Metrics {
    registry: Registry,
    trace_id: TraceSource,
    reconciles: Family<ControllerLabels, Counter>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    reconcile_duration: HistogramFamily<ControllerLabels>,
    translation_duration: HistogramFamily<ClassLabels>,
    config_bytes: Family<ClassLabels, Gauge>,
    config_entities: Family<ClassLabels, Gauge>,
    pushes: Family<PushLabels, Counter>,
    push_duration: HistogramFamily<PodLabels>,
    route_propagation: HistogramFamily<ClassLabels>,
    propagation: Propagation,
    live: Arc<OnceLock<LiveSource>>,
    /// Pods with series per class, so a gone pod's series go with it.
    pods: Mutex<HashMap<String, BTreeSet<String>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Metrics whose exemplars carry the trace id of the current span.
    pub fn new() -> Self {
        Self::with_trace_source(crate::telemetry::current_trace_id)
    }

    /// Metrics whose exemplars take their trace id from `trace_id`.
    pub fn with_trace_source(trace_id: TraceSource) -> Self {
        let mut registry = Registry::with_prefix("kongress");
        let reconciles = Family::default();
        registry.register(
            "reconciles",
            "Reconciles run, per controller (standby reconciles, which do nothing, are not counted).",
            Family::clone(&reconciles),
        );
        let reconcile_errors = Family::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, per controller and error category.",
            Family::clone(&reconcile_errors),
        );
        let reconcile_duration = HistogramFamily::new_with_constructor(reconcile_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "reconcile_duration",
            "Time of one reconcile: cache snapshot, decide step, writes.",
            Unit::Seconds,
            HistogramFamily::clone(&reconcile_duration),
        );
        let translation_duration = HistogramFamily::new_with_constructor(translation_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "translation_duration",
            "Time of the decide step of one class (listener plan, route translation, rendering, status), \
             from cache snapshot to outcome.",
            Unit::Seconds,
            HistogramFamily::clone(&translation_duration),
        );
        let config_bytes = Family::default();
        registry.register_with_unit(
            "config",
            "Size of the Kong config decided for a class (the JSON body of POST /config).",
            Unit::Bytes,
            Family::clone(&config_bytes),
        );
        let config_entities = Family::default();
        registry.register(
            "config_entities",
            "Kong entities (services, routes, plugins, upstreams, targets, certificates, SNIs) in the \
             config decided for a class.",
            Family::clone(&config_entities),
        );
        let pushes = Family::default();
        registry.register(
            "pushes",
            "POST /config requests to Kong pods, per class, pod and result (accepted, rejected, failed).",
            Family::clone(&pushes),
        );
        let push_duration = HistogramFamily::new_with_constructor(push_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "push_duration",
            "Time of one POST /config to a Kong pod, until Kong answered.",
            Unit::Seconds,
            HistogramFamily::clone(&push_duration),
        );
        let route_propagation = HistogramFamily::new_with_constructor(propagation_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "route_propagation",
            "From the watch event that saw a new route generation to every ready Kong pod of its class \
             running a config decided after it.",
            Unit::Seconds,
            HistogramFamily::clone(&route_propagation),
        );
        // Series that exist from the start read 0 instead of missing, so rate() and alerts
        // on them work before the first reconcile (or error).
        let controller = ControllerLabels {
            controller: GATEWAYCLASS_CONTROLLER.into(),
        };
        let _ = reconciles.get_or_create(&controller);
        let _ = reconcile_duration.get_or_create(&controller);
        for category in errors::ErrorCategory::ALL {
            let _ = reconcile_errors.get_or_create(&ErrorLabels {
                controller: GATEWAYCLASS_CONTROLLER.into(),
                category: category.as_str().into(),
            });
        }
        let live = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(LiveCollector { source: live.clone() }));
        Self {
            registry,
            trace_id,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            translation_duration,
            config_bytes,
            config_entities,
            pushes,
            push_duration,
            route_propagation,
            propagation: Propagation::default(),
            live,
            pods: Mutex::default(),
        }
    }

    /// Sets where the scrape-time gauges come from (once; later calls are ignored).
    pub fn set_live_source(&self, source: impl Fn() -> LiveState + Send + Sync + 'static) {
        let _ = self.live.set(Box::new(source));
    }

    /// The exposition, in OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    fn exemplar(&self) -> Option<TraceLabels> {
        // OpenMetrics caps an exemplar's labels at 128 characters; a trace id is 32.
        (self.trace_id)()
            .filter(|id| !id.is_empty() && id.len() <= 64)
            .map(|trace_id| TraceLabels { trace_id })
    }

    /// A reconcile of the GatewayClass controller ended.
    pub fn reconciled(&self, elapsed: Duration, error: Option<&ReconcileError>) {
        let labels = ControllerLabels {
            controller: GATEWAYCLASS_CONTROLLER.into(),
        };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64(), self.exemplar(), None);
        if let Some(error) = error {
            let labels = ErrorLabels {
                controller: GATEWAYCLASS_CONTROLLER.into(),
                category: categorize(error).as_str().into(),
            };
            self.reconcile_errors.get_or_create(&labels).inc();
        }
    }

    /// The decide step of a class took `elapsed`.
    pub fn decided(&self, class: &str, elapsed: Duration) {
        self.translation_duration.get_or_create(&class_labels(class)).observe(
            elapsed.as_secs_f64(),
            self.exemplar(),
            None,
        );
    }

    /// The push adopted a new config for the class: `bytes` of JSON.
    pub fn config_prepared(&self, class: &str, bytes: usize, config: &KongConfig) {
        let labels = class_labels(class);
        self.config_bytes
            .get_or_create(&labels)
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.config_entities
            .get_or_create(&labels)
            .set(i64::try_from(entity_count(config)).unwrap_or(i64::MAX));
    }

    /// One `POST /config` to a Kong pod ended.
    pub fn pushed(&self, class: &str, pod: &str, result: PushResult, elapsed: Duration) {
        if let Ok(mut pods) = self.pods.lock() {
            pods.entry(class.to_string()).or_default().insert(pod.to_string());
        }
        let labels = PushLabels {
            gateway_class: class.into(),
            pod: pod.into(),
            result: result.as_str().into(),
        };
        self.pushes.get_or_create(&labels).inc();
        self.push_duration
            .get_or_create(&PodLabels {
                gateway_class: class.into(),
                pod: pod.into(),
            })
            .observe(elapsed.as_secs_f64(), self.exemplar(), None);
    }

    /// A Kong pod left its class: its series go.
    pub fn forget_pod(&self, class: &str, pod: &str) {
        if let Ok(mut pods) = self.pods.lock()
            && let Some(known) = pods.get_mut(class)
        {
            known.remove(pod);
        }
        self.remove_pod_series(class, pod);
    }

    fn remove_pod_series(&self, class: &str, pod: &str) {
        for result in [PushResult::Accepted, PushResult::Rejected, PushResult::Failed] {
            self.pushes.remove(&PushLabels {
                gateway_class: class.into(),
                pod: pod.into(),
                result: result.as_str().into(),
            });
        }
        self.push_duration.remove(&PodLabels {
            gateway_class: class.into(),
            pod: pod.into(),
        });
    }

    /// kongress stopped serving the class (or stopped leading): its series go.
    pub fn forget_class(&self, class: &str) {
        let pods = self
            .pods
            .lock()
            .ok()
            .and_then(|mut pods| pods.remove(class))
            .unwrap_or_default();
        for pod in pods {
            self.remove_pod_series(class, &pod);
        }
        let labels = class_labels(class);
        self.config_bytes.remove(&labels);
        self.config_entities.remove(&labels);
        self.translation_duration.remove(&labels);
        self.route_propagation.remove(&labels);
        self.propagation.forget_class(class);
    }

    /// A route watch event (see [`Propagation::route_event`]).
    pub fn route_event(&self, route: &RouteRef, generation: i64, deleted: bool, classes: &[String], measure: bool) {
        self.propagation
            .route_event(route, generation, deleted, classes, measure, Instant::now());
    }

    /// The class's reconcile starts reading the caches.
    pub fn reconcile_started(&self, class: &str) {
        self.propagation.reconcile_started(class);
    }

    /// The class's reconcile handed `config` to the push.
    pub fn config_decided(&self, class: &str, config: &Arc<KongConfig>) {
        self.propagation.config_decided(class, config);
    }

    /// The push published the class's state: observes the route changes it settles.
    pub fn push_state(&self, class: &str, state: &PushState) {
        let Some(desired) = settled(state) else {
            return;
        };
        let latencies = self.propagation.config_running(class, desired, Instant::now());
        if latencies.is_empty() {
            return;
        }
        let histogram = self.route_propagation.get_or_create(&class_labels(class));
        for latency in latencies {
            histogram.observe(latency.as_secs_f64(), None, None);
        }
    }
}

fn class_labels(class: &str) -> ClassLabels {
    ClassLabels {
        gateway_class: class.into(),
    }
}

/// Kong entities in a config, nested ones included.
pub fn entity_count(config: &KongConfig) -> usize {
    let services: usize = config
        .services
        .iter()
        .map(|s| 1 + s.plugins.len() + s.routes.iter().map(|r| 1 + r.plugins.len()).sum::<usize>())
        .sum();
    let routes: usize = config.routes.iter().map(|r| 1 + r.plugins.len()).sum();
    let upstreams: usize = config.upstreams.iter().map(|u| 1 + u.targets.len()).sum();
    let certificates: usize = config.certificates.iter().map(|c| 1 + c.snis.len()).sum();
    services + routes + upstreams + certificates + config.ca_certificates.len()
}

#[cfg(test)]
mod tests;
