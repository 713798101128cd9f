//! The AI bot's callbacks (`platform = "aibot"`, `/aibot/{app}`): open the JSON envelope
//! with the same checks as every callback (signature first, replay window, then
//! decryption), then answer by kind:
//!
//! * a message a local rule answers: a finished stream carrying the rule's text, at once,
//!   with no store request (the answer is the same for every delivery);
//! * any other message: a stream is opened. Its id is derived from the message's `msgid`,
//!   so every delivery of the message gets the same one. The first delivery claims the
//!   message with a reply job on its dedup record; the job's worker (the table's stream on
//!   Lambda, a task of this process in `serve`) asks the bot and writes the growing text
//!   onto that record. A later delivery answers the stream as it stands;
//! * a refresh callback: the stream as stored, read only; an unknown stream finished;
//! * `enter_chat`: the `enter_chat` rule's welcome text, or nothing; other events: nothing.

mod media;
mod producer;

use std::sync::Arc;

use tokio::time::Instant;

use super::open::{Plaintext, timestamp_and_nonce};
use super::request::CallbackQuery;
use super::response::{APPLICATION_JSON, CallbackResponse};
use super::seal::json_envelope;
use super::{App, Gateway, Late, Rejection};
use crate::aibot::{
    AibotBody, AibotCallback, AibotEvent, ReplyEnvelope, StreamSnapshot, stream_reply, text_reply,
};
use crate::bot::{Bot, Inbound, Triage};
use crate::clock::{now_ms, unix_now};
use crate::metrics::{self, Kind, Outcome};
use crate::reply::Reply;
use crate::store::{
    Claim, DedupTimes, JobStore, MAX_JOB_MESSAGE_BYTES, NewJob, StoredStream, StreamStore,
    aibot_key, new_owner,
};
pub use media::{MAX_MEDIA_BYTES, MediaError};
pub(crate) use producer::{job_limit, run_stream, stream_job};

impl<B: Bot> Gateway<B> {
    /// A POSTed AI bot callback: open, answer, seal.
    pub(super) async fn aibot_callback(
        self: &Gateway<B>,
        app: &App,
        query: &CallbackQuery<'_>,
        body: &[u8],
        deadline: Instant,
    ) -> Result<CallbackResponse, Rejection> {
        // The same checks as every callback: signature first, replay window, decryption.
        let Plaintext::Decrypted { crypt, opened } = self.open(app, query, body, deadline).await?
        else {
            // `open` decrypts every AI bot callback: the bot has no plaintext mode.
            return Err(Rejection::bad_request(
                "an AI bot callback is always encrypted",
            ));
        };
        let (_, nonce) = timestamp_and_nonce(query)?;
        let json = opened.frame.message_str()?;
        let callback = AibotCallback::parse(json)?;
        let (kind, answer) = self.aibot_answer(app, &callback, json, deadline).await?;
        let outcome = if answer.is_some() {
            Outcome::Answered
        } else {
            Outcome::Empty
        };
        metrics::callback(Some(&app.name), app.platform.as_str(), kind, outcome);
        let Some(answer) = answer else {
            return Ok(CallbackResponse::empty());
        };
        // The reply carries the callback's own nonce, as the platform's samples do.
        match json_envelope(crypt, opened.key, &answer, ReplyEnvelope::Aibot, nonce) {
            Ok(sealed) => Ok(CallbackResponse::ok(APPLICATION_JSON, sealed)),
            Err(e) => {
                tracing::error!(app = %app.name, code = e.code() as i32, cause = %e, "cannot encrypt the reply; answering empty");
                Ok(CallbackResponse::empty())
            }
        }
    }

    /// The plaintext answer to a callback, and what kind of callback it was.
    async fn aibot_answer(
        &self,
        app: &App,
        callback: &AibotCallback,
        json: &str,
        deadline: Instant,
    ) -> Result<(Kind, Option<String>), Rejection> {
        match &callback.body {
            AibotBody::Refresh { stream_id } => {
                let answer = self.refresh(app, stream_id, deadline).await?;
                Ok((Kind::Message, Some(answer)))
            }
            AibotBody::Event(event) => {
                let message = callback.to_message(unix_now());
                let answer = match event {
                    // Only a text welcome may answer it; a rule's other reply types cannot.
                    AibotEvent::EnterChat => {
                        let key = aibot_key(&app.name, &callback.msgid);
                        match self.triage(app, &key, &message) {
                            Triage::Known(Some(Reply::Text { content })) => {
                                Some(text_reply(&content))
                            }
                            _ => None,
                        }
                    }
                    // A card update or feedback wants nothing this gateway can give yet.
                    _ => None,
                };
                tracing::info!(app = %app.name, event = %event.name(), "AI bot event");
                Ok((Kind::Event, answer))
            }
            _ => {
                let answer = self.open_stream(app, callback, json, deadline).await;
                Ok((Kind::Message, Some(answer)))
            }
        }
    }

    /// What the bot knows of a message at once; `key` is its dedup key.
    fn triage(&self, app: &App, key: &str, message: &crate::message::Message) -> Triage {
        self.bot.triage(&Inbound {
            app: &app.name,
            platform: app.platform,
            authorizer_app_id: None,
            message,
            id: key,
        })
    }

    /// A message's answer: a rule's text as a finished stream, or a stream opened for the
    /// bot (claimed once; a later delivery answers the stream as it stands).
    async fn open_stream(
        &self,
        app: &App,
        callback: &AibotCallback,
        json: &str,
        deadline: Instant,
    ) -> String {
        let stream_id = crate::aibot::stream_id_of(&callback.msgid);
        let key = aibot_key(&app.name, &callback.msgid);
        let message = callback.to_message(unix_now());
        match self.triage(app, &key, &message) {
            Triage::Known(reply) => {
                let content = match reply {
                    Some(Reply::Text { content }) => content,
                    Some(other) => {
                        tracing::warn!(app = %app.name, reply = other.msg_type(), "an AI bot shows text only; this rule's reply is not text, answering a finished empty stream");
                        String::new()
                    }
                    None => String::new(),
                };
                tracing::info!(app = %app.name, "AI bot message answered by a rule");
                return stream_reply(&stream_id, &StreamSnapshot::finished(content));
            }
            Triage::Ask => {}
        }
        let opened = stream_reply(&stream_id, &StreamSnapshot::default());
        if json.len() > MAX_JOB_MESSAGE_BYTES {
            tracing::warn!(app = %app.name, len = json.len(), "the message is too large to keep for its stream; answering a finished empty stream");
            return stream_reply(&stream_id, &StreamSnapshot::finished(String::new()));
        }
        let owner = new_owner();
        let times = DedupTimes {
            now_ms: now_ms(),
            lease_ms: crate::clock::millis(self.settings.budget()),
            retention_secs: self.retention_secs,
        };
        let job = NewJob {
            app: &app.name,
            authorizer_app_id: None,
            message: json,
            // Nothing waits for a passive answer: the stream is the answer.
            answer_by_ms: times.now_ms,
        };
        let claim = tokio::time::timeout_at(
            deadline,
            self.store.claim_with_job(&key, &owner, times, job),
        )
        .await;
        match claim {
            Ok(Ok(Claim::Won)) => {
                tracing::info!(app = %app.name, "AI bot stream opened");
                if !matches!(self.late, Late::AsJobs) {
                    // No table stream starts a worker here: this process is the worker.
                    self.spawn_stream(&key);
                }
                opened
            }
            Ok(Ok(_)) => {
                // Another delivery opened it: the stream as it stands.
                let read = tokio::time::timeout_at(deadline, self.store.stream(&key, now_ms()));
                match read.await {
                    Ok(Ok(Some(stored))) => {
                        stream_reply(&stream_id, &visible(&stored, self.settings.stream_window()))
                    }
                    _ => opened,
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(app = %app.name, store = self.store.kind(), cause = %e, "cannot open the AI bot stream in the store; answering a finished empty stream");
                stream_reply(&stream_id, &StreamSnapshot::finished(String::new()))
            }
            Err(_) => {
                tracing::warn!(app = %app.name, store = self.store.kind(), "opening the AI bot stream timed out; answering a finished empty stream");
                stream_reply(&stream_id, &StreamSnapshot::finished(String::new()))
            }
        }
    }

    /// A refresh: the stream as stored (reads only).
    async fn refresh(
        &self,
        app: &App,
        stream_id: &str,
        deadline: Instant,
    ) -> Result<String, Rejection> {
        let Some(msgid) = crate::aibot::msgid_of(stream_id) else {
            tracing::info!(app = %app.name, "refresh of a stream this gateway did not open; answering it finished");
            return Ok(stream_reply(
                stream_id,
                &StreamSnapshot::finished(String::new()),
            ));
        };
        let key = aibot_key(&app.name, &msgid);
        let read = tokio::time::timeout_at(deadline, self.store.stream(&key, now_ms())).await;
        match read {
            Ok(Ok(Some(stored))) => Ok(stream_reply(
                stream_id,
                &visible(&stored, self.settings.stream_window()),
            )),
            Ok(Ok(None)) => {
                tracing::info!(app = %app.name, "refresh of an unknown or expired stream; answering it finished");
                Ok(stream_reply(
                    stream_id,
                    &StreamSnapshot::finished(String::new()),
                ))
            }
            // The platform asks again: a refresh it missed costs nothing.
            Ok(Err(_)) | Err(_) => Err(Rejection::StoreUnavailable),
        }
    }

    /// Whether `app` is a configured AI bot app (its jobs are streams).
    pub(super) fn is_aibot(&self, app: &str) -> bool {
        self.apps
            .get(app)
            .is_some_and(|app| app.platform == crate::platform::Platform::Aibot)
    }

    /// Whether any configured app is an AI bot.
    pub(super) fn has_aibot(&self) -> bool {
        self.apps
            .values()
            .any(|app| app.platform == crate::platform::Platform::Aibot)
    }

    /// Runs a stream's job in this process.
    fn spawn_stream(&self, key: &str) {
        let bot = Arc::clone(&self.bot);
        let store = Arc::clone(&self.store);
        let key = key.to_owned();
        let retention_secs = self.retention_secs;
        let window = self.settings.stream_window();
        tokio::spawn(async move {
            let worker = new_owner();
            run_stream(&*bot, &store, &key, &worker, retention_secs, window, None).await;
        });
    }
}

/// What a stored stream shows: finished once the platform's window has passed, since no
/// refresh comes after it (a worker that died leaves it unfinished).
fn visible(stored: &StoredStream, window: std::time::Duration) -> StreamSnapshot {
    let window_ms = crate::clock::millis(window);
    let expired = stored
        .started_ms
        .is_some_and(|started| now_ms() > started.saturating_add(window_ms));
    StreamSnapshot {
        content: stored.content.clone(),
        finish: stored.finish || expired,
    }
}
