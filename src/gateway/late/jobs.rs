//! [`LateReplies::AsJobs`](super::LateReplies::AsJobs), the worker side (docs/deferred-replies.md): a
//! callback's claim carried the job, the table's stream handed its key here, and this
//! decides the reply and delivers it, passively through the waiting callback while it still
//! waits, actively after.
//!
//! Every step is one conditional write, so a stream record delivered twice (Lambda retries
//! a failed batch) neither asks the bot twice nor sends twice: the job is taken once, and
//! the send is recorded before it is made.

use std::time::Duration;

use super::send::{Delivery, send_reply};
use super::within_invocation;
use crate::bot::{Bot, Inbound};
use crate::clock::now_ms;
use crate::gateway::Gateway;
use crate::message::{Callback, Message};
use crate::store::{DedupTimes, JobEnd, JobRecord, JobState, JobStore, StoreError, new_owner};

/// Time for the active send after the bot, within the job's time limit: a token fetch and
/// a send with its retries.
const SEND_ALLOWANCE: Duration = Duration::from_secs(30);

/// What became of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobOutcome {
    /// The reply was stored while the callback waited; it answered it passively.
    Answered,
    /// The reply was sent as an active message.
    Sent,
    /// The bot gave no reply.
    NoReply,
    /// The job failed and is kept on its record with the reason.
    Failed(String),
    /// Nothing to do: the job is done or gone (a redelivery).
    Skipped,
    /// Another worker holds the job, within its time limit. The event should be retried.
    Busy,
    /// The store failed; the job may be left half done. The event should be retried.
    StoreUnavailable(String),
}

/// Why a job stopped short of an outcome.
enum Stop {
    /// The job failed, for this reason (kept on its record; no contents, no secrets).
    Failed(String),
    /// The store failed; the job may be left half done.
    Store(StoreError),
}

impl From<String> for Stop {
    fn from(reason: String) -> Self {
        Self::Failed(reason)
    }
}

impl From<&str> for Stop {
    fn from(reason: &str) -> Self {
        Self::Failed(reason.to_owned())
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl<B: Bot> Gateway<B> {
    /// Runs the reply job of the dedup record `key`, within `gateway.deferred_limit_ms`
    /// for the bot plus time to send, and ending before `end_by` (epoch ms; a Lambda
    /// invocation's deadline) so a job cut short is recorded as failed rather than killed.
    pub async fn run_job(
        &self,
        key: &str,
        end_by: Option<crate::clock::EpochMillis>,
    ) -> JobOutcome {
        let worker = new_owner();
        let held = within_invocation(
            Duration::from_millis(self.settings.deferred_limit_ms) + SEND_ALLOWANCE,
            end_by,
        );
        let limit = held.min(Duration::from_millis(self.settings.deferred_limit_ms));
        // An AI bot's stream may be this job: it runs for the platform's window, so with an
        // AI bot configured every job is taken for that long (only a crashed worker's job
        // waits out its hold); a job that is not a stream still runs under `held`.
        let window = self.settings.stream_window();
        let stream_limit = crate::gateway::aibot::job_limit(window, end_by);
        let hold = if self.has_aibot() { stream_limit } else { held };
        let held_ms = crate::clock::millis(hold);
        let job = match self.store.take_job(key, &worker, now_ms(), held_ms).await {
            Ok(Some(job)) => job,
            Ok(None) => return self.not_taken(key).await,
            Err(e) => return unavailable(&e),
        };
        if self.is_aibot(&job.app) {
            return crate::gateway::aibot::stream_job(
                &*self.bot,
                &self.store,
                key,
                &worker,
                &job,
                self.retention_secs,
                window,
                stream_limit,
            )
            .await;
        }
        let outcome = match tokio::time::timeout(held, self.decide_job(key, &worker, &job, limit))
            .await
        {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(Stop::Failed(reason))) => self.fail_job(key, &worker, &job.app, reason).await,
            Ok(Err(Stop::Store(e))) => Err(e),
            Err(_) => {
                let reason = format!("the job missed its time limit of {} ms", held.as_millis());
                self.fail_job(key, &worker, &job.app, reason).await
            }
        };
        outcome.unwrap_or_else(|e| unavailable(&e))
    }

    /// Why a job could not be taken. Lambda redelivers a record only after the invocation
    /// that had it ended, so a job still running under another worker's time limit was most
    /// likely left by a worker that crashed: that is worth a retry (and, once retries run
    /// out, the on-failure queue) rather than silence.
    async fn not_taken(&self, key: &str) -> JobOutcome {
        match self.store.job(key, now_ms()).await {
            Ok(Some(job)) if job.state == JobState::Running => {
                tracing::warn!(
                    app = %job.app,
                    "reply job held by another worker (one that crashed, if this is a retry); the record will be retried"
                );
                JobOutcome::Busy
            }
            Ok(_) => {
                tracing::info!("reply job already finished or gone; nothing to do (a redelivery)");
                JobOutcome::Skipped
            }
            Err(e) => unavailable(&e),
        }
    }

    /// Asks the bot and delivers its reply. `Err` is why the job failed.
    async fn decide_job(
        &self,
        key: &str,
        worker: &str,
        job: &JobRecord,
        limit: Duration,
    ) -> Result<JobOutcome, Stop> {
        let app = self
            .apps
            .get(&job.app)
            .ok_or_else(|| format!("the app `{}` is not configured", job.app))?;
        let stored = job
            .message
            .as_deref()
            .ok_or("the job's message is no longer stored")?;
        let message = match Callback::parse(stored) {
            Ok(Callback::Message(message)) => message,
            Ok(Callback::Info(_)) => return Err("the stored callback is not a message".into()),
            Err(e) => return Err(format!("the stored message cannot be read: {e}").into()),
        };
        let inbound = Inbound {
            app: &app.name,
            platform: app.platform,
            authorizer_app_id: job.authorizer_app_id.as_deref(),
            message: &message,
            id: key,
        };
        let started = tokio::time::Instant::now();
        let asked = tokio::time::timeout(limit, self.bot.reply(&inbound))
            .await
            .unwrap_or_else(|_| Err(super::missed_limit(limit)));
        crate::metrics::latency(
            crate::metrics::Metric::BotLatency,
            &app.name,
            started.elapsed(),
        );
        let reply = asked.map_err(|e| e.to_string())?;
        let bot_ms = crate::clock::millis(started.elapsed());
        let xml = match &reply {
            Some(reply) => Some(
                reply
                    .render(&message, app.platform, crate::clock::unix_now())
                    .map_err(|e| format!("the bot's reply breaks the platform's rules: {e}"))?,
            ),
            None => None,
        };
        // The passive answer is conditional on the callback's `answer_by` lying ahead of the
        // clock by as long as this write may take (the store's longest request, at most a
        // quarter of the budget): a callback that could not record giving up answers empty
        // once `answer_by` has passed, and this write must not land after.
        let mut times = self.job_times();
        let lead = self.store.longest_request().min(self.settings.budget() / 4);
        let lead = crate::clock::millis(lead);
        times.now_ms = times.now_ms.saturating_add(lead);
        match self
            .store
            .answer_job(key, worker, xml.as_deref(), times)
            .await
        {
            Ok(true) => {
                tracing::info!(app = %app.name, bot_ms, reply = reply.as_ref().map_or("none", |r| r.msg_type()), "reply job answered passively");
                return Ok(JobOutcome::Answered);
            }
            Ok(false) => {}
            // Whether it landed is unknown: the send mark below tells (it is refused if the
            // answer landed), so nothing is sent twice.
            Err(e) => {
                tracing::warn!(app = %app.name, cause = %e, "cannot store the reply for the waiting callback; it goes out actively unless the store took it");
            }
        }
        let Some(reply) = reply else {
            tracing::info!(app = %app.name, bot_ms, "the bot gave no reply; nothing to send");
            self.end(key, worker, JobEnd::NoReply).await?;
            return Ok(JobOutcome::NoReply);
        };
        self.send_late(
            key,
            worker,
            app,
            job.authorizer_app_id.as_deref(),
            &message,
            &reply,
            bot_ms,
        )
        .await
    }

    /// Sends a reply the callback no longer waits for, recording the send before making it.
    #[allow(clippy::too_many_arguments)]
    async fn send_late(
        &self,
        key: &str,
        worker: &str,
        app: &crate::gateway::App,
        authorizer: Option<&str>,
        message: &Message,
        reply: &crate::reply::Reply,
        bot_ms: u64,
    ) -> Result<JobOutcome, Stop> {
        let tokens = self.shared_tokens().map_err(|e| e.to_string())?;
        let delivery = Delivery::to_sender(app, message, authorizer, std::sync::Arc::clone(tokens))
            .ok_or("the app has no secret to send an active message with")?;
        match self.store.start_sending(key, worker).await {
            Ok(true) => {}
            // Not this worker's to send: the passive answer landed after all, or another
            // worker took the job over.
            Ok(false) => {
                return Ok(match self.store.job(key, now_ms()).await? {
                    Some(job) if job.state == JobState::Answered => JobOutcome::Answered,
                    _ => JobOutcome::Skipped,
                });
            }
            Err(e) => return Err(Stop::Store(e)),
        }
        let msgid = send_reply(&delivery, reply)
            .await
            .map_err(|e| format!("active message: {e}"))?;
        tracing::info!(app = %app.name, bot_ms, reply = reply.msg_type(), "late reply sent as an active message");
        let sent = JobEnd::Sent {
            msgid: msgid.as_deref(),
        };
        self.end(key, worker, sent).await?;
        Ok(JobOutcome::Sent)
    }

    /// Records a failed job (kept for inspection) and logs why.
    async fn fail_job(
        &self,
        key: &str,
        worker: &str,
        app: &str,
        reason: String,
    ) -> Result<JobOutcome, StoreError> {
        tracing::error!(app, cause = %reason, "reply job failed; kept on its record");
        self.end(key, worker, JobEnd::Failed { reason: &reason })
            .await?;
        Ok(JobOutcome::Failed(reason))
    }

    async fn end(&self, key: &str, worker: &str, end: JobEnd<'_>) -> Result<bool, StoreError> {
        let ended = self
            .store
            .end_job(key, worker, end, self.job_times())
            .await?;
        if !ended {
            tracing::warn!("the reply job was taken over by another worker before it ended");
        }
        Ok(ended)
    }

    fn job_times(&self) -> DedupTimes {
        DedupTimes {
            now_ms: now_ms(),
            lease_ms: 0,
            retention_secs: self.retention_secs,
        }
    }
}

fn unavailable(e: &StoreError) -> JobOutcome {
    tracing::warn!(cause = %e, "store unavailable for a reply job; the event will be retried");
    JobOutcome::StoreUnavailable(e.to_string())
}
