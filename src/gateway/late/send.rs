//! Sending a reply the callback could no longer carry, as an active message (WeCom app
//! message, Official Account customer message): for late replies in the background and for
//! reply jobs alike.

use std::sync::Arc;
use std::time::Duration;

use super::super::App;
use crate::message::Message;
use crate::platform::Platform;
use crate::reply::Reply;
use crate::wechat::{Messenger, MpMessage, TokenProvider, TokenSource, WecomMessage};

/// Where and how a late reply is delivered.
pub(crate) struct Delivery {
    pub app: String,
    pub platform: Platform,
    /// WeCom: the app's AgentId.
    pub agent_id: Option<u64>,
    pub source: TokenSource,
    pub tokens: Arc<TokenProvider>,
    /// The sender of the message: the recipient of the reply.
    pub to: String,
}

/// How long WeCom drops a repeat of a late reply (`enable_duplicate_check`): long enough to
/// cover the send's retries (5 s at most), short enough that a bot answering the same text
/// to the same member twice a minute apart is not silenced.
const LATE_REPLY_DUPLICATE_CHECK: Duration = Duration::from_secs(60);

impl Delivery {
    /// To the sender of `message`, from `app` (an Open Platform app: from the authorized
    /// account `authorizer`, with its token); `None` when the app has no secret to send
    /// with.
    pub fn to_sender(
        app: &App,
        message: &Message,
        authorizer: Option<&str>,
        tokens: Arc<TokenProvider>,
    ) -> Option<Self> {
        let source = app.token_source.as_ref()?;
        let source = match (app.platform, authorizer) {
            (Platform::Open, Some(authorizer)) => source.authorizer(authorizer)?,
            (Platform::Open, None) => return None,
            _ => source.clone(),
        };
        Some(Self {
            app: app.name.clone(),
            platform: app.platform,
            agent_id: app.agent_id,
            source,
            tokens,
            to: message.from_user_name.clone(),
        })
    }
}

/// Sends `reply` to the sender as an active message, at most once: a WeCom send whose answer
/// was lost is retried under WeCom's duplicate check; an Official Account send only when it
/// cannot have been delivered. Returns the platform's message id (WeCom), or why it was not
/// sent (no message contents: the reason may be stored). Counted as a late reply sent or
/// failed.
pub(crate) async fn send_reply(
    delivery: &Delivery,
    reply: &Reply,
) -> Result<Option<String>, String> {
    let sent = send(delivery, reply).await;
    let metric = match sent {
        Ok(_) => crate::metrics::Metric::LateRepliesSent,
        Err(_) => crate::metrics::Metric::LateRepliesFailed,
    };
    crate::metrics::count(metric, &delivery.app);
    sent
}

async fn send(delivery: &Delivery, reply: &Reply) -> Result<Option<String>, String> {
    let messenger =
        Messenger::new(&delivery.tokens).with_duplicate_check(LATE_REPLY_DUPLICATE_CHECK);
    let receipt = match (delivery.platform, delivery.agent_id) {
        (Platform::Wecom, Some(agent_id)) => match WecomMessage::from_reply(reply) {
            Some(message) => {
                messenger
                    .send_wecom(&delivery.source, agent_id, &delivery.to, &message)
                    .await
            }
            None => return Err(unsendable(reply)),
        },
        // An Open Platform account's customer message, with the authorizer's token.
        (Platform::Mp | Platform::Open, _) => match MpMessage::from_reply(reply) {
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
        Some(api) if api.may_have_taken_effect() => {
            format!("{api}; the platform may have delivered it, so it is not sent again")
        }
        _ => e.to_string(),
    })
}

fn unsendable(reply: &Reply) -> String {
    format!(
        "a `{}` reply cannot be sent as an active message",
        reply.msg_type()
    )
}
