//! Deferred replies in Lambda, the way template.yaml deploys them: the built `wxgate` binary
//! as two function instances through the Lambda runtime API on loopback, one answering
//! callbacks (API Gateway events), one running reply jobs (DynamoDB stream batches), over
//! one dynalite table, with a fake upstream bot and a fake WeChat API on 127.0.0.1.
//!
//! dynalite has no streams, so this test is the event source mapping: it reads the item the
//! callback's claim wrote and hands the worker the stream record DynamoDB would (`INSERT`,
//! `NEW_IMAGE`, the item in DynamoDB JSON), as Lambda would after the mapping's filter.
// Needs Node, Python, Chromium or a local AWS-compatible server: built only with
// `--features external-tests` (scripts/test.sh), so plain `cargo test` stays offline.
#![cfg(feature = "external-tests")]

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use support::calls::v2_event;
use support::dynamo::{DynamoServer, client, create_table, reply_jobs_env, unique_table_name};
use support::fake_platform::FakePlatform;
use support::fake_upstream::{Behavior, FakeUpstream};
use support::runtime_api::{FunctionProcess, Outcome};
use support::sample::{key_of, sim_of, text_request, wecom_header};
use support::stream_record::stream_event;
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::simulate::{Answer, Header, PlatformSim, SignedRequest, text_xml};

const UPSTREAM_SECRET: &str = "lambda-jobs-test-secret-0123456789";
/// The budget a deployment has by default.
const BUDGET_MS: u64 = 4_000;
/// The `eventID` of the stream records handed to the worker.
const JOB_EVENT_ID: &str = "c81e728d9d4c2f636f067f89cc14862c";

type Item = HashMap<String, AttributeValue>;

struct Rig {
    _server: DynamoServer,
    db: aws_sdk_dynamodb::Client,
    table: String,
    platform: FakePlatform,
    upstream: FakeUpstream,
    callbacks: FunctionProcess,
    worker: FunctionProcess,
    sim: PlatformSim,
}

fn config_text(
    platform: &FakePlatform,
    upstream: &FakeUpstream,
    forward_timeout_ms: u64,
) -> String {
    support::fake_platform::forward_app_config(
        "",
        &platform.url(),
        &upstream.url(),
        UPSTREAM_SECRET,
        forward_timeout_ms,
        r#"keywords = [{ equals = ["ping"], reply = "pong" }]"#,
    )
}

async fn rig(behavior: Behavior) -> Rig {
    rig_with(behavior, 8_000).await
}

async fn rig_with(behavior: Behavior, forward_timeout_ms: u64) -> Rig {
    let server = DynamoServer::start();
    let table = unique_table_name("jobs");
    let db = client(&server.endpoint()).await;
    create_table(&db, &table).await;
    let platform = FakePlatform::start();
    let upstream = FakeUpstream::start(UPSTREAM_SECRET, behavior);
    let config = config_text(&platform, &upstream, forward_timeout_ms);
    let endpoint = server.endpoint();
    let env = reply_jobs_env(config.as_str(), table.as_str(), endpoint.as_str());
    let bin = env!("CARGO_BIN_EXE_wxgate");
    let callbacks = FunctionProcess::spawn(bin, &[], &env).await.unwrap();
    let worker = FunctionProcess::spawn(bin, &[], &env).await.unwrap();
    let sim = sim_of(&Config::parse(&config).unwrap(), "demo");
    Rig {
        _server: server,
        db,
        table,
        platform,
        upstream,
        callbacks,
        worker,
        sim,
    }
}

const QUESTION: &str = "what is the weather?";
const MSG_ID: u64 = 9_100_001;

fn delivery(sim: &PlatformSim, content: &str, attempt: usize) -> SignedRequest {
    text_request(sim, content, MSG_ID, &format!("n{attempt}"))
}

/// The dedup key of every delivery of message `MSG_ID` (its MsgId makes it).
fn message_key(sim: &PlatformSim) -> String {
    let header = Header {
        create_time: 0,
        ..wecom_header(sim, "lisi")
    };
    key_of("demo", &text_xml(&header, "", MSG_ID))
}

/// The callback's answer: the decrypted reply or empty, and how long the function took.
async fn answer_of(
    rig: &mut Rig,
    request: &SignedRequest,
    pending: support::runtime_api::PendingInvocation,
) -> (Answer, Duration) {
    let invocation = rig.callbacks.wait(pending).await.unwrap();
    let response = invocation.response().unwrap();
    let body = String::from_utf8(response.body.clone()).unwrap();
    let answer = rig
        .sim
        .check(request, response.status, &body)
        .unwrap_or_else(|e| panic!("{e}: {body}\n{}", rig.callbacks.log_tail(4000)));
    (answer, invocation.elapsed)
}

async fn item(rig: &Rig, key: &str) -> Option<Item> {
    rig.db
        .get_item()
        .table_name(&rig.table)
        .key("pk", AttributeValue::S(key.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

/// Waits for the claim to be written, as the stream would deliver it.
async fn claimed_item(rig: &Rig, key: &str) -> Item {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(item) = item(rig, key).await {
            return item;
        }
        assert!(Instant::now() < until, "the callback wrote no claim");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn batch_failures(outcome: &Outcome) -> Vec<Value> {
    match outcome {
        Outcome::Response(v) => v["batchItemFailures"]
            .as_array()
            .unwrap_or_else(|| panic!("not a batch response: {v}"))
            .clone(),
        Outcome::Error { body, .. } => panic!("the worker failed: {body}"),
    }
}

fn s<'i>(item: &'i Item, name: &str) -> Option<&'i str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_answering_in_100_ms_is_a_passive_reply() {
    let mut rig = rig(Behavior::text("sunny").after(Duration::from_millis(100))).await;
    let request = delivery(&rig.sim, QUESTION, 0);
    let key = message_key(&rig.sim);
    let pending = rig.callbacks.api().submit(v2_event(&request));
    let claim = claimed_item(&rig, &key).await;
    assert_eq!(
        s(&claim, "job"),
        Some("pending"),
        "the claim carries the job"
    );
    let worked = rig
        .worker
        .invoke(stream_event(&claim, "100", JOB_EVENT_ID))
        .await
        .unwrap();
    assert_eq!(batch_failures(&worked.outcome), Vec::<Value>::new());

    let (answer, took) = answer_of(&mut rig, &request, pending).await;
    let Answer::Reply(xml) = answer else {
        panic!("answered empty\n{}", rig.callbacks.log_tail(3000));
    };
    assert!(xml.contains("sunny"), "{xml}");
    assert!(took < Duration::from_millis(BUDGET_MS), "{took:?}");
    assert_eq!(rig.upstream.requests().len(), 1);
    assert_eq!(rig.platform.delivered(), 0, "no active message as well");
    let done = item(&rig, &key).await.unwrap();
    assert_eq!(
        (s(&done, "st"), s(&done, "job")),
        (Some("d"), Some("answered"))
    );
    // A retry is answered the same from the record, without the worker.
    let retry = delivery(&rig.sim, QUESTION, 1);
    let pending = rig.callbacks.api().submit(v2_event(&retry));
    let (again, _) = answer_of(&mut rig, &retry, pending).await;
    assert!(matches!(again, Answer::Reply(x) if x.contains("sunny")));
    assert_eq!(rig.upstream.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_answering_in_6_s_is_sent_once_as_an_active_message_despite_retries() {
    let mut rig = rig(Behavior::text("sunny, later").after(Duration::from_secs(6))).await;
    let request = delivery(&rig.sim, QUESTION, 0);
    let key = message_key(&rig.sim);
    let pending = rig.callbacks.api().submit(v2_event(&request));
    let record = stream_event(&claimed_item(&rig, &key).await, "200", JOB_EVENT_ID);
    let working = rig.worker.api().submit(record.clone());

    let (answer, took) = answer_of(&mut rig, &request, pending).await;
    assert_eq!(answer, Answer::Empty);
    // At the budget, not before (it waited for the worker) and well inside the platform's
    // 5 s (the give-up write may take up to 300 ms past the budget; the rest is slack for a
    // loaded CI machine).
    assert!(
        took >= Duration::from_millis(BUDGET_MS - 300) && took < Duration::from_millis(4_800),
        "answered after {took:?}"
    );
    // The platform retries while the upstream is still thinking: empty answers at once.
    for attempt in 1..=3 {
        let retry = delivery(&rig.sim, QUESTION, attempt);
        let pending = rig.callbacks.api().submit(v2_event(&retry));
        let (answer, took) = answer_of(&mut rig, &retry, pending).await;
        assert_eq!(answer, Answer::Empty, "retry {attempt}");
        assert!(
            took < Duration::from_millis(500),
            "retry {attempt}: {took:?}"
        );
    }
    assert_eq!(
        rig.platform.delivered(),
        0,
        "nothing sent before the upstream answers"
    );

    let worked = rig.worker.wait(working).await.unwrap();
    assert_eq!(batch_failures(&worked.outcome), Vec::<Value>::new());
    let sent = rig.platform.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (
            sent[0].touser.as_str(),
            sent[0].agentid,
            sent[0].msgtype.as_str()
        ),
        ("lisi", Some(218), "text")
    );
    assert_eq!(sent[0].content, "sunny, later");
    assert_eq!(
        rig.upstream.requests().len(),
        1,
        "one upstream call, four deliveries"
    );
    let done = item(&rig, &key).await.unwrap();
    assert_eq!((s(&done, "st"), s(&done, "job")), (Some("d"), Some("sent")));
    assert!(s(&done, "msgid").is_some(), "the platform's msgid is kept");

    // Lambda delivers the stream record again (a retried batch): nothing happens twice.
    let again = rig.worker.invoke(record).await.unwrap();
    assert_eq!(batch_failures(&again.outcome), Vec::<Value>::new());
    assert_eq!(rig.platform.delivered(), 1);
    assert_eq!(rig.upstream.requests().len(), 1);
    let logs = rig.worker.logs();
    assert!(
        logs.contains("late reply sent as an active message"),
        "{logs}"
    );
    assert!(logs.contains("nothing to do"), "{logs}");
    // Message contents stay out of the logs.
    for process in [&rig.callbacks, &rig.worker] {
        let logs = process.logs();
        assert!(
            !logs.contains("weather") && !logs.contains("sunny"),
            "{logs}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_upstream_is_an_empty_answer_and_a_failed_job_kept_with_its_reason() {
    for (behavior, expected) in [
        (Behavior::status(500), "500"),
        (Behavior::garbage(), "not JSON"),
    ] {
        let mut rig = rig(behavior).await;
        let request = delivery(&rig.sim, QUESTION, 0);
        let key = message_key(&rig.sim);
        let pending = rig.callbacks.api().submit(v2_event(&request));
        let record = stream_event(&claimed_item(&rig, &key).await, "300", JOB_EVENT_ID);
        let worked = rig.worker.invoke(record).await.unwrap();
        assert_eq!(batch_failures(&worked.outcome), Vec::<Value>::new());
        let (answer, took) = answer_of(&mut rig, &request, pending).await;
        assert_eq!(answer, Answer::Empty);
        assert!(
            took < Duration::from_millis(BUDGET_MS / 2),
            "the failure ends the wait: {took:?}"
        );
        let failed = item(&rig, &key).await.unwrap();
        assert_eq!(s(&failed, "job"), Some("failed"));
        let reason = s(&failed, "reason").unwrap_or_default();
        assert!(reason.contains(expected), "{reason}");
        let expires_at: u64 = failed["expires_at"].as_n().unwrap().parse().unwrap();
        assert!(expires_at >= unix_now() + 6 * 86_400, "kept for inspection");
        let logs = rig.worker.logs();
        assert!(logs.contains("reply job failed"), "{logs}");
        assert_eq!(rig.platform.delivered(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_rule_answers_in_the_callback_without_a_job() {
    let mut rig = rig(Behavior::text("upstream")).await;
    let request = delivery(&rig.sim, "ping", 0);
    let key = message_key(&rig.sim);
    let pending = rig.callbacks.api().submit(v2_event(&request));
    let (answer, _) = answer_of(&mut rig, &request, pending).await;
    assert!(matches!(answer, Answer::Reply(x) if x.contains("pong")));
    let done = item(&rig, &key).await.unwrap();
    assert_eq!(s(&done, "job"), None, "no job for a local answer");
    assert!(rig.upstream.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_upstream_fails_the_job_before_the_invocation_deadline() {
    // The upstream may take 20 s, but the invocation has 10 s (the runtime API's deadline
    // header): the job is cut short and recorded as failed while the function can.
    let mut rig = rig_with(
        Behavior::text("never").after(Duration::from_secs(60)),
        20_000,
    )
    .await;
    let request = delivery(&rig.sim, QUESTION, 0);
    let key = message_key(&rig.sim);
    let pending = rig.callbacks.api().submit(v2_event(&request));
    let record = stream_event(&claimed_item(&rig, &key).await, "400", JOB_EVENT_ID);
    let working = rig.worker.api().submit(record);
    let (answer, _) = answer_of(&mut rig, &request, pending).await;
    assert_eq!(answer, Answer::Empty);
    let worked = rig.worker.wait(working).await.unwrap();
    assert_eq!(batch_failures(&worked.outcome), Vec::<Value>::new());
    assert!(
        worked.elapsed < Duration::from_secs(10),
        "{:?}",
        worked.elapsed
    );
    let failed = item(&rig, &key).await.unwrap();
    assert_eq!(s(&failed, "job"), Some("failed"));
    assert!(
        s(&failed, "reason").unwrap_or_default().contains("limit"),
        "{failed:?}"
    );
    assert!(rig.worker.logs().contains("reply job failed"));
    assert_eq!(rig.platform.delivered(), 0);
}
