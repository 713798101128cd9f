//! The `llm` upstream: what no local rule answers goes to an OpenAI-compatible
//! chat-completions endpoint, and the model's answer becomes the text reply.
//!
//! ```toml
//! [apps.reply]
//! llm = "https://api.openai.com/v1"       # POST {llm}/chat/completions; https, or http to localhost
//! llm_model = "gpt-4o-mini"
//! llm_api_key = "env:OPENAI_API_KEY"      # optional (a local server without auth)
//! llm_system_prompt = "You answer in Chinese, briefly."   # optional
//! llm_max_tokens = 800                    # optional
//! stream_timeout_ms = 300000              # optional; the time limit of a streamed call
//! ```
//!
//! **The request**: `{"model", "messages": [{"role": "system", "content": prompt}?,
//! {"role": "user", "content": text}], "stream": true, "max_tokens"?}` with
//! `Authorization: Bearer <key>` when there is a key. Only a text message, or a voice
//! message with the platform's recognized text, is asked; any other message or event the
//! local rules do not answer gets no reply and no call.
//!
//! **The answer**: server-sent events, `data: {"choices":[{"delta":{"content":"…"}}]}` …
//! `data: [DONE]` (`delta.reasoning_content` is skipped: the thinking is not shown). A
//! server that answers a whole completion as JSON is read too. A status other than 2xx is
//! an [`LlmError::Status`] named by what it means (401/403: the key is refused, 404: no such
//! model or URL, 429: rate limited, 5xx: the server failed) and the error body's `code`,
//! never its message (which may quote part of the key).

mod chunk;
mod error;

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio::time::Instant;

pub use chunk::{Progress, apply_chunk, apply_completion, error_code};
pub use error::LlmError;

use super::stream::{
    self, DEFAULT_IDLE_LIMIT, Flow, Framing, MAX_TEXT_BYTES, StreamError, StreamedText,
};
use super::{BotError, Inbound, TextSink, UpstreamClient};
use crate::config::reply::{DEFAULT_STREAM_TIMEOUT_MS, llm_url};
use crate::config::{AppConfig, ConfigError, GatewaySettings};
use crate::message::{Content, Message};

/// The largest error body read, for its `code`.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// One app's chat-completions endpoint: where, which model, the key, the time limits.
#[derive(Clone)]
pub struct Llm {
    endpoint: Url,
    model: String,
    api_key: Option<SecretString>,
    system_prompt: Option<String>,
    max_tokens: Option<u32>,
    stream_timeout: Duration,
    reply_timeout: Duration,
    idle_limit: Duration,
}

impl fmt::Debug for Llm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Llm")
            .field("host", &self.endpoint.host_str().unwrap_or_default())
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "…"))
            .field("stream_timeout", &self.stream_timeout)
            .finish_non_exhaustive()
    }
}

/// The text of a message that goes to the model: a text message's, or a voice message's
/// recognized text; `None` for anything else.
pub fn prompt_of(message: &Message) -> Option<&str> {
    let text = match &message.content {
        Content::Text { content } => content.as_str(),
        Content::Voice {
            recognition: Some(recognition),
            ..
        } => recognition.as_str(),
        _ => return None,
    };
    Some(text).filter(|t| !t.trim().is_empty())
}

impl Llm {
    /// The endpoint of the API at `base` (checked by [`llm_url`]) asking `model`.
    ///
    /// # Errors
    /// The URL is not acceptable, or the model is empty.
    pub fn new(base: &str, model: impl Into<String>) -> Result<Self, String> {
        let model = model.into();
        if model.trim().is_empty() {
            return Err("the model is empty".into());
        }
        let stream_timeout = Duration::from_millis(DEFAULT_STREAM_TIMEOUT_MS);
        Ok(Self {
            endpoint: llm_url(base)?,
            model: model.trim().to_owned(),
            api_key: None,
            system_prompt: None,
            max_tokens: None,
            stream_timeout,
            reply_timeout: stream_timeout,
            idle_limit: DEFAULT_IDLE_LIMIT,
        })
    }

    /// With this API key, sent as `Authorization: Bearer …`.
    #[must_use]
    pub fn with_api_key(mut self, key: SecretString) -> Self {
        self.api_key = Some(key);
        self
    }

    /// With this system message before the user's.
    #[must_use]
    pub fn with_system_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.system_prompt = Some(prompt.into()).filter(|p| !p.trim().is_empty());
        self
    }

    /// With `max_tokens` in the request.
    #[must_use]
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// With these time limits: of a streamed call ([`ask_streaming`](Self::ask_streaming)),
    /// and of a call for a whole reply ([`ask`](Self::ask)).
    #[must_use]
    pub fn with_timeouts(mut self, stream: Duration, reply: Duration) -> Self {
        self.stream_timeout = stream;
        self.reply_timeout = reply;
        self
    }

    /// With this longest wait for the next piece of the answer.
    #[must_use]
    pub fn with_idle_limit(mut self, limit: Duration) -> Self {
        self.idle_limit = limit;
        self
    }

    /// The app's endpoint, if its `[apps.reply]` has `llm`; the API key is read now. A
    /// whole reply ([`ask`](Self::ask), for the platforms without streaming) may take up to
    /// the gateway's `deferred_limit_ms`, the longest a late reply is waited for.
    ///
    /// # Errors
    /// The key cannot be read (`env:NAME` unset or empty, a reference not fetched), or the
    /// rule is malformed (a config from [`Config::parse`](crate::config::Config::parse)
    /// never is).
    pub fn from_config(
        app: &AppConfig,
        gateway: &GatewaySettings,
    ) -> Result<Option<Self>, ConfigError> {
        let rules = &app.reply;
        let Some(base) = rules.llm.as_deref() else {
            return Ok(None);
        };
        let invalid = |reason: String| ConfigError::App {
            app: app.name.clone(),
            reason: format!("reply.llm: {reason}"),
        };
        let mut llm = Self::new(base, rules.llm_model.as_deref().unwrap_or_default())
            .map_err(invalid)?
            .with_timeouts(
                rules.stream_timeout(),
                Duration::from_millis(gateway.deferred_limit_ms),
            );
        if let Some(raw) = rules.llm_api_key.as_deref() {
            llm = llm.with_api_key(app.resolve("reply.llm_api_key", raw)?);
        }
        if let Some(prompt) = &rules.llm_system_prompt {
            llm = llm.with_system_prompt(prompt.clone());
        }
        if let Some(max_tokens) = rules.llm_max_tokens {
            llm = llm.with_max_tokens(max_tokens);
        }
        Ok(Some(llm))
    }

    /// The JSON body asking the model about `text`.
    pub fn request_body(&self, text: &str) -> serde_json::Value {
        let mut messages = Vec::new();
        if let Some(prompt) = &self.system_prompt {
            messages.push(json!({"role": "system", "content": prompt}));
        }
        messages.push(json!({"role": "user", "content": text}));
        let mut body = json!({"model": self.model, "messages": messages, "stream": true});
        if let Some(max_tokens) = self.max_tokens {
            body["max_tokens"] = json!(max_tokens);
        }
        body
    }

    /// Asks the model about `inbound` (its [`prompt_of`]; `Ok(None)` without a call for a
    /// message that has none), putting the text into `sink` as it grows (also when the call
    /// then fails). The final text is returned, `None` when it is empty. The whole call is
    /// bounded by the stream time limit, each wait for the next piece by the idle limit;
    /// dropping the future abandons the call.
    ///
    /// # Errors
    /// [`LlmError`]: the call failed, was refused, or the stream broke off.
    pub async fn ask_streaming(
        &self,
        client: &UpstreamClient,
        inbound: &Inbound<'_>,
        sink: &TextSink,
    ) -> Result<Option<String>, LlmError> {
        self.ask_within(client, inbound, sink, self.stream_timeout)
            .await
    }

    /// As [`ask_streaming`](Self::ask_streaming), for a whole answer: the text when it is
    /// complete, within the reply time limit.
    ///
    /// # Errors
    /// As [`ask_streaming`](Self::ask_streaming).
    pub async fn ask(
        &self,
        client: &UpstreamClient,
        inbound: &Inbound<'_>,
    ) -> Result<Option<String>, LlmError> {
        let (sink, _watch) = TextSink::new();
        self.ask_within(client, inbound, &sink, self.reply_timeout)
            .await
    }

    async fn ask_within(
        &self,
        client: &UpstreamClient,
        inbound: &Inbound<'_>,
        sink: &TextSink,
        limit: Duration,
    ) -> Result<Option<String>, LlmError> {
        let Some(text) = prompt_of(inbound.message) else {
            return Ok(None);
        };
        // The reason only: both errors say "cannot build the HTTP client".
        let client = client.get().map_err(|e| match e {
            super::ForwardError::Client(reason) => LlmError::Client(reason),
            other => LlmError::Client(other.to_string()),
        })?;
        let mut request = client
            .post(self.endpoint.clone())
            .header(
                reqwest::header::ACCEPT,
                "text/event-stream, application/json",
            )
            .json(&self.request_body(text));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let idle = self.idle_limit.min(limit);
        tokio::time::timeout(limit, exchange(request, sink, idle))
            .await
            .unwrap_or_else(|_| Err(LlmError::Timeout(crate::clock::millis(limit))))
    }
}

/// Sends the request and reads the completion, streamed or whole.
async fn exchange(
    request: reqwest::RequestBuilder,
    sink: &TextSink,
    idle: Duration,
) -> Result<Option<String>, LlmError> {
    let mut response = request.send().await.map_err(transport_error)?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        // Only for its error code: a body that breaks off or is too long has none.
        let body = crate::http::read_capped(&mut response, MAX_ERROR_BODY_BYTES)
            .await
            .unwrap_or_default();
        let code = serde_json::from_slice(&body)
            .ok()
            .and_then(|v: serde_json::Value| error_code(&v));
        return Err(LlmError::Status { status, code });
    }
    let answer = |error| LlmError::Answer { status, error };
    let mut text = StreamedText::new(sink);
    if super::forward::media_type(&response) != "text/event-stream" {
        let body = crate::http::read_capped(&mut response, MAX_TEXT_BYTES + 4096)
            .await
            .map_err(|e| match e {
                crate::http::BodyError::TooLarge => answer(StreamError::TextTooLong {
                    limit: MAX_TEXT_BYTES,
                }),
                crate::http::BodyError::Transfer(e) => transport_error(e),
            })?;
        apply_completion(&body, &mut text).map_err(answer)?;
        return Ok(text.finish());
    }
    let mut progress = Progress::default();
    let ended = stream::read_frames(&mut response, Framing::Sse, idle, |frame| {
        apply_chunk(frame, &mut text, &mut progress)
    })
    .await
    .map_err(answer)?;
    // A server that ends without `[DONE]` after the model finished has answered whole.
    if ended == Flow::More && !progress.finished {
        return Err(answer(StreamError::Truncated));
    }
    Ok(text.finish())
}

fn transport_error(e: reqwest::Error) -> LlmError {
    // The call's time limit is applied around the exchange, so no error here is a timeout.
    let e = e.without_url();
    if e.is_connect() {
        LlmError::Connect(crate::http::error_chain(&e))
    } else {
        LlmError::Transport(crate::http::error_chain(&e))
    }
}

/// Asks `llm` for a whole answer: what [`ConfigBot`](super::ConfigBot) does for a platform
/// that does not stream.
pub(super) async fn reply(
    llm: &Llm,
    client: &UpstreamClient,
    inbound: &Inbound<'_>,
) -> Result<Option<String>, BotError> {
    let started = Instant::now();
    let answer = llm.ask(client, inbound).await;
    super::observed::observe(inbound.app, "llm", started, answer)
}

/// Asks `llm`, streaming the answer into `sink`.
pub(super) async fn stream(
    llm: &Llm,
    client: &UpstreamClient,
    inbound: &Inbound<'_>,
    sink: &TextSink,
) -> Result<Option<String>, BotError> {
    let started = Instant::now();
    let answer = llm.ask_streaming(client, inbound, sink).await;
    super::observed::observe(inbound.app, "llm", started, answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_has_the_model_the_prompt_and_the_text() {
        let llm = Llm::new("https://api.openai.com/v1/", "gpt-4o-mini").unwrap();
        assert_eq!(
            llm.endpoint.as_str(),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            llm.request_body("hi"),
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": true})
        );
        let llm = llm.with_system_prompt("be brief").with_max_tokens(100);
        assert_eq!(
            llm.request_body("hi"),
            json!({
                "model": "gpt-4o-mini",
                "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
                "stream": true,
                "max_tokens": 100,
            })
        );
        assert!(Llm::new("http://example.com/v1", "m").is_err());
        assert!(Llm::new("http://localhost:11434/v1", "m").is_ok());
        assert!(Llm::new("https://e.x/v1", " ").is_err());
    }

    #[test]
    fn debug_output_shows_no_key() {
        let llm = Llm::new("https://api.openai.com/v1", "m")
            .unwrap()
            .with_api_key(SecretString::from("sk-very-secret"));
        let shown = format!("{llm:?}");
        assert!(
            shown.contains("api.openai.com") && !shown.contains("sk-very"),
            "{shown}"
        );
    }
}
