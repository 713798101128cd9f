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
        }
    }

    /// The official error code (-40001 …) where one applies.
    pub fn code(&self) -> Option<i32> {
        match self {
            Self::Protocol(e) => Some(e.code() as i32),
            _ => None,
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
