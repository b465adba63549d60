//! The Lease requests of the election. Every write replaces the whole Lease with the
//! `resourceVersion` it was decided on (an update, not a patch), so the API server refuses
//! it with 409 Conflict when anyone wrote the Lease in between: of two candidates that saw
//! the same expired Lease, exactly one takes it.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;

use super::decision::LeaseRecord;

/// What the election reads from a Lease.
pub fn record_of(lease: &Lease) -> LeaseRecord {
    let spec = lease.spec.as_ref();
    LeaseRecord {
        holder: spec.and_then(|s| s.holder_identity.clone()),
        lease_duration: spec
            .and_then(|s| s.lease_duration_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs),
        resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
        transitions: spec.and_then(|s| s.lease_transitions).unwrap_or(0),
    }
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}

/// A new Lease naming `identity`.
pub fn created(name: &str, namespace: &str, identity: &str, duration: Duration, now: Timestamp) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(identity.into()),
            lease_duration_seconds: Some(seconds(duration)),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        }),
    }
}

/// `current` taken over by `identity`. The `resourceVersion` of `current` stays: it is the guard.
pub fn acquired(current: &Lease, identity: &str, duration: Duration, transition: bool, now: Timestamp) -> Lease {
    let mut lease = current.clone();
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let transitions = spec.lease_transitions.unwrap_or(0);
    spec.holder_identity = Some(identity.into());
    spec.lease_duration_seconds = Some(seconds(duration));
    spec.acquire_time = Some(MicroTime(now));
    spec.renew_time = Some(MicroTime(now));
    spec.lease_transitions = Some(if transition {
        transitions.saturating_add(1)
    } else {
        transitions
    });
    lease
}

/// `current` renewed by its holder.
pub fn renewed(current: &Lease, duration: Duration, now: Timestamp) -> Lease {
    let mut lease = current.clone();
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.lease_duration_seconds = Some(seconds(duration));
    spec.renew_time = Some(MicroTime(now));
    lease
}

/// `current` released: no holder, and a one-second duration for clients that judge by
/// `renewTime` alone (client-go does the same), so any candidate takes it at once.
pub fn released(current: &Lease, now: Timestamp) -> Lease {
    let mut lease = current.clone();
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime(now));
    lease
}

/// The Lease of one election, in one namespace.
#[derive(Clone)]
pub struct LeaseApi {
    pub api: Api<Lease>,
    pub name: String,
    pub namespace: String,
}

impl LeaseApi {
    pub async fn read(&self) -> Result<Option<Lease>, kube::Error> {
        self.api.get_opt(&self.name).await
    }

    pub async fn create(&self, lease: &Lease) -> Result<Lease, kube::Error> {
        self.api.create(&PostParams::default(), lease).await
    }

    /// Replaces the Lease; refused with 409 when its `resourceVersion` is no longer current.
    pub async fn replace(&self, lease: &Lease) -> Result<Lease, kube::Error> {
        self.api.replace(&self.name, &PostParams::default(), lease).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn held_by(holder: &str) -> Lease {
        let mut lease = created("kongress", "kongress-system", holder, Duration::from_secs(15), now());
        lease.metadata.resource_version = Some("42".into());
        if let Some(spec) = lease.spec.as_mut() {
            spec.lease_transitions = Some(3);
        }
        lease
    }

    #[test]
    fn a_created_lease_names_its_holder_and_duration() {
        let lease = created("kongress", "kongress-system", "a", Duration::from_secs(15), now());
        let record = record_of(&lease);
        assert_eq!(record.holder.as_deref(), Some("a"));
        assert_eq!(record.lease_duration, Some(Duration::from_secs(15)));
        assert_eq!(lease.metadata.namespace.as_deref(), Some("kongress-system"));
        assert_eq!(record.transitions, 0);
    }

    #[test]
    fn a_takeover_keeps_the_version_as_guard_and_counts_a_transition() {
        let lease = acquired(&held_by("a"), "b", Duration::from_secs(15), true, now());
        assert_eq!(lease.metadata.resource_version.as_deref(), Some("42"));
        let record = record_of(&lease);
        assert_eq!(record.holder.as_deref(), Some("b"));
        assert_eq!(record.transitions, 4);
        let back = acquired(&held_by("b"), "b", Duration::from_secs(15), false, now());
        assert_eq!(
            record_of(&back).transitions,
            3,
            "taking back one's own Lease is no transition"
        );
    }

    #[test]
    fn a_renewal_moves_only_renew_time_and_duration() {
        let before = held_by("a");
        let later = Timestamp::from_second(1_800_000_005).unwrap_or(Timestamp::UNIX_EPOCH);
        let lease = renewed(&before, Duration::from_secs(20), later);
        let spec = lease.spec.as_ref().expect("spec");
        assert_eq!(spec.renew_time, Some(MicroTime(later)));
        assert_eq!(
            spec.acquire_time,
            before.spec.as_ref().and_then(|s| s.acquire_time.clone())
        );
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_duration_seconds, Some(20));
        assert_eq!(lease.metadata.resource_version.as_deref(), Some("42"));
    }

    #[test]
    fn a_released_lease_has_no_holder() {
        let lease = released(&held_by("a"), now());
        let record = record_of(&lease);
        assert_eq!(record.holder, None);
        assert_eq!(record.lease_duration, Some(Duration::from_secs(1)));
        assert_eq!(lease.metadata.resource_version.as_deref(), Some("42"));
    }
}
