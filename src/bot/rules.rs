//! Each app's `[apps.reply]` rules, compiled once: keywords lowercased, replies built. The
//! rules as written, and their checks, are `config::reply`.

use std::collections::BTreeMap;

use crate::config::reply::{ReplyRules, ReplySpec};
use crate::message::{Content, Event, Message};
use crate::platform::Platform;
use crate::reply::{Reply, WECOM_TEXT_MAX_BYTES, truncate_utf8};

/// Compiled rules of one app: keywords lowercased once, replies built once.
#[derive(Debug, Clone)]
pub struct Rules {
    platform: Platform,
    echo: bool,
    keywords: Vec<(Vec<String>, Vec<String>, Reply)>,
    subscribe: Option<Reply>,
    enter_agent: Option<Reply>,
    enter_chat: Option<Reply>,
    click: BTreeMap<String, Reply>,
    default: Option<Reply>,
}

impl Rules {
    /// Compiles checked rules.
    pub fn compile(rules: &ReplyRules, platform: Platform) -> Self {
        Self {
            platform,
            echo: rules.echo,
            keywords: rules
                .keywords
                .iter()
                .map(|k| {
                    (
                        k.equals.lowercased(),
                        k.contains.lowercased(),
                        k.reply.to_reply(),
                    )
                })
                .collect(),
            subscribe: rules.subscribe.as_ref().map(ReplySpec::to_reply),
            enter_agent: rules.enter_agent.as_ref().map(ReplySpec::to_reply),
            enter_chat: rules.enter_chat.as_ref().map(ReplySpec::to_reply),
            click: rules
                .click
                .iter()
                .map(|(k, v)| (k.clone(), v.to_reply()))
                .collect(),
            default: rules.default.as_ref().map(ReplySpec::to_reply),
        }
    }

    /// The reply the rules give to `message`, if any.
    pub fn answer(&self, message: &Message) -> Option<Reply> {
        match &message.content {
            Content::Text { content } => self
                .keyword_reply(content)
                .or_else(|| self.echo.then(|| self.echo_reply(content)))
                .or_else(|| self.default.clone()),
            Content::Event(event) => match event {
                Event::Subscribe { .. } => self.subscribe.clone(),
                Event::EnterAgent { .. } => self.enter_agent.clone(),
                // The AI bot's enter_chat arrives as a generic event.
                Event::Unknown { name, .. } if name == "enter_chat" => self.enter_chat.clone(),
                Event::Click { event_key } => self.click.get(event_key.as_str()).cloned(),
                _ => None,
            },
            _ => self.default.clone(),
        }
    }

    fn keyword_reply(&self, text: &str) -> Option<Reply> {
        if self.keywords.is_empty() {
            return None;
        }
        let text = text.trim().to_lowercase();
        self.keywords
            .iter()
            .find(|(equals, contains, _)| {
                equals.contains(&text) || contains.iter().any(|w| text.contains(w))
            })
            .map(|(_, _, reply)| reply.clone())
    }

    fn echo_reply(&self, text: &str) -> Reply {
        // A WeCom member can send more than a reply may carry; cut on a character boundary
        // rather than fail the reply.
        if self.platform.is_wecom() {
            Reply::text(truncate_utf8(text, WECOM_TEXT_MAX_BYTES))
        } else {
            Reply::text(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::message::Callback;

    fn rules(toml_text: &str, platform: Platform) -> Rules {
        let parsed: ReplyRules = toml::from_str(toml_text).unwrap();
        parsed.check(platform).unwrap();
        Rules::compile(&parsed, platform)
    }

    fn message(body: &str) -> Message {
        let xml = format!(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>u</FromUserName>\
             <CreateTime>1</CreateTime>{body}</xml>"
        );
        match Callback::parse(&xml).unwrap() {
            Callback::Message(m) => m,
            Callback::Info(_) => unreachable!(),
        }
    }

    fn text(t: &str) -> Message {
        message(&format!(
            "<MsgType>text</MsgType><Content><![CDATA[{t}]]></Content><MsgId>1</MsgId>"
        ))
    }

    fn event(name: &str, key: &str) -> Message {
        message(&format!(
            "<MsgType>event</MsgType><Event>{name}</Event><EventKey>{key}</EventKey>"
        ))
    }

    const ALL: &str = r#"
        echo = true
        subscribe = "welcome"
        default = "fallback"
        keywords = [
            { equals = ["help", "帮助"], reply = "help text" },
            { contains = "价格", reply = { type = "news", articles = [{ title = "prices", url = "https://e.x" }] } },
        ]
        [click]
        V1001 = "clicked"
    "#;

    #[test]
    fn keywords_come_before_echo_and_ignore_case_and_spaces() {
        let r = rules(ALL, Platform::Mp);
        assert_eq!(r.answer(&text("  HELP ")), Some(Reply::text("help text")));
        assert_eq!(r.answer(&text("帮助")), Some(Reply::text("help text")));
        assert!(matches!(
            r.answer(&text("今天价格多少")),
            Some(Reply::News { .. })
        ));
        assert_eq!(r.answer(&text("helpme")), Some(Reply::text("helpme")));
    }

    #[test]
    fn events_get_their_configured_answers_and_nothing_else() {
        let r = rules(ALL, Platform::Mp);
        assert_eq!(
            r.answer(&event("subscribe", "qrscene_1")),
            Some(Reply::text("welcome"))
        );
        assert_eq!(
            r.answer(&event("CLICK", "V1001")),
            Some(Reply::text("clicked"))
        );
        assert_eq!(r.answer(&event("CLICK", "OTHER")), None);
        assert_eq!(r.answer(&event("SCAN", "1")), None);
    }

    #[test]
    fn the_default_answers_other_user_messages() {
        let r = rules(r#"default = "fallback""#, Platform::Mp);
        assert_eq!(r.answer(&text("x")), Some(Reply::text("fallback")));
        let image = message(
            "<MsgType>image</MsgType><PicUrl>u</PicUrl><MediaId>m</MediaId><MsgId>2</MsgId>",
        );
        assert_eq!(r.answer(&image), Some(Reply::text("fallback")));
        assert_eq!(rules("", Platform::Mp).answer(&text("x")), None);
    }

    #[test]
    fn wecom_echo_is_cut_to_the_byte_limit_on_a_char_boundary() {
        let r = rules("echo = true", Platform::Wecom);
        let long = "汉".repeat(1000); // 3000 bytes
        let Some(Reply::Text { content }) = r.answer(&text(&long)) else {
            panic!("no echo")
        };
        assert_eq!(content.len(), 2046);
    }

    #[test]
    fn replies_the_platform_would_refuse_are_config_errors() {
        let parse = |t: &str| toml::from_str::<ReplyRules>(t).unwrap();
        let e = parse(r#"enter_agent = "hi""#)
            .check(Platform::Mp)
            .unwrap_err();
        assert!(e.contains("WeCom"), "{e}");
        let e = parse(&format!("default = \"{}\"", "a".repeat(2049)))
            .check(Platform::Wecom)
            .unwrap_err();
        assert!(e.contains("reply.default") && e.contains("-40011"), "{e}");
        let e = parse(r#"keywords = [{ reply = "x" }]"#)
            .check(Platform::Mp)
            .unwrap_err();
        assert!(e.contains("equals"), "{e}");
        let e = parse(r#"subscribe = { type = "transfer_customer_service" }"#)
            .check(Platform::Wecom)
            .unwrap_err();
        assert!(e.contains("Official Account"), "{e}");
    }

    const FORWARD: &str = r#"
        forward = "https://bot.example.com/wechat"
        forward_secret = "env:BOT_SECRET"
    "#;

    #[test]
    fn forward_takes_a_url_and_a_secret_and_keeps_the_specific_rules() {
        let r: ReplyRules = toml::from_str(&format!(
            "{FORWARD}\nsubscribe = \"welcome\"\nkeywords = [{{ equals = \"help\", reply = \"h\" }}]"
        ))
        .unwrap();
        r.check(Platform::Wecom).unwrap();
        let budget = Duration::from_millis(4000);
        assert_eq!(r.forward_timeout(budget), Duration::from_millis(3500));
        let compiled = Rules::compile(&r, Platform::Wecom);
        assert_eq!(compiled.answer(&text("help")), Some(Reply::text("h")));
        // What the local rules leave goes upstream: they answer nothing.
        assert_eq!(compiled.answer(&text("other")), None);
        assert_eq!(compiled.answer(&event("CLICK", "K")), None);
        let timed: ReplyRules =
            toml::from_str(&format!("{FORWARD}\nforward_timeout_ms = 1200")).unwrap();
        timed.check(Platform::Mp).unwrap();
        assert_eq!(timed.forward_timeout(budget), Duration::from_millis(1200));
    }

    #[test]
    fn forward_config_errors_name_the_key() {
        let error = |extra: &str| {
            toml::from_str::<ReplyRules>(extra)
                .unwrap()
                .check(Platform::Wecom)
                .unwrap_err()
        };
        let cases = [
            (
                r#"forward = "https://e.x""#.to_owned(),
                "needs forward_secret",
            ),
            (
                "forward = \"https://e.x\"\nforward_secret = \" \"".to_owned(),
                "needs forward_secret",
            ),
            (
                FORWARD.replace("https://bot.example.com", "http://bot.example.com"),
                "reply.forward: http:// is only accepted for a loopback host",
            ),
            (
                FORWARD.replace("https://bot.example.com/wechat", "bot"),
                "reply.forward: not a URL",
            ),
            (
                format!("{FORWARD}\necho = true"),
                "reply.echo cannot be set",
            ),
            (
                format!("{FORWARD}\ndefault = \"x\""),
                "reply.default cannot be set",
            ),
            (
                format!("{FORWARD}\nforward_timeout_ms = 0"),
                "forward_timeout_ms must be positive",
            ),
            (r#"forward_secret = "s""#.to_owned(), "need reply.forward"),
            ("forward_timeout_ms = 100".to_owned(), "need reply.forward"),
        ];
        for (config, expected) in cases {
            let e = error(&config);
            assert!(e.contains(expected), "{config}: {e}");
        }
    }
}
