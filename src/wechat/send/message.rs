//! The messages: WeCom app messages and Official Account customer messages, their JSON
//! bodies, and what `Debug` shows of them (type and sizes, never contents).

use serde::Serialize;

use crate::reply::Reply;

use super::*;

/// An article as the active message APIs take it: absent fields left out.
#[derive(Serialize)]
struct ArticleBody<'a> {
    title: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    url: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    picurl: &'a str,
}

impl<'a> From<&'a Article> for ArticleBody<'a> {
    fn from(a: &'a Article) -> Self {
        Self {
            title: &a.title,
            description: &a.description,
            url: &a.url,
            picurl: &a.pic_url,
        }
    }
}

/// Checks an article against the active APIs' limits (WeCom's byte limits when `wecom`).
fn validate_article(article: &Article, field: &str, wecom: bool) -> Result<(), InvalidMessage> {
    require(&format!("{field}.title"), &article.title)?;
    require_url(&format!("{field}.url"), &article.url)?;
    if wecom {
        max_bytes(&format!("{field}.title"), &article.title, TITLE_MAX_BYTES)?;
        max_bytes(
            &format!("{field}.description"),
            &article.description,
            DESCRIPTION_MAX_BYTES,
        )?;
        max_bytes(&format!("{field}.url"), &article.url, URL_MAX_BYTES)?;
    }
    Ok(())
}

/// The body of `message/send`: the envelope, and the payload under its `msgtype`.
#[derive(Serialize)]
struct WecomBody<'a> {
    touser: &'a str,
    msgtype: &'static str,
    agentid: u64,
    #[serde(flatten)]
    payload: WecomPayload<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum WecomPayload<'a> {
    Text { content: &'a str },
    Markdown { content: &'a str },
    News { articles: Vec<ArticleBody<'a>> },
    Textcard(&'a TextCard),
}

/// A WeCom text card: title, description, a link and its button.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TextCard {
    /// The title, at most 128 bytes.
    pub title: String,
    /// The body, at most 512 bytes; `<div class="gray|normal|highlight">` styles lines.
    pub description: String,
    /// Where the card leads: `http://` or `https://`, at most 2048 bytes.
    pub url: String,
    /// The button's text, at most 4 characters; "详情" when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub btntxt: Option<String>,
}

/// A WeCom app message (`message/send`).
#[derive(Clone, PartialEq, Eq)]
pub enum WecomMessage {
    /// `text`: at most 2048 bytes; `<a href>` links and `\n` line breaks work.
    Text {
        /// The text.
        content: String,
    },
    /// `markdown`: WeCom's markdown subset, at most 2048 bytes.
    Markdown {
        /// The markdown source.
        content: String,
    },
    /// `news`: 1 to 8 linked articles.
    News {
        /// The articles.
        articles: Vec<Article>,
    },
    /// `textcard`.
    TextCard(TextCard),
}

impl WecomMessage {
    /// A text message.
    pub fn text(content: impl Into<String>) -> Self {
        Self::Text {
            content: content.into(),
        }
    }

    /// A markdown message.
    pub fn markdown(content: impl Into<String>) -> Self {
        Self::Markdown {
            content: content.into(),
        }
    }

    /// A news message.
    pub fn news(articles: Vec<Article>) -> Self {
        Self::News { articles }
    }

    /// A text card with the default button.
    pub fn textcard(
        title: impl Into<String>,
        description: impl Into<String>,
        url: impl Into<String>,
    ) -> Self {
        Self::TextCard(TextCard {
            title: title.into(),
            description: description.into(),
            url: url.into(),
            btntxt: None,
        })
    }

    /// The active message a passive reply becomes when it can no longer be the answer (a
    /// late reply): text and news; `None` for the other types.
    pub fn from_reply(reply: &Reply) -> Option<Self> {
        match reply {
            Reply::Text { content } => Some(Self::text(content.clone())),
            Reply::News { articles } => Some(Self::news(articles.clone())),
            _ => None,
        }
    }

    /// The `msgtype`.
    pub fn msg_type(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Markdown { .. } => "markdown",
            Self::News { .. } => "news",
            Self::TextCard(_) => "textcard",
        }
    }

    /// Checks the platform's documented limits.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        match self {
            Self::Text { content } => {
                require("text.content", content)?;
                max_bytes("text.content", content, WECOM_TEXT_MAX_BYTES)
            }
            Self::Markdown { content } => {
                require("markdown.content", content)?;
                max_bytes("markdown.content", content, WECOM_MARKDOWN_MAX_BYTES)
            }
            Self::News { articles } => {
                if !(1..=WECOM_MAX_ARTICLES).contains(&articles.len()) {
                    return Err(InvalidMessage::ArticleCount {
                        count: articles.len(),
                        max: WECOM_MAX_ARTICLES,
                    });
                }
                articles.iter().enumerate().try_for_each(|(i, a)| {
                    validate_article(a, &format!("news.articles[{i}]"), true)
                })
            }
            Self::TextCard(card) => {
                require("textcard.title", &card.title)?;
                max_bytes("textcard.title", &card.title, TITLE_MAX_BYTES)?;
                require("textcard.description", &card.description)?;
                max_bytes(
                    "textcard.description",
                    &card.description,
                    DESCRIPTION_MAX_BYTES,
                )?;
                require_url("textcard.url", &card.url)?;
                max_bytes("textcard.url", &card.url, URL_MAX_BYTES)?;
                match &card.btntxt {
                    Some(btntxt) if btntxt.chars().count() > BTNTXT_MAX_CHARS => {
                        Err(InvalidMessage::TooLong {
                            field: "textcard.btntxt".into(),
                            len: btntxt.chars().count(),
                            max: BTNTXT_MAX_CHARS,
                            unit: "characters",
                        })
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    /// The request body for `message/send` to `touser` as app `agent_id`.
    pub fn body(&self, agent_id: u64, touser: &str) -> Value {
        let payload = match self {
            Self::Text { content } => WecomPayload::Text { content },
            Self::Markdown { content } => WecomPayload::Markdown { content },
            Self::News { articles } => WecomPayload::News {
                articles: articles.iter().map(ArticleBody::from).collect(),
            },
            Self::TextCard(card) => WecomPayload::Textcard(card),
        };
        let body = WecomBody {
            touser,
            msgtype: self.msg_type(),
            agentid: agent_id,
            payload,
        };
        serde_json::to_value(body).expect("a message body is plain strings and numbers")
    }
}

impl std::fmt::Debug for WecomMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_message(f, "WecomMessage", self.msg_type(), self.size())
    }
}

impl WecomMessage {
    fn size(&self) -> usize {
        match self {
            Self::Text { content } | Self::Markdown { content } => content.len(),
            Self::News { articles } => articles.len(),
            Self::TextCard(card) => card.description.len(),
        }
    }
}

/// An Official Account customer message (`message/custom/send`).
#[derive(Clone, PartialEq, Eq)]
pub enum MpMessage {
    /// `text`, at most 2048 bytes.
    Text {
        /// The text.
        content: String,
    },
    /// `news` with its one article (more are refused with 45008).
    News(Article),
}

impl MpMessage {
    /// A text message.
    pub fn text(content: impl Into<String>) -> Self {
        Self::Text {
            content: content.into(),
        }
    }

    /// A news message.
    pub fn news(article: Article) -> Self {
        Self::News(article)
    }

    /// The customer message a passive reply becomes when it can no longer be the answer (a
    /// late reply): text, and news with its first article; `None` for the other types.
    pub fn from_reply(reply: &Reply) -> Option<Self> {
        match reply {
            Reply::Text { content } => Some(Self::text(content.clone())),
            Reply::News { articles } => articles.first().cloned().map(Self::news),
            _ => None,
        }
    }

    /// The `msgtype`.
    pub fn msg_type(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::News(_) => "news",
        }
    }

    /// Checks the platform's limits.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        match self {
            Self::Text { content } => {
                require("text.content", content)?;
                max_bytes("text.content", content, MP_TEXT_MAX_BYTES)
            }
            Self::News(article) => validate_article(article, "news.articles[0]", false),
        }
    }

    /// The request body for `message/custom/send` to the follower `openid`.
    pub fn body(&self, openid: &str) -> Value {
        match self {
            Self::Text { content } => json!({
                "touser": openid,
                "msgtype": "text",
                "text": { "content": content },
            }),
            Self::News(article) => json!({
                "touser": openid,
                "msgtype": "news",
                "news": { "articles": [ArticleBody::from(article)] },
            }),
        }
    }
}

impl std::fmt::Debug for MpMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = match self {
            Self::Text { content } => content.len(),
            Self::News(_) => 1,
        };
        debug_message(f, "MpMessage", self.msg_type(), size)
    }
}

pub(super) fn debug_message(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    msg_type: &str,
    size: usize,
) -> std::fmt::Result {
    let unit = if msg_type == "news" {
        "articles"
    } else {
        "bytes"
    };
    f.debug_struct(name)
        .field("msgtype", &msg_type)
        .field(unit, &size)
        .finish_non_exhaustive()
}
