//! Reading an upstream's answer into a [`Reply`]: field and type names in its errors,
//! never the values (they are the upstream's, and may be a user's text).
//!
//! Not `Reply`'s derived `Deserialize` (which the config's reply tables use): serde_json's
//! errors quote the offending value (`invalid type: string "…"`), which would put a user's
//! text into a log line, and an upstream's `null` must read as an absent field.

use serde_json::{Map, Value};

use crate::reply::{Article, Reply};

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
