//! Building a [`Gateway`]: the config, the bot, the store and the late-reply strategy.
//!
//! ```no_run
//! # async fn run(config: wxgate::config::Config) -> Result<(), wxgate::config::ConfigError> {
//! use wxgate::gateway::{Gateway, LateReplies};
//!
//! let gateway = Gateway::builder(&config)
//!     .late_replies(LateReplies::InBackground)
//!     .open() // the configured store: DynamoDB, or the embedded one
//!     .await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::{App, Gateway, Late, LateReplies, dedup::Dedup, late};
use crate::bot::{Bot, ConfigBot};
use crate::config::{Config, ConfigError, StoreKind, StorePlan};
use crate::store::dynamodb::DynamoTimeouts;
use crate::store::sealing::Sealing;
use crate::store::{Backend, DynamoStore};

/// How the bot is had: from the config's rules, or given.
type MakeBot<'c, B> = Box<dyn FnOnce(&Config) -> Result<B, ConfigError> + 'c>;

/// A [`Gateway`] being built; see [`Gateway::builder`].
pub struct GatewayBuilder<'c, B> {
    config: &'c Config,
    bot: MakeBot<'c, B>,
    store: Option<Arc<Backend>>,
    late: LateReplies,
}

impl<B> std::fmt::Debug for GatewayBuilder<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("store", &self.store.as_ref().map(|s| s.kind()))
            .field("late", &self.late)
            .finish_non_exhaustive()
    }
}

impl Gateway<ConfigBot> {
    /// A gateway for `config`, answering with each app's `[apps.reply]` rules (and their
    /// upstream bots) unless given another [`bot`](GatewayBuilder::bot), dropping late
    /// replies unless given another [strategy](GatewayBuilder::late_replies).
    pub fn builder(config: &Config) -> GatewayBuilder<'_, ConfigBot> {
        GatewayBuilder {
            config,
            bot: Box::new(ConfigBot::from_config),
            store: None,
            late: LateReplies::default(),
        }
    }
}

impl<'c> GatewayBuilder<'c, ConfigBot> {
    /// Answers with `bot` instead of the config's rules.
    pub fn bot<B: Bot>(self, bot: B) -> GatewayBuilder<'c, B> {
        GatewayBuilder {
            config: self.config,
            bot: Box::new(move |_| Ok(bot)),
            store: self.store,
            late: self.late,
        }
    }
}

impl<B: Bot> GatewayBuilder<'_, B> {
    /// Over this store instead of the configured one (tests, tools, a store shared with
    /// other code).
    #[must_use]
    pub fn store(mut self, store: Arc<Backend>) -> Self {
        self.store = Some(store);
        self
    }

    /// What becomes of a reply the bot gives after the budget; [`LateReplies::Dropped`]
    /// unless set.
    #[must_use]
    pub fn late_replies(mut self, late: LateReplies) -> Self {
        self.late = late;
        self
    }

    /// The gateway over the store given with [`store`](Self::store), else the embedded
    /// one. It does not open a DynamoDB table: that is [`open`](Self::open), and a config
    /// naming a table is refused here rather than silently served from memory.
    ///
    /// # Errors
    /// Secrets that cannot be read, keys that are not valid, or a config naming a DynamoDB
    /// table.
    pub fn build(self) -> Result<Gateway<B>, ConfigError> {
        let asks_for_table = self.config.store.table.is_some()
            || matches!(self.config.store.kind, Some(StoreKind::Dynamodb));
        if self.store.is_none() && asks_for_table {
            return Err(ConfigError::Setting(
                "the config names a DynamoDB table: open the gateway with GatewayBuilder::open"
                    .into(),
            ));
        }
        let store = self.store.clone().unwrap_or_default();
        self.finish(store)
    }

    /// The gateway over the store given with [`store`](Self::store), else the configured
    /// one: DynamoDB (`store.table` or `WXGATE_TABLE`; the client is set up from the
    /// environment, no request made) or the embedded one.
    ///
    /// # Errors
    /// As [`build`](Self::build), or an unusable `[store]`.
    pub async fn open(self) -> Result<Gateway<B>, ConfigError> {
        let store = match self.store.clone() {
            Some(store) => store,
            None => Arc::new(match self.config.store.plan_from_env()? {
                StorePlan::Memory => Backend::default(),
                StorePlan::Dynamodb { table } => {
                    let attempt = Duration::from_millis(self.config.store.timeout_ms);
                    let timeouts = DynamoTimeouts::per_attempt(attempt);
                    Backend::Dynamo(DynamoStore::from_env(table, timeouts).await)
                }
            }),
        };
        self.finish(store)
    }

    fn finish(self, store: Arc<Backend>) -> Result<Gateway<B>, ConfigError> {
        let config = self.config;
        // Read here, so an unset or unusable proxy fails the start, not a later send.
        let api_proxy = config.api.proxy()?;
        let bot = (self.bot)(config)?;
        let apps: HashMap<String, App> = config
            .apps
            .iter()
            .map(|c| Ok((c.name.clone(), App::from_config(c)?)))
            .collect::<Result<_, ConfigError>>()?;
        let late = match self.late {
            LateReplies::Dropped => Late::Dropped,
            LateReplies::InBackground => {
                Late::InBackground(late::InFlight::new(late::MAX_IN_BACKGROUND))
            }
            LateReplies::AsJobs => Late::AsJobs,
        };
        if let Backend::Dynamo(table) = &*store {
            // The table is read by more than this function (backups, its stream, anyone with
            // GetItem): what it holds of messages, replies and tokens is sealed.
            table.install_sealing(store_sealing(&apps));
        }
        let settings = config.gateway.clone();
        let dedup = Dedup::new(
            Arc::clone(&store),
            settings.budget(),
            config.store.retention_secs,
        );
        Ok(Gateway {
            apps,
            settings,
            bot: Arc::new(bot),
            store,
            dedup,
            api: config.api.clone(),
            api_proxy,
            tokens: OnceLock::new(),
            late,
            retention_secs: config.store.retention_secs,
        })
    }
}

/// The keys sealing the apps' values and tokens in a shared store.
fn store_sealing(apps: &HashMap<String, App>) -> Sealing {
    let mut sealing = Sealing::new();
    for app in apps.values() {
        sealing.add_app(&app.name, app.store_keys());
        if let Some(component) = app.component_app_id() {
            // Tickets, refresh tokens and authorizer tokens: the EncodingAESKey's keys, which
            // survive a secret reset (a refresh token sealed under a lost key is lost).
            sealing.add_component(component, app.store_keys());
        }
        if let Some((scope, key)) = app.token_store_key() {
            sealing.add_token_scope(&scope, key);
        }
    }
    sealing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::OFFICIAL_SAMPLE_APP;

    fn config(store: &str) -> Config {
        Config::parse(&format!("{store}\n{OFFICIAL_SAMPLE_APP}")).unwrap()
    }

    #[test]
    fn build_refuses_a_config_that_names_a_table_unless_given_a_store() {
        for store in [
            "[store]\ntable = \"wxgate\"",
            "[store]\nkind = \"dynamodb\"\ntable = \"wxgate\"",
        ] {
            let config = config(store);
            let e = Gateway::builder(&config).build().unwrap_err().to_string();
            assert!(e.contains("GatewayBuilder::open"), "{store}: {e}");
            let given = Gateway::builder(&config).store(Arc::default()).build();
            assert_eq!(given.unwrap().store().kind(), "memory", "{store}");
        }
        let plain = Gateway::builder(&config("")).build().unwrap();
        assert_eq!(plain.late_replies(), LateReplies::Dropped);
    }

    #[test]
    fn the_strategy_is_the_one_asked_for() {
        let config = config("");
        for late in [
            LateReplies::Dropped,
            LateReplies::InBackground,
            LateReplies::AsJobs,
        ] {
            let gateway = Gateway::builder(&config)
                .late_replies(late)
                .build()
                .unwrap();
            assert_eq!(gateway.late_replies(), late);
        }
    }
}
