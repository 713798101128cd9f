//! The built `wxgate` binary as a Lambda function with its DynamoDB table, the way the SAM
//! template deploys it (`WXGATE_TABLE` set, no `[store]` in the config), against dynalite on
//! loopback through `AWS_ENDPOINT_URL_DYNAMODB`. Two function processes share the table:
//! the platform's retry reaching a second instance is answered from the first one's record.
// Needs Node, Python, Chromium or a local AWS-compatible server: built only with
// `--features external-tests` (scripts/test.sh), so plain `cargo test` stays offline.
#![cfg(feature = "external-tests")]

mod support;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use support::calls::lambda_answer;
use support::dynamo::{
    ACCESS_KEY_ID, DynamoServer, SECRET_ACCESS_KEY, client, create_table, unique_table_name,
};
use support::runtime_api::FunctionProcess;
use support::sample::{OFFICIAL_SAMPLE_APP, key_of, sample_sim, text_request, wecom_header};
use wxgate::clock::unix_now;
use wxgate::simulate::{Answer, text_xml};

/// The sample app as a Lambda function over `table` of the DynamoDB at `endpoint`.
async fn function(endpoint: &str, table: &str) -> FunctionProcess {
    FunctionProcess::spawn(
        env!("CARGO_BIN_EXE_wxgate"),
        &[],
        &[
            ("WXGATE_CONFIG", OFFICIAL_SAMPLE_APP),
            ("WXGATE_TABLE", table),
            ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
            // Lambda hands the function's role credentials over in these variables.
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
            ("AWS_SESSION_TOKEN", "test-session-token"),
        ],
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_dedup_records_through_the_table() {
    let server = DynamoServer::start();
    let table = unique_table_name("lambda");
    let db = client(&server.endpoint()).await;
    create_table(&db, &table).await;
    let mut first = function(&server.endpoint(), &table).await;
    let mut second = function(&server.endpoint(), &table).await;

    let sim = sample_sim();
    let xml = text_xml(&wecom_header(&sim, "lisi"), "once, please", 7_000_001);
    let delivery = sim.post(&xml, unix_now(), "first").unwrap();
    let retry = sim.post(&xml, unix_now(), "retry").unwrap();

    let Answer::Reply(answered) = lambda_answer(&mut first, &sim, &delivery).await else {
        panic!("no reply from the first instance");
    };
    assert!(answered.contains("once, please"), "{answered}");
    let Answer::Reply(replayed) = lambda_answer(&mut second, &sim, &retry).await else {
        panic!("no reply from the second instance");
    };
    assert_eq!(replayed, answered);

    // The record is in the table, completed, with the reply and a TTL.
    let key = key_of("demo", &xml);
    let item: HashMap<String, AttributeValue> = db
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(key))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("a dedup record");
    assert_eq!(item["st"], AttributeValue::S("d".into()));
    // The reply is sealed at rest with a key derived from the app's EncodingAESKey: the
    // second instance opened it, a reader of the table cannot.
    let stored = item["reply"].as_s().unwrap();
    assert!(stored.starts_with("v1:"), "{stored}");
    assert!(!stored.contains("once, please"), "{stored}");
    let expires_at: u64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    assert!(expires_at >= unix_now() + 86_000, "{expires_at}");

    let logs = second.logs();
    assert!(
        logs.contains("duplicate callback answered from the first delivery"),
        "{logs}"
    );
    // Message contents stay out of the logs, also on the store's paths.
    assert!(!first.logs().contains("once, please") && !logs.contains("once, please"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_whose_table_is_unreachable_still_answers() {
    // A port nothing listens on: every store request is refused at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut function = function(&dead, "wxgate-missing").await;
    let sim = sample_sim();
    let request = text_request(&sim, "still here?", 7_000_002, "n");
    let Answer::Reply(xml) = lambda_answer(&mut function, &sim, &request).await else {
        panic!("answered empty");
    };
    assert!(xml.contains("still here?"));
    let logs = function.logs();
    assert!(logs.contains("dedup unavailable"), "{logs}");
    assert!(!logs.contains(SECRET_ACCESS_KEY));
}
