//! The election's decisions as one pure function: what this process last saw of the Lease,
//! when it saw it, when it last renewed, and the clock in; whether it may lead now and
//! what to do next out. The loop in [`super::election`] does the I/O.
//!
//! Rules (client-go's, with the same meaning of the three durations):
//! - Expiry is judged on this process's own monotonic clock, never on the `renewTime` the
//!   holder wrote: another node's clock may be off. A Lease counts as expired once its
//!   `resourceVersion` has not changed for the holder's `leaseDurationSeconds`, counted from
//!   the moment this process first saw that version. A living holder renews every retry
//!   period, and every renewal is a new version.
//! - The leader may act only while its last successful renewal (counted from when the
//!   request was sent) is younger than the renew deadline, and only while the Lease it saw
//!   last names it. The deadline is shorter than the lease duration, so a leader that cannot
//!   renew stops writing at least `lease duration − renew deadline` before anyone else may
//!   take the Lease over.
//! - A Lease without a holder (released on shutdown) is taken at once.
//! - Every write of the Lease is guarded by the `resourceVersion` it was decided on, so two
//!   candidates deciding on the same version cannot both win (see [`super::lease`]).

use std::time::{Duration, Instant};

/// The three durations of the election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long a Lease stays valid without renewal (written to `leaseDurationSeconds`).
    pub lease_duration: Duration,
    /// How long the leader may go without a successful renewal before it stops acting.
    pub renew_deadline: Duration,
    /// How often the leader renews, and how long any candidate waits after a failed request.
    pub retry_period: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl Timing {
    /// Refuses settings under which two leaders could overlap or the leader could never
    /// renew in time: retry period < renew deadline < lease duration, all positive.
    pub fn validate(&self) -> Result<(), String> {
        if self.retry_period.is_zero() {
            return Err("the retry period must be positive".into());
        }
        if self.renew_deadline <= self.retry_period {
            return Err(format!(
                "the renew deadline ({:?}) must be longer than the retry period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(format!(
                "the lease duration ({:?}) must be longer than the renew deadline ({:?}): the leader \
                 must stop writing before another process may take the Lease",
                self.lease_duration, self.renew_deadline
            ));
        }
        if i32::try_from(self.lease_duration.as_secs()).is_err() {
            return Err("the lease duration does not fit leaseDurationSeconds".into());
        }
        Ok(())
    }
}

/// The fields of a Lease the election reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    /// `spec.holderIdentity`; `None` or empty when nobody holds the Lease.
    pub holder: Option<String>,
    /// `spec.leaseDurationSeconds` as the holder wrote it.
    pub lease_duration: Option<Duration>,
    /// `metadata.resourceVersion`: the guard of the next write, and the sign of life.
    pub resource_version: String,
    /// `spec.leaseTransitions`.
    pub transitions: i32,
}

impl LeaseRecord {
    fn holder(&self) -> Option<&str> {
        self.holder.as_deref().filter(|h| !h.is_empty())
    }
}

/// What this process knows of the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// `None`: the Lease does not exist.
    pub record: Option<LeaseRecord>,
    /// When this process first saw this record (this `resourceVersion`, or the absence).
    pub since: Instant,
}

/// Everything the decision depends on.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub identity: &'a str,
    /// `None` until the Lease was read once, and after a write was refused on a stale version.
    pub observed: Option<&'a Observed>,
    /// When the last successful acquire or renewal of this process was sent.
    pub renewed_at: Option<Instant>,
    /// When the last request of this process about the Lease was sent, whatever its result.
    pub attempted_at: Option<Instant>,
    pub now: Instant,
    pub timing: Timing,
}

/// The request to send about the Lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Read the Lease (nothing known about it).
    Read,
    /// Create the Lease naming this process (it does not exist).
    Create,
    /// Take the Lease over; `transition` when it changes hands (counted in `leaseTransitions`).
    Acquire { transition: bool },
    /// Renew this process's Lease.
    Renew,
}

/// The outcome of [`decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether this process may act as leader from now on.
    pub lead: bool,
    /// The request to send now, if one is due.
    pub step: Option<Step>,
    /// When to decide again if nothing is observed in between.
    pub wake: Instant,
}

/// Decides whether this process leads and what it does next.
pub fn decide(input: &Input<'_>) -> Decision {
    let Input {
        identity,
        observed,
        renewed_at,
        attempted_at,
        now,
        timing,
    } = *input;
    let retry_due = attempted_at.map_or(now, |at| at + timing.retry_period);
    // A failed attempt waits for the retry period, unless the Lease changed since: new
    // information is worth a new try at once (a Lease released right after we lost a race).
    let due_unless_news = |since: Instant| {
        if attempted_at.is_none_or(|at| since > at) {
            now
        } else {
            retry_due
        }
    };
    let deadline = renewed_at.map(|at| at + timing.renew_deadline);
    let record = observed.and_then(|o| o.record.as_ref());
    let ours = record.is_some_and(|r| r.holder() == Some(identity));
    let lead = ours && deadline.is_some_and(|d| now < d);

    let (step, due, wake) = match observed {
        None => (Step::Read, retry_due, retry_due),
        Some(Observed { record: None, since }) => {
            let due = due_unless_news(*since);
            (Step::Create, due, due)
        }
        Some(Observed {
            record: Some(record),
            since,
        }) => {
            if lead {
                // Renew every retry period, counted from the later of the last success and
                // the last try.
                let last = renewed_at.max(attempted_at).unwrap_or(now);
                let due = last + timing.retry_period;
                (Step::Renew, due, due)
            } else if ours {
                // Ours on record, but this process does not lead: it restarted with the same
                // identity, or its renewals failed past the deadline. Nobody else can have
                // taken it while it names us; take it back (guarded by its version).
                let due = due_unless_news(*since);
                (Step::Acquire { transition: false }, due, due)
            } else if record.holder().is_none() {
                let due = due_unless_news(*since);
                (Step::Acquire { transition: true }, due, due)
            } else {
                let duration = record
                    .lease_duration
                    .filter(|d| !d.is_zero())
                    .unwrap_or(timing.lease_duration);
                let expiry = *since + duration;
                let due = expiry.max(due_unless_news(*since));
                (Step::Acquire { transition: true }, due, due)
            }
        }
    };
    let step = (due <= now).then_some(step);
    // The leader must also wake on its deadline, to stop acting even if a renewal hangs.
    let wake = match (lead, deadline) {
        (true, Some(deadline)) => wake.min(deadline),
        _ => wake,
    };
    Decision {
        lead,
        step,
        wake: wake.max(now),
    }
}

/// What this process knows after reading `record` at `now`: the same version as before keeps
/// its first-seen time (a re-read is no sign of life), anything else starts afresh.
pub fn observe(previous: Option<&Observed>, record: Option<LeaseRecord>, now: Instant) -> Observed {
    match previous {
        Some(previous) if same_version(previous.record.as_ref(), record.as_ref()) => Observed {
            record,
            since: previous.since,
        },
        _ => Observed { record, since: now },
    }
}

fn same_version(a: Option<&LeaseRecord>, b: Option<&LeaseRecord>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.resource_version == b.resource_version,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "kongress-a";
    const OTHER: &str = "kongress-b";

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn record(holder: Option<&str>, version: &str) -> LeaseRecord {
        LeaseRecord {
            holder: holder.map(str::to_string),
            lease_duration: Some(secs(15)),
            resource_version: version.into(),
            transitions: 3,
        }
    }

    /// One row: what was observed when (seconds after `t0`), renewals and tries, the time
    /// of the decision, and the expected decision (wake in seconds after `t0`).
    struct Case {
        rule: &'static str,
        observed: Option<(Option<LeaseRecord>, u64)>,
        renewed_at: Option<u64>,
        attempted_at: Option<u64>,
        now: u64,
        lead: bool,
        step: Option<Step>,
        wake: u64,
    }

    fn run(case: &Case) {
        let t0 = Instant::now();
        let at = |s: u64| t0 + secs(s);
        let observed = case.observed.clone().map(|(record, since)| Observed {
            record,
            since: at(since),
        });
        let decision = decide(&Input {
            identity: ME,
            observed: observed.as_ref(),
            renewed_at: case.renewed_at.map(at),
            attempted_at: case.attempted_at.map(at),
            now: at(case.now),
            timing: Timing::default(),
        });
        assert_eq!(
            decision,
            Decision {
                lead: case.lead,
                step: case.step,
                wake: at(case.wake)
            },
            "{}",
            case.rule
        );
    }

    #[test]
    fn election_decisions_follow_the_lease_rules() {
        let cases = [
            Case {
                rule: "a process that knows nothing reads the Lease first",
                observed: None,
                renewed_at: None,
                attempted_at: None,
                now: 0,
                lead: false,
                step: Some(Step::Read),
                wake: 0,
            },
            Case {
                rule: "a failed read is retried after the retry period",
                observed: None,
                renewed_at: None,
                attempted_at: Some(0),
                now: 1,
                lead: false,
                step: None,
                wake: 2,
            },
            Case {
                rule: "a missing Lease is created at once",
                observed: Some((None, 0)),
                renewed_at: None,
                attempted_at: None,
                now: 0,
                lead: false,
                step: Some(Step::Create),
                wake: 0,
            },
            Case {
                rule: "a Lease held by another and renewed recently is left alone until it expires",
                observed: Some((Some(record(Some(OTHER), "7")), 10)),
                renewed_at: None,
                attempted_at: None,
                now: 12,
                lead: false,
                step: None,
                wake: 25,
            },
            Case {
                rule: "expiry counts from when this process saw the version, not from renewTime",
                observed: Some((Some(record(Some(OTHER), "7")), 10)),
                renewed_at: None,
                attempted_at: None,
                now: 24,
                lead: false,
                step: None,
                wake: 25,
            },
            Case {
                rule: "a Lease whose version has not changed for the lease duration is taken over",
                observed: Some((Some(record(Some(OTHER), "7")), 10)),
                renewed_at: None,
                attempted_at: None,
                now: 25,
                lead: false,
                step: Some(Step::Acquire { transition: true }),
                wake: 25,
            },
            Case {
                rule: "a released Lease (no holder) is taken at once",
                observed: Some((Some(record(None, "8")), 10)),
                renewed_at: None,
                attempted_at: None,
                now: 10,
                lead: false,
                step: Some(Step::Acquire { transition: true }),
                wake: 10,
            },
            Case {
                rule: "an empty holder counts as released",
                observed: Some((Some(record(Some(""), "8")), 10)),
                renewed_at: None,
                attempted_at: None,
                now: 10,
                lead: false,
                step: Some(Step::Acquire { transition: true }),
                wake: 10,
            },
            Case {
                rule: "a failed takeover is not retried within the retry period without news",
                observed: Some((Some(record(None, "8")), 10)),
                renewed_at: None,
                attempted_at: Some(11),
                now: 12,
                lead: false,
                step: None,
                wake: 13,
            },
            Case {
                rule: "a Lease that changed after a failed try is tried again at once",
                observed: Some((Some(record(None, "9")), 12)),
                renewed_at: None,
                attempted_at: Some(11),
                now: 12,
                lead: false,
                step: Some(Step::Acquire { transition: true }),
                wake: 12,
            },
            Case {
                rule: "the leader leads and renews one retry period after its last renewal",
                observed: Some((Some(record(Some(ME), "9")), 20)),
                renewed_at: Some(20),
                attempted_at: Some(20),
                now: 21,
                lead: true,
                step: None,
                wake: 22,
            },
            Case {
                rule: "the leader renews when the retry period has passed",
                observed: Some((Some(record(Some(ME), "9")), 20)),
                renewed_at: Some(20),
                attempted_at: Some(20),
                now: 22,
                lead: true,
                step: Some(Step::Renew),
                wake: 22,
            },
            Case {
                rule: "a leader whose renewals fail keeps leading until the renew deadline",
                observed: Some((Some(record(Some(ME), "9")), 20)),
                renewed_at: Some(20),
                attempted_at: Some(28),
                now: 29,
                lead: true,
                step: None,
                wake: 30,
            },
            Case {
                rule: "a leader stops leading on the renew deadline, before the Lease can expire for others",
                observed: Some((Some(record(Some(ME), "9")), 20)),
                renewed_at: Some(20),
                attempted_at: Some(28),
                now: 30,
                lead: false,
                step: Some(Step::Acquire { transition: false }),
                wake: 30,
            },
            Case {
                rule: "a renewal that hangs past the deadline still wakes the leader on the deadline",
                observed: Some((Some(record(Some(ME), "9")), 20)),
                renewed_at: Some(20),
                attempted_at: Some(29),
                now: 29,
                lead: true,
                step: None,
                wake: 30,
            },
            Case {
                rule: "a leader that sees another holder stops leading at once",
                observed: Some((Some(record(Some(OTHER), "10")), 25)),
                renewed_at: Some(24),
                attempted_at: Some(24),
                now: 25,
                lead: false,
                step: None,
                wake: 40,
            },
            Case {
                rule: "a leader that sees its Lease deleted stops leading and creates it again",
                observed: Some((None, 25)),
                renewed_at: Some(24),
                attempted_at: Some(24),
                now: 25,
                lead: false,
                step: Some(Step::Create),
                wake: 25,
            },
            Case {
                rule: "a restarted process named on the Lease takes it back without a transition",
                observed: Some((Some(record(Some(ME), "9")), 5)),
                renewed_at: None,
                attempted_at: None,
                now: 5,
                lead: false,
                step: Some(Step::Acquire { transition: false }),
                wake: 5,
            },
        ];
        for case in &cases {
            run(case);
        }
    }

    #[test]
    fn a_holder_without_lease_duration_is_given_ours() {
        let t0 = Instant::now();
        let mut lease = record(Some(OTHER), "1");
        lease.lease_duration = None;
        let observed = Observed {
            record: Some(lease),
            since: t0,
        };
        let decision = decide(&Input {
            identity: ME,
            observed: Some(&observed),
            renewed_at: None,
            attempted_at: None,
            now: t0,
            timing: Timing::default(),
        });
        assert_eq!(decision.wake, t0 + secs(15));
        assert_eq!(decision.step, None);
    }

    #[test]
    fn timing_must_order_retry_deadline_and_duration() {
        assert!(Timing::default().validate().is_ok());
        let deadline_not_shorter = Timing {
            lease_duration: secs(10),
            renew_deadline: secs(10),
            retry_period: secs(2),
        };
        assert!(deadline_not_shorter.validate().is_err());
        let retry_not_shorter = Timing {
            lease_duration: secs(15),
            renew_deadline: secs(2),
            retry_period: secs(2),
        };
        assert!(retry_not_shorter.validate().is_err());
        let zero_retry = Timing {
            retry_period: Duration::ZERO,
            ..Timing::default()
        };
        assert!(zero_retry.validate().is_err());
    }

    #[test]
    fn a_re_read_of_the_same_version_is_no_sign_of_life() {
        let t0 = Instant::now();
        let first = observe(None, Some(record(Some(OTHER), "7")), t0);
        let again = observe(Some(&first), Some(record(Some(OTHER), "7")), t0 + secs(5));
        assert_eq!(
            again.since, t0,
            "same version: expiry still counts from the first sight"
        );
        let renewed = observe(Some(&again), Some(record(Some(OTHER), "8")), t0 + secs(6));
        assert_eq!(renewed.since, t0 + secs(6), "a new version restarts the clock");
        let gone = observe(Some(&renewed), None, t0 + secs(7));
        assert_eq!(gone.since, t0 + secs(7));
        let still_gone = observe(Some(&gone), None, t0 + secs(9));
        assert_eq!(still_gone.since, t0 + secs(7));
    }
}
