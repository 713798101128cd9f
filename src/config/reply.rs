//! Replies from configuration: keywords, echo, welcome messages, menu clicks, a default, and
//! an upstream bot for the rest.
//!
//! ```toml
//! [apps.reply]
//! echo = true                          # text in → same text out
//! subscribe = "欢迎关注"               # a follow (MP and WeCom)
//! enter_agent = "有什么可以帮您？"     # WeCom: a member opened the app
//! enter_chat = "我是小助手，有问题尽管问" # AI bot: a user opened the chat (text only)
//! default = "收到"                     # any other user message
//! keywords = [
//!   { equals = ["help", "帮助"], reply = "发送 价格 查看价目表" },
//!   { contains = "价格", reply = { type = "news", articles = [{ title = "价目表", url = "https://example.com" }] } },
//! ]
//! [apps.reply.click]                   # menu CLICK keys
//! V1001_TODAY = "今日歌曲"
//! ```
//!
//! Order for a text message: keywords (first match), then echo, then default. A reply is a
//! string (a text reply) or a table with a `type` (any [`Reply`]).
//!
//! With `forward = "https://…"` (and `forward_secret`), whatever the local rules do not
//! answer goes to that upstream bot (see `bot::forward`): text no keyword matched, other
//! messages, and events without a local answer (a follow when `subscribe` is unset, a CLICK
//! whose key is not under `click`, SCAN, template card events, …). The upstream is then the
//! catch-all, so `echo` and `default` cannot be set with it.
//!
//! With `llm = "https://api.openai.com/v1"` (and `llm_model`), what the local rules do not
//! answer goes to an OpenAI-compatible chat-completions endpoint instead (see `bot::llm`):
//! text and recognized voice messages only. It is the catch-all too, and excludes `forward`.
//! `stream_timeout_ms` bounds a streamed call of either (the WeCom AI bot's replies).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use reqwest::Url;

use crate::platform::Platform;
use crate::reply::Reply;

/// A reply as written in the config: a string for text, or a full [`Reply`] table.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ReplySpec {
    /// `"text"`.
    Text(String),
    /// `{ type = "news", articles = [...] }` and the other reply types.
    Full(Reply),
}

impl ReplySpec {
    pub(crate) fn to_reply(&self) -> Reply {
        match self {
            Self::Text(text) => Reply::text(text.clone()),
            Self::Full(reply) => reply.clone(),
        }
    }
}

/// One string or a list of them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// No entries.
    #[default]
    #[serde(skip)]
    None,
    /// `"word"`.
    One(String),
    /// `["a", "b"]`.
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn lowercased(&self) -> Vec<String> {
        match self {
            Self::None => Vec::new(),
            Self::One(s) => vec![s.trim().to_lowercase()],
            Self::Many(v) => v.iter().map(|s| s.trim().to_lowercase()).collect(),
        }
    }
}

/// A keyword rule: the message text equals (after trimming, ignoring case) or contains one
/// of the words.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeywordRule {
    /// Whole-message matches.
    #[serde(default)]
    pub equals: OneOrMany,
    /// Substring matches.
    #[serde(default)]
    pub contains: OneOrMany,
    /// What to answer.
    pub reply: ReplySpec,
}

/// `[apps.reply]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyRules {
    /// Answer a text message with its own text.
    #[serde(default)]
    pub echo: bool,
    /// Keyword rules, first match wins.
    #[serde(default)]
    pub keywords: Vec<KeywordRule>,
    /// Answer to a follow.
    #[serde(default)]
    pub subscribe: Option<ReplySpec>,
    /// WeCom: answer when a member opens the app.
    #[serde(default)]
    pub enter_agent: Option<ReplySpec>,
    /// AI bot: the welcome when a user opens the chat (`enter_chat`, first time a day).
    #[serde(default)]
    pub enter_chat: Option<ReplySpec>,
    /// Menu CLICK keys and their answers.
    #[serde(default)]
    pub click: BTreeMap<String, ReplySpec>,
    /// Answer to any user message nothing else matched.
    #[serde(default)]
    pub default: Option<ReplySpec>,
    /// The URL of an upstream bot that answers whatever the rules above do not.
    #[serde(default)]
    pub forward: Option<String>,
    /// The key requests to `forward` are signed with (`env:NAME` allowed); required with it.
    #[serde(default)]
    pub forward_secret: Option<String>,
    /// The time limit of one upstream call, in milliseconds; at most the gateway's budget.
    /// Default: [`default_forward_timeout`] of the budget.
    #[serde(default)]
    pub forward_timeout_ms: Option<u64>,
    /// The time limit of one streamed upstream call (`forward` or `llm`), in milliseconds.
    /// Default: [`DEFAULT_STREAM_TIMEOUT_MS`].
    #[serde(default)]
    pub stream_timeout_ms: Option<u64>,
    /// The base URL of an OpenAI-compatible API (`https://api.openai.com/v1`); wxgate POSTs
    /// to `{llm}/chat/completions`.
    #[serde(default)]
    pub llm: Option<String>,
    /// The model asked; required with `llm`.
    #[serde(default)]
    pub llm_model: Option<String>,
    /// The API key, sent as a bearer token (a secret: `env:`, `ssm:`, `secretsmanager:`
    /// allowed); optional, for local servers without auth.
    #[serde(default)]
    pub llm_api_key: Option<String>,
    /// The system message put before the user's.
    #[serde(default)]
    pub llm_system_prompt: Option<String>,
    /// The most tokens the model may answer with.
    #[serde(default)]
    pub llm_max_tokens: Option<u32>,
}

/// The default time limit of a streamed call: the WeCom AI bot's 6-minute window to finish
/// a streamed reply, less a minute of margin.
pub const DEFAULT_STREAM_TIMEOUT_MS: u64 = 300_000;

/// The range of `stream_timeout_ms`: a second up to the AI bot's 6-minute window.
pub const STREAM_TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 1_000..=360_000;

impl ReplyRules {
    /// Checks every configured reply against the platform's rules, so a reply the platform
    /// would refuse is a start-up error instead of a silent failure per message.
    ///
    /// # Errors
    /// A description of the first bad rule.
    pub fn check(&self, platform: Platform) -> Result<(), String> {
        let check = |what: &str, spec: &ReplySpec, to_event: bool| {
            spec.to_reply()
                .validate(platform, to_event)
                .map_err(|e| format!("reply.{what}: {e}"))
        };
        for (i, rule) in self.keywords.iter().enumerate() {
            if rule.equals.lowercased().is_empty() && rule.contains.lowercased().is_empty() {
                return Err(format!("reply.keywords[{i}] needs `equals` or `contains`"));
            }
            check(&format!("keywords[{i}]"), &rule.reply, false)?;
        }
        if let Some(spec) = &self.subscribe {
            check("subscribe", spec, true)?;
        }
        if let Some(spec) = &self.enter_agent {
            if !platform.is_wecom() {
                return Err("reply.enter_agent is a WeCom event".into());
            }
            check("enter_agent", spec, true)?;
        }
        if let Some(spec) = &self.enter_chat {
            if platform != Platform::Aibot {
                return Err("reply.enter_chat is an AI bot event (platform = \"aibot\")".into());
            }
            check("enter_chat", spec, true)?;
        }
        if platform == Platform::Aibot && (self.subscribe.is_some() || !self.click.is_empty()) {
            return Err("reply.subscribe and reply.click are not AI bot events (use enter_chat for the welcome)".into());
        }
        for (key, spec) in &self.click {
            check(&format!("click.{key}"), spec, true)?;
        }
        if let Some(spec) = &self.default {
            check("default", spec, false)?;
        }
        self.check_forward()?;
        self.check_llm()?;
        if let Some(ms) = self.stream_timeout_ms {
            if self.forward.is_none() && self.llm.is_none() {
                return Err("reply.stream_timeout_ms needs reply.forward or reply.llm".into());
            }
            if !STREAM_TIMEOUT_RANGE_MS.contains(&ms) {
                return Err(format!(
                    "reply.stream_timeout_ms must be {}..={}, not {ms}",
                    STREAM_TIMEOUT_RANGE_MS.start(),
                    STREAM_TIMEOUT_RANGE_MS.end()
                ));
            }
        }
        Ok(())
    }

    fn check_llm(&self) -> Result<(), String> {
        let Some(url) = &self.llm else {
            if self.llm_model.is_some()
                || self.llm_api_key.is_some()
                || self.llm_system_prompt.is_some()
                || self.llm_max_tokens.is_some()
            {
                return Err(
                    "reply.llm_model, reply.llm_api_key, reply.llm_system_prompt and reply.llm_max_tokens need reply.llm".into(),
                );
            }
            return Ok(());
        };
        llm_url(url).map_err(|e| format!("reply.llm: {e}"))?;
        if self.forward.is_some() {
            return Err("reply.llm cannot be set with reply.forward: each answers what the local rules do not; choose one".into());
        }
        if self
            .llm_model
            .as_deref()
            .is_none_or(|m| m.trim().is_empty())
        {
            return Err(
                "reply.llm needs llm_model, the model to ask (gpt-4o-mini, qwen2.5:7b, …)".into(),
            );
        }
        if self
            .llm_api_key
            .as_deref()
            .is_some_and(|k| k.trim().is_empty())
        {
            return Err(
                "reply.llm_api_key is empty; leave it out for a server without auth".into(),
            );
        }
        if self.echo {
            return Err("reply.echo cannot be set with reply.llm: the model answers text the keywords do not".into());
        }
        if self.default.is_some() {
            return Err("reply.default cannot be set with reply.llm: the model answers what the local rules do not".into());
        }
        if self.llm_max_tokens == Some(0) {
            return Err("reply.llm_max_tokens must be positive".into());
        }
        Ok(())
    }

    /// The time limit of one streamed upstream call: `stream_timeout_ms`, or
    /// [`DEFAULT_STREAM_TIMEOUT_MS`].
    pub fn stream_timeout(&self) -> Duration {
        Duration::from_millis(self.stream_timeout_ms.unwrap_or(DEFAULT_STREAM_TIMEOUT_MS))
    }

    fn check_forward(&self) -> Result<(), String> {
        let Some(url) = &self.forward else {
            if self.forward_secret.is_some() || self.forward_timeout_ms.is_some() {
                return Err(
                    "reply.forward_secret and reply.forward_timeout_ms need reply.forward".into(),
                );
            }
            return Ok(());
        };
        forward_url(url).map_err(|e| format!("reply.forward: {e}"))?;
        if self
            .forward_secret
            .as_deref()
            .is_none_or(|s| s.trim().is_empty())
        {
            return Err(
                "reply.forward needs forward_secret, the key the upstream verifies requests with (env:NAME to read it from the environment)"
                    .into(),
            );
        }
        if self.echo {
            return Err("reply.echo cannot be set with reply.forward: the upstream answers text the keywords do not".into());
        }
        if self.default.is_some() {
            return Err("reply.default cannot be set with reply.forward: the upstream answers what the local rules do not (it answers {} for no reply)".into());
        }
        if self.forward_timeout_ms == Some(0) {
            return Err("reply.forward_timeout_ms must be positive".into());
        }
        Ok(())
    }

    /// The time limit of one upstream call under a gateway budget: `forward_timeout_ms`, or
    /// [`default_forward_timeout`] of the budget.
    pub fn forward_timeout(&self, budget: Duration) -> Duration {
        self.forward_timeout_ms
            .map_or_else(|| default_forward_timeout(budget), Duration::from_millis)
    }
}

/// Checks a `forward` URL: `https://`, or `http://` to a loopback host (the messages are
/// users' private text), with a host and no credentials or fragment.
///
/// # Errors
/// What is wrong, without repeating the URL.
pub fn forward_url(raw: &str) -> Result<Url, String> {
    crate::url_policy::check(raw).map_err(|why| {
        if why.contains("credentials") {
            format!("{why}; the upstream authenticates requests by forward_secret")
        } else {
            why
        }
    })
}

/// Checks an `llm` base URL (the rule of [`forward_url`], and no query) and gives the
/// endpoint wxgate posts to, `{llm}/chat/completions`.
///
/// # Errors
/// What is wrong, without repeating the URL.
pub fn llm_url(raw: &str) -> Result<Url, String> {
    let url = crate::url_policy::check(raw).map_err(|why| {
        if why.contains("credentials") {
            format!("{why}; put the API key in llm_api_key")
        } else {
            why
        }
    })?;
    if url.query().is_some() {
        return Err("the base URL takes no ?query (wxgate adds /chat/completions to it)".into());
    }
    let endpoint = format!("{}/chat/completions", url.as_str().trim_end_matches('/'));
    Url::parse(&endpoint).map_err(|e| format!("not a URL ({e})"))
}

/// The default time limit of one upstream call: the budget less a quarter of it, but at
/// most 500 ms less, leaving the gateway time to record and encrypt the reply.
pub fn default_forward_timeout(budget: Duration) -> Duration {
    budget - (budget / 4).min(Duration::from_millis(500))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_outbound_rule_and_credentials_are_pointed_at_the_secret() {
        // The rule itself is `url_policy`'s (tested there); forward adds what to use instead.
        assert!(forward_url("https://bot.example.com/wechat?tenant=1").is_ok());
        assert!(forward_url("http://bot.example.com/wechat").is_err());
        let e = forward_url("https://user:pass@bot.example.com/").unwrap_err();
        assert!(
            e.contains("credentials") && e.contains("forward_secret"),
            "{e}"
        );
        assert!(!e.contains("pass@"), "{e}");
    }

    #[test]
    fn the_default_timeout_leaves_a_margin_of_the_budget() {
        let ms = Duration::from_millis;
        assert_eq!(default_forward_timeout(ms(4000)), ms(3500));
        assert_eq!(default_forward_timeout(ms(300)), ms(225));
        assert_eq!(default_forward_timeout(ms(1000)), ms(750));
        assert_eq!(default_forward_timeout(ms(4800)), ms(4300));
    }
}
