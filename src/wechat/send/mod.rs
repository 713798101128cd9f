//! Active messages: WeCom app messages and Official Account customer messages.
//!
//! * WeCom `POST /cgi-bin/message/send`: `text`, `markdown`, `news` (1–8 articles) and
//!   `textcard` to members of the corp (`touser`: `UserID1|UserID2`, or `@all`), sent as the
//!   app `agentid`. A recipient list that is partly invalid is still sent; the invalid ones
//!   come back in [`SendReceipt::invalid_users`].
//! * Official Account `POST /cgi-bin/message/custom/send` (客服消息): `text` or `news` (one
//!   article) to a follower's OpenID, allowed only within 48 hours of the follower's last
//!   message to the account (else errcode 45015).
//!
//! [`Messenger`] sends them through a [`TokenProvider`], so the access token is the shared
//! one and a refused token (40001 / 40014 / 42001) is fetched again once. A message is
//! checked against the platform's documented limits first ([`WecomMessage::validate`],
//! [`MpMessage::validate`]): one the platform would refuse or truncate is a
//! [`SendError::Invalid`] and nothing is requested. Transient failures (errcode -1 "system
//! busy", HTTP 5xx, timeouts, connection errors) are retried under a [`RetryPolicy`];
//! everything else, the rate limit 45009 included, is returned at once as
//! [`ApiError::Platform`].
//!
//! A send is never repeated when it may have been delivered: a timeout, a connection broken
//! after the request went out, or an HTTP 5xx may come after the platform took the message,
//! so only errcode -1 ("system busy") and a connection that could not be made are retried.
//! WeCom can drop repeats itself: with [`Messenger::with_duplicate_check`] its sends carry
//! `enable_duplicate_check` and the uncertain failures are retried too. Delivery is at most
//! once either way.
//!
//! Message contents and recipients are never logged at info level, and `Debug` of a message
//! shows only its type and sizes.
//!
//! ```no_run
//! # async fn demo(gateway: &wxgate::gateway::Gateway) -> Result<(), Box<dyn std::error::Error>> {
//! use wxgate::wechat::{Messenger, WecomMessage};
//! let source = gateway.token_source("demo").ok_or("no secret")?;
//! let receipt = Messenger::new(gateway.tokens()?)
//!     .send_wecom(source, 1000002, "zhangsan", &WecomMessage::text("构建完成"))
//!     .await?;
//! println!("msgid {:?}, invalid: {:?}", receipt.msgid, receipt.invalid_users);
//! # Ok(())
//! # }
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::error::{ApiError, TokenError};
use super::provider::TokenProvider;
use super::source::TokenSource;
use crate::platform::Platform;
use crate::store::TokenStore;

/// WeCom's app message API.
pub const WECOM_SEND_PATH: &str = "/cgi-bin/message/send";
/// The Official Account's customer message API.
pub const MP_SEND_PATH: &str = "/cgi-bin/message/custom/send";

pub use crate::reply::Article;
pub use crate::reply::limits::{
    BTNTXT_MAX_CHARS, DESCRIPTION_MAX_BYTES, MP_TEXT_MAX_BYTES,
    NEWS_MAX_ARTICLES as WECOM_MAX_ARTICLES, TITLE_MAX_BYTES, URL_MAX_BYTES,
    WECOM_MARKDOWN_MAX_BYTES, WECOM_MAX_RECIPIENTS, WECOM_TEXT_MAX_BYTES,
};

/// errcode 45009: the API's call frequency limit is reached. Retrying makes it worse.
pub const ERRCODE_API_RATE_LIMIT: i64 = 45009;
/// errcode 45015: the Official Account may not message this follower (no message from them
/// in the last 48 hours, or they unfollowed).
pub const ERRCODE_REPLY_WINDOW: i64 = 45015;

mod message;
mod messenger;
mod validate;

pub(super) use super::retry::jitter;
pub use super::retry::{ERRCODE_SYSTEM_BUSY, RetryPolicy, is_retryable, is_retryable_deduplicated};
pub use message::*;
pub use messenger::*;
pub use validate::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(errcode: i64) -> ApiError {
        ApiError::Platform {
            errcode,
            errmsg: "x".into(),
        }
    }

    // -- bodies ---------------------------------------------------------------------------

    #[test]
    fn wecom_text_and_markdown_bodies() {
        assert_eq!(
            WecomMessage::text("你好").body(1000002, "zhangsan|lisi"),
            json!({
                "touser": "zhangsan|lisi", "msgtype": "text", "agentid": 1000002,
                "text": { "content": "你好" }
            })
        );
        assert_eq!(
            WecomMessage::markdown("**b**").body(7, "@all"),
            json!({
                "touser": "@all", "msgtype": "markdown", "agentid": 7,
                "markdown": { "content": "**b**" }
            })
        );
    }

    #[test]
    fn wecom_news_body_omits_absent_fields() {
        let message = WecomMessage::news(vec![
            Article::new("t1", "https://a/1")
                .description("d1")
                .pic_url("https://a/1.png"),
            Article::new("t2", "https://a/2"),
        ]);
        assert_eq!(
            message.body(5, "u"),
            json!({
                "touser": "u", "msgtype": "news", "agentid": 5,
                "news": { "articles": [
                    { "title": "t1", "description": "d1", "url": "https://a/1", "picurl": "https://a/1.png" },
                    { "title": "t2", "url": "https://a/2" },
                ]}
            })
        );
    }

    #[test]
    fn wecom_textcard_body() {
        let mut message = WecomMessage::textcard("领奖通知", "<div>恭喜</div>", "https://x/y");
        assert_eq!(
            message.body(1, "u")["textcard"],
            json!({ "title": "领奖通知", "description": "<div>恭喜</div>", "url": "https://x/y" })
        );
        if let WecomMessage::TextCard(card) = &mut message {
            card.btntxt = Some("更多".into());
        }
        assert_eq!(message.body(1, "u")["textcard"]["btntxt"], "更多");
        assert_eq!(message.body(1, "u")["msgtype"], "textcard");
    }

    #[test]
    fn mp_bodies() {
        assert_eq!(
            MpMessage::text("hi").body("oOPENID"),
            json!({ "touser": "oOPENID", "msgtype": "text", "text": { "content": "hi" } })
        );
        assert_eq!(
            MpMessage::news(Article::new("t", "http://u").description("d")).body("o1"),
            json!({
                "touser": "o1", "msgtype": "news",
                "news": { "articles": [{ "title": "t", "description": "d", "url": "http://u" }] }
            })
        );
    }

    // -- validation -----------------------------------------------------------------------

    fn too_long(field: &str, result: Result<(), InvalidMessage>) {
        match result {
            Err(InvalidMessage::TooLong { field: f, .. }) if f == field => {}
            other => panic!("{field}: {other:?}"),
        }
    }

    #[test]
    fn text_and_markdown_limits_count_utf8_bytes() {
        // 682 × 3 bytes + 2 = 2048: at the limit; one more byte is over.
        let at_limit = format!("{}ab", "中".repeat(682));
        assert_eq!(at_limit.len(), 2048);
        assert!(WecomMessage::text(at_limit.clone()).validate().is_ok());
        too_long(
            "text.content",
            WecomMessage::text(format!("{at_limit}x")).validate(),
        );
        assert!(WecomMessage::markdown("m".repeat(2048)).validate().is_ok());
        too_long(
            "markdown.content",
            WecomMessage::markdown("m".repeat(2049)).validate(),
        );
        assert!(MpMessage::text("t".repeat(2048)).validate().is_ok());
        too_long("text.content", MpMessage::text("t".repeat(2049)).validate());
        for blank in ["", "  \n"] {
            assert_eq!(
                WecomMessage::text(blank).validate(),
                Err(InvalidMessage::Empty {
                    field: "text.content".into()
                })
            );
        }
    }

    #[test]
    fn textcard_limits() {
        let card = |title: &str, description: &str, url: &str, btntxt: Option<&str>| {
            WecomMessage::TextCard(TextCard {
                title: title.into(),
                description: description.into(),
                url: url.into(),
                btntxt: btntxt.map(Into::into),
            })
            .validate()
        };
        let t128 = "t".repeat(128);
        let d512 = "d".repeat(512);
        assert!(card(&t128, &d512, "https://x", Some("查看详情")).is_ok());
        too_long(
            "textcard.title",
            card(&"t".repeat(129), "d", "https://x", None),
        );
        // 43 × 3 = 129 bytes, 43 characters: bytes count.
        too_long(
            "textcard.title",
            card(&"题".repeat(43), "d", "https://x", None),
        );
        too_long(
            "textcard.description",
            card("t", &"d".repeat(513), "https://x", None),
        );
        too_long(
            "textcard.url",
            card("t", "d", &format!("https://{}", "u".repeat(2041)), None),
        );
        too_long(
            "textcard.btntxt",
            card("t", "d", "https://x", Some("查看全部详情")),
        );
        assert!(matches!(
            card("t", "", "https://x", None),
            Err(InvalidMessage::Empty { field }) if field == "textcard.description"
        ));
        assert!(matches!(
            card("t", "d", "www.example.com", None),
            Err(InvalidMessage::Url { field }) if field == "textcard.url"
        ));
        assert!(card("t", "d", "HTTP://X", None).is_ok());
    }

    #[test]
    fn news_limits() {
        let article = || Article::new("t", "https://x");
        assert_eq!(
            WecomMessage::news(vec![]).validate(),
            Err(InvalidMessage::ArticleCount { count: 0, max: 8 })
        );
        assert!(WecomMessage::news(vec![article(); 8]).validate().is_ok());
        assert_eq!(
            WecomMessage::news(vec![article(); 9]).validate(),
            Err(InvalidMessage::ArticleCount { count: 9, max: 8 })
        );
        let long = vec![article(), article().description("d".repeat(513))];
        too_long(
            "news.articles[1].description",
            WecomMessage::news(long).validate(),
        );
        too_long(
            "news.articles[0].title",
            WecomMessage::news(vec![Article::new("t".repeat(129), "https://x")]).validate(),
        );
        assert!(matches!(
            WecomMessage::news(vec![Article::new("t", "")]).validate(),
            Err(InvalidMessage::Empty { field }) if field == "news.articles[0].url"
        ));
        // The Official Account documents no byte limits for its one article.
        assert!(
            MpMessage::news(Article::new("t".repeat(300), "https://x"))
                .validate()
                .is_ok()
        );
        assert!(matches!(
            MpMessage::news(Article::new("", "https://x")).validate(),
            Err(InvalidMessage::Empty { field }) if field == "news.articles[0].title"
        ));
    }

    #[test]
    fn recipients() {
        assert!(validate_wecom_recipients("zhangsan").is_ok());
        assert!(validate_wecom_recipients("@all").is_ok());
        let thousand = vec!["u"; 1000].join("|");
        assert!(validate_wecom_recipients(&thousand).is_ok());
        assert_eq!(
            validate_wecom_recipients(&format!("{thousand}|v")),
            Err(InvalidMessage::TooManyRecipients {
                count: 1001,
                max: 1000
            })
        );
        for empty in ["", " ", "|", " | "] {
            assert!(
                matches!(
                    validate_wecom_recipients(empty),
                    Err(InvalidMessage::Empty { .. })
                ),
                "{empty:?}"
            );
        }
    }

    #[test]
    fn errors_and_debug_never_show_contents() {
        let secret = "SECRET-CONTENT-1234";
        let messages: Vec<Box<dyn std::fmt::Debug>> = vec![
            Box::new(WecomMessage::text(secret)),
            Box::new(WecomMessage::markdown(secret)),
            Box::new(WecomMessage::textcard(secret, secret, "https://x")),
            Box::new(WecomMessage::news(vec![
                Article::new(secret, "https://x").description(secret),
            ])),
            Box::new(MpMessage::text(secret)),
            Box::new(MpMessage::news(Article::new(secret, "https://x"))),
        ];
        for m in messages {
            let shown = format!("{m:?}");
            assert!(!shown.contains(secret), "{shown}");
        }
        let err = WecomMessage::text(secret.repeat(200))
            .validate()
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains(secret));
        assert_eq!(
            err.to_string(),
            "text.content is 3800 bytes; the platform allows at most 2048"
        );
    }

    // -- receipts and errors --------------------------------------------------------------

    #[test]
    fn receipts_surface_msgid_and_invalid_users() {
        let r = SendReceipt::from_answer(
            &json!({"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": "MSGID1"}),
            1,
        );
        assert_eq!(r.msgid.as_deref(), Some("MSGID1"));
        assert!(r.invalid_users.is_empty());
        let r = SendReceipt::from_answer(
            &json!({"errcode": 0, "invaliduser": "bob|carol", "msgid": 123}),
            2,
        );
        assert_eq!(r.msgid.as_deref(), Some("123"));
        assert_eq!(r.invalid_users, ["bob", "carol"]);
        assert_eq!(r.attempts, 2);
        let r = SendReceipt::from_answer(&json!({"errcode": 0, "errmsg": "ok"}), 1);
        assert_eq!(r.msgid, None);
    }

    #[test]
    fn send_errors_keep_the_platform_error() {
        let err = SendError::from(TokenError::Api(platform(45009)));
        assert_eq!(err, SendError::Api(platform(45009)));
        assert_eq!(err.errcode(), Some(45009));
        let err = SendError::from(TokenError::Fetch(platform(40013)));
        assert!(matches!(err, SendError::Token(TokenError::Fetch(_))));
        assert_eq!(err.errcode(), Some(40013));
        assert_eq!(SendError::from(TokenError::Timeout).errcode(), None);
        assert_eq!(
            SendError::from(InvalidMessage::Empty { field: "x".into() }).api_error(),
            None
        );
    }

    #[test]
    fn the_platforms_must_match() {
        assert_eq!(
            check_platform(Platform::Wecom, &TokenSource::mp("wx1", "s")),
            Err(InvalidMessage::WrongPlatform {
                message: Platform::Wecom,
                credentials: Platform::Mp
            })
        );
        assert!(check_platform(Platform::Mp, &TokenSource::mp("wx1", "s")).is_ok());
    }

    // -- retry policy ---------------------------------------------------------------------

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn what_is_retried() {
        // What cannot have been delivered is always retried.
        for err in [platform(-1), ApiError::Connect("connection refused".into())] {
            assert!(is_retryable(&err), "{err:?}");
            assert!(is_retryable_deduplicated(&err), "{err:?}");
        }
        // What may have been delivered only where the platform drops repeats.
        for err in [
            ApiError::Http { status: 500 },
            ApiError::Http { status: 502 },
            ApiError::Http { status: 503 },
            ApiError::Http { status: 504 },
            ApiError::Timeout,
            ApiError::Transport("connection reset".into()),
        ] {
            assert!(!is_retryable(&err), "{err:?}");
            assert!(is_retryable_deduplicated(&err), "{err:?}");
        }
        for err in [
            platform(45009),
            platform(45015),
            platform(40001),
            platform(40014),
            platform(81013),
            platform(60020),
            platform(0),
            platform(-2),
            ApiError::Http { status: 400 },
            ApiError::Http { status: 429 },
            ApiError::Decode("not JSON".into()),
        ] {
            assert!(!is_retryable(&err), "{err:?}");
            assert!(!is_retryable_deduplicated(&err), "{err:?}");
        }
    }

    #[test]
    fn delays_double_from_200ms_with_the_jitter_centred() {
        let policy = RetryPolicy::default();
        let busy = platform(-1);
        let delays: Vec<_> = (1..=4)
            .map(|attempts| policy.delay(&busy, attempts, Duration::ZERO, 0.5))
            .collect();
        assert_eq!(
            delays,
            [Some(200 * MS), Some(400 * MS), Some(800 * MS), None],
            "4 attempts in all"
        );
    }

    #[test]
    fn jitter_spans_half_to_one_and_a_half_times() {
        let policy = RetryPolicy::default();
        let busy = platform(-1);
        assert_eq!(policy.delay(&busy, 1, Duration::ZERO, 0.0), Some(100 * MS));
        let longest = policy.delay(&busy, 2, Duration::ZERO, 0.999_999).unwrap();
        assert!(longest > 599 * MS && longest < 600 * MS, "{longest:?}");
        // Out of range and NaN jitter cannot stretch or shrink a delay beyond the band.
        assert_eq!(policy.delay(&busy, 1, Duration::ZERO, 7.0), Some(300 * MS));
        assert_eq!(policy.delay(&busy, 1, Duration::ZERO, -1.0), Some(100 * MS));
        assert_eq!(
            policy.delay(&busy, 1, Duration::ZERO, f64::NAN),
            Some(200 * MS)
        );
        for jitter in [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999] {
            for attempts in 1..=3 {
                let delay = policy
                    .delay(&busy, attempts, Duration::ZERO, jitter)
                    .unwrap();
                let base = 200 * MS * (1 << (attempts - 1));
                assert!(delay >= base / 2 && delay < base * 3 / 2, "{delay:?}");
            }
        }
    }

    #[test]
    fn never_retries_what_cannot_succeed() {
        let policy = RetryPolicy::default();
        for err in [platform(45009), platform(45015), platform(40001)] {
            assert_eq!(policy.delay(&err, 1, Duration::ZERO, 0.5), None, "{err:?}");
        }
    }

    #[test]
    fn the_total_time_limit_stops_retries() {
        let policy = RetryPolicy {
            max_attempts: 10,
            first_delay: 200 * MS,
            total: Duration::from_secs(1),
        };
        let timeout = ApiError::Connect("connect timeout".into());
        assert_eq!(policy.delay(&timeout, 1, 800 * MS, 0.5), Some(200 * MS));
        assert_eq!(policy.delay(&timeout, 1, 801 * MS, 0.5), None);
        // A slow first request eats the budget: 3 s of timeout leaves no retry.
        assert_eq!(policy.delay(&timeout, 1, Duration::from_secs(3), 0.0), None);
        // Attempts far past any sane count do not overflow.
        let huge = RetryPolicy {
            max_attempts: u32::MAX,
            ..policy
        };
        assert_eq!(huge.delay(&timeout, 60, Duration::ZERO, 0.5), None);
        assert_eq!(
            RetryPolicy::never().delay(&timeout, 1, Duration::ZERO, 0.5),
            None
        );
    }

    #[test]
    fn sending_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let provider = TokenProvider::new(
            std::sync::Arc::new(crate::store::MemoryStore::new()),
            crate::wechat::PlatformClient::new(
                crate::wechat::ApiEndpoints::both("http://127.0.0.1:9"),
                crate::wechat::ClientTimeouts::default(),
            )
            .unwrap(),
            crate::wechat::TokenSettings::default(),
        );
        let messenger = Messenger::new(&provider);
        let source = TokenSource::wecom("ww", "s");
        let message = WecomMessage::text("x");
        let future = messenger.send_wecom(&source, 1, "u", &message);
        assert_send(&future);
        let mp = MpMessage::text("x");
        assert_send(&messenger.send_mp(&source, "o", &mp));
    }
}
