//! Exactly-once records and reply jobs on the table.

use super::*;

impl DedupStore for DynamoStore {
    async fn claim(&self, key: &str, owner: &str, times: DedupTimes) -> Result<Claim, StoreError> {
        self.claim_item(key, owner, times, ClaimWith::Nothing).await
    }

    async fn claim_decided(
        &self,
        key: &str,
        owner: &str,
        reply: Option<&str>,
        times: DedupTimes,
    ) -> Result<Claim, StoreError> {
        self.claim_item(key, owner, times, ClaimWith::Reply(reply))
            .await
    }

    async fn complete(
        &self,
        key: &str,
        owner: &str,
        reply: Option<&str>,
        times: DedupTimes,
    ) -> Result<bool, StoreError> {
        let request = self
            .update(key)
            // Only while still in progress: a job's worker may have stored the reply.
            .condition_expression("#owner = :owner AND st = :p")
            .expression_attribute_names("#owner", OWNER)
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":p", s(STATE_IN_PROGRESS))
            .expression_attribute_values(":d", s(STATE_DONE))
            .expression_attribute_values(":exp", n(times.expires_at_secs()));
        // `fin` records who completed it, so this completion, retried, is recognised.
        let request = match reply {
            Some(reply) => request
                .update_expression(
                    "SET st = :d, fin = :owner, expires_at = :exp, reply = :r REMOVE lease_until",
                )
                .expression_attribute_values(":r", self.sealed(key, "reply", reply)),
            None => request.update_expression(
                "SET st = :d, fin = :owner, expires_at = :exp REMOVE lease_until, reply",
            ),
        };
        self.made_or_own(key, request, |item| {
            get_s(item, COMPLETED_BY) == Some(owner) && get_s(item, "st") == Some(STATE_DONE)
        })
        .await
    }

    async fn dedup_record(
        &self,
        key: &str,
        now_ms: EpochMillis,
    ) -> Result<Option<DedupRecord>, StoreError> {
        match self.get(key).await? {
            Some(item) => self.dedup_from_item(key, &item, now_ms),
            None => Ok(None),
        }
    }
}

impl JobStore for DynamoStore {
    async fn claim_with_job(
        &self,
        key: &str,
        owner: &str,
        times: DedupTimes,
        job: NewJob<'_>,
    ) -> Result<Claim, StoreError> {
        self.claim_item(key, owner, times, ClaimWith::Job(job))
            .await
    }

    async fn take_job(
        &self,
        key: &str,
        worker: &str,
        now_ms: EpochMillis,
        limit_ms: u64,
    ) -> Result<Option<JobRecord>, StoreError> {
        let request = self
            .update(key)
            .update_expression("SET job = :running, job_worker = :w, job_until = :until")
            .condition_expression(
                "expires_at >= :now_s AND (job = :pending OR (job = :running AND job_until < :now))",
            )
            .expression_attribute_values(":running", s(JobState::Running.as_str()))
            .expression_attribute_values(":pending", s(JobState::Pending.as_str()))
            .expression_attribute_values(":w", s(worker))
            .expression_attribute_values(":until", n(now_ms.saturating_add(limit_ms)))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":now_s", n(now_ms / 1000))
            // The job as taken comes back with the write: no read after it.
            .return_values(ReturnValue::AllNew);
        match self.conditional(key, request).await? {
            Written::Made(item) => self.job_from_item(key, &item).map(Some),
            // Taken by this worker already (a retried take that had landed).
            Written::ConditionFailed(Some(item)) if held_by(&item, worker, JobState::Running) => {
                self.job_from_item(key, &item).map(Some)
            }
            Written::ConditionFailed(_) => Ok(None),
        }
    }

    async fn answer_job(
        &self,
        key: &str,
        worker: &str,
        reply: Option<&str>,
        times: DedupTimes,
    ) -> Result<bool, StoreError> {
        let request = self
            .update(key)
            .condition_expression(
                "job = :running AND job_worker = :w AND st = :p AND answer_by >= :now",
            )
            .expression_attribute_values(":running", s(JobState::Running.as_str()))
            .expression_attribute_values(":answered", s(JobState::Answered.as_str()))
            .expression_attribute_values(":w", s(worker))
            .expression_attribute_values(":p", s(STATE_IN_PROGRESS))
            .expression_attribute_values(":d", s(STATE_DONE))
            .expression_attribute_values(":now", n(times.now_ms))
            .expression_attribute_values(":exp", n(times.expires_at_secs()));
        let request = match reply {
            Some(reply) => request
                .update_expression(
                    "SET st = :d, job = :answered, expires_at = :exp, reply = :r REMOVE lease_until, msg",
                )
                .expression_attribute_values(":r", self.sealed(key, "reply", reply)),
            None => request.update_expression(
                "SET st = :d, job = :answered, expires_at = :exp REMOVE lease_until, reply, msg",
            ),
        };
        self.made_or_own(key, request, |item| {
            held_by(item, worker, JobState::Answered)
        })
        .await
    }

    async fn start_sending(&self, key: &str, worker: &str) -> Result<bool, StoreError> {
        // The callback is marked answered (empty) too, for its retries: an answer stored by
        // the worker would have ended the job as answered, so there is no reply to lose.
        let request = self
            .update(key)
            .update_expression("SET job = :sending, st = :d REMOVE lease_until, reply, msg")
            .condition_expression("job = :running AND job_worker = :w")
            .expression_attribute_values(":running", s(JobState::Running.as_str()))
            .expression_attribute_values(":sending", s(JobState::Sending.as_str()))
            .expression_attribute_values(":w", s(worker))
            .expression_attribute_values(":d", s(STATE_DONE));
        self.made_or_own(key, request, |item| {
            held_by(item, worker, JobState::Sending)
        })
        .await
    }

    async fn end_job(
        &self,
        key: &str,
        worker: &str,
        end: JobEnd<'_>,
        times: DedupTimes,
    ) -> Result<bool, StoreError> {
        // Running or sending: either way no reply was stored, so `st = d` answers empty.
        let mut set = String::from("SET job = :state, st = :d, expires_at = :exp");
        let mut request = self
            .update(key)
            .condition_expression("job_worker = :w AND (job = :running OR job = :sending)")
            .expression_attribute_values(":state", s(end.state().as_str()))
            .expression_attribute_values(":running", s(JobState::Running.as_str()))
            .expression_attribute_values(":sending", s(JobState::Sending.as_str()))
            .expression_attribute_values(":w", s(worker))
            .expression_attribute_values(":d", s(STATE_DONE))
            .expression_attribute_values(":exp", n(times.job_expires_at_secs(end)));
        match end {
            JobEnd::Sent { msgid: Some(msgid) } => {
                set.push_str(", msgid = :m");
                request = request.expression_attribute_values(":m", s(msgid));
            }
            JobEnd::Failed { reason } => {
                set.push_str(", reason = :why");
                request = request.expression_attribute_values(":why", s(reason));
            }
            JobEnd::Sent { msgid: None } | JobEnd::NoReply => {}
        }
        // A failed job keeps its message for inspection; otherwise it is no longer needed.
        set.push_str(if matches!(end, JobEnd::Failed { .. }) {
            " REMOVE lease_until"
        } else {
            " REMOVE lease_until, msg"
        });
        let request = request.update_expression(set);
        self.made_or_own(key, request, |item| held_by(item, worker, end.state()))
            .await
    }

    async fn job(&self, key: &str, now_ms: EpochMillis) -> Result<Option<JobRecord>, StoreError> {
        let Some(item) = self.get(key).await? else {
            return Ok(None);
        };
        let live = get_n(&item, EXPIRES_AT).is_some_and(|exp| exp >= now_ms / 1000);
        if !live || !item.contains_key(JOB) {
            return Ok(None);
        }
        self.job_from_item(key, &item).map(Some)
    }
}

impl SignatureStore for DynamoStore {
    async fn bind_signature(
        &self,
        key: &str,
        body_hash: &str,
        now_ms: EpochMillis,
        expires_at_secs: u64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(key))
            .item("body", s(body_hash))
            .item(EXPIRES_AT, n(expires_at_secs))
            // New, expired, or bound to this very body: a retry of the request (or of this
            // write) passes.
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now_s OR body = :b")
            .expression_attribute_values(":now_s", n(now_ms / 1000))
            .expression_attribute_values(":b", s(body_hash))
            .send()
            .await;
        condition_held(result)
    }
}
