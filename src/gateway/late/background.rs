//! [`LateReplies::InBackground`](super::LateReplies::InBackground): a bot that misses the
//! budget finishes in the background, and its reply goes out as an active message.
//!
//! Only where the process keeps running after it answers (`wxgate serve`, a gateway built
//! in code); a Lambda function is frozen once it answers. The callback itself records the
//! empty answer at the budget, so the platform's retries neither start the bot again nor
//! cause a second message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::send::{Delivery, send_reply};
use crate::bot::{BotError, Inbound};
use crate::message::Message;
use crate::platform::Platform;
use crate::reply::Reply;

/// Late replies running in the background, bounded: a server under a flood of slow upstream calls must not
/// grow without limit, and at shutdown it waits for them (their callbacks were answered
/// empty and recorded so, the reply is owed) and names those it cannot wait for.
#[derive(Debug)]
pub(crate) struct InFlight {
    permits: Arc<Semaphore>,
    capacity: u32,
    next: AtomicU64,
    /// App and dedup key of each one in flight, for the shutdown report.
    pending: Arc<Mutex<HashMap<u64, (String, String)>>>,
}

/// One late reply's place; given back when dropped.
pub(crate) struct LateReplySlot {
    id: u64,
    pending: Arc<Mutex<HashMap<u64, (String, String)>>>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for LateReplySlot {
    fn drop(&mut self) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl InFlight {
    /// At most `capacity` late replies at once.
    pub fn new(capacity: u32) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
            next: AtomicU64::new(0),
            pending: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A place for the late reply to the callback `key` of `app`, if one is free.
    pub fn start(&self, app: &str, key: &str) -> Option<LateReplySlot> {
        let permit = Arc::clone(&self.permits).try_acquire_owned().ok()?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, (app.to_owned(), key.to_owned()));
        Some(LateReplySlot {
            id,
            pending: Arc::clone(&self.pending),
            _permit: permit,
        })
    }

    /// Waits up to `limit` for every late reply in flight; returns how many were not done
    /// in time, after naming each (app and callback key, never contents) in a warning.
    pub async fn finish(&self, limit: Duration) -> usize {
        let all = Arc::clone(&self.permits).acquire_many_owned(self.capacity);
        if tokio::time::timeout(limit, all).await.is_ok() {
            return 0;
        }
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect::<Vec<_>>();
        for (app, key) in &pending {
            tracing::warn!(app = %app, key = %key, "shutting down: a late reply still running is abandoned; its callback was answered empty");
        }
        pending.len()
    }
}

/// Waits for the bot (at most `limit` in all) and sends what it answers, holding `slot`.
pub(crate) async fn deliver_late(
    bot: JoinHandle<Result<Option<Reply>, BotError>>,
    delivery: Delivery,
    limit: Duration,
    _slot: LateReplySlot,
) {
    let app = delivery.app.as_str();
    let reply = match tokio::time::timeout(limit, bot).await {
        Ok(Ok(Ok(Some(reply)))) => reply,
        Ok(Ok(Err(e))) => {
            e.warn(app, true);
            return;
        }
        Ok(Ok(Ok(None))) => {
            tracing::info!(app, "the late bot gave no reply; nothing to send");
            return;
        }
        Ok(Err(e)) => {
            tracing::error!(app, cause = %e, "the late bot failed; nothing sent");
            return;
        }
        Err(_) => {
            // Dropping the handle does not stop the task; it was spawned with the same
            // limit, so it ends by itself.
            tracing::warn!(
                app,
                limit_ms = limit.as_millis() as u64,
                "the late bot missed the deferred-reply limit; nothing sent"
            );
            return;
        }
    };
    match send_reply(&delivery, &reply).await {
        Ok(_) => tracing::info!(
            app,
            reply = reply.msg_type(),
            "late reply sent as an active message"
        ),
        Err(reason) => tracing::warn!(app, cause = %reason, "the late reply could not be sent"),
    }
}

/// The message a spawned bot task owns (the callback's borrow ends with the answer).
pub(crate) struct OwnedInbound {
    pub app: String,
    pub platform: Platform,
    pub authorizer_app_id: Option<String>,
    pub message: Message,
    pub id: String,
}

impl From<&Inbound<'_>> for OwnedInbound {
    fn from(inbound: &Inbound<'_>) -> Self {
        Self {
            app: inbound.app.to_owned(),
            platform: inbound.platform,
            authorizer_app_id: inbound.authorizer_app_id.map(str::to_owned),
            message: inbound.message.clone(),
            id: inbound.id.to_owned(),
        }
    }
}

impl OwnedInbound {
    pub fn inbound(&self) -> Inbound<'_> {
        Inbound {
            app: &self.app,
            platform: self.platform,
            authorizer_app_id: self.authorizer_app_id.as_deref(),
            message: &self.message,
            id: &self.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn late_replies_are_bounded_and_waited_for() {
        let late = InFlight::new(2);
        let a = late.start("demo", "dedup#demo#msg|1").unwrap();
        let b = late.start("demo", "dedup#demo#msg|2").unwrap();
        assert!(
            late.start("demo", "dedup#demo#msg|3").is_none(),
            "at most two"
        );
        drop(a);
        let c = late.start("demo", "dedup#demo#msg|3").unwrap();
        // Two still running: shutdown waits, then names them.
        assert_eq!(late.finish(Duration::from_millis(50)).await, 2);
        drop((b, c));
        assert_eq!(late.finish(Duration::from_millis(50)).await, 0);
    }
}
