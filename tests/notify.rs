//! Active messages against the fake WeChat API (`tests/support/fake_platform.rs`): the
//! `Messenger` in process (bodies per type, retries, typed errors, one token for many
//! concurrent sends), and `wxgate notify` as a process (exit codes, output, and twenty
//! processes sharing one token through a DynamoDB table on dynalite).
// Some tests here need a local AWS-compatible server or Python: they are built only with
// `--features external-tests` (scripts/test.sh); the rest run with plain `cargo test`.
#![cfg_attr(not(feature = "external-tests"), allow(dead_code, unused_imports))]

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::cli::{ConfigFile, Run, run, wxgate};
use support::dynamo::{DynamoServer, client, create_table, process_env, unique_table_name};
use support::fake_platform::{CORP_ID, CORP_SECRET, FakePlatform, SendApi, SendFault, shop_app};
use support::sample::KEY;
use wxgate::store::MemoryStore;
use wxgate::wechat::{
    ApiError, Article, ClientTimeouts, InvalidMessage, Messenger, MpMessage, PlatformClient,
    RetryPolicy, SendError, TextCard, TokenError, TokenProvider, TokenSettings, WecomMessage,
};

const AGENT_ID: u64 = 1_000_002;
const OPENID: &str = "oFakeOpenId000000000000000001";

// ------------------------------------------------------------------------------------------
// Harness
// ------------------------------------------------------------------------------------------

fn provider_with(fake: &FakePlatform, request: Duration) -> TokenProvider<MemoryStore> {
    let client = PlatformClient::new(
        fake.endpoints(),
        ClientTimeouts {
            connect: Duration::from_secs(1),
            request,
        },
    )
    .unwrap();
    TokenProvider::new(
        Arc::new(MemoryStore::new()),
        client,
        TokenSettings::default(),
    )
}

fn provider(fake: &FakePlatform) -> TokenProvider<MemoryStore> {
    provider_with(fake, Duration::from_secs(3))
}

/// Short delays, so the tests of what is retried do not wait out the real backoff.
fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        first_delay: Duration::from_millis(10),
        total: Duration::from_secs(3),
    }
}

fn platform_error(err: &SendError) -> (i64, &str) {
    match err {
        SendError::Api(ApiError::Platform { errcode, errmsg }) => (*errcode, errmsg.as_str()),
        other => panic!("not a platform error: {other:?}"),
    }
}

// ------------------------------------------------------------------------------------------
// Messages reach the platform as documented
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn each_wecom_type_reaches_the_platform_as_documented() {
    let fake = FakePlatform::start();
    let tokens = provider(&fake);
    let messenger = Messenger::new(&tokens);
    let source = FakePlatform::wecom_source();
    let card = TextCard {
        title: "领奖通知".into(),
        description: "<div class=\"highlight\">请于周五前领取</div>".into(),
        url: "https://example.com/prize".into(),
        btntxt: Some("领取".into()),
    };
    let messages = [
        WecomMessage::text("构建完成 ✅\n第二行"),
        WecomMessage::markdown("**部署** `v1.2` 完成"),
        WecomMessage::news(vec![
            Article::new("周报", "https://example.com/w1")
                .description("第 1 周")
                .pic_url("https://example.com/w1.png"),
            Article::new("月报", "https://example.com/m1"),
        ]),
        WecomMessage::TextCard(card),
    ];
    let mut msgids = HashSet::new();
    for message in &messages {
        let receipt = messenger
            .send_wecom(&source, AGENT_ID, "zhangsan|lisi", message)
            .await
            .unwrap();
        assert_eq!(receipt.attempts, 1);
        assert!(receipt.invalid_users.is_empty());
        assert!(msgids.insert(receipt.msgid.clone().expect("a msgid")));
    }

    let sent = fake.sent();
    assert_eq!(sent.len(), 4);
    for (message, sent) in messages.iter().zip(&sent) {
        assert_eq!(sent.api, SendApi::Wecom);
        assert_eq!(sent.touser, "zhangsan|lisi");
        assert_eq!(sent.msgtype, message.msg_type());
        assert_eq!(sent.agentid, Some(AGENT_ID));
        assert!(msgids.contains(sent.msgid.as_ref().unwrap()));
        assert_eq!(sent.body, message.body(AGENT_ID, "zhangsan|lisi"));
    }
    assert_eq!(
        sent[0].body,
        json!({"touser": "zhangsan|lisi", "msgtype": "text", "agentid": AGENT_ID,
               "text": {"content": "构建完成 ✅\n第二行"}})
    );
    assert_eq!(sent[1].content, "**部署** `v1.2` 完成");
    assert_eq!(
        sent[2].body["news"],
        json!({"articles": [
            {"title": "周报", "description": "第 1 周", "url": "https://example.com/w1",
             "picurl": "https://example.com/w1.png"},
            {"title": "月报", "url": "https://example.com/m1"},
        ]})
    );
    assert_eq!(
        sent[3].body["textcard"],
        json!({"title": "领奖通知", "description": "<div class=\"highlight\">请于周五前领取</div>",
               "url": "https://example.com/prize", "btntxt": "领取"})
    );
    assert_eq!(fake.fetches(), 1, "one token for all four");
}

#[tokio::test]
async fn mp_text_and_news_reach_the_platform_as_documented() {
    let fake = FakePlatform::start();
    let tokens = provider(&fake);
    let messenger = Messenger::new(&tokens);
    let source = FakePlatform::mp_source();
    let text = messenger
        .send_mp(&source, OPENID, &MpMessage::text("您的订单已发货"))
        .await
        .unwrap();
    assert_eq!(text.msgid, None, "customer messages have no msgid");
    let news = MpMessage::news(
        Article::new("新品上架", "https://example.com/new")
            .description("点击查看")
            .pic_url("https://example.com/new.jpg"),
    );
    messenger.send_mp(&source, OPENID, &news).await.unwrap();

    let sent = fake.sent();
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .all(|m| m.api == SendApi::Mp && m.touser == OPENID)
    );
    assert_eq!(
        sent[0].body,
        json!({"touser": OPENID, "msgtype": "text", "text": {"content": "您的订单已发货"}})
    );
    assert_eq!(
        sent[1].body,
        json!({"touser": OPENID, "msgtype": "news", "news": {"articles": [
            {"title": "新品上架", "description": "点击查看", "url": "https://example.com/new",
             "picurl": "https://example.com/new.jpg"}
        ]}})
    );
    assert_eq!(sent[0].agentid, None);
}

// ------------------------------------------------------------------------------------------
// Retries and typed errors
// ------------------------------------------------------------------------------------------

/// With the default policy: 200 ms then 400 ms (each jittered to ×0.5..×1.5) between the
/// three requests.
#[tokio::test]
async fn system_busy_twice_then_delivered_once() {
    let fake = FakePlatform::start();
    let tokens = provider(&fake);
    tokens.get(&FakePlatform::wecom_source()).await.unwrap();
    fake.fail_next_sends(2, SendFault::Errcode(-1));
    let started = Instant::now();
    let receipt = Messenger::new(&tokens)
        .send_wecom(
            &FakePlatform::wecom_source(),
            AGENT_ID,
            "zhangsan",
            &WecomMessage::text("hi"),
        )
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(receipt.attempts, 3);
    assert_eq!(fake.send_requests(), 3);
    assert_eq!(fake.delivered(), 1);
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(2000),
        "{elapsed:?}"
    );
}

/// A 5xx may come after the platform took the message: an Official Account send (no
/// duplicate check there) is not repeated.
#[tokio::test]
async fn an_mp_send_answered_500_is_not_retried() {
    let fake = FakePlatform::start();
    let tokens = provider(&fake);
    fake.fail_next_sends(2, SendFault::Status(500));
    let err = Messenger::new(&tokens)
        .send_mp(&FakePlatform::mp_source(), OPENID, &MpMessage::text("hi"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Api(ApiError::Http { status: 500 })),
        "{err:?}"
    );
    assert_eq!(fake.send_requests(), 1);
    assert_eq!(fake.fetches(), 1, "a 5xx is not a reason for a new token");
}

/// Under WeCom's duplicate check a 5xx is retried: the platform would drop a repeat.
#[tokio::test]
async fn a_wecom_send_answered_500_is_retried_under_the_duplicate_check() {
    let fake = FakePlatform::start();
    let tokens = provider(&fake);
    fake.fail_next_sends(2, SendFault::Status(500));
    let receipt = Messenger::new(&tokens)
        .with_duplicate_check(Duration::from_secs(60))
        .send_wecom(
            &FakePlatform::wecom_source(),
            AGENT_ID,
            "zhangsan",
            &WecomMessage::text("hi"),
        )
        .await
        .unwrap();
    assert_eq!(receipt.attempts, 3);
    assert_eq!(fake.send_requests(), 3);
    assert_eq!(fake.delivered(), 1);
    let body = &fake.sent()[0].body;
    assert_eq!(body["enable_duplicate_check"], 1);
    assert_eq!(body["duplicate_check_interval"], 60);
}

/// The platform takes the message and answers after the client gave up. WeCom under its
/// duplicate check: the retry is dropped by the platform, the member gets one message.
/// Without the check, and on the Official Account: no retry, one message, and the caller
/// learns the send's fate is unknown (a timeout).
#[tokio::test]
async fn a_send_the_platform_took_but_answered_late_is_delivered_once() {
    let fake = FakePlatform::start();
    let tokens = provider_with(&fake, Duration::from_millis(300));
    let wecom = FakePlatform::wecom_source();
    tokens.get(&wecom).await.unwrap();
    tokens.get(&FakePlatform::mp_source()).await.unwrap();

    fake.fail_next_sends(1, SendFault::AcceptThenAnswerLate(Duration::from_secs(3)));
    let started = Instant::now();
    let receipt = Messenger::new(&tokens)
        .with_retry(fast())
        .with_duplicate_check(Duration::from_secs(60))
        .send_wecom(&wecom, AGENT_ID, "zhangsan", &WecomMessage::text("once"))
        .await
        .unwrap();
    assert_eq!(receipt.attempts, 2);
    assert_eq!(fake.send_requests(), 2);
    assert_eq!(fake.delivered(), 1, "delivered once");
    assert_eq!(
        fake.duplicates_dropped(),
        1,
        "the retry was the platform's to drop"
    );
    assert_eq!(receipt.msgid, fake.sent()[0].msgid);
    assert!(started.elapsed() < Duration::from_secs(2));

    fake.fail_next_sends(1, SendFault::AcceptThenAnswerLate(Duration::from_secs(3)));
    let err = Messenger::new(&tokens)
        .with_retry(fast())
        .send_wecom(&wecom, AGENT_ID, "zhangsan", &WecomMessage::text("twice?"))
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Api(ApiError::Timeout)), "{err:?}");
    assert_eq!(
        fake.send_requests(),
        3,
        "not repeated without the duplicate check"
    );
    assert_eq!(fake.delivered(), 2);

    fake.fail_next_sends(1, SendFault::AcceptThenAnswerLate(Duration::from_secs(3)));
    let err = Messenger::new(&tokens)
        .with_retry(fast())
        .with_duplicate_check(Duration::from_secs(60))
        .send_mp(
            &FakePlatform::mp_source(),
            OPENID,
            &MpMessage::text("mp once"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Api(ApiError::Timeout)), "{err:?}");
    assert_eq!(
        fake.send_requests(),
        4,
        "the Official Account has no duplicate check"
    );
    assert_eq!(fake.delivered(), 3);
}

#[tokio::test]
async fn retries_are_bounded() {
    let fake = FakePlatform::start();
    let tokens = provider(&fake);
    fake.fail_next_sends(10, SendFault::Errcode(-1));
    let policy = RetryPolicy {
        max_attempts: 3,
        ..fast()
    };
    let err = Messenger::new(&tokens)
        .with_retry(policy)
        .send_wecom(
            &FakePlatform::wecom_source(),
            AGENT_ID,
            "zhangsan",
            &WecomMessage::text("hi"),
        )
        .await
        .unwrap_err();
    assert_eq!(platform_error(&err).0, -1);
    assert_eq!(fake.send_requests(), 3);
    assert_eq!(fake.delivered(), 0);

    // Connection refused: retried (nothing was sent), then a connect error.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let endpoints = wxgate::wechat::ApiEndpoints {
        wecom: dead_url,
        mp: fake.url(),
    };
    // The token is fetched from the fake into a shared store; the sends go nowhere.
    let store = Arc::new(MemoryStore::new());
    let seeder = TokenProvider::new(
        Arc::clone(&store),
        PlatformClient::new(fake.endpoints(), ClientTimeouts::default()).unwrap(),
        TokenSettings::default(),
    );
    seeder.get(&FakePlatform::wecom_source()).await.unwrap();
    let tokens = TokenProvider::new(
        store,
        PlatformClient::new(endpoints, ClientTimeouts::default()).unwrap(),
        TokenSettings::default(),
    );
    let err = Messenger::new(&tokens)
        .with_retry(policy)
        .send_wecom(
            &FakePlatform::wecom_source(),
            AGENT_ID,
            "zhangsan",
            &WecomMessage::text("hi"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Api(ApiError::Connect(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_api_rate_limit_is_not_retried() {
    let fake = FakePlatform::start();
    let tokens = provider(&fake);
    fake.fail_next_sends(1, SendFault::Errcode(45009));
    let err = Messenger::new(&tokens)
        .send_wecom(
            &FakePlatform::wecom_source(),
            AGENT_ID,
            "zhangsan",
            &WecomMessage::text("hi"),
        )
        .await
        .unwrap_err();
    assert_eq!(platform_error(&err).0, 45009);
    assert_eq!(err.errcode(), Some(45009));
    assert_eq!(fake.send_requests(), 1);
    assert_eq!(fake.delivered(), 0);
}

#[tokio::test]
async fn an_expired_reply_window_is_a_typed_error() {
    let fake = FakePlatform::start();
    let tokens = provider(&fake);
    fake.fail_next_sends(1, SendFault::Errcode(45015));
    let err = Messenger::new(&tokens)
        .send_mp(&FakePlatform::mp_source(), OPENID, &MpMessage::text("hi"))
        .await
        .unwrap_err();
    let (errcode, errmsg) = platform_error(&err);
    assert_eq!(errcode, 45015);
    assert!(errmsg.contains("out of time limit"), "{errmsg}");
    assert_eq!(fake.send_requests(), 1);
}

#[tokio::test]
async fn a_refused_token_is_fetched_again_once() {
    let fake = FakePlatform::start();
    let tokens = provider(&fake);
    let messenger = Messenger::new(&tokens);
    let source = FakePlatform::wecom_source();
    let message = WecomMessage::text("hi");
    messenger
        .send_wecom(&source, AGENT_ID, "zhangsan", &message)
        .await
        .unwrap();
    fake.revoke_current();
    let receipt = messenger
        .send_wecom(&source, AGENT_ID, "zhangsan", &message)
        .await
        .unwrap();
    assert_eq!(receipt.attempts, 2, "refused, then sent with the new token");
    assert_eq!(fake.sends_refused(), 1);
    assert_eq!(fake.fetches(), 2);
    let sent = fake.sent();
    assert_eq!(sent.len(), 2);
    assert_ne!(sent[0].token, sent[1].token);

    // A token refused again after the re-fetch is an error, not a loop.
    fake.fail_next_sends(2, SendFault::Errcode(40014));
    let err = messenger
        .send_wecom(&source, AGENT_ID, "zhangsan", &message)
        .await
        .unwrap_err();
    assert_eq!(platform_error(&err).0, 40014);
    assert_eq!(fake.fetches(), 3, "one re-fetch only");
    assert_eq!(fake.send_requests(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_sends_on_a_cold_cache_fetch_one_token() {
    let fake = FakePlatform::start();
    fake.set_delay(Duration::from_millis(20));
    let tokens = provider(&fake);
    let messenger = Messenger::new(&tokens);
    let source = FakePlatform::wecom_source();
    let messages: Vec<_> = (0..50)
        .map(|i| WecomMessage::text(format!("message {i}")))
        .collect();
    let sends = messages.iter().enumerate().map(|(i, m)| {
        let (messenger, source) = (&messenger, &source);
        async move {
            messenger
                .send_wecom(source, AGENT_ID, &format!("user{i}"), m)
                .await
        }
    });
    let receipts = futures::future::join_all(sends).await;
    let msgids: HashSet<_> = receipts
        .into_iter()
        .map(|r| r.unwrap().msgid.unwrap())
        .collect();
    assert_eq!(msgids.len(), 50);
    assert_eq!(fake.fetches(), 1, "{:?}", fake.fetch_log());
    let sent = fake.sent();
    assert_eq!(sent.len(), 50);
    let contents: HashSet<_> = sent.iter().map(|m| m.content.clone()).collect();
    assert_eq!(contents.len(), 50);
    assert_eq!(fake.send_requests(), 50);
}

#[tokio::test]
async fn invalid_messages_make_no_request() {
    let fake = FakePlatform::start();
    let tokens = provider(&fake);
    let messenger = Messenger::new(&tokens);
    let wecom = FakePlatform::wecom_source();
    let cases = [
        (WecomMessage::text("字".repeat(683)), "zhangsan"),
        (WecomMessage::markdown("m".repeat(2049)), "zhangsan"),
        (WecomMessage::text(""), "zhangsan"),
        (WecomMessage::news(vec![]), "zhangsan"),
        (
            WecomMessage::textcard("t".repeat(129), "d", "https://x"),
            "zhangsan",
        ),
        (WecomMessage::textcard("t", "d", "example.com"), "zhangsan"),
        (WecomMessage::text("hi"), ""),
    ];
    for (message, to) in &cases {
        let err = messenger
            .send_wecom(&wecom, AGENT_ID, to, message)
            .await
            .unwrap_err();
        assert!(matches!(err, SendError::Invalid(_)), "{err:?}");
    }
    let err = messenger
        .send_mp(
            &FakePlatform::mp_source(),
            OPENID,
            &MpMessage::text("t".repeat(2049)),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        SendError::Invalid(InvalidMessage::TooLong { .. })
    ));
    let err = messenger
        .send_mp(&wecom, OPENID, &MpMessage::text("hi"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        SendError::Invalid(InvalidMessage::WrongPlatform { .. })
    ));
    assert_eq!(fake.fetches(), 0, "not even a token");
    assert_eq!(fake.send_requests(), 0);
}

#[tokio::test]
async fn invalid_recipients_are_surfaced() {
    let fake = FakePlatform::start();
    fake.set_unknown_users(&["Ghost", "nobody"]);
    let tokens = provider(&fake);
    let messenger = Messenger::new(&tokens);
    let source = FakePlatform::wecom_source();
    let message = WecomMessage::text("hi");
    let receipt = messenger
        .send_wecom(&source, AGENT_ID, "zhangsan|Ghost|nobody", &message)
        .await
        .unwrap();
    assert_eq!(receipt.invalid_users, ["ghost", "nobody"]);
    assert!(receipt.msgid.is_some());
    // Nobody valid: the platform refuses the whole message, and that is not retried.
    let err = messenger
        .send_wecom(&source, AGENT_ID, "ghost|nobody", &message)
        .await
        .unwrap_err();
    assert_eq!(platform_error(&err).0, 81013);
    assert_eq!(fake.send_requests(), 2);
}

#[tokio::test]
async fn a_failed_token_fetch_is_a_token_error() {
    let fake = FakePlatform::start();
    let tokens = provider(&fake);
    let wrong = wxgate::wechat::TokenSource::wecom(CORP_ID, "not-the-secret");
    let err = Messenger::new(&tokens)
        .send_wecom(&wrong, AGENT_ID, "zhangsan", &WecomMessage::text("hi"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Token(TokenError::Fetch(_))),
        "{err:?}"
    );
    assert_eq!(err.errcode(), Some(40001));
    assert!(!err.to_string().contains("not-the-secret"));
    assert_eq!(fake.send_requests(), 0);
}

// ------------------------------------------------------------------------------------------
// `wxgate notify` as a process
// ------------------------------------------------------------------------------------------

fn config_text(fake_url: &str, extra: &str) -> String {
    format!(
        r#"
{extra}
[api]
wecom_base_url = "{fake_url}"
mp_base_url = "{fake_url}"
timeout_ms = 2000

[[apps]]
name = "ops"
platform = "wecom"
corp_id = "{CORP_ID}"
agent_id = {AGENT_ID}
token = "opstoken"
encoding_aes_key = "{KEY}"
secret = "{CORP_SECRET}"

[[apps]]
name = "noagent"
platform = "wecom"
corp_id = "{CORP_ID}"
token = "opstoken"
encoding_aes_key = "{KEY}"
secret = "{CORP_SECRET}"

[[apps]]
name = "nosecret"
platform = "wecom"
corp_id = "{CORP_ID}"
agent_id = 5
token = "opstoken"
encoding_aes_key = "{KEY}"

{}"#,
        shop_app()
    )
}

/// A config for `fake`, with `extra` TOML in front.
fn config_file(fake: &FakePlatform, extra: &str) -> ConfigFile {
    ConfigFile::new("notify", &config_text(&fake.url(), extra))
}

fn notify_command(config: &Path, args: &[&str]) -> Command {
    let mut cmd = wxgate(&["notify"]);
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

fn notify(config: &Path, args: &[&str]) -> Run {
    run(&mut notify_command(config, args))
}

#[test]
fn notify_prints_the_msgid() {
    let fake = FakePlatform::start();
    let config = config_file(&fake, "");
    let r = notify(&config, &["--app", "ops", "--to", "zhangsan", "部署完成"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sent = fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(r.stdout.trim(), sent[0].msgid.as_deref().unwrap());
    assert_eq!(sent[0].content, "部署完成");
    assert_eq!(sent[0].agentid, Some(AGENT_ID));
    assert_eq!(
        r.stderr.trim(),
        format!(
            "sent text with wecom app \"ops\", msgid {}",
            r.stdout.trim()
        )
    );
    assert!(!r.stderr.contains(CORP_SECRET) && !r.stderr.contains("fake-token"));
}

#[test]
fn notify_sends_every_type() {
    let fake = FakePlatform::start();
    let config = config_file(&fake, "");
    let runs = [
        notify(
            &config,
            &["--app", "ops", "--to", "a|b", "--markdown", "**粗体**"],
        ),
        notify(
            &config,
            &[
                "--app",
                "ops",
                "--to",
                "a",
                "--textcard",
                "审批",
                "--url",
                "https://example.com/a",
                "--btntxt",
                "去审批",
                "请审批报销单",
            ],
        ),
        notify(
            &config,
            &[
                "--app",
                "ops",
                "--to",
                "@all",
                "--news",
                "周报",
                "--url",
                "https://example.com/w",
                "--picurl",
                "https://example.com/w.png",
                "",
            ],
        ),
        notify(&config, &["--app", "shop", "--to", OPENID, "您好"]),
        notify(
            &config,
            &[
                "--app",
                "shop",
                "--to",
                OPENID,
                "--news",
                "新品",
                "--url",
                "https://example.com/n",
                "点击查看",
            ],
        ),
    ];
    for r in &runs {
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    assert_eq!(runs[3].stdout, "", "an Official Account gives no msgid");
    let sent = fake.sent();
    assert_eq!(sent.len(), 5);
    assert_eq!(sent[0].body["markdown"], json!({"content": "**粗体**"}));
    assert_eq!(sent[0].touser, "a|b");
    assert_eq!(
        sent[1].body["textcard"],
        json!({"title": "审批", "description": "请审批报销单",
               "url": "https://example.com/a", "btntxt": "去审批"})
    );
    assert_eq!(
        sent[2].body["news"],
        json!({"articles": [{"title": "周报", "url": "https://example.com/w",
                             "picurl": "https://example.com/w.png"}]})
    );
    assert_eq!(sent[3].api, SendApi::Mp);
    assert_eq!(sent[3].body["text"], json!({"content": "您好"}));
    assert_eq!(
        sent[4].body["news"],
        json!({"articles": [{"title": "新品", "description": "点击查看",
                             "url": "https://example.com/n"}]})
    );
    // Each process fetched its own token (memory store): the fake repeats the current one.
    assert_eq!(fake.issued(), 2, "one WeCom and one MP token");
}

#[test]
fn notify_exits_1_on_platform_errors() {
    let fake = FakePlatform::start();
    let config = config_file(&fake, "");
    fake.fail_next_sends(1, SendFault::Errcode(45009));
    let r = notify(&config, &["--app", "ops", "--to", "zhangsan", "hi"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stdout, "");
    assert!(r.stderr.contains("errcode 45009"), "{}", r.stderr);
    assert!(r.stderr.contains("rate limit"), "{}", r.stderr);
    assert_eq!(fake.send_requests(), 1, "45009 is not retried");

    fake.fail_next_sends(1, SendFault::Errcode(45015));
    let r = notify(&config, &["--app", "shop", "--to", OPENID, "hi"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("errcode 45015"), "{}", r.stderr);
    assert!(r.stderr.contains("48 hours"), "{}", r.stderr);

    // A wrong secret fails at the token fetch: still the platform's errcode, exit 1.
    let wrong = ConfigFile::new(
        "notify",
        &config_text(&fake.url(), "").replace(CORP_SECRET, "wrong-secret"),
    );
    let r = notify(&wrong, &["--app", "ops", "--to", "zhangsan", "hi"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("fetching the access token: errcode 40001"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("wrong-secret"));

    // Nothing listening: a network error after the retries, exit 1.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let dead = ConfigFile::new("notify", &config_text(&dead_url, ""));
    let r = notify(&dead, &["--app", "ops", "--to", "zhangsan", "hi"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot connect to the platform"),
        "{}",
        r.stderr
    );
}

#[test]
fn notify_exits_2_on_config_and_usage_errors() {
    let fake = FakePlatform::start();
    let config = config_file(&fake, "");
    let cases: [(&[&str], &str); 8] = [
        (
            &["--app", "nope", "--to", "u", "hi"],
            "no app named \"nope\"",
        ),
        (&["--app", "nosecret", "--to", "u", "hi"], "has no secret"),
        (&["--app", "noagent", "--to", "u", "hi"], "has no agent_id"),
        (
            &["--app", "ops", "--to", "u", &"长".repeat(700)],
            "text.content is 2100 bytes; the platform allows at most 2048",
        ),
        (
            &["--app", "shop", "--to", OPENID, "--markdown", "x"],
            "is an Official Account",
        ),
        (
            &["--app", "ops", "--to", "u", "--textcard", "T", "hi"],
            "--url",
        ),
        (
            &[
                "--app",
                "ops",
                "--to",
                "u",
                "--textcard",
                "T",
                "--url",
                "ftp://x",
                "hi",
            ],
            "textcard.url must start with http:// or https://",
        ),
        (&["--app", "ops", "--to", "", "hi"], "touser is empty"),
    ];
    for (args, expected) in cases {
        let r = notify(&config, args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(expected), "{args:?}: {}", r.stderr);
        assert_eq!(r.stdout, "");
    }
    let r = notify(
        Path::new("/nonexistent/wxgate.toml"),
        &["--app", "ops", "--to", "u", "hi"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(fake.fetches(), 0);
    assert_eq!(fake.send_requests(), 0);
}

#[cfg(feature = "external-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_processes_share_one_token_through_dynamodb() {
    let dynamo = DynamoServer::start();
    let table = unique_table_name("notify");
    create_table(&client(&dynamo.endpoint()).await, &table).await;
    let fake = FakePlatform::start();
    // Store requests get a generous timeout: twenty processes starting at once on a small
    // machine must not time out and fall back to fetching directly.
    let config = config_file(&fake, "[store]\ntimeout_ms = 2000\n");
    let started = Instant::now();
    let children: Vec<_> = (0..20)
        .map(|i| {
            notify_command(
                &config,
                &[
                    "--app",
                    "ops",
                    "--to",
                    &format!("user{i}"),
                    &format!("n{i}"),
                ],
            )
            .env("WXGATE_TABLE", &table)
            .envs(process_env(&dynamo.endpoint()))
            .env_remove("AWS_PROFILE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let runs: Vec<Run> = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| Run::from(c.wait_with_output().unwrap()))
            .collect()
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    for r in &runs {
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.trim().starts_with("fake-msgid-"), "{}", r.stdout);
    }
    assert_eq!(fake.fetches(), 1, "{:?}", fake.fetch_log());
    let sent = fake.sent();
    assert_eq!(sent.len(), 20);
    let tokens: HashSet<_> = sent.iter().map(|m| m.token.as_str()).collect();
    assert_eq!(tokens.len(), 1);
    let recipients: HashSet<_> = sent.iter().map(|m| m.touser.as_str()).collect();
    assert_eq!(recipients.len(), 20);
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
}
