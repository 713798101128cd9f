//! Why an upstream call gave no reply.

use super::MAX_ANSWER_BYTES;
use super::answer::AnswerError;

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
