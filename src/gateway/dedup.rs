//! Exactly-once callbacks: the first delivery of a message claims it, later deliveries (the
//! platform's retries, or concurrent copies) get the first one's reply instead of running
//! the bot again.
//!
//! The store is an optimisation the gateway must survive without: when it fails or is slow,
//! the callback is decided without it (fail open) and a warning says so, because a missing
//! answer is worse for the user than a rare double one.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::now_ms;
use crate::metrics::{self, Metric};
use crate::store::{
    Backend, Claim, DedupRecord, DedupStore, DedupTimes, JobStore, NewJob, StoreError, new_owner,
};

/// How long to wait between reads while another delivery decides.
const POLL_FIRST: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(100);
/// How far past the budget recording a decided reply may go.
const FINISH_GRACE: Duration = Duration::from_millis(300);

/// What a delivery's claim writes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Write<'a> {
    /// The claim alone: the reply is decided after it.
    Claim,
    /// The claim with a reply job for a worker to decide.
    Job(NewJob<'a>),
    /// The claim with the reply (plaintext XML, `None` the empty answer), decided before it
    /// without side effects: one write instead of a claim and a completion.
    Decided(Option<&'a str>),
}

/// What the gateway does with one delivery.
#[derive(Debug)]
pub(crate) enum Begin {
    /// Decide the reply, then [`Dedup::finish`] the ticket. With [`Write::Decided`] the
    /// reply is decided already: answer it, nothing to finish (the ticket says whether the
    /// store holds it; when the store failed it is answered unrecorded, failing open).
    Decide(Ticket),
    /// Another delivery holds the claim and recorded nothing within this delivery's budget:
    /// its holder may have died (a killed process keeps its claim until the lease runs
    /// out). An empty answer would end the message for the platform and lose its reply, so
    /// the platform is asked to try again (503); a later try finds the reply, or takes the
    /// dead holder's claim over.
    Undecided,
    /// Answer this recorded reply (plaintext XML; `None` is the empty answer).
    Replay {
        /// The recorded reply.
        reply: Option<String>,
    },
}

/// The right to decide one callback and record the answer.
#[derive(Debug)]
pub(crate) struct Ticket {
    key: String,
    /// The identity the claim was (or was tried to be) written with.
    owner: String,
    /// Whether the store holds the claim. `false` when the store failed: the claim may still
    /// have landed, which only a later write of the same owner can tell.
    claimed: bool,
}

impl Ticket {
    /// The dedup record's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether the store holds the claim (and so the job it carries).
    pub fn is_claimed(&self) -> bool {
        self.claimed
    }
}

/// De-duplication over the configured store.
#[derive(Debug)]
pub(crate) struct Dedup {
    store: Arc<Backend>,
    /// How long a claim holds: the budget plus time to record the answer.
    lease_ms: u64,
    retention_secs: u64,
}

impl Dedup {
    pub fn new(store: Arc<Backend>, budget: Duration, retention_secs: u64) -> Self {
        let lease_ms = crate::clock::millis(budget) + 2000;
        Self {
            store,
            lease_ms,
            retention_secs,
        }
    }

    fn times(&self) -> DedupTimes {
        DedupTimes {
            now_ms: now_ms(),
            lease_ms: self.lease_ms,
            retention_secs: self.retention_secs,
        }
    }

    /// Claims `key` with what `write` carries, or waits (until `deadline`) for the delivery
    /// that holds it.
    pub async fn begin(
        &self,
        app: &str,
        key: String,
        deadline: Instant,
        write: Write<'_>,
    ) -> Begin {
        let owner = new_owner();
        let mut pause = POLL_FIRST;
        // Set once a holder's lease ran out: winning the claim then takes it over.
        let mut expired = false;
        loop {
            let claim = match self.claim(&key, &owner, deadline, write).await {
                Ok(claim) => claim,
                // The SDK tried twice. The claim may still have landed (its answer was what
                // failed): one more claim by the same owner finds out, since a claim
                // recognises its own earlier write, and makes it if it had not landed.
                Err(first) => match self.claim(&key, &owner, deadline, write).await {
                    Ok(claim) => {
                        tracing::info!(app, store = self.store.kind(), cause = %first, "dedup claim made on the second try");
                        claim
                    }
                    Err(e) => {
                        tracing::warn!(app, store = self.store.kind(), cause = %e, "dedup unavailable; deciding this callback without it");
                        metrics::count(Metric::DedupFailOpens, app);
                        return Begin::Decide(Ticket {
                            key,
                            owner,
                            claimed: false,
                        });
                    }
                },
            };
            match claim {
                Claim::Won => {
                    if expired {
                        metrics::count_with(Metric::DedupTakeovers, Some(app), "taken_over");
                    }
                    return Begin::Decide(Ticket {
                        key,
                        owner,
                        claimed: true,
                    });
                }
                Claim::Done { reply } => {
                    return Begin::Replay { reply };
                }
                Claim::InProgress { .. } => {}
            }
            // Another delivery holds the claim: read its record until it is done, its lease
            // runs out (then claim again: the holder died), or this delivery's budget ends.
            // A holder records its answer up to FINISH_GRACE past its own budget, so a copy
            // that arrived with it (its budget ending at the same time) waits as long.
            // A read that fails is no reason to answer: an empty 200 ends the message for
            // the platform, and the holder may be dead. The copy keeps reading until then.
            let wait_until = deadline + FINISH_GRACE;
            let mut read_failed = false;
            loop {
                if Instant::now() + pause >= wait_until {
                    // Logged with the refusal it becomes (503).
                    return Begin::Undecided;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(POLL_MAX);
                match bounded(wait_until, self.store.dedup_record(&key, now_ms())).await {
                    Ok(Some(DedupRecord::Done { reply })) => {
                        return Begin::Replay { reply };
                    }
                    Ok(Some(DedupRecord::InProgress { lease_until_ms }))
                        if lease_until_ms >= now_ms() => {}
                    Ok(_) => {
                        expired = true; // gone, expired, or the lease ran out: claim again
                        break;
                    }
                    // Cut off by this copy's own deadline (a slow store): undecided.
                    Err(_) if Instant::now() >= wait_until => return Begin::Undecided,
                    Err(e) if !read_failed => {
                        read_failed = true;
                        tracing::warn!(app, store = self.store.kind(), cause = %e, "dedup unavailable while waiting for another delivery; still waiting");
                    }
                    Err(_) => {}
                }
            }
        }
    }

    /// One claim write, given up at `deadline`.
    async fn claim(
        &self,
        key: &str,
        owner: &str,
        deadline: Instant,
        write: Write<'_>,
    ) -> Result<Claim, StoreError> {
        let times = self.times();
        match write {
            Write::Claim => bounded(deadline, self.store.claim(key, owner, times)).await,
            Write::Job(job) => {
                bounded(deadline, self.store.claim_with_job(key, owner, times, job)).await
            }
            Write::Decided(reply) => {
                bounded(deadline, self.store.claim_decided(key, owner, reply, times)).await
            }
        }
    }

    /// Waits (until `deadline`) for the worker deciding a job claimed with `ticket` to store
    /// the reply, and answers it. At the deadline the callback gives up with one conditional
    /// write (the worker then sends the reply actively); a reply stored just before that
    /// write is still answered.
    ///
    /// It never answers empty while the worker could still store a passive reply: not
    /// before its give-up write is made, or, when that write fails, not before the job's
    /// `answer_by` (this deadline) has passed, after which the worker's passive answer is
    /// refused by its own condition. A read that fails meanwhile is no reason to stop
    /// waiting.
    pub async fn await_worker(
        &self,
        app: &str,
        ticket: Ticket,
        deadline: Instant,
    ) -> Option<String> {
        if !ticket.claimed {
            return None;
        }
        let (key, owner) = (ticket.key, ticket.owner);
        let mut pause = POLL_FIRST;
        let mut read_failed = false;
        while Instant::now() + pause < deadline {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(POLL_MAX);
            match bounded(deadline, self.store.dedup_record(&key, now_ms())).await {
                Ok(Some(DedupRecord::Done { reply })) => return reply,
                Ok(_) => {}
                Err(e) if !read_failed => {
                    read_failed = true;
                    tracing::warn!(app, store = self.store.kind(), cause = %e, "cannot read the worker's reply; still waiting");
                }
                Err(_) => {}
            }
        }
        let until = deadline.max(Instant::now()) + FINISH_GRACE;
        let give_up = self.store.complete(&key, &owner, None, self.times());
        match bounded(until, give_up).await {
            Ok(true) => {
                tracing::info!(
                    app,
                    "the worker missed the time budget; answering empty, its reply will follow as an active message"
                );
                None
            }
            // The worker stored the reply (or ended the job) first.
            Ok(false) => self.read_until(app, &key, until).await,
            Err(e) => {
                // Whether the give-up landed is unknown. Past `until` the worker's passive
                // answer can no longer be made (its condition wants answer_by ahead of its
                // clock by the store's write time), so the reply goes out actively.
                tokio::time::sleep_until(until).await;
                tracing::warn!(app, store = self.store.kind(), cause = %e, "cannot record that the callback stopped waiting; answering empty after the deadline");
                None
            }
        }
    }

    /// The recorded reply, read again until `until` if reads fail.
    async fn read_until(&self, app: &str, key: &str, until: Instant) -> Option<String> {
        loop {
            match bounded(until, self.store.dedup_record(key, now_ms())).await {
                Ok(Some(DedupRecord::Done { reply })) => return reply,
                Ok(_) => return None,
                Err(e) if Instant::now() >= until => {
                    tracing::warn!(app, store = self.store.kind(), cause = %e, "cannot read the worker's reply; answering empty");
                    return None;
                }
                Err(_) => tokio::time::sleep(POLL_FIRST).await,
            }
        }
    }

    /// Records the decided reply so later deliveries answer the same. A claim the store
    /// failed on is completed too: it may have landed, and then its retries would otherwise
    /// wait for it to run out.
    pub async fn finish(&self, app: &str, ticket: Ticket, reply: Option<&str>, deadline: Instant) {
        // The answer is recorded even when the budget is spent (a retry must not run the bot
        // again), but only briefly past it: the platform gives up at 5 s.
        let until = deadline.max(Instant::now()) + FINISH_GRACE;
        let write = self
            .store
            .complete(&ticket.key, &ticket.owner, reply, self.times());
        match (bounded(until, write).await, ticket.claimed) {
            (Ok(true), _) => {}
            (Ok(false), true) => {
                tracing::warn!(
                    app,
                    "dedup claim was taken over before the reply was recorded"
                );
                metrics::count_with(Metric::DedupTakeovers, Some(app), "lost");
            }
            (Ok(false), false) => {} // the claim had not landed: nothing to record it on
            (Err(e), _) => {
                tracing::warn!(app, store = self.store.kind(), cause = %e, "cannot record the reply; a retry of this callback will be decided again");
            }
        }
    }
}

/// Runs a store request, giving up at the callback's deadline.
async fn bounded<T>(
    deadline: Instant,
    request: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    tokio::time::timeout_at(deadline, request)
        .await
        .unwrap_or_else(|_| Err(StoreError::Timeout(crate::clock::millis(started.elapsed()))))
}
