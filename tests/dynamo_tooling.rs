//! The DynamoDB test tooling works: dynalite starts, serves the operations wxgate relies on,
//! stops and restarts; the fault proxy passes, delays, black-holes and refuses traffic.
// Needs Node, Python, Chromium or a local AWS-compatible server: built only with
// `--features external-tests` (scripts/test.sh), so plain `cargo test` stays offline.
#![cfg(feature = "external-tests")]

mod support;

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use support::dynamo::{self, DynamoServer, PARTITION_KEY};
use support::fault_proxy::{FaultProxy, Mode};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A server, a client on it and a fresh table.
async fn setup(prefix: &str) -> (DynamoServer, Client, String) {
    let server = DynamoServer::start();
    let client = dynamo::client(&server.endpoint()).await;
    let table = dynamo::unique_table_name(prefix);
    dynamo::create_table(&client, &table).await;
    (server, client, table)
}

/// A client with a short operation timeout, for fault tests.
fn short_client(endpoint: &str, timeout: Duration) -> Client {
    let config = dynamo::config(endpoint)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_timeout(timeout)
                .build(),
        )
        .build();
    Client::from_conf(config)
}

async fn get_pk(client: &Client, table: &str, pk: &str) -> Result<(), SdkError<GetItemError>> {
    client
        .get_item()
        .table_name(table)
        .key(PARTITION_KEY, s(pk))
        .send()
        .await
        .map(drop)
}

#[tokio::test]
async fn starts_quickly_and_creates_an_active_table() {
    let started = Instant::now();
    let server = DynamoServer::start();
    let startup = started.elapsed();
    eprintln!("dynalite answered after {startup:?}");
    assert!(startup < Duration::from_secs(10));
    let client = dynamo::client(&server.endpoint()).await;
    let table = dynamo::unique_table_name("tooling");
    dynamo::create_table(&client, &table).await;
    let tables = client.list_tables().send().await.unwrap();
    assert_eq!(tables.table_names(), [table]);
}

#[tokio::test]
async fn conditional_put_succeeds_once() {
    let (_server, client, table) = setup("cond").await;
    let put = || {
        client
            .put_item()
            .table_name(&table)
            .item(PARTITION_KEY, s("msg-1"))
            .item("n", n(1))
            .condition_expression("attribute_not_exists(pk)")
            .send()
    };
    put().await.expect("the first put succeeds");
    let err = put().await.expect_err("the second put fails");
    let err = err.into_service_error();
    assert!(
        err.is_conditional_check_failed_exception(),
        "expected ConditionalCheckFailedException, got {err:?}"
    );
}

#[tokio::test]
async fn stop_fails_requests_and_restart_serves_again() {
    let (mut server, _, table) = setup("stop").await;
    let client = short_client(&server.endpoint(), Duration::from_secs(2));
    get_pk(&client, &table, "a").await.unwrap();

    server.stop();
    assert!(!server.is_running());
    let started = Instant::now();
    let err = client
        .list_tables()
        .send()
        .await
        .expect_err("server is down");
    assert!(
        matches!(err, SdkError::DispatchFailure(_)),
        "expected a dispatch failure, got {err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    server.restart();
    assert!(server.is_running());
    // Same port, empty store.
    let client = short_client(&server.endpoint(), Duration::from_secs(2));
    let tables = client.list_tables().send().await.unwrap();
    assert!(tables.table_names().is_empty());
}

#[tokio::test]
async fn proxy_pass_forwards() {
    let server = DynamoServer::start();
    let proxy = FaultProxy::start(server.addr());
    let client = dynamo::client(&proxy.endpoint()).await;
    let table = dynamo::unique_table_name("pass");
    dynamo::create_table(&client, &table).await;
    client
        .put_item()
        .table_name(&table)
        .item(PARTITION_KEY, s("a"))
        .item("v", s("hello"))
        .send()
        .await
        .unwrap();
    let got = client
        .get_item()
        .table_name(&table)
        .key(PARTITION_KEY, s("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.item().unwrap()["v"], s("hello"));
    assert!(proxy.connections() >= 1);
}

#[tokio::test]
async fn proxy_delay_slows_each_request() {
    let (server, _, table) = setup("delay").await;
    let proxy = FaultProxy::start(server.addr());
    let client = short_client(&proxy.endpoint(), Duration::from_secs(5));
    get_pk(&client, &table, "a").await.unwrap(); // a pooled connection exists now

    proxy.set_mode(Mode::Delay(Duration::from_millis(300)));
    for _ in 0..2 {
        let started = Instant::now();
        get_pk(&client, &table, "a").await.unwrap();
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(300), "GetItem took {took:?}");
    }

    proxy.set_mode(Mode::Pass);
    let started = Instant::now();
    get_pk(&client, &table, "a").await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn proxy_blackhole_times_out() {
    let (server, _, table) = setup("blackhole").await;
    let proxy = FaultProxy::start(server.addr());
    let client = short_client(&proxy.endpoint(), Duration::from_millis(200));
    get_pk(&client, &table, "a").await.unwrap();

    proxy.set_mode(Mode::Blackhole);
    for _ in 0..2 {
        // The pooled connection first, then a new one.
        let started = Instant::now();
        let err = get_pk(&client, &table, "a").await.expect_err("black-holed");
        let took = started.elapsed();
        assert!(
            matches!(err, SdkError::TimeoutError(_)),
            "expected a timeout, got {err:?}"
        );
        assert!(
            (Duration::from_millis(200)..Duration::from_secs(2)).contains(&took),
            "timed out after {took:?}"
        );
    }

    proxy.set_mode(Mode::Pass);
    get_pk(&client, &table, "a").await.unwrap();
}

#[tokio::test]
async fn proxy_refuse_fails_to_connect() {
    let (server, _, table) = setup("refuse").await;
    let proxy = FaultProxy::start(server.addr());
    let client = short_client(&proxy.endpoint(), Duration::from_secs(2));
    get_pk(&client, &table, "a").await.unwrap();

    proxy.set_mode(Mode::Refuse);
    for _ in 0..2 {
        let started = Instant::now();
        let err = get_pk(&client, &table, "a").await.expect_err("refused");
        assert!(
            matches!(err, SdkError::DispatchFailure(_)),
            "expected a dispatch failure, got {err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    assert_eq!(proxy.open_connections(), 0);

    proxy.set_mode(Mode::Pass);
    get_pk(&client, &table, "a").await.unwrap();
}

#[tokio::test]
async fn proxy_drop_closes_listener_and_connections() {
    let (server, _, table) = setup("drop").await;
    let proxy = FaultProxy::start(server.addr());
    let client = short_client(&proxy.endpoint(), Duration::from_millis(300));
    get_pk(&client, &table, "a").await.unwrap();
    proxy.set_mode(Mode::Blackhole);
    get_pk(&client, &table, "a").await.expect_err("black-holed");
    assert!(proxy.open_connections() >= 1);

    let started = Instant::now();
    drop(proxy);
    assert!(started.elapsed() < Duration::from_secs(1));
    let err = get_pk(&client, &table, "a").await.expect_err("proxy gone");
    assert!(
        matches!(err, SdkError::DispatchFailure(_)),
        "expected a dispatch failure, got {err:?}"
    );
}

#[tokio::test]
async fn drop_kills_the_server() {
    let server = DynamoServer::start();
    let addr = server.addr();
    drop(server);
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
}

// ------------------------------------------------------------------------------------------
// DynamoDB features wxgate relies on, as dynalite implements them
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn consistent_read_get_item() {
    let (_server, client, table) = setup("consistent").await;
    client
        .put_item()
        .table_name(&table)
        .item(PARTITION_KEY, s("a"))
        .item("v", n(7))
        .send()
        .await
        .unwrap();
    let got = client
        .get_item()
        .table_name(&table)
        .key(PARTITION_KEY, s("a"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(got.item().unwrap()["v"], n(7));
    let missing = client
        .get_item()
        .table_name(&table)
        .key(PARTITION_KEY, s("b"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(missing.item().is_none());
}

/// A lease-style claim: `SET` with `if_not_exists`, `REMOVE`, and a condition mixing `OR`,
/// `AND`, `attribute_not_exists` and `<` on numbers.
#[tokio::test]
async fn update_item_expressions() {
    let (_server, client, table) = setup("update").await;
    let claim = |now: i64, reply: Option<&str>| {
        let mut update = client
            .update_item()
            .table_name(&table)
            .key(PARTITION_KEY, s("msg-1"))
            .update_expression(
                "SET expires_at = :exp, first_seen = if_not_exists(first_seen, :now), \
                 attempts = if_not_exists(attempts, :zero) + :one REMOVE reply",
            )
            .condition_expression(
                "attribute_not_exists(pk) OR (expires_at < :now AND attempts < :max)",
            )
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":exp", n(now + 10))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(3))
            .return_values(ReturnValue::AllNew);
        if let Some(reply) = reply {
            // Not part of the claim: sets `reply` so the next claim has something to REMOVE.
            update = update
                .update_expression(
                    "SET expires_at = :exp, first_seen = if_not_exists(first_seen, :now), \
                     attempts = if_not_exists(attempts, :zero) + :one, reply = :reply",
                )
                .expression_attribute_values(":reply", s(reply));
        }
        update.send()
    };
    let is_condition_failure = |e: SdkError<UpdateItemError>| {
        let e = e.into_service_error();
        assert!(e.is_conditional_check_failed_exception(), "got {e:?}");
    };

    // Absent: attribute_not_exists(pk) holds.
    let item = claim(9, Some("cached")).await.unwrap();
    let item = item.attributes().unwrap();
    assert_eq!(item["expires_at"], n(19));
    assert_eq!(item["first_seen"], n(9));
    assert_eq!(item["attempts"], n(1));
    assert_eq!(item["reply"], s("cached"));

    // Held until 19. `19 < 9` also proves numbers compare as numbers: as strings, "19" < "9".
    is_condition_failure(claim(10, None).await.expect_err("lease still held"));
    is_condition_failure(
        claim(9, None)
            .await
            .expect_err("numbers compare as numbers"),
    );

    // Expired: 19 < 20, attempts 1 < 3. first_seen kept, attempts incremented, reply removed.
    let item = claim(20, None).await.unwrap();
    let item = item.attributes().unwrap();
    assert_eq!(item["expires_at"], n(30));
    assert_eq!(item["first_seen"], n(9));
    assert_eq!(item["attempts"], n(2));
    assert!(!item.contains_key("reply"), "REMOVE reply: {item:?}");

    // AND: expired, but attempts 3 < 3 fails after the third claim.
    claim(31, None).await.unwrap();
    is_condition_failure(claim(100, None).await.expect_err("too many attempts"));

    // ReturnValues ALL_OLD on a successful conditional put.
    let old = client
        .put_item()
        .table_name(&table)
        .item(PARTITION_KEY, s("msg-1"))
        .condition_expression("attribute_exists(pk) AND attempts < :max")
        .expression_attribute_values(":max", n(4))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert_eq!(old.attributes().unwrap()["attempts"], n(3));
}
