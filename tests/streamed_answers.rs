//! Streamed answers: `ConfigBot::stream` against a fake `forward` upstream that answers
//! NDJSON, SSE or JSON (`support/fake_upstream.rs`) and a fake OpenAI-compatible server
//! (`support/fake_llm.rs`), watched as the text grows; an `llm` app through `wxgate serve`
//! as a process; and the failures, typed and logged without the key or the user's words.

mod support;

use std::time::Duration;

use serde_json::json;
use support::fake_llm::{FakeLlm, LlmBehavior};
use support::fake_upstream::{Behavior, FakeUpstream};
use support::sample::{CORP_ID, header, sample_config_text, text_request, wecom_app};
use support::serve::Server;
use wxgate::bot::{Bot, BotError, ConfigBot, Inbound, TextSink};
use wxgate::config::Config;
use wxgate::message::{Callback, Message};
use wxgate::platform::Platform;
use wxgate::reply::Reply;
use wxgate::simulate::{Answer, text_xml};

const SECRET: &str = "stream-test-secret-0123456789";
const API_KEY: &str = "sk-test-key-4c1d9e0f";
/// What the users write; it must never reach a log line.
const PRIVATE: &str = "my private words";
/// Between the pieces of a streamed answer: long enough that two pieces do not reach the
/// reader in one read when a loaded machine holds the test's thread back for a moment.
const PAUSE: Duration = Duration::from_millis(150);

fn config(reply: &str) -> Config {
    Config::parse(&sample_config_text("").replace("echo = true", reply)).unwrap()
}

fn forward_bot(fake: &FakeUpstream, extra: &str) -> ConfigBot {
    let rules = format!(
        "forward = \"{}\"\nforward_secret = \"{SECRET}\"\n{extra}",
        fake.url()
    );
    ConfigBot::from_config(&config(&rules)).unwrap()
}

fn llm_rules(fake: &FakeLlm, key: &str, extra: &str) -> String {
    format!(
        "llm = \"{}\"\nllm_model = \"fake-model\"\nllm_api_key = \"{key}\"\n{extra}",
        fake.base()
    )
}

fn llm_bot(fake: &FakeLlm, key: &str, extra: &str) -> ConfigBot {
    ConfigBot::from_config(&config(&llm_rules(fake, key, extra))).unwrap()
}

fn text_message(text: &str) -> Message {
    let xml = text_xml(&header(CORP_ID, "lisi", Some(218)), text, 7);
    match Callback::parse(&xml).unwrap() {
        Callback::Message(message) => message,
        other => panic!("not a message: {other:?}"),
    }
}

fn message_xml(body: &str) -> Message {
    let xml = format!(
        "<xml><ToUserName>{CORP_ID}</ToUserName><FromUserName>lisi</FromUserName>\
         <CreateTime>1700000000</CreateTime>{body}<MsgId>9</MsgId><AgentID>218</AgentID></xml>"
    );
    match Callback::parse(&xml).unwrap() {
        Callback::Message(message) => message,
        other => panic!("not a message: {other:?}"),
    }
}

/// Streams `message` through `bot`, keeping every distinct text the watch showed.
async fn watch(
    bot: &ConfigBot,
    message: &Message,
) -> (Result<Option<String>, BotError>, Vec<String>, String) {
    let inbound = Inbound::new("demo", Platform::Wecom, message, "dedup#demo#msg|7");
    let (sink, mut watch) = TextSink::new();
    let stream = bot.stream(&inbound, &sink);
    tokio::pin!(stream);
    let mut seen = Vec::new();
    let result = loop {
        tokio::select! {
            result = &mut stream => break result,
            Ok(()) = watch.changed() => seen.push(watch.borrow_and_update().clone()),
        }
    };
    let last = sink.text();
    if seen.last() != Some(&last) && !last.is_empty() {
        seen.push(last.clone());
    }
    (result, seen, last)
}

/// The text grew in several steps, each extending or replacing the one before, to `full`.
fn assert_grew(seen: &[String], full: &str) {
    assert!(seen.len() >= 3, "too few snapshots: {seen:?}");
    let mut distinct = seen.to_vec();
    distinct.dedup();
    assert_eq!(distinct.len(), seen.len(), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some(full), "{seen:?}");
}

#[tokio::test]
async fn a_forward_upstream_streams_ndjson_and_the_text_grows() {
    let fake = FakeUpstream::start(
        SECRET,
        Behavior::ndjson(
            &[
                json!({"delta": "Hel"}),
                json!({"delta": "lo", "ignored": 1}),
                json!({"content": "Hello,"}),
                json!({"delta": " world", "done": true}),
                json!({"delta": " after done: never read"}),
            ],
            PAUSE,
        ),
    );
    let bot = forward_bot(&fake, "");
    let (result, seen, _) = watch(&bot, &text_message(PRIVATE)).await;
    assert_eq!(result.unwrap().as_deref(), Some("Hello, world"));
    assert_eq!(seen, ["Hel", "Hello", "Hello,", "Hello, world"]);
    assert_grew(&seen, "Hello, world");
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let seen = &requests[0];
    assert!(seen.signature_ok, "the same signed request");
    assert_eq!(
        seen.accept.as_deref(),
        Some("application/x-ndjson, text/event-stream, application/json")
    );
    let body = seen.json();
    assert_eq!(body["stream"], json!(true));
    assert_eq!(body["message"]["content"], PRIVATE);
    assert_eq!(body["id"], "dedup#demo#msg|7");
}

#[tokio::test]
async fn a_forward_upstream_streams_sse_and_a_json_answer_is_the_whole_text() {
    let fake = FakeUpstream::start(
        SECRET,
        Behavior::sse(
            &[
                json!({"delta": "你"}),
                json!({"delta": "好"}),
                json!({"delta": "，世界"}),
                json!({"done": true}),
            ],
            PAUSE,
        ),
    );
    let bot = forward_bot(&fake, "");
    let (result, seen, _) = watch(&bot, &text_message("hi")).await;
    assert_eq!(result.unwrap().as_deref(), Some("你好，世界"));
    assert_grew(&seen, "你好，世界");

    fake.set_behavior(Behavior::text("whole at once"));
    let (result, seen, _) = watch(&bot, &text_message("hi")).await;
    assert_eq!(result.unwrap().as_deref(), Some("whole at once"));
    assert_eq!(seen, ["whole at once"]);
    fake.set_behavior(Behavior::none());
    assert_eq!(watch(&bot, &text_message("hi")).await.0.unwrap(), None);
    fake.set_behavior(Behavior::news("t", "https://e.x"));
    let e = watch(&bot, &text_message("hi")).await.0.unwrap_err();
    assert!(e.to_string().contains("needs a text answer"), "{e}");
    // The non-streamed call's body is as it was: no `stream` field.
    fake.set_behavior(Behavior::text("plain"));
    let message = text_message("hi");
    let inbound = Inbound::new("demo", Platform::Wecom, &message, "k");
    let reply = bot.reply(&inbound).await.unwrap();
    assert_eq!(reply, Some(Reply::text("plain")));
    let last = fake.requests().pop().unwrap().json();
    assert!(last.get("stream").is_none(), "{last}");
}

#[tokio::test]
async fn local_rules_stream_their_text_at_once_without_the_upstream() {
    let fake = FakeUpstream::start(SECRET, Behavior::text("upstream"));
    let bot = forward_bot(
        &fake,
        "keywords = [{ equals = \"help\", reply = \"local help\" }, { equals = \"news\", reply = { type = \"news\", articles = [{ title = \"t\", url = \"https://e.x\" }] } }]",
    );
    let (result, seen, _) = watch(&bot, &text_message("help")).await;
    assert_eq!(result.unwrap().as_deref(), Some("local help"));
    assert_eq!(seen, ["local help"]);
    let (result, seen, _) = watch(&bot, &text_message("news")).await;
    assert_eq!(result.unwrap(), None, "a stream shows text only");
    assert!(seen.is_empty());
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn forward_stream_failures_are_typed_and_keep_the_text_so_far() {
    let fake = FakeUpstream::start(SECRET, Behavior::none());
    let bot = forward_bot(&fake, "stream_timeout_ms = 1000");
    let cases: Vec<(Behavior, &str, &str)> = vec![
        (
            Behavior::ndjson(&[json!({"delta": "so far"})], PAUSE),
            "truncated",
            "so far",
        ),
        (
            Behavior::sse(
                &[
                    json!({"delta": "so far"}),
                    json!({"error": "model overloaded"}),
                ],
                PAUSE,
            ),
            "the upstream reported an error: model overloaded",
            "so far",
        ),
        (
            Behavior::Stream {
                content_type: "application/x-ndjson",
                pieces: vec![b"{\"delta\":\"so far\"}\n".to_vec(), vec![b'x'; 70_000]],
                pause: PAUSE,
            },
            "longer than 65536 bytes",
            "so far",
        ),
        (
            Behavior::ndjson(&[json!({"delta": ["not a string"]})], PAUSE),
            "`delta` must be a string",
            "",
        ),
        (
            Behavior::ndjson(
                &[json!({"delta": "slow"}), json!({"done": true})],
                Duration::from_millis(700),
            ),
            "no answer within 1000 ms",
            "slow",
        ),
        (Behavior::status(503), "answered HTTP 503", ""),
    ];
    for (behavior, cause, kept) in cases {
        fake.set_behavior(behavior);
        let (result, _, last) = watch(&bot, &text_message(PRIVATE)).await;
        let e = result.unwrap_err();
        assert!(e.to_string().contains(cause), "{cause}: {e}");
        assert!(e.to_string().starts_with("upstream: "), "{e}");
        assert!(!e.to_string().contains(PRIVATE), "{e}");
        assert_eq!(last, kept, "{cause}");
    }
}

#[tokio::test]
async fn an_llm_streams_its_answer_and_the_text_grows() {
    let fake = FakeLlm::start(
        Some(API_KEY),
        LlmBehavior::stream(&["The ", "answer ", "is ", "42."], PAUSE),
    );
    let bot = llm_bot(
        &fake,
        API_KEY,
        "llm_system_prompt = \"Be brief.\"\nllm_max_tokens = 300",
    );
    let (result, seen, _) = watch(&bot, &text_message(PRIVATE)).await;
    assert_eq!(result.unwrap().as_deref(), Some("The answer is 42."));
    assert_eq!(
        seen,
        ["The ", "The answer ", "The answer is ", "The answer is 42."]
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(&*format!("Bearer {API_KEY}"))
    );
    assert_eq!(
        requests[0].body,
        json!({
            "model": "fake-model",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": PRIVATE},
            ],
            "stream": true,
            "max_tokens": 300,
        })
    );
}

#[tokio::test]
async fn only_text_and_recognized_voice_reach_the_llm() {
    let fake = FakeLlm::start(None, LlmBehavior::stream(&["ok"], Duration::ZERO));
    let rules = format!(
        "llm = \"{}\"\nllm_model = \"m\"\nsubscribe = \"welcome\"",
        fake.base()
    );
    let bot = ConfigBot::from_config(&config(&rules)).unwrap();
    for silent in [
        "<MsgType>image</MsgType><PicUrl>https://e.x/p.png</PicUrl><MediaId>m</MediaId>",
        "<MsgType>voice</MsgType><MediaId>m</MediaId><Format>amr</Format>",
        "<MsgType>location</MsgType><Location_X>1</Location_X><Location_Y>2</Location_Y><Scale>3</Scale><Label>l</Label>",
    ] {
        let (result, _, _) = watch(&bot, &message_xml(silent)).await;
        assert_eq!(result.unwrap(), None, "{silent}");
    }
    assert!(fake.requests().is_empty(), "no call for them");
    let voice = message_xml(
        "<MsgType>voice</MsgType><MediaId>m</MediaId><Format>amr</Format><Recognition>what time is it</Recognition>",
    );
    let (result, _, _) = watch(&bot, &voice).await;
    assert_eq!(result.unwrap().as_deref(), Some("ok"));
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].body["messages"][0]["content"],
        "what time is it"
    );
    assert_eq!(requests[0].authorization, None, "no key, no header");
}

#[tokio::test]
async fn a_whole_llm_answer_is_a_text_reply_cut_to_the_platform_limit() {
    let fake = FakeLlm::start(
        Some(API_KEY),
        LlmBehavior::stream(&["short ", "answer"], PAUSE),
    );
    let bot = llm_bot(&fake, API_KEY, "");
    let message = text_message("hi");
    let inbound = Inbound::new("demo", Platform::Wecom, &message, "k");
    assert_eq!(
        bot.reply(&inbound).await.unwrap(),
        Some(Reply::text("short answer"))
    );
    let long = "长".repeat(1000); // 3000 bytes
    fake.set_behavior(LlmBehavior::stream(&[&long], Duration::ZERO));
    let Some(Reply::Text { content }) = bot.reply(&inbound).await.unwrap() else {
        panic!("not a text reply");
    };
    assert_eq!(
        content,
        "长".repeat(682),
        "2048 bytes at most, whole characters"
    );
}

#[tokio::test]
async fn llm_failures_are_typed_and_never_show_the_key() {
    let fake = FakeLlm::start(Some(API_KEY), LlmBehavior::stream(&["x"], PAUSE));
    let wrong = "sk-wrong-key-77aa";
    let cases: Vec<(Option<LlmBehavior>, &str, &str, Option<u16>)> = vec![
        (
            None,
            wrong,
            "the API key is refused (HTTP 401, invalid_api_key)",
            Some(401),
        ),
        (
            Some(LlmBehavior::status(500, "server_error")),
            API_KEY,
            "the server failed (HTTP 500, server_error)",
            Some(500),
        ),
        (
            Some(LlmBehavior::status(404, "model_not_found")),
            API_KEY,
            "no such model or URL (HTTP 404",
            Some(404),
        ),
        (
            Some(LlmBehavior::status(429, "rate_limit_exceeded")),
            API_KEY,
            "rate limited (HTTP 429",
            Some(429),
        ),
        (
            Some(LlmBehavior::truncated(&["so ", "far"], PAUSE)),
            API_KEY,
            "truncated",
            Some(200),
        ),
        (
            Some(LlmBehavior::Raw {
                pieces: vec![format!("data: {}", "x".repeat(70_000)).into_bytes()],
                pause: PAUSE,
            }),
            API_KEY,
            "longer than 65536 bytes",
            Some(200),
        ),
    ];
    for (behavior, key, cause, status) in cases {
        if let Some(behavior) = behavior {
            fake.set_behavior(behavior);
        }
        let bot = llm_bot(&fake, key, "");
        let (result, _, last) = watch(&bot, &text_message(PRIVATE)).await;
        let e = result.unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(shown.contains(cause), "{cause}: {shown}");
        assert!(e.to_string().starts_with("llm: "), "{e}");
        assert_eq!(e.status(), status, "{cause}");
        for secret in [API_KEY, wrong, "sk-***", "Incorrect API key", PRIVATE] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        if cause == "truncated" {
            assert_eq!(last, "so far", "the text so far stays");
        }
    }
}

#[tokio::test]
async fn an_llm_app_answers_through_wxgate_serve() {
    let fake = FakeLlm::start(
        Some(API_KEY),
        LlmBehavior::stream(&["Served ", "by ", "the model."], PAUSE),
    );
    let wrong = "sk-refused-key-0000";
    let text = format!(
        "{}\n{}",
        wecom_app(
            "demo",
            &format!(
                "agent_id = 218\n[apps.reply]\n{}",
                llm_rules(&fake, API_KEY, "")
            )
        ),
        wecom_app(
            "refused",
            &format!(
                "agent_id = 218\n[apps.reply]\n{}",
                llm_rules(&fake, wrong, "")
            )
        ),
    );
    let server = Server::start_logged(&text);
    let sim = server.sim("demo");
    let request = text_request(&sim, PRIVATE, 31, "n1");
    let (status, body) = server.send(&request).await;
    let Ok(Answer::Reply(xml)) = sim.check(&request, status, &body) else {
        panic!("no passive reply: {status} {body}");
    };
    assert!(
        xml.contains("<Content><![CDATA[Served by the model.]]></Content>"),
        "{xml}"
    );
    assert_eq!(fake.requests()[0].body["messages"][0]["content"], PRIVATE);

    let sim = server.sim("refused");
    let request = text_request(&sim, PRIVATE, 32, "n2");
    let (status, body) = server.send(&request).await;
    assert_eq!(sim.check(&request, status, &body).unwrap(), Answer::Empty);
    // The warning is written after the answer; give it a moment.
    let mut logs = String::new();
    for _ in 0..50 {
        logs = server.logs();
        if logs.contains("the API key is refused") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        logs.contains("the API key is refused (HTTP 401, invalid_api_key)"),
        "{logs}"
    );
    for secret in [API_KEY, wrong, "sk-***", PRIVATE] {
        assert!(!logs.contains(secret), "{secret} in {logs}");
    }
}

#[tokio::test]
async fn a_stream_that_stalls_past_the_idle_limit_is_cut_off() {
    use secrecy::SecretString;
    use wxgate::bot::{ForwardError, Upstream, UpstreamClient};
    let fake = FakeUpstream::start(
        SECRET,
        Behavior::ndjson(
            &[json!({"delta": "quick"}), json!({"done": true})],
            Duration::from_millis(60),
        ),
    );
    let upstream = Upstream::new(
        &fake.url(),
        SecretString::from(SECRET),
        Duration::from_secs(1),
    )
    .unwrap()
    .with_idle_limit(Duration::from_millis(300));
    let message = text_message("hi");
    let inbound = Inbound::new("demo", Platform::Wecom, &message, "k");
    let client = UpstreamClient::default();
    let (sink, _watch) = TextSink::new();
    let text = upstream
        .ask_streaming(&client, &inbound, &sink)
        .await
        .unwrap();
    assert_eq!(
        text.as_deref(),
        Some("quick"),
        "pauses under the idle limit are fine"
    );
    fake.set_behavior(Behavior::ndjson(
        &[json!({"delta": "so far"}), json!({"done": true})],
        Duration::from_millis(500),
    ));
    let (sink, _watch) = TextSink::new();
    let e = upstream
        .ask_streaming(&client, &inbound, &sink)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ForwardError::Stream { status: 200, .. })
            && e.to_string().contains("nothing arrived for 300 ms"),
        "{e:?}"
    );
}
