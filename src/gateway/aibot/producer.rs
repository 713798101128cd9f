//! The worker side of an AI bot stream: asks the bot, writes the growing text onto the
//! message's dedup record at a bounded rate, finishes the stream, and sends once through
//! the message's `response_url` what the stream could not show (text past the 20480-byte
//! limit, or an answer that came after the platform's six-minute window).
//!
//! One worker holds the job (taken with a conditional write), and every snapshot is
//! conditional on holding it and on the worker's own sequence number, so a worker that
//! lost the job (it was slow, and another took it over) cannot overwrite the stream, a
//! worker that took it over can, and an attempt that arrives late cannot overwrite a later
//! snapshot; the `response_url` send is recorded before it is made, so it happens at most
//! once.

use std::time::Duration;

use tokio::time::Instant;

use crate::aibot::{AibotCallback, MAX_STREAM_CONTENT_BYTES, STREAM_WINDOW, markdown_message};
use crate::bot::{Bot, Inbound, TextSink};
use crate::clock::{EpochMillis, now_ms, unix_now};
use crate::gateway::JobOutcome;
use crate::platform::Platform;
use crate::reply::truncate_utf8;
use crate::store::{Backend, DedupTimes, JobEnd, JobRecord, JobStore, StreamStore, StreamWrite};

/// How often a snapshot is written at most while the text grows: the platform refreshes
/// about once a second, so a faster rate would only cost writes.
pub(crate) const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(500);
/// The stream is finished this long before the platform's window closes, so the last
/// refresh still finds it finished (less for a short test window: a tenth of it).
const WINDOW_MARGIN: Duration = Duration::from_secs(10);
/// How long the bot may go on after the window, its answer then going through
/// `response_url` (valid an hour; a worker's invocation lasts 15 minutes at most).
const AFTER_WINDOW: Duration = Duration::from_secs(4 * 60);
/// The platform's window at most, for the longest a job can be held.
const _: () = assert!(STREAM_WINDOW.as_secs() == 360);
/// A `response_url` send's time limit.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a `response_url` answer read (`{"errcode":0,"errmsg":"ok"}`).
const RESPONSE_ANSWER_MAX_BYTES: usize = 64 * 1024;

/// Takes the stream job of `key` and runs it: what `serve` does in a task of its own.
pub(crate) async fn run_stream<B: Bot>(
    bot: &B,
    store: &Backend,
    key: &str,
    worker: &str,
    retention_secs: u64,
    window: Duration,
    end_by: Option<EpochMillis>,
) -> JobOutcome {
    let limit = job_limit(window, end_by);
    let held_ms = crate::clock::millis(limit);
    let job = match store.take_job(key, worker, now_ms(), held_ms).await {
        Ok(Some(job)) => job,
        Ok(None) => return JobOutcome::Skipped,
        Err(e) => {
            tracing::warn!(cause = %e, "cannot take the AI bot stream's job");
            return JobOutcome::StoreUnavailable(e.to_string());
        }
    };
    stream_job(bot, store, key, worker, &job, retention_secs, window, limit).await
}

/// The time a stream job may take: the window and the time after it, less if the
/// invocation ends first.
pub(crate) fn job_limit(window: Duration, end_by: Option<EpochMillis>) -> Duration {
    crate::gateway::late::within_invocation(window + AFTER_WINDOW, end_by)
}

/// Runs a stream job `worker` holds.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn stream_job<B: Bot>(
    bot: &B,
    store: &Backend,
    key: &str,
    worker: &str,
    job: &JobRecord,
    retention_secs: u64,
    window: Duration,
    limit: Duration,
) -> JobOutcome {
    let times = || DedupTimes {
        now_ms: now_ms(),
        lease_ms: 0,
        retention_secs,
    };
    let failed = |reason: String| async move {
        tracing::error!(app = %job.app, cause = %reason, "AI bot stream failed");
        let _ = store
            .end_job(key, worker, JobEnd::Failed { reason: &reason }, times())
            .await;
        JobOutcome::Failed(reason)
    };
    let Some(json) = job.message.as_deref() else {
        return failed("the stream's message is no longer stored".into()).await;
    };
    let callback = match AibotCallback::parse(json) {
        Ok(callback) => callback,
        Err(e) => return failed(format!("the stored message cannot be read: {e}")).await,
    };
    let message = callback.to_message(unix_now());
    let inbound = Inbound {
        app: &job.app,
        platform: Platform::Aibot,
        authorizer_app_id: None,
        message: &message,
        id: key,
    };
    let mut snapshots = Snapshots {
        store,
        key,
        worker,
        retention_secs,
        seq: 0,
        shown: None,
    };
    if let Err(reason) = snapshots.write("", false).await {
        return failed(reason).await;
    }
    let started = Instant::now();
    let margin = WINDOW_MARGIN.min(window / 10);
    let window_end = started + window.min(STREAM_WINDOW).saturating_sub(margin).min(limit);
    let (sink, watch) = TextSink::new();
    let asked = tokio::time::timeout_at(started + limit, bot.stream(&inbound, &sink));
    tokio::pin!(asked);
    let mut ticker = tokio::time::interval(SNAPSHOT_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut window_closed = false;
    let answer = loop {
        tokio::select! {
            answer = &mut asked => break answer,
            _ = ticker.tick(), if !window_closed => {
                let text = watch.borrow().clone();
                if let Err(reason) = snapshots.write(&text, false).await {
                    tracing::warn!(app = %job.app, cause = %reason, "a stream snapshot was not stored");
                }
            }
            () = tokio::time::sleep_until(window_end), if !window_closed => {
                // The platform stops asking soon: finish what it shows; the rest follows
                // through response_url.
                window_closed = true;
                let text = watch.borrow().clone();
                if let Err(reason) = snapshots.write(&text, true).await {
                    tracing::warn!(app = %job.app, cause = %reason, "the stream's last snapshot was not stored");
                }
                tracing::info!(app = %job.app, "the AI bot stream reached the platform's window; the answer will follow through response_url");
            }
        }
    };
    let bot_ms = started.elapsed().as_millis();
    let text = match answer {
        Ok(Ok(Some(text))) => text,
        Ok(Ok(None)) => sink.text(),
        Ok(Err(e)) => {
            e.warn(&job.app, window_closed);
            sink.text()
        }
        Err(_) => {
            tracing::warn!(app = %job.app, limit_ms = limit.as_millis(), "the bot missed the stream's time limit");
            sink.text()
        }
    };
    // What the stream cannot show: past the limit, or everything once the window closed.
    let rest = if window_closed {
        text.as_str()
    } else {
        let shown = truncate_utf8(&text, MAX_STREAM_CONTENT_BYTES);
        if let Err(reason) = snapshots.write(shown, true).await {
            tracing::warn!(app = %job.app, cause = %reason, "the stream's last snapshot was not stored");
        }
        &text[shown.len()..]
    };
    tracing::info!(app = %job.app, bot_ms, snapshots = snapshots.seq, "AI bot stream finished");
    if rest.trim().is_empty() {
        let _ = store.end_job(key, worker, JobEnd::NoReply, times()).await;
        return JobOutcome::Answered;
    }
    let Some(url) = callback.response_url.as_deref() else {
        return failed(
            "part of the answer did not fit the stream, and the message has no response_url".into(),
        )
        .await;
    };
    match store.start_sending(key, worker).await {
        Ok(true) => {}
        Ok(false) => return JobOutcome::Skipped,
        Err(e) => return JobOutcome::StoreUnavailable(e.to_string()),
    }
    match send_to_response_url(url, rest).await {
        Ok(()) => {
            tracing::info!(app = %job.app, "the rest of the AI bot's answer sent through response_url");
            let _ = store
                .end_job(key, worker, JobEnd::Sent { msgid: None }, times())
                .await;
            JobOutcome::Sent
        }
        Err(reason) => failed(format!("response_url: {reason}")).await,
    }
}

/// The snapshots one worker writes, each with the next sequence number.
struct Snapshots<'a> {
    store: &'a Backend,
    key: &'a str,
    worker: &'a str,
    retention_secs: u64,
    seq: u64,
    /// The text of the last snapshot stored, to skip writing the same again.
    shown: Option<(String, bool)>,
}

impl Snapshots<'_> {
    async fn write(&mut self, text: &str, finish: bool) -> Result<(), String> {
        let text = truncate_utf8(text, MAX_STREAM_CONTENT_BYTES);
        if self
            .shown
            .as_ref()
            .is_some_and(|(shown, done)| shown == text && *done == finish)
        {
            return Ok(());
        }
        self.seq += 1;
        let write = StreamWrite {
            writer: self.worker,
            seq: self.seq,
            content: text,
            finish,
        };
        let times = DedupTimes {
            now_ms: now_ms(),
            lease_ms: 0,
            retention_secs: self.retention_secs,
        };
        // One retry: the write recognises itself, so a retried write that had landed is
        // still this write.
        let mut result = self.store.put_stream(self.key, write, times).await;
        if result.is_err() {
            result = self.store.put_stream(self.key, write, times).await;
        }
        match result {
            Ok(true) => {
                self.shown = Some((text.to_owned(), finish));
                Ok(())
            }
            Ok(false) => {
                Err("the stream was written by another worker (this one lost the job)".into())
            }
            Err(e) => Err(format!("store: {e}")),
        }
    }
}

/// POSTs `text` as one markdown message to a message's `response_url` (one use).
async fn send_to_response_url(url: &str, text: &str) -> Result<(), String> {
    let url = crate::url_policy::check(url)?;
    let client = crate::http::client_builder()
        .build()
        .map_err(|e| crate::http::error_chain(&e))?;
    let mut response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(markdown_message(text))
        .timeout(RESPONSE_TIMEOUT)
        .send()
        .await
        .map_err(|e| crate::http::error_chain(&e.without_url()))?;
    let status = response.status();
    // Read for its errcode only, and capped: the URL came in the message.
    let body = crate::http::read_capped(&mut response, RESPONSE_ANSWER_MAX_BYTES)
        .await
        .unwrap_or_default();
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    // {"errcode":0,"errmsg":"ok"}; an error code is the platform refusing it.
    let errcode = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("errcode").and_then(serde_json::Value::as_i64))
        .unwrap_or(0);
    if errcode != 0 {
        return Err(format!("the platform answered errcode {errcode}"));
    }
    Ok(())
}
