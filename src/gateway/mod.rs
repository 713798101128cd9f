//! The pipeline of one callback, independent of how the request arrived.
//!
//! ```text
//! handle:  route → method → size → query
//! open:    signature → replay window → decrypt (safe mode) | bind the body (plaintext)
//! decide:  parse → report-only? → claim (store) → bot, under the late-reply strategy
//!          → record (store)
//! seal:    write the reply in the app's data format, encrypt it with the key that opened
//!          the callback
//! ```
//!
//! Everything before the claim is synchronous and costs microseconds; unsigned junk is
//! refused by the signature check before any decryption, and nothing that fails a check
//! reaches the bot. The claim makes each callback take effect once: a retry of a decided
//! callback gets the recorded reply without reaching the bot (`dedup`). The bot runs under
//! the time budget; what becomes of a reply that misses it is the gateway's
//! [`LateReplies`] strategy (`late`).

pub(crate) mod aibot;
mod app;
mod authorize;
mod builder;
mod component;
mod decide;
mod dedup;
mod late;
mod open;
mod rejection;
mod release_test;
mod request;
mod response;
mod route;
mod seal;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::Method;
use tokio::time::Instant;

use crate::bot::{Bot, ConfigBot};
use crate::config::{ApiProxy, ApiSettings, GatewaySettings};
use crate::metrics;
use crate::platform::DataFormat;
use crate::store::Backend;
use crate::wechat::{AccessToken, ApiError, Messenger, TokenError, TokenProvider, TokenSource};
pub use aibot::{MAX_MEDIA_BYTES, MediaError};
use app::App;
pub use authorize::{AuthType, LinkError, MAX_LINK_LIFETIME_SECS};
pub use builder::GatewayBuilder;
use dedup::Dedup;
pub use late::{JobOutcome, LateReplies};
pub use rejection::Rejection;
pub use release_test::{TEST_ACCOUNTS, is_test_account};
use request::CallbackQuery;
pub use request::CallbackRequest;
pub use response::CallbackResponse;
pub use route::Route;

/// The gateway: the configured apps, the settings, the bot that decides replies, and the
/// store that makes each callback take effect once. Built with [`Gateway::builder`].
#[derive(Debug)]
pub struct Gateway<B = ConfigBot> {
    apps: HashMap<String, App>,
    settings: GatewaySettings,
    bot: Arc<B>,
    store: Arc<Backend>,
    dedup: Dedup,
    api: ApiSettings,
    /// The proxy of the platform API calls (`[api] proxy` or `WXGATE_API_PROXY`), read when
    /// the gateway was built.
    api_proxy: Option<ApiProxy>,
    /// Built on first use: the HTTPS client loads its trust roots, which a callback that
    /// never calls an API should not pay for at cold start.
    tokens: OnceLock<Result<Arc<TokenProvider>, ApiError>>,
    late: Late,
    /// How long dedup records are kept (`store.retention_secs`).
    retention_secs: u64,
}

/// The late-reply strategy with what it needs to run.
#[derive(Debug)]
enum Late {
    Dropped,
    InBackground(late::InFlight),
    AsJobs,
}

/// The longest shutdown waits for late replies still running.
const LATE_REPLY_DRAIN: Duration = Duration::from_secs(30);

impl<B: Bot> Gateway<B> {
    /// Answers one request. Never fails: refusals become their HTTP status, and are logged.
    pub async fn handle(&self, request: CallbackRequest<'_>) -> CallbackResponse {
        let deadline = Instant::now() + self.settings.budget();
        let Some((route, app)) = Route::parse(request.path).and_then(|route| {
            let app = self.apps.get(route.app())?;
            (app.platform == route.platform()).then_some((route, app))
        }) else {
            let rejection = Rejection::NotFound;
            rejection.log(None);
            crate::metrics::refusal(None, "unknown", rejection.metric_label());
            return rejection.response();
        };
        match self.process(route, app, request, deadline).await {
            Ok(response) => response,
            Err(rejection) => {
                rejection.log(Some(&app.name));
                crate::metrics::refusal(
                    Some(&app.name),
                    app.platform.as_str(),
                    rejection.metric_label(),
                );
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
        if matches!(
            route,
            Route::OpenAuthorizePage { .. } | Route::OpenAuthorized { .. }
        ) {
            if !is_get {
                return Err(Rejection::MethodNotAllowed {
                    allow: route.allowed_methods(),
                });
            }
            return Ok(self.page(route, app, request.query, deadline).await);
        }
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
        if is_get {
            let verified = self.verify_url(app, &query)?;
            crate::metrics::callback(
                Some(&app.name),
                app.platform.as_str(),
                metrics::Kind::Verification,
                metrics::Outcome::Verified,
            );
            return Ok(verified);
        }
        let authorizer_app_id = match route {
            Route::OpenMessage {
                authorizer_app_id, ..
            } => Some(authorizer_app_id),
            _ => None,
        };
        if app.platform == crate::platform::Platform::Aibot {
            return self
                .aibot_callback(app, &query, request.body, deadline)
                .await;
        }
        self.callback(app, authorizer_app_id, &query, request.body, deadline)
            .await
    }

    /// A POSTed message or event: open, decide, seal.
    async fn callback(
        &self,
        app: &App,
        authorizer_app_id: Option<&str>,
        query: &CallbackQuery<'_>,
        body: &[u8],
        deadline: Instant,
    ) -> Result<CallbackResponse, Rejection> {
        let opened = self.open(app, query, body, deadline).await?;
        let document = opened.document()?;
        // A Mini Program's JSON push is read as the XML twin it converts to: one inbound
        // model for rules, dedup, reply jobs and upstream bots.
        let xml = match app.data_format {
            DataFormat::Xml => Cow::Borrowed(document),
            DataFormat::Json => Cow::Owned(crate::json_push::to_xml(document)?),
        };
        let Some(reply) = self.decide(app, authorizer_app_id, &xml, deadline).await? else {
            return Ok(CallbackResponse::success());
        };
        Ok(seal::seal(app, &opened, reply))
    }

    /// The access-token provider, shared by every app over the gateway's store: one token
    /// per app secret for all instances, refreshed by one of them.
    ///
    /// # Errors
    /// The HTTP client could not be built (no TLS roots on the system).
    pub fn tokens(&self) -> Result<&TokenProvider, TokenError> {
        self.shared_tokens().map(|t| &**t)
    }

    fn shared_tokens(&self) -> Result<&Arc<TokenProvider>, TokenError> {
        self.tokens
            .get_or_init(|| {
                let client = crate::wechat::PlatformClient::from_settings(
                    &self.api,
                    self.api_proxy.as_ref(),
                )?;
                if let Some(proxy) = &self.api_proxy {
                    // Where it was configured, never the URL: it may carry a password.
                    tracing::info!(
                        origin = proxy.origin(),
                        "platform API calls go through a proxy"
                    );
                }
                Ok(Arc::new(
                    TokenProvider::new(
                        Arc::clone(&self.store),
                        client,
                        crate::wechat::TokenSettings::default(),
                    )
                    .with_open_platform(),
                ))
            })
            .as_ref()
            .map_err(|e| TokenError::Client(e.clone()))
    }

    /// Active messages (WeCom app messages, MP customer messages) over the shared token.
    ///
    /// # Errors
    /// As [`tokens`](Self::tokens).
    pub fn messenger(&self) -> Result<Messenger<'_>, TokenError> {
        Ok(Messenger::new(self.tokens()?))
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

    /// The proxy the platform API calls go through (`[api] proxy` or `WXGATE_API_PROXY`),
    /// if any.
    pub fn api_proxy(&self) -> Option<&ApiProxy> {
        self.api_proxy.as_ref()
    }

    /// What becomes of a late reply to `app`'s messages: `Ok` when it can be sent as an
    /// active message, else why not (for `wxgate check`). `None` for an unknown app.
    pub fn late_reply_route(&self, app: &str) -> Option<Result<(), &'static str>> {
        Some(self.apps.get(app)?.active_sending())
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

    /// The late-reply strategy in force.
    pub fn late_replies(&self) -> LateReplies {
        match self.late {
            Late::Dropped => LateReplies::Dropped,
            Late::InBackground(_) => LateReplies::InBackground,
            Late::AsJobs => LateReplies::AsJobs,
        }
    }

    /// Waits for the late replies still running in the background to be sent, for up to
    /// `gateway.deferred_limit_ms` (30 s at most), and names each one it abandons; the
    /// number abandoned. For a server shutting down.
    pub async fn finish_late_replies(&self) -> usize {
        let Late::InBackground(in_flight) = &self.late else {
            return 0;
        };
        let limit = Duration::from_millis(self.settings.deferred_limit_ms).min(LATE_REPLY_DRAIN);
        in_flight.finish(limit).await
    }
}
