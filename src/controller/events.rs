//! The Events of condition changes (`events.k8s.io/v1`), each naming the trace of the
//! reconcile that made the change.
//!
//! kube's `Recorder` folds an Event into the previous one with the same reason on the same
//! object for six minutes and keeps the previous note: two listeners turning to the same
//! reason showed one note, and a repeated change would name the trace of the first
//! reconcile instead of the latest. This recorder folds only Events whose notes are the
//! same apart from the trace id, and the folded Event takes the new note (and its trace).

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use tracing::Instrument;

use crate::telemetry::{self, spans};

/// How long an Event stays the one a repeat of it is folded into (kube's choice too).
const FOLD_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// One condition change of one object.
pub struct Change<'a> {
    pub warning: bool,
    pub reason: &'a str,
    pub note: &'a str,
}

/// Which earlier Event a change folds into: same object, type, reason and note.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct FoldKey {
    regarding: (Option<String>, Option<String>, Option<String>, Option<String>),
    warning: bool,
    reason: String,
    note: String,
}

impl FoldKey {
    /// The note without a trace id: repeats of a change in other reconciles fold together.
    fn of(regarding: &ObjectReference, change: &Change<'_>) -> Self {
        Self {
            regarding: (
                regarding.kind.clone(),
                regarding.namespace.clone(),
                regarding.name.clone(),
                regarding.uid.clone(),
            ),
            warning: change.warning,
            reason: change.reason.to_string(),
            note: change.note.to_string(),
        }
    }
}

/// The Events recorded within the fold window, by what folds into them.
#[derive(Debug, Default)]
struct Folds(HashMap<FoldKey, Recent>);

impl Folds {
    /// The Event `key` folds into, if one was recorded within the window; forgets older ones.
    fn earlier(&mut self, key: &FoldKey, now: Timestamp) -> Option<Recent> {
        self.0.retain(|_, event| event.last + FOLD_WINDOW > now);
        self.0.get(key).cloned()
    }

    fn remember(&mut self, key: FoldKey, event: Recent) {
        self.0.insert(key, event);
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Recent {
    name: String,
    namespace: String,
    count: i32,
    last: Timestamp,
}

/// Records Events as `controller` (instance `instance`).
pub struct EventRecorder {
    client: Client,
    controller: String,
    instance: String,
    recent: Mutex<Folds>,
}

impl EventRecorder {
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            recent: Mutex::default(),
        }
    }

    /// Records `change` of `regarding`; its note names the trace `trace_id` when given.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        change: &Change<'_>,
        trace_id: Option<&str>,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = FoldKey::of(regarding, change);
        let earlier = self.recent.lock().ok().and_then(|mut folds| folds.earlier(&key, now));
        let note = telemetry::event_note(change.note, trace_id);
        let namespace = regarding.namespace.clone().unwrap_or_else(|| "default".into());
        let events: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Some(earlier) = earlier {
            let count = earlier.count.saturating_add(1);
            let body = json!({
                "note": note,
                "series": EventSeries { count, last_observed_time: MicroTime(now) },
            });
            let span = self.span("patch", &earlier.name, &earlier.namespace, regarding, change);
            let result = events
                .patch(&earlier.name, &PatchParams::default(), &Patch::Merge(&body))
                .instrument(span.clone())
                .await;
            spans::record_write(&span, &result);
            match result {
                Ok(_) => {
                    self.remember(
                        key,
                        Recent {
                            count,
                            last: now,
                            ..earlier
                        },
                    );
                    return Ok(());
                }
                // Gone (expired or deleted): a new Event instead.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(error),
            }
        }
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or(&self.controller),
            now.as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some("Reconcile".into()),
            reason: Some(change.reason.to_string()),
            note: Some(note),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(if change.warning { "Warning" } else { "Normal" }.into()),
            ..Event::default()
        };
        let span = self.span("create", &name, &namespace, regarding, change);
        let result = events
            .create(&PostParams::default(), &event)
            .instrument(span.clone())
            .await;
        spans::record_write(&span, &result);
        result?;
        self.remember(
            key,
            Recent {
                name,
                namespace,
                count: 1,
                last: now,
            },
        );
        Ok(())
    }

    fn remember(&self, key: FoldKey, event: Recent) {
        if let Ok(mut folds) = self.recent.lock() {
            folds.remember(key, event);
        }
    }

    fn span(
        &self,
        verb: &'static str,
        name: &str,
        namespace: &str,
        regarding: &ObjectReference,
        change: &Change<'_>,
    ) -> tracing::Span {
        let meta = ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..ObjectMeta::default()
        };
        spans::event_write(verb, &meta, regarding, change.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(uid: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("Gateway".into()),
            namespace: Some("apps".into()),
            name: Some("gw".into()),
            uid: Some(uid.into()),
            ..ObjectReference::default()
        }
    }

    fn change(reason: &'static str, note: &'static str) -> Change<'static> {
        Change {
            warning: false,
            reason,
            note,
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).expect("time")
    }

    fn recorded(second: i64) -> Recent {
        Recent {
            name: "gw.1".into(),
            namespace: "apps".into(),
            count: 1,
            last: at(second),
        }
    }

    #[test]
    fn the_same_change_again_folds_into_the_earlier_event_whatever_its_trace() {
        let mut folds = Folds::default();
        let key = FoldKey::of(&gateway("u1"), &change("Programmed", "Programmed=True: ready"));
        assert_eq!(folds.earlier(&key, at(0)), None);
        folds.remember(key.clone(), recorded(0));
        // The trace id is not part of the key: the note passed here never carries it.
        let again = FoldKey::of(&gateway("u1"), &change("Programmed", "Programmed=True: ready"));
        assert_eq!(folds.earlier(&again, at(60)), Some(recorded(0)));
    }

    #[test]
    fn changes_with_the_same_reason_but_other_notes_or_objects_are_events_of_their_own() {
        let mut folds = Folds::default();
        let key = FoldKey::of(&gateway("u1"), &change("Accepted", "Accepted=True: all listeners"));
        folds.remember(key, recorded(0));
        let listener = FoldKey::of(&gateway("u1"), &change("Accepted", "listener http: Accepted=True"));
        assert_eq!(folds.earlier(&listener, at(1)), None);
        let recreated = FoldKey::of(&gateway("u2"), &change("Accepted", "Accepted=True: all listeners"));
        assert_eq!(folds.earlier(&recreated, at(1)), None);
    }

    #[test]
    fn an_event_older_than_the_fold_window_is_not_folded_into() {
        let mut folds = Folds::default();
        let key = FoldKey::of(&gateway("u1"), &change("Pending", "Programmed=False: waiting"));
        folds.remember(key.clone(), recorded(0));
        let window = FOLD_WINDOW.as_secs();
        assert!(folds.earlier(&key, at(window - 1)).is_some());
        assert_eq!(folds.earlier(&key, at(window)), None);
        assert!(folds.0.is_empty(), "forgotten");
    }
}
