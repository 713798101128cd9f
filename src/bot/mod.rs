//! What to answer: the [`Bot`] trait, and [`ConfigBot`], the rules from the config file.
//!
//! A bot sees a verified, decrypted, parsed message and returns a [`Reply`] or nothing. It
//! runs inside the gateway's time budget, so a slow bot costs a missing (or later, active)
//! reply, never a platform retry storm; platform notices reach it through [`Bot::notice`].

pub mod forward;
pub mod llm;
mod observed;
pub mod rules;
pub mod stream;

use std::collections::HashMap;
use std::future::Future;

use crate::config::{Config, ConfigError};
use crate::message::{InfoEvent, Message};
use crate::platform::Platform;
use crate::reply::{Reply, WECOM_TEXT_MAX_BYTES, truncate_utf8};
pub use forward::{ForwardError, Upstream, UpstreamClient, verify_signature, verify_signature_at};
pub use llm::{Llm, LlmError};
pub use rules::Rules;

/// A message on its way to a bot, with where it came from.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Inbound<'a> {
    /// The configured app's name.
    pub app: &'a str,
    /// Its platform; replies must follow this platform's rules.
    pub platform: Platform,
    /// Open Platform: the authorized account (`$APPID$` in the URL) the message is for.
    pub authorizer_app_id: Option<&'a str>,
    /// The message or event.
    pub message: &'a Message,
    /// The same for every delivery of this callback (the platform retries), different for
    /// every other callback: the gateway's dedup key, for a bot to de-duplicate by.
    pub id: &'a str,
}

impl<'a> Inbound<'a> {
    /// `message` for `app` of `platform`, under the callback's dedup key `id`, with no
    /// authorizer (an Open Platform message has one: [`for_authorizer`](Self::for_authorizer)):
    /// for bots in code and their tests, which ask a [`Bot`] directly.
    pub fn new(app: &'a str, platform: Platform, message: &'a Message, id: &'a str) -> Self {
        Self {
            app,
            platform,
            authorizer_app_id: None,
            message,
            id,
        }
    }

    /// The same message, for this authorized account.
    #[must_use]
    pub fn for_authorizer(mut self, authorizer_app_id: &'a str) -> Self {
        self.authorizer_app_id = Some(authorizer_app_id);
        self
    }
}

/// A platform notice (`InfoType`) on its way to a bot: the Open Platform's
/// `component_verify_ticket` every ten minutes, authorizations given, changed or revoked.
/// The platform wants nothing back but `success`, which the gateway answers.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Notice<'a> {
    /// The configured app's name.
    pub app: &'a str,
    /// Its platform.
    pub platform: Platform,
    /// The notice.
    pub info: &'a InfoEvent,
}

/// Why a bot gave no reply (an upstream that failed, …): logged, and kept on a reply job's
/// record for inspection. It must hold no message contents and no secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct BotError {
    reason: String,
    status: Option<u16>,
}

impl BotError {
    /// A failure for this reason.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            status: None,
        }
    }

    /// With the HTTP status the bot's backend answered, logged as a field of its own.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The HTTP status the bot's backend answered, when there was one.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The one warning for a reply that is not there: the app, the cause, the status.
    pub(crate) fn warn(&self, app: &str, late: bool) {
        let outcome = if late {
            "the late bot gave no reply; nothing sent"
        } else {
            "the bot gave no reply; answering empty"
        };
        match self.status {
            Some(status) => tracing::warn!(app, status, cause = %self, "{outcome}"),
            None => tracing::warn!(app, cause = %self, "{outcome}"),
        }
    }
}

/// Decides the passive reply to a message.
///
/// Implement it for a bot written in code and hand it to
/// [`GatewayBuilder::bot`](crate::gateway::GatewayBuilder::bot); see
/// `examples/custom_bot.rs`. Only [`reply`](Self::reply) is required. Report-only events
/// (LOCATION, VIEW, unsubscribe, …) never reach a bot.
pub trait Bot: Send + Sync + 'static {
    /// The reply, `Ok(None)` for an empty answer, or why there is none.
    ///
    /// It runs under the gateway's time budget; what becomes of a reply later than that is
    /// the gateway's [`LateReplies`](crate::gateway::LateReplies). A reply is checked against
    /// the platform's rules before it is sent; one that breaks them is logged and replaced
    /// by an empty answer.
    fn reply(
        &self,
        inbound: &Inbound<'_>,
    ) -> impl Future<Output = Result<Option<Reply>, BotError>> + Send;

    /// What the bot knows of the reply before it is asked: [`Triage::Known`] when it has it
    /// at once and deciding it had no side effects (a local rule). The gateway then records
    /// it with the callback's claim in one store write, never asks [`reply`](Self::reply)
    /// nor hands the message to a worker, and a concurrent copy of the callback may decide
    /// it too and answer the copy recorded first. [`Triage::Ask`] (the default) when `reply`
    /// may have to wait or has effects (an upstream call): the callback is claimed first,
    /// so `reply` runs once.
    fn triage(&self, inbound: &Inbound<'_>) -> Triage {
        let _ = inbound;
        Triage::Ask
    }

    /// Streams the reply to a message of a platform that shows text as it grows (the WeCom
    /// AI bot, `platform = "aibot"`): `text` is given the whole text so far each time it
    /// grows, and the final text is returned (`Ok(None)`: no reply). The gateway keeps the
    /// latest text where every instance can read it and answers the platform's refresh
    /// callbacks with it. It runs in the background (a reply job on Lambda), up to the
    /// platform's window, not under the callback's budget.
    ///
    /// The default asks [`reply`](Self::reply) and streams a text reply's content at once.
    fn stream(
        &self,
        inbound: &Inbound<'_>,
        text: &TextSink,
    ) -> impl Future<Output = Result<Option<String>, BotError>> + Send {
        async move {
            let reply = self.reply(inbound).await?;
            let content = match reply {
                Some(Reply::Text { content }) => Some(content),
                _ => None,
            };
            if let Some(content) = &content {
                text.set(content);
            }
            Ok(content)
        }
    }

    /// A platform notice. The default ignores it; the callback is answered `success`
    /// either way, within the budget.
    fn notice(&self, notice: &Notice<'_>) -> impl Future<Output = ()> + Send {
        let _ = notice;
        async {}
    }
}

/// Where a streaming bot puts its text as it grows ([`Bot::stream`]): each call replaces
/// the whole text so far. Whoever holds the [`TextWatch`] sees the latest text; nothing
/// waits on a slow reader.
#[derive(Debug)]
pub struct TextSink(tokio::sync::watch::Sender<String>);

/// The reading half of a [`TextSink`].
pub type TextWatch = tokio::sync::watch::Receiver<String>;

impl TextSink {
    /// A sink and the watch that reads it.
    pub fn new() -> (Self, TextWatch) {
        let (sender, watch) = tokio::sync::watch::channel(String::new());
        (Self(sender), watch)
    }

    /// Replaces the text so far with `full`.
    pub fn set(&self, full: &str) {
        self.0.send_if_modified(|text| {
            if text == full {
                return false;
            }
            full.clone_into(text);
            true
        });
    }

    /// Appends `delta` to the text so far.
    pub fn push(&self, delta: &str) {
        if delta.is_empty() {
            return;
        }
        self.0.send_modify(|text| text.push_str(delta));
    }

    /// The text so far.
    pub fn text(&self) -> String {
        self.0.borrow().clone()
    }
}

/// What a bot knows of a reply before it is asked; see [`Bot::triage`].
#[derive(Debug)]
pub enum Triage {
    /// This reply, known at once without side effects (a local rule, or none).
    Known(Option<Reply>),
    /// Ask [`Bot::reply`], which may take its time.
    Ask,
}

/// The bot made of each app's `[apps.reply]` rules, and of the upstream bots of the apps
/// that `forward` what the rules do not answer, or ask an `llm`.
#[derive(Debug, Default)]
pub struct ConfigBot {
    rules: HashMap<String, Rules>,
    askers: HashMap<String, Asker>,
    /// One client for every app's upstream, built on the first upstream call.
    client: UpstreamClient,
}

impl ConfigBot {
    /// Compiles every app's rules and reads their `forward_secret`s and `llm_api_key`s.
    ///
    /// # Errors
    /// [`ConfigError::App`] naming the app and the variable, when a `forward_secret` or an
    /// `llm_api_key` cannot be read (`env:NAME` unset or empty).
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let mut bot = Self::local(config);
        for app in &config.apps {
            // The config allows `forward` or `llm`, not both.
            let asker = match Upstream::from_config(app, &config.gateway)? {
                Some(upstream) => Some(Asker::Forward(upstream)),
                None => Llm::from_config(app, &config.gateway)?.map(Asker::Llm),
            };
            if let Some(asker) = asker {
                bot.askers.insert(app.name.clone(), asker);
            }
        }
        Ok(bot)
    }

    fn local(config: &Config) -> Self {
        Self {
            rules: config
                .apps
                .iter()
                .map(|app| (app.name.clone(), Rules::compile(&app.reply, app.platform)))
                .collect(),
            ..Self::default()
        }
    }

    /// The answer the local rules give, synchronously, without asking an upstream: for bots
    /// in code that fall back to the config. [`Bot::reply`] asks the upstream too.
    pub fn answer(&self, inbound: &Inbound<'_>) -> Option<Reply> {
        self.rules.get(inbound.app)?.answer(inbound.message)
    }

    /// The upstream of an app that has `forward`.
    pub fn upstream(&self, app: &str) -> Option<&Upstream> {
        match self.askers.get(app)? {
            Asker::Forward(upstream) => Some(upstream),
            Asker::Llm(_) => None,
        }
    }

    /// The chat-completions endpoint of an app that has `llm`.
    pub fn llm(&self, app: &str) -> Option<&Llm> {
        match self.askers.get(app)? {
            Asker::Llm(llm) => Some(llm),
            Asker::Forward(_) => None,
        }
    }

    /// What asks about `inbound`, when its app has an asker that takes this message.
    fn asker(&self, inbound: &Inbound<'_>) -> Option<&Asker> {
        self.askers
            .get(inbound.app)
            .filter(|asker| asker.takes(inbound.message))
    }
}

/// What answers an app's messages that its rules do not.
#[derive(Debug)]
enum Asker {
    /// `forward`: the upstream gets every such message.
    Forward(Upstream),
    /// `llm`: the model gets the ones with a prompt (text, recognised voice).
    Llm(Llm),
}

impl Asker {
    /// Whether `message` is sent at all; one that is not has no reply, known at once.
    fn takes(&self, message: &Message) -> bool {
        match self {
            Self::Forward(_) => true,
            Self::Llm(_) => llm::prompt_of(message).is_some(),
        }
    }
}

impl Bot for ConfigBot {
    /// The local rules' answer; failing one, the upstream's (when the app has `forward`),
    /// or the model's whole answer as a text reply (when it has `llm`), cut to the
    /// platforms' 2048 bytes.
    async fn reply(&self, inbound: &Inbound<'_>) -> Result<Option<Reply>, BotError> {
        if let Some(reply) = self.answer(inbound) {
            return Ok(Some(reply));
        }
        match self.asker(inbound) {
            Some(Asker::Forward(upstream)) => forward::reply(upstream, &self.client, inbound).await,
            Some(Asker::Llm(llm)) => {
                let text = llm::reply(llm, &self.client, inbound).await?;
                // A longer text would be refused whole: cut at a character boundary.
                Ok(text.map(|text| Reply::text(truncate_utf8(&text, WECOM_TEXT_MAX_BYTES))))
            }
            None => Ok(None),
        }
    }

    /// A local rule's answer, or none when nothing would be asked (no upstream, or a
    /// message an `llm` has no prompt in), at once.
    fn triage(&self, inbound: &Inbound<'_>) -> Triage {
        match self.answer(inbound) {
            Some(reply) => Triage::Known(Some(reply)),
            None if self.asker(inbound).is_some() => Triage::Ask,
            None => Triage::Known(None),
        }
    }

    /// A local rule's text at once (a rule with another reply type: no reply, since a
    /// stream shows text); failing one, the upstream's streamed answer (`forward`), or the
    /// model's (`llm`).
    async fn stream(
        &self,
        inbound: &Inbound<'_>,
        text: &TextSink,
    ) -> Result<Option<String>, BotError> {
        if let Some(reply) = self.answer(inbound) {
            let Reply::Text { content } = reply else {
                return Ok(None);
            };
            text.set(&content);
            return Ok(Some(content));
        }
        match self.asker(inbound) {
            Some(Asker::Forward(upstream)) => {
                forward::stream(upstream, &self.client, inbound, text).await
            }
            Some(Asker::Llm(llm)) => llm::stream(llm, &self.client, inbound, text).await,
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    #[test]
    fn a_sink_replaces_appends_and_tells_its_watch() {
        let (sink, mut watch) = TextSink::new();
        assert!(!watch.has_changed().unwrap());
        sink.push("你好");
        sink.push("");
        sink.push(", world");
        assert!(watch.has_changed().unwrap());
        assert_eq!(*watch.borrow_and_update(), "你好, world");
        sink.set("你好, world");
        assert!(!watch.has_changed().unwrap(), "the same text is no change");
        sink.set("replaced");
        assert_eq!(sink.text(), "replaced");
        assert_eq!(*watch.borrow_and_update(), "replaced");
    }
}

#[cfg(test)]
mod triage_tests {
    use super::*;
    use crate::message::Callback;

    fn message(body: &str) -> Message {
        let xml = format!(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>u</FromUserName>\
             <CreateTime>1</CreateTime>{body}</xml>"
        );
        match Callback::parse(&xml).unwrap() {
            Callback::Message(m) => m,
            Callback::Info(_) => unreachable!(),
        }
    }

    fn triage(bot: &ConfigBot, message: &Message) -> Triage {
        bot.triage(&Inbound {
            app: "demo",
            platform: Platform::Wecom,
            authorizer_app_id: None,
            message,
            id: "dedup#demo#1",
        })
    }

    fn bot(reply: &str) -> ConfigBot {
        let config = Config::parse(&format!(
            "[[apps]]\nname = \"demo\"\nplatform = \"wecom\"\ncorp_id = \"wx5823bf96d3bd56c7\"\n\
             agent_id = 1\ntoken = \"QDG6eK\"\n\
             encoding_aes_key = \"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C\"\n\
             [apps.reply]\n{reply}\n"
        ))
        .unwrap();
        ConfigBot::from_config(&config).unwrap()
    }

    /// A model is asked only what has a prompt; anything else has no reply, known at once
    /// (no claim with a job, no worker run). An upstream is asked everything.
    #[test]
    fn only_messages_an_asker_takes_are_asked() {
        let text = message("<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId>");
        let image = message(
            "<MsgType>image</MsgType><PicUrl>https://x/i</PicUrl><MediaId>m</MediaId><MsgId>2</MsgId>",
        );
        let subscribe = message("<MsgType>event</MsgType><Event>subscribe</Event>");
        let llm = bot("llm = \"http://127.0.0.1:9/v1\"\nllm_model = \"m\"");
        assert!(matches!(triage(&llm, &text), Triage::Ask));
        assert!(matches!(triage(&llm, &image), Triage::Known(None)));
        assert!(matches!(triage(&llm, &subscribe), Triage::Known(None)));
        let forward =
            bot("forward = \"http://127.0.0.1:9/bot\"\nforward_secret = \"0123456789abcdef0123\"");
        for message in [&text, &image, &subscribe] {
            assert!(matches!(triage(&forward, message), Triage::Ask));
        }
        assert!(matches!(
            triage(&bot("echo = false"), &text),
            Triage::Known(None)
        ));
    }
}
