//! `/healthz` and `/readyz`.
//!
//! Alive means the process answers at all (the HTTP server runs on the same runtime as the
//! controller). Ready means every watch cache holds its first full list, and the process
//! leads, or stands by in good standing: it heard about the Lease within one lease duration,
//! so it could take over. A standby that cannot reach the API server is not ready.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::leader::Leadership;

/// Why the process is (not) ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    Leader,
    Standby,
    CachesNotSynced,
    LeaseUnreachable,
}

impl Readiness {
    pub fn is_ready(self) -> bool {
        matches!(self, Readiness::Leader | Readiness::Standby)
    }

    /// The body of the `/readyz` answer.
    pub fn message(self) -> &'static str {
        match self {
            Readiness::Leader => "ready: leader\n",
            Readiness::Standby => "ready: standby\n",
            Readiness::CachesNotSynced => "not ready: the watch caches have not synced yet\n",
            Readiness::LeaseUnreachable => "not ready: standby has not reached the leader election Lease recently\n",
        }
    }
}

/// The readiness rule.
pub fn readiness(caches_synced: bool, leader: bool, in_good_standing: bool) -> Readiness {
    match (caches_synced, leader, in_good_standing) {
        (false, _, _) => Readiness::CachesNotSynced,
        (true, true, _) => Readiness::Leader,
        (true, false, true) => Readiness::Standby,
        (true, false, false) => Readiness::LeaseUnreachable,
    }
}

/// The state `/readyz` reads.
#[derive(Debug)]
pub struct Health {
    caches_synced: AtomicBool,
    leadership: Leadership,
    /// How recent the standby's last word about the Lease must be (the lease duration).
    contact_window: Duration,
}

impl Health {
    pub fn new(leadership: Leadership, contact_window: Duration) -> Self {
        Self {
            caches_synced: AtomicBool::new(false),
            leadership,
            contact_window,
        }
    }

    pub fn set_caches_synced(&self) {
        self.caches_synced.store(true, Ordering::SeqCst);
    }

    pub fn caches_synced(&self) -> bool {
        self.caches_synced.load(Ordering::SeqCst)
    }

    pub fn readiness(&self) -> Readiness {
        readiness(
            self.caches_synced(),
            self.leadership.is_leader(),
            self.leadership.in_good_standing(Instant::now(), self.contact_window),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_means_synced_caches_and_leading_or_a_standby_in_touch() {
        let table = [
            (false, true, true, Readiness::CachesNotSynced),
            (false, false, true, Readiness::CachesNotSynced),
            (true, true, false, Readiness::Leader),
            (true, false, true, Readiness::Standby),
            (true, false, false, Readiness::LeaseUnreachable),
        ];
        for (synced, leader, standing, want) in table {
            assert_eq!(
                readiness(synced, leader, standing),
                want,
                "{synced} {leader} {standing}"
            );
        }
        assert!(Readiness::Standby.is_ready());
        assert!(!Readiness::LeaseUnreachable.is_ready());
    }

    #[test]
    fn a_single_replica_is_ready_once_its_caches_synced() {
        let health = Health::new(Leadership::always(), Duration::from_secs(15));
        assert_eq!(health.readiness(), Readiness::CachesNotSynced);
        health.set_caches_synced();
        assert_eq!(health.readiness(), Readiness::Leader);
    }
}
