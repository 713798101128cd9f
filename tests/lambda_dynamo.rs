//! The built `wxgate` binary as a Lambda function with its DynamoDB table, the way the SAM
//! template deploys it (`WXGATE_TABLE` set, no `[store]` in the config), against dynalite on
//! loopback through `AWS_ENDPOINT_URL_DYNAMODB`. Two function processes share the table:
//! the platform's retry reaching a second instance is answered from the first one's record.

mod support;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use support::dynamo::{DynamoServer, client, create_table, unique_table_name};
use support::runtime_api::{FunctionProcess, apigw_v2_event};
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::message::Callback;
use wxgate::simulate::{Answer, Header, OFFICIAL_SAMPLE_APP, PlatformSim, SignedRequest, text_xml};
use wxgate::store::dedup_key;

async fn function(server: &DynamoServer, table: &str) -> FunctionProcess {
    let endpoint = server.endpoint();
    FunctionProcess::spawn(
        env!("CARGO_BIN_EXE_wxgate"),
        &[],
        &[
            ("WXGATE_CONFIG", OFFICIAL_SAMPLE_APP),
            ("WXGATE_TABLE", table),
            ("AWS_ENDPOINT_URL_DYNAMODB", &endpoint),
            // Lambda hands the function's role credentials over in these variables.
            ("AWS_ACCESS_KEY_ID", "AKIDTESTTESTTESTTEST"),
            ("AWS_SECRET_ACCESS_KEY", "test-secret-access-key"),
            ("AWS_SESSION_TOKEN", "test-session-token"),
        ],
    )
    .await
    .unwrap()
}

async fn call(
    function: &mut FunctionProcess,
    request: &SignedRequest,
    sim: &PlatformSim,
) -> Answer {
    let event = apigw_v2_event(
        request.method.as_str(),
        &request.path,
        &request.query,
        Some(&request.body),
        false,
    );
    let invocation = function.invoke(event).await.unwrap();
    let response = invocation.response().unwrap();
    let body = String::from_utf8(response.body.clone()).unwrap();
    sim.check(request, response.status, &body)
        .unwrap_or_else(|e| panic!("{e}: {body}\n{}", function.log_tail(4000)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_dedup_records_through_the_table() {
    let server = DynamoServer::start();
    let table = unique_table_name("lambda");
    let db = client(&server.endpoint()).await;
    create_table(&db, &table).await;
    let mut first = function(&server, &table).await;
    let mut second = function(&server, &table).await;

    let config = Config::parse(OFFICIAL_SAMPLE_APP).unwrap();
    let sim = PlatformSim::new(config.app("demo").unwrap()).unwrap();
    let header = Header {
        to: sim.receive_id(),
        from: "lisi",
        create_time: unix_now(),
        agent_id: Some(218),
    };
    let xml = text_xml(&header, "once, please", 7_000_001);
    let delivery = sim.post(&xml, unix_now(), "first").unwrap();
    let retry = sim.post(&xml, unix_now(), "retry").unwrap();

    let Answer::Reply(answered) = call(&mut first, &delivery, &sim).await else {
        panic!("no reply from the first instance");
    };
    assert!(answered.contains("once, please"), "{answered}");
    let Answer::Reply(replayed) = call(&mut second, &retry, &sim).await else {
        panic!("no reply from the second instance");
    };
    assert_eq!(replayed, answered);

    // The record is in the table, completed, with the reply and a TTL.
    let key = dedup_key("demo", Callback::parse(&xml).unwrap().dedup_key().as_str());
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
    let mut function = FunctionProcess::spawn(
        env!("CARGO_BIN_EXE_wxgate"),
        &[],
        &[
            ("WXGATE_CONFIG", OFFICIAL_SAMPLE_APP),
            ("WXGATE_TABLE", "wxgate-missing"),
            ("AWS_ENDPOINT_URL_DYNAMODB", &dead),
            ("AWS_ACCESS_KEY_ID", "AKIDTESTTESTTESTTEST"),
            ("AWS_SECRET_ACCESS_KEY", "test-secret-access-key"),
        ],
    )
    .await
    .unwrap();
    let config = Config::parse(OFFICIAL_SAMPLE_APP).unwrap();
    let sim = PlatformSim::new(config.app("demo").unwrap()).unwrap();
    let header = Header {
        to: sim.receive_id(),
        from: "lisi",
        create_time: unix_now(),
        agent_id: Some(218),
    };
    let request = sim
        .post(
            &text_xml(&header, "still here?", 7_000_002),
            unix_now(),
            "n",
        )
        .unwrap();
    let Answer::Reply(xml) = call(&mut function, &request, &sim).await else {
        panic!("answered empty");
    };
    assert!(xml.contains("still here?"));
    let logs = function.logs();
    assert!(logs.contains("dedup unavailable"), "{logs}");
    assert!(!logs.contains("test-secret-access-key"));
}
