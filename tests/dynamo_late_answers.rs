//! DynamoDB answers one request late: the write lands, its answer comes after the SDK's
//! attempt timeout, and the SDK retries a write that already took effect. The gateway runs
//! with the production client settings (250 ms attempts, two attempts) over dynalite behind
//! a proxy that holds back exactly the chosen answer (`support::late_answer`) and passes
//! everything else; the stream is played by calling the worker as Lambda would.
//!
//! Each case is a write that used to fail its own condition on the retry and lose the
//! message: the claim, a reply job's take and its send mark, the token refresh lease; and
//! the callback that stopped waiting for the worker on a failed read, without its give-up
//! write, so the worker's reply went nowhere.
// Needs Node, Python, Chromium or a local AWS-compatible server: built only with
// `--features external-tests` (scripts/test.sh), so plain `cargo test` stays offline.
#![cfg(feature = "external-tests")]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::calls::{pending_job, reply_of, spawn_answer};
use support::dynamo::{
    DynamoServer, client, config as client_config, create_table, unique_table_name,
};
use support::fake_platform::FakePlatform;
use support::fake_upstream::{Behavior, FakeUpstream};
use support::late_answer::{LateAnswerProxy, LateRule};
use support::sample::{key_of, sample_config_text, sim_of, wecom_header};
use wxgate::clock::now_ms;
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::gateway::{Gateway, JobOutcome, LateReplies};
use wxgate::message::Callback;
use wxgate::simulate::{PlatformSim, SignedRequest, text_xml};
use wxgate::store::dynamodb::{DynamoTimeouts, with_timeouts};
use wxgate::store::{Backend, DedupRecord, DedupStore, DynamoStore, JobState, JobStore};
use wxgate::wechat::{ClientTimeouts, PlatformClient, TokenProvider, TokenSettings};

const UPSTREAM_SECRET: &str = "late-answers-test-secret-0123456789";
/// Past the 250 ms attempt timeout: the SDK gives up on the attempt and retries.
const LATE: Duration = Duration::from_millis(700);

struct Rig {
    _server: DynamoServer,
    proxy: LateAnswerProxy,
    /// The same table, not through the proxy: what the test reads to check the outcome.
    direct: DynamoStore,
    gateway: Arc<Gateway>,
    sim: Arc<PlatformSim>,
    platform: FakePlatform,
    upstream: FakeUpstream,
}

async fn rig(config_text: &str, upstream: FakeUpstream, platform: FakePlatform) -> Rig {
    let server = DynamoServer::start();
    let table = unique_table_name("late");
    let db = client(&server.endpoint()).await;
    create_table(&db, &table).await;
    let proxy = LateAnswerProxy::start(server.addr());
    let timeouts = DynamoTimeouts::per_attempt(Duration::from_millis(250));
    let conf = with_timeouts(client_config(&proxy.endpoint()), timeouts);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(conf), &table);
    let direct = DynamoStore::new(db.clone(), &table).sharing_keys_with(&store);
    let config = Config::parse(config_text).unwrap();
    let sim = Arc::new(sim_of(&config, "demo"));
    let gateway = Gateway::builder(&config)
        .store(Arc::new(Backend::Dynamo(store)))
        .late_replies(LateReplies::AsJobs)
        .build()
        .unwrap();
    Rig {
        _server: server,
        proxy,
        direct,
        gateway: Arc::new(gateway),
        sim,
        platform,
        upstream,
    }
}

/// The official sample app answering with echo.
async fn echo_rig() -> Rig {
    rig(
        &sample_config_text("budget_ms = 2000"),
        FakeUpstream::start(UPSTREAM_SECRET, Behavior::none()),
        FakePlatform::start(),
    )
    .await
}

/// The sample app with an upstream bot answering after `delay`, and the fake WeChat API.
async fn upstream_rig(budget_ms: u64, delay: Duration) -> Rig {
    let platform = FakePlatform::start();
    let upstream = FakeUpstream::start(UPSTREAM_SECRET, Behavior::text("the answer").after(delay));
    let text = support::fake_platform::forward_app_config(
        &format!("budget_ms = {budget_ms}"),
        &platform.url(),
        &upstream.url(),
        UPSTREAM_SECRET,
        5000,
        "",
    );
    rig(&text, upstream, platform).await
}

fn delivery(sim: &PlatformSim, text: &str, msg_id: u64, attempt: usize) -> (SignedRequest, String) {
    let xml = text_xml(&wecom_header(sim, "lisi"), text, msg_id);
    let request = sim
        .post(&xml, unix_now(), &format!("n{msg_id}x{attempt}"))
        .unwrap();
    (request, key_of("demo", &xml))
}

/// Delivers in a task; its decrypted answer and how long it took.
fn deliver(
    rig: &Rig,
    request: SignedRequest,
) -> tokio::task::JoinHandle<(Option<String>, Duration)> {
    let answer = spawn_answer(&rig.gateway, &rig.sim, request);
    tokio::spawn(async move {
        let (answer, took) = answer.await.unwrap();
        (reply_of(answer), took)
    })
}

async fn job_state(rig: &Rig, key: &str) -> JobState {
    rig.direct.job(key, now_ms()).await.unwrap().unwrap().state
}

fn text_of(reply: &str) -> String {
    Callback::parse(reply)
        .map(|c| match c {
            Callback::Message(m) => m.text().unwrap_or_default().to_owned(),
            Callback::Info(_) => String::new(),
            _ => unreachable!("a variant this test does not make"),
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_answer_came_late_is_still_this_callbacks() {
    let rig = echo_rig().await;
    rig.proxy.answer_late(LateRule::next("PutItem", LATE));
    let (request, key) = delivery(&rig.sim, "hello once", 8_000_001, 0);
    let (answer, took) = deliver(&rig, request).await.unwrap();
    assert_eq!(
        rig.proxy.late_answers(),
        1,
        "the claim's answer was held back"
    );
    assert_eq!(
        rig.proxy.count("PutItem"),
        2,
        "and the SDK retried the claim"
    );
    let reply = answer.unwrap_or_else(|| panic!("answered empty after {took:?}"));
    assert_eq!(text_of(&reply), "hello once");
    assert!(
        took < Duration::from_millis(2000),
        "inside the budget: {took:?}"
    );
    // The record is completed with that reply, and a retry of the callback gets it.
    assert_eq!(text_of(&text_of_record(&rig, &key).await), "hello once");
    let (retry, _) = delivery(&rig.sim, "hello once", 8_000_001, 1);
    let (again, _) = deliver(&rig, retry).await.unwrap();
    assert_eq!(text_of(&again.unwrap()), "hello once");
}

/// The reply recorded on the completed record.
async fn text_of_record(rig: &Rig, key: &str) -> String {
    match rig.direct.dedup_record(key, now_ms()).await.unwrap() {
        Some(DedupRecord::Done { reply: Some(reply) }) => reply,
        other => panic!("not completed with a reply: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_take_whose_answer_came_late_runs_the_job() {
    let rig = upstream_rig(3000, Duration::from_millis(50)).await;
    rig.proxy
        .answer_late(LateRule::next("UpdateItem", LATE).containing("job_until = :until"));
    let (request, key) = delivery(&rig.sim, "any news?", 8_000_002, 0);
    let callback = deliver(&rig, request);
    pending_job(&rig.direct, &key).await;
    let outcome = rig.gateway.run_job(&key, None).await;
    let (answer, took) = callback.await.unwrap();
    assert_eq!(rig.proxy.late_answers(), 1);
    assert_eq!(outcome, JobOutcome::Answered);
    assert_eq!(text_of(&answer.unwrap()), "the answer", "after {took:?}");
    assert_eq!(job_state(&rig, &key).await, JobState::Answered);
    assert_eq!(rig.upstream.requests().len(), 1);
    assert_eq!(rig.platform.delivered(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_mark_whose_answer_came_late_still_sends_once() {
    let rig = upstream_rig(800, Duration::from_millis(1500)).await;
    rig.proxy
        .answer_late(LateRule::next("UpdateItem", LATE).containing("SET job = :sending"));
    let (request, key) = delivery(&rig.sim, "slow question", 8_000_003, 0);
    let callback = deliver(&rig, request);
    pending_job(&rig.direct, &key).await;
    let outcome = rig.gateway.run_job(&key, None).await;
    let (answer, _) = callback.await.unwrap();
    assert_eq!(answer, None, "the callback answered empty at its budget");
    assert_eq!(rig.proxy.late_answers(), 1);
    assert_eq!(outcome, JobOutcome::Sent);
    assert_eq!(job_state(&rig, &key).await, JobState::Sent);
    let sent = rig.platform.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].content, "the answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_does_not_end_the_wait_for_the_worker() {
    let rig = upstream_rig(2500, Duration::from_millis(700)).await;
    let (request, key) = delivery(&rig.sim, "wait for me", 8_000_004, 0);
    // Both attempts of the callback's first read of the record fail.
    rig.proxy.answer_late(LateRule {
        times: 2,
        ..LateRule::next("GetItem", LATE)
    });
    let callback = deliver(&rig, request);
    pending_job(&rig.direct, &key).await;
    let outcome = rig.gateway.run_job(&key, None).await;
    let (answer, took) = callback.await.unwrap();
    assert_eq!(rig.proxy.late_answers(), 2);
    assert_eq!(outcome, JobOutcome::Answered);
    let answer = answer.unwrap_or_else(|| panic!("the reply was lost: empty after {took:?}"));
    assert_eq!(text_of(&answer), "the answer");
    assert_eq!(rig.platform.delivered(), 0);
}

/// Both attempts of the claim with its job answer late: the claim landed, but the callback
/// cannot know from the error. It claims once more (and recognises its own record) instead
/// of asking the upstream itself while the job's worker asks it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_claim_that_failed_but_landed_is_decided_once() {
    let rig = upstream_rig(3000, Duration::from_millis(50)).await;
    rig.proxy.answer_late(LateRule {
        times: 2,
        ..LateRule::next("PutItem", LATE)
    });
    let (request, key) = delivery(&rig.sim, "only once", 8_000_005, 0);
    let callback = deliver(&rig, request);
    pending_job(&rig.direct, &key).await;
    let outcome = rig.gateway.run_job(&key, None).await;
    let (answer, _) = callback.await.unwrap();
    assert_eq!(rig.proxy.late_answers(), 2);
    assert_eq!(
        rig.upstream.requests().len(),
        1,
        "the upstream was asked once"
    );
    let passive = answer.map(|a| text_of(&a));
    let replies = usize::from(passive.is_some()) + rig.platform.delivered();
    assert_eq!(
        replies, 1,
        "one reply reached the member: {passive:?}, {outcome:?}"
    );
    assert_eq!(passive.as_deref(), Some("the answer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_lease_whose_answer_came_late_is_held_and_used() {
    let rig = upstream_rig(3000, Duration::ZERO).await;
    rig.proxy
        .answer_late(LateRule::next("UpdateItem", LATE).containing("SET lease_owner"));
    let store = Arc::clone(rig.gateway.store());
    let tokens = TokenProvider::new(
        store,
        PlatformClient::new(rig.platform.endpoints(), ClientTimeouts::default()).unwrap(),
        TokenSettings::default(),
    );
    let started = Instant::now();
    let token = tokens.get(&FakePlatform::wecom_source()).await;
    let took = started.elapsed();
    assert_eq!(rig.proxy.late_answers(), 1);
    assert!(token.is_ok(), "{token:?} after {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "no ghost lease waited out: {took:?}"
    );
    assert_eq!(rig.platform.fetches(), 1);
}
