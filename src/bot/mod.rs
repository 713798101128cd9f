//! What to answer: the [`Bot`] trait, and [`ConfigBot`], the rules from the config file.
//!
//! A bot sees a verified, decrypted, parsed message and returns a [`Reply`] or nothing. It
//! runs inside the gateway's time budget: a bot that is late is abandoned and the callback
//! answered empty, so a slow bot costs a missing reply, never a platform retry storm.

pub mod forward;
pub mod rules;

use std::collections::HashMap;
use std::future::Future;

use crate::config::{Config, ConfigError};
use crate::message::Message;
use crate::platform::Platform;
use crate::reply::Reply;
pub use forward::{ForwardError, Upstream, UpstreamClient, verify_signature, verify_signature_at};
pub use rules::Rules;

/// A message on its way to a bot, with where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    /// The configured app's name.
    pub app: &'a str,
    /// Its platform; replies must follow this platform's rules.
    pub platform: Platform,
    /// Open Platform: the authorized account (`$APPID$` in the URL) the message is for.
    pub authorizer_app_id: Option<&'a str>,
    /// The message or event.
    pub message: &'a Message,
}

/// Decides the passive reply to a message.
///
/// Implement it for a bot written in code and hand it to
/// [`Gateway::with_bot`](crate::gateway::Gateway::with_bot); see `examples/custom_bot.rs`.
/// Report-only events (LOCATION, VIEW, unsubscribe, …) never reach a bot.
pub trait Bot: Send + Sync + 'static {
    /// The reply, or `None` for an empty answer.
    ///
    /// The reply is checked against the platform's rules before it is sent; one that breaks
    /// them is logged and replaced by an empty answer.
    fn reply(&self, inbound: &Inbound<'_>) -> impl Future<Output = Option<Reply>> + Send;

    /// How the reply is to be had where the gateway can hand slow work to a worker (a
    /// Lambda function with its table's stream, docs/deferred-replies.md). The default,
    /// [`Triage::Inline`], runs [`reply`](Self::reply) in the callback as everywhere else.
    fn triage(&self, inbound: &Inbound<'_>) -> Triage {
        let _ = inbound;
        Triage::Inline
    }

    /// The reply, decided in a worker for a message [`triage`](Self::triage) sent there.
    /// An error is why the job failed, recorded on it for inspection (no message contents,
    /// no secrets).
    fn work(
        &self,
        inbound: &Inbound<'_>,
    ) -> impl Future<Output = Result<Option<Reply>, String>> + Send {
        async move { Ok(self.reply(inbound).await) }
    }
}

/// Where a message's reply comes from, when the gateway can use a worker.
#[derive(Debug)]
pub enum Triage {
    /// Ask [`Bot::reply`] in the callback, within the budget.
    Inline,
    /// This reply, known at once (a local rule, or none).
    Known(Option<Reply>),
    /// Slow (an upstream call): decide it in a worker with [`Bot::work`]; the callback waits
    /// for it within its budget, and a later reply goes out as an active message.
    Worker,
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
    /// A failed upstream call is one warning and no reply.
    async fn reply(&self, inbound: &Inbound<'_>) -> Option<Reply> {
        if let Some(reply) = self.answer(inbound) {
            return Some(reply);
        }
        let upstream = self.upstreams.get(inbound.app)?;
        forward::reply(upstream, &self.client, inbound).await
    }

    /// A local rule's answer at once; the upstream's in a worker.
    fn triage(&self, inbound: &Inbound<'_>) -> Triage {
        match self.answer(inbound) {
            Some(reply) => Triage::Known(Some(reply)),
            None if self.upstreams.contains_key(inbound.app) => Triage::Worker,
            None => Triage::Known(None),
        }
    }

    /// As [`reply`](Bot::reply), with the upstream's failure as the error.
    async fn work(&self, inbound: &Inbound<'_>) -> Result<Option<Reply>, String> {
        if let Some(reply) = self.answer(inbound) {
            return Ok(Some(reply));
        }
        let Some(upstream) = self.upstreams.get(inbound.app) else {
            return Ok(None);
        };
        let started = tokio::time::Instant::now();
        upstream.ask(&self.client, inbound).await.map_err(|error| {
            forward::log_failure(inbound.app, &error, started.elapsed());
            format!("upstream: {error}")
        })
    }
}
