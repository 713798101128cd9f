//! Active messages: WeCom app messages and Official Account customer messages.
//!
//! * WeCom `POST /cgi-bin/message/send`: `text`, `markdown`, `news` (1–8 articles) and
//!   `textcard` to members of the corp (`touser`: `UserID1|UserID2`, or `@all`), sent as the
//!   app `agentid`. A recipient list that is partly invalid is still sent; the invalid ones
//!   come back in [`SendReceipt::invalid_users`].
//! * Official Account `POST /cgi-bin/message/custom/send` (客服消息): `text` or `news` (one
//!   article) to a follower's OpenID, allowed only within 48 hours of the follower's last
//!   message to the account (else errcode 45015).
//!
//! [`Messenger`] sends them through a [`TokenProvider`], so the access token is the shared
//! one and a refused token (40001 / 40014 / 42001) is fetched again once. A message is
//! checked against the platform's documented limits first ([`WecomMessage::validate`],
//! [`MpMessage::validate`]): one the platform would refuse or truncate is a
//! [`SendError::Invalid`] and nothing is requested. Transient failures (errcode -1 "system
//! busy", HTTP 5xx, timeouts, connection errors) are retried under a [`RetryPolicy`];
//! everything else, the rate limit 45009 included, is returned at once as
//! [`ApiError::Platform`].
//!
//! A send is never repeated when it may have been delivered: a timeout, a connection broken
//! after the request went out, or an HTTP 5xx may come after the platform took the message,
//! so only errcode -1 ("system busy") and a connection that could not be made are retried.
//! WeCom can drop repeats itself: with [`Messenger::with_duplicate_check`] its sends carry
//! `enable_duplicate_check` and the uncertain failures are retried too. Delivery is at most
//! once either way.
//!
//! Message contents and recipients are never logged at info level, and `Debug` of a message
//! shows only its type and sizes.
//!
//! ```no_run
//! # async fn demo(gateway: &wxgate::gateway::Gateway) -> Result<(), Box<dyn std::error::Error>> {
//! use wxgate::wechat::{Messenger, WecomMessage};
//! let source = gateway.token_source("demo").ok_or("no secret")?;
//! let receipt = Messenger::new(gateway.tokens()?)
//!     .send_wecom(source, 1000002, "zhangsan", &WecomMessage::text("构建完成"))
//!     .await?;
//! println!("msgid {:?}, invalid: {:?}", receipt.msgid, receipt.invalid_users);
//! # Ok(())
//! # }
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::error::{ApiError, TokenError};
use super::provider::TokenProvider;
use super::source::TokenSource;
use crate::platform::Platform;
use crate::store::TokenStore;

/// WeCom's app message API.
pub const WECOM_SEND_PATH: &str = "/cgi-bin/message/send";
/// The Official Account's customer message API.
pub const MP_SEND_PATH: &str = "/cgi-bin/message/custom/send";

/// WeCom `text.content`, in UTF-8 bytes.
pub const WECOM_TEXT_MAX_BYTES: usize = 2048;
/// WeCom app message `markdown.content`, in UTF-8 bytes. (4096 is the group robot
/// webhook's limit, not the app message API's.)
pub const WECOM_MARKDOWN_MAX_BYTES: usize = 2048;
/// A WeCom news article's or text card's `title`, in bytes.
pub const TITLE_MAX_BYTES: usize = 128;
/// A WeCom news article's or text card's `description`, in bytes.
pub const DESCRIPTION_MAX_BYTES: usize = 512;
/// A WeCom news article's or text card's `url`, in bytes.
pub const URL_MAX_BYTES: usize = 2048;
/// A WeCom text card's `btntxt`, in characters.
pub const BTNTXT_MAX_CHARS: usize = 4;
/// Articles in one WeCom news message (at least 1).
pub const WECOM_MAX_ARTICLES: usize = 8;
/// Members in one WeCom `touser`.
pub const WECOM_MAX_RECIPIENTS: usize = 1000;
/// Official Account customer message `text.content`, in bytes. Not in the official
/// documentation; longer texts are refused with 45002 ("content size out of limit").
pub const MP_TEXT_MAX_BYTES: usize = 2048;

/// errcode -1: system busy, try again later.
pub const ERRCODE_SYSTEM_BUSY: i64 = -1;
/// errcode 45009: the API's call frequency limit is reached. Retrying makes it worse.
pub const ERRCODE_API_RATE_LIMIT: i64 = 45009;
/// errcode 45015: the Official Account may not message this follower (no message from them
/// in the last 48 hours, or they unfollowed).
pub const ERRCODE_REPLY_WINDOW: i64 = 45015;

// ------------------------------------------------------------------------------------------
// Messages
// ------------------------------------------------------------------------------------------

/// A link with a title: a WeCom news article, or the Official Account's one news article.
#[derive(Clone, PartialEq, Eq)]
pub struct Article {
    /// The title (WeCom: at most 128 bytes).
    pub title: String,
    /// A line under the title (WeCom: at most 512 bytes).
    pub description: Option<String>,
    /// Where a tap leads: `http://` or `https://` (WeCom: at most 2048 bytes).
    pub url: String,
    /// A picture (JPG, PNG): large 1068×455, small 150×150.
    pub picurl: Option<String>,
}

impl Article {
    /// An article titled `title` linking to `url`.
    pub fn new(title: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            description: None,
            url: url.into(),
            picurl: None,
        }
    }

    /// With a description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// With a picture.
    #[must_use]
    pub fn picurl(mut self, picurl: impl Into<String>) -> Self {
        self.picurl = Some(picurl.into());
        self
    }

    fn to_json(&self) -> Value {
        let mut article = Map::new();
        article.insert("title".into(), json!(self.title));
        if let Some(description) = &self.description {
            article.insert("description".into(), json!(description));
        }
        article.insert("url".into(), json!(self.url));
        if let Some(picurl) = &self.picurl {
            article.insert("picurl".into(), json!(picurl));
        }
        Value::Object(article)
    }

    fn validate(&self, field: &str, wecom: bool) -> Result<(), InvalidMessage> {
        require(&format!("{field}.title"), &self.title)?;
        require_url(&format!("{field}.url"), &self.url)?;
        if wecom {
            max_bytes(&format!("{field}.title"), &self.title, TITLE_MAX_BYTES)?;
            if let Some(description) = &self.description {
                max_bytes(
                    &format!("{field}.description"),
                    description,
                    DESCRIPTION_MAX_BYTES,
                )?;
            }
            max_bytes(&format!("{field}.url"), &self.url, URL_MAX_BYTES)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Article {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Article")
            .field("title_bytes", &self.title.len())
            .finish_non_exhaustive()
    }
}

/// A WeCom text card: title, description, a link and its button.
#[derive(Clone, PartialEq, Eq)]
pub struct TextCard {
    /// The title, at most 128 bytes.
    pub title: String,
    /// The body, at most 512 bytes; `<div class="gray|normal|highlight">` styles lines.
    pub description: String,
    /// Where the card leads: `http://` or `https://`, at most 2048 bytes.
    pub url: String,
    /// The button's text, at most 4 characters; "详情" when `None`.
    pub btntxt: Option<String>,
}

/// A WeCom app message (`message/send`).
#[derive(Clone, PartialEq, Eq)]
pub enum WecomMessage {
    /// `text`: at most 2048 bytes; `<a href>` links and `\n` line breaks work.
    Text {
        /// The text.
        content: String,
    },
    /// `markdown`: WeCom's markdown subset, at most 2048 bytes.
    Markdown {
        /// The markdown source.
        content: String,
    },
    /// `news`: 1 to 8 linked articles.
    News {
        /// The articles.
        articles: Vec<Article>,
    },
    /// `textcard`.
    TextCard(TextCard),
}

impl WecomMessage {
    /// A text message.
    pub fn text(content: impl Into<String>) -> Self {
        Self::Text {
            content: content.into(),
        }
    }

    /// A markdown message.
    pub fn markdown(content: impl Into<String>) -> Self {
        Self::Markdown {
            content: content.into(),
        }
    }

    /// A news message.
    pub fn news(articles: Vec<Article>) -> Self {
        Self::News { articles }
    }

    /// A text card with the default button.
    pub fn textcard(
        title: impl Into<String>,
        description: impl Into<String>,
        url: impl Into<String>,
    ) -> Self {
        Self::TextCard(TextCard {
            title: title.into(),
            description: description.into(),
            url: url.into(),
            btntxt: None,
        })
    }

    /// The `msgtype`.
    pub fn msg_type(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Markdown { .. } => "markdown",
            Self::News { .. } => "news",
            Self::TextCard(_) => "textcard",
        }
    }

    /// Checks the platform's documented limits.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        match self {
            Self::Text { content } => {
                require("text.content", content)?;
                max_bytes("text.content", content, WECOM_TEXT_MAX_BYTES)
            }
            Self::Markdown { content } => {
                require("markdown.content", content)?;
                max_bytes("markdown.content", content, WECOM_MARKDOWN_MAX_BYTES)
            }
            Self::News { articles } => {
                if !(1..=WECOM_MAX_ARTICLES).contains(&articles.len()) {
                    return Err(InvalidMessage::ArticleCount {
                        count: articles.len(),
                        max: WECOM_MAX_ARTICLES,
                    });
                }
                articles
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, a)| a.validate(&format!("news.articles[{i}]"), true))
            }
            Self::TextCard(card) => {
                require("textcard.title", &card.title)?;
                max_bytes("textcard.title", &card.title, TITLE_MAX_BYTES)?;
                require("textcard.description", &card.description)?;
                max_bytes(
                    "textcard.description",
                    &card.description,
                    DESCRIPTION_MAX_BYTES,
                )?;
                require_url("textcard.url", &card.url)?;
                max_bytes("textcard.url", &card.url, URL_MAX_BYTES)?;
                match &card.btntxt {
                    Some(btntxt) if btntxt.chars().count() > BTNTXT_MAX_CHARS => {
                        Err(InvalidMessage::TooLong {
                            field: "textcard.btntxt".into(),
                            len: btntxt.chars().count(),
                            max: BTNTXT_MAX_CHARS,
                            unit: "characters",
                        })
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    /// The request body for `message/send` to `touser` as app `agent_id`.
    pub fn body(&self, agent_id: u64, touser: &str) -> Value {
        let payload = match self {
            Self::Text { content } | Self::Markdown { content } => json!({ "content": content }),
            Self::News { articles } => {
                json!({ "articles": articles.iter().map(Article::to_json).collect::<Vec<_>>() })
            }
            Self::TextCard(card) => {
                let mut fields = Map::new();
                fields.insert("title".into(), json!(card.title));
                fields.insert("description".into(), json!(card.description));
                fields.insert("url".into(), json!(card.url));
                if let Some(btntxt) = &card.btntxt {
                    fields.insert("btntxt".into(), json!(btntxt));
                }
                Value::Object(fields)
            }
        };
        let mut body = Map::new();
        body.insert("touser".into(), json!(touser));
        body.insert("msgtype".into(), json!(self.msg_type()));
        body.insert("agentid".into(), json!(agent_id));
        body.insert(self.msg_type().into(), payload);
        Value::Object(body)
    }
}

impl std::fmt::Debug for WecomMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_message(f, "WecomMessage", self.msg_type(), self.size())
    }
}

impl WecomMessage {
    fn size(&self) -> usize {
        match self {
            Self::Text { content } | Self::Markdown { content } => content.len(),
            Self::News { articles } => articles.len(),
            Self::TextCard(card) => card.description.len(),
        }
    }
}

/// An Official Account customer message (`message/custom/send`).
#[derive(Clone, PartialEq, Eq)]
pub enum MpMessage {
    /// `text`, at most 2048 bytes.
    Text {
        /// The text.
        content: String,
    },
    /// `news` with its one article (more are refused with 45008).
    News(Article),
}

impl MpMessage {
    /// A text message.
    pub fn text(content: impl Into<String>) -> Self {
        Self::Text {
            content: content.into(),
        }
    }

    /// A news message.
    pub fn news(article: Article) -> Self {
        Self::News(article)
    }

    /// The `msgtype`.
    pub fn msg_type(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::News(_) => "news",
        }
    }

    /// Checks the platform's limits.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        match self {
            Self::Text { content } => {
                require("text.content", content)?;
                max_bytes("text.content", content, MP_TEXT_MAX_BYTES)
            }
            Self::News(article) => article.validate("news.articles[0]", false),
        }
    }

    /// The request body for `message/custom/send` to the follower `openid`.
    pub fn body(&self, openid: &str) -> Value {
        match self {
            Self::Text { content } => json!({
                "touser": openid,
                "msgtype": "text",
                "text": { "content": content },
            }),
            Self::News(article) => json!({
                "touser": openid,
                "msgtype": "news",
                "news": { "articles": [article.to_json()] },
            }),
        }
    }
}

impl std::fmt::Debug for MpMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = match self {
            Self::Text { content } => content.len(),
            Self::News(_) => 1,
        };
        debug_message(f, "MpMessage", self.msg_type(), size)
    }
}

fn debug_message(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    msg_type: &str,
    size: usize,
) -> std::fmt::Result {
    let unit = if msg_type == "news" {
        "articles"
    } else {
        "bytes"
    };
    f.debug_struct(name)
        .field("msgtype", &msg_type)
        .field(unit, &size)
        .finish_non_exhaustive()
}

// ------------------------------------------------------------------------------------------
// Validation
// ------------------------------------------------------------------------------------------

/// A message or recipient the platform would refuse (or silently truncate). Never quotes
/// the content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMessage {
    /// A required field is empty or blank.
    #[error("{field} is empty")]
    Empty {
        /// The field, e.g. `text.content`.
        field: String,
    },
    /// A field is over the platform's limit.
    #[error("{field} is {len} {unit}; the platform allows at most {max}")]
    TooLong {
        /// The field, e.g. `textcard.title`.
        field: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
        /// `bytes` (UTF-8) or `characters`.
        unit: &'static str,
    },
    /// A news message with no articles or too many.
    #[error("news has {count} articles; the platform allows 1 to {max}")]
    ArticleCount {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A link that is not `http://` or `https://`.
    #[error("{field} must start with http:// or https://")]
    Url {
        /// The field.
        field: String,
    },
    /// More members in `touser` than one message may have.
    #[error("touser names {count} members; the platform allows at most {max}")]
    TooManyRecipients {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The credentials are the other platform's.
    #[error("a {message} message cannot be sent with {credentials} credentials")]
    WrongPlatform {
        /// The message's platform.
        message: Platform,
        /// The credentials' platform.
        credentials: Platform,
    },
}

fn require(field: &str, value: &str) -> Result<(), InvalidMessage> {
    if value.trim().is_empty() {
        Err(InvalidMessage::Empty {
            field: field.into(),
        })
    } else {
        Ok(())
    }
}

fn max_bytes(field: &str, value: &str, max: usize) -> Result<(), InvalidMessage> {
    if value.len() > max {
        Err(InvalidMessage::TooLong {
            field: field.into(),
            len: value.len(),
            max,
            unit: "bytes",
        })
    } else {
        Ok(())
    }
}

fn require_url(field: &str, url: &str) -> Result<(), InvalidMessage> {
    require(field, url)?;
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        Ok(())
    } else {
        Err(InvalidMessage::Url {
            field: field.into(),
        })
    }
}

/// Checks a WeCom `touser`: `UserID1|UserID2|…` (at most 1000) or `@all`.
///
/// # Errors
/// Empty, or too many members.
pub fn validate_wecom_recipients(touser: &str) -> Result<(), InvalidMessage> {
    require("touser", touser)?;
    let count = touser.split('|').filter(|u| !u.trim().is_empty()).count();
    if count == 0 {
        return Err(InvalidMessage::Empty {
            field: "touser".into(),
        });
    }
    if count > WECOM_MAX_RECIPIENTS {
        return Err(InvalidMessage::TooManyRecipients {
            count,
            max: WECOM_MAX_RECIPIENTS,
        });
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Retries
// ------------------------------------------------------------------------------------------

/// When a failed send is tried again: after `first_delay`, then twice as long each time
/// (200 ms, 400 ms, 800 ms by default), each delay jittered to between half and one and a
/// half times itself; at most `max_attempts` requests, and no retry that would start later
/// than `total` after the first request. A request already under way is bounded by the
/// client's own timeout (`[api] timeout_ms`), so a send takes at most about `total` plus one
/// request timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests in all, the first included (4 by default); 1 turns retries off.
    pub max_attempts: u32,
    /// The delay before the first retry (200 ms by default).
    pub first_delay: Duration,
    /// No retry starts later than this after the first request (5 s by default).
    pub total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            first_delay: Duration::from_millis(200),
            total: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries: one request.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// How long to wait before trying again, or `None` to give up: a pure function of the
    /// error, the number of requests made so far (`attempts` ≥ 1), the time since the first
    /// one, and `jitter` (uniform in `[0, 1)`; out-of-range values are clamped). Only errors
    /// that show the message was not delivered are retried ([`is_retryable`]).
    pub fn delay(
        &self,
        error: &ApiError,
        attempts: u32,
        elapsed: Duration,
        jitter: f64,
    ) -> Option<Duration> {
        if !is_retryable(error) {
            return None;
        }
        self.backoff(attempts, elapsed, jitter)
    }

    /// The wait before another try of a request that may be repeated, as [`delay`](Self::delay)
    /// gives it, or `None` once the attempts or the time are spent.
    pub fn backoff(&self, attempts: u32, elapsed: Duration, jitter: f64) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let doublings = attempts.saturating_sub(1).min(16);
        let base = self.first_delay.saturating_mul(1 << doublings);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let delay = base.mul_f64(0.5 + jitter);
        (elapsed.saturating_add(delay) <= self.total).then_some(delay)
    }
}

/// Whether a failed send may be tried again without delivering the message twice: the
/// platform said it was too busy to take it (errcode -1), or no connection was made, so
/// the request was never sent. A timeout, a broken connection or an HTTP 5xx may come after
/// the platform took the message: those are retried only where the platform drops
/// duplicates itself ([`is_retryable_deduplicated`]). Never a rate limit (45009) nor any
/// other errcode, a 4xx, or an unreadable answer.
pub fn is_retryable(error: &ApiError) -> bool {
    match error {
        ApiError::Platform { errcode, .. } => *errcode == ERRCODE_SYSTEM_BUSY,
        ApiError::Connect(_) => true,
        ApiError::Http { .. }
        | ApiError::Timeout
        | ApiError::Transport(_)
        | ApiError::Decode(_) => false,
    }
}

/// Whether a failed send may be tried again when the platform drops a repeated request
/// itself (WeCom's `enable_duplicate_check`): also a timeout, a broken connection and an
/// HTTP 5xx ([`ApiError::may_have_taken_effect`]).
pub fn is_retryable_deduplicated(error: &ApiError) -> bool {
    is_retryable(error) || error.may_have_taken_effect()
}

/// Uniform in `[0, 1)`.
fn jitter() -> f64 {
    f64::from(rand::random::<u32>()) / (f64::from(u32::MAX) + 1.0)
}

// ------------------------------------------------------------------------------------------
// Sending
// ------------------------------------------------------------------------------------------

/// What the platform said about a message it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReceipt {
    /// WeCom's `msgid` (to recall the message); the Official Account gives none.
    pub msgid: Option<String>,
    /// WeCom: the members of `touser` the message did not go to (not in the app's visible
    /// range, or no such member), lower-cased by the platform. When none was valid the
    /// platform refuses the whole message instead (81013).
    pub invalid_users: Vec<String>,
    /// Requests made, retries included.
    pub attempts: u32,
}

impl SendReceipt {
    fn from_answer(answer: &Value, attempts: u32) -> Self {
        let msgid = match answer.get("msgid") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let invalid_users = answer
            .get("invaliduser")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .split('|')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        Self {
            msgid,
            invalid_users,
            attempts,
        }
    }
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The message or recipient breaks a platform rule; nothing was requested.
    #[error("message not sent: {0}")]
    Invalid(#[from] InvalidMessage),
    /// The platform refused the message, or could not be reached (after the retries).
    #[error("message not sent: {0}")]
    Api(ApiError),
    /// No access token: the fetch failed, another instance's fetch did not finish in time,
    /// or the app has no credentials.
    #[error("message not sent: {0}")]
    Token(TokenError),
}

impl SendError {
    /// The platform's or transport's error, from the send or from the token fetch.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Self::Api(e) => Some(e),
            Self::Token(e) => e.api_error(),
            Self::Invalid(_) => None,
        }
    }

    /// The platform's errcode, if it sent one.
    pub fn errcode(&self) -> Option<i64> {
        self.api_error().and_then(ApiError::errcode)
    }
}

impl From<TokenError> for SendError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Api(e) => Self::Api(e),
            other => Self::Token(other),
        }
    }
}

/// Sends active messages with the tokens of a [`TokenProvider`].
///
/// Borrowing and cheap: build one per send or keep one around.
pub struct Messenger<'a, S: TokenStore> {
    tokens: &'a TokenProvider<S>,
    retry: RetryPolicy,
    /// WeCom's duplicate check interval, when WeCom is to drop a repeat of a message.
    duplicate_check: Option<Duration>,
}

impl<'a, S: TokenStore> Messenger<'a, S> {
    /// A messenger over `tokens`, retrying with [`RetryPolicy::default`] what cannot have
    /// been delivered ([`is_retryable`]).
    pub fn new(tokens: &'a TokenProvider<S>) -> Self {
        Self {
            tokens,
            retry: RetryPolicy::default(),
            duplicate_check: None,
        }
    }

    /// Asks WeCom to drop a repeat of the same request within `interval`
    /// (`enable_duplicate_check`, `duplicate_check_interval` in whole seconds, 1 s to 4 h),
    /// so that a WeCom send whose answer was lost (a timeout, a broken connection, a 5xx)
    /// can be retried without delivering twice ([`is_retryable_deduplicated`]). The same
    /// message to the same recipients is then dropped for `interval`: keep it short.
    /// Official Account sends have no such check and keep retrying only what cannot have
    /// been delivered.
    #[must_use]
    pub fn with_duplicate_check(mut self, interval: Duration) -> Self {
        self.duplicate_check =
            Some(interval.clamp(Duration::from_secs(1), Duration::from_secs(4 * 3600)));
        self
    }

    /// With another retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The retry policy.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// Sends a WeCom app message to `touser` (`UserID`, `UserID1|UserID2`, or `@all`) as
    /// the app `agent_id`, with the token of `source` (the app's corp id and secret).
    ///
    /// # Errors
    /// [`SendError::Invalid`] before any request; [`SendError::Api`] with the platform's
    /// [`ApiError::Platform`] `{ errcode, errmsg }` or the transport failure after the
    /// retries; [`SendError::Token`] when no token could be had.
    pub async fn send_wecom(
        &self,
        source: &TokenSource,
        agent_id: u64,
        touser: &str,
        message: &WecomMessage,
    ) -> Result<SendReceipt, SendError> {
        check_platform(Platform::Wecom, source)?;
        validate_wecom_recipients(touser)?;
        message.validate()?;
        let mut body = message.body(agent_id, touser);
        if let (Some(interval), Value::Object(fields)) = (self.duplicate_check, &mut body) {
            fields.insert("enable_duplicate_check".into(), json!(1));
            fields.insert("duplicate_check_interval".into(), json!(interval.as_secs()));
        }
        self.send(source, WECOM_SEND_PATH, &body, message.msg_type())
            .await
    }

    /// Sends an Official Account customer message to the follower `openid`, with the token
    /// of `source` (the AppID and AppSecret). Only within 48 hours of the follower's last
    /// message, else errcode 45015.
    ///
    /// # Errors
    /// As [`send_wecom`](Self::send_wecom).
    pub async fn send_mp(
        &self,
        source: &TokenSource,
        openid: &str,
        message: &MpMessage,
    ) -> Result<SendReceipt, SendError> {
        check_platform(Platform::Mp, source)?;
        require("touser", openid)?;
        message.validate()?;
        let body = message.body(openid);
        self.send(source, MP_SEND_PATH, &body, message.msg_type())
            .await
    }

    async fn send(
        &self,
        source: &TokenSource,
        path: &str,
        body: &Value,
        msg_type: &'static str,
    ) -> Result<SendReceipt, SendError> {
        let platform = source.platform();
        let client = self.tokens.client();
        let retry = self.retry;
        let deduplicated = self.duplicate_check.is_some() && platform == Platform::Wecom;
        let attempts = AtomicU32::new(0);
        let attempts = &attempts;
        let started = Instant::now();
        // One retry loop per token: when the platform refuses the token, `call` gets a new
        // one and runs this again, counting on in the same `attempts`.
        let result = self
            .tokens
            .call(source, |token| async move {
                loop {
                    let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
                    let err = match client.post_json(platform, path, &token, &[], body).await {
                        Ok(answer) => return Ok(answer),
                        Err(err) => err,
                    };
                    let repeatable = if deduplicated {
                        is_retryable_deduplicated(&err)
                    } else {
                        is_retryable(&err)
                    };
                    let delay = repeatable
                        .then(|| retry.backoff(attempt, started.elapsed(), jitter()))
                        .flatten();
                    let Some(delay) = delay else {
                        return Err(err);
                    };
                    tracing::warn!(
                        %platform,
                        msg_type,
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        error = %err,
                        "active message send failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
            })
            .await;
        let attempts = attempts.load(Ordering::Relaxed);
        match result {
            Ok(answer) => {
                let receipt = SendReceipt::from_answer(&answer, attempts);
                tracing::info!(
                    %platform,
                    msg_type,
                    attempts,
                    invalid_users = receipt.invalid_users.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "active message sent"
                );
                Ok(receipt)
            }
            Err(err) => {
                let err = SendError::from(err);
                tracing::warn!(
                    %platform,
                    msg_type,
                    attempts,
                    errcode = err.errcode(),
                    error = %err,
                    "active message not sent"
                );
                Err(err)
            }
        }
    }
}

impl<S: TokenStore> std::fmt::Debug for Messenger<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messenger")
            .field("tokens", self.tokens)
            .field("retry", &self.retry)
            .finish()
    }
}

fn check_platform(message: Platform, source: &TokenSource) -> Result<(), InvalidMessage> {
    let credentials = source.platform();
    if credentials == message {
        Ok(())
    } else {
        Err(InvalidMessage::WrongPlatform {
            message,
            credentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(errcode: i64) -> ApiError {
        ApiError::Platform {
            errcode,
            errmsg: "x".into(),
        }
    }

    // -- bodies ---------------------------------------------------------------------------

    #[test]
    fn wecom_text_and_markdown_bodies() {
        assert_eq!(
            WecomMessage::text("你好").body(1000002, "zhangsan|lisi"),
            json!({
                "touser": "zhangsan|lisi", "msgtype": "text", "agentid": 1000002,
                "text": { "content": "你好" }
            })
        );
        assert_eq!(
            WecomMessage::markdown("**b**").body(7, "@all"),
            json!({
                "touser": "@all", "msgtype": "markdown", "agentid": 7,
                "markdown": { "content": "**b**" }
            })
        );
    }

    #[test]
    fn wecom_news_body_omits_absent_fields() {
        let message = WecomMessage::news(vec![
            Article::new("t1", "https://a/1")
                .description("d1")
                .picurl("https://a/1.png"),
            Article::new("t2", "https://a/2"),
        ]);
        assert_eq!(
            message.body(5, "u"),
            json!({
                "touser": "u", "msgtype": "news", "agentid": 5,
                "news": { "articles": [
                    { "title": "t1", "description": "d1", "url": "https://a/1", "picurl": "https://a/1.png" },
                    { "title": "t2", "url": "https://a/2" },
                ]}
            })
        );
    }

    #[test]
    fn wecom_textcard_body() {
        let mut message = WecomMessage::textcard("领奖通知", "<div>恭喜</div>", "https://x/y");
        assert_eq!(
            message.body(1, "u")["textcard"],
            json!({ "title": "领奖通知", "description": "<div>恭喜</div>", "url": "https://x/y" })
        );
        if let WecomMessage::TextCard(card) = &mut message {
            card.btntxt = Some("更多".into());
        }
        assert_eq!(message.body(1, "u")["textcard"]["btntxt"], "更多");
        assert_eq!(message.body(1, "u")["msgtype"], "textcard");
    }

    #[test]
    fn mp_bodies() {
        assert_eq!(
            MpMessage::text("hi").body("oOPENID"),
            json!({ "touser": "oOPENID", "msgtype": "text", "text": { "content": "hi" } })
        );
        assert_eq!(
            MpMessage::news(Article::new("t", "http://u").description("d")).body("o1"),
            json!({
                "touser": "o1", "msgtype": "news",
                "news": { "articles": [{ "title": "t", "description": "d", "url": "http://u" }] }
            })
        );
    }

    // -- validation -----------------------------------------------------------------------

    fn too_long(field: &str, result: Result<(), InvalidMessage>) {
        match result {
            Err(InvalidMessage::TooLong { field: f, .. }) if f == field => {}
            other => panic!("{field}: {other:?}"),
        }
    }

    #[test]
    fn text_and_markdown_limits_count_utf8_bytes() {
        // 682 × 3 bytes + 2 = 2048: at the limit; one more byte is over.
        let at_limit = format!("{}ab", "中".repeat(682));
        assert_eq!(at_limit.len(), 2048);
        assert!(WecomMessage::text(at_limit.clone()).validate().is_ok());
        too_long(
            "text.content",
            WecomMessage::text(format!("{at_limit}x")).validate(),
        );
        assert!(WecomMessage::markdown("m".repeat(2048)).validate().is_ok());
        too_long(
            "markdown.content",
            WecomMessage::markdown("m".repeat(2049)).validate(),
        );
        assert!(MpMessage::text("t".repeat(2048)).validate().is_ok());
        too_long("text.content", MpMessage::text("t".repeat(2049)).validate());
        for blank in ["", "  \n"] {
            assert_eq!(
                WecomMessage::text(blank).validate(),
                Err(InvalidMessage::Empty {
                    field: "text.content".into()
                })
            );
        }
    }

    #[test]
    fn textcard_limits() {
        let card = |title: &str, description: &str, url: &str, btntxt: Option<&str>| {
            WecomMessage::TextCard(TextCard {
                title: title.into(),
                description: description.into(),
                url: url.into(),
                btntxt: btntxt.map(Into::into),
            })
            .validate()
        };
        let t128 = "t".repeat(128);
        let d512 = "d".repeat(512);
        assert!(card(&t128, &d512, "https://x", Some("查看详情")).is_ok());
        too_long(
            "textcard.title",
            card(&"t".repeat(129), "d", "https://x", None),
        );
        // 43 × 3 = 129 bytes, 43 characters: bytes count.
        too_long(
            "textcard.title",
            card(&"题".repeat(43), "d", "https://x", None),
        );
        too_long(
            "textcard.description",
            card("t", &"d".repeat(513), "https://x", None),
        );
        too_long(
            "textcard.url",
            card("t", "d", &format!("https://{}", "u".repeat(2041)), None),
        );
        too_long(
            "textcard.btntxt",
            card("t", "d", "https://x", Some("查看全部详情")),
        );
        assert!(matches!(
            card("t", "", "https://x", None),
            Err(InvalidMessage::Empty { field }) if field == "textcard.description"
        ));
        assert!(matches!(
            card("t", "d", "www.example.com", None),
            Err(InvalidMessage::Url { field }) if field == "textcard.url"
        ));
        assert!(card("t", "d", "HTTP://X", None).is_ok());
    }

    #[test]
    fn news_limits() {
        let article = || Article::new("t", "https://x");
        assert_eq!(
            WecomMessage::news(vec![]).validate(),
            Err(InvalidMessage::ArticleCount { count: 0, max: 8 })
        );
        assert!(WecomMessage::news(vec![article(); 8]).validate().is_ok());
        assert_eq!(
            WecomMessage::news(vec![article(); 9]).validate(),
            Err(InvalidMessage::ArticleCount { count: 9, max: 8 })
        );
        let long = vec![article(), article().description("d".repeat(513))];
        too_long(
            "news.articles[1].description",
            WecomMessage::news(long).validate(),
        );
        too_long(
            "news.articles[0].title",
            WecomMessage::news(vec![Article::new("t".repeat(129), "https://x")]).validate(),
        );
        assert!(matches!(
            WecomMessage::news(vec![Article::new("t", "")]).validate(),
            Err(InvalidMessage::Empty { field }) if field == "news.articles[0].url"
        ));
        // The Official Account documents no byte limits for its one article.
        assert!(
            MpMessage::news(Article::new("t".repeat(300), "https://x"))
                .validate()
                .is_ok()
        );
        assert!(matches!(
            MpMessage::news(Article::new("", "https://x")).validate(),
            Err(InvalidMessage::Empty { field }) if field == "news.articles[0].title"
        ));
    }

    #[test]
    fn recipients() {
        assert!(validate_wecom_recipients("zhangsan").is_ok());
        assert!(validate_wecom_recipients("@all").is_ok());
        let thousand = vec!["u"; 1000].join("|");
        assert!(validate_wecom_recipients(&thousand).is_ok());
        assert_eq!(
            validate_wecom_recipients(&format!("{thousand}|v")),
            Err(InvalidMessage::TooManyRecipients {
                count: 1001,
                max: 1000
            })
        );
        for empty in ["", " ", "|", " | "] {
            assert!(
                matches!(
                    validate_wecom_recipients(empty),
                    Err(InvalidMessage::Empty { .. })
                ),
                "{empty:?}"
            );
        }
    }

    #[test]
    fn errors_and_debug_never_show_contents() {
        let secret = "SECRET-CONTENT-1234";
        let messages: Vec<Box<dyn std::fmt::Debug>> = vec![
            Box::new(WecomMessage::text(secret)),
            Box::new(WecomMessage::markdown(secret)),
            Box::new(WecomMessage::textcard(secret, secret, "https://x")),
            Box::new(WecomMessage::news(vec![
                Article::new(secret, "https://x").description(secret),
            ])),
            Box::new(MpMessage::text(secret)),
            Box::new(MpMessage::news(Article::new(secret, "https://x"))),
        ];
        for m in messages {
            let shown = format!("{m:?}");
            assert!(!shown.contains(secret), "{shown}");
        }
        let err = WecomMessage::text(secret.repeat(200))
            .validate()
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains(secret));
        assert_eq!(
            err.to_string(),
            "text.content is 3800 bytes; the platform allows at most 2048"
        );
    }

    // -- receipts and errors --------------------------------------------------------------

    #[test]
    fn receipts_surface_msgid_and_invalid_users() {
        let r = SendReceipt::from_answer(
            &json!({"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": "MSGID1"}),
            1,
        );
        assert_eq!(r.msgid.as_deref(), Some("MSGID1"));
        assert!(r.invalid_users.is_empty());
        let r = SendReceipt::from_answer(
            &json!({"errcode": 0, "invaliduser": "bob|carol", "msgid": 123}),
            2,
        );
        assert_eq!(r.msgid.as_deref(), Some("123"));
        assert_eq!(r.invalid_users, ["bob", "carol"]);
        assert_eq!(r.attempts, 2);
        let r = SendReceipt::from_answer(&json!({"errcode": 0, "errmsg": "ok"}), 1);
        assert_eq!(r.msgid, None);
    }

    #[test]
    fn send_errors_keep_the_platform_error() {
        let err = SendError::from(TokenError::Api(platform(45009)));
        assert_eq!(err, SendError::Api(platform(45009)));
        assert_eq!(err.errcode(), Some(45009));
        let err = SendError::from(TokenError::Fetch(platform(40013)));
        assert!(matches!(err, SendError::Token(TokenError::Fetch(_))));
        assert_eq!(err.errcode(), Some(40013));
        assert_eq!(SendError::from(TokenError::Timeout).errcode(), None);
        assert_eq!(
            SendError::from(InvalidMessage::Empty { field: "x".into() }).api_error(),
            None
        );
    }

    #[test]
    fn the_platforms_must_match() {
        assert_eq!(
            check_platform(Platform::Wecom, &TokenSource::mp("wx1", "s")),
            Err(InvalidMessage::WrongPlatform {
                message: Platform::Wecom,
                credentials: Platform::Mp
            })
        );
        assert!(check_platform(Platform::Mp, &TokenSource::mp("wx1", "s")).is_ok());
    }

    // -- retry policy ---------------------------------------------------------------------

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn what_is_retried() {
        // What cannot have been delivered is always retried.
        for err in [platform(-1), ApiError::Connect("connection refused".into())] {
            assert!(is_retryable(&err), "{err:?}");
            assert!(is_retryable_deduplicated(&err), "{err:?}");
        }
        // What may have been delivered only where the platform drops repeats.
        for err in [
            ApiError::Http { status: 500 },
            ApiError::Http { status: 502 },
            ApiError::Http { status: 503 },
            ApiError::Http { status: 504 },
            ApiError::Timeout,
            ApiError::Transport("connection reset".into()),
        ] {
            assert!(!is_retryable(&err), "{err:?}");
            assert!(is_retryable_deduplicated(&err), "{err:?}");
        }
        for err in [
            platform(45009),
            platform(45015),
            platform(40001),
            platform(40014),
            platform(81013),
            platform(60020),
            platform(0),
            platform(-2),
            ApiError::Http { status: 400 },
            ApiError::Http { status: 429 },
            ApiError::Decode("not JSON".into()),
        ] {
            assert!(!is_retryable(&err), "{err:?}");
            assert!(!is_retryable_deduplicated(&err), "{err:?}");
        }
    }

    #[test]
    fn delays_double_from_200ms_with_the_jitter_centred() {
        let policy = RetryPolicy::default();
        let busy = platform(-1);
        let delays: Vec<_> = (1..=4)
            .map(|attempts| policy.delay(&busy, attempts, Duration::ZERO, 0.5))
            .collect();
        assert_eq!(
            delays,
            [Some(200 * MS), Some(400 * MS), Some(800 * MS), None],
            "4 attempts in all"
        );
    }

    #[test]
    fn jitter_spans_half_to_one_and_a_half_times() {
        let policy = RetryPolicy::default();
        let busy = platform(-1);
        assert_eq!(policy.delay(&busy, 1, Duration::ZERO, 0.0), Some(100 * MS));
        let longest = policy.delay(&busy, 2, Duration::ZERO, 0.999_999).unwrap();
        assert!(longest > 599 * MS && longest < 600 * MS, "{longest:?}");
        // Out of range and NaN jitter cannot stretch or shrink a delay beyond the band.
        assert_eq!(policy.delay(&busy, 1, Duration::ZERO, 7.0), Some(300 * MS));
        assert_eq!(policy.delay(&busy, 1, Duration::ZERO, -1.0), Some(100 * MS));
        assert_eq!(
            policy.delay(&busy, 1, Duration::ZERO, f64::NAN),
            Some(200 * MS)
        );
        for jitter in [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999] {
            for attempts in 1..=3 {
                let delay = policy
                    .delay(&busy, attempts, Duration::ZERO, jitter)
                    .unwrap();
                let base = 200 * MS * (1 << (attempts - 1));
                assert!(delay >= base / 2 && delay < base * 3 / 2, "{delay:?}");
            }
        }
    }

    #[test]
    fn never_retries_what_cannot_succeed() {
        let policy = RetryPolicy::default();
        for err in [platform(45009), platform(45015), platform(40001)] {
            assert_eq!(policy.delay(&err, 1, Duration::ZERO, 0.5), None, "{err:?}");
        }
    }

    #[test]
    fn the_total_time_limit_stops_retries() {
        let policy = RetryPolicy {
            max_attempts: 10,
            first_delay: 200 * MS,
            total: Duration::from_secs(1),
        };
        let timeout = ApiError::Connect("connect timeout".into());
        assert_eq!(policy.delay(&timeout, 1, 800 * MS, 0.5), Some(200 * MS));
        assert_eq!(policy.delay(&timeout, 1, 801 * MS, 0.5), None);
        // A slow first request eats the budget: 3 s of timeout leaves no retry.
        assert_eq!(policy.delay(&timeout, 1, Duration::from_secs(3), 0.0), None);
        // Attempts far past any sane count do not overflow.
        let huge = RetryPolicy {
            max_attempts: u32::MAX,
            ..policy
        };
        assert_eq!(huge.delay(&timeout, 60, Duration::ZERO, 0.5), None);
        assert_eq!(
            RetryPolicy::never().delay(&timeout, 1, Duration::ZERO, 0.5),
            None
        );
    }

    #[test]
    fn sending_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let provider = TokenProvider::new(
            std::sync::Arc::new(crate::store::MemoryStore::new()),
            crate::wechat::PlatformClient::new(
                crate::wechat::ApiEndpoints::both("http://127.0.0.1:9"),
                crate::wechat::ClientTimeouts::default(),
            )
            .unwrap(),
            crate::wechat::TokenSettings::default(),
        );
        let messenger = Messenger::new(&provider);
        let source = TokenSource::wecom("ww", "s");
        let message = WecomMessage::text("x");
        let future = messenger.send_wecom(&source, 1, "u", &message);
        assert_send(&future);
        let mp = MpMessage::text("x");
        assert_send(&messenger.send_mp(&source, "o", &mp));
    }
}
