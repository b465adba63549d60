//! Merging freshly computed conditions into the ones already in status.

use gateway_api::gateways::GatewayStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// A condition kongress wants, before time and generation are stamped on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCondition {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

impl DesiredCondition {
    pub fn new(type_: &'static str, status: bool, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }
}

fn status_str(status: bool) -> &'static str {
    if status { "True" } else { "False" }
}

/// Writes `desired` over `existing`: conditions of other types (other controllers')
/// keep their place and content; ours are updated in place or appended.
/// `lastTransitionTime` moves only when a condition's status flips.
pub fn merge_conditions(
    existing: &[Condition],
    desired: &[DesiredCondition],
    generation: i64,
    now: &Time,
) -> Vec<Condition> {
    let mut merged: Vec<Condition> = existing.to_vec();
    for want in desired {
        let status = status_str(want.status).to_string();
        match merged.iter_mut().find(|c| c.type_ == want.type_) {
            Some(current) => {
                if current.status != status {
                    current.last_transition_time = now.clone();
                }
                current.status = status;
                current.reason = want.reason.to_string();
                current.message = want.message.clone();
                current.observed_generation = Some(generation);
            }
            None => merged.push(Condition {
                type_: want.type_.to_string(),
                status,
                reason: want.reason.to_string(),
                message: want.message.clone(),
                observed_generation: Some(generation),
                last_transition_time: now.clone(),
            }),
        }
    }
    merged
}

/// A condition that changed between two statuses, for an Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionChange {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// Conditions of `after` whose status or reason differ from `before` (new ones included).
pub fn changed_conditions(before: &[Condition], after: &[Condition]) -> Vec<ConditionChange> {
    after
        .iter()
        .filter(|new| {
            !before
                .iter()
                .any(|old| old.type_ == new.type_ && old.status == new.status && old.reason == new.reason)
        })
        .map(|c| ConditionChange {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
        })
        .collect()
}

/// An Event to publish about a status change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusEvent {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// Whether a condition's status is the good one (`Conflicted` is good when False).
fn healthy(type_: &str, status: &str) -> bool {
    use crate::api::conditions::types;
    match type_ {
        types::CONFLICTED => status != "True",
        // A shared listener is how the design serves the most common setup: worth a
        // Normal Event, never a Warning.
        types::LISTENERS_ISOLATED => true,
        _ => status == "True",
    }
}

/// Events for a Gateway status change: every changed Gateway condition, and listener
/// conditions that turned bad or changed from an earlier value. A new listener that
/// is fine from the start adds no noise.
pub fn gateway_status_events(before: Option<&GatewayStatus>, after: &GatewayStatus) -> Vec<StatusEvent> {
    let before_conditions = before.and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let after_conditions = after.conditions.as_deref().unwrap_or_default();
    let event = |scope: &str, change: ConditionChange| StatusEvent {
        warning: !healthy(&change.type_, &change.status),
        note: format!("{scope}{}={}: {}", change.type_, change.status, change.message),
        reason: change.reason,
    };
    let mut events: Vec<StatusEvent> = changed_conditions(before_conditions, after_conditions)
        .into_iter()
        .map(|c| event("", c))
        .collect();
    for listener in after.listeners.iter().flatten() {
        let previous = before
            .and_then(|s| s.listeners.as_ref())
            .and_then(|ls| ls.iter().find(|l| l.name == listener.name))
            .map(|l| l.conditions.as_slice())
            .unwrap_or_default();
        for change in changed_conditions(previous, &listener.conditions) {
            let existed = previous.iter().any(|c| c.type_ == change.type_);
            if existed || !healthy(&change.type_, &change.status) {
                events.push(event(&format!("listener {}: ", listener.name), change));
            }
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_api::gateways::GatewayStatusListeners;
    use k8s_openapi::jiff::Timestamp;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).expect("time"))
    }

    fn condition(type_: &str, status: &str, reason: &str, time: i64) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: at(time),
        }
    }

    #[test]
    fn last_transition_time_moves_only_when_status_flips() {
        let existing = vec![condition("Accepted", "True", "Accepted", 100)];
        let same = merge_conditions(
            &existing,
            &[DesiredCondition::new("Accepted", true, "Accepted", "m")],
            2,
            &at(200),
        );
        assert_eq!(same[0].last_transition_time, at(100));
        assert_eq!(same[0].observed_generation, Some(2));
        let flipped = merge_conditions(
            &existing,
            &[DesiredCondition::new("Accepted", false, "Invalid", "m")],
            2,
            &at(200),
        );
        assert_eq!(flipped[0].last_transition_time, at(200));
    }

    #[test]
    fn reason_change_without_status_flip_keeps_transition_time() {
        let existing = vec![condition("Accepted", "True", "Accepted", 100)];
        let merged = merge_conditions(
            &existing,
            &[DesiredCondition::new("Accepted", true, "ListenersNotValid", "m")],
            1,
            &at(200),
        );
        assert_eq!(merged[0].reason, "ListenersNotValid");
        assert_eq!(merged[0].last_transition_time, at(100));
    }

    #[test]
    fn conditions_owned_by_others_keep_their_place_and_content() {
        let existing = vec![
            condition("example.com/Healthy", "True", "Fine", 50),
            condition("Accepted", "True", "Accepted", 100),
        ];
        let merged = merge_conditions(
            &existing,
            &[
                DesiredCondition::new("Accepted", true, "Accepted", "m"),
                DesiredCondition::new("Programmed", false, "Pending", "m"),
            ],
            1,
            &at(200),
        );
        let types: Vec<&str> = merged.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["example.com/Healthy", "Accepted", "Programmed"]);
        assert_eq!(merged[0], existing[0]);
    }

    #[test]
    fn changed_conditions_report_flips_and_new_types_only() {
        let before = vec![condition("Accepted", "True", "Accepted", 1)];
        let after = vec![
            condition("Accepted", "True", "Accepted", 1),
            condition("Programmed", "False", "Pending", 1),
        ];
        let changes = changed_conditions(&before, &after);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].type_, "Programmed");
    }

    fn listener(name: &str, conditions: Vec<Condition>) -> GatewayStatusListeners {
        GatewayStatusListeners {
            name: name.into(),
            conditions,
            ..Default::default()
        }
    }

    #[test]
    fn a_new_healthy_listener_publishes_no_event_but_a_broken_one_warns() {
        let after = GatewayStatus {
            conditions: Some(vec![condition("Accepted", "True", "Accepted", 1)]),
            listeners: Some(vec![
                listener("ok", vec![condition("Accepted", "True", "Accepted", 1)]),
                listener("bad", vec![condition("Accepted", "False", "UnsupportedProtocol", 1)]),
            ]),
            ..Default::default()
        };
        let events = gateway_status_events(None, &after);
        let notes: Vec<(&str, bool)> = events.iter().map(|e| (e.reason.as_str(), e.warning)).collect();
        assert_eq!(notes, [("Accepted", false), ("UnsupportedProtocol", true)]);
        assert!(events[1].note.starts_with("listener bad: Accepted=False"));
    }

    #[test]
    fn a_listener_recovering_publishes_a_normal_event() {
        let before = GatewayStatus {
            listeners: Some(vec![listener(
                "l",
                vec![condition("Conflicted", "True", "HostnameConflict", 1)],
            )]),
            ..Default::default()
        };
        let after = GatewayStatus {
            listeners: Some(vec![listener(
                "l",
                vec![condition("Conflicted", "False", "NoConflicts", 2)],
            )]),
            ..Default::default()
        };
        let events = gateway_status_events(Some(&before), &after);
        assert_eq!(events.len(), 1);
        assert!(!events[0].warning);
    }

    #[test]
    fn a_gateway_starting_to_share_a_listener_publishes_a_normal_event() {
        let before = GatewayStatus {
            conditions: Some(vec![condition("kongress.dev/ListenersIsolated", "True", "Isolated", 1)]),
            ..Default::default()
        };
        let after = GatewayStatus {
            conditions: Some(vec![condition(
                "kongress.dev/ListenersIsolated",
                "False",
                "SharedListeners",
                2,
            )]),
            ..Default::default()
        };
        let events = gateway_status_events(Some(&before), &after);
        assert_eq!(events.len(), 1);
        assert!(!events[0].warning);
    }

    #[test]
    fn an_unchanged_status_publishes_nothing() {
        let status = GatewayStatus {
            conditions: Some(vec![condition("Programmed", "False", "Pending", 1)]),
            ..Default::default()
        };
        assert!(gateway_status_events(Some(&status), &status).is_empty());
    }
}
