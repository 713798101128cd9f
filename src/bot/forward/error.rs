//! Why an upstream call gave no reply.

use super::MAX_ANSWER_BYTES;
use super::answer::AnswerError;
use crate::bot::stream::StreamError;

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
    /// A streamed call answered a reply other than text (a stream shows text).
    #[error("a streamed call needs a text answer, not another reply type")]
    NotText {
        /// The HTTP status.
        status: u16,
    },
    /// A streamed answer that broke off or is malformed; its text so far was kept.
    #[error("streamed answer: {error}")]
    Stream {
        /// The HTTP status.
        status: u16,
        /// What went wrong.
        #[source]
        error: StreamError,
    },
}

impl ForwardError {
    /// The `reason` label of the upstream failures metric.
    pub(crate) fn metric_label(&self) -> &'static str {
        match self {
            Self::Client(_) => "client",
            Self::Encode(_) => "encode",
            Self::Timeout(_) => "timeout",
            Self::Connect(_) => "connect",
            Self::Transport(_) => "transport",
            Self::Status(_) => "status",
            Self::TooLarge { .. } => "too_large",
            Self::Answer { .. } | Self::NotText { .. } => "answer",
            Self::Stream { error, .. } => error.metric_label(),
        }
    }

    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status(status)
            | Self::TooLarge { status }
            | Self::Answer { status, .. }
            | Self::NotText { status }
            | Self::Stream { status, .. } => Some(*status),
            _ => None,
        }
    }
}
