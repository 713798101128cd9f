//! The Open Platform chain in Lambda, the way template.yaml deploys it: the built `wxgate`
//! binary as TWO function instances through the Lambda runtime API on loopback, sharing one
//! dynalite table (`WXGATE_TABLE`, no `[store]` in the config), against the fake Open
//! Platform ([`FakeOpen`]) and a fake upstream bot on 127.0.0.1.
//!
//! What one instance learns, the other uses through the table: the ticket pushed to one
//! makes the component token the other's authorization page needs (fetched once for both);
//! the authorization stored by one (its refresh token sealed) gives the other its
//! authorizer tokens (refreshed once for both, also when both find the token expired at the
//! same moment, also when WeChat rotates the refresh token on every refresh); and an
//! `authorized` event older than the `unauthorized` one before it does not bring the
//! authorization back.
//!
//! The pages are fetched as API Gateway events (`public_url` is never dialled). Customer
//! messages go out from reply jobs: a message to `/open/comp/$APPID$` claims its record with
//! a job, its callback is answered empty at the budget, and this test, standing in for the
//! stream's event source mapping as tests/lambda_jobs.rs does, hands the job's stream record
//! to an instance, which asks the upstream and sends its reply with the authorizer's token.
// Needs Node, Python, Chromium or a local AWS-compatible server: built only with
// `--features external-tests` (scripts/test.sh), so plain `cargo test` stays offline.
#![cfg(feature = "external-tests")]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use support::calls::{lambda_response, v2_event};
use support::cli::{ConfigFile, run, wxgate};
use support::dynamo::{
    DynamoServer, client, create_table, process_env, reply_jobs_env, unique_table_name,
};
use support::fake_open::{COMPONENT_APP_ID, FakeOpen};
use support::fake_upstream::{Behavior, FakeUpstream};
use support::open_flow::*;
use support::runtime_api::{ApiGwResponse, FunctionProcess, Outcome, apigw_v2_event};
use support::sample::sim_of;
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::gateway::Gateway;
use wxgate::message::Callback;
use wxgate::simulate::{Answer, Header, PlatformSim, SignedRequest, text_xml};
use wxgate::store::{
    AuthorizationRecord, AuthorizationState, Backend, DynamoStore, OpenStore, authorization_key,
    callback_key, ticket_key,
};

/// The component's `public_url`: nothing listens there; the pages come through the harness.
const PUBLIC_URL: &str = "http://127.0.0.1:9";
/// The follower who messages the authorized account.
const FOLLOWER: &str = "oFollower1";
/// What the upstream answers every message with.
const UPSTREAM_REPLY: &str = "answered by a reply job";
/// The callbacks' budget: a message whose job no worker has taken is answered empty then.
const BUDGET_MS: u64 = 500;

type Item = HashMap<String, AttributeValue>;

/// One of the two function instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    A,
    B,
}

struct Rig {
    _server: DynamoServer,
    db: aws_sdk_dynamodb::Client,
    table: String,
    endpoint: String,
    fake: FakeOpen,
    _upstream: FakeUpstream,
    /// The config the instances run with, as a file for the `wxgate` commands.
    config_file: ConfigFile,
    a: FunctionProcess,
    b: FunctionProcess,
    /// WeChat, for the component's authorization events.
    sim: PlatformSim,
    /// WeChat, for the authorized account's messages (`/open/comp/$APPID$`).
    account: PlatformSim,
    /// Reads the table with the keys the instances seal with.
    reader: DynamoStore,
}

impl Rig {
    fn instance(&mut self, via: Via) -> &mut FunctionProcess {
        match via {
            Via::A => &mut self.a,
            Via::B => &mut self.b,
        }
    }

    /// Both instances' logs.
    fn logs(&self) -> String {
        format!(
            "---- A ----\n{}\n---- B ----\n{}",
            self.a.logs(),
            self.b.logs()
        )
    }

    async fn authorization(&self) -> AuthorizationRecord {
        self.reader
            .authorization(COMPONENT_APP_ID, AUTHORIZER)
            .await
            .unwrap()
            .expect("an authorization record")
    }

    async fn item(&self, key: &str) -> Option<Item> {
        self.db
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }
}

async fn rig() -> Rig {
    let started = Instant::now();
    let server = DynamoServer::start();
    let endpoint = server.endpoint();
    let table = unique_table_name("open");
    let db = client(&endpoint).await;
    create_table(&db, &table).await;
    let fake = FakeOpen::start();
    let upstream = FakeUpstream::start(FORWARD_SECRET, Behavior::text(UPSTREAM_REPLY));
    let config_text = component_config(
        &fake,
        PUBLIC_URL,
        &format!("budget_ms = {BUDGET_MS}"),
        &format!(
            "forward = \"{}\"\nforward_secret = \"{FORWARD_SECRET}\"\nforward_timeout_ms = 5000",
            upstream.url()
        ),
    );
    let env = reply_jobs_env(config_text.as_str(), table.as_str(), endpoint.as_str());
    let bin = env!("CARGO_BIN_EXE_wxgate");
    let a = FunctionProcess::spawn(bin, &[], &env).await.unwrap();
    let b = FunctionProcess::spawn(bin, &[], &env).await.unwrap();
    let config = Config::parse(&config_text).unwrap();
    let sim = sim_of(&config, "comp");
    let account = sim.clone().authorizer(Some(AUTHORIZER.into()));
    // A gateway over the table installs the sealing keys of this config on its store; the
    // reader shares them.
    let sealed = DynamoStore::new(db.clone(), &table);
    let reader = DynamoStore::new(db.clone(), &table).sharing_keys_with(&sealed);
    Gateway::builder(&config)
        .store(Arc::new(Backend::Dynamo(sealed)))
        .build()
        .unwrap();
    eprintln!("rig up in {:?}", started.elapsed());
    Rig {
        _server: server,
        db,
        table,
        endpoint,
        fake,
        _upstream: upstream,
        config_file: ConfigFile::new("lambda-open", &config_text),
        a,
        b,
        sim,
        account,
        reader,
    }
}

// ------------------------------------------------------------------------------------------
// The authorization flow
// ------------------------------------------------------------------------------------------

/// WeChat's ticket push, delivered to `via`.
async fn push_ticket(rig: &mut Rig, via: Via) -> String {
    let ticket = rig.fake.issue_ticket();
    let push = ticket_push(&rig.sim, &ticket, unix_now());
    let response = lambda_response(rig.instance(via), &push).await;
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "success")
    );
    ticket
}

/// The signed authorization link `wxgate open link` prints.
fn link(rig: &Rig) -> String {
    let args = [
        "open",
        "link",
        "--config",
        rig.config_file.arg(),
        "--app",
        "comp",
        "--auth-type",
        "1",
    ];
    let out = run(&mut wxgate(&args));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let url = out.stdout.trim().to_owned();
    assert!(
        url.starts_with(&format!("{PUBLIC_URL}/open/comp/authorize?")),
        "{url}"
    );
    url
}

/// The browser's GET of `url` (on `public_url`), as API Gateway hands it to `via`.
async fn get(rig: &mut Rig, via: Via, url: &str) -> ApiGwResponse {
    let rest = url
        .strip_prefix(PUBLIC_URL)
        .unwrap_or_else(|| panic!("not on public_url: {url}"));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let event = apigw_v2_event("GET", path, query, None, false);
    let invocation = rig.instance(via).invoke(event).await.unwrap();
    invocation.response().unwrap()
}

/// The authorization page through `via`: its computer form's link (to the fake's page).
async fn authorization_page(rig: &mut Rig, via: Via, url: &str) -> String {
    let response = get(rig, via, url).await;
    let page = response.text();
    assert_eq!(response.status, 200, "{page}\n{}", rig.logs());
    let pc = href_of(&page, "pc").expect("the page links the computer form");
    assert!(
        pc.starts_with(&format!(
            "{}/cgi-bin/componentloginpage?component_appid={COMPONENT_APP_ID}&pre_auth_code=",
            rig.fake.url()
        )),
        "{pc}"
    );
    pc
}

/// The administrator confirms on the fake's page `pc`: WeChat's redirect back (on
/// `public_url`) and the authorization code in it.
async fn confirm(rig: &Rig, pc: &str) -> (String, String) {
    rig.fake.set_next_authorizer(AUTHORIZER, &[1, 15]);
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = browser.get(pc).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 302);
    let back = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        back.starts_with(&format!("{PUBLIC_URL}/open/comp/authorized?state=")),
        "{back}"
    );
    let code = back
        .split("auth_code=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .unwrap()
        .to_owned();
    (back, code)
}

/// The redirect back through `via`: the result page.
async fn redirected(rig: &mut Rig, via: Via, back: &str) -> String {
    let response = get(rig, via, back).await;
    let page = response.text();
    assert_eq!(response.status, 200, "{page}\n{}", rig.logs());
    assert!(
        page.contains(AUTHORIZER) && page.contains(AUTHORIZER_GH),
        "{page}"
    );
    page
}

/// The whole flow: the ticket through A, the page through B, the redirect through A. The
/// authorization code.
async fn authorize(rig: &mut Rig) -> String {
    push_ticket(rig, Via::A).await;
    let url = link(rig);
    let pc = authorization_page(rig, Via::B, &url).await;
    let (back, code) = confirm(rig, &pc).await;
    redirected(rig, Via::A, &back).await;
    code
}

// ------------------------------------------------------------------------------------------
// Messages and reply jobs
// ------------------------------------------------------------------------------------------

/// A text from the follower to the authorized account, and its dedup record's key.
fn message(rig: &Rig, msg_id: u64) -> (SignedRequest, String) {
    let header = Header {
        to: AUTHORIZER_GH,
        from: FOLLOWER,
        create_time: unix_now(),
        agent_id: None,
    };
    let xml = text_xml(&header, &format!("question {msg_id}"), msg_id);
    let Callback::Message(parsed) = Callback::parse(&xml).unwrap() else {
        unreachable!("a text is a message")
    };
    let key = callback_key("comp", true, &parsed);
    let request = rig.account.post(&xml, unix_now(), &nonce()).unwrap();
    (request, key)
}

/// Waits for the claim a callback writes, as the stream would deliver it.
async fn claimed(rig: &Rig, key: &str) -> Item {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(item) = rig.item(key).await {
            return item;
        }
        assert!(
            Instant::now() < until,
            "the callback wrote no claim\n{}",
            rig.logs()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The event Lambda hands a function for the stream record of `item` (`INSERT`, `NEW_IMAGE`).
fn stream_event(item: &Item) -> Value {
    static SEQUENCE: AtomicU64 = AtomicU64::new(100);
    assert_eq!(
        item.get("job")
            .and_then(|j| j.as_s().ok())
            .map(String::as_str),
        Some("pending"),
        "the claim carries a job"
    );
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    support::stream_record::stream_event(item, &sequence.to_string(), &format!("{sequence:032x}"))
}

/// Asserts that an answered callback is the empty answer WeChat takes.
fn assert_empty(rig: &Rig, request: &SignedRequest, response: &ApiGwResponse) {
    let body = response.text();
    match rig.account.check(request, response.status, &body) {
        Ok(Answer::Empty) => {}
        other => panic!("{other:?}: {body}\n{}", rig.logs()),
    }
}

/// Messages `msg_ids[0]` to A and `msg_ids[1]` to B, delivered at once; each callback
/// waits for its job through the budget (no worker runs yet) and answers empty. The stream
/// events of their jobs, in the same order.
async fn messages_to_both(rig: &mut Rig, msg_ids: [u64; 2]) -> [Value; 2] {
    let (to_a, key_a) = message(rig, msg_ids[0]);
    let (to_b, key_b) = message(rig, msg_ids[1]);
    let pending_a = rig.a.api().submit(v2_event(&to_a));
    let pending_b = rig.b.api().submit(v2_event(&to_b));
    let event_a = stream_event(&claimed(rig, &key_a).await);
    let event_b = stream_event(&claimed(rig, &key_b).await);
    let Rig { a, b, .. } = rig;
    let (answered_a, answered_b) = tokio::join!(a.wait(pending_a), b.wait(pending_b));
    assert_empty(rig, &to_a, &answered_a.unwrap().response().unwrap());
    assert_empty(rig, &to_b, &answered_b.unwrap().response().unwrap());
    [event_a, event_b]
}

/// A message to `via`, answered empty at the budget: the stream event of its job.
async fn message_to(rig: &mut Rig, via: Via, msg_id: u64) -> Value {
    let (request, key) = message(rig, msg_id);
    let pending = rig.instance(via).api().submit(v2_event(&request));
    let event = stream_event(&claimed(rig, &key).await);
    let answered = rig.instance(via).wait(pending).await.unwrap();
    assert_empty(rig, &request, &answered.response().unwrap());
    event
}

fn assert_no_retries(rig: &Rig, outcome: &Outcome) {
    match outcome {
        Outcome::Response(v) => assert_eq!(
            v["batchItemFailures"],
            json!([]),
            "records to retry\n{}",
            rig.logs()
        ),
        Outcome::Error { body, .. } => panic!("the worker failed: {body}\n{}", rig.logs()),
    }
}

/// Runs a job's stream event on `via`.
async fn job_on(rig: &mut Rig, via: Via, event: Value) {
    let worked = rig.instance(via).invoke(event).await.unwrap();
    assert_no_retries(rig, &worked.outcome);
}

/// Runs `events[0]` on B and `events[1]` on A at once: each instance works the job of the
/// message the other answered.
async fn jobs_on_both(rig: &mut Rig, events: [Value; 2]) {
    let [for_b, for_a] = events;
    let pending_b = rig.b.api().submit(for_b);
    let pending_a = rig.a.api().submit(for_a);
    let Rig { a, b, .. } = rig;
    let (worked_a, worked_b) = tokio::join!(a.wait(pending_a), b.wait(pending_b));
    assert_no_retries(rig, &worked_a.unwrap().outcome);
    assert_no_retries(rig, &worked_b.unwrap().outcome);
}

/// Asserts the fake delivered `n` customer messages, all the upstream's reply to the
/// follower from the authorized account.
fn assert_sent(rig: &Rig, n: usize) {
    let sent = rig.fake.sent();
    assert_eq!(sent.len(), n, "{sent:?}\n{}", rig.logs());
    for message in &sent {
        assert_eq!(
            (
                message.authorizer_appid.as_str(),
                message.touser.as_str(),
                message.content.as_str()
            ),
            (AUTHORIZER, FOLLOWER, UPSTREAM_REPLY)
        );
    }
}

fn s<'i>(item: &'i Item, name: &str) -> Option<&'i str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// `wxgate open refresh` for the authorizer over the instances' table, started.
fn forced_refresh(rig: &Rig) -> std::process::Child {
    let mut cmd = wxgate(&[
        "open",
        "refresh",
        "--config",
        rig.config_file.arg(),
        "--app",
        "comp",
        "--authorizer",
        AUTHORIZER,
    ]);
    cmd.env("WXGATE_TABLE", &rig.table)
        .envs(process_env(&rig.endpoint))
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().unwrap()
}

/// Waits for a [`forced_refresh`]; asserts it refreshed, without 61023.
fn assert_refreshed(child: std::process::Child) {
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("refreshed the access token of"),
        "{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("61023"), "{stderr}");
}

/// Asserts nothing secret reached either instance's log.
fn assert_no_secrets(rig: &Rig, also: &[&str]) {
    let logs = rig.logs();
    for secret in [
        "refreshtoken@@@",
        "authorizer-token-",
        "component-token-",
        "ticket@@@",
    ]
    .iter()
    .chain(also)
    {
        assert!(!logs.contains(secret), "{secret} logged");
    }
}

// ------------------------------------------------------------------------------------------
// The tests
// ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_pushed_to_one_instance_authorizes_through_the_other() {
    let started = Instant::now();
    let mut rig = rig().await;

    // The ticket through A: stored in the table, sealed.
    let ticket = push_ticket(&mut rig, Via::A).await;
    let stored = rig
        .item(&ticket_key(COMPONENT_APP_ID))
        .await
        .expect("a ticket item");
    let sealed = s(&stored, "tkt").unwrap();
    assert!(
        sealed.starts_with("v1:") && !sealed.contains(&ticket),
        "{sealed}"
    );

    // The page through B, with A's ticket: one component token.
    let url = link(&rig);
    let pc = authorization_page(&mut rig, Via::B, &url).await;
    assert_eq!(rig.fake.component_token_fetches(), 1, "{}", rig.logs());
    // A, then B, then A again: every page a new pre-auth code, with the one token from
    // the table.
    for via in [Via::A, Via::B, Via::A] {
        authorization_page(&mut rig, via, &url).await;
    }
    assert_eq!(rig.fake.pre_auth_code_requests(), 4);
    assert_eq!(
        rig.fake.component_token_fetches(),
        1,
        "the component token is shared through the table\n{}",
        rig.logs()
    );
    assert_eq!(rig.fake.push_ticket_requests(), 0, "the ticket was there");

    // The administrator confirms on the first page's form; the redirect reaches A.
    let (back, code) = confirm(&rig, &pc).await;
    let result = redirected(&mut rig, Via::A, &back).await;
    assert!(result.contains("1, 15"), "{result}");
    assert_eq!(rig.fake.query_auths(), 1);
    assert_eq!(rig.fake.component_token_fetches(), 1);

    // The authorization is in the table, read back with the instances' keys.
    let record = rig.authorization().await;
    let current = rig.fake.current_refresh_token(AUTHORIZER).unwrap();
    assert_eq!(record.state, AuthorizationState::Authorized);
    assert_eq!(record.refresh_token.as_deref(), Some(current.as_str()));
    assert_eq!(record.func_info, vec![1, 15]);
    assert_eq!(record.user_name.as_deref(), Some(AUTHORIZER_GH));
    // Raw, the refresh token is sealed: a reader of the table cannot use it.
    let raw = rig
        .item(&authorization_key(COMPONENT_APP_ID, AUTHORIZER))
        .await
        .expect("an authorization item");
    let rt = s(&raw, "rt").expect("a refresh token attribute");
    assert!(rt.starts_with("v1:"), "{rt}");
    assert!(
        !rt.contains(&current) && !rt.contains("refreshtoken@@@"),
        "{rt}"
    );
    assert_eq!(s(&raw, "ast"), Some("authorized"));

    assert_no_secrets(&rig, &[&code]);
    eprintln!("took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizer_tokens_are_refreshed_once_for_both_instances() {
    let started = Instant::now();
    let mut rig = rig().await;
    authorize(&mut rig).await;
    // The redirect's api_query_auth token is not kept: the first send refreshes.
    assert_eq!(rig.fake.authorizer_refreshes(AUTHORIZER), 0);

    // A message answered by A, its job worked by B: B refreshes the authorizer token.
    let job = message_to(&mut rig, Via::A, 9_001).await;
    job_on(&mut rig, Via::B, job).await;
    assert_sent(&rig, 1);
    assert_eq!(rig.fake.authorizer_refreshes(AUTHORIZER), 1);
    // One answered by B, worked by A: A sends with B's token from the table.
    let job = message_to(&mut rig, Via::B, 9_002).await;
    job_on(&mut rig, Via::A, job).await;
    assert_sent(&rig, 2);
    assert_eq!(
        rig.fake.authorizer_refreshes(AUTHORIZER),
        1,
        "the authorizer token is shared through the table\n{}",
        rig.logs()
    );
    let sent = rig.fake.sent();
    assert_eq!(sent[0].token, sent[1].token, "one token for both");

    // Both jobs at once, each instance holding the token in memory too: still one.
    let jobs = messages_to_both(&mut rig, [9_003, 9_004]).await;
    jobs_on_both(&mut rig, jobs).await;
    assert_sent(&rig, 4);
    assert_eq!(rig.fake.authorizer_refreshes(AUTHORIZER), 1);

    // The token expires. Both instances send at once, both are refused (40001), both drop
    // it: exactly one more refresh, and both send with the new token.
    rig.fake.expire_authorizer_tokens(AUTHORIZER);
    let refused = rig.fake.credential_refusals();
    let jobs = messages_to_both(&mut rig, [9_005, 9_006]).await;
    jobs_on_both(&mut rig, jobs).await;
    assert_sent(&rig, 6);
    assert_eq!(
        rig.fake.authorizer_refreshes(AUTHORIZER),
        2,
        "one refresh for both instances\n{}",
        rig.logs()
    );
    assert_eq!(
        rig.fake.credential_refusals(),
        refused + 2,
        "each instance sent once with the expired token"
    );
    let sent = rig.fake.sent();
    assert_eq!(sent[4].token, sent[5].token, "one new token for both");
    assert_ne!(sent[4].token, sent[0].token);
    assert_eq!(rig.fake.component_token_fetches(), 1);
    assert_eq!(rig.fake.authorizer_list_calls(), 0);
    assert_no_secrets(&rig, &[]);
    eprintln!("took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_is_never_lost_between_the_instances() {
    let started = Instant::now();
    let mut rig = rig().await;
    // Every api_authorizer_token answers a new refresh token and retires the one it took.
    rig.fake.set_rotate_refresh_tokens(true);
    authorize(&mut rig).await;
    let first = rig.fake.current_refresh_token(AUTHORIZER).unwrap();
    // Every call to the fake takes a while, so the instances' refreshes overlap.
    rig.fake.set_delay(Duration::from_millis(250));

    // Neither instance has a token: both need one at the same moment.
    let jobs = messages_to_both(&mut rig, [9_101, 9_102]).await;
    jobs_on_both(&mut rig, jobs).await;
    assert_sent(&rig, 2);
    assert_eq!(
        rig.fake.authorizer_refreshes(AUTHORIZER),
        1,
        "{}",
        rig.logs()
    );
    // It expires; both find out at once.
    rig.fake.expire_authorizer_tokens(AUTHORIZER);
    let jobs = messages_to_both(&mut rig, [9_103, 9_104]).await;
    jobs_on_both(&mut rig, jobs).await;
    assert_sent(&rig, 4);
    assert_eq!(
        rig.fake.authorizer_refreshes(AUTHORIZER),
        2,
        "{}",
        rig.logs()
    );

    // Two rotations: the table holds the newest refresh token, the only one that works.
    let current = rig.fake.current_refresh_token(AUTHORIZER).unwrap();
    assert_ne!(current, first);
    let record = rig.authorization().await;
    assert_eq!(record.state, AuthorizationState::Authorized);
    assert_eq!(record.refresh_token.as_deref(), Some(current.as_str()));

    // An operator forces a refresh twice at once (`wxgate open refresh`, over the same
    // table): whatever the interleaving, the refresh token stored is the current one.
    let children: Vec<_> = (0..2).map(|_| forced_refresh(&rig)).collect();
    for child in children {
        assert_refreshed(child);
    }
    let refreshes = rig.fake.authorizer_refreshes(AUTHORIZER);
    assert!((3..=4).contains(&refreshes), "{refreshes}");
    eprintln!("two forced refreshes at once: {} refreshed", refreshes - 2);
    let current = rig.fake.current_refresh_token(AUTHORIZER).unwrap();
    let record = rig.authorization().await;
    assert_eq!(record.refresh_token.as_deref(), Some(current.as_str()));

    // Every token expires and the operator refreshes once more: the instances, refused
    // with the tokens they hold, take the operator's from the table.
    rig.fake.set_delay(Duration::ZERO);
    rig.fake.expire_authorizer_tokens(AUTHORIZER);
    assert_refreshed(forced_refresh(&rig));
    let refreshes = refreshes + 1;
    let jobs = messages_to_both(&mut rig, [9_105, 9_106]).await;
    jobs_on_both(&mut rig, jobs).await;
    assert_sent(&rig, 6);
    assert_eq!(rig.fake.authorizer_refreshes(AUTHORIZER), refreshes);
    // And they go on refreshing with the refresh token the operator's refresh stored.
    rig.fake.expire_authorizer_tokens(AUTHORIZER);
    let jobs = messages_to_both(&mut rig, [9_107, 9_108]).await;
    jobs_on_both(&mut rig, jobs).await;
    assert_sent(&rig, 8);
    assert_eq!(rig.fake.authorizer_refreshes(AUTHORIZER), refreshes + 1);
    let record = rig.authorization().await;
    assert_eq!(
        record.refresh_token,
        rig.fake.current_refresh_token(AUTHORIZER)
    );
    assert_eq!(
        rig.fake.authorizer_list_calls(),
        0,
        "never recovered\n{}",
        rig.logs()
    );
    let logs = rig.logs();
    assert!(
        !logs.contains("61023")
            && !logs.contains("changed during the refresh")
            && !logs.contains("fetching the access token directly"),
        "{logs}"
    );
    assert_no_secrets(&rig, &[]);
    eprintln!("took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_authorized_event_does_not_undo_a_newer_withdrawal() {
    let started = Instant::now();
    let mut rig = rig().await;
    let code = authorize(&mut rig).await;
    let granted = rig.authorization().await;

    // The account withdraws (through B)…
    let withdrawn_at = unix_now().max(granted.event_time);
    let event = unauthorized_push(&rig.sim, AUTHORIZER, withdrawn_at);
    let response = lambda_response(&mut rig.b, &event).await;
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "success")
    );
    let record = rig.authorization().await;
    assert_eq!(
        (record.state, record.refresh_token.as_deref()),
        (AuthorizationState::Revoked, None)
    );
    assert!(
        rig.b
            .logs()
            .contains("authorization withdrawn; kept as a tombstone")
    );

    // …then WeChat's retry of the `authorized` event from before arrives (through A). The
    // fake still exchanges its code (WeChat would refuse a withdrawn account's code too),
    // so what keeps the tombstone is the event times in the table.
    let event = authorized_push(
        &rig.sim,
        "authorized",
        AUTHORIZER,
        &code,
        withdrawn_at - 120,
    );
    let response = lambda_response(&mut rig.a, &event).await;
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "success")
    );
    assert_eq!(rig.fake.query_auths(), 2, "the code was exchanged");
    assert!(
        rig.a
            .logs()
            .contains("a later authorization is stored already; this older one is not applied"),
        "{}",
        rig.logs()
    );
    let record = rig.authorization().await;
    assert_eq!(record.state, AuthorizationState::Revoked);
    assert_eq!(record.refresh_token, None);
    assert_eq!(record.event_time, withdrawn_at);
    let raw = rig
        .item(&authorization_key(COMPONENT_APP_ID, AUTHORIZER))
        .await
        .unwrap();
    assert!(!raw.contains_key("rt"), "no refresh token on the tombstone");

    // A message to the account: its job fails, nothing is sent on its behalf.
    let (request, key) = message(&rig, 9_201);
    let pending = rig.a.api().submit(v2_event(&request));
    let job = stream_event(&claimed(&rig, &key).await);
    let answered = rig.a.wait(pending).await.unwrap();
    assert_empty(&rig, &request, &answered.response().unwrap());
    job_on(&mut rig, Via::B, job).await;
    let failed = rig.item(&key).await.unwrap();
    assert_eq!(s(&failed, "job"), Some("failed"), "{failed:?}");
    let reason = s(&failed, "reason").unwrap_or_default();
    assert!(reason.contains("has not authorized"), "{reason}");
    assert_sent(&rig, 0);
    assert_eq!(rig.fake.authorizer_refreshes(AUTHORIZER), 0);
    assert_no_secrets(&rig, &[&code]);
    eprintln!("took {:?}", started.elapsed());
}
