//! The platforms' documented limits, checked before any request: a message the platform
//! would refuse or silently truncate is an error here, not a surprise there.

use super::*;

/// A message or recipient the platform would refuse (or silently truncate). Never quotes
/// the content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMessage {
    /// A required field is empty or blank.
    #[error("{field} is empty")]
    Empty {
        /// The field, e.g. `text.content`.
        field: String,
    },
    /// A field is over the platform's limit.
    #[error("{field} is {len} {unit}; the platform allows at most {max}")]
    TooLong {
        /// The field, e.g. `textcard.title`.
        field: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
        /// `bytes` (UTF-8) or `characters`.
        unit: &'static str,
    },
    /// A news message with no articles or too many.
    #[error("news has {count} articles; the platform allows 1 to {max}")]
    ArticleCount {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A link that is not `http://` or `https://`.
    #[error("{field} must start with http:// or https://")]
    Url {
        /// The field.
        field: String,
    },
    /// More members in `touser` than one message may have.
    #[error("touser names {count} members; the platform allows at most {max}")]
    TooManyRecipients {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The credentials are the other platform's.
    #[error("a {message} message cannot be sent with {credentials} credentials")]
    WrongPlatform {
        /// The message's platform.
        message: Platform,
        /// The credentials' platform.
        credentials: Platform,
    },
}

pub(super) fn require(field: &str, value: &str) -> Result<(), InvalidMessage> {
    if value.trim().is_empty() {
        Err(InvalidMessage::Empty {
            field: field.into(),
        })
    } else {
        Ok(())
    }
}

pub(super) fn max_bytes(field: &str, value: &str, max: usize) -> Result<(), InvalidMessage> {
    if value.len() > max {
        Err(InvalidMessage::TooLong {
            field: field.into(),
            len: value.len(),
            max,
            unit: "bytes",
        })
    } else {
        Ok(())
    }
}

pub(super) fn require_url(field: &str, url: &str) -> Result<(), InvalidMessage> {
    require(field, url)?;
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        Ok(())
    } else {
        Err(InvalidMessage::Url {
            field: field.into(),
        })
    }
}

/// Checks a WeCom `touser`: `UserID1|UserID2|…` (at most 1000) or `@all`.
///
/// # Errors
/// Empty, or too many members.
pub fn validate_wecom_recipients(touser: &str) -> Result<(), InvalidMessage> {
    require("touser", touser)?;
    let count = touser.split('|').filter(|u| !u.trim().is_empty()).count();
    if count == 0 {
        return Err(InvalidMessage::Empty {
            field: "touser".into(),
        });
    }
    if count > WECOM_MAX_RECIPIENTS {
        return Err(InvalidMessage::TooManyRecipients {
            count,
            max: WECOM_MAX_RECIPIENTS,
        });
    }
    Ok(())
}
