//! The upstream rule: what no local rule answers goes to a bot over HTTP, and its answer
//! becomes the passive reply.
//!
//! ```toml
//! [apps.reply]
//! forward = "https://bot.example.com/wechat"
//! forward_secret = "env:BOT_SECRET"   # the HMAC key the upstream checks requests with
//! forward_timeout_ms = 3500           # optional; default: the budget less min(500, budget/4)
//! ```
//!
//! **The request** is `POST {forward}` with a JSON body
//!
//! ```json
//! {"app": "demo", "platform": "wecom", "authorizer_app_id": null,
//!  "message": {"to_user_name": "…", "from_user_name": "…", "create_time": 1700000000,
//!              "msg_id": 1234, "agent_id": 218, "msg_type": "text", "content": "hi", "extra": []},
//!  "id": "dedup#demo#msg|1234"}
//! ```
//!
//! (`message` is the parsed [`Message`] as serde writes it; `id` is the same for every
//! delivery of one callback, so an upstream can de-duplicate retries) and the headers
//! `Content-Type: application/json`, [`TIMESTAMP_HEADER`]`: <unix seconds>` and
//! [`SIGNATURE_HEADER`]`: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`; see
//! [`verify_signature`].
//!
//! **The answer** is JSON: `{"type": "text", "content": "…"}`, `{"type": "news", "articles":
//! [{"title", "description", "url", "pic_url"}]}`, `{"type": "image" | "voice", "media_id"}`,
//! `{"type": "video", "media_id", "title", "description"}`, `music`,
//! `transfer_customer_service` and `update_button` with the fields of [`Reply`]; or no reply:
//! `{}`, `{"type": "none"}`, HTTP 204 or an empty 2xx body. Unknown fields are ignored.
//!
//! **Failures** (no answer within the time limit, connection refused, a status other than
//! 2xx, a body over [`MAX_ANSWER_BYTES`], not JSON, an unknown type, a missing field) are a
//! [`ForwardError`]; the bot logs it as one warning and answers empty.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use tokio::time::Instant;

use super::Inbound;
use crate::config::reply::forward_url;
use crate::config::{AppConfig, ConfigError, GatewaySettings, secret};
use crate::message::Message;
use crate::platform::Platform;
use crate::reply::{Article, Reply};

/// The header carrying the request's Unix time in seconds, as signed.
pub const TIMESTAMP_HEADER: &str = "x-wxgate-timestamp";
/// The header carrying `sha256=` and the hex HMAC-SHA256 of `timestamp + "." + body`.
pub const SIGNATURE_HEADER: &str = "x-wxgate-signature";
/// The largest answer body read; a larger one is a failure. Replies are a few KB at most.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

const SIGNATURE_PREFIX: &str = "sha256=";

/// The signature header value of a request: `sha256=` and the lowercase hex
/// HMAC-SHA256 of `timestamp + "." + body`, keyed with `secret`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let tag = keyed(secret, timestamp, body).finalize().into_bytes();
    format!("{SIGNATURE_PREFIX}{}", hex::encode(tag))
}

/// How far from the clock a request's timestamp may be for [`verify_signature`].
pub const MAX_SKEW_SECS: u64 = 300;
/// The shortest `forward_secret` accepted: it is an HMAC key.
pub const MIN_SECRET_LEN: usize = 16;

/// Whether `header` (the [`SIGNATURE_HEADER`] value) signs `timestamp` and `body` with
/// `secret`, and `timestamp` is within [`MAX_SKEW_SECS`] of this machine's clock (so a
/// captured request cannot be replayed later). The comparison is constant-time.
/// `timestamp` must be the decimal digits sent in [`TIMESTAMP_HEADER`].
pub fn verify_signature(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    verify_signature_at(
        secret,
        timestamp,
        body,
        header,
        crate::clock::unix_now(),
        MAX_SKEW_SECS,
    )
}

/// [`verify_signature`] against a given clock (`now`, Unix seconds) and skew.
pub fn verify_signature_at(
    secret: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
    now: u64,
    max_skew_secs: u64,
) -> bool {
    let fresh = timestamp
        .parse::<u64>()
        .is_ok_and(|t| t.abs_diff(now) <= max_skew_secs);
    fresh && signed(secret, timestamp, body, header)
}

/// Whether `header` signs `timestamp` and `body`, whatever the time.
fn signed(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let valid_timestamp =
        (1..=20).contains(&timestamp.len()) && timestamp.bytes().all(|b| b.is_ascii_digit());
    let Some(hex_tag) = header.trim().strip_prefix(SIGNATURE_PREFIX) else {
        return false;
    };
    let mut tag = [0u8; 32];
    valid_timestamp
        && hex::decode_to_slice(hex_tag, &mut tag).is_ok()
        && keyed(secret, timestamp, body).verify_slice(&tag).is_ok()
}

fn keyed(secret: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The JSON body sent to the upstream.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamRequest<'a> {
    /// The app's name.
    pub app: &'a str,
    /// `wecom`, `mp` or `open`.
    pub platform: Platform,
    /// Open Platform: the authorized account the message is for.
    pub authorizer_app_id: Option<&'a str>,
    /// The message or event.
    pub message: &'a Message,
    /// The same for every delivery of this callback (the platform retries), different for
    /// every other callback: the gateway's dedup key.
    pub id: String,
}

impl<'a> UpstreamRequest<'a> {
    /// The request for one inbound message.
    pub fn new(inbound: &Inbound<'a>) -> Self {
        Self {
            app: inbound.app,
            platform: inbound.platform,
            authorizer_app_id: inbound.authorizer_app_id,
            message: inbound.message,
            id: crate::store::callback_key(
                inbound.app,
                inbound.authorizer_app_id.is_some(),
                inbound.message,
            ),
        }
    }
}

/// Why an upstream call gave no reply. No variant carries the message, the answer's text
/// or the secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// The request could not be encoded.
    #[error("cannot encode the request: {0}")]
    Encode(String),
    /// No complete answer within the time limit; the call was abandoned.
    #[error("no answer within {0} ms")]
    Timeout(u64),
    /// No connection (refused, unreachable, DNS, TLS).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The exchange broke off after connecting.
    #[error("the request failed: {0}")]
    Transport(String),
    /// A status other than 2xx (redirects are not followed).
    #[error("answered HTTP {0}")]
    Status(u16),
    /// The answer body is over [`MAX_ANSWER_BYTES`].
    #[error("the answer is larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge {
        /// The HTTP status.
        status: u16,
    },
    /// A 2xx answer that is not a reply.
    #[error("unusable answer: {error}")]
    Answer {
        /// The HTTP status.
        status: u16,
        /// What is wrong with it.
        #[source]
        error: AnswerError,
    },
}

impl ForwardError {
    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status(status) | Self::TooLarge { status } | Self::Answer { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

/// What is wrong with an answer body. Field and type names only, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// Not JSON.
    #[error("not JSON ({0})")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// An object with fields but no string `type`.
    #[error("no string `type`")]
    MissingType,
    /// A `type` that is not a reply type.
    #[error("unknown type {0:?}")]
    UnknownType(String),
    /// A field missing or of the wrong JSON type.
    #[error("a {reply} answer needs `{field}` as {expected}")]
    Field {
        /// The reply type.
        reply: &'static str,
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
}

/// Reads an answer body: `Ok(None)` for "no reply" (an empty body, `{}`, `{"type":"none"}`).
///
/// # Errors
/// [`AnswerError`] for anything else that is not a reply.
pub fn parse_answer(body: &[u8]) -> Result<Option<Reply>, AnswerError> {
    if body.trim_ascii().is_empty() {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| AnswerError::NotJson(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(AnswerError::NotAnObject);
    };
    if object.is_empty() {
        return Ok(None);
    }
    let Some(Value::String(kind)) = object.get("type") else {
        return Err(AnswerError::MissingType);
    };
    let fields = |reply| Fields {
        object: &object,
        reply,
    };
    let reply = match kind.as_str() {
        "none" => return Ok(None),
        "text" => Reply::Text {
            content: fields("text").required("content")?,
        },
        "image" => Reply::Image {
            media_id: fields("image").required("media_id")?,
        },
        "voice" => Reply::Voice {
            media_id: fields("voice").required("media_id")?,
        },
        "video" => {
            let f = fields("video");
            Reply::Video {
                media_id: f.required("media_id")?,
                title: f.optional("title")?,
                description: f.optional("description")?,
            }
        }
        "music" => {
            let f = fields("music");
            Reply::Music {
                title: f.optional("title")?,
                description: f.optional("description")?,
                music_url: f.optional("music_url")?,
                hq_music_url: f.optional("hq_music_url")?,
                thumb_media_id: f.required("thumb_media_id")?,
            }
        }
        "news" => Reply::News {
            articles: articles(&object)?,
        },
        "transfer_customer_service" => {
            let kf_account = fields("transfer_customer_service").optional("kf_account")?;
            Reply::TransferCustomerService {
                kf_account: (!kf_account.is_empty()).then_some(kf_account),
            }
        }
        "update_button" => Reply::UpdateButton {
            replace_name: fields("update_button").required("replace_name")?,
        },
        other => {
            // The upstream chose this string; keep the log line short.
            let shown: String = other.chars().take(32).collect();
            return Err(AnswerError::UnknownType(shown));
        }
    };
    Ok(Some(reply))
}

fn articles(object: &Map<String, Value>) -> Result<Vec<Article>, AnswerError> {
    let error = |field, expected| AnswerError::Field {
        reply: "news",
        field,
        expected,
    };
    let Some(Value::Array(items)) = object.get("articles") else {
        return Err(error("articles", "a list of articles"));
    };
    // An empty or long list is refused where the reply is rendered, by the platform's rule.
    items
        .iter()
        .map(|item| {
            let Value::Object(article) = item else {
                return Err(error("articles", "a list of objects"));
            };
            let f = Fields {
                object: article,
                reply: "news",
            };
            Ok(Article {
                title: f.required("title")?,
                description: f.optional("description")?,
                url: f.optional("url")?,
                pic_url: f.optional("pic_url")?,
            })
        })
        .collect()
}

/// String fields of one answer object.
#[derive(Clone, Copy)]
struct Fields<'a> {
    object: &'a Map<String, Value>,
    reply: &'static str,
}

impl Fields<'_> {
    fn required(self, field: &'static str) -> Result<String, AnswerError> {
        match self.object.get(field) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(self.error(field, "a string")),
        }
    }

    /// Absent or `null` is empty.
    fn optional(self, field: &'static str) -> Result<String, AnswerError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(self.error(field, "a string")),
        }
    }

    fn error(self, field: &'static str, expected: &'static str) -> AnswerError {
        AnswerError::Field {
            reply: self.reply,
            field,
            expected,
        }
    }
}

/// The HTTP client for upstream calls: built on first use (building it loads the TLS trust
/// roots, which a cold start that never forwards should not pay for) and shared by every
/// app of a [`ConfigBot`](super::ConfigBot).
#[derive(Debug, Default)]
pub struct UpstreamClient(OnceLock<Result<reqwest::Client, String>>);

impl UpstreamClient {
    /// The client, built now if this is the first call.
    ///
    /// # Errors
    /// [`ForwardError::Client`] when it cannot be built (no TLS backend).
    pub fn get(&self) -> Result<&reqwest::Client, ForwardError> {
        self.0
            .get_or_init(|| {
                reqwest::Client::builder()
                    .user_agent(concat!("wxgate/", env!("CARGO_PKG_VERSION")))
                    // A redirect would re-send a user's message elsewhere; it is a failure.
                    .redirect(reqwest::redirect::Policy::none())
                    // Servers close idle keep-alive connections after a while; reusing one
                    // just as it is closed fails the request, so do not keep them long.
                    .pool_idle_timeout(Duration::from_secs(30))
                    .build()
                    .map_err(|e| error_chain(&e))
            })
            .as_ref()
            .map_err(|e| ForwardError::Client(e.clone()))
    }
}

/// One app's upstream: where, the signing key, the time limit.
#[derive(Clone)]
pub struct Upstream {
    url: Url,
    secret: SecretString,
    timeout: Duration,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The path or query of the URL may hold a token of its own: host only.
        f.debug_struct("Upstream")
            .field("host", &self.url.host_str().unwrap_or_default())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// An upstream at `url` (checked by [`forward_url`]).
    ///
    /// # Errors
    /// The URL is not acceptable, or the timeout is zero.
    pub fn new(url: &str, secret: SecretString, timeout: Duration) -> Result<Self, String> {
        if timeout.is_zero() {
            return Err("the timeout must be positive".into());
        }
        Ok(Self {
            url: forward_url(url)?,
            secret,
            timeout,
        })
    }

    /// The app's upstream, if its `[apps.reply]` has `forward`; the secret is read now.
    ///
    /// # Errors
    /// The secret cannot be read (`env:NAME` unset or empty), or the rule is malformed
    /// (a config from [`Config::parse`](crate::config::Config::parse) never is).
    pub fn from_config(
        app: &AppConfig,
        gateway: &GatewaySettings,
    ) -> Result<Option<Self>, ConfigError> {
        let rules = &app.reply;
        let Some(url) = rules.forward.as_deref() else {
            return Ok(None);
        };
        let invalid = |reason: String| ConfigError::App {
            app: app.name.clone(),
            reason: format!("reply.forward: {reason}"),
        };
        let raw = rules
            .forward_secret
            .as_deref()
            .ok_or_else(|| invalid("needs forward_secret".into()))?;
        let secret = secret::resolve(&app.name, "reply.forward_secret", raw)?;
        if secret.expose_secret().len() < MIN_SECRET_LEN {
            return Err(invalid(format!(
                "forward_secret must be at least {MIN_SECRET_LEN} characters (an HMAC key; use 32 random ones)"
            )));
        }
        Self::new(url, secret, rules.forward_timeout(gateway.budget()))
            .map(Some)
            .map_err(invalid)
    }

    /// The time limit of one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Asks the upstream for the reply to `inbound`, within the time limit: the call is
    /// abandoned (its connection closed) when the limit passes, and so it is when this
    /// future is dropped.
    ///
    /// # Errors
    /// [`ForwardError`]: the call failed or the answer is not a reply.
    pub async fn ask(
        &self,
        client: &UpstreamClient,
        inbound: &Inbound<'_>,
    ) -> Result<Option<Reply>, ForwardError> {
        let client = client.get()?;
        let body = serde_json::to_vec(&UpstreamRequest::new(inbound))
            .map_err(|e| ForwardError::Encode(e.to_string()))?;
        let timestamp = crate::clock::unix_now().to_string();
        let signature = sign(self.secret.expose_secret(), &timestamp, &body);
        let request = client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp)
            .header(SIGNATURE_HEADER, signature)
            .body(body);
        tokio::time::timeout(self.timeout, exchange(request))
            .await
            .unwrap_or_else(|_| {
                Err(ForwardError::Timeout(
                    u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
                ))
            })
    }
}

/// Sends the request and reads the answer, at most [`MAX_ANSWER_BYTES`] of it.
async fn exchange(request: reqwest::RequestBuilder) -> Result<Option<Reply>, ForwardError> {
    let mut response = request.send().await.map_err(transport_error)?;
    let status = response.status();
    if !status.is_success() {
        return Err(ForwardError::Status(status.as_u16()));
    }
    let status = status.as_u16();
    if status == 204 {
        return Ok(None);
    }
    let too_large = ForwardError::TooLarge { status };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    parse_answer(&body).map_err(|error| ForwardError::Answer { status, error })
}

fn transport_error(e: reqwest::Error) -> ForwardError {
    // The call's time limit is applied around the exchange, so no error here is a timeout.
    let e = e.without_url();
    if e.is_connect() {
        ForwardError::Connect(error_chain(&e))
    } else {
        ForwardError::Transport(error_chain(&e))
    }
}

/// An error and its sources on one line. Callers strip the URL first (its query may hold a
/// token).
fn error_chain(e: &reqwest::Error) -> String {
    let mut out = String::new();
    let mut current: Option<&dyn std::error::Error> = Some(e);
    while let Some(error) = current {
        let text = error.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        current = error.source();
    }
    out
}

/// How the bot reports a failed call: one warning with the app, the cause and the status.
pub(super) fn log_failure(app: &str, error: &ForwardError, elapsed: Duration) {
    let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    match error.status() {
        Some(status) => tracing::warn!(
            app,
            status,
            elapsed_ms,
            cause = %error,
            "the upstream bot gave no reply; answering empty"
        ),
        None => tracing::warn!(
            app,
            elapsed_ms,
            cause = %error,
            "the upstream bot gave no reply; answering empty"
        ),
    }
}

/// Asks `upstream`, logging a failure: what [`ConfigBot`](super::ConfigBot) does with a
/// message no local rule answered.
pub(super) async fn reply(
    upstream: &Upstream,
    client: &UpstreamClient,
    inbound: &Inbound<'_>,
) -> Option<Reply> {
    let started = Instant::now();
    upstream.ask(client, inbound).await.unwrap_or_else(|error| {
        log_failure(inbound.app, &error, started.elapsed());
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever an upstream answers, reading it is a reply, no reply or a typed error:
        /// never a panic, and an error never quotes the answer's values.
        #[test]
        fn any_answer_body_is_read_without_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_answer(&body);
        }

        #[test]
        fn any_json_answer_is_read_without_panic(
            kind in prop_oneof![
                Just("text".to_owned()), Just("news".to_owned()), Just("image".to_owned()), Just("voice".to_owned()), Just("video".to_owned()),
                Just("music".to_owned()), Just("none".to_owned()), Just("transfer_customer_service".to_owned()),
                Just("update_button".to_owned()), "[a-z]{0,8}",
            ],
            value in "[^\"\\\\]{0,40}",
            number in any::<i64>(),
            articles in 0usize..12,
        ) {
            let article = serde_json::json!({ "title": value, "url": value, "pic_url": number });
            let body = serde_json::json!({
                "type": kind, "content": value, "media_id": number, "title": value,
                "articles": vec![article; articles], "replace_name": value,
            });
            if let Err(e) = parse_answer(body.to_string().as_bytes()) {
                prop_assert!(value.len() < 6 || !e.to_string().contains(value.as_str()));
            }
        }
    }

    use crate::message::Callback;

    const SECRET: &str = "wxgate-test-secret";
    const BODY: &[u8] = br#"{"app":"demo"}"#;
    /// Python: `hmac.new(b"wxgate-test-secret", b"1700000000." + b'{"app":"demo"}',
    /// hashlib.sha256).hexdigest()`.
    const VECTOR: &str = "sha256=223304072ba8fcdd36e885750e8cdea68397c53f35a42e33af224dca96352149";

    #[test]
    fn the_signature_matches_an_independent_hmac() {
        assert_eq!(sign(SECRET, "1700000000", BODY), VECTOR);
        let at = |ts: &str, body: &[u8], header: &str| {
            verify_signature_at(SECRET, ts, body, header, 1_700_000_000, MAX_SKEW_SECS)
        };
        assert!(at("1700000000", BODY, VECTOR));
        assert!(at("1700000000", BODY, &format!(" {VECTOR}\n")));
        // The clock: a captured request is refused once it is over 5 minutes old.
        assert!(!verify_signature(SECRET, "1700000000", BODY, VECTOR));
        let now = crate::clock::unix_now().to_string();
        assert!(verify_signature(
            SECRET,
            &now,
            BODY,
            &sign(SECRET, &now, BODY)
        ));
        assert!(!verify_signature_at(
            SECRET,
            "1700000000",
            BODY,
            VECTOR,
            1_700_000_301,
            300
        ));
        assert!(verify_signature_at(
            SECRET,
            "1700000000",
            BODY,
            VECTOR,
            1_699_999_700,
            300
        ));
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let ts = "1700000000";
        let verify_signature = |secret: &str, ts: &str, body: &[u8], header: &str| {
            verify_signature_at(secret, ts, body, header, 1_700_000_000, u64::MAX)
        };
        assert!(!verify_signature("other-secret", ts, BODY, VECTOR));
        assert!(!verify_signature(SECRET, "1700000001", BODY, VECTOR));
        assert!(!verify_signature(SECRET, ts, br#"{"app":"demo2"}"#, VECTOR));
        // The separator is part of what is signed: moving bytes across it does not verify.
        let shifted = sign(SECRET, "170000000", b"0.{\"app\":\"demo\"}");
        assert!(!verify_signature(SECRET, ts, BODY, &shifted));
        assert!(!verify_signature(SECRET, "", BODY, &sign(SECRET, "", BODY)));
        assert!(!verify_signature(
            SECRET,
            "1.5",
            BODY,
            &sign(SECRET, "1.5", BODY)
        ));
    }

    #[test]
    fn malformed_signature_headers_are_refused() {
        let ts = "1700000000";
        let verify_signature = |secret: &str, ts: &str, body: &[u8], header: &str| {
            verify_signature_at(secret, ts, body, header, 1_700_000_000, MAX_SKEW_SECS)
        };
        let hex_only = VECTOR.trim_start_matches("sha256=");
        for header in [
            "",
            "sha256=",
            hex_only,
            &format!("sha1={hex_only}"),
            &format!("SHA256={hex_only}"),
            &VECTOR[..VECTOR.len() - 2],
            &format!("{VECTOR}00"),
            &format!("sha256={}", "zz".repeat(32)),
        ] {
            assert!(!verify_signature(SECRET, ts, BODY, header), "{header:?}");
        }
        // Hex case does not matter.
        assert!(verify_signature(
            SECRET,
            ts,
            BODY,
            &format!("sha256={}", hex_only.to_uppercase())
        ));
    }

    fn answer(json: &str) -> Result<Option<Reply>, AnswerError> {
        parse_answer(json.as_bytes())
    }

    #[test]
    fn every_reply_type_is_read() {
        assert_eq!(
            answer(r#"{"type":"text","content":"你好","extra":1}"#),
            Ok(Some(Reply::text("你好")))
        );
        assert_eq!(
            answer(r#"{"type":"image","media_id":"m1"}"#),
            Ok(Some(Reply::Image {
                media_id: "m1".into()
            }))
        );
        assert_eq!(
            answer(r#"{"type":"voice","media_id":"m2"}"#),
            Ok(Some(Reply::Voice {
                media_id: "m2".into()
            }))
        );
        assert_eq!(
            answer(r#"{"type":"video","media_id":"m3","title":"t","description":null}"#),
            Ok(Some(Reply::Video {
                media_id: "m3".into(),
                title: "t".into(),
                description: String::new()
            }))
        );
        assert_eq!(
            answer(
                r#"{"type":"news","articles":[{"title":"a","description":"d","url":"https://e.x/1","pic_url":"https://e.x/p.png"},{"title":"b"}]}"#
            ),
            Ok(Some(Reply::News {
                articles: vec![
                    Article {
                        title: "a".into(),
                        description: "d".into(),
                        url: "https://e.x/1".into(),
                        pic_url: "https://e.x/p.png".into(),
                    },
                    Article {
                        title: "b".into(),
                        ..Article::default()
                    }
                ]
            }))
        );
        assert_eq!(
            answer(r#"{"type":"music","thumb_media_id":"t","music_url":"u"}"#),
            Ok(Some(Reply::Music {
                title: String::new(),
                description: String::new(),
                music_url: "u".into(),
                hq_music_url: String::new(),
                thumb_media_id: "t".into(),
            }))
        );
        assert_eq!(
            answer(r#"{"type":"transfer_customer_service"}"#),
            Ok(Some(Reply::TransferCustomerService { kf_account: None }))
        );
        assert_eq!(
            answer(r#"{"type":"transfer_customer_service","kf_account":"kf@x"}"#),
            Ok(Some(Reply::TransferCustomerService {
                kf_account: Some("kf@x".into())
            }))
        );
        assert_eq!(
            answer(r#"{"type":"update_button","replace_name":"done"}"#),
            Ok(Some(Reply::UpdateButton {
                replace_name: "done".into()
            }))
        );
    }

    #[test]
    fn no_reply_has_four_spellings() {
        for body in [
            "",
            " \r\n",
            "{}",
            r#"{"type":"none"}"#,
            r#" {"type":"none","why":"later"} "#,
        ] {
            assert_eq!(answer(body), Ok(None), "{body:?}");
        }
    }

    #[test]
    fn malformed_answers_are_typed_errors_without_values() {
        let field = |reply, field, expected| {
            Err(AnswerError::Field {
                reply,
                field,
                expected,
            })
        };
        assert!(matches!(answer("<xml/>"), Err(AnswerError::NotJson(_))));
        assert!(matches!(
            answer(r#"{"type":"text","content":"x""#),
            Err(AnswerError::NotJson(_))
        ));
        for body in ["[]", r#""text""#, "null", "1"] {
            assert_eq!(answer(body), Err(AnswerError::NotAnObject), "{body}");
        }
        assert_eq!(answer(r#"{"content":"x"}"#), Err(AnswerError::MissingType));
        assert_eq!(
            answer(r#"{"type":1,"content":"x"}"#),
            Err(AnswerError::MissingType)
        );
        assert_eq!(
            answer(r#"{"type":"TEXT","content":"x"}"#),
            Err(AnswerError::UnknownType("TEXT".into()))
        );
        let long = "x".repeat(100);
        assert_eq!(
            answer(&format!(r#"{{"type":"{long}"}}"#)),
            Err(AnswerError::UnknownType("x".repeat(32)))
        );
        assert_eq!(
            answer(r#"{"type":"text"}"#),
            field("text", "content", "a string")
        );
        let e = answer(r#"{"type":"text","content":["secret words"]}"#).unwrap_err();
        assert_eq!(
            e,
            AnswerError::Field {
                reply: "text",
                field: "content",
                expected: "a string"
            }
        );
        assert!(!e.to_string().contains("secret"), "{e}");
        assert_eq!(
            answer(r#"{"type":"image"}"#),
            field("image", "media_id", "a string")
        );
        assert_eq!(
            answer(r#"{"type":"voice","media_id":5}"#),
            field("voice", "media_id", "a string")
        );
        assert_eq!(
            answer(r#"{"type":"video","media_id":"m","title":5}"#),
            field("video", "title", "a string")
        );
        assert_eq!(
            answer(r#"{"type":"music"}"#),
            field("music", "thumb_media_id", "a string")
        );
        assert_eq!(
            answer(r#"{"type":"update_button"}"#),
            field("update_button", "replace_name", "a string")
        );
        assert_eq!(
            answer(r#"{"type":"news"}"#),
            field("news", "articles", "a list of articles")
        );
        assert_eq!(
            answer(r#"{"type":"news","articles":{"title":"a"}}"#),
            field("news", "articles", "a list of articles")
        );
        assert_eq!(
            answer(r#"{"type":"news","articles":["a"]}"#),
            field("news", "articles", "a list of objects")
        );
        assert_eq!(
            answer(r#"{"type":"news","articles":[{"url":"u"}]}"#),
            field("news", "title", "a string")
        );
        assert_eq!(
            answer(r#"{"type":"news","articles":[{"title":"a","url":1}]}"#),
            field("news", "url", "a string")
        );
        // An empty list parses; the platform's 1..=8 rule refuses it where it is rendered.
        assert_eq!(
            answer(r#"{"type":"news","articles":[]}"#),
            Ok(Some(Reply::News { articles: vec![] }))
        );
    }

    #[test]
    fn the_request_carries_the_message_and_a_stable_id() {
        let xml = "<xml><ToUserName>ww1</ToUserName><FromUserName>lisi</FromUserName>\
                   <CreateTime>1700000000</CreateTime><MsgType>text</MsgType>\
                   <Content>hi</Content><MsgId>42</MsgId><AgentID>218</AgentID></xml>";
        let Ok(Callback::Message(message)) = Callback::parse(xml) else {
            panic!("not a message")
        };
        let inbound = Inbound {
            app: "demo",
            platform: Platform::Wecom,
            authorizer_app_id: None,
            message: &message,
        };
        let json = serde_json::to_value(UpstreamRequest::new(&inbound)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "app": "demo",
                "platform": "wecom",
                "authorizer_app_id": null,
                "message": {
                    "to_user_name": "ww1",
                    "from_user_name": "lisi",
                    "create_time": 1_700_000_000,
                    "msg_id": 42,
                    "agent_id": 218,
                    "msg_type": "text",
                    "content": "hi",
                    "extra": [],
                },
                "id": "dedup#demo#msg|42",
            })
        );
        let open = Inbound {
            app: "platform",
            platform: Platform::Open,
            authorizer_app_id: Some("wxauth"),
            ..inbound
        };
        let request = UpstreamRequest::new(&open);
        assert_eq!(
            request.id, "dedup#platform/ww1#msg|42",
            "scoped by the signed ToUserName"
        );
        assert_eq!(request.authorizer_app_id, Some("wxauth"));
    }

    #[test]
    fn debug_output_shows_neither_secret_nor_path() {
        let upstream = Upstream::new(
            "https://bot.example.com/hook?key=abc",
            SecretString::from("s3cret-value"),
            Duration::from_secs(1),
        )
        .unwrap();
        let shown = format!("{upstream:?}");
        assert!(shown.contains("bot.example.com"), "{shown}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("key=abc"),
            "{shown}"
        );
        assert!(Upstream::new("https://e.x", SecretString::from("s"), Duration::ZERO).is_err());
    }
}
