//! The route side of a decision: Kong's rejections mapped onto route verdicts, whether the
//! pods run the current config, and every route's new `status`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;

use super::{ClassSnapshot, RouteStatusWrite};
use crate::api::conditions::reasons;
use crate::api::{GATEWAY_API_GROUP, ObjectKey};
use crate::kong::PushState;
use crate::plan::Verdict;
use crate::status::{ConfigState, RouteStatus, StatusEvent, changed_conditions, route_status};
use crate::translate::routes::RouteObject;
use crate::translate::{ParentRef, RouteView, Translation};

/// A route whose Kong entities Kong rejected is not accepted, with Kong's own words; the
/// push already serves the config without it (the fallback), so this is the whole truth.
pub(super) fn report_rejections(translation: &mut Translation, push: &PushState) {
    if push.rejected.is_empty() {
        return;
    }
    // Copies the verdicts the translator shares, once, only when Kong rejected something.
    for (route, verdict) in std::sync::Arc::make_mut(&mut translation.routes).iter_mut() {
        let Some(messages) = push.rejection_of(GATEWAY_API_GROUP, route.kind.as_str(), &route.key) else {
            continue;
        };
        let message = format!(
            "Kong rejected the configuration made from this route, so it is left out: {}",
            messages.join("; ")
        );
        for parent in verdict.parents.iter_mut().filter(|p| p.accepted.ok) {
            parent.accepted = Verdict::fail(reasons::UNSUPPORTED_VALUE, message.clone());
            parent.partially_invalid = None;
        }
    }
}

/// Whether every ready Kong pod runs the config just decided. Until the push has news on
/// it (pods read, pushed or failing), the state is unknown and Gateways keep their
/// `Programmed` condition.
pub(super) fn config_state(push: Option<&PushState>, translation: &Translation) -> ConfigState {
    let Some(push) = push.filter(|p| p.is_for(&translation.config)) else {
        return ConfigState::Unknown;
    };
    if let Some(error) = &push.config_error {
        return ConfigState::Rejected(format!("Kong rejected the configuration: {error}"));
    }
    if !push.ready_pods_in_sync() {
        let ready: Vec<_> = push.pods.iter().filter(|p| p.ready).collect();
        let failing: Vec<String> = ready
            .iter()
            .filter_map(|p| p.last_error.as_ref().map(|e| format!("{}: {e}", p.pod)))
            .collect();
        // Pods still being read or pushed to without a failure: no news yet, and no reason
        // to flap the status of a Gateway Kong serves on every change.
        if failing.is_empty() {
            return ConfigState::Unknown;
        }
        let in_sync = ready
            .iter()
            .filter(|p| push.target_hash.is_some() && p.running_hash == push.target_hash)
            .count();
        return ConfigState::Pending(format!(
            "{in_sync} of {} ready Kong pods run the current configuration; {}",
            ready.len(),
            failing.join("; ")
        ));
    }
    ConfigState::Applied
}

/// The new status of every route the snapshot holds: routes of the class get their verdict;
/// kongress entries of this class on routes that no longer name its Gateways are removed.
pub(super) fn route_statuses(snapshot: &ClassSnapshot<'_>, translation: &Translation) -> Vec<RouteStatusWrite> {
    let class_name = snapshot.class.name_any();
    let mut writes = Vec::new();
    for view in snapshot.routes.views() {
        let namespace = view.namespace().to_string();
        // Entries for Gateways of this class, or for Gateways that no longer exist.
        let owned = |parent: &ParentRef| {
            parent.is_gateway()
                && (snapshot.gateway_class_of)(&parent.gateway_key(&namespace)).is_none_or(|c| c == class_name)
        };
        let verdict = translation.routes.get(&view.route);
        let now = &snapshot.now;
        let write = match &view.object {
            RouteObject::Http(r) => status_write(&view, r.status.as_ref(), |s| route_status(verdict, s, &owned, now)),
            RouteObject::Grpc(r) => status_write(&view, r.status.as_ref(), |s| route_status(verdict, s, &owned, now)),
            RouteObject::Tls(r) => status_write(&view, r.status.as_ref(), |s| route_status(verdict, s, &owned, now)),
            RouteObject::Tcp(r) => status_write(&view, r.status.as_ref(), |s| route_status(verdict, s, &owned, now)),
            RouteObject::Udp(r) => status_write(&view, r.status.as_ref(), |s| route_status(verdict, s, &owned, now)),
        };
        writes.extend(write);
    }
    writes
}

fn status_write<S>(
    view: &RouteView,
    existing: Option<&S>,
    build: impl FnOnce(Option<&S>) -> S,
) -> Option<RouteStatusWrite>
where
    S: RouteStatus + serde::Serialize + PartialEq,
{
    let desired = build(existing);
    let changed = existing != Some(&desired);
    // A route that never carried a status and gets none from us needs no write.
    if existing.is_none() && desired.parents().is_empty() {
        return None;
    }
    let status = serde_json::to_value(&desired).ok()?;
    let events = route_events(
        existing.map(RouteStatus::parents).unwrap_or_default(),
        desired.parents(),
    );
    Some(RouteStatusWrite {
        route: view.clone(),
        status,
        changed,
        events,
    })
}

/// Events for the changes of kongress's route conditions: a condition that turned bad is a
/// Warning, one that turned good is Normal.
fn route_events(
    before: Vec<crate::status::RouteParentStatus>,
    after: Vec<crate::status::RouteParentStatus>,
) -> Vec<StatusEvent> {
    let mut events = Vec::new();
    for parent in after
        .iter()
        .filter(|p| p.controller_name == crate::api::CONTROLLER_NAME)
    {
        let previous: &[Condition] = before
            .iter()
            .find(|b| b.controller_name == parent.controller_name && b.parent_ref == parent.parent_ref)
            .map(|b| b.conditions.as_slice())
            .unwrap_or_default();
        let gateway = ObjectKey::new(
            parent.parent_ref.namespace.clone().unwrap_or_default(),
            parent.parent_ref.name.clone(),
        );
        for change in changed_conditions(previous, &parent.conditions) {
            // PartiallyInvalid is only ever True, and always news worth a Warning.
            let healthy = change.status == "True" && change.type_ != crate::api::conditions::types::PARTIALLY_INVALID;
            let existed = previous.iter().any(|c| c.type_ == change.type_);
            if existed || !healthy {
                events.push(StatusEvent {
                    warning: !healthy,
                    reason: change.reason,
                    note: format!(
                        "Gateway {}: {}={}: {}",
                        if gateway.namespace.is_empty() {
                            gateway.name.clone()
                        } else {
                            gateway.to_string()
                        },
                        change.type_,
                        change.status,
                        change.message
                    ),
                });
            }
        }
    }
    events
}
