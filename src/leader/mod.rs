//! Leadership: which kongress replica may write to the API server and push to Kong.
//!
//! With `--leader-elect`, replicas compete for a `coordination.k8s.io/v1` Lease
//! ([`election`]); the holder leads, the others stand by with warm caches. The decisions are
//! a pure function ([`decision`]); writes go through a client that refuses them while this
//! process does not lead ([`gate`]).

pub mod decision;
pub mod election;
pub mod gate;
pub mod lease;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use decision::Timing;
pub use election::{Election, ElectionSettings};
pub use gate::{GATE_LOG_TARGET, NotLeader, WritesInFlight, gated_client, is_not_leader};

/// Name of the Lease in the operator's namespace.
pub const LEASE_NAME: &str = "kongress";

/// Whether this process is the leader now. Cheap to clone; every clone sees the same state.
#[derive(Clone, Debug)]
pub struct Leadership {
    state: Arc<watch::Sender<bool>>,
    /// Whether an election runs, and when it last heard from the API server about the Lease.
    election: Option<Arc<Mutex<Option<Instant>>>>,
}

impl Leadership {
    /// A process that always leads: one replica, tests and offline tools.
    pub fn always() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(true)),
            election: None,
        }
    }

    /// A process that starts as a standby until an election makes it leader.
    pub fn standby() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(false)),
            election: Some(Arc::default()),
        }
    }

    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    /// Changes of leadership, for tasks that start or stop with it.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.state.subscribe()
    }

    /// Sets the state; only the election loop calls this.
    pub fn set_leader(&self, leader: bool) {
        self.state.send_if_modified(|current| {
            let changed = *current != leader;
            *current = leader;
            changed
        });
    }

    /// Notes that the election just read or wrote the Lease successfully.
    pub fn record_contact(&self, at: Instant) {
        if let Some(contact) = &self.election
            && let Ok(mut last) = contact.lock()
        {
            *last = Some(at);
        }
    }

    /// Whether this process takes part in the election properly: it leads, or it runs no
    /// election, or it heard about the Lease within `window` (a standby that cannot reach
    /// the API server could not take over, so it is not a ready standby).
    pub fn in_good_standing(&self, now: Instant, window: Duration) -> bool {
        let Some(contact) = &self.election else {
            return true;
        };
        if self.is_leader() {
            return true;
        }
        contact
            .lock()
            .ok()
            .and_then(|last| *last)
            .is_some_and(|at| now.saturating_duration_since(at) < window)
    }
}

/// This process's name in the election: `POD_NAME` when set, else hostname and process id
/// (two processes on one machine must differ).
pub fn identity(pod_name: Option<&str>) -> String {
    if let Some(name) = pod_name.filter(|n| !n.is_empty()) {
        return name.to_string();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "kongress".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_name_is_the_identity_and_otherwise_host_and_pid() {
        assert_eq!(identity(Some("kongress-7d9f-abc")), "kongress-7d9f-abc");
        let fallback = identity(None);
        assert!(fallback.ends_with(&format!("-{}", std::process::id())), "{fallback}");
        assert_eq!(identity(Some("")), fallback, "an empty POD_NAME is no name");
    }

    #[test]
    fn a_standby_is_in_good_standing_only_while_it_hears_about_the_lease() {
        let t0 = Instant::now();
        let window = Duration::from_secs(15);
        let standby = Leadership::standby();
        assert!(!standby.in_good_standing(t0, window), "never heard of the Lease");
        standby.record_contact(t0);
        assert!(standby.in_good_standing(t0 + Duration::from_secs(14), window));
        assert!(!standby.in_good_standing(t0 + Duration::from_secs(15), window));
        standby.set_leader(true);
        assert!(standby.in_good_standing(t0 + Duration::from_secs(60), window));
        assert!(Leadership::always().in_good_standing(t0, window));
    }

    #[test]
    fn every_clone_sees_a_change_of_leadership() {
        let leadership = Leadership::standby();
        let clone = leadership.clone();
        let changes = clone.watch();
        leadership.set_leader(true);
        assert!(clone.is_leader());
        assert!(changes.has_changed().unwrap_or(false));
    }
}
