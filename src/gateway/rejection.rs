//! Why a request is refused, and the HTTP status each reason gets.
//!
//! Every refusal is logged once with its cause and, where one applies, the official error
//! code, so an operator can search "-40001" and find the request. The response body says
//! the same in one line; it never contains secrets or message contents.

use http::StatusCode;

use super::response::{CallbackResponse, TEXT_PLAIN};
use crate::error::ProtocolError;

/// A refused request.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// No configured app serves this path.
    #[error("no callback route here")]
    NotFound,
    /// The route exists, the method does not.
    #[error("method not allowed (allowed: {allow})")]
    MethodNotAllowed {
        /// The `Allow` header value.
        allow: &'static str,
    },
    /// The body is over `gateway.max_body_bytes`.
    #[error("body of {len} bytes is over the {max}-byte limit")]
    PayloadTooLarge {
        /// The body's length (or its declared length).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Missing or malformed parameters, or a request this app cannot take.
    #[error("{0}")]
    BadRequest(String),
    /// Signature, decryption or parsing failed.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A plain `signature` (which does not cover the body) seen before with another body
    /// within the replay window.
    #[error(
        "this signature was already used with another body: a replayed or forged request (plaintext mode signs no body; set the account to safe mode)"
    )]
    SignatureReused,
    /// Another delivery of this message holds its claim and recorded no answer within this
    /// delivery's budget (its holder may have died): the platform is to try again.
    #[error(
        "another delivery of this message is still being decided (or its instance died); try again"
    )]
    Undecided,
    /// An AI bot refresh whose stream could not be read: the platform asks again.
    #[error(
        "the stream cannot be read from the store now; the platform's next refresh will try again"
    )]
    StoreUnavailable,
    /// Correctly signed, but the timestamp is outside the replay window.
    #[error(
        "timestamp {timestamp} is {skew} s from the clock, outside the {window} s replay window (a replayed request, or a wrong clock)"
    )]
    Stale {
        /// The request's timestamp.
        timestamp: u64,
        /// Its distance from the clock.
        skew: u64,
        /// The window.
        window: u64,
    },
}

impl Rejection {
    pub(crate) fn bad_request(reason: impl Into<String>) -> Self {
        Self::BadRequest(reason.into())
    }

    /// The HTTP status.
    ///
    /// A signature that does not match is 401 (no valid credentials); a valid signature with
    /// a stale timestamp is 403 (authenticated, refused). A malformed signature is a
    /// malformed parameter, 400, like undecryptable or unparsable bodies.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Protocol(ProtocolError::SignatureMismatch) => StatusCode::UNAUTHORIZED,
            Self::Protocol(_) => StatusCode::BAD_REQUEST,
            Self::Stale { .. } | Self::SignatureReused => StatusCode::FORBIDDEN,
            // Not the sender's fault, and worth repeating: the platforms retry a callback
            // that got no answer or an error, but take any 200 (empty too) as handled.
            Self::Undecided | Self::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The official error code (-40001 …) where one applies.
    pub fn code(&self) -> Option<i32> {
        match self {
            Self::Protocol(e) => Some(e.code() as i32),
            _ => None,
        }
    }

    /// The `code` label of the refusals metric: the official code, else the reason.
    pub(crate) fn metric_label(&self) -> &'static str {
        match self {
            Self::Protocol(e) => e.code().label(),
            Self::NotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "too_large",
            Self::BadRequest(_) => "bad_request",
            Self::SignatureReused => "signature_reused",
            Self::Stale { .. } => "stale",
            Self::Undecided => "undecided",
            Self::StoreUnavailable => "store_unavailable",
        }
    }

    /// The response: the status and a one-line reason.
    pub fn response(&self) -> CallbackResponse {
        let status = self.status();
        let reason = status.canonical_reason().unwrap_or("error");
        CallbackResponse {
            status,
            content_type: TEXT_PLAIN,
            allow: match self {
                Self::MethodNotAllowed { allow } => Some(allow),
                _ => None,
            },
            body: format!("{reason}: {self}\n").into(),
        }
    }

    /// Logs the refusal: unknown routes and methods at info (scanners produce them by the
    /// thousand), everything else at warn.
    pub(crate) fn log(&self, app: Option<&str>) {
        let status = self.status().as_u16();
        let app = app.unwrap_or("-");
        let app = tracing::field::display(app);
        match (self, self.code()) {
            (Self::NotFound | Self::MethodNotAllowed { .. }, _) => {
                tracing::info!(app, status, cause = %self, "callback refused");
            }
            (_, Some(code)) => {
                tracing::warn!(app, status, code, cause = %self, "callback refused");
            }
            (_, None) => tracing::warn!(app, status, cause = %self, "callback refused"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_cause() {
        let cases = [
            (Rejection::NotFound, 404),
            (Rejection::MethodNotAllowed { allow: "POST" }, 405),
            (Rejection::PayloadTooLarge { len: 2, max: 1 }, 413),
            (Rejection::bad_request("x"), 400),
            (Rejection::Undecided, 503),
            (Rejection::StoreUnavailable, 503),
            (ProtocolError::SignatureMismatch.into(), 401),
            (ProtocolError::SignatureMalformed("zz").into(), 400),
            (ProtocolError::IllegalBuffer("pad").into(), 400),
            (
                Rejection::Stale {
                    timestamp: 1,
                    skew: 999,
                    window: 300,
                },
                403,
            ),
        ];
        for (rejection, status) in cases {
            assert_eq!(rejection.status().as_u16(), status, "{rejection}");
        }
    }

    #[test]
    fn responses_carry_the_code_and_allow_header() {
        let r = Rejection::from(ProtocolError::SignatureMismatch).response();
        let body = std::str::from_utf8(&r.body).unwrap();
        assert!(
            body.starts_with("Unauthorized: ") && body.contains("-40001"),
            "{body}"
        );
        let r = Rejection::MethodNotAllowed { allow: "POST" }.response();
        assert_eq!(r.allow, Some("POST"));
    }
}
