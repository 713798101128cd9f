//! The pipeline of one callback, independent of how the request arrived.
//!
//! ```text
//! route → method → size → query → signature → replay window → decrypt → parse
//!       → claim (store) → bot → record (store) → seal
//! ```
//!
//! Everything before the claim is synchronous and costs microseconds. The claim makes each
//! callback take effect once: a retry of a decided callback gets the recorded reply without
//! reaching the bot (see `dedup`). The order matters:
//! unsigned junk is refused by the signature check before any decryption, and nothing that
//! fails a check reaches the bot. The bot runs under the time budget; a late bot is
//! abandoned and the callback answered empty, because a late answer is worse than none (the
//! platform retries it and shows the user an error), unless its reply can follow as an
//! active message: in the background (`deferred`, `wxgate serve`) or as a reply job decided
//! by a worker (`worker`, Lambda).

mod app;
mod dedup;
mod deferred;
mod rejection;
mod request;
mod response;
mod route;
mod worker;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use tokio::time::Instant;

use crate::bot::{Bot, ConfigBot, Inbound, Triage};
use crate::clock::unix_now;
use crate::config::{Config, ConfigError, GatewaySettings, StorePlan};
use crate::crypto::EncryptedEnvelope;
use crate::error::ProtocolError;
use crate::message::{Callback, Message};
use crate::platform::Platform;
use crate::store::{Backend, DedupStore, DynamoStore, dynamodb::DynamoTimeouts};
use crate::wechat::{
    AccessToken, PlatformClient, TokenError, TokenProvider, TokenSettings, TokenSource,
};
use app::App;
use dedup::{Begin, Dedup};
pub use rejection::Rejection;
pub use request::CallbackRequest;
use request::{CallbackQuery, restore_base64_plus};
pub use response::CallbackResponse;
use response::{TEXT_PLAIN, TEXT_XML};
pub use route::Route;
pub use worker::JobOutcome;

/// The gateway: the configured apps, the settings, the bot that decides replies, and the
/// store that makes each callback take effect once.
#[derive(Debug)]
pub struct Gateway<B = ConfigBot> {
    apps: HashMap<String, App>,
    settings: GatewaySettings,
    bot: Arc<B>,
    store: Arc<Backend>,
    dedup: Dedup,
    api: crate::config::ApiSettings,
    /// Built on first use: the HTTPS client loads its trust roots, which a callback that
    /// never calls an API should not pay for at cold start.
    tokens: std::sync::OnceLock<Result<Arc<TokenProvider<Backend>>, crate::wechat::ApiError>>,
    /// Whether a bot that misses the budget may finish in the background, its reply sent
    /// as an active message; see [`with_deferred_replies`](Self::with_deferred_replies).
    deferred_replies: bool,
    /// Whether slow replies are decided by a worker fed by the store's stream; see
    /// [`with_reply_jobs`](Self::with_reply_jobs).
    reply_jobs: bool,
    /// How long dedup records are kept (`store.retention_secs`).
    retention_secs: u64,
    /// Late replies in flight in the background (deferred replies), bounded.
    late_replies: deferred::LateReplies,
}

/// Late replies a gateway runs in the background at once, at most; beyond it a late bot is
/// abandoned (its callback was answered empty) with a warning.
const MAX_LATE_REPLIES: u32 = 256;
/// The longest shutdown waits for late replies still running.
const LATE_REPLY_DRAIN: Duration = Duration::from_secs(30);

impl Gateway<ConfigBot> {
    /// A gateway answering with each app's `[apps.reply]` rules.
    ///
    /// # Errors
    /// Secrets that cannot be read or keys that are not valid.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        Self::with_bot(config, ConfigBot::from_config(config)?)
    }

    /// A gateway answering with each app's rules, over the configured store.
    ///
    /// # Errors
    /// As [`Gateway::open`].
    pub async fn open_config(config: &Config) -> Result<Self, ConfigError> {
        Self::open(config, ConfigBot::from_config(config)?).await
    }
}

/// The keys sealing the apps' values and tokens in a shared store.
fn store_sealing(apps: &HashMap<String, App>) -> crate::store::sealing::Sealing {
    let mut sealing = crate::store::sealing::Sealing::new();
    for app in apps.values() {
        sealing.add_app(&app.name, app.store_keys());
        if let Some((scope, key)) = app.token_store_key() {
            sealing.add_token_scope(&scope, key);
        }
    }
    sealing
}

/// The epoch milliseconds of an instant (now plus what remains until it).
fn epoch_ms_at(instant: Instant) -> crate::clock::EpochMillis {
    let remaining = instant.saturating_duration_since(Instant::now());
    crate::clock::now_ms().saturating_add(u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX))
}

impl<B: Bot> Gateway<B> {
    /// A gateway whose replies come from `bot`, with the embedded store.
    ///
    /// # Errors
    /// Secrets that cannot be read, keys that are not valid, or a config (or `WXGATE_TABLE`)
    /// asking for DynamoDB, which needs [`open`](Self::open).
    pub fn with_bot(config: &Config, bot: B) -> Result<Self, ConfigError> {
        if let StorePlan::Dynamodb { .. } = config.store.plan_from_env()? {
            return Err(ConfigError::Setting(
                "the config asks for a DynamoDB store: build the gateway with Gateway::open".into(),
            ));
        }
        Self::with_store(config, bot, Arc::new(Backend::default()))
    }

    /// A gateway over the configured store: DynamoDB (client set up from the environment,
    /// no request made) or the embedded one.
    ///
    /// # Errors
    /// As [`with_store`](Self::with_store), or an unusable `[store]`.
    pub async fn open(config: &Config, bot: B) -> Result<Self, ConfigError> {
        let store = match config.store.plan_from_env()? {
            StorePlan::Memory => Backend::default(),
            StorePlan::Dynamodb { table } => {
                let attempt = Duration::from_millis(config.store.timeout_ms);
                let timeouts = DynamoTimeouts::per_attempt(attempt);
                Backend::Dynamo(DynamoStore::from_env(table, timeouts).await)
            }
        };
        Self::with_store(config, bot, Arc::new(store))
    }

    /// A gateway over a given store (tests, tools, shared stores).
    ///
    /// # Errors
    /// Secrets that cannot be read or keys that are not valid.
    pub fn with_store(config: &Config, bot: B, store: Arc<Backend>) -> Result<Self, ConfigError> {
        let apps: HashMap<String, App> = config
            .apps
            .iter()
            .map(|c| Ok((c.name.clone(), App::from_config(c)?)))
            .collect::<Result<_, ConfigError>>()?;
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
        Ok(Self {
            apps,
            settings,
            bot: Arc::new(bot),
            store,
            dedup,
            api: config.api.clone(),
            tokens: std::sync::OnceLock::new(),
            deferred_replies: false,
            reply_jobs: false,
            retention_secs: config.store.retention_secs,
            late_replies: deferred::LateReplies::new(MAX_LATE_REPLIES),
        })
    }

    /// The access-token provider, shared by every app over the gateway's store: one token
    /// per app secret for all instances, refreshed by one of them.
    ///
    /// # Errors
    /// The HTTP client could not be built (no TLS roots on the system).
    pub fn tokens(&self) -> Result<&TokenProvider<Backend>, TokenError> {
        self.shared_tokens().map(|t| &**t)
    }

    fn shared_tokens(&self) -> Result<&Arc<TokenProvider<Backend>>, TokenError> {
        self.tokens
            .get_or_init(|| {
                let client = PlatformClient::new(
                    crate::wechat::ApiEndpoints::from_settings(&self.api),
                    crate::wechat::ClientTimeouts::from_settings(&self.api),
                )?;
                Ok(Arc::new(TokenProvider::new(
                    Arc::clone(&self.store),
                    client,
                    TokenSettings::default(),
                )))
            })
            .as_ref()
            .map_err(|e| TokenError::Client(e.clone()))
    }

    /// Lets a bot that misses the budget finish in the background (up to
    /// `gateway.deferred_limit_ms`) and sends its reply as an active message, for apps that
    /// can send one (a `secret`, and for WeCom an `agent_id`). The callback is still
    /// answered empty at the budget and that answer recorded, so retries neither run the
    /// bot again nor cause a second message.
    ///
    /// Only for a process that keeps running after it answers: `wxgate serve` turns it on;
    /// a Lambda function, frozen once it answers, does not.
    #[must_use]
    pub fn with_deferred_replies(mut self) -> Self {
        self.deferred_replies = true;
        self
    }

    /// Hands the replies the bot [triages](crate::bot::Bot::triage) as slow to a worker:
    /// the callback's claim carries the job, a worker ([`run_job`](Self::run_job), started
    /// by the table's DynamoDB stream) decides it, and the callback waits for it within the
    /// budget; a later reply goes out as an active message. For apps that can send one
    /// (a `secret`, and on WeCom an `agent_id`). What the Lambda function does; see
    /// docs/deferred-replies.md.
    #[must_use]
    pub fn with_reply_jobs(mut self) -> Self {
        self.reply_jobs = true;
        self
    }

    /// Active messages (WeCom app messages, MP customer messages) over the shared token.
    ///
    /// # Errors
    /// As [`tokens`](Self::tokens).
    pub fn messenger(&self) -> Result<crate::wechat::Messenger<'_, Backend>, TokenError> {
        Ok(crate::wechat::Messenger::new(self.tokens()?))
    }

    /// The credentials of an app's access token; `None` when the app has no `secret`.
    pub fn token_source(&self, app: &str) -> Option<&TokenSource> {
        self.apps.get(app)?.token_source.as_ref()
    }

    /// An app's access token, from the shared cache (fetched only when none is fresh).
    ///
    /// # Errors
    /// The app has no credentials, or the token could not be had (see [`TokenError`]).
    pub async fn access_token(&self, app: &str) -> Result<AccessToken, TokenError> {
        let source = self
            .token_source(app)
            .ok_or_else(|| TokenError::NoCredentials(app.to_owned()))?;
        self.tokens()?.get(source).await
    }

    /// The store holding dedup records and tokens.
    pub fn store(&self) -> &Arc<Backend> {
        &self.store
    }

    /// The bot.
    pub fn bot(&self) -> &B {
        &self.bot
    }

    /// The settings in force.
    pub fn settings(&self) -> &GatewaySettings {
        &self.settings
    }

    /// Waits for the late replies still running in the background (deferred replies) to be
    /// sent, for up to `gateway.deferred_limit_ms` (30 s at most), and names each one it
    /// abandons. For a server shutting down.
    pub async fn finish_late_replies(&self) -> usize {
        let limit = Duration::from_millis(self.settings.deferred_limit_ms).min(LATE_REPLY_DRAIN);
        self.late_replies.finish(limit).await
    }

    /// Answers one request. Never fails: refusals become their HTTP status, and are logged.
    pub async fn handle(&self, request: CallbackRequest<'_>) -> CallbackResponse {
        let deadline = Instant::now() + self.settings.budget();
        let Some((route, app)) = Route::parse(request.path).and_then(|route| {
            let app = self.apps.get(route.app())?;
            (app.platform == route.platform()).then_some((route, app))
        }) else {
            let rejection = Rejection::NotFound;
            rejection.log(None);
            return rejection.response();
        };
        match self.process(route, app, request, deadline).await {
            Ok(response) => response,
            Err(rejection) => {
                rejection.log(Some(&app.name));
                rejection.response()
            }
        }
    }

    async fn process(
        &self,
        route: Route<'_>,
        app: &App,
        request: CallbackRequest<'_>,
        deadline: Instant,
    ) -> Result<CallbackResponse, Rejection> {
        let is_get = *request.method == Method::GET;
        let is_post = *request.method == Method::POST;
        let get_allowed = !matches!(route, Route::OpenAuthorization { .. });
        if !(is_post || is_get && get_allowed) {
            return Err(Rejection::MethodNotAllowed {
                allow: route.allowed_methods(),
            });
        }
        let max = self.settings.max_body_bytes;
        if request.body.len() > max {
            return Err(Rejection::PayloadTooLarge {
                len: request.body.len(),
                max,
            });
        }
        let query = CallbackQuery::parse(request.query)?;
        match (is_get, app.platform) {
            (true, Platform::Wecom) => self.verify_encrypted_url(app, &query),
            (true, _) => self.verify_plain_url(app, &query),
            (false, _) => {
                let authorizer_app_id = match route {
                    Route::OpenMessage {
                        authorizer_app_id, ..
                    } => Some(authorizer_app_id),
                    _ => None,
                };
                self.callback(app, authorizer_app_id, &query, request.body, deadline)
                    .await
            }
        }
    }

    /// WeCom URL verification: the echostr is encrypted; answer its plaintext exactly.
    fn verify_encrypted_url(
        &self,
        app: &App,
        query: &CallbackQuery<'_>,
    ) -> Result<CallbackResponse, Rejection> {
        let crypt = encrypted_crypt(app)?;
        let signature = CallbackQuery::require(&query.msg_signature, "msg_signature")?;
        let (timestamp, nonce) = timestamp_and_nonce(query)?;
        let echostr = restore_base64_plus(CallbackQuery::require(&query.echostr, "echostr")?);
        crypt
            .token()
            .verify_encrypted(signature, timestamp, nonce, &echostr)?;
        self.check_replay(timestamp)?;
        let opened = crypt.decrypt(&echostr)?;
        tracing::info!(app = %app.name, "URL verification answered");
        Ok(CallbackResponse::ok(
            TEXT_PLAIN,
            Bytes::copy_from_slice(opened.frame.message()),
        ))
    }

    /// Official Account (and Open Platform message URL) verification: always the plain
    /// `signature`, even in safe mode, and the echostr goes back unchanged.
    fn verify_plain_url(
        &self,
        app: &App,
        query: &CallbackQuery<'_>,
    ) -> Result<CallbackResponse, Rejection> {
        let signature = CallbackQuery::require(&query.signature, "signature")?;
        let (timestamp, nonce) = timestamp_and_nonce(query)?;
        let echostr = CallbackQuery::require(&query.echostr, "echostr")?;
        app.token.verify(signature, timestamp, nonce)?;
        self.check_replay(timestamp)?;
        tracing::info!(app = %app.name, "URL verification answered");
        Ok(CallbackResponse::ok(TEXT_PLAIN, echostr.to_owned()))
    }

    /// A POSTed message or event.
    async fn callback(
        &self,
        app: &App,
        authorizer_app_id: Option<&str>,
        query: &CallbackQuery<'_>,
        body: &[u8],
        deadline: Instant,
    ) -> Result<CallbackResponse, Rejection> {
        let encrypted = match (app.platform, query.encrypt_type.as_deref()) {
            (Platform::Wecom | Platform::Open, _) | (Platform::Mp, Some("aes")) => true,
            (Platform::Mp, None | Some("raw")) => false,
            (Platform::Mp, Some(other)) => {
                return Err(Rejection::bad_request(format!(
                    "unsupported encrypt_type `{}` (expected `aes`, or none for plaintext)",
                    crate::escape::shown(other, 16)
                )));
            }
        };
        let body = std::str::from_utf8(body)
            .map_err(|_| ProtocolError::Xml("the body is not UTF-8".into()))?;
        if encrypted {
            let crypt = encrypted_crypt(app)?;
            let signature = CallbackQuery::require(&query.msg_signature, "msg_signature")?;
            let (timestamp, nonce) = timestamp_and_nonce(query)?;
            let envelope = EncryptedEnvelope::parse(body)?;
            crypt
                .token()
                .verify_encrypted(signature, timestamp, nonce, &envelope.encrypt)?;
            self.check_replay(timestamp)?;
            let opened = crypt.decrypt(&envelope.encrypt)?;
            let xml = opened.frame.message_str()?;
            let callback = Callback::parse(xml)?;
            let Some(reply) = self
                .decide(app, authorizer_app_id, callback, xml, deadline)
                .await
            else {
                return Ok(CallbackResponse::success());
            };
            match crypt.seal(&reply, opened.key, unix_now()) {
                Ok(envelope) => Ok(CallbackResponse::ok(TEXT_XML, envelope)),
                Err(e) => {
                    tracing::error!(app = %app.name, code = e.code() as i32, cause = %e, "cannot encrypt the reply; answering empty");
                    Ok(CallbackResponse::success())
                }
            }
        } else {
            if app.crypt.is_some() {
                // The plain signature does not cover the body: accepting plaintext here would
                // let anyone holding one signed URL forge messages to a safe-mode app.
                return Err(Rejection::bad_request(
                    "plaintext POST to an app configured with encoding_aes_key; set the console to safe mode (安全模式) or remove the key",
                ));
            }
            let signature = CallbackQuery::require(&query.signature, "signature")?;
            let (timestamp, nonce) = timestamp_and_nonce(query)?;
            app.token.verify(signature, timestamp, nonce)?;
            self.check_replay(timestamp)?;
            self.bind_plain_signature(app, signature, body.as_bytes(), deadline)
                .await?;
            let callback = Callback::parse(body)?;
            Ok(
                match self
                    .decide(app, authorizer_app_id, callback, body, deadline)
                    .await
                {
                    Some(reply) => CallbackResponse::ok(TEXT_XML, reply),
                    None => CallbackResponse::success(),
                },
            )
        }
    }

    /// The reply XML to a parsed callback (`xml`, its plaintext), or `None` for the empty
    /// answer.
    async fn decide(
        &self,
        app: &App,
        authorizer_app_id: Option<&str>,
        callback: Callback,
        xml: &str,
        deadline: Instant,
    ) -> Option<String> {
        let message = match callback {
            Callback::Info(info) => {
                tracing::info!(app = %app.name, info_type = %info.info_type(), "platform notice received");
                return None;
            }
            Callback::Message(message) => message,
        };
        if message.event().is_some_and(|e| e.is_report_only()) {
            // LOCATION can arrive every few seconds per user: no bot, no info-level line.
            tracing::debug!(app = %app.name, event = %message.msg_type(), "report-only event");
            return None;
        }
        let key = crate::store::callback_key(&app.name, authorizer_app_id.is_some(), &message);
        let triage = self.triage(app, authorizer_app_id, &message);
        // The job carries the message on its record; one too large for a store item is
        // asked in the callback instead (the upstream then has the budget).
        let job_fits = xml.len() <= crate::store::MAX_JOB_MESSAGE_BYTES;
        let job = (matches!(triage, Triage::Worker) && job_fits).then(|| crate::store::NewJob {
            app: &app.name,
            authorizer_app_id,
            message: xml,
            answer_by_ms: epoch_ms_at(deadline),
        });
        let ticket = match self.dedup.begin(&app.name, key, deadline, job).await {
            Begin::Decide(ticket) => ticket,
            Begin::Replay { reply, recorded } => {
                tracing::info!(
                    app = %app.name,
                    msg_type = %message.msg_type(),
                    recorded,
                    reply = if reply.is_some() { "recorded" } else { "none" },
                    "duplicate callback answered from the first delivery"
                );
                return reply;
            }
        };
        if job.is_some() && ticket.is_claimed() {
            let reply = self.dedup.await_worker(&app.name, ticket, deadline).await;
            tracing::info!(
                app = %app.name,
                msg_type = %message.msg_type(),
                reply = if reply.is_some() { "worker" } else { "none" },
                "callback answered"
            );
            return reply;
        }
        let started = Instant::now();
        let reply = match triage {
            // The bot already gave it while triaging: not asked twice.
            Triage::Known(reply) => reply,
            _ => {
                self.ask_bot(app, authorizer_app_id, &message, ticket.key(), deadline)
                    .await
            }
        };
        let xml = reply.as_ref().and_then(|reply| {
            reply
                .render(&message, app.platform, unix_now())
                .map_err(|e| {
                    tracing::error!(app = %app.name, code = e.code() as i32, cause = %e, "the bot's reply breaks the platform's rules; answering empty");
                })
                .ok()
        });
        tracing::info!(
            app = %app.name,
            msg_type = %message.msg_type(),
            reply = xml.as_ref().and(reply.as_ref()).map_or("none", |r| r.msg_type()),
            bot_us = started.elapsed().as_micros() as u64,
            "callback answered"
        );
        self.dedup
            .finish(&app.name, ticket, xml.as_deref(), deadline)
            .await;
        xml
    }

    async fn ask_bot(
        &self,
        app: &App,
        authorizer_app_id: Option<&str>,
        message: &Message,
        key: &str,
        deadline: Instant,
    ) -> Option<crate::reply::Reply> {
        if let Some(tokens) = self.deferral_tokens(app) {
            return self
                .ask_bot_deferrable(app, authorizer_app_id, message, key, deadline, tokens)
                .await;
        }
        let inbound = Inbound {
            app: &app.name,
            platform: app.platform,
            authorizer_app_id,
            message,
        };
        match tokio::time::timeout_at(deadline, self.bot.reply(&inbound)).await {
            Ok(reply) => reply,
            Err(_) => {
                tracing::warn!(
                    app = %app.name,
                    budget_ms = self.settings.budget_ms,
                    "the bot missed the time budget; answering empty"
                );
                None
            }
        }
    }

    /// The tokens a late reply would be sent with, when deferred replies are on and the app
    /// can send active messages.
    fn deferral_tokens(&self, app: &App) -> Option<&Arc<TokenProvider<Backend>>> {
        if !self.deferred_replies || !app.can_send_actively() {
            return None;
        }
        self.shared_tokens().ok()
    }

    /// Where a message's reply comes from. Only with reply jobs on, for an app that can send
    /// a late reply actively, is the bot asked to triage (`Worker`: decided by a worker);
    /// otherwise the bot runs in the callback (`Inline`).
    fn triage(&self, app: &App, authorizer_app_id: Option<&str>, message: &Message) -> Triage {
        if !self.reply_jobs || !app.can_send_actively() {
            return Triage::Inline;
        }
        self.bot.triage(&Inbound {
            app: &app.name,
            platform: app.platform,
            authorizer_app_id,
            message,
        })
    }

    /// The bot runs as its own task: answered within the budget, its reply is passive;
    /// later, it goes on and its reply is sent actively.
    async fn ask_bot_deferrable(
        &self,
        app: &App,
        authorizer_app_id: Option<&str>,
        message: &Message,
        key: &str,
        deadline: Instant,
        tokens: &Arc<TokenProvider<Backend>>,
    ) -> Option<crate::reply::Reply> {
        let limit = Duration::from_millis(self.settings.deferred_limit_ms);
        let owned = deferred::OwnedInbound {
            app: app.name.clone(),
            platform: app.platform,
            authorizer_app_id: authorizer_app_id.map(str::to_owned),
            message: message.clone(),
        };
        let bot = Arc::clone(&self.bot);
        let mut task = tokio::spawn(async move {
            let inbound = owned.inbound();
            tokio::time::timeout(limit, bot.reply(&inbound))
                .await
                .ok()
                .flatten()
        });
        match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                tracing::error!(app = %app.name, cause = %e, "the bot failed; answering empty");
                None
            }
            Err(_) => {
                let Some(slot) = self.late_replies.start(&app.name, key) else {
                    task.abort();
                    tracing::warn!(
                        app = %app.name,
                        in_flight = MAX_LATE_REPLIES,
                        "the bot missed the time budget and too many late replies are running; answering empty, this reply is dropped"
                    );
                    return None;
                };
                tracing::info!(
                    app = %app.name,
                    budget_ms = self.settings.budget_ms,
                    "the bot missed the time budget; answering empty, its reply will follow as an active message"
                );
                // Only now, for the late ones, is the delivery put together.
                let delivery = deferred::Delivery {
                    app: app.name.clone(),
                    platform: app.platform,
                    agent_id: app.agent_id,
                    source: app.token_source.clone()?,
                    tokens: Arc::clone(tokens),
                    to: message.from_user_name.clone(),
                };
                tokio::spawn(deferred::deliver_late(task, delivery, limit, slot));
                None
            }
        }
    }

    /// Plaintext mode: the plain `signature` covers token, timestamp and nonce but not the
    /// body. It is bound to the body it first came with (one conditional write), so a signed
    /// query that leaked (a proxy's or an access log) cannot carry another body within the
    /// replay window; the platform's retry of the same body still passes. A store failure
    /// is logged and the request let through, as for dedup.
    async fn bind_plain_signature(
        &self,
        app: &App,
        signature: &str,
        body: &[u8],
        deadline: Instant,
    ) -> Result<(), Rejection> {
        let digest = crate::store::fingerprint(body);
        let key = crate::store::signature_key(&app.name, signature);
        // As long as the timestamp can pass the replay window, and then some.
        let keep_secs = match self.settings.replay_window_secs {
            0 => self.retention_secs,
            window => window.saturating_mul(2).saturating_add(60),
        };
        let now = crate::clock::now_ms();
        let expires_at_secs = (now / 1000).saturating_add(keep_secs);
        let bind = self
            .store
            .bind_signature(&key, &digest, now, expires_at_secs);
        match tokio::time::timeout_at(deadline, bind).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(Rejection::SignatureReused),
            Ok(Err(e)) => {
                tracing::warn!(app = %app.name, store = self.store.kind(), cause = %e, "signature binding unavailable; accepting this plaintext request without it");
                Ok(())
            }
            Err(_) => {
                tracing::warn!(app = %app.name, store = self.store.kind(), "signature binding timed out; accepting this plaintext request without it");
                Ok(())
            }
        }
    }

    /// Refuses a correctly signed request whose timestamp is too far from the clock.
    fn check_replay(&self, timestamp: &str) -> Result<(), Rejection> {
        let window = self.settings.replay_window_secs;
        if window == 0 {
            return Ok(());
        }
        // The signature check already made this 1 to 20 digits; 20 digits can still
        // overflow, and such a timestamp is as stale as any.
        let timestamp = timestamp.parse::<u64>().unwrap_or(u64::MAX);
        let skew = unix_now().abs_diff(timestamp);
        if skew > window {
            return Err(Rejection::Stale {
                timestamp,
                skew,
                window,
            });
        }
        Ok(())
    }
}

fn encrypted_crypt(app: &App) -> Result<&crate::crypto::MsgCrypt, Rejection> {
    app.crypt.as_ref().ok_or_else(|| {
        Rejection::bad_request(
            "an encrypted request, but this app has no encoding_aes_key configured",
        )
    })
}

fn timestamp_and_nonce<'q>(query: &'q CallbackQuery<'q>) -> Result<(&'q str, &'q str), Rejection> {
    Ok((
        CallbackQuery::require(&query.timestamp, "timestamp")?,
        CallbackQuery::require(&query.nonce, "nonce")?,
    ))
}

/// Shorthand for tests and adapters: a response body as text.
pub fn body_text(response: &CallbackResponse) -> Cow<'_, str> {
    String::from_utf8_lossy(&response.body)
}
