//! What to answer: the [`Bot`] trait, and [`ConfigBot`], the rules from the config file.
//!
//! A bot sees a verified, decrypted, parsed message and returns a [`Reply`] or nothing. It
//! runs inside the gateway's time budget: a bot that is late is abandoned and the callback
//! answered empty, so a slow bot costs a missing reply, never a platform retry storm.

pub mod rules;

use std::collections::HashMap;
use std::future::Future;

use crate::config::Config;
use crate::message::Message;
use crate::platform::Platform;
use crate::reply::Reply;
pub use rules::{ReplyRules, ReplySpec, Rules};

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
}

/// The bot made of each app's `[apps.reply]` rules.
#[derive(Debug, Default)]
pub struct ConfigBot {
    rules: HashMap<String, Rules>,
}

impl ConfigBot {
    /// Compiles every app's rules.
    pub fn from_config(config: &Config) -> Self {
        Self {
            rules: config
                .apps
                .iter()
                .map(|app| (app.name.clone(), Rules::compile(&app.reply, app.platform)))
                .collect(),
        }
    }

    /// The answer the rules give, synchronously: for bots in code that fall back to the
    /// config.
    pub fn answer(&self, inbound: &Inbound<'_>) -> Option<Reply> {
        self.rules.get(inbound.app)?.answer(inbound.message)
    }
}

impl Bot for ConfigBot {
    fn reply(&self, inbound: &Inbound<'_>) -> impl Future<Output = Option<Reply>> + Send {
        std::future::ready(self.answer(inbound))
    }
}
