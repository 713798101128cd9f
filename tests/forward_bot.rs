//! The `forward` rule through the whole gateway: the official sample app's callbacks,
//! signed and encrypted as WeCom sends them, answered by a fake upstream bot on 127.0.0.1
//! (`support/fake_upstream.rs`) that checks each request's signature. Real time, short
//! budgets: every test takes well under a second.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use support::calls::timed_answer;
use support::fake_upstream::{Behavior, FakeUpstream};
use support::sample::{
    CORP_ID, KEY, TOKEN, header, sample_config_text, sim_of, text_request, wecom_header,
};
use wxgate::bot::{Bot, BotError, ConfigBot, Inbound};
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::gateway::Gateway;
use wxgate::reply::Reply;
use wxgate::simulate::{Answer, PlatformSim, event_xml, text_xml};

const SECRET: &str = "forward-test-secret-0123456789";
/// What the users write; it must never reach a log line.
const PRIVATE: &str = "my private words";
/// How late an answer may be past a deadline on a loaded machine.
const SLACK: Duration = Duration::from_millis(150);

/// Log lines written while the returned guard lives (this thread only).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn forward_rules(url: &str, extra: &str) -> String {
    format!("forward = \"{url}\"\nforward_secret = \"{SECRET}\"\n{extra}")
}

/// The official sample app (`demo`) with `reply` as its `[apps.reply]`.
fn config(budget_ms: u64, reply: &str) -> Config {
    Config::parse(
        &sample_config_text(&format!("budget_ms = {budget_ms}")).replace("echo = true", reply),
    )
    .unwrap()
}

struct Setup {
    gateway: Gateway,
    sim: PlatformSim,
    fake: FakeUpstream,
    budget: Duration,
}

fn setup(budget_ms: u64, extra: &str, behavior: Behavior) -> Setup {
    let fake = FakeUpstream::start(SECRET, behavior);
    let config = config(budget_ms, &forward_rules(&fake.url(), extra));
    Setup {
        gateway: Gateway::builder(&config).build().unwrap(),
        sim: sim_of(&config, "demo"),
        fake,
        budget: Duration::from_millis(budget_ms),
    }
}

fn reply_xml(answer: Answer) -> String {
    match answer {
        Answer::Reply(xml) => xml,
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[tokio::test]
async fn an_upstream_answer_becomes_the_encrypted_passive_reply() {
    let s = setup(
        1000,
        "",
        Behavior::text("the upstream's answer").after(Duration::from_millis(100)),
    );
    let request = text_request(&s.sim, "hello upstream", 5, "n");
    let (answer, elapsed) = timed_answer(&s.gateway, &s.sim, &request).await;
    let xml = reply_xml(answer);
    assert!(xml.contains("the upstream's answer"), "{xml}");
    assert!(
        xml.contains("<ToUserName><![CDATA[lisi]]></ToUserName>"),
        "{xml}"
    );
    assert!(
        elapsed >= Duration::from_millis(100) && elapsed < s.budget,
        "{elapsed:?}"
    );

    // What the upstream saw: one signed JSON POST carrying the message.
    let requests = s.fake.requests();
    assert_eq!(requests.len(), 1);
    let seen = &requests[0];
    assert!(seen.signature_ok);
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/bot"));
    assert_eq!(seen.content_type.as_deref(), Some("application/json"));
    let timestamp = seen.timestamp.clone().unwrap();
    assert!(timestamp.parse::<u64>().unwrap().abs_diff(unix_now()) <= 5);
    // The signature, recomputed here with the HMAC crate directly.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&seen.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(seen.signature.as_deref(), Some(expected.as_str()));

    let body = seen.json();
    assert_eq!(body["app"], "demo");
    assert_eq!(body["platform"], "wecom");
    assert_eq!(body["authorizer_app_id"], json!(null));
    assert_eq!(body["id"], "dedup#demo#msg|5");
    let message = &body["message"];
    assert_eq!(message["msg_type"], "text");
    assert_eq!(message["content"], "hello upstream");
    assert_eq!(message["from_user_name"], "lisi");
    assert_eq!(message["to_user_name"], CORP_ID);
    assert_eq!(message["msg_id"], 5);
    assert_eq!(message["agent_id"], 218);
}

#[tokio::test]
async fn a_retry_is_answered_from_the_record_without_asking_the_upstream_again() {
    let s = setup(1000, "", Behavior::text("once"));
    let request = text_request(&s.sim, "hi", 6, "n");
    for _ in 0..2 {
        let (answer, _) = timed_answer(&s.gateway, &s.sim, &request).await;
        assert!(reply_xml(answer).contains("once"));
    }
    assert_eq!(s.fake.requests().len(), 1);
}

#[tokio::test]
async fn a_news_answer_becomes_a_news_reply() {
    let s = setup(
        1000,
        "",
        Behavior::news("价目表", "https://example.com/prices"),
    );
    let request = text_request(&s.sim, "价格?", 7, "n");
    let xml = reply_xml(timed_answer(&s.gateway, &s.sim, &request).await.0);
    assert!(xml.contains("<MsgType><![CDATA[news]]></MsgType>"), "{xml}");
    assert!(xml.contains("<ArticleCount>1</ArticleCount>"), "{xml}");
    assert!(
        xml.contains("价目表") && xml.contains("https://example.com/prices"),
        "{xml}"
    );
}

#[tokio::test]
async fn no_reply_from_the_upstream_is_the_empty_answer_without_a_warning() {
    let s = setup(1000, "", Behavior::none());
    let (logs, _guard) = Logs::capture();
    let cases = [
        Behavior::none(),
        Behavior::json(json!({"type": "none"})),
        Behavior::no_content(),
    ];
    for (i, behavior) in cases.into_iter().enumerate() {
        s.fake.set_behavior(behavior.clone());
        let request = text_request(&s.sim, "hi", 100 + i as u64, "n");
        let (answer, _) = timed_answer(&s.gateway, &s.sim, &request).await;
        assert_eq!(answer, Answer::Empty, "{behavior:?}");
    }
    assert_eq!(s.fake.requests().len(), 3);
    let logs = logs.take();
    assert!(!logs.contains("WARN"), "{logs}");
}

#[tokio::test]
async fn upstream_failures_are_answered_empty_within_the_budget_with_one_warning() {
    // A budget well past the upstream's limit: the first call also builds the HTTP client,
    // which takes tens of milliseconds in a debug build on a loaded machine.
    let s = setup(1000, "forward_timeout_ms = 150", Behavior::none());
    let (logs, _guard) = Logs::capture();
    let cases = [
        (Behavior::status(500), "answered HTTP 500", Some(500)),
        (Behavior::status(302), "answered HTTP 302", Some(302)),
        (Behavior::garbage(), "unusable answer: not JSON", Some(200)),
        (
            Behavior::json(json!({"type": "sticker", "id": 1})),
            "unusable answer: unknown type \"sticker\"",
            Some(200),
        ),
        (
            Behavior::json(json!({"type": "text"})),
            "needs `content`",
            Some(200),
        ),
        (
            Behavior::oversized(100_000, true),
            "larger than 65536 bytes",
            Some(200),
        ),
        (
            Behavior::oversized(100_000, false),
            "larger than 65536 bytes",
            Some(200),
        ),
        (Behavior::Hang, "no answer within 150 ms", None),
    ];
    for (i, (behavior, cause, status)) in cases.into_iter().enumerate() {
        s.fake.set_behavior(behavior.clone());
        let request = text_request(&s.sim, PRIVATE, 200 + i as u64, "n");
        let (answer, elapsed) = timed_answer(&s.gateway, &s.sim, &request).await;
        assert_eq!(answer, Answer::Empty, "{behavior:?}");
        assert!(elapsed < s.budget + SLACK, "{behavior:?}: {elapsed:?}");
        let logs = logs.take();
        let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warnings.len(), 1, "{behavior:?}: {logs}");
        let warning = warnings[0];
        assert!(
            warning.contains("app=\"demo\"") || warning.contains("app=demo"),
            "{warning}"
        );
        assert!(warning.contains(cause), "{behavior:?}: {warning}");
        match status {
            Some(status) => assert!(warning.contains(&format!("status={status}")), "{warning}"),
            None => assert!(!warning.contains("status="), "{warning}"),
        }
        assert!(!logs.contains(PRIVATE) && !logs.contains(SECRET), "{logs}");
    }
    assert_eq!(s.fake.requests().len(), 8);
    assert!(s.fake.requests().iter().all(|r| r.signature_ok));
}

#[tokio::test]
async fn a_refused_connection_is_answered_empty_at_once() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = config(
        1000,
        &forward_rules(&format!("http://127.0.0.1:{closed_port}/bot"), ""),
    );
    let gateway = Gateway::builder(&config).build().unwrap();
    let sim = sim_of(&config, "demo");
    let (logs, _guard) = Logs::capture();
    let (answer, elapsed) =
        timed_answer(&gateway, &sim, &text_request(&sim, PRIVATE, 9, "n")).await;
    assert_eq!(answer, Answer::Empty);
    assert!(elapsed < Duration::from_millis(500), "{elapsed:?}");
    let logs = logs.take();
    let warning = logs.lines().find(|l| l.contains("WARN")).unwrap();
    assert!(warning.contains("cannot connect"), "{warning}");
    assert!(!warning.contains("status="), "{warning}");
    assert!(!logs.contains(PRIVATE), "{logs}");
}

#[tokio::test]
async fn local_rules_answer_first_and_the_upstream_gets_the_rest() {
    let s = setup(
        1000,
        "subscribe = \"welcome\"\nkeywords = [{ equals = \"help\", reply = \"local help\" }]\n\
         [apps.reply.click]\nLOCAL = \"local click\"",
        Behavior::text("from upstream"),
    );
    let local = [
        (text_request(&s.sim, " HELP ", 10, "n"), "local help"),
        (
            s.sim
                .post(
                    &event_xml(&wecom_header(&s.sim, "lisi"), "subscribe", None),
                    unix_now(),
                    "n",
                )
                .unwrap(),
            "welcome",
        ),
        (
            s.sim
                .post(
                    &event_xml(&wecom_header(&s.sim, "lisi"), "click", Some("LOCAL")),
                    unix_now(),
                    "n",
                )
                .unwrap(),
            "local click",
        ),
    ];
    for (request, expected) in &local {
        let xml = reply_xml(timed_answer(&s.gateway, &s.sim, request).await.0);
        assert!(xml.contains(expected), "{xml}");
    }
    assert!(s.fake.requests().is_empty());

    // Text no keyword matches, and an event without a local answer, go upstream.
    let other_click = s
        .sim
        .post(
            &event_xml(&wecom_header(&s.sim, "lisi"), "click", Some("REMOTE")),
            unix_now(),
            "n",
        )
        .unwrap();
    for request in [text_request(&s.sim, "helpme", 11, "n"), other_click] {
        let xml = reply_xml(timed_answer(&s.gateway, &s.sim, &request).await.0);
        assert!(xml.contains("from upstream"), "{xml}");
    }
    let seen = s.fake.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].json()["message"]["content"], "helpme");
    let click = &seen[1].json()["message"];
    assert_eq!(
        (&click["msg_type"], &click["event"]),
        (&json!("event"), &json!("click"))
    );
    assert_eq!(click["event_key"], "REMOTE");
}

#[tokio::test]
async fn a_late_upstream_is_cut_off_at_its_time_limit_and_its_connection_closed() {
    // The default limit would be 750 ms (the budget less a quarter); a much shorter one keeps
    // the test clear of the budget on a loaded machine.
    let s = setup(
        1000,
        "forward_timeout_ms = 150",
        Behavior::text("too late").after(Duration::from_secs(6)),
    );
    let (logs, _guard) = Logs::capture();
    let (answer, elapsed) =
        timed_answer(&s.gateway, &s.sim, &text_request(&s.sim, "hi", 12, "n")).await;
    assert_eq!(answer, Answer::Empty);
    assert!(
        elapsed >= Duration::from_millis(150) && elapsed < s.budget + SLACK,
        "{elapsed:?}"
    );
    let logs = logs.take();
    assert!(logs.contains("no answer within 150 ms"), "{logs}");
    // Nothing is left running: the upstream sees the connection closed at once.
    let asked = s.fake.requests()[0].at;
    let hung_up = s
        .fake
        .wait_hung_up(0, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(hung_up - asked < s.budget + SLACK, "{:?}", hung_up - asked);
}

#[tokio::test]
async fn at_the_gateway_budget_the_upstream_call_is_dropped() {
    // A limit longer than the budget: the gateway's deadline wins. (With equal limits the
    // outcome would hang on which timer a millisecond tick fires first.)
    let s = setup(300, "forward_timeout_ms = 600", Behavior::Hang);
    let (logs, _guard) = Logs::capture();
    let (answer, elapsed) =
        timed_answer(&s.gateway, &s.sim, &text_request(&s.sim, "hi", 13, "n")).await;
    assert_eq!(answer, Answer::Empty);
    assert!(
        elapsed >= s.budget && elapsed < s.budget + SLACK,
        "{elapsed:?}"
    );
    let logs = logs.take();
    assert!(logs.contains("missed the time budget"), "{logs}");
    let hung_up = s
        .fake
        .wait_hung_up(0, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(hung_up - s.fake.requests()[0].at < s.budget + SLACK);
}

/// A bot in code that answers one word itself and leaves the rest to the config, upstream
/// included (the README's "A bot in code").
struct TimeBot {
    rules: ConfigBot,
}

impl Bot for TimeBot {
    async fn reply(&self, inbound: &Inbound<'_>) -> Result<Option<Reply>, BotError> {
        match inbound.message.text() {
            Some("time") => Ok(Some(Reply::text("noon"))),
            _ => self.rules.reply(inbound).await,
        }
    }
}

#[tokio::test]
async fn a_bot_in_code_falls_back_to_the_upstream() {
    let fake = FakeUpstream::start(SECRET, Behavior::text("upstream"));
    let config = config(1000, &forward_rules(&fake.url(), ""));
    let bot = TimeBot {
        rules: ConfigBot::from_config(&config).unwrap(),
    };
    let gateway = Gateway::builder(&config).bot(bot).build().unwrap();
    let sim = sim_of(&config, "demo");
    let xml = reply_xml(
        timed_answer(&gateway, &sim, &text_request(&sim, "time", 14, "n"))
            .await
            .0,
    );
    assert!(xml.contains("noon"), "{xml}");
    let xml = reply_xml(
        timed_answer(&gateway, &sim, &text_request(&sim, "other", 15, "n"))
            .await
            .0,
    );
    assert!(xml.contains("upstream"), "{xml}");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn open_platform_messages_name_the_authorizer() {
    let fake = FakeUpstream::start(SECRET, Behavior::text("hi from upstream"));
    let config = Config::parse(&format!(
        r#"
        [[apps]]
        name = "platform"
        platform = "open"
        app_id = "{CORP_ID}"
        token = "{TOKEN}"
        encoding_aes_key = "{KEY}"
        [apps.reply]
        {}"#,
        forward_rules(&fake.url(), "")
    ))
    .unwrap();
    let gateway = Gateway::builder(&config).build().unwrap();
    let sim = PlatformSim::new(config.app("platform").unwrap())
        .unwrap()
        .authorizer(Some("wxauthorizer0001".into()));
    let header = header("gh_authorized", "openid-1", None);
    let request = sim
        .post(&text_xml(&header, "hello", 16), unix_now(), "n")
        .unwrap();
    let xml = reply_xml(timed_answer(&gateway, &sim, &request).await.0);
    assert!(xml.contains("hi from upstream"), "{xml}");
    let body = fake.requests()[0].json();
    assert_eq!(body["platform"], "open");
    assert_eq!(body["authorizer_app_id"], "wxauthorizer0001");
    // The id is scoped by the account the signed message names, not the URL's AppID.
    assert_eq!(body["id"], "dedup#platform/gh_authorized#msg|16");
}
