//! The WeCom AI bot through `wxgate serve` as a process, with an OpenAI-compatible model as
//! its upstream (`support/fake_llm.rs`) and the platform played the way WeCom does it:
//! the message opens a stream, refresh callbacks poll it about once a second, and the
//! text grows across them until the stream is finished; an answer slower than the
//! platform's window ends the stream with what it has and comes once through the
//! message's `response_url` (`support/fake_platform.rs`).

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::aibot::stream_of;
use support::fake_llm::{FakeLlm, LlmBehavior};
use support::fake_platform::{FakePlatform, SendApi};
use support::sample::{KEY, TOKEN};
use support::serve::Server;
use support::wait::eventually;
use wxgate::clock::unix_now;
use wxgate::simulate::{
    Answer, PlatformSim, aibot_refresh_json, aibot_text_json, with_response_url,
};

const API_KEY: &str = "sk-test-aibot-0123456789";

fn config(gateway: &str, platform: &FakePlatform, llm: &FakeLlm) -> String {
    format!(
        "[gateway]\n{gateway}\n[api]\nwecom_base_url = \"{}\"\n\
         [[apps]]\nname = \"helper\"\nplatform = \"aibot\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\n\
         [apps.reply]\nllm = \"{}\"\nllm_model = \"fake-model\"\nllm_api_key = \"{API_KEY}\"\n\
         keywords = [{{ equals = \"ping\", reply = \"pong\" }}]\n",
        platform.url(),
        llm.base()
    )
}

/// Posts `json` as the platform does; the decrypted answer.
async fn post(server: &Server, sim: &PlatformSim, json: &str, nonce: &str) -> Value {
    let request = sim.post(json, unix_now(), nonce).unwrap();
    let (status, body) = server.send(&request).await;
    match sim.check(&request, status, &body) {
        Ok(Answer::Reply(inner)) => serde_json::from_str(&inner).unwrap(),
        other => panic!("{status} {body}: {other:?}"),
    }
}

/// Polls the stream like the platform (every `every`) until it finishes or `limit`
/// passes: the distinct texts seen, in order, and how many answers said finished.
async fn poll(
    server: &Server,
    sim: &PlatformSim,
    id: &str,
    every: Duration,
    limit: Duration,
) -> (Vec<String>, usize) {
    let started = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    let mut n = 0;
    while started.elapsed() < limit {
        tokio::time::sleep(every).await;
        n += 1;
        let answer = post(
            server,
            sim,
            &aibot_refresh_json(&format!("r{n}"), "lisi", id),
            &format!("p{n}"),
        )
        .await;
        let (got, finish, content) = stream_of(&answer);
        assert_eq!(got, id);
        if seen.last() != Some(&content) {
            seen.push(content);
        }
        if finish {
            return (seen, 1);
        }
    }
    (seen, 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_answer_grows_across_the_platforms_refreshes() {
    let platform = FakePlatform::start();
    let llm = FakeLlm::start(
        Some(API_KEY),
        LlmBehavior::stream(
            &["机器人", "正在", "回答", "你的问题。"],
            Duration::from_millis(400),
        ),
    );
    let server = Server::start_logged(&config("", &platform, &llm));
    let sim = server.sim("helper");

    // A rule answers at once: a finished stream, no model call.
    let pong = post(
        &server,
        &sim,
        &aibot_text_json("m-rule", "lisi", None, "ping"),
        "n0",
    )
    .await;
    assert!(stream_of(&pong).1, "a rule answers a finished stream");
    assert_eq!(stream_of(&pong).2, "pong");

    let message = aibot_text_json("m-llm", "lisi", Some("group-1"), "@helper 你好");
    let first = post(&server, &sim, &message, "n1").await;
    let (id, finish, content) = stream_of(&first);
    assert!(!finish && content.is_empty(), "{first}");
    // The platform delivers the message again: the same stream, no second model call.
    let again = post(&server, &sim, &message, "n2").await;
    assert_eq!(stream_of(&again).0, id);

    let (seen, finished) = poll(
        &server,
        &sim,
        &id,
        Duration::from_millis(300),
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(finished, 1, "never finished: {seen:?}");
    assert_eq!(seen.last().unwrap(), "机器人正在回答你的问题。");
    assert!(
        seen.len() >= 3,
        "the text did not grow across refreshes: {seen:?}"
    );
    for pair in seen.windows(2) {
        assert!(pair[1].starts_with(&pair[0]), "{seen:?}");
    }
    let requests = llm.requests();
    assert_eq!(requests.len(), 1, "the model was asked once");
    assert_eq!(requests[0].body["stream"], true);
    assert!(
        platform.sent().is_empty(),
        "nothing went through response_url"
    );
    let logs = server.logs();
    for secret in [API_KEY, "你好", "回答"] {
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_slower_than_the_window_ends_with_one_response_url_message() {
    let platform = FakePlatform::start();
    // 3 pieces 2.5 s apart: past a 5-second window.
    let llm = FakeLlm::start(
        Some(API_KEY),
        LlmBehavior::stream(
            &["first part, ", "second part, ", "the end."],
            Duration::from_millis(2500),
        ),
    );
    let server = Server::start_logged(&config("stream_window_ms = 5000", &platform, &llm));
    let sim = server.sim("helper");
    let response_url = format!(
        "{}/cgi-bin/aibot/response?response_code=code-1",
        platform.url()
    );
    let message = with_response_url(
        &aibot_text_json("m-slow", "lisi", None, "慢慢说"),
        &response_url,
    );
    let (id, finish, _) = stream_of(&post(&server, &sim, &message, "n1").await);
    assert!(!finish);

    let (seen, finished) = poll(
        &server,
        &sim,
        &id,
        Duration::from_millis(500),
        Duration::from_secs(8),
    )
    .await;
    assert_eq!(
        finished, 1,
        "the stream was not finished at the window: {seen:?}"
    );
    let shown = seen.last().unwrap().clone();
    assert!(
        !shown.contains("the end."),
        "the whole answer fit the window: {seen:?}"
    );

    eventually(Duration::from_secs(10), || !platform.sent().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = platform.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].api, SendApi::AibotResponse);
    assert_eq!(sent[0].touser, "code-1");
    assert_eq!(sent[0].msgtype, "markdown");
    assert_eq!(sent[0].content, "first part, second part, the end.");
    // Refreshes after the window still say finished.
    let after = post(
        &server,
        &sim,
        &aibot_refresh_json("late", "lisi", &id),
        "late",
    )
    .await;
    assert!(stream_of(&after).1);
}

/// Crafted callbacks through the process: correctly signed and encrypted garbage, deep
/// nesting, missing fields, a stale timestamp, an XML envelope, a wrong signature. Each is
/// refused with its status and code, nothing reaches the model, and the server goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_callbacks_are_refused_and_the_server_goes_on() {
    let platform = FakePlatform::start();
    let llm = FakeLlm::start(Some(API_KEY), LlmBehavior::stream(&["ok"], Duration::ZERO));
    let server = Server::start_logged(&config("", &platform, &llm));
    let sim = server.sim("helper");
    let deep = format!(
        r#"{{"msgid":"d","msgtype":"text","text":{{"content":"x"}},"x":{}1{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let cases: Vec<(String, u16, &str)> = vec![
        ("not json at all".into(), 400, "-40002"),
        ("[1,2,3]".into(), 400, "-40002"),
        (
            r#"{"msgtype":"text","text":{"content":"no msgid"}}"#.into(),
            400,
            "-40002",
        ),
        (
            r#"{"msgid":"s","msgtype":"stream","stream":{}}"#.into(),
            400,
            "-40002",
        ),
        (deep, 400, "-40002"),
    ];
    for (i, (plaintext, status, code)) in cases.iter().enumerate() {
        let request = sim.post(plaintext, unix_now(), &format!("c{i}")).unwrap();
        let (got, body) = server.send(&request).await;
        assert_eq!(got, *status, "case {i}: {body}");
        assert!(body.contains(code), "case {i}: {body}");
    }
    // Replayed from long ago: refused before decryption.
    let old = sim
        .post(
            &aibot_text_json("old", "lisi", None, "hi"),
            unix_now() - 3600,
            "old",
        )
        .unwrap();
    assert_eq!(server.send(&old).await.0, 403);
    // A signature over another ciphertext.
    let mut forged = sim
        .post(&aibot_text_json("f", "lisi", None, "hi"), unix_now(), "f")
        .unwrap();
    forged.body = forged.body.replacen("\"}", "AAAA\"}", 1);
    let (status, body) = server.send(&forged).await;
    assert_eq!(status, 401, "{body}");
    // The XML envelope of a WeCom app, signed: not this platform's.
    let mut xml = sim
        .post(&aibot_text_json("x", "lisi", None, "hi"), unix_now(), "x")
        .unwrap();
    xml.body = "<xml><Encrypt><![CDATA[abc]]></Encrypt></xml>".into();
    assert_eq!(server.send(&xml).await.0, 400);
    assert!(
        llm.requests().is_empty(),
        "a crafted callback reached the model"
    );
    // Still answering.
    let fine = post(
        &server,
        &sim,
        &aibot_text_json("fine", "lisi", None, "ping"),
        "ok",
    )
    .await;
    assert_eq!(stream_of(&fine).2, "pong");
}
