//! Deferred replies: a bot that misses the budget finishes in the background, and its reply
//! goes out as an active message (WeCom app message, MP customer message).
//!
//! Only where the process keeps running after it answers (`wxgate serve`, a gateway built
//! in code). A Lambda function is frozen once it answers; there slow replies run as reply
//! jobs instead (`worker.rs`, docs/deferred-replies.md), which send through
//! [`send_reply`] too.
//!
//! The callback itself records the empty answer at the budget, so the platform's retries
//! neither start the bot again nor cause a second message.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::message::Message;
use crate::platform::Platform;
use crate::reply::Reply;
use crate::store::Backend;
use crate::wechat::{Article, Messenger, MpMessage, TokenProvider, TokenSource, WecomMessage};

/// Where and how a late reply is delivered.
pub(crate) struct Delivery {
    pub app: String,
    pub platform: Platform,
    /// WeCom: the app's AgentId.
    pub agent_id: Option<u64>,
    pub source: TokenSource,
    pub tokens: Arc<TokenProvider<Backend>>,
    /// The sender of the message: the recipient of the reply.
    pub to: String,
}

/// Waits for the bot (at most `limit` in all) and sends what it answers.
pub(crate) async fn deliver_late(
    bot: JoinHandle<Option<Reply>>,
    delivery: Delivery,
    limit: Duration,
) {
    let app = delivery.app.as_str();
    let reply = match tokio::time::timeout(limit, bot).await {
        Ok(Ok(Some(reply))) => reply,
        Ok(Ok(None)) => {
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

/// How long WeCom drops a repeat of a late reply (`enable_duplicate_check`): long enough to
/// cover the send's retries (5 s at most), short enough that a bot answering the same text
/// to the same member twice a minute apart is not silenced.
const LATE_REPLY_DUPLICATE_CHECK: Duration = Duration::from_secs(60);

/// Sends `reply` to the sender as an active message, at most once: a WeCom send whose answer
/// was lost is retried under WeCom's duplicate check; an Official Account send only when it
/// cannot have been delivered. Returns the platform's message id (WeCom), or why it was not
/// sent (no message contents: the reason may be stored).
pub(crate) async fn send_reply(
    delivery: &Delivery,
    reply: &Reply,
) -> Result<Option<String>, String> {
    let messenger =
        Messenger::new(&delivery.tokens).with_duplicate_check(LATE_REPLY_DUPLICATE_CHECK);
    let receipt = match (delivery.platform, delivery.agent_id) {
        (Platform::Wecom, Some(agent_id)) => match wecom_message(reply) {
            Some(message) => {
                messenger
                    .send_wecom(&delivery.source, agent_id, &delivery.to, &message)
                    .await
            }
            None => return Err(unsendable(reply)),
        },
        (Platform::Mp, _) => match mp_message(reply) {
            Some(message) => {
                messenger
                    .send_mp(&delivery.source, &delivery.to, &message)
                    .await
            }
            None => return Err(unsendable(reply)),
        },
        _ => {
            return Err(format!(
                "{} apps cannot send active messages",
                delivery.platform.as_str()
            ));
        }
    };
    receipt.map(|r| r.msgid).map_err(|e| match e.api_error() {
        Some(api) if api.may_have_taken_effect() => format!(
            "{api}; the platform may have delivered it, so it is not sent again"
        ),
        _ => e.to_string(),
    })
}

fn unsendable(reply: &Reply) -> String {
    format!(
        "a `{}` reply cannot be sent as an active message",
        reply.msg_type()
    )
}

fn wecom_message(reply: &Reply) -> Option<WecomMessage> {
    match reply {
        Reply::Text { content } => Some(WecomMessage::text(content.clone())),
        Reply::News { articles } => Some(WecomMessage::news(
            articles.iter().map(active_article).collect(),
        )),
        _ => None,
    }
}

fn mp_message(reply: &Reply) -> Option<MpMessage> {
    match reply {
        Reply::Text { content } => Some(MpMessage::text(content.clone())),
        Reply::News { articles } => articles.first().map(|a| MpMessage::news(active_article(a))),
        _ => None,
    }
}

fn active_article(a: &crate::reply::Article) -> Article {
    let mut article = Article::new(a.title.clone(), a.url.clone());
    if !a.description.is_empty() {
        article = article.description(a.description.clone());
    }
    if !a.pic_url.is_empty() {
        article = article.picurl(a.pic_url.clone());
    }
    article
}

/// The message a spawned bot task owns (the callback's borrow ends with the answer).
pub(crate) struct OwnedInbound {
    pub app: String,
    pub platform: Platform,
    pub authorizer_app_id: Option<String>,
    pub message: Message,
}

impl OwnedInbound {
    pub fn inbound(&self) -> crate::bot::Inbound<'_> {
        crate::bot::Inbound {
            app: &self.app,
            platform: self.platform,
            authorizer_app_id: self.authorizer_app_id.as_deref(),
            message: &self.message,
        }
    }
}
