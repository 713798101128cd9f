//! Passive replies: shapes, platform rules, and that what we write parses back.

use wxgate::ProtocolError;
use wxgate::message::{Callback, Message};
use wxgate::platform::Platform;
use wxgate::reply::{Article, Reply, WECOM_TEXT_MAX_BYTES, truncate_utf8};
use wxgate::xml::Fields;

fn inbound(msg_type_body: &str) -> Message {
    let xml = format!(
        "<xml><ToUserName>gh_me</ToUserName><FromUserName>oUser</FromUserName><CreateTime>1</CreateTime>{msg_type_body}</xml>"
    );
    match Callback::parse(&xml).unwrap() {
        Callback::Message(m) => m,
        Callback::Info(_) => unreachable!(),
        _ => unreachable!("a variant this test does not make"),
    }
}

fn text_msg() -> Message {
    inbound("<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId>")
}

fn click() -> Message {
    inbound("<MsgType>event</MsgType><Event>CLICK</Event><EventKey>k</EventKey>")
}

fn article(n: usize) -> Article {
    Article {
        title: format!("t{n}"),
        description: "d".into(),
        pic_url: "http://p".into(),
        url: "http://u".into(),
    }
}

#[test]
fn text_reply_swaps_to_and_from_exactly() {
    let xml = Reply::text("你好 😀")
        .render(&text_msg(), Platform::Mp, 1700000000)
        .unwrap();
    assert_eq!(
        xml,
        "<xml><ToUserName><![CDATA[oUser]]></ToUserName><FromUserName><![CDATA[gh_me]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好 😀]]></Content></xml>"
    );
}

/// Fields the rendered XML must hold, as (dotted path, value).
type Expected = Vec<(&'static str, &'static str)>;

#[test]
fn every_reply_type_parses_back_with_its_fields() {
    let cases: Vec<(Reply, Platform, Expected)> = vec![
        (
            Reply::Image {
                media_id: "m".into(),
            },
            Platform::Mp,
            vec![("MsgType", "image"), ("Image.MediaId", "m")],
        ),
        (
            Reply::Voice {
                media_id: "v".into(),
            },
            Platform::Wecom,
            vec![("MsgType", "voice"), ("Voice.MediaId", "v")],
        ),
        (
            Reply::Video {
                media_id: "m".into(),
                title: "T".into(),
                description: "D".into(),
            },
            Platform::Wecom,
            vec![
                ("MsgType", "video"),
                ("Video.MediaId", "m"),
                ("Video.Title", "T"),
                ("Video.Description", "D"),
            ],
        ),
        (
            Reply::Music {
                title: "T".into(),
                description: "D".into(),
                music_url: "u".into(),
                hq_music_url: "hq".into(),
                thumb_media_id: "th".into(),
            },
            Platform::Mp,
            vec![
                ("MsgType", "music"),
                ("Music.Title", "T"),
                ("Music.MusicUrl", "u"),
                ("Music.HQMusicUrl", "hq"),
                ("Music.ThumbMediaId", "th"),
            ],
        ),
        (
            Reply::TransferCustomerService {
                kf_account: Some("kf@x".into()),
            },
            Platform::Mp,
            vec![
                ("MsgType", "transfer_customer_service"),
                ("TransInfo.KfAccount", "kf@x"),
            ],
        ),
        (
            Reply::TransferCustomerService { kf_account: None },
            Platform::Open,
            vec![("MsgType", "transfer_customer_service")],
        ),
        (
            Reply::UpdateButton {
                replace_name: "已处理".into(),
            },
            Platform::Wecom,
            vec![
                ("MsgType", "update_button"),
                ("Button.ReplaceName", "已处理"),
            ],
        ),
    ];
    for (reply, platform, expected) in cases {
        let xml = reply.render(&text_msg(), platform, 5).unwrap();
        let fields = Fields::parse(&xml).unwrap();
        assert_eq!(fields.get("ToUserName"), Some("oUser"));
        assert_eq!(fields.get("FromUserName"), Some("gh_me"));
        assert_eq!(fields.get("CreateTime"), Some("5"));
        for (name, value) in expected {
            assert_eq!(fields.get(name), Some(value), "{name} in {xml}");
        }
    }
}

#[test]
fn news_reply_lists_articles_in_order() {
    let reply = Reply::News {
        articles: (0..3).map(article).collect(),
    };
    let xml = reply.render(&text_msg(), Platform::Wecom, 1).unwrap();
    let mut fields = Fields::parse(&xml).unwrap();
    assert_eq!(fields.get("ArticleCount"), Some("3"));
    assert_eq!(
        fields.take_all("Articles.item.Title"),
        vec!["t0", "t1", "t2"]
    );
    assert_eq!(fields.take_all("Articles.item.Url").len(), 3);
}

#[test]
fn news_article_limits_depend_on_platform_and_what_is_answered() {
    let one = Reply::News {
        articles: vec![article(0)],
    };
    let two = Reply::News {
        articles: vec![article(0), article(1)],
    };
    let eight = Reply::News {
        articles: (0..8).map(article).collect(),
    };
    let nine = Reply::News {
        articles: (0..9).map(article).collect(),
    };
    let none = Reply::News { articles: vec![] };

    one.render(&text_msg(), Platform::Mp, 1).unwrap();
    let err = two.render(&text_msg(), Platform::Mp, 1).unwrap_err();
    assert!(
        matches!(&err, ProtocolError::Reply(m) if m.contains("1 to 1")),
        "{err}"
    );
    assert_eq!(err.code().as_i32(), -40011);
    eight.render(&click(), Platform::Mp, 1).unwrap();
    eight.render(&text_msg(), Platform::Wecom, 1).unwrap();
    assert_eq!(
        nine.render(&click(), Platform::Wecom, 1)
            .unwrap_err()
            .code()
            .as_i32(),
        -40011
    );
    assert_eq!(
        none.render(&click(), Platform::Wecom, 1)
            .unwrap_err()
            .code()
            .as_i32(),
        -40011
    );
}

#[test]
fn wecom_text_limit_counts_utf8_bytes_not_characters() {
    // 682 Chinese characters are 2046 bytes: fits. 683 are 2049: does not.
    let fits = "中".repeat(682);
    assert_eq!(fits.len(), 2046);
    Reply::text(fits.clone())
        .render(&text_msg(), Platform::Wecom, 1)
        .unwrap();
    let over = "中".repeat(683);
    let err = Reply::text(over.clone())
        .render(&text_msg(), Platform::Wecom, 1)
        .unwrap_err();
    assert!(
        matches!(&err, ProtocolError::Reply(m) if m.contains("2049 bytes")),
        "{err}"
    );
    Reply::text("a".repeat(WECOM_TEXT_MAX_BYTES))
        .render(&text_msg(), Platform::Wecom, 1)
        .unwrap();
    // The Official Account has no such passive-reply limit.
    Reply::text(over)
        .render(&text_msg(), Platform::Mp, 1)
        .unwrap();
}

#[test]
fn wecom_news_title_and_description_limits() {
    let long_title = Reply::News {
        articles: vec![Article {
            title: "题".repeat(43),
            ..article(0)
        }],
    };
    assert_eq!(
        long_title
            .render(&click(), Platform::Wecom, 1)
            .unwrap_err()
            .code()
            .as_i32(),
        -40011
    );
    let long_desc = Reply::News {
        articles: vec![Article {
            description: "x".repeat(513),
            ..article(0)
        }],
    };
    assert_eq!(
        long_desc
            .render(&click(), Platform::Wecom, 1)
            .unwrap_err()
            .code()
            .as_i32(),
        -40011
    );
}

#[test]
fn platform_only_reply_types_are_refused_elsewhere() {
    let music = Reply::Music {
        title: String::new(),
        description: String::new(),
        music_url: String::new(),
        hq_music_url: String::new(),
        thumb_media_id: "t".into(),
    };
    assert_eq!(
        music
            .render(&text_msg(), Platform::Wecom, 1)
            .unwrap_err()
            .code()
            .as_i32(),
        -40011
    );
    let kf = Reply::TransferCustomerService { kf_account: None };
    assert_eq!(
        kf.render(&text_msg(), Platform::Wecom, 1)
            .unwrap_err()
            .code()
            .as_i32(),
        -40011
    );
    let button = Reply::UpdateButton {
        replace_name: "x".into(),
    };
    assert_eq!(
        button
            .render(&text_msg(), Platform::Mp, 1)
            .unwrap_err()
            .code()
            .as_i32(),
        -40011
    );
}

#[test]
fn hostile_text_is_written_safely() {
    let nasty = "a]]>b\u{0}c\u{1b}[31m</Content><MsgType>evil</MsgType>";
    let xml = Reply::text(nasty)
        .render(&text_msg(), Platform::Mp, 1)
        .unwrap();
    let fields = Fields::parse(&xml).unwrap();
    assert_eq!(
        fields.get("Content"),
        Some("a]]>bc[31m</Content><MsgType>evil</MsgType>")
    );
    assert_eq!(fields.get("MsgType"), Some("text"));
}

#[test]
fn truncate_utf8_never_splits_a_character() {
    assert_eq!(truncate_utf8("abc", 10), "abc");
    assert_eq!(truncate_utf8("中文字", 7), "中文");
    assert_eq!(truncate_utf8("中文字", 6), "中文");
    assert_eq!(truncate_utf8("😀", 3), "");
}

#[test]
fn replies_deserialise_from_json() {
    let r: Reply = serde_json::from_str(r#"{"type":"text","content":"hi"}"#).unwrap();
    assert_eq!(r, Reply::text("hi"));
    let r: Reply =
        serde_json::from_str(r#"{"type":"news","articles":[{"title":"t","url":"u"}]}"#).unwrap();
    assert!(matches!(r, Reply::News { ref articles } if articles[0].url == "u"));
}
