//! The embedded store: one process's map behind a mutex, with the DynamoDB backend's
//! semantics (conditional writes, expiry checked on read).

use std::collections::HashMap;
use std::sync::Mutex;

use super::{
    CachedToken, Claim, DedupRecord, DedupStore, DedupTimes, JobEnd, JobRecord, JobState, JobStore,
    NewJob, SignatureStore, StoreError, StoredStream, StreamStore, StreamWrite, TokenRecord,
    TokenStore,
};
use crate::clock::EpochMillis;

mod open;

/// How often expired records are swept out, so a long-running `serve` does not grow
/// without bound. By time, not by write count: a sweep walks every record, and doing that
/// every N writes would make each write cost O(records / N).
const SWEEP_INTERVAL_MS: u64 = 60_000;

#[derive(Debug, Default)]
struct Inner {
    dedup: HashMap<String, DedupItem>,
    tokens: HashMap<String, TokenItem>,
    /// Signature bindings: body digest and expiry (epoch seconds).
    signatures: HashMap<String, (String, u64)>,
    /// Open Platform tickets by component AppID: never swept (the newest is always kept).
    tickets: HashMap<String, super::open::Ticket>,
    /// Open Platform authorizations by item key: never swept (refresh tokens).
    authorizations: HashMap<String, super::open::AuthorizationRecord>,
    last_sweep_ms: EpochMillis,
}

#[derive(Debug, Clone)]
struct DedupItem {
    owner: String,
    record: DedupRecord,
    expires_at_secs: u64,
    job: Option<JobItem>,
    /// Who completed the record (`complete`), so a repeated completion is recognised.
    completed_by: Option<String>,
    /// An AI bot stream's latest snapshot and its writer.
    stream: Option<(StoredStream, String)>,
}

#[derive(Debug, Clone)]
struct JobItem {
    record: JobRecord,
    worker: Option<String>,
    until_ms: EpochMillis,
}

impl DedupItem {
    /// The record as callers see it: a job whose callback's lease ran out was given up by
    /// it (answered empty; the reply goes out actively).
    fn visible(&self, now_ms: EpochMillis) -> DedupRecord {
        match self.record {
            DedupRecord::InProgress { lease_until_ms }
                if self.job.is_some() && lease_until_ms < now_ms =>
            {
                DedupRecord::Done { reply: None }
            }
            ref record => record.clone(),
        }
    }

    /// The job, if `worker` holds it in one of `states`.
    fn held_job(&mut self, worker: &str, states: &[JobState]) -> Option<&mut JobItem> {
        self.job
            .as_mut()
            .filter(|j| j.worker.as_deref() == Some(worker) && states.contains(&j.record.state))
    }

    /// Marks the callback answered (empty) if it still waits.
    fn give_up_waiting(&mut self) {
        if matches!(self.record, DedupRecord::InProgress { .. }) {
            self.record = DedupRecord::Done { reply: None };
        }
    }
}

#[derive(Debug, Clone, Default)]
struct TokenItem {
    token: Option<CachedToken>,
    lease_owner: Option<String>,
    lease_until_ms: EpochMillis,
}

/// The in-process store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many dedup records are held (expired ones included until the next sweep).
    pub fn dedup_len(&self) -> usize {
        self.lock().dedup.len()
    }

    /// One claim write: in progress (with a job, if given), or done with a reply decided
    /// before the claim (`decided`, see [`DedupStore::claim_decided`]).
    fn claim_item(
        &self,
        key: &str,
        owner: &str,
        times: DedupTimes,
        job: Option<JobItem>,
        decided: Option<Option<&str>>,
    ) -> Claim {
        let mut inner = self.lock();
        if let Some(item) = inner.dedup.get(key).filter(|i| live(i, times.now_ms)) {
            // The same claim again (a retried write that had landed) is still the claim.
            let own = match decided {
                None => {
                    item.owner == owner && matches!(item.record, DedupRecord::InProgress { .. })
                }
                Some(_) => item.completed_by.as_deref() == Some(owner),
            };
            if own {
                return Claim::Won;
            }
            match item.visible(times.now_ms) {
                DedupRecord::Done { reply } => return Claim::Done { reply },
                DedupRecord::InProgress { lease_until_ms } if lease_until_ms >= times.now_ms => {
                    return Claim::InProgress { lease_until_ms };
                }
                DedupRecord::InProgress { .. } => {} // the holder's lease ran out: take over
            }
        }
        inner.dedup.insert(
            key.to_owned(),
            DedupItem {
                owner: owner.to_owned(),
                record: match decided {
                    None => DedupRecord::InProgress {
                        lease_until_ms: times.lease_until_ms(),
                    },
                    Some(reply) => DedupRecord::Done {
                        reply: reply.map(str::to_owned),
                    },
                },
                expires_at_secs: times.expires_at_secs(),
                job,
                completed_by: decided.map(|_| owner.to_owned()),
                stream: None,
            },
        );
        inner.after_write(times.now_ms);
        Claim::Won
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written item (every write is
        // one insert), so a poisoned lock is safe to keep using.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Inner {
    /// The token item whose refresh lease `owner` holds.
    fn token_leased_by(&mut self, key: &str, owner: &str) -> Option<&mut TokenItem> {
        self.tokens
            .get_mut(key)
            .filter(|i| i.lease_owner.as_deref() == Some(owner))
    }

    fn after_write(&mut self, now_ms: EpochMillis) {
        if now_ms.saturating_sub(self.last_sweep_ms) >= SWEEP_INTERVAL_MS {
            self.last_sweep_ms = now_ms;
            let now_secs = now_ms / 1000;
            self.dedup
                .retain(|_, item| item.expires_at_secs >= now_secs);
            self.signatures
                .retain(|_, (_, expires_at_secs)| *expires_at_secs >= now_secs);
        }
    }
}

fn live(item: &DedupItem, now_ms: EpochMillis) -> bool {
    item.expires_at_secs >= now_ms / 1000
}

impl StreamStore for MemoryStore {
    async fn stream(
        &self,
        key: &str,
        now_ms: EpochMillis,
    ) -> Result<Option<StoredStream>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .dedup
            .get(key)
            .filter(|item| live(item, now_ms))
            .map(|item| {
                item.stream
                    .as_ref()
                    .map(|(s, _)| s.clone())
                    .unwrap_or_default()
            }))
    }

    async fn put_stream(
        &self,
        key: &str,
        write: StreamWrite<'_>,
        times: DedupTimes,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(item) = inner.dedup.get_mut(key).filter(|i| live(i, times.now_ms)) else {
            return Ok(false);
        };
        // As in DynamoDB: the job's holder only, in its own order.
        if item.held_job(write.writer, &[JobState::Running]).is_none() {
            return Ok(false);
        }
        let in_order = match &item.stream {
            Some((stored, writer)) => writer != write.writer || stored.seq <= write.seq,
            None => true,
        };
        if !in_order {
            return Ok(false);
        }
        let started_ms = item
            .stream
            .as_ref()
            .and_then(|(s, _)| s.started_ms)
            .or(Some(times.now_ms));
        item.stream = Some((
            StoredStream {
                seq: write.seq,
                content: write.content.to_owned(),
                finish: write.finish,
                started_ms,
            },
            write.writer.to_owned(),
        ));
        Ok(true)
    }
}

impl DedupStore for MemoryStore {
    async fn claim(&self, key: &str, owner: &str, times: DedupTimes) -> Result<Claim, StoreError> {
        Ok(self.claim_item(key, owner, times, None, None))
    }

    async fn claim_decided(
        &self,
        key: &str,
        owner: &str,
        reply: Option<&str>,
        times: DedupTimes,
    ) -> Result<Claim, StoreError> {
        Ok(self.claim_item(key, owner, times, None, Some(reply)))
    }

    async fn complete(
        &self,
        key: &str,
        owner: &str,
        reply: Option<&str>,
        times: DedupTimes,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        // Only while still in progress: a job's worker may have stored the reply.
        let Some(item) = inner.dedup.get_mut(key) else {
            return Ok(false);
        };
        if item.completed_by.as_deref() == Some(owner) {
            return Ok(true); // completed by this owner already
        }
        if item.owner != owner || !matches!(item.record, DedupRecord::InProgress { .. }) {
            return Ok(false);
        }
        item.completed_by = Some(owner.to_owned());
        item.record = DedupRecord::Done {
            reply: reply.map(str::to_owned),
        };
        item.expires_at_secs = times.expires_at_secs();
        inner.after_write(times.now_ms);
        Ok(true)
    }

    async fn dedup_record(
        &self,
        key: &str,
        now_ms: EpochMillis,
    ) -> Result<Option<DedupRecord>, StoreError> {
        Ok(self
            .lock()
            .dedup
            .get(key)
            .filter(|i| live(i, now_ms))
            .map(|i| i.visible(now_ms)))
    }
}

impl JobStore for MemoryStore {
    async fn claim_with_job(
        &self,
        key: &str,
        owner: &str,
        times: DedupTimes,
        job: NewJob<'_>,
    ) -> Result<Claim, StoreError> {
        let job = JobItem {
            record: JobRecord {
                state: JobState::Pending,
                app: job.app.to_owned(),
                authorizer_app_id: job.authorizer_app_id.map(str::to_owned),
                message: Some(job.message.to_owned()),
                answer_by_ms: job.answer_by_ms,
                reason: None,
                msgid: None,
            },
            worker: None,
            until_ms: 0,
        };
        Ok(self.claim_item(key, owner, times, Some(job), None))
    }

    async fn take_job(
        &self,
        key: &str,
        worker: &str,
        now_ms: EpochMillis,
        limit_ms: u64,
    ) -> Result<Option<JobRecord>, StoreError> {
        let mut inner = self.lock();
        let Some(job) = inner
            .dedup
            .get_mut(key)
            .filter(|i| live(i, now_ms))
            .and_then(|i| i.job.as_mut())
        else {
            return Ok(None);
        };
        let free = match job.record.state {
            JobState::Pending => true,
            JobState::Running if job.worker.as_deref() == Some(worker) => {
                // Taken by this very worker already: the same take again.
                return Ok(Some(job.record.clone()));
            }
            JobState::Running => job.until_ms < now_ms,
            _ => false,
        };
        if !free {
            return Ok(None);
        }
        job.record.state = JobState::Running;
        job.worker = Some(worker.to_owned());
        job.until_ms = now_ms.saturating_add(limit_ms);
        Ok(Some(job.record.clone()))
    }

    async fn answer_job(
        &self,
        key: &str,
        worker: &str,
        reply: Option<&str>,
        times: DedupTimes,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(item) = inner.dedup.get_mut(key) else {
            return Ok(false);
        };
        if item.held_job(worker, &[JobState::Answered]).is_some() {
            return Ok(true); // answered by this worker already
        }
        let waiting = matches!(item.record, DedupRecord::InProgress { .. });
        let Some(job) = item
            .held_job(worker, &[JobState::Running])
            .filter(|j| waiting && j.record.answer_by_ms >= times.now_ms)
        else {
            return Ok(false);
        };
        job.record.state = JobState::Answered;
        job.record.message = None;
        item.record = DedupRecord::Done {
            reply: reply.map(str::to_owned),
        };
        item.expires_at_secs = times.expires_at_secs();
        Ok(true)
    }

    async fn start_sending(&self, key: &str, worker: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(item) = inner.dedup.get_mut(key) else {
            return Ok(false);
        };
        if item.held_job(worker, &[JobState::Sending]).is_some() {
            return Ok(true); // marked by this worker already
        }
        let Some(job) = item.held_job(worker, &[JobState::Running]) else {
            return Ok(false);
        };
        job.record.state = JobState::Sending;
        job.record.message = None;
        item.give_up_waiting();
        Ok(true)
    }

    async fn end_job(
        &self,
        key: &str,
        worker: &str,
        end: JobEnd<'_>,
        times: DedupTimes,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(item) = inner.dedup.get_mut(key) else {
            return Ok(false);
        };
        if item.held_job(worker, &[end.state()]).is_some() {
            return Ok(true); // ended so by this worker already
        }
        let Some(job) = item.held_job(worker, &[JobState::Running, JobState::Sending]) else {
            return Ok(false);
        };
        job.record.state = end.state();
        if !matches!(end, JobEnd::Failed { .. }) {
            job.record.message = None;
        }
        match end {
            JobEnd::Sent { msgid } => job.record.msgid = msgid.map(str::to_owned),
            JobEnd::Failed { reason } => job.record.reason = Some(reason.to_owned()),
            JobEnd::NoReply => {}
        }
        item.give_up_waiting();
        item.expires_at_secs = times.job_expires_at_secs(end);
        Ok(true)
    }

    async fn job(&self, key: &str, now_ms: EpochMillis) -> Result<Option<JobRecord>, StoreError> {
        Ok(self
            .lock()
            .dedup
            .get(key)
            .filter(|i| live(i, now_ms))
            .and_then(|i| i.job.as_ref())
            .map(|j| j.record.clone()))
    }
}

impl SignatureStore for MemoryStore {
    async fn bind_signature(
        &self,
        key: &str,
        body_hash: &str,
        now_ms: EpochMillis,
        expires_at_secs: u64,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if let Some((bound, expires)) = inner.signatures.get(key)
            && *expires >= now_ms / 1000
        {
            return Ok(bound == body_hash);
        }
        inner
            .signatures
            .insert(key.to_owned(), (body_hash.to_owned(), expires_at_secs));
        inner.after_write(now_ms);
        Ok(true)
    }
}

impl TokenStore for MemoryStore {
    async fn token(&self, key: &str, now_ms: EpochMillis) -> Result<TokenRecord, StoreError> {
        let inner = self.lock();
        let Some(item) = inner.tokens.get(key) else {
            return Ok(TokenRecord::default());
        };
        Ok(TokenRecord {
            token: item.token.clone().filter(|t| t.expires_at_ms > now_ms),
            lease_until_ms: if item.lease_owner.is_some() {
                item.lease_until_ms
            } else {
                0
            },
        })
    }

    async fn take_token_lease(
        &self,
        key: &str,
        owner: &str,
        now_ms: EpochMillis,
        lease_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let item = inner.tokens.entry(key.to_owned()).or_default();
        if item.lease_owner.as_deref() == Some(owner) {
            return Ok(true); // taken by this owner already
        }
        if item.lease_owner.is_some() && item.lease_until_ms >= now_ms {
            return Ok(false);
        }
        item.lease_owner = Some(owner.to_owned());
        item.lease_until_ms = now_ms.saturating_add(lease_ms);
        Ok(true)
    }

    async fn put_token(
        &self,
        key: &str,
        owner: &str,
        token: &CachedToken,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let stored_already = inner.tokens.get(key).is_some_and(|i| {
            i.lease_owner.is_none() && i.token.as_ref().is_some_and(|t| t.value == token.value)
        });
        if stored_already {
            return Ok(true); // stored by this owner already: tokens are unique
        }
        let Some(item) = inner.token_leased_by(key, owner) else {
            return Ok(false);
        };
        item.token = Some(token.clone());
        item.lease_owner = None;
        item.lease_until_ms = 0;
        Ok(true)
    }

    async fn release_token_lease(&self, key: &str, owner: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(item) = inner.token_leased_by(key, owner) else {
            return Ok(false);
        };
        item.lease_owner = None;
        item.lease_until_ms = 0;
        Ok(true)
    }

    async fn drop_token(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(item) = inner
            .tokens
            .get_mut(key)
            .filter(|i| i.token.as_ref().is_some_and(|t| t.value == value))
        else {
            return Ok(false);
        };
        item.token = None;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(now_ms: EpochMillis) -> DedupTimes {
        DedupTimes {
            now_ms,
            lease_ms: 1_000,
            retention_secs: 60,
        }
    }

    #[tokio::test]
    async fn expired_records_are_swept_out_once_a_minute() {
        let store = MemoryStore::new();
        let t0 = 1_800_000_000_000;
        store.claim("a", "o", times(t0)).await.unwrap(); // the first write sweeps: nothing
        store.claim("b", "o", times(t0 + 1_000)).await.unwrap();
        assert_eq!(store.dedup_len(), 2);
        // "a" expires at t0 + 60 s; the next sweep is due from t0 + 60 s.
        store.claim("c", "o", times(t0 + 61_000)).await.unwrap();
        assert_eq!(store.dedup_len(), 2, "a swept, b and c kept");
        // No sweep within the minute after it, even with expired records about.
        store.claim("d", "o", times(t0 + 62_500)).await.unwrap();
        assert_eq!(store.dedup_len(), 3);
    }
}
