//! Reply jobs in process: a gateway with `LateReplies::AsJobs` over the embedded store, its
//! worker side (`Gateway::run_job`) called directly as the stream would call it, against a
//! fake upstream and a fake WeChat API on 127.0.0.1. The Lambda wiring of the same code is
//! in `tests/lambda_jobs.rs`; this covers what is quicker to arrange here.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::calls::{pending_job, spawn_answer};
use support::fake_platform::{FakePlatform, SendApi, SendFault};
use support::fake_upstream::{Behavior, FakeUpstream};
use support::sample::{header, key_of, sim_of, wecom_header};
use wxgate::clock::now_ms;
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::gateway::{Gateway, JobOutcome, LateReplies};
use wxgate::simulate::{Answer, PlatformSim, SignedRequest, text_xml};
use wxgate::store::{JobState, JobStore};

const UPSTREAM_SECRET: &str = "reply-jobs-test-secret-0123456789";
const BUDGET_MS: u64 = 600;
const MSG_ID: u64 = 5_150_001;

struct Rig {
    gateway: Arc<Gateway>,
    sim: Arc<PlatformSim>,
    platform: FakePlatform,
    upstream: FakeUpstream,
}

/// The WeCom app `demo`, answered by `upstream`, sending late replies through `platform`.
fn demo_config(platform: &FakePlatform, upstream: &FakeUpstream) -> String {
    support::fake_platform::forward_app_config(
        &format!("budget_ms = {BUDGET_MS}"),
        &platform.url(),
        &upstream.url(),
        UPSTREAM_SECRET,
        5000,
        "",
    )
}

/// The Official Account `shop` in safe mode, answered by `upstream`, sending customer
/// messages through `platform`.
fn shop_config(platform: &FakePlatform, upstream: &FakeUpstream) -> String {
    support::fake_platform::mp_forward_app_config(
        &format!("budget_ms = {BUDGET_MS}"),
        &platform.url(),
        &upstream.url(),
        UPSTREAM_SECRET,
        "shop",
        &support::fake_platform::safe_mode(),
    )
}

/// A gateway with reply jobs over `config_text`, and the platform played for its `app`.
fn jobs_gateway(config_text: &str, app: &str) -> (Arc<Gateway>, Arc<PlatformSim>) {
    let config = Config::parse(config_text).unwrap();
    let gateway = Gateway::builder(&config)
        .late_replies(LateReplies::AsJobs)
        .build()
        .unwrap();
    (Arc::new(gateway), Arc::new(sim_of(&config, app)))
}

fn rig(behavior: Behavior) -> Rig {
    let platform = FakePlatform::start();
    let upstream = FakeUpstream::start(UPSTREAM_SECRET, behavior);
    let (gateway, sim) = jobs_gateway(&demo_config(&platform, &upstream), "demo");
    Rig {
        gateway,
        sim,
        platform,
        upstream,
    }
}

fn delivery(sim: &PlatformSim, attempt: usize) -> (SignedRequest, String) {
    let xml = text_xml(&wecom_header(sim, "lisi"), "any news?", MSG_ID);
    let request = sim.post(&xml, unix_now(), &format!("n{attempt}")).unwrap();
    (request, key_of("demo", &xml))
}

/// Delivers in a task (the callback waits for the worker), returning its answer later.
fn deliver(rig: &Rig, request: SignedRequest) -> tokio::task::JoinHandle<(Answer, Duration)> {
    spawn_answer(&rig.gateway, &rig.sim, request)
}

async fn job_state(rig: &Rig, key: &str) -> (JobState, Option<String>) {
    let job = rig
        .gateway
        .store()
        .job(key, now_ms())
        .await
        .unwrap()
        .unwrap();
    (job.state, job.reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_job_ask_the_upstream_once() {
    let rig = rig(Behavior::text("fine").after(Duration::from_millis(50)));
    let (request, key) = delivery(&rig.sim, 0);
    let callback = deliver(&rig, request);
    pending_job(rig.gateway.store().as_ref(), &key).await;
    let (a, b) = tokio::join!(
        rig.gateway.run_job(&key, None),
        rig.gateway.run_job(&key, None)
    );
    let mut outcomes = [a, b];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    // The second finds the job running: it is to be retried, and by then it is done.
    assert_eq!(outcomes, [JobOutcome::Answered, JobOutcome::Busy]);
    assert_eq!(rig.gateway.run_job(&key, None).await, JobOutcome::Skipped);
    let (answer, took) = callback.await.unwrap();
    assert!(
        matches!(answer, Answer::Reply(ref x) if x.contains("fine")),
        "{answer:?}"
    );
    assert!(took < Duration::from_millis(BUDGET_MS), "{took:?}");
    assert_eq!(rig.upstream.requests().len(), 1);
    assert_eq!(job_state(&rig, &key).await.0, JobState::Answered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_the_platform_refuses_is_a_failed_job_with_the_errcode() {
    let rig = rig(Behavior::text("too late").after(Duration::from_millis(700)));
    // 81013: no valid recipient. Not retried (only -1 and 5xx are).
    rig.platform.fail_next_sends(1, SendFault::Errcode(81013));
    let (request, key) = delivery(&rig.sim, 0);
    let callback = deliver(&rig, request);
    pending_job(rig.gateway.store().as_ref(), &key).await;
    let worker = {
        let gateway = Arc::clone(&rig.gateway);
        let key = key.clone();
        tokio::spawn(async move { gateway.run_job(&key, None).await })
    };
    let (answer, took) = callback.await.unwrap();
    assert_eq!(answer, Answer::Empty);
    assert!(took < Duration::from_millis(BUDGET_MS + 200), "{took:?}");
    let JobOutcome::Failed(reason) = worker.await.unwrap() else {
        panic!("the job did not fail");
    };
    assert!(
        reason.starts_with("active message:") && reason.contains("81013"),
        "{reason}"
    );
    assert_eq!(
        job_state(&rig, &key).await,
        (JobState::Failed, Some(reason))
    );
    assert_eq!(rig.platform.send_requests(), 1, "not retried");
    assert_eq!(rig.platform.delivered(), 0);
    // A retry of the callback is answered empty; nothing is asked or sent again.
    let (retry, _) = delivery(&rig.sim, 1);
    let (answer, _) = deliver(&rig, retry).await.unwrap();
    assert_eq!(answer, Answer::Empty);
    assert_eq!(rig.gateway.run_job(&key, None).await, JobOutcome::Skipped);
    assert_eq!(rig.upstream.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_ends_before_its_deadline_and_says_so() {
    let rig = rig(Behavior::text("never").after(Duration::from_secs(30)));
    let (request, key) = delivery(&rig.sim, 0);
    let callback = deliver(&rig, request);
    pending_job(rig.gateway.store().as_ref(), &key).await;
    // An invocation with 2.5 s left: the job gets 1 s (1.5 s kept to record the end).
    let started = Instant::now();
    let outcome = rig.gateway.run_job(&key, Some(now_ms() + 2_500)).await;
    let took = started.elapsed();
    let JobOutcome::Failed(reason) = outcome else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains("limit"), "{reason}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2_000),
        "{took:?}"
    );
    assert_eq!(callback.await.unwrap().0, Answer::Empty);
    assert_eq!(job_state(&rig, &key).await.0, JobState::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_official_account_gets_a_late_reply_as_a_customer_message() {
    let platform = FakePlatform::start();
    let upstream = FakeUpstream::start(
        UPSTREAM_SECRET,
        Behavior::text("订单已发货").after(Duration::from_millis(700)),
    );
    let (gateway, sim) = jobs_gateway(&shop_config(&platform, &upstream), "shop");
    let xml = text_xml(
        &header("gh_fakeaccount", "oFAKEOPENID0001", None),
        "我的订单呢",
        MSG_ID,
    );
    let key = key_of("shop", &xml);
    let request = sim.post(&xml, unix_now(), "n0").unwrap();
    let callback = spawn_answer(&gateway, &sim, request);
    pending_job(gateway.store().as_ref(), &key).await;
    let outcome = gateway.run_job(&key, None).await;
    assert_eq!(outcome, JobOutcome::Sent);
    assert_eq!(callback.await.unwrap().0, Answer::Empty);
    let sent = platform.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].api, SendApi::Mp);
    assert_eq!(
        (
            sent[0].touser.as_str(),
            sent[0].msgtype.as_str(),
            sent[0].content.as_str()
        ),
        ("oFAKEOPENID0001", "text", "订单已发货")
    );
    let job = gateway.store().job(&key, now_ms()).await.unwrap().unwrap();
    assert_eq!((job.state, job.message), (JobState::Sent, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_held_by_a_crashed_worker_is_retried_not_dropped() {
    use wxgate::lambda::stream::{Batch, JobRecordRef, run_batch};
    let rig = rig(Behavior::text("fine"));
    let (request, key) = delivery(&rig.sim, 0);
    let callback = deliver(&rig, request);
    pending_job(rig.gateway.store().as_ref(), &key).await;
    // A worker took the job and died: its time limit has not run out.
    assert!(
        rig.gateway
            .store()
            .take_job(&key, "dead-worker", now_ms(), 60_000)
            .await
            .unwrap()
            .is_some()
    );
    let batch = Batch {
        jobs: vec![JobRecordRef {
            key: key.clone(),
            sequence_number: "4242".into(),
        }],
    };
    let response = run_batch(&rig.gateway, batch, None).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "4242"}]})
    );
    assert!(
        rig.upstream.requests().is_empty(),
        "the held job is not run twice"
    );
    assert_eq!(job_state(&rig, &key).await.0, JobState::Running);
    assert_eq!(callback.await.unwrap().0, Answer::Empty);
    // Once the dead worker's time is up, a retry takes the job over.
    let later = rig
        .gateway
        .store()
        .take_job(&key, "retry", now_ms() + 61_000, 60_000)
        .await
        .unwrap()
        .is_some();
    assert!(later, "taken over after the limit");
}

/// The platform takes the late reply and answers after the client's timeout. WeCom, under
/// its duplicate check, is asked again and drops the repeat: one message, the job sent. An
/// Official Account send is not repeated: one message at most, and the job says that its
/// fate is unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reply_the_platform_took_but_answered_late_goes_out_once() {
    let platform = FakePlatform::start();
    let upstream = FakeUpstream::start(
        UPSTREAM_SECRET,
        Behavior::text("after a while").after(Duration::from_millis(700)),
    );
    // API calls time out after 400 ms.
    let short_timeout = |text: String| text.replace("[[apps]]", "timeout_ms = 400\n[[apps]]");
    let (gateway, sim) = jobs_gateway(&short_timeout(demo_config(&platform, &upstream)), "demo");
    let rig = Rig {
        gateway,
        sim,
        platform,
        upstream,
    };
    rig.platform
        .fail_next_sends(1, SendFault::AcceptThenAnswerLate(Duration::from_secs(2)));
    let (request, key) = delivery(&rig.sim, 0);
    let callback = deliver(&rig, request);
    pending_job(rig.gateway.store().as_ref(), &key).await;
    let outcome = rig.gateway.run_job(&key, None).await;
    assert_eq!(callback.await.unwrap().0, Answer::Empty);
    assert_eq!(outcome, JobOutcome::Sent);
    assert_eq!(
        rig.platform.send_requests(),
        2,
        "asked again after the timeout"
    );
    assert_eq!(rig.platform.delivered(), 1, "delivered once");
    assert_eq!(rig.platform.duplicates_dropped(), 1);
    assert_eq!(rig.platform.sent()[0].body["enable_duplicate_check"], 1);
    assert_eq!(job_state(&rig, &key).await.0, JobState::Sent);

    // The Official Account: no duplicate check, so no second request.
    let (gateway, shop) = jobs_gateway(
        &short_timeout(shop_config(&rig.platform, &rig.upstream)),
        "shop",
    );
    rig.platform
        .fail_next_sends(1, SendFault::AcceptThenAnswerLate(Duration::from_secs(2)));
    let xml = text_xml(
        &header("gh_fakeaccount", "oFAKEOPENID0002", None),
        "还在吗",
        MSG_ID + 1,
    );
    let key = key_of("shop", &xml);
    let request = shop.post(&xml, unix_now(), "n0").unwrap();
    let callback = spawn_answer(&gateway, &shop, request);
    pending_job(gateway.store().as_ref(), &key).await;
    let outcome = gateway.run_job(&key, None).await;
    callback.await.unwrap();
    let JobOutcome::Failed(reason) = outcome else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains("may have delivered it"), "{reason}");
    assert_eq!(
        rig.platform.send_requests(),
        3,
        "the customer message was not repeated"
    );
    assert_eq!(rig.platform.delivered(), 2);
}
