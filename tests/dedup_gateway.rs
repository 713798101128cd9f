//! Exactly-once callbacks through the whole gateway, against both stores: the platform's
//! retries and concurrent copies of one message run the bot once and all get its reply.
//! Against the embedded store, tokio's clock is paused.
// Some tests here need a local AWS-compatible server or Python: they are built only with
// `--features external-tests` (scripts/test.sh); the rest run with plain `cargo test`.
#![cfg_attr(not(feature = "external-tests"), allow(dead_code, unused_imports))]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::calls::{handle, reply_of, timed_answer};
use support::dynamo::{
    DynamoServer, client, config as client_config, create_table, unique_table_name,
};
use support::request_count::RequestCount;
use support::sample::{key_of, sample_config, sim_of, wecom_header};
use tokio::time::Instant;
use wxgate::bot::{Bot, BotError, Inbound};
use wxgate::clock::now_ms;
use wxgate::clock::unix_now;
use wxgate::gateway::Gateway;
use wxgate::reply::Reply;
use wxgate::simulate::{
    Answer, Header, PlatformSim, SignedRequest, event_xml, location_xml, text_xml,
};
use wxgate::store::{Backend, DedupStore, DedupTimes, DynamoStore, MemoryStore};

/// Answers "answer #n" after a delay, n counting its runs: equal answers mean one run.
struct CountingBot {
    delay: Duration,
    runs: AtomicUsize,
}

impl Bot for CountingBot {
    async fn reply(&self, _: &Inbound<'_>) -> Result<Option<Reply>, BotError> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(self.delay).await;
        Ok(Some(Reply::text(format!("answer #{n}"))))
    }
}

struct Setup {
    gateway: Arc<Gateway<CountingBot>>,
    sim: PlatformSim,
    /// DynamoDB requests, when the store is DynamoDB.
    requests: Option<RequestCount>,
    _server: Option<DynamoServer>,
}

impl Setup {
    fn runs(&self) -> usize {
        self.gateway.bot().runs.load(Ordering::SeqCst)
    }
}

async fn setup(store: StoreKind, budget_ms: u64, bot_delay: Duration) -> Setup {
    let config = sample_config(&format!("budget_ms = {budget_ms}"));
    let bot = CountingBot {
        delay: bot_delay,
        runs: AtomicUsize::new(0),
    };
    let (backend, requests, server) = backend(store).await;
    let sim = sim_of(&config, "demo");
    let gateway = Gateway::builder(&config)
        .bot(bot)
        .store(Arc::new(backend))
        .build()
        .unwrap();
    Setup {
        gateway: Arc::new(gateway),
        sim,
        requests,
        _server: server,
    }
}

/// The store of a test: the embedded one, or DynamoDB on a new dynalite table with its
/// requests counted (and the server, kept running while the test holds it).
async fn backend(store: StoreKind) -> (Backend, Option<RequestCount>, Option<DynamoServer>) {
    match store {
        StoreKind::Memory => (Backend::Memory(MemoryStore::new()), None, None),
        StoreKind::Dynamo => {
            let server = DynamoServer::start();
            let table = unique_table_name("dedup");
            create_table(&client(&server.endpoint()).await, &table).await;
            let requests = RequestCount::default();
            let conf = client_config(&server.endpoint())
                .interceptor(requests.interceptor())
                .build();
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(conf), table);
            (Backend::Dynamo(store), Some(requests), Some(server))
        }
    }
}

#[derive(Clone, Copy)]
enum StoreKind {
    Memory,
    Dynamo,
}

/// From `lisi`, created at a fixed time: every delivery of a message is the same XML.
fn header(sim: &PlatformSim) -> Header<'_> {
    Header {
        create_time: 1_700_000_000,
        ..wecom_header(sim, "lisi")
    }
}

/// One delivery of message `msg_id`; each delivery has its own nonce, as retries do.
fn delivery(sim: &PlatformSim, msg_id: u64, attempt: usize) -> SignedRequest {
    sim.post(
        &text_xml(&header(sim), "hello", msg_id),
        unix_now(),
        &format!("nonce{attempt}"),
    )
    .unwrap()
}

/// The dedup key of message `msg_id` (as [`delivery`] sends it).
fn key_for(sim: &PlatformSim, msg_id: u64) -> String {
    key_of("demo", &text_xml(&header(sim), "hello", msg_id))
}

/// Delivers and decrypts: the reply XML, or `None` for the empty answer.
async fn answer(setup: &Setup, request: &SignedRequest) -> Option<String> {
    reply_of(timed_answer(&setup.gateway, &setup.sim, request).await.0)
}

fn content(xml: &str) -> &str {
    let start = xml.find("<Content><![CDATA[").expect("a text reply") + 18;
    &xml[start..start + xml[start..].find("]]>").unwrap()]
}

/// Each scenario against both stores. Against the embedded store nothing does I/O, so tokio's
/// clock is paused there: the bot's delays and the test's waits take no real time and a
/// loaded machine cannot stretch them. Against dynalite, time is real.
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(start_paused = true)]
                async fn $name() {
                    super::$name(super::StoreKind::Memory).await;
                }
            )*
        }
        #[cfg(feature = "external-tests")]
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::StoreKind::Dynamo).await;
                }
            )*
        }
    };
}

both_stores!(
    a_hundred_concurrent_deliveries_run_the_bot_once,
    a_retry_after_completion_gets_the_same_reply_re_encrypted,
    a_retry_during_the_first_delivery_waits_for_its_reply,
    a_late_bots_callback_is_not_decided_again,
    a_dead_holders_claim_is_taken_over,
    events_are_deduplicated_and_report_only_events_skip_the_store,
    fields_of_any_length_are_deduplicated,
    a_rule_answered_message_costs_one_write,
    concurrent_copies_of_a_rule_answered_message_record_one_reply,
    a_rule_answered_copy_answers_the_reply_recorded_first,
);

/// The sample app answered by its `[apps.reply]` rules (echo), not by a counting bot.
struct RulesSetup {
    gateway: Arc<Gateway>,
    store: Arc<Backend>,
    sim: PlatformSim,
    requests: Option<RequestCount>,
    _server: Option<DynamoServer>,
}

async fn rules_setup(store: StoreKind) -> RulesSetup {
    let config = sample_config("budget_ms = 4000");
    let (backend, requests, server) = backend(store).await;
    let store = Arc::new(backend);
    let gateway = Gateway::builder(&config)
        .store(Arc::clone(&store))
        .build()
        .unwrap();
    RulesSetup {
        gateway: Arc::new(gateway),
        store,
        sim: sim_of(&config, "demo"),
        requests,
        _server: server,
    }
}

impl RulesSetup {
    async fn answer(&self, request: &SignedRequest) -> Option<String> {
        reply_of(timed_answer(&self.gateway, &self.sim, request).await.0)
    }

    fn counts(&self) -> Option<std::collections::BTreeMap<String, u64>> {
        self.requests.as_ref().map(RequestCount::snapshot)
    }
}

/// A message a local rule answers is decided before it is claimed: the claim carries the
/// reply, one request for a new message; a retry costs one failed claim (plus a read on a
/// server that does not return the item with the failure, as dynalite does not).
async fn a_rule_answered_message_costs_one_write(store: StoreKind) {
    let setup = rules_setup(store).await;
    let first = delivery(&setup.sim, 11, 0);
    let first_xml = setup.answer(&first).await.expect("the echo");
    assert_eq!(content(&first_xml), "hello");
    if let Some(counts) = setup.counts() {
        assert_eq!(counts.get("PutItem"), Some(&1), "{counts:?}");
        assert_eq!(counts.values().sum::<u64>(), 1, "{counts:?}");
    }
    let retry_xml = setup.answer(&delivery(&setup.sim, 11, 1)).await;
    assert_eq!(retry_xml.as_deref(), Some(first_xml.as_str()));
    if let Some(counts) = setup.counts() {
        assert_eq!(counts.get("PutItem"), Some(&2), "{counts:?}");
        assert_eq!(counts.get("UpdateItem"), None, "{counts:?}");
    }
    let record = setup
        .store
        .dedup_record(&key_for(&setup.sim, 11), now_ms())
        .await
        .unwrap();
    assert_eq!(
        record,
        Some(wxgate::store::DedupRecord::Done {
            reply: Some(first_xml)
        })
    );
}

/// Fifty copies at once: each decides the echo, one write wins, and every copy answers the
/// one recorded reply.
async fn concurrent_copies_of_a_rule_answered_message_record_one_reply(store: StoreKind) {
    let setup = Arc::new(rules_setup(store).await);
    let requests: Vec<SignedRequest> = (0..50).map(|i| delivery(&setup.sim, 12, i)).collect();
    let key = key_for(&setup.sim, 12);
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let setup = Arc::clone(&setup);
            tokio::spawn(async move { setup.answer(&request).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap().expect("every copy gets the echo"));
    }
    let Some(wxgate::store::DedupRecord::Done {
        reply: Some(recorded),
    }) = setup.store.dedup_record(&key, now_ms()).await.unwrap()
    else {
        panic!("no reply recorded");
    };
    assert!(answers.iter().all(|a| *a == recorded), "{answers:?}");
    if let Some(counts) = setup.counts() {
        // One conditional write each, no completion.
        assert_eq!(counts.get("PutItem"), Some(&50), "{counts:?}");
        assert_eq!(counts.get("UpdateItem"), None, "{counts:?}");
    }
}

/// A copy that loses the race answers what was recorded first, not its own decision (the
/// rules may have changed between two instances' configs).
async fn a_rule_answered_copy_answers_the_reply_recorded_first(store: StoreKind) {
    let setup = rules_setup(store).await;
    let request = delivery(&setup.sim, 13, 0);
    let key = key_for(&setup.sim, 13);
    let times = DedupTimes {
        now_ms: now_ms(),
        lease_ms: 6000,
        retention_secs: 3600,
    };
    let recorded = "<xml><ToUserName><![CDATA[lisi]]></ToUserName><FromUserName><![CDATA[wx5823bf96d3bd56c7]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[recorded first]]></Content></xml>";
    assert_eq!(
        setup
            .store
            .claim_decided(&key, "another-instance", Some(recorded), times)
            .await
            .unwrap(),
        wxgate::store::Claim::Won
    );
    let answer = setup.answer(&request).await.expect("the recorded reply");
    assert_eq!(answer, recorded);
}

async fn a_hundred_concurrent_deliveries_run_the_bot_once(store: StoreKind) {
    let setup = Arc::new(setup(store, 4000, Duration::from_millis(200)).await);
    let requests: Vec<SignedRequest> = (0..100).map(|i| delivery(&setup.sim, 42, i)).collect();
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let setup = Arc::clone(&setup);
            tokio::spawn(async move { answer(&setup, &request).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap().expect("every delivery gets the reply"));
    }
    assert_eq!(setup.runs(), 1, "the bot ran more than once");
    assert!(
        answers.iter().all(|a| content(a) == "answer #1"),
        "{answers:?}"
    );
    if let Some(requests) = &setup.requests {
        let counts = requests.snapshot();
        // 100 claims (one wins), one completion; the waiters' reads come on top.
        assert_eq!(counts.get("PutItem"), Some(&100), "{counts:?}");
        assert_eq!(counts.get("UpdateItem"), Some(&1), "{counts:?}");
    }
}

async fn a_retry_after_completion_gets_the_same_reply_re_encrypted(store: StoreKind) {
    let setup = setup(store, 4000, Duration::ZERO).await;
    let first = delivery(&setup.sim, 7, 0);
    let retry = delivery(&setup.sim, 7, 1);
    let first_xml = answer(&setup, &first).await.unwrap();
    if let Some(requests) = &setup.requests {
        // A new message: one claim and one completion, nothing else.
        assert_eq!(requests.total(), 2, "{:?}", requests.snapshot());
    }
    let (status, body) = handle(&setup.gateway, &retry).await;
    let Answer::Reply(retry_xml) = setup.sim.check(&retry, status, &body).unwrap() else {
        panic!("the retry was answered empty");
    };
    assert_eq!(retry_xml, first_xml);
    assert_eq!(content(&retry_xml), "answer #1");
    let (_, first_body) = handle(&setup.gateway, &first).await;
    assert_ne!(first_body, body, "a replayed reply is encrypted afresh");
    assert_eq!(setup.runs(), 1);
    if let Some(requests) = &setup.requests {
        // Each retry: one failed claim that returns the record.
        let counts = requests.snapshot();
        assert_eq!(counts.get("PutItem"), Some(&3), "{counts:?}");
        assert_eq!(counts.get("UpdateItem"), Some(&1), "{counts:?}");
    }
}

async fn a_retry_during_the_first_delivery_waits_for_its_reply(store: StoreKind) {
    let setup = Arc::new(setup(store, 4000, Duration::from_millis(600)).await);
    let first = delivery(&setup.sim, 8, 0);
    let retry = delivery(&setup.sim, 8, 1);
    let first_task = {
        let setup = Arc::clone(&setup);
        tokio::spawn(async move { answer(&setup, &first).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = Instant::now();
    let retried = answer(&setup, &retry).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(content(&retried), "answer #1");
    assert_eq!(content(&first_task.await.unwrap().unwrap()), "answer #1");
    assert_eq!(setup.runs(), 1);
    // It waited for the first delivery's bot (about 450 ms more), not for its own budget.
    assert!(waited < Duration::from_millis(1500), "{waited:?}");
}

async fn a_late_bots_callback_is_not_decided_again(store: StoreKind) {
    let setup = setup(store, 300, Duration::from_secs(30)).await;
    let started = Instant::now();
    assert_eq!(answer(&setup, &delivery(&setup.sim, 9, 0)).await, None);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    // The platform retries: the empty answer was recorded, so the bot does not run again.
    assert_eq!(answer(&setup, &delivery(&setup.sim, 9, 1)).await, None);
    assert_eq!(answer(&setup, &delivery(&setup.sim, 9, 2)).await, None);
    assert_eq!(setup.runs(), 1);
}

async fn a_dead_holders_claim_is_taken_over(store: StoreKind) {
    let setup = setup(store, 1000, Duration::ZERO).await;
    let request = delivery(&setup.sim, 10, 0);
    // An instance claimed this message long ago and died before recording an answer.
    let xml = text_xml(&header(&setup.sim), "hello", 10);
    let key = key_of("demo", &xml);
    let long_ago = DedupTimes {
        now_ms: now_ms() - 60_000,
        lease_ms: 3_000,
        retention_secs: 86_400,
    };
    setup
        .gateway
        .store()
        .claim(&key, "dead-instance", long_ago)
        .await
        .unwrap();
    let reply = answer(&setup, &request).await.unwrap();
    assert_eq!(content(&reply), "answer #1");
    assert_eq!(setup.runs(), 1);
}

async fn events_are_deduplicated_and_report_only_events_skip_the_store(store: StoreKind) {
    let setup = setup(store, 1000, Duration::ZERO).await;
    let subscribe = event_xml(&header(&setup.sim), "subscribe", None);
    for attempt in 0..3 {
        let request = setup
            .sim
            .post(&subscribe, unix_now(), &format!("n{attempt}"))
            .unwrap();
        assert_eq!(
            content(&answer(&setup, &request).await.unwrap()),
            "answer #1"
        );
    }
    assert_eq!(setup.runs(), 1);
    let before = setup.requests.as_ref().map(RequestCount::total);
    let location = setup
        .sim
        .post(
            &location_xml(&header(&setup.sim), 39.9, 116.4),
            unix_now(),
            "loc",
        )
        .unwrap();
    assert_eq!(answer(&setup, &location).await, None);
    let verify = setup.sim.verify_url("echo-me", unix_now(), "v").unwrap();
    let (status, body) = handle(&setup.gateway, &verify).await;
    assert_eq!((status, body.as_str()), (200, "echo-me"));
    assert_eq!(
        setup.requests.as_ref().map(RequestCount::total),
        before,
        "LOCATION and URL verification must not touch the store"
    );
    assert_eq!(setup.runs(), 1);
}

/// A sender and an EventKey far longer than any real one: the key they make is over
/// DynamoDB's 2048-byte key limit as it stands, so it is hashed, and the callback is still
/// de-duplicated (rather than bypassing dedup as "unavailable").
async fn fields_of_any_length_are_deduplicated(store: StoreKind) {
    let setup = setup(store, 1000, Duration::ZERO).await;
    let sender = "u".repeat(300);
    let header = Header {
        from: &sender,
        ..header(&setup.sim)
    };
    let click = event_xml(&header, "click", Some(&"K".repeat(3000)));
    for attempt in 0..3 {
        let request = setup
            .sim
            .post(&click, unix_now(), &format!("long{attempt}"))
            .unwrap();
        assert_eq!(
            content(&answer(&setup, &request).await.unwrap()),
            "answer #1",
            "delivery {attempt}"
        );
    }
    assert_eq!(setup.runs(), 1);
}
