//! Sending: the [`Messenger`] over the shared token, its retries, and what the platform
//! answered.

use super::*;

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
    pub(super) fn from_answer(answer: &Value, attempts: u32) -> Self {
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
pub struct Messenger<'a, S: TokenStore = crate::store::Backend> {
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

pub(super) fn check_platform(
    message: Platform,
    source: &TokenSource,
) -> Result<(), InvalidMessage> {
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
