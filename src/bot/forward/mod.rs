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
//!
//! **Streamed** ([`Upstream::ask_streaming`], for a platform that shows text as it grows):
//! the same signed request with `"stream": true` in the body (absent otherwise) and
//! `Accept: `[`STREAM_ACCEPT`]. The answer is the JSON above (a text reply, or none), or
//! `application/x-ndjson` (one object per line) or `text/event-stream` (one object per
//! event's `data`) of `{"delta": "…"}` (appends), `{"content": "…"}` (replaces),
//! `{"done": true}` (the end) and `{"error": "…"}` objects ([`streamed`]), within
//! `stream_timeout_ms` (default 300 s); see docs/llm.md.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

mod answer;
mod error;
mod request;
mod signature;
pub mod streamed;

pub use answer::{AnswerError, parse_answer};
pub use error::ForwardError;
pub use request::UpstreamRequest;
pub use signature::{
    MAX_SKEW_SECS, MIN_SECRET_LEN, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify_signature,
    verify_signature_at,
};

use super::stream::{self, DEFAULT_IDLE_LIMIT, Framing, StreamedText};
use super::{BotError, Inbound, TextSink};
use crate::clock::millis;
use crate::config::reply::forward_url;
use crate::config::{AppConfig, ConfigError, GatewaySettings};
use crate::http::BodyError;
use crate::reply::Reply;

/// The largest answer body read; a larger one is a failure. Replies are a few KB at most.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

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
                crate::http::client_builder()
                    .build()
                    .map_err(|e| crate::http::error_chain(&e))
            })
            .as_ref()
            .map_err(|e| ForwardError::Client(e.clone()))
    }
}

/// The `Accept` header of a streamed call: the answers it can read.
pub const STREAM_ACCEPT: &str = "application/x-ndjson, text/event-stream, application/json";

/// One app's upstream: where, the signing key, the time limits.
#[derive(Clone)]
pub struct Upstream {
    url: Url,
    secret: SecretString,
    timeout: Duration,
    stream_timeout: Duration,
    idle_limit: Duration,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The path or query of the URL may hold a token of its own: host only.
        f.debug_struct("Upstream")
            .field("host", &self.url.host_str().unwrap_or_default())
            .field("timeout", &self.timeout)
            .field("stream_timeout", &self.stream_timeout)
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
            stream_timeout: Duration::from_millis(crate::config::reply::DEFAULT_STREAM_TIMEOUT_MS),
            idle_limit: DEFAULT_IDLE_LIMIT,
        })
    }

    /// With this time limit for a streamed call ([`ask_streaming`](Self::ask_streaming)),
    /// instead of `[apps.reply] stream_timeout_ms`'s default.
    #[must_use]
    pub fn with_stream_timeout(mut self, limit: Duration) -> Self {
        self.stream_timeout = limit;
        self
    }

    /// With this longest wait for the next piece of a streamed answer, instead of
    /// [`DEFAULT_IDLE_LIMIT`](super::stream::DEFAULT_IDLE_LIMIT).
    #[must_use]
    pub fn with_idle_limit(mut self, limit: Duration) -> Self {
        self.idle_limit = limit;
        self
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
        let secret = app.resolve("reply.forward_secret", raw)?;
        if secret.expose_secret().len() < MIN_SECRET_LEN {
            return Err(invalid(format!(
                "forward_secret must be at least {MIN_SECRET_LEN} characters (an HMAC key; use 32 random ones)"
            )));
        }
        Self::new(url, secret, rules.forward_timeout(gateway.budget()))
            .map(|upstream| Some(upstream.with_stream_timeout(rules.stream_timeout())))
            .map_err(invalid)
    }

    /// The time limit of one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The time limit of one streamed call.
    pub fn stream_timeout(&self) -> Duration {
        self.stream_timeout
    }

    /// The signed request for `inbound`.
    fn request(
        &self,
        client: &reqwest::Client,
        inbound: &Inbound<'_>,
        stream: bool,
    ) -> Result<reqwest::RequestBuilder, ForwardError> {
        let mut body = UpstreamRequest::new(inbound);
        body.stream = stream;
        let body = serde_json::to_vec(&body).map_err(|e| ForwardError::Encode(e.to_string()))?;
        let timestamp = crate::clock::unix_now().to_string();
        let signature = sign(self.secret.expose_secret(), &timestamp, &body);
        Ok(client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp)
            .header(SIGNATURE_HEADER, signature)
            .body(body))
    }

    /// Asks the upstream for the reply to `inbound` as a text that may grow while it is
    /// written: the same signed request with `"stream": true` and
    /// `Accept: `[`STREAM_ACCEPT`]. The text so far is put into `sink` as it grows (also
    /// when the call then fails); the final text is returned, `None` for no reply. The whole
    /// call is bounded by the stream time limit, each wait for the next piece by the idle
    /// limit; dropping the future abandons the call.
    ///
    /// # Errors
    /// [`ForwardError`]: the call failed, the stream broke off or was malformed, or a JSON
    /// answer is a reply other than text.
    pub async fn ask_streaming(
        &self,
        client: &UpstreamClient,
        inbound: &Inbound<'_>,
        sink: &TextSink,
    ) -> Result<Option<String>, ForwardError> {
        let request = self
            .request(client.get()?, inbound, true)?
            .header(reqwest::header::ACCEPT, STREAM_ACCEPT);
        let idle = self.idle_limit.min(self.stream_timeout);
        tokio::time::timeout(self.stream_timeout, stream_exchange(request, sink, idle))
            .await
            .unwrap_or_else(|_| Err(ForwardError::Timeout(millis(self.stream_timeout))))
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
        let request = self.request(client.get()?, inbound, false)?;
        tokio::time::timeout(self.timeout, exchange(request))
            .await
            .unwrap_or_else(|_| Err(ForwardError::Timeout(millis(self.timeout))))
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
    let body = read_body(&mut response, status).await?;
    parse_answer(&body).map_err(|error| ForwardError::Answer { status, error })
}

/// Reads a whole answer body, at most [`MAX_ANSWER_BYTES`] of it.
async fn read_body(response: &mut reqwest::Response, status: u16) -> Result<Vec<u8>, ForwardError> {
    crate::http::read_capped(response, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => ForwardError::TooLarge { status },
            BodyError::Transfer(e) => transport_error(e),
        })
}

/// Sends a streamed request and reads its answer, whichever of the three kinds it is
/// (told by its `Content-Type`; anything but NDJSON and SSE is read as one JSON answer).
async fn stream_exchange(
    request: reqwest::RequestBuilder,
    sink: &TextSink,
    idle: Duration,
) -> Result<Option<String>, ForwardError> {
    let mut response = request.send().await.map_err(transport_error)?;
    let status = response.status();
    if !status.is_success() {
        return Err(ForwardError::Status(status.as_u16()));
    }
    let status = status.as_u16();
    if status == 204 {
        return Ok(None);
    }
    let framing = match media_type(&response).as_str() {
        "application/x-ndjson" => Framing::Lines,
        "text/event-stream" => Framing::Sse,
        _ => {
            let body = read_body(&mut response, status).await?;
            return match parse_answer(&body) {
                Ok(Some(Reply::Text { content })) => {
                    sink.set(&content);
                    Ok(Some(content).filter(|c| !c.is_empty()))
                }
                Ok(None) => Ok(None),
                Ok(Some(_)) => Err(ForwardError::NotText { status }),
                Err(error) => Err(ForwardError::Answer { status, error }),
            };
        }
    };
    let mut text = StreamedText::new(sink);
    let ended = stream::read_frames(&mut response, framing, idle, |frame| {
        streamed::apply_object(frame, &mut text)
    })
    .await;
    match ended {
        Ok(stream::Flow::Done) => Ok(text.finish()),
        Ok(stream::Flow::More) => Err(ForwardError::Stream {
            status,
            error: stream::StreamError::Truncated,
        }),
        Err(error) => Err(ForwardError::Stream { status, error }),
    }
}

/// The answer's media type, lowercase, without parameters.
pub(crate) fn media_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn transport_error(e: reqwest::Error) -> ForwardError {
    // The call's time limit is applied around the exchange, so no error here is a timeout.
    let e = e.without_url();
    if e.is_connect() {
        ForwardError::Connect(crate::http::error_chain(&e))
    } else {
        ForwardError::Transport(crate::http::error_chain(&e))
    }
}

/// Asks `upstream`: what [`ConfigBot`](super::ConfigBot) does with a message no local rule
/// answered. A failure says how long the call took, and the HTTP status when there was one.
pub(super) async fn reply(
    upstream: &Upstream,
    client: &UpstreamClient,
    inbound: &Inbound<'_>,
) -> Result<Option<Reply>, BotError> {
    let started = Instant::now();
    let answer = upstream.ask(client, inbound).await;
    super::observed::observe(inbound.app, "upstream", started, answer)
}

/// As [`reply`], streamed: what [`ConfigBot`](super::ConfigBot) streams for a message no
/// local rule answered.
pub(super) async fn stream(
    upstream: &Upstream,
    client: &UpstreamClient,
    inbound: &Inbound<'_>,
    sink: &TextSink,
) -> Result<Option<String>, BotError> {
    let started = Instant::now();
    let answer = upstream.ask_streaming(client, inbound, sink).await;
    super::observed::observe(inbound.app, "upstream", started, answer)
}

impl super::observed::Failure for ForwardError {
    fn metric_label(&self) -> &'static str {
        ForwardError::metric_label(self)
    }

    fn status(&self) -> Option<u16> {
        ForwardError::status(self)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::platform::Platform;
    use crate::reply::Article;

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
        // The id is the gateway's dedup key (`store::callback_key`, tested there).
        let key = crate::store::callback_key("demo", false, &message);
        let inbound = Inbound {
            app: "demo",
            platform: Platform::Wecom,
            authorizer_app_id: None,
            message: &message,
            id: &key,
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
        let open_key = crate::store::callback_key("platform", true, &message);
        let open = Inbound {
            app: "platform",
            platform: Platform::Open,
            authorizer_app_id: Some("wxauth"),
            id: &open_key,
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
