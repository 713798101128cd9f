//! The platforms' documented limits on what goes out, passive replies and active messages
//! alike, in one table. Byte limits count UTF-8 bytes, as the platforms do.

/// WeCom text (a passive reply, or an app message's `text.content`); past it the platform
/// cuts or refuses the text.
pub const WECOM_TEXT_MAX_BYTES: usize = 2048;
/// WeCom app message `markdown.content`. (4096 is the group robot webhook's limit, not the
/// app message API's.)
pub const WECOM_MARKDOWN_MAX_BYTES: usize = 2048;
/// Official Account customer message `text.content`. Not in the official documentation;
/// longer texts are refused with 45002 ("content size out of limit").
pub const MP_TEXT_MAX_BYTES: usize = 2048;
/// The WeCom AI bot's stream `content`, welcome text and `response_url` markdown.
pub const AIBOT_CONTENT_MAX_BYTES: usize = 20_480;
/// A WeCom news article's or text card's `title`.
pub const TITLE_MAX_BYTES: usize = 128;
/// A WeCom news article's or text card's `description`.
pub const DESCRIPTION_MAX_BYTES: usize = 512;
/// A WeCom news article's or text card's `url`.
pub const URL_MAX_BYTES: usize = 2048;
/// A WeCom text card's `btntxt`, in characters.
pub const BTNTXT_MAX_CHARS: usize = 4;
/// Articles in one news message or reply (at least 1).
pub const NEWS_MAX_ARTICLES: usize = 8;
/// Articles in an Official Account's passive reply to a user message (an event's reply
/// may have [`NEWS_MAX_ARTICLES`]), and in a customer message (more are refused, 45008).
pub const MP_NEWS_MAX_ARTICLES_TO_MESSAGE: usize = 1;
/// Members in one WeCom `touser`.
pub const WECOM_MAX_RECIPIENTS: usize = 1000;
/// The largest reply the gateway answers (and records for retries), in bytes of XML: far
/// above any platform's limits, and what keeps a record within a store item.
pub const MAX_REPLY_XML_BYTES: usize = 64 * 1024;
