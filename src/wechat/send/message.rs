//! The messages: WeCom app messages and Official Account customer messages, their JSON
//! bodies, and what `Debug` shows of them (type and sizes, never contents).

use super::*;

/// A link with a title: a WeCom news article, or the Official Account's one news article.
#[derive(Clone, PartialEq, Eq)]
pub struct Article {
    /// The title (WeCom: at most 128 bytes).
    pub title: String,
    /// A line under the title (WeCom: at most 512 bytes).
    pub description: Option<String>,
    /// Where a tap leads: `http://` or `https://` (WeCom: at most 2048 bytes).
    pub url: String,
    /// A picture (JPG, PNG): large 1068×455, small 150×150.
    pub picurl: Option<String>,
}

impl Article {
    /// An article titled `title` linking to `url`.
    pub fn new(title: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            description: None,
            url: url.into(),
            picurl: None,
        }
    }

    /// With a description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// With a picture.
    #[must_use]
    pub fn picurl(mut self, picurl: impl Into<String>) -> Self {
        self.picurl = Some(picurl.into());
        self
    }

    fn to_json(&self) -> Value {
        let mut article = Map::new();
        article.insert("title".into(), json!(self.title));
        if let Some(description) = &self.description {
            article.insert("description".into(), json!(description));
        }
        article.insert("url".into(), json!(self.url));
        if let Some(picurl) = &self.picurl {
            article.insert("picurl".into(), json!(picurl));
        }
        Value::Object(article)
    }

    fn validate(&self, field: &str, wecom: bool) -> Result<(), InvalidMessage> {
        require(&format!("{field}.title"), &self.title)?;
        require_url(&format!("{field}.url"), &self.url)?;
        if wecom {
            max_bytes(&format!("{field}.title"), &self.title, TITLE_MAX_BYTES)?;
            if let Some(description) = &self.description {
                max_bytes(
                    &format!("{field}.description"),
                    description,
                    DESCRIPTION_MAX_BYTES,
                )?;
            }
            max_bytes(&format!("{field}.url"), &self.url, URL_MAX_BYTES)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Article {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Article")
            .field("title_bytes", &self.title.len())
            .finish_non_exhaustive()
    }
}

/// A WeCom text card: title, description, a link and its button.
#[derive(Clone, PartialEq, Eq)]
pub struct TextCard {
    /// The title, at most 128 bytes.
    pub title: String,
    /// The body, at most 512 bytes; `<div class="gray|normal|highlight">` styles lines.
    pub description: String,
    /// Where the card leads: `http://` or `https://`, at most 2048 bytes.
    pub url: String,
    /// The button's text, at most 4 characters; "详情" when `None`.
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
                articles
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, a)| a.validate(&format!("news.articles[{i}]"), true))
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
            Self::Text { content } | Self::Markdown { content } => json!({ "content": content }),
            Self::News { articles } => {
                json!({ "articles": articles.iter().map(Article::to_json).collect::<Vec<_>>() })
            }
            Self::TextCard(card) => {
                let mut fields = Map::new();
                fields.insert("title".into(), json!(card.title));
                fields.insert("description".into(), json!(card.description));
                fields.insert("url".into(), json!(card.url));
                if let Some(btntxt) = &card.btntxt {
                    fields.insert("btntxt".into(), json!(btntxt));
                }
                Value::Object(fields)
            }
        };
        let mut body = Map::new();
        body.insert("touser".into(), json!(touser));
        body.insert("msgtype".into(), json!(self.msg_type()));
        body.insert("agentid".into(), json!(agent_id));
        body.insert(self.msg_type().into(), payload);
        Value::Object(body)
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
            Self::News(article) => article.validate("news.articles[0]", false),
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
                "news": { "articles": [article.to_json()] },
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
