//! Why a call to the `llm` endpoint gave no answer.

use crate::bot::stream::StreamError;

/// Why a call to the `llm` endpoint gave no answer. No variant carries the message, the
/// answer's text or the API key (nor the endpoint's own error message, which may quote
/// part of the key).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// No complete answer within the time limit; the call was abandoned.
    #[error("no complete answer within {0} ms")]
    Timeout(u64),
    /// No connection (refused, unreachable, DNS, TLS).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The exchange broke off after connecting.
    #[error("the request failed: {0}")]
    Transport(String),
    /// A status other than 2xx, with the error's `code` or `type` when it had a short one.
    #[error("{} (HTTP {status}{})", status_meaning(*status), code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Status {
        /// The HTTP status.
        status: u16,
        /// The error body's `code` or `type` (`invalid_api_key`, `model_not_found`, …).
        code: Option<String>,
    },
    /// A 2xx answer that is not a chat completion.
    #[error("unusable answer: {error}")]
    Answer {
        /// The HTTP status.
        status: u16,
        /// What is wrong with it.
        #[source]
        error: StreamError,
    },
}

/// What a status means for a chat-completions call.
fn status_meaning(status: u16) -> &'static str {
    match status {
        401 | 403 => "the API key is refused",
        404 => "no such model or URL",
        429 => "rate limited",
        500..=599 => "the server failed",
        _ => "answered an error",
    }
}

impl LlmError {
    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } | Self::Answer { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl crate::bot::observed::Failure for LlmError {
    fn metric_label(&self) -> &'static str {
        match self {
            Self::Client(_) => "client",
            Self::Timeout(_) => "timeout",
            Self::Connect(_) => "connect",
            Self::Transport(_) => "transport",
            Self::Status { .. } => "status",
            Self::Answer { error, .. } => error.metric_label(),
        }
    }

    fn status(&self) -> Option<u16> {
        LlmError::status(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_say_what_they_mean() {
        let shown = |status, code: Option<&str>| {
            LlmError::Status {
                status,
                code: code.map(str::to_owned),
            }
            .to_string()
        };
        assert_eq!(
            shown(401, Some("invalid_api_key")),
            "the API key is refused (HTTP 401, invalid_api_key)"
        );
        assert_eq!(shown(403, None), "the API key is refused (HTTP 403)");
        assert_eq!(shown(404, None), "no such model or URL (HTTP 404)");
        assert_eq!(shown(429, None), "rate limited (HTTP 429)");
        assert_eq!(shown(503, None), "the server failed (HTTP 503)");
        assert_eq!(shown(400, None), "answered an error (HTTP 400)");
    }
}
