//! What to answer: the [`Bot`] trait, and [`ConfigBot`], the rules from the config file.
//!
//! A bot sees a verified, decrypted, parsed message and returns a [`Reply`] or nothing. It
//! runs inside the gateway's time budget, so a slow bot costs a missing (or later, active)
//! reply, never a platform retry storm; platform notices reach it through [`Bot::notice`].

pub mod forward;
pub mod rules;

use std::collections::HashMap;
use std::future::Future;

use crate::config::{Config, ConfigError};
use crate::message::{InfoEvent, Message};
use crate::platform::Platform;
use crate::reply::Reply;
pub use forward::{ForwardError, Upstream, UpstreamClient, verify_signature, verify_signature_at};
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
    /// at once (a local rule), so it is never handed to a worker; [`Triage::Ask`] (the
    /// default) when [`reply`](Self::reply) may have to wait (an upstream call). Only
    /// consulted when late replies run as jobs.
    fn triage(&self, inbound: &Inbound<'_>) -> Triage {
        let _ = inbound;
        Triage::Ask
    }

    /// A platform notice. The default ignores it; the callback is answered `success`
    /// either way, within the budget.
    fn notice(&self, notice: &Notice<'_>) -> impl Future<Output = ()> + Send {
        let _ = notice;
        async {}
    }
}

/// What a bot knows of a reply before it is asked; see [`Bot::triage`].
#[derive(Debug)]
pub enum Triage {
    /// This reply, known at once (a local rule, or none).
    Known(Option<Reply>),
    /// Ask [`Bot::reply`], which may take its time.
    Ask,
}

/// The bot made of each app's `[apps.reply]` rules, and of the upstream bots of the apps
/// that `forward` what the rules do not answer.
#[derive(Debug, Default)]
pub struct ConfigBot {
    rules: HashMap<String, Rules>,
    upstreams: HashMap<String, Upstream>,
    /// One client for every app's upstream, built on the first upstream call.
    client: UpstreamClient,
}

impl ConfigBot {
    /// Compiles every app's rules and reads their `forward_secret`s.
    ///
    /// # Errors
    /// [`ConfigError::App`] naming the app and the variable, when a `forward_secret`
    /// cannot be read (`env:NAME` unset or empty).
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let mut bot = Self::local(config);
        for app in &config.apps {
            if let Some(upstream) = Upstream::from_config(app, &config.gateway)? {
                bot.upstreams.insert(app.name.clone(), upstream);
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
        self.upstreams.get(app)
    }
}

impl Bot for ConfigBot {
    /// The local rules' answer; failing one, the upstream's (when the app has `forward`).
    async fn reply(&self, inbound: &Inbound<'_>) -> Result<Option<Reply>, BotError> {
        if let Some(reply) = self.answer(inbound) {
            return Ok(Some(reply));
        }
        let Some(upstream) = self.upstreams.get(inbound.app) else {
            return Ok(None);
        };
        forward::reply(upstream, &self.client, inbound).await
    }

    /// A local rule's answer, or none when there is no upstream to ask, at once.
    fn triage(&self, inbound: &Inbound<'_>) -> Triage {
        match self.answer(inbound) {
            Some(reply) => Triage::Known(Some(reply)),
            None if self.upstreams.contains_key(inbound.app) => Triage::Ask,
            None => Triage::Known(None),
        }
    }
}
