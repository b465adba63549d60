//! What woke a reconcile: the watch events (and push results) that triggered a class, kept
//! until the class's next reconcile span links to them.
//!
//! A watch event that maps to one or more classes becomes a short root span, `watch event`
//! (kind, namespace/name, resourceVersion of the object). Its context waits here, per
//! class; the class's next `reconcile` span takes every waiting context as a link. The
//! controller folds bursts of events into one reconcile, hence several links per
//! reconcile. A class keeps at most [`LINKS_PER_CLASS`] (the newest); contexts for classes
//! that never reconcile (not kongress's, or deleted) are bounded by [`MAX_CLASSES`].

use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex};

use gateway_api::gatewayclasses::GatewayClass;
use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use opentelemetry::trace::SpanContext;

use super::{enabled, sampled_context};

/// Links one reconcile span takes at most: the newest, older ones are dropped.
pub const LINKS_PER_CLASS: usize = 32;
/// Classes links are kept for at once; links for further classes are dropped.
pub const MAX_CLASSES: usize = 4096;

/// Span contexts waiting for their class's next reconcile.
#[derive(Debug, Default)]
pub(super) struct PendingLinks {
    classes: Mutex<HashMap<String, Waiting>>,
}

#[derive(Debug, Default)]
struct Waiting {
    links: VecDeque<SpanContext>,
    /// Links dropped because more were waiting than one reconcile takes.
    dropped: usize,
}

/// What one reconcile links to.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Taken {
    pub links: Vec<SpanContext>,
    pub dropped: usize,
}

impl PendingLinks {
    pub(super) fn add(&self, class: &str, link: SpanContext) {
        let Ok(mut classes) = self.classes.lock() else {
            return;
        };
        if !classes.contains_key(class) && classes.len() >= MAX_CLASSES {
            return;
        }
        let waiting = classes.entry(class.to_string()).or_default();
        if waiting.links.len() == LINKS_PER_CLASS {
            waiting.links.pop_front();
            waiting.dropped += 1;
        }
        waiting.links.push_back(link);
    }

    /// Everything waiting for `class`, oldest first; nothing waits afterwards.
    pub(super) fn take(&self, class: &str) -> Taken {
        let Ok(mut classes) = self.classes.lock() else {
            return Taken::default();
        };
        classes
            .remove(class)
            .map(|waiting| Taken {
                links: waiting.links.into(),
                dropped: waiting.dropped,
            })
            .unwrap_or_default()
    }
}

pub(super) static PENDING: LazyLock<PendingLinks> = LazyLock::new(PendingLinks::default);

/// The next reconcile of `class` links to `link` (the span of what woke it).
pub fn link_next_reconcile(class: &str, link: SpanContext) {
    if enabled() {
        PENDING.add(class, link);
    }
}

/// Drops what waits for a class kongress does not reconcile (not its controller).
pub fn forget_links(class: &str) {
    if enabled() {
        PENDING.take(class);
    }
}

/// Wraps a watch mapper (object → classes to reconcile) so that an object that wakes a
/// class is recorded as a `watch event` span the class's next reconcile links to. Without
/// an exporter it only calls `mapper`.
pub fn linked<K, I, F>(mapper: F) -> impl Fn(K) -> Vec<ObjectRef<GatewayClass>>
where
    K: Resource,
    K::DynamicType: Default,
    I: IntoIterator<Item = ObjectRef<GatewayClass>>,
    F: Fn(K) -> I,
{
    move |object: K| {
        if !enabled() {
            return mapper(object).into_iter().collect();
        }
        let event = WatchEvent::of(&object);
        let classes: Vec<ObjectRef<GatewayClass>> = mapper(object).into_iter().collect();
        event.woke(&classes);
        classes
    }
}

/// Records that `object`'s change woke `classes` (see [`linked`]) and hands them back.
pub fn woke<K>(object: &K, classes: Vec<ObjectRef<GatewayClass>>) -> Vec<ObjectRef<GatewayClass>>
where
    K: Resource,
    K::DynamicType: Default,
{
    if enabled() {
        WatchEvent::of(object).woke(&classes);
    }
    classes
}

/// The identity of a watched object, taken before the mapper consumes it.
pub(super) struct WatchEvent {
    kind: String,
    namespace: Option<String>,
    name: String,
    resource_version: Option<String>,
}

impl WatchEvent {
    pub(super) fn of<K>(object: &K) -> Self
    where
        K: Resource,
        K::DynamicType: Default,
    {
        let meta = object.meta();
        Self {
            kind: K::kind(&K::DynamicType::default()).to_string(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone().unwrap_or_default(),
            resource_version: meta.resource_version.clone(),
        }
    }

    /// Records the event as a span, pending for each of `classes`, if it woke any.
    pub(super) fn woke(&self, classes: &[ObjectRef<GatewayClass>]) {
        if classes.is_empty() {
            return;
        }
        let object = match &self.namespace {
            Some(namespace) => format!("{namespace}/{}", self.name),
            None => self.name.clone(),
        };
        let names: Vec<&str> = classes.iter().map(|class| class.name.as_str()).collect();
        let span = tracing::debug_span!(
            parent: None,
            "watch event",
            kind = %self.kind,
            object = %object,
            resource_version = self.resource_version.as_deref().unwrap_or(""),
            gateway_classes = %names.join(","),
        );
        if let Some(context) = sampled_context(&span) {
            for class in names {
                PENDING.add(class, context.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    fn context(n: u64) -> SpanContext {
        SpanContext::new(
            TraceId::from(u128::from(n) + 1),
            SpanId::from(n + 1),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        )
    }

    #[test]
    fn a_reconcile_takes_every_link_waiting_for_its_class_once() {
        let pending = PendingLinks::default();
        pending.add("a", context(1));
        pending.add("b", context(2));
        pending.add("a", context(3));
        assert_eq!(pending.take("a").links, vec![context(1), context(3)]);
        assert_eq!(pending.take("a"), Taken::default());
        assert_eq!(pending.take("b").links, vec![context(2)]);
    }

    #[test]
    fn a_class_keeps_only_the_newest_links_and_counts_the_rest() {
        let pending = PendingLinks::default();
        let total = LINKS_PER_CLASS as u64 + 5;
        for n in 0..total {
            pending.add("a", context(n));
        }
        let taken = pending.take("a");
        assert_eq!(taken.dropped, 5);
        assert_eq!(taken.links.len(), LINKS_PER_CLASS);
        assert_eq!(taken.links.first(), Some(&context(5)));
        assert_eq!(taken.links.last(), Some(&context(total - 1)));
    }

    #[test]
    fn links_for_more_classes_than_the_bound_are_dropped_not_kept() {
        let pending = PendingLinks::default();
        for n in 0..MAX_CLASSES {
            pending.add(&format!("class-{n}"), context(n as u64));
        }
        pending.add("one-too-many", context(0));
        assert_eq!(pending.take("one-too-many"), Taken::default());
        // A class already waiting still gets its links.
        pending.add("class-0", context(9));
        assert_eq!(pending.take("class-0").links.len(), 2);
    }
}
