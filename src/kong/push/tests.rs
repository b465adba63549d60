//! Tables of the push decisions: which pods, which config, what a result changes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::*;
use crate::kong::errors::RejectedEntity;
use crate::kong::hash::EMPTY_CONFIG_HASH;
use crate::translate::kong::{Route, RouteEntry, Service, Upstream};
use crate::translate::tags::{self, Source};

fn settings() -> PushSettings {
    PushSettings {
        backoff: ExponentialBuilder::default()
            .with_min_delay(Duration::from_secs(1))
            .with_max_delay(Duration::from_secs(8))
            .with_factor(2.0)
            .without_max_times(),
        verify_interval: Duration::from_secs(30),
    }
}

fn pod(name: &str, last_octet: u8) -> PodSpec {
    PodSpec {
        name: name.into(),
        uid: format!("uid-{name}"),
        address: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 244, 0, last_octet)), 8444),
        ready: false,
        restarts: 0,
    }
}

fn route_tags(name: &str) -> Vec<String> {
    tags::of(&Source {
        group: "gateway.networking.k8s.io",
        version: "v1",
        kind: "HTTPRoute",
        key: &ObjectKey::new("shop", name),
    })
}

fn route_source(name: &str) -> TaggedSource {
    tags::parse(&route_tags(name)).expect("tags")
}

/// A config with one service and a route per name, each from its own HTTPRoute.
fn config(routes: &[&str]) -> Arc<KongConfig> {
    Arc::new(KongConfig {
        services: vec![Arc::new(Service {
            name: "shop.backend.80".into(),
            host: "backend.shop.80.svc".into(),
            port: 80,
            protocol: "http".into(),
            tags: tags::of(&Source {
                group: "",
                version: "v1",
                kind: "Service",
                key: &ObjectKey::new("shop", "backend"),
            }),
            routes: routes
                .iter()
                .map(|r| {
                    let route = Route {
                        name: format!("shop.{r}.0.0"),
                        expression: "http.path ^= \"/\"".into(),
                        tags: route_tags(r),
                        ..Route::default()
                    };
                    RouteEntry::new(route, 1)
                })
                .collect(),
            ..Service::default()
        })],
        upstreams: vec![Arc::new(Upstream {
            name: "backend.shop.80.svc".into(),
            ..Upstream::default()
        })],
        ..KongConfig::empty()
    })
}

fn rejection_of(routes: &[&str]) -> Rejection {
    Rejection {
        message: "declarative config is invalid".into(),
        entities: routes
            .iter()
            .map(|r| RejectedEntity {
                entity_type: "route".into(),
                name: Some(format!("shop.{r}.0.0")),
                tags: route_tags(r),
                messages: vec!["Router Expression failed validation: bad".into()],
                ..RejectedEntity::default()
            })
            .collect(),
    }
}

fn unattributed_rejection() -> Rejection {
    Rejection {
        message: "declarative config is invalid: {_format_version=\"wrong\"}".into(),
        entities: vec![],
    }
}

/// Pod names and what they are told to do, in pod order.
fn plan(actions: &[(PodKey, PodAction)]) -> Vec<(String, String)> {
    actions
        .iter()
        .map(|(pod, action)| {
            let what = match action {
                PodAction::ReadStatus => "status".to_string(),
                PodAction::Push(config) => format!("push {}", config.version),
            };
            (pod.clone(), what)
        })
        .collect()
}

fn pushed(actions: &[(PodKey, PodAction)], pod: &str) -> Arc<PreparedConfig> {
    actions
        .iter()
        .find_map(|(p, a)| match a {
            PodAction::Push(config) if p == pod => Some(config.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no push to {pod} in {:?}", plan(actions)))
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// A class with `pods`, a decided config, and every pod's hash read as `hash`.
fn class_with(pods: &[&str], desired: Arc<KongConfig>, hash: &str, now: Instant) -> ClassPush {
    let mut class = ClassPush::new(settings());
    class.set_pods(pods.iter().zip(1..).map(|(p, i)| pod(p, i)).collect());
    class.set_desired(desired).expect("serialises");
    let actions = class.next_actions(now);
    assert!(actions.iter().all(|(_, a)| matches!(a, PodAction::ReadStatus)));
    for (pod, _) in actions {
        class.record(&pod, PodResult::Status(Some(hash.into())), now);
    }
    class
}

#[test]
fn unknown_pods_are_asked_for_their_hash_before_any_push() {
    let now = Instant::now();
    let mut class = ClassPush::new(settings());
    class.set_pods(vec![pod("kong-a", 1), pod("kong-b", 2)]);
    class.set_desired(config(&["cart"])).expect("serialises");
    assert_eq!(
        plan(&class.next_actions(now)),
        owned(&[("kong-a", "status"), ("kong-b", "status")])
    );
    // Busy pods get nothing more until they answer.
    assert!(class.next_actions(now).is_empty());
}

#[test]
fn only_pods_whose_hash_differs_are_pushed() {
    let now = Instant::now();
    let desired = config(&["cart"]);
    let mut class = ClassPush::new(settings());
    class.set_pods(vec![pod("kong-a", 1), pod("kong-b", 2)]);
    class.set_desired(desired.clone()).expect("serialises");
    class.next_actions(now);
    let hash = PreparedConfig::new(0, desired, vec![]).expect("serialises").hash;
    class.record("kong-a", PodResult::Status(Some(hash)), now);
    class.record("kong-b", PodResult::Status(Some(EMPTY_CONFIG_HASH.into())), now);
    assert_eq!(plan(&class.next_actions(now)), owned(&[("kong-b", "push 1")]));
}

#[test]
fn restart_with_matching_hashes_pushes_nothing() {
    let now = Instant::now();
    let desired = config(&["cart"]);
    let hash = PreparedConfig::new(0, desired.clone(), vec![])
        .expect("serialises")
        .hash;
    let mut class = class_with(&["kong-a", "kong-b"], desired, &hash, now);
    assert!(class.next_actions(now).is_empty());
    assert!(class.state().ready_pods_in_sync());
}

#[test]
fn no_decided_config_means_no_push() {
    let now = Instant::now();
    let mut class = ClassPush::new(settings());
    class.set_pods(vec![pod("kong-a", 1)]);
    assert_eq!(plan(&class.next_actions(now)), owned(&[("kong-a", "status")]));
    class.record("kong-a", PodResult::Status(Some(EMPTY_CONFIG_HASH.into())), now);
    assert!(class.next_actions(now).is_empty());
    assert_eq!(class.state().serving, Serving::Nothing);
}

#[test]
fn a_burst_of_decisions_reaches_a_busy_pod_as_one_push_of_the_newest() {
    let now = Instant::now();
    let mut class = class_with(&["kong-a"], config(&["a"]), EMPTY_CONFIG_HASH, now);
    let first = pushed(&class.next_actions(now), "kong-a");
    class.set_desired(config(&["a", "b"])).expect("serialises");
    class.set_desired(config(&["a", "b", "c"])).expect("serialises");
    assert!(class.next_actions(now).is_empty(), "one request in flight per pod");
    class.record("kong-a", PodResult::Accepted(first.clone()), now);
    let next = pushed(&class.next_actions(now), "kong-a");
    assert_eq!(next.config, config(&["a", "b", "c"]));
    assert!(next.version > first.version);
}

#[test]
fn deciding_the_same_config_again_changes_nothing() {
    let now = Instant::now();
    let mut class = class_with(&["kong-a"], config(&["a"]), EMPTY_CONFIG_HASH, now);
    assert!(!class.set_desired(config(&["a"])).expect("serialises"));
    assert_eq!(plan(&class.next_actions(now)), owned(&[("kong-a", "push 1")]));
}

#[test]
fn rejected_route_is_reported_and_the_rest_is_pushed_as_a_fallback() {
    let now = Instant::now();
    let mut class = class_with(&["kong-a", "kong-b"], config(&["good", "bad"]), EMPTY_CONFIG_HASH, now);
    let actions = class.next_actions(now);
    let whole = pushed(&actions, "kong-a");
    class.record(
        "kong-a",
        PodResult::Rejected(whole.clone(), rejection_of(&["bad"])),
        now,
    );
    // kong-b's rejection of the same config arrives later and changes nothing more.
    class.record("kong-b", PodResult::Rejected(whole, rejection_of(&["bad"])), now);

    let state = class.state();
    assert_eq!(state.serving, Serving::Fallback);
    assert_eq!(state.rejected.len(), 1);
    assert_eq!(state.rejected[0].source, route_source("bad"));
    assert_eq!(
        state.rejection_of("gateway.networking.k8s.io", "HTTPRoute", &ObjectKey::new("shop", "bad")),
        Some(&["Router Expression failed validation: bad".to_string()][..])
    );
    let actions = class.next_actions(now);
    let fallback = pushed(&actions, "kong-a");
    assert_eq!(pushed(&actions, "kong-b").hash, fallback.hash);
    assert_eq!(fallback.config, config(&["good"]));
    assert_eq!(fallback.excluded, [route_source("bad")]);

    class.record("kong-a", PodResult::Accepted(fallback.clone()), now);
    class.record("kong-b", PodResult::Accepted(fallback), now);
    let state = class.state();
    assert!(state.ready_pods_in_sync());
    assert_eq!(
        state.rejected.len(),
        1,
        "the rejection stays reported while the fallback serves"
    );
}

#[test]
fn fixing_the_rejected_object_clears_the_report_once_kong_accepts() {
    let now = Instant::now();
    let mut class = class_with(&["kong-a"], config(&["good", "bad"]), EMPTY_CONFIG_HASH, now);
    let whole = pushed(&class.next_actions(now), "kong-a");
    class.record("kong-a", PodResult::Rejected(whole, rejection_of(&["bad"])), now);
    let fallback = pushed(&class.next_actions(now), "kong-a");
    class.record("kong-a", PodResult::Accepted(fallback), now);

    class.set_desired(config(&["good", "fixed"])).expect("serialises");
    assert_eq!(
        class.state().rejected.len(),
        1,
        "kept until Kong answers for the new config"
    );
    let fixed = pushed(&class.next_actions(now), "kong-a");
    assert!(fixed.excluded.is_empty(), "a new decision is tried whole first");
    class.record("kong-a", PodResult::Accepted(fixed), now);
    assert!(class.state().rejected.is_empty());
    assert_eq!(class.state().serving, Serving::Desired);
}

#[test]
fn errors_found_in_a_fallback_are_added_and_left_out_too() {
    let now = Instant::now();
    let mut class = class_with(&["kong-a"], config(&["a", "b", "c"]), EMPTY_CONFIG_HASH, now);
    let whole = pushed(&class.next_actions(now), "kong-a");
    class.record("kong-a", PodResult::Rejected(whole, rejection_of(&["a"])), now);
    let first = pushed(&class.next_actions(now), "kong-a");
    class.record("kong-a", PodResult::Rejected(first.clone(), rejection_of(&["b"])), now);
    let second = pushed(&class.next_actions(now), "kong-a");
    assert!(second.version > first.version);
    assert_eq!(second.config, config(&["c"]));
    let rejected: Vec<_> = class.state().rejected.into_iter().map(|r| r.source).collect();
    assert_eq!(rejected, [route_source("a"), route_source("b")]);
}

#[test]
fn unattributed_rejection_keeps_the_last_accepted_config_for_new_pods() {
    let now = Instant::now();
    let mut class = class_with(&["kong-a"], config(&["a"]), EMPTY_CONFIG_HASH, now);
    let good = pushed(&class.next_actions(now), "kong-a");
    class.record("kong-a", PodResult::Accepted(good.clone()), now);

    class.set_desired(config(&["a", "b"])).expect("serialises");
    let newer = pushed(&class.next_actions(now), "kong-a");
    class.record("kong-a", PodResult::Rejected(newer, unattributed_rejection()), now);
    let state = class.state();
    assert_eq!(state.serving, Serving::LastAccepted);
    assert!(
        state
            .config_error
            .as_deref()
            .is_some_and(|e| e.contains("_format_version"))
    );
    assert_eq!(state.target_hash.as_deref(), Some(good.hash.as_str()));
    assert!(
        class.next_actions(now).is_empty(),
        "kong-a runs the last good config already"
    );

    // A scaled-up pod gets the last accepted config, not the rejected one.
    class.set_pods(vec![pod("kong-a", 1), pod("kong-b", 2)]);
    assert_eq!(plan(&class.next_actions(now)), owned(&[("kong-b", "status")]));
    class.record("kong-b", PodResult::Status(Some(EMPTY_CONFIG_HASH.into())), now);
    assert_eq!(pushed(&class.next_actions(now), "kong-b").hash, good.hash);
}

#[test]
fn rejection_of_a_superseded_config_is_ignored() {
    let now = Instant::now();
    let mut class = class_with(&["kong-a"], config(&["a", "bad"]), EMPTY_CONFIG_HASH, now);
    let old = pushed(&class.next_actions(now), "kong-a");
    class.set_desired(config(&["a"])).expect("serialises");
    class.record("kong-a", PodResult::Rejected(old, rejection_of(&["bad"])), now);
    let state = class.state();
    assert!(state.rejected.is_empty());
    assert_eq!(state.serving, Serving::Desired);
    assert_eq!(pushed(&class.next_actions(now), "kong-a").config, config(&["a"]));
}

#[test]
fn a_failing_pod_backs_off_alone_and_is_asked_for_its_hash_again() {
    let now = Instant::now();
    let mut class = class_with(&["kong-a", "kong-b"], config(&["a"]), EMPTY_CONFIG_HASH, now);
    let actions = class.next_actions(now);
    let config_a = pushed(&actions, "kong-a");
    class.record(
        "kong-a",
        PodResult::Failed {
            error: "timed out".into(),
            retry_after: None,
        },
        now,
    );
    class.record("kong-b", PodResult::Accepted(config_a), now);
    let state = class.state();
    assert_eq!(state.pods[0].last_error.as_deref(), Some("timed out"));
    assert_eq!(
        state.pods[0].running_hash, None,
        "a timed-out push may or may not have landed"
    );
    assert!(class.next_actions(now).is_empty());
    assert_eq!(class.next_wakeup(), Some(now + Duration::from_secs(1)));
    let later = now + Duration::from_secs(1);
    assert_eq!(plan(&class.next_actions(later)), owned(&[("kong-a", "status")]));
    // A second failure doubles the delay.
    class.record(
        "kong-a",
        PodResult::Failed {
            error: "connection refused".into(),
            retry_after: None,
        },
        later,
    );
    assert_eq!(class.next_wakeup(), Some(later + Duration::from_secs(2)));
}

#[test]
fn retry_after_from_kong_is_honoured_when_longer() {
    let now = Instant::now();
    let mut class = class_with(&["kong-a"], config(&["a"]), EMPTY_CONFIG_HASH, now);
    class.next_actions(now);
    class.record(
        "kong-a",
        PodResult::Failed {
            error: "429".into(),
            retry_after: Some(Duration::from_secs(5)),
        },
        now,
    );
    assert_eq!(class.next_wakeup(), Some(now + Duration::from_secs(5)));
}

#[test]
fn success_resets_the_backoff() {
    let now = Instant::now();
    let mut class = class_with(&["kong-a"], config(&["a"]), EMPTY_CONFIG_HASH, now);
    class.next_actions(now);
    let failed = || PodResult::Failed {
        error: "500".into(),
        retry_after: None,
    };
    class.record("kong-a", failed(), now);
    let t1 = now + Duration::from_secs(1);
    class.next_actions(t1);
    class.record("kong-a", PodResult::Status(Some(EMPTY_CONFIG_HASH.into())), t1);
    class.next_actions(t1);
    class.record("kong-a", failed(), t1);
    assert_eq!(class.next_wakeup(), Some(t1 + Duration::from_secs(1)));
}

#[test]
fn vanished_pods_are_forgotten_and_their_results_dropped() {
    let now = Instant::now();
    let mut class = class_with(&["kong-a", "kong-b"], config(&["a"]), EMPTY_CONFIG_HASH, now);
    let actions = class.next_actions(now);
    class.set_pods(vec![pod("kong-a", 1)]);
    class.record("kong-b", PodResult::Accepted(pushed(&actions, "kong-b")), now);
    let state = class.state();
    assert_eq!(state.pods.len(), 1);
    assert_eq!(state.pods[0].pod, "kong-a");
}

#[test]
fn a_restarted_or_replaced_pod_is_asked_for_its_hash_again() {
    let now = Instant::now();
    let desired = config(&["a"]);
    let hash = PreparedConfig::new(0, desired.clone(), vec![])
        .expect("serialises")
        .hash;
    let mut class = class_with(&["kong-a", "kong-b"], desired, &hash, now);
    let mut restarted = pod("kong-a", 1);
    restarted.restarts = 1;
    let mut replaced = pod("kong-b", 9);
    replaced.uid = "uid-new".into();
    class.set_pods(vec![restarted, replaced]);
    assert_eq!(
        plan(&class.next_actions(now)),
        owned(&[("kong-a", "status"), ("kong-b", "status")])
    );
}

#[test]
fn readiness_changes_keep_what_is_known_about_a_pod() {
    let now = Instant::now();
    let desired = config(&["a"]);
    let hash = PreparedConfig::new(0, desired.clone(), vec![])
        .expect("serialises")
        .hash;
    let mut class = class_with(&["kong-a"], desired, &hash, now);
    let mut ready = pod("kong-a", 1);
    ready.ready = true;
    class.set_pods(vec![ready]);
    assert!(class.next_actions(now).is_empty());
    assert!(class.state().pods[0].ready);
}

#[test]
fn idle_pods_are_verified_after_the_interval() {
    let now = Instant::now();
    let desired = config(&["a"]);
    let hash = PreparedConfig::new(0, desired.clone(), vec![])
        .expect("serialises")
        .hash;
    let mut class = class_with(&["kong-a"], desired, &hash, now);
    assert_eq!(class.next_wakeup(), Some(now + Duration::from_secs(30)));
    assert!(class.next_actions(now + Duration::from_secs(29)).is_empty());
    assert_eq!(
        plan(&class.next_actions(now + Duration::from_secs(30))),
        owned(&[("kong-a", "status")])
    );
}

#[test]
fn a_pod_that_lost_its_config_gets_it_again() {
    let now = Instant::now();
    let desired = config(&["a"]);
    let hash = PreparedConfig::new(0, desired.clone(), vec![])
        .expect("serialises")
        .hash;
    let mut class = class_with(&["kong-a"], desired, &hash, now);
    let later = now + Duration::from_secs(30);
    class.next_actions(later);
    class.record("kong-a", PodResult::Status(Some(EMPTY_CONFIG_HASH.into())), later);
    assert_eq!(plan(&class.next_actions(later)), owned(&[("kong-a", "push 1")]));
}

#[test]
fn ready_pods_in_sync_ignores_unready_pods_and_needs_a_target() {
    let mut state = ClassPush::new(settings()).state();
    assert!(!state.ready_pods_in_sync(), "nothing to be in sync with");
    state.target_hash = Some("h".into());
    state.pods = vec![
        PodPushState {
            pod: "a".into(),
            ready: true,
            running_hash: Some("h".into()),
            last_error: None,
        },
        PodPushState {
            pod: "b".into(),
            ready: false,
            running_hash: None,
            last_error: None,
        },
    ];
    assert!(state.ready_pods_in_sync());
    state.pods[1].ready = true;
    assert!(!state.ready_pods_in_sync());
}

#[test]
fn push_state_is_about_the_config_it_was_given() {
    let now = Instant::now();
    let desired = config(&["a"]);
    let class = class_with(&["kong-a"], desired.clone(), EMPTY_CONFIG_HASH, now);
    let state = class.state();
    assert!(state.is_for(&desired));
    assert!(!state.is_for(&config(&["b"])));
}

#[test]
fn a_config_without_entities_gets_a_placeholder_so_kong_becomes_ready() {
    let now = Instant::now();
    let empty = Arc::new(KongConfig::empty());
    let mut class = class_with(&["kong-a"], empty.clone(), EMPTY_CONFIG_HASH, now);
    let sent = pushed(&class.next_actions(now), "kong-a");
    assert_ne!(sent.hash, EMPTY_CONFIG_HASH);
    assert_eq!(sent.config.upstreams[0].name, PLACEHOLDER_UPSTREAM);
    assert!(class.state().is_for(&empty), "status compares with the decided config");
    // A config with entities is sent as decided.
    assert_eq!(loadable(&config(&["a"])), config(&["a"]));
}
