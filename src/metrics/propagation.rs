//! Route propagation latency: from the watch event in which kongress saw a route's new
//! generation to the moment every ready Kong pod of the route's class runs a config
//! decided after that event.
//!
//! That is the question a platform engineer asks ("I applied my HTTPRoute; when does
//! traffic follow it?"), so it is the definition measured. It covers the debounce, the
//! reconcile, the decide step and the push to every ready pod. What Kong made of the route
//! does not matter: a config without the route (Kong rejected it and the push fell back to
//! the rest) settles the change too, and the route's status says why. A change is not
//! settled while Kong refuses the whole config and the pods keep an older one.
//!
//! Bookkeeping, per class:
//! 1. a route event with a newer generation (or a new route) is *waiting*, numbered;
//! 2. a reconcile notes the number reached when it starts; the config it decides carries
//!    every waiting change up to that number (the caches are updated before the event is
//!    seen, so the reconcile's snapshot holds those generations);
//! 3. when the push reports that every ready pod runs a config, every change carried by
//!    that config or an earlier one is observed.
//!
//! A change superseded by a newer generation before it was decided is timed from the newer
//! event. Changes seen during the first list, or while this process stands by, are not
//! timed: the first would measure the start-up, the second the time until a failover.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::kong::{PushState, Serving};
use crate::translate::KongConfig;
use crate::translate::RouteRef;

/// Decided configs kept per class while their pods catch up; older ones are merged into
/// the next (a later config running settles the changes of an earlier one too).
const MAX_DECIDED: usize = 16;

#[derive(Default)]
struct ClassChanges {
    /// Seen, not yet carried by a decided config: sequence number and time of the event.
    waiting: HashMap<RouteRef, (u64, Instant)>,
    /// The sequence number reached when the class's latest reconcile started.
    mark: u64,
    /// Configs handed to the push, oldest first, with the times of the changes they carry.
    decided: VecDeque<(Weak<KongConfig>, Vec<Instant>)>,
}

#[derive(Default)]
struct State {
    sequence: u64,
    /// The latest generation seen of every route.
    generations: HashMap<RouteRef, i64>,
    classes: HashMap<String, ClassChanges>,
}

/// See the module documentation.
#[derive(Default)]
pub struct Propagation {
    state: Mutex<State>,
}

impl Propagation {
    /// A watch event of `route`: `classes` are the classes it wakes; `measure` is false
    /// during the first list and while standing by (the generation is remembered all the same).
    pub fn route_event(
        &self,
        route: &RouteRef,
        generation: i64,
        deleted: bool,
        classes: &[String],
        measure: bool,
        now: Instant,
    ) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if deleted {
            state.generations.remove(route);
            for changes in state.classes.values_mut() {
                changes.waiting.remove(route);
            }
            return;
        }
        let newer = state.generations.get(route).is_none_or(|seen| generation > *seen);
        if !newer {
            return;
        }
        state.generations.insert(route.clone(), generation);
        if !measure {
            return;
        }
        state.sequence += 1;
        let sequence = state.sequence;
        for class in classes {
            let changes = state.classes.entry(class.clone()).or_default();
            changes.waiting.insert(route.clone(), (sequence, now));
        }
    }

    /// The class's reconcile starts reading the caches.
    pub fn reconcile_started(&self, class: &str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let sequence = state.sequence;
        if let Some(changes) = state.classes.get_mut(class) {
            changes.mark = sequence;
        }
    }

    /// The class's reconcile handed `config` to the push.
    pub fn config_decided(&self, class: &str, config: &Arc<KongConfig>) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let Some(changes) = state.classes.get_mut(class) else {
            return;
        };
        let mark = changes.mark;
        let mut carried = Vec::new();
        changes.waiting.retain(|_, (sequence, seen)| {
            let decided = *sequence <= mark;
            if decided {
                carried.push(*seen);
            }
            !decided
        });
        if carried.is_empty() {
            return;
        }
        changes.decided.push_back((Arc::downgrade(config), carried));
        while changes.decided.len() > MAX_DECIDED {
            if let Some((_, oldest)) = changes.decided.pop_front()
                && let Some((_, next)) = changes.decided.front_mut()
            {
                next.extend(oldest);
            }
        }
    }

    /// Every ready pod of the class runs the config decided as `desired`: the latencies of
    /// the changes it settles.
    pub fn config_running(&self, class: &str, desired: &Arc<KongConfig>, now: Instant) -> Vec<Duration> {
        let Ok(mut state) = self.state.lock() else {
            return Vec::new();
        };
        let Some(changes) = state.classes.get_mut(class) else {
            return Vec::new();
        };
        let Some(position) = changes
            .decided
            .iter()
            .position(|(config, _)| std::ptr::eq(config.as_ptr(), Arc::as_ptr(desired)))
        else {
            return Vec::new();
        };
        changes
            .decided
            .drain(..=position)
            .flat_map(|(_, seen)| seen)
            .map(|seen| now.saturating_duration_since(seen))
            .collect()
    }

    /// Drops the bookkeeping of a class kongress no longer serves (or no longer leads).
    pub fn forget_class(&self, class: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.classes.remove(class);
        }
    }
}

/// The decided config whose changes a push state settles: the push serves that config (or
/// its fallback without what Kong rejected), some pod is ready, and every ready pod runs it.
pub fn settled(state: &PushState) -> Option<&Arc<KongConfig>> {
    let serving = matches!(state.serving, Serving::Desired | Serving::Fallback);
    let some_ready = state.pods.iter().any(|p| p.ready);
    (serving && some_ready && state.ready_pods_in_sync())
        .then_some(state.desired.as_ref())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ObjectKey;
    use crate::kong::PodPushState;
    use crate::plan::RouteKind;

    fn route(name: &str) -> RouteRef {
        RouteRef {
            kind: RouteKind::HttpRoute,
            key: ObjectKey::new("default", name),
        }
    }

    fn config() -> Arc<KongConfig> {
        Arc::new(KongConfig::empty())
    }

    fn classes(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_change_is_timed_from_its_event_until_its_config_runs() {
        let p = Propagation::default();
        let t0 = Instant::now();
        p.route_event(&route("a"), 1, false, &classes(&["c"]), true, t0);
        p.reconcile_started("c");
        let decided = config();
        p.config_decided("c", &decided);
        let later = t0 + Duration::from_millis(750);
        assert_eq!(p.config_running("c", &decided, later), vec![Duration::from_millis(750)]);
        assert!(p.config_running("c", &decided, later).is_empty(), "observed once");
    }

    #[test]
    fn a_change_seen_after_the_reconcile_started_waits_for_the_next_config() {
        let p = Propagation::default();
        let t0 = Instant::now();
        p.route_event(&route("a"), 1, false, &classes(&["c"]), true, t0);
        p.reconcile_started("c");
        p.route_event(
            &route("b"),
            1,
            false,
            &classes(&["c"]),
            true,
            t0 + Duration::from_secs(1),
        );
        let first = config();
        p.config_decided("c", &first);
        assert_eq!(p.config_running("c", &first, t0 + Duration::from_secs(2)).len(), 1);
        p.reconcile_started("c");
        let second = config();
        p.config_decided("c", &second);
        assert_eq!(
            p.config_running("c", &second, t0 + Duration::from_secs(3)),
            vec![Duration::from_secs(2)]
        );
    }

    #[test]
    fn a_later_config_running_settles_earlier_ones() {
        let p = Propagation::default();
        let t0 = Instant::now();
        p.route_event(&route("a"), 1, false, &classes(&["c"]), true, t0);
        p.reconcile_started("c");
        let first = config();
        p.config_decided("c", &first);
        p.route_event(
            &route("b"),
            1,
            false,
            &classes(&["c"]),
            true,
            t0 + Duration::from_secs(1),
        );
        p.reconcile_started("c");
        let second = config();
        p.config_decided("c", &second);
        // The push coalesced: the pods went straight to the second config.
        let mut latencies = p.config_running("c", &second, t0 + Duration::from_secs(4));
        latencies.sort();
        assert_eq!(latencies, vec![Duration::from_secs(3), Duration::from_secs(4)]);
    }

    #[test]
    fn status_writes_first_lists_and_standby_events_are_not_timed() {
        let p = Propagation::default();
        let t0 = Instant::now();
        // First list (not measured), then the same generation again (a status write).
        p.route_event(&route("a"), 3, false, &classes(&["c"]), false, t0);
        p.route_event(&route("a"), 3, false, &classes(&["c"]), true, t0);
        p.reconcile_started("c");
        let decided = config();
        p.config_decided("c", &decided);
        assert!(p.config_running("c", &decided, t0).is_empty());
        // A new generation is.
        p.route_event(&route("a"), 4, false, &classes(&["c"]), true, t0);
        p.reconcile_started("c");
        p.config_decided("c", &decided);
        assert_eq!(p.config_running("c", &decided, t0).len(), 1);
    }

    #[test]
    fn a_deleted_route_is_forgotten() {
        let p = Propagation::default();
        let t0 = Instant::now();
        p.route_event(&route("a"), 1, false, &classes(&["c"]), true, t0);
        p.route_event(&route("a"), 1, true, &[], true, t0);
        p.reconcile_started("c");
        let decided = config();
        p.config_decided("c", &decided);
        assert!(p.config_running("c", &decided, t0).is_empty());
        // Created again with generation 1: a new route, timed.
        p.route_event(&route("a"), 1, false, &classes(&["c"]), true, t0);
        p.reconcile_started("c");
        p.config_decided("c", &decided);
        assert_eq!(p.config_running("c", &decided, t0).len(), 1);
    }

    #[test]
    fn a_route_of_two_classes_is_timed_in_each() {
        let p = Propagation::default();
        let t0 = Instant::now();
        p.route_event(&route("a"), 1, false, &classes(&["c", "d"]), true, t0);
        for class in ["c", "d"] {
            p.reconcile_started(class);
            let decided = config();
            p.config_decided(class, &decided);
            assert_eq!(p.config_running(class, &decided, t0).len(), 1, "{class}");
        }
    }

    #[test]
    fn old_decided_configs_merge_into_newer_ones() {
        let p = Propagation::default();
        let t0 = Instant::now();
        let mut configs = Vec::new();
        for i in 0..(MAX_DECIDED + 4) {
            p.route_event(&route(&format!("r{i}")), 1, false, &classes(&["c"]), true, t0);
            p.reconcile_started("c");
            let decided = config();
            p.config_decided("c", &decided);
            configs.push(decided);
        }
        let last = configs.last().cloned().expect("configs");
        assert_eq!(
            p.config_running("c", &last, t0).len(),
            MAX_DECIDED + 4,
            "no change lost"
        );
    }

    fn push_state(serving: Serving, pods: &[(bool, Option<&str>)], desired: &Arc<KongConfig>) -> PushState {
        PushState {
            desired: Some(desired.clone()),
            desired_hash: Some("h".into()),
            serving,
            target_hash: Some("h".into()),
            pods: pods
                .iter()
                .enumerate()
                .map(|(i, (ready, hash))| PodPushState {
                    pod: format!("kong-{i}"),
                    ready: *ready,
                    running_hash: hash.map(str::to_string),
                    last_error: None,
                })
                .collect(),
            rejected: Vec::new(),
            config_error: None,
        }
    }

    #[test]
    fn a_config_is_settled_when_every_ready_pod_runs_it() {
        let c = config();
        let table = [
            (
                "all ready pods run it",
                Serving::Desired,
                vec![(true, Some("h")), (true, Some("h"))],
                true,
            ),
            (
                "an unready pod may lag",
                Serving::Desired,
                vec![(true, Some("h")), (false, None)],
                true,
            ),
            (
                "a ready pod lags",
                Serving::Desired,
                vec![(true, Some("h")), (true, Some("old"))],
                false,
            ),
            (
                "no ready pod serves anything",
                Serving::Desired,
                vec![(false, None)],
                false,
            ),
            (
                "the fallback without rejected objects settles too",
                Serving::Fallback,
                vec![(true, Some("h"))],
                true,
            ),
            (
                "Kong refused the whole config",
                Serving::LastAccepted,
                vec![(true, Some("h"))],
                false,
            ),
        ];
        for (rule, serving, pods, want) in table {
            assert_eq!(settled(&push_state(serving, &pods, &c)).is_some(), want, "{rule}");
        }
    }
}
