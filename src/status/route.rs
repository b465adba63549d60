//! Route status: `status.parents`, one entry per parentRef kongress owns.
//!
//! The spec namespaces `parents` entries by `parentRef` and `controllerName`: kongress writes
//! only entries with its own controller name. Merging the translator's verdict into the
//! current list:
//! - entries of other controllers keep their content and their place;
//! - our entry for a parentRef still in the spec is updated in place; conditions keep their
//!   `lastTransitionTime` unless their status flips, and carry the route's generation;
//! - parentRefs without an entry get one, appended in spec order;
//! - our entries for parentRefs no longer in the spec (or no longer naming a Gateway of the
//!   class) are removed;
//! - `PartiallyInvalid` is written only while True and removed otherwise (the spec allows it
//!   only as True);
//! - an entry whose conditions were written for a newer generation than the verdict's is left
//!   alone: the snapshot is stale and a later reconcile will bring the newer spec.
//!
//! The five route kinds have distinct generated status types with identical fields; they are
//! converted to [`RouteParentStatus`] and back field by field.

use gateway_api::experimental::tcproutes::{TcpRouteStatus, TcpRouteStatusParents, TcpRouteStatusParentsParentRef};
use gateway_api::experimental::udproutes::{UdpRouteStatus, UdpRouteStatusParents, UdpRouteStatusParentsParentRef};
use gateway_api::grpcroutes::{GrpcRouteStatus, GrpcRouteStatusParents, GrpcRouteStatusParentsParentRef};
use gateway_api::httproutes::{HttpRouteStatus, HttpRouteStatusParents, HttpRouteStatusParentsParentRef};
use gateway_api::tlsroutes::{TlsRouteStatus, TlsRouteStatusParents, TlsRouteStatusParentsParentRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::conditions::{DesiredCondition, merge_conditions};
use crate::api::CONTROLLER_NAME;
use crate::api::conditions::types;
use crate::translate::{ParentRef, ParentVerdict, RouteVerdict};

/// One `status.parents` entry, the same for every route kind.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteParentStatus {
    pub parent_ref: ParentRef,
    pub controller_name: String,
    pub conditions: Vec<Condition>,
}

/// The conditions kongress owns in its entries.
const OWNED: [&str; 3] = [types::ACCEPTED, types::RESOLVED_REFS, types::PARTIALLY_INVALID];

fn desired(parent: &ParentVerdict) -> Vec<DesiredCondition> {
    let mut conditions = vec![
        DesiredCondition::new(
            types::ACCEPTED,
            parent.accepted.ok,
            parent.accepted.reason,
            parent.accepted.message.clone(),
        ),
        DesiredCondition::new(
            types::RESOLVED_REFS,
            parent.resolved_refs.ok,
            parent.resolved_refs.reason,
            parent.resolved_refs.message.clone(),
        ),
    ];
    if let Some(message) = &parent.partially_invalid {
        conditions.push(DesiredCondition::new(
            types::PARTIALLY_INVALID,
            true,
            crate::api::conditions::reasons::UNSUPPORTED_VALUE,
            message.clone(),
        ));
    }
    conditions
}

/// Whether one of our conditions was written for a generation newer than `generation`.
fn written_for_newer(entry: &RouteParentStatus, generation: i64) -> bool {
    entry
        .conditions
        .iter()
        .filter(|c| OWNED.contains(&c.type_.as_str()))
        .any(|c| c.observed_generation.is_some_and(|g| g > generation))
}

fn entry_for(parent: &ParentVerdict, existing: &[Condition], generation: i64, now: &Time) -> RouteParentStatus {
    let mut conditions = merge_conditions(existing, &desired(parent), generation, now);
    if parent.partially_invalid.is_none() {
        conditions.retain(|c| c.type_ != types::PARTIALLY_INVALID);
    }
    RouteParentStatus {
        parent_ref: parent.parent_ref.clone(),
        controller_name: CONTROLLER_NAME.to_string(),
        conditions,
    }
}

/// The new `status.parents` from the translator's verdict (`None`: the route names no Gateway
/// of the class any more) and the current list. `owned` says which of kongress's entries this
/// class answers for (those naming its Gateways, or Gateways that no longer exist); entries of
/// kongress for other classes' Gateways are kept like other controllers' entries.
pub fn route_parents(
    verdict: Option<&RouteVerdict>,
    existing: &[RouteParentStatus],
    owned: &dyn Fn(&ParentRef) -> bool,
    now: &Time,
) -> Vec<RouteParentStatus> {
    let wanted: &[ParentVerdict] = verdict.map(|v| v.parents.as_slice()).unwrap_or_default();
    let generation = verdict.map(|v| v.generation).unwrap_or_default();
    let mut written = vec![false; wanted.len()];
    let mut parents = Vec::with_capacity(existing.len().max(wanted.len()));
    for entry in existing {
        if entry.controller_name != CONTROLLER_NAME || !owned(&entry.parent_ref) {
            parents.push(entry.clone());
            continue;
        }
        let index = wanted
            .iter()
            .enumerate()
            .position(|(i, p)| !written[i] && p.parent_ref == entry.parent_ref);
        // No verdict for it: a stale entry of ours, dropped.
        let Some(index) = index else {
            continue;
        };
        written[index] = true;
        if written_for_newer(entry, generation) {
            parents.push(entry.clone());
        } else {
            parents.push(entry_for(&wanted[index], &entry.conditions, generation, now));
        }
    }
    for (parent, done) in wanted.iter().zip(&written) {
        if !done {
            parents.push(entry_for(parent, &[], generation, now));
        }
    }
    parents
}

/// A route kind's generated status type.
pub trait RouteStatus: Sized {
    fn parents(&self) -> Vec<RouteParentStatus>;
    fn from_parents(parents: Vec<RouteParentStatus>) -> Self;
}

/// The route's new status from the verdict and its current status (any of the five kinds).
pub fn route_status<S: RouteStatus>(
    verdict: Option<&RouteVerdict>,
    existing: Option<&S>,
    owned: &dyn Fn(&ParentRef) -> bool,
    now: &Time,
) -> S {
    let current = existing.map(RouteStatus::parents).unwrap_or_default();
    S::from_parents(route_parents(verdict, &current, owned, now))
}

macro_rules! route_status_kind {
    ($status:ident, $parents:ident, $parent_ref:ident) => {
        impl RouteStatus for $status {
            fn parents(&self) -> Vec<RouteParentStatus> {
                self.parents
                    .iter()
                    .map(|p| RouteParentStatus {
                        parent_ref: ParentRef {
                            group: p.parent_ref.group.clone(),
                            kind: p.parent_ref.kind.clone(),
                            namespace: p.parent_ref.namespace.clone(),
                            name: p.parent_ref.name.clone(),
                            section_name: p.parent_ref.section_name.clone(),
                            port: p.parent_ref.port,
                        },
                        controller_name: p.controller_name.clone(),
                        conditions: p.conditions.clone(),
                    })
                    .collect()
            }

            fn from_parents(parents: Vec<RouteParentStatus>) -> Self {
                Self {
                    parents: parents
                        .into_iter()
                        .map(|p| $parents {
                            parent_ref: $parent_ref {
                                group: p.parent_ref.group,
                                kind: p.parent_ref.kind,
                                namespace: p.parent_ref.namespace,
                                name: p.parent_ref.name,
                                section_name: p.parent_ref.section_name,
                                port: p.parent_ref.port,
                            },
                            controller_name: p.controller_name,
                            conditions: p.conditions,
                        })
                        .collect(),
                }
            }
        }
    };
}

route_status_kind!(HttpRouteStatus, HttpRouteStatusParents, HttpRouteStatusParentsParentRef);
route_status_kind!(GrpcRouteStatus, GrpcRouteStatusParents, GrpcRouteStatusParentsParentRef);
route_status_kind!(TlsRouteStatus, TlsRouteStatusParents, TlsRouteStatusParentsParentRef);
route_status_kind!(TcpRouteStatus, TcpRouteStatusParents, TcpRouteStatusParentsParentRef);
route_status_kind!(UdpRouteStatus, UdpRouteStatusParents, UdpRouteStatusParentsParentRef);

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::api::conditions::reasons;
    use crate::plan::Verdict;

    /// Every entry of kongress belongs to the class under test.
    fn all(_: &ParentRef) -> bool {
        true
    }

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).expect("time"))
    }

    fn gateway(name: &str) -> ParentRef {
        ParentRef {
            name: name.to_string(),
            ..ParentRef::default()
        }
    }

    fn verdict(generation: i64, parents: &[(&str, bool, Option<&str>)]) -> RouteVerdict {
        RouteVerdict {
            generation,
            parents: parents
                .iter()
                .map(|(name, accepted, partially)| ParentVerdict {
                    parent_ref: gateway(name),
                    accepted: if *accepted {
                        Verdict::ok(reasons::ACCEPTED, "Route is accepted")
                    } else {
                        Verdict::fail(reasons::NO_MATCHING_PARENT, "no listener")
                    },
                    resolved_refs: Verdict::ok(reasons::RESOLVED_REFS, "ok"),
                    partially_invalid: partially.map(str::to_string),
                })
                .collect(),
        }
    }

    fn foreign(name: &str) -> RouteParentStatus {
        RouteParentStatus {
            parent_ref: gateway(name),
            controller_name: "example.com/other".to_string(),
            conditions: vec![Condition {
                type_: "Accepted".into(),
                status: "True".into(),
                reason: "Accepted".into(),
                message: "theirs".into(),
                observed_generation: Some(1),
                last_transition_time: at(1),
            }],
        }
    }

    fn names(parents: &[RouteParentStatus]) -> Vec<(&str, &str)> {
        parents
            .iter()
            .map(|p| (p.parent_ref.name.as_str(), p.controller_name.as_str()))
            .collect()
    }

    fn condition<'p>(parent: &'p RouteParentStatus, type_: &str) -> Option<&'p Condition> {
        parent.conditions.iter().find(|c| c.type_ == type_)
    }

    #[test]
    fn each_owned_parent_ref_gets_an_entry_with_accepted_and_resolved_refs() {
        let parents = route_parents(
            Some(&verdict(3, &[("a", true, None), ("b", false, None)])),
            &[],
            &all,
            &at(10),
        );
        assert_eq!(names(&parents), [("a", CONTROLLER_NAME), ("b", CONTROLLER_NAME)]);
        let accepted = condition(&parents[1], "Accepted").expect("Accepted");
        assert_eq!(
            (accepted.status.as_str(), accepted.reason.as_str()),
            ("False", "NoMatchingParent")
        );
        assert_eq!(accepted.observed_generation, Some(3));
        assert!(condition(&parents[0], "ResolvedRefs").is_some());
        assert!(condition(&parents[0], "PartiallyInvalid").is_none());
    }

    #[test]
    fn entries_of_other_controllers_are_kept_untouched_and_in_place() {
        let existing = vec![foreign("x"), foreign("a")];
        let parents = route_parents(Some(&verdict(1, &[("a", true, None)])), &existing, &all, &at(10));
        assert_eq!(
            names(&parents),
            [
                ("x", "example.com/other"),
                ("a", "example.com/other"),
                ("a", CONTROLLER_NAME)
            ]
        );
        assert_eq!(parents[0], existing[0]);
        assert_eq!(parents[1], existing[1]);
    }

    #[test]
    fn our_entries_for_parent_refs_gone_from_the_spec_are_removed() {
        let existing = route_parents(
            Some(&verdict(1, &[("a", true, None), ("b", true, None)])),
            &[foreign("x")],
            &all,
            &at(10),
        );
        let parents = route_parents(Some(&verdict(2, &[("b", true, None)])), &existing, &all, &at(20));
        assert_eq!(names(&parents), [("x", "example.com/other"), ("b", CONTROLLER_NAME)]);
        let none = route_parents(None, &existing, &all, &at(20));
        assert_eq!(names(&none), [("x", "example.com/other")]);
    }

    #[test]
    fn transition_time_moves_only_when_a_condition_flips() {
        let first = route_parents(Some(&verdict(1, &[("a", true, None)])), &[], &all, &at(10));
        let same = route_parents(Some(&verdict(2, &[("a", true, None)])), &first, &all, &at(20));
        let accepted = condition(&same[0], "Accepted").expect("Accepted");
        assert_eq!(accepted.last_transition_time, at(10));
        assert_eq!(accepted.observed_generation, Some(2));
        let flipped = route_parents(Some(&verdict(3, &[("a", false, None)])), &same, &all, &at(30));
        assert_eq!(
            condition(&flipped[0], "Accepted")
                .expect("Accepted")
                .last_transition_time,
            at(30)
        );
    }

    #[test]
    fn partially_invalid_is_written_while_true_and_removed_after() {
        let with = route_parents(
            Some(&verdict(1, &[("a", true, Some("Dropped Rule 1: x"))])),
            &[],
            &all,
            &at(10),
        );
        let partially = condition(&with[0], "PartiallyInvalid").expect("PartiallyInvalid");
        assert_eq!(partially.status, "True");
        assert_eq!(partially.message, "Dropped Rule 1: x");
        let without = route_parents(Some(&verdict(2, &[("a", true, None)])), &with, &all, &at(20));
        assert!(condition(&without[0], "PartiallyInvalid").is_none());
    }

    #[test]
    fn conditions_written_for_a_newer_generation_are_not_overwritten() {
        let newer = route_parents(Some(&verdict(5, &[("a", true, None)])), &[], &all, &at(10));
        let stale = route_parents(Some(&verdict(4, &[("a", false, None)])), &newer, &all, &at(20));
        assert_eq!(stale, newer);
    }

    #[test]
    fn conditions_of_other_types_in_our_entry_are_kept() {
        let mut existing = route_parents(Some(&verdict(1, &[("a", true, None)])), &[], &all, &at(10));
        existing[0].conditions.insert(
            0,
            Condition {
                type_: "example.com/Extra".into(),
                status: "True".into(),
                reason: "Extra".into(),
                message: String::new(),
                observed_generation: Some(1),
                last_transition_time: at(1),
            },
        );
        let parents = route_parents(Some(&verdict(2, &[("a", true, None)])), &existing, &all, &at(20));
        assert_eq!(parents[0].conditions[0].type_, "example.com/Extra");
    }

    #[test]
    fn every_route_kind_round_trips_through_the_common_entry() {
        let parents = route_parents(Some(&verdict(1, &[("a", true, None)])), &[foreign("x")], &all, &at(10));
        let check = |back: Vec<RouteParentStatus>| assert_eq!(back, parents);
        check(HttpRouteStatus::from_parents(parents.clone()).parents());
        check(GrpcRouteStatus::from_parents(parents.clone()).parents());
        check(TlsRouteStatus::from_parents(parents.clone()).parents());
        check(TcpRouteStatus::from_parents(parents.clone()).parents());
        check(UdpRouteStatus::from_parents(parents.clone()).parents());
    }

    #[test]
    fn route_status_merges_into_the_typed_status() {
        let existing = TcpRouteStatus::from_parents(vec![foreign("x")]);
        let status: TcpRouteStatus =
            route_status(Some(&verdict(1, &[("a", true, None)])), Some(&existing), &all, &at(10));
        assert_eq!(status.parents.len(), 2);
        assert_eq!(status.parents[1].controller_name, CONTROLLER_NAME);
        assert_eq!(status.parents[1].parent_ref.name, "a");
    }

    #[test]
    fn our_entries_for_gateways_of_another_class_are_left_to_that_class() {
        let other_class = route_parents(Some(&verdict(1, &[("b", true, None)])), &[], &all, &at(10));
        let only_a = |parent: &ParentRef| parent.name == "a";
        let parents = route_parents(Some(&verdict(2, &[("a", true, None)])), &other_class, &only_a, &at(20));
        assert_eq!(names(&parents), [("b", CONTROLLER_NAME), ("a", CONTROLLER_NAME)]);
        assert_eq!(parents[0], other_class[0], "the other class's entry is untouched");
    }
}
