//! The WeCom AI bot in Lambda, the way template.yaml deploys it: the built `wxgate` binary
//! as two callback instances and one reply-job worker through the Lambda runtime API on
//! loopback, over one dynalite table, with a streaming upstream (NDJSON, `forward`).
//!
//! The message's claim carries the stream's job; this test is the table's event source
//! mapping (dynalite has no streams) and hands the worker the record. Refresh callbacks
//! alternate between the two callback instances: each answers the snapshot the worker
//! stored, so the text grows whichever instance the platform reaches, and finishes once.
//! An answer slower than the platform's window is finished at the window with what it has
//! and comes once, whole, through the message's `response_url`.
// Needs Node (dynalite): built only with `--features external-tests` (scripts/test.sh).
#![cfg(feature = "external-tests")]

mod support;

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use support::aibot::stream_of;
use support::calls::v2_event;
use support::dynamo::{DynamoServer, client, create_table, reply_jobs_env, unique_table_name};
use support::fake_platform::{FakePlatform, SendApi};
use support::fake_upstream::{Behavior, FakeUpstream};
use support::runtime_api::{FunctionProcess, Outcome, RuntimeApi};
use support::sample::{KEY, TOKEN};
use support::stream_record::stream_event;
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::simulate::{
    Answer, PlatformSim, aibot_refresh_json, aibot_text_json, with_response_url,
};

const SECRET: &str = "lambda-aibot-test-secret-0123456789";

/// The AI bot `helper` answered by `upstream`, with `head` (`[gateway]`, `[api]`) before it.
fn config_text(head: &str, upstream: &FakeUpstream) -> String {
    format!(
        "{head}\n[[apps]]\nname = \"helper\"\nplatform = \"aibot\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\n\
         [apps.reply]\nforward = \"{}\"\nforward_secret = \"{SECRET}\"\n",
        upstream.url()
    )
}

/// An upstream answering `words` as NDJSON deltas, `pause` before each, then the final marker.
fn streaming_upstream(words: &[&str], pause: Duration) -> FakeUpstream {
    let pieces: Vec<Value> = words
        .iter()
        .map(|w| json!({ "delta": w }))
        .chain([json!({ "done": true })])
        .collect();
    FakeUpstream::start(SECRET, Behavior::ndjson(&pieces, pause))
}

/// Two callback instances and a reply-job worker over one dynalite table, as deployed.
struct Rig {
    _server: DynamoServer,
    db: aws_sdk_dynamodb::Client,
    table: String,
    a: FunctionProcess,
    b: FunctionProcess,
    worker: FunctionProcess,
    sim: PlatformSim,
}

async fn rig(config: &str) -> Rig {
    let server = DynamoServer::start();
    let table = unique_table_name("aibot");
    let db = client(&server.endpoint()).await;
    create_table(&db, &table).await;
    let endpoint = server.endpoint();
    let env = reply_jobs_env(config, table.as_str(), endpoint.as_str());
    let bin = env!("CARGO_BIN_EXE_wxgate");
    let a = FunctionProcess::spawn(bin, &[], &env).await.unwrap();
    let b = FunctionProcess::spawn(bin, &[], &env).await.unwrap();
    // A stream job runs as long as the answer (Lambda gives the worker 11 minutes).
    let jobs_api = RuntimeApi::start_with_timeout(Duration::from_secs(60)).await;
    let worker = FunctionProcess::spawn_with(jobs_api, bin, &[], &env).unwrap();
    let sim = PlatformSim::new(Config::parse(config).unwrap().app("helper").unwrap()).unwrap();
    Rig {
        _server: server,
        db,
        table,
        a,
        b,
        worker,
        sim,
    }
}

/// The claim item of message `msgid`, which carries its stream's job.
async fn claim_of(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    msgid: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    let key = wxgate::store::aibot_key("helper", msgid);
    let claim = db
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(key))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the first callback claimed the message");
    assert_eq!(
        claim
            .get("job")
            .and_then(|j| j.as_s().ok())
            .map(String::as_str),
        Some("pending")
    );
    claim
}

/// Sends `json` to `function` as the platform would; the decrypted answer.
async fn post(function: &mut FunctionProcess, sim: &PlatformSim, json: &str, nonce: &str) -> Value {
    let request = sim.post(json, unix_now(), nonce).unwrap();
    let invocation = function.invoke(v2_event(&request)).await.unwrap();
    let response = invocation.response().unwrap();
    let body = String::from_utf8(response.body.clone()).unwrap();
    match sim.check(&request, response.status, &body) {
        Ok(Answer::Reply(inner)) => serde_json::from_str(&inner).unwrap(),
        other => panic!(
            "{} {body}: {other:?}\n{}",
            response.status,
            function.log_tail(3000)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_grows_across_refreshes_on_two_instances_and_finishes_once() {
    let upstream = streaming_upstream(
        &["流式", "回答", "在两个", "实例上", "生长。"],
        Duration::from_millis(700),
    );
    let Rig {
        _server,
        db,
        table,
        mut a,
        mut b,
        mut worker,
        sim,
    } = rig(&config_text("", &upstream)).await;
    let message = aibot_text_json("msg-lambda-1", "lisi", None, "讲讲");
    let (id, finish, _) = stream_of(&post(&mut a, &sim, &message, "n1").await);
    assert!(!finish);
    // A retried first callback reaching the other instance: the same stream.
    let (again, _, _) = stream_of(&post(&mut b, &sim, &message, "n2").await);
    assert_eq!(again, id);

    let claim = claim_of(&db, &table, "msg-lambda-1").await;
    let working = worker.api().submit(stream_event(&claim, "100", "1"));

    let started = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    let mut finished = 0;
    let mut by_instance = [0, 0];
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(400)).await;
        n += 1;
        let function = if n % 2 == 0 { &mut a } else { &mut b };
        let refresh = aibot_refresh_json(&format!("r{n}"), "lisi", &id);
        let (got, finish, content) =
            stream_of(&post(function, &sim, &refresh, &format!("p{n}")).await);
        assert_eq!(got, id);
        if seen.last() != Some(&content) {
            seen.push(content);
            by_instance[n % 2] += 1;
        }
        if finish {
            finished += 1;
            break;
        }
    }
    assert_eq!(
        finished,
        1,
        "never finished: {seen:?}\n{}",
        worker.log_tail(3000)
    );
    assert_eq!(seen.last().unwrap(), "流式回答在两个实例上生长。");
    assert!(seen.len() >= 3, "the text did not grow: {seen:?}");
    assert!(
        by_instance[0] > 0 && by_instance[1] > 0,
        "growth seen on one instance only: {by_instance:?}"
    );
    for pair in seen.windows(2) {
        assert!(pair[1].starts_with(&pair[0]), "{seen:?}");
    }
    let done = worker.wait(working).await.unwrap();
    match &done.outcome {
        Outcome::Response(v) => assert_eq!(v["batchItemFailures"], json!([]), "{v}"),
        Outcome::Error { body, .. } => panic!("the worker failed: {body}"),
    }
    assert_eq!(
        upstream.requests().len(),
        1,
        "one upstream call for the message"
    );
    // The record delivered again (Lambda retries a batch): no second stream.
    let redelivered = worker
        .invoke(stream_event(&claim, "100", "1"))
        .await
        .unwrap();
    assert!(matches!(redelivered.outcome, Outcome::Response(_)));
    assert_eq!(
        upstream.requests().len(),
        1,
        "a redelivered record asked again"
    );
    let after = stream_of(
        &post(
            &mut a,
            &sim,
            &aibot_refresh_json("late", "lisi", &id),
            "late",
        )
        .await,
    );
    assert_eq!(
        (after.1, after.2.as_str()),
        (true, "流式回答在两个实例上生长。")
    );
}

/// An answer slower than the window (5 s here, 6 minutes on the platform): the worker
/// finishes the stream at the window with the text so far, and when the upstream is done
/// sends the whole answer once through the message's `response_url`; later refreshes on
/// either instance say finished, and a redelivered record sends nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_past_the_window_is_finished_and_sent_once_through_response_url() {
    let platform = FakePlatform::start();
    let upstream = streaming_upstream(
        &["first part, ", "second part, ", "the end."],
        Duration::from_millis(2500),
    );
    let head = format!(
        "[gateway]\nstream_window_ms = 5000\n[api]\nwecom_base_url = \"{}\"\n",
        platform.url()
    );
    let Rig {
        _server,
        db,
        table,
        mut a,
        mut b,
        mut worker,
        sim,
    } = rig(&config_text(&head, &upstream)).await;

    let response_url = format!(
        "{}/cgi-bin/aibot/response?response_code=code-lambda",
        platform.url()
    );
    let message = with_response_url(
        &aibot_text_json("msg-lambda-slow", "lisi", None, "慢慢说"),
        &response_url,
    );
    let (id, finish, _) = stream_of(&post(&mut a, &sim, &message, "n1").await);
    assert!(!finish);
    let claim = claim_of(&db, &table, "msg-lambda-slow").await;
    let working = worker.api().submit(stream_event(&claim, "200", "1"));

    let started = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    let mut n = 0;
    let finished_at = loop {
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "the stream was not finished at the window: {seen:?}\n{}",
            worker.log_tail(3000)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        n += 1;
        let function = if n % 2 == 0 { &mut a } else { &mut b };
        let refresh = aibot_refresh_json(&format!("r{n}"), "lisi", &id);
        let (got, finish, content) =
            stream_of(&post(function, &sim, &refresh, &format!("p{n}")).await);
        assert_eq!(got, id);
        seen.push(content);
        if finish {
            break started.elapsed();
        }
    };
    assert!(
        finished_at < Duration::from_secs(7),
        "finished after the answer, not at the window ({finished_at:?}): {seen:?}"
    );
    assert!(
        !seen.last().unwrap().contains("the end."),
        "the whole answer fit the window: {seen:?}"
    );

    let done = worker.wait(working).await.unwrap();
    match &done.outcome {
        Outcome::Response(v) => assert_eq!(v["batchItemFailures"], json!([]), "{v}"),
        Outcome::Error { body, .. } => panic!("the worker failed: {body}"),
    }
    let sent = platform.sent();
    assert_eq!(sent.len(), 1, "{sent:?}\n{}", worker.log_tail(3000));
    assert_eq!(sent[0].api, SendApi::AibotResponse);
    assert_eq!(sent[0].touser, "code-lambda");
    assert_eq!(sent[0].msgtype, "markdown");
    assert_eq!(sent[0].content, "first part, second part, the end.");

    // Lambda delivers the record again: nothing is asked or sent twice.
    let redelivered = worker
        .invoke(stream_event(&claim, "200", "1"))
        .await
        .unwrap();
    assert!(matches!(redelivered.outcome, Outcome::Response(_)));
    assert_eq!(upstream.requests().len(), 1, "the upstream was asked again");
    assert_eq!(platform.sent().len(), 1, "response_url was used twice");
    let after = stream_of(
        &post(
            &mut b,
            &sim,
            &aibot_refresh_json("late", "lisi", &id),
            "late",
        )
        .await,
    );
    assert!(after.1, "a refresh after the window is answered finished");
}
