//! The election loop: reads and writes the Lease as [`decide`] says, keeps [`Leadership`]
//! current, and releases the Lease on shutdown.
//!
//! A watch on the one Lease is only a doorbell: any event makes the loop read the Lease
//! afresh, so a released Lease is taken within a round trip, and the loop never acts on an
//! event older than what it already read. Every request is bounded in time; a leader's
//! requests never outlast its renew deadline, so it steps down on the deadline even when
//! the API server hangs.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tracing::{debug, info, warn};

use super::decision::{Decision, Input, Observed, Step, Timing, decide, observe};
use super::gate::WritesInFlight;
use super::lease::{self, LeaseApi, record_of};
use super::{LEASE_NAME, Leadership};

/// How long the shutdown waits for writes in flight before it gives up releasing: a write
/// still out after that may yet land, so the Lease is left to expire instead.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// How long the release may take in all.
const RELEASE_LIMIT: Duration = Duration::from_secs(5);

/// Settings of the election, from the command line.
#[derive(Clone, Debug)]
pub struct ElectionSettings {
    /// Namespace of the Lease (the operator's).
    pub namespace: String,
    /// This process's name on the Lease.
    pub identity: String,
    pub timing: Timing,
}

/// What the loop remembers between decisions.
#[derive(Default)]
struct Memory {
    /// The Lease as last read or written (the base of the next write).
    lease: Option<Lease>,
    observed: Option<Observed>,
    renewed_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

impl Memory {
    fn learn(&mut self, lease: Option<Lease>, now: Instant) {
        let record = lease.as_ref().map(record_of);
        self.observed = Some(observe(self.observed.as_ref(), record, now));
        self.lease = lease;
    }

    /// Forgets the Lease after a write was refused on a stale version.
    fn forget(&mut self) {
        self.observed = None;
        self.lease = None;
    }
}

/// One process's part in the election.
pub struct Election {
    lease: LeaseApi,
    identity: String,
    timing: Timing,
    leadership: Leadership,
    writes: Arc<WritesInFlight>,
}

impl Election {
    /// `client` must be the plain client (the Lease writes must pass while standing by);
    /// `writes` counts the controller's writes, which the release waits for.
    pub fn new(
        client: Client,
        settings: &ElectionSettings,
        leadership: Leadership,
        writes: Arc<WritesInFlight>,
    ) -> Self {
        Self {
            lease: LeaseApi {
                api: Api::namespaced(client, &settings.namespace),
                name: LEASE_NAME.into(),
                namespace: settings.namespace.clone(),
            },
            identity: settings.identity.clone(),
            timing: settings.timing,
            leadership,
            writes,
        }
    }

    /// Runs until `shutdown` completes, then stops leading and releases the Lease it holds.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.lease.name));
        let mut doorbell = watcher(self.lease.api.clone(), config).default_backoff().boxed();
        let mut memory = Memory::default();
        let mut rang = false;
        tokio::pin!(shutdown);
        info!(
            identity = %self.identity,
            lease = %format!("{}/{}", self.lease.namespace, self.lease.name),
            "leader election started; standing by"
        );
        loop {
            let now = Instant::now();
            let decision = self.decide(&memory, now);
            self.set_leader(decision.lead);
            let step = match (decision.step, rang) {
                (Some(step), _) => Some(step),
                (None, true) => Some(Step::Read),
                (None, false) => None,
            };
            rang = false;
            if let Some(step) = step {
                if step != Step::Read {
                    memory.attempted_at = Some(now);
                }
                let limit = self.request_limit(&decision, &memory, now);
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    result = tokio::time::timeout(limit, self.perform(step, &memory, Timestamp::now())) => {
                        self.settle(step, now, result, &mut memory);
                    }
                }
                continue;
            }
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                event = doorbell.next() => match event {
                    Some(Ok(_)) => rang = true,
                    // The watcher retries with backoff; the periodic decisions go on meanwhile.
                    Some(Err(error)) => debug!(%error, "watch of the leader election Lease failed"),
                    None => {
                        warn!("the watch of the leader election Lease ended");
                        doorbell = futures::stream::pending().boxed();
                    }
                },
                () = tokio::time::sleep_until(decision.wake.into()) => {}
            }
        }
        self.shut_down(&mut memory).await;
    }

    fn decide(&self, memory: &Memory, now: Instant) -> Decision {
        decide(&Input {
            identity: &self.identity,
            observed: memory.observed.as_ref(),
            renewed_at: memory.renewed_at,
            attempted_at: memory.attempted_at,
            now,
            timing: self.timing,
        })
    }

    /// Changes leadership. The log lines bracket the time this process may write: "became"
    /// is logged before the first write can leave, "no longer" after the last one could.
    fn set_leader(&self, lead: bool) {
        match (self.leadership.is_leader(), lead) {
            (false, true) => {
                info!(identity = %self.identity, "became the leader: writing and pushing");
                self.leadership.set_leader(true);
            }
            (true, false) => {
                self.leadership.set_leader(false);
                warn!(identity = %self.identity, "no longer the leader: stopped writing and pushing");
            }
            _ => {}
        }
    }

    /// A leader's request ends before its renew deadline; anyone else's within the deadline.
    fn request_limit(&self, decision: &Decision, memory: &Memory, now: Instant) -> Duration {
        let floor = Duration::from_millis(50);
        match memory.renewed_at {
            Some(renewed) if decision.lead => (renewed + self.timing.renew_deadline)
                .saturating_duration_since(now)
                .max(floor),
            _ => self.timing.renew_deadline,
        }
    }

    async fn perform(&self, step: Step, memory: &Memory, now: Timestamp) -> Result<Option<Lease>, kube::Error> {
        let duration = self.timing.lease_duration;
        match (step, &memory.lease) {
            (Step::Create, _) => {
                let lease = lease::created(&self.lease.name, &self.lease.namespace, &self.identity, duration, now);
                self.lease.create(&lease).await.map(Some)
            }
            (Step::Acquire { transition }, Some(current)) => {
                let lease = lease::acquired(current, &self.identity, duration, transition, now);
                self.lease.replace(&lease).await.map(Some)
            }
            (Step::Renew, Some(current)) => {
                let lease = lease::renewed(current, duration, now);
                self.lease.replace(&lease).await.map(Some)
            }
            // Read, or a write with no Lease to base it on (cannot happen: a record is only
            // observed together with its Lease).
            _ => self.lease.read().await,
        }
    }

    fn settle(
        &self,
        step: Step,
        sent: Instant,
        result: Result<Result<Option<Lease>, kube::Error>, tokio::time::error::Elapsed>,
        memory: &mut Memory,
    ) {
        let now = Instant::now();
        match result {
            Ok(Ok(lease)) => {
                self.leadership.record_contact(now);
                if step != Step::Read {
                    memory.renewed_at = Some(sent);
                    if step != Step::Renew {
                        info!(identity = %self.identity, ?step, "acquired the leader election Lease");
                    }
                }
                memory.learn(lease, now);
            }
            Ok(Err(kube::Error::Api(status))) if status.code == 409 || status.code == 404 => {
                // Someone wrote the Lease (or deleted it) since it was read: read it again.
                self.leadership.record_contact(now);
                debug!(
                    ?step,
                    code = status.code,
                    "the Lease changed under this write; reading it again"
                );
                memory.forget();
            }
            Ok(Err(error)) => warn!(%error, ?step, "leader election request failed"),
            Err(_) => warn!(?step, "leader election request timed out"),
        }
    }

    async fn shut_down(&self, memory: &mut Memory) {
        let was_leader = self.leadership.is_leader();
        // Stop writing first: the gate refuses every write from here on.
        self.set_leader(false);
        let ours = memory
            .lease
            .as_ref()
            .and_then(|l| l.spec.as_ref()?.holder_identity.clone())
            .is_some_and(|holder| holder == self.identity);
        if !ours {
            return;
        }
        if !self.writes.drain(DRAIN_LIMIT).await {
            warn!(
                in_flight = self.writes.count(),
                "writes still in flight at shutdown: leaving the Lease to expire instead of releasing it"
            );
            return;
        }
        let release = async {
            for _ in 0..2 {
                let Some(current) = memory.lease.clone() else {
                    return Err("the Lease is unknown".to_string());
                };
                match self.lease.replace(&lease::released(&current, Timestamp::now())).await {
                    Ok(_) => return Ok(()),
                    Err(kube::Error::Api(status)) if status.code == 409 => {
                        // A renewal may have landed after the version we know: read and retry
                        // while the Lease still names us.
                        let fresh = self.lease.read().await.map_err(|e| e.to_string())?;
                        let still_ours = fresh
                            .as_ref()
                            .and_then(|l| l.spec.as_ref()?.holder_identity.clone())
                            .is_some_and(|holder| holder == self.identity);
                        if !still_ours {
                            return Ok(());
                        }
                        memory.lease = fresh;
                    }
                    Err(error) => return Err(error.to_string()),
                }
            }
            Err("the Lease kept changing".to_string())
        };
        match tokio::time::timeout(RELEASE_LIMIT, release).await {
            Ok(Ok(())) => info!(identity = %self.identity, was_leader, "released the leader election Lease"),
            Ok(Err(error)) => warn!(%error, "could not release the leader election Lease; it will expire"),
            Err(_) => warn!("releasing the leader election Lease timed out; it will expire"),
        }
    }
}
