//! What the DynamoDB table holds is read by more than the function: point-in-time backups
//! (35 days), the table's stream (24 hours of every write's image), anyone with GetItem.
//! So recorded replies, reply jobs' messages and cached access tokens are sealed with keys
//! derived from the apps' own secrets. Against dynalite: a raw scan of the table finds none
//! of them in clear, and the gateway reads them back.
// Needs Node, Python, Chromium or a local AWS-compatible server: built only with
// `--features external-tests` (scripts/test.sh), so plain `cargo test` stays offline.
#![cfg(feature = "external-tests")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use support::calls::{reply_of, spawn_answer, timed_answer};
use support::dynamo::{DynamoServer, client, create_table, unique_table_name};
use support::fake_platform::FakePlatform;
use support::fake_upstream::{Behavior, FakeUpstream};
use support::sample::{KEY, sim_of, wecom_header};
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::gateway::{Gateway, LateReplies};
use wxgate::simulate::text_xml;
use wxgate::store::{Backend, DynamoStore};

const UPSTREAM_SECRET: &str = "sealed-at-rest-secret-0123456789";

/// Every string value of every item of the table.
async fn every_value(db: &aws_sdk_dynamodb::Client, table: &str) -> Vec<(String, String, String)> {
    let page = db.scan().table_name(table).send().await.unwrap();
    let mut values = Vec::new();
    for item in page.items.unwrap_or_default() {
        let pk = match item.get("pk") {
            Some(AttributeValue::S(pk)) => pk.clone(),
            _ => String::new(),
        };
        for (name, value) in item {
            if let AttributeValue::S(text) = value {
                values.push((pk.clone(), name, text));
            }
        }
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_holds_no_reply_message_or_token_in_clear() {
    let server = DynamoServer::start();
    let table = unique_table_name("sealed");
    let db = client(&server.endpoint()).await;
    create_table(&db, &table).await;
    let platform = FakePlatform::start();
    let upstream = FakeUpstream::start(
        UPSTREAM_SECRET,
        Behavior::text("upstream says: the vault code is 0451").after(Duration::from_millis(50)),
    );
    let config_text = support::fake_platform::forward_app_config(
        "budget_ms = 2000",
        &platform.url(),
        &upstream.url(),
        UPSTREAM_SECRET,
        5000,
        "",
    );
    let config = Config::parse(&config_text).unwrap();
    let gateway_over = |config: &Config, late: LateReplies| {
        let store = DynamoStore::new(db.clone(), &table);
        Gateway::builder(config)
            .store(Arc::new(Backend::Dynamo(store)))
            .late_replies(late)
            .build()
            .unwrap()
    };
    let gateway = Arc::new(gateway_over(&config, LateReplies::AsJobs));
    let sim = sim_of(&config, "demo");

    // A message answered by a reply job: the claim carries the decrypted message.
    let xml = text_xml(&wecom_header(&sim, "lisi"), "my secret question", 6_600_001);
    let request = sim.post(&xml, unix_now(), "s1").unwrap();
    let sim = Arc::new(sim);
    let callback = spawn_answer(&gateway, &sim, request);
    // While the callback waits, the message is on the record: look at it raw.
    let mut message_seen = false;
    for _ in 0..200 {
        let values = every_value(&db, &table).await;
        if let Some((_, _, msg)) = values.iter().find(|(_, name, _)| name == "msg") {
            assert!(msg.starts_with("v1:"), "{msg}");
            message_seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(message_seen, "the job's message was never stored");
    let key = {
        let values = every_value(&db, &table).await;
        values
            .iter()
            .find(|(_, name, _)| name == "msg")
            .map(|(pk, _, _)| pk.clone())
            .unwrap()
    };
    assert_eq!(
        gateway.run_job(&key, None).await,
        wxgate::gateway::JobOutcome::Answered
    );
    let reply = reply_of(callback.await.unwrap().0).expect("a reply");
    assert!(reply.contains("the vault code is 0451"));

    // An access token fetched and cached in the table.
    let token = gateway.access_token("demo").await.unwrap();

    let values = every_value(&db, &table).await;
    for (pk, name, text) in &values {
        for secret in ["my secret question", "vault code", token.expose()] {
            assert!(
                !text.contains(secret),
                "{pk}.{name} holds {secret:?} in clear: {text}"
            );
        }
    }
    for field in ["reply", "tok"] {
        let sealed: Vec<_> = values.iter().filter(|(_, name, _)| name == field).collect();
        assert!(!sealed.is_empty(), "no {field} stored");
        assert!(
            sealed.iter().all(|(_, _, t)| t.starts_with("v1:")),
            "{sealed:?}"
        );
    }

    // Another instance (its own process cache) reads them back: a retry of the callback gets
    // the recorded reply, the token is the cached one (no second fetch).
    let other = gateway_over(&config, LateReplies::Dropped);
    let retry = sim.post(&xml, unix_now(), "s2").unwrap();
    let (answer, _) = timed_answer(&other, &sim, &retry).await;
    let again = reply_of(answer).expect("the recorded reply opens");
    assert!(again.contains("the vault code is 0451"));
    let fetches = platform.fetches();
    assert_eq!(
        other.access_token("demo").await.unwrap().expose(),
        token.expose()
    );
    assert_eq!(
        platform.fetches(),
        fetches,
        "the sealed token was used, not fetched again"
    );

    // Another deployment's keys (another EncodingAESKey) cannot open them: the retry is
    // decided without the record rather than answered with garbage.
    let foreign =
        Config::parse(&config_text.replace(KEY, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"))
            .unwrap();
    let foreign_store = DynamoStore::new(db.clone(), &table);
    let bot = wxgate::bot::ConfigBot::from_config(&foreign).unwrap();
    let foreign_gateway = Gateway::builder(&foreign)
        .bot(bot)
        .store(Arc::new(Backend::Dynamo(foreign_store)))
        .build()
        .unwrap();
    let stolen = gateway_record_reply(&foreign_gateway, &key).await;
    assert!(
        stolen.is_err(),
        "opened with another deployment's keys: {stolen:?}"
    );
}

/// The recorded reply of `key` as `gateway`'s store reads it.
async fn gateway_record_reply(
    gateway: &Gateway,
    key: &str,
) -> Result<Option<wxgate::store::DedupRecord>, wxgate::store::StoreError> {
    use wxgate::store::DedupStore;
    gateway
        .store()
        .dedup_record(key, wxgate::clock::now_ms())
        .await
}
