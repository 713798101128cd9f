//! The framework-neutral response the adapters translate from.

use bytes::Bytes;
use http::StatusCode;

/// What to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackResponse {
    /// The status.
    pub status: StatusCode,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// For 405: the `Allow` header.
    pub allow: Option<&'static str>,
    /// The body.
    pub body: Bytes,
}

/// Content types of the answers.
pub(crate) const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
pub(crate) const TEXT_XML: &str = "text/xml; charset=utf-8";
pub(crate) const TEXT_HTML: &str = "text/html; charset=utf-8";
pub(crate) const APPLICATION_JSON: &str = "application/json";

impl CallbackResponse {
    /// 200 with a body.
    pub(crate) fn ok(content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self {
            status: StatusCode::OK,
            content_type,
            allow: None,
            body: body.into(),
        }
    }

    /// A page for a person, with `status`.
    pub(crate) fn html(status: StatusCode, body: String) -> Self {
        Self {
            status,
            content_type: TEXT_HTML,
            allow: None,
            body: body.into(),
        }
    }

    /// The empty answer: the platform neither retries nor shows an error. `success` is what
    /// Open Platform and WeCom suite events require, and every platform accepts it.
    pub(crate) fn success() -> Self {
        Self::ok(TEXT_PLAIN, Bytes::from_static(b"success"))
    }

    /// The empty body: the AI bot's empty answer.
    pub(crate) fn empty() -> Self {
        Self::ok(TEXT_PLAIN, Bytes::new())
    }

    /// Whether this is the empty answer.
    pub fn is_success_literal(&self) -> bool {
        self.status == StatusCode::OK && self.body.as_ref() == b"success"
    }
}
