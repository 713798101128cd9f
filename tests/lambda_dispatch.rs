//! The Lambda entry point in process: `wxgate::lambda::dispatch` over a gateway built from a
//! config, given the events a function gets (API Gateway HTTP API v2 and REST API v1
//! requests, a DynamoDB stream batch, and events of neither kind), its answers serialized as
//! the runtime sends them back. `tests/lambda_events.rs` checks the same through the built
//! binary and the runtime API; here a failure points at the adapter, not at the process.

mod support;

use std::sync::Arc;

use lambda_http::LambdaEvent;
use lambda_http::lambda_runtime::Context;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use support::calls::text_of;
use support::events;
use support::runtime_api::{ApiGwResponse, apigw_v1_event, apigw_v2_event};
use support::sample::{sample_config, sim_of, text_request};
use wxgate::clock::unix_now;
use wxgate::gateway::Gateway;
use wxgate::lambda::dispatch;
use wxgate::simulate::{Answer, PlatformSim, SignedRequest};

/// `event` through `dispatch`: the answer as the runtime would post it, or the invocation
/// error.
async fn invoke(gateway: &Arc<Gateway>, event: &Value) -> Result<Value, String> {
    let payload = RawValue::from_string(event.to_string()).unwrap();
    let answer = dispatch(
        Arc::clone(gateway),
        LambdaEvent::new(payload, Context::default()),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(serde_json::to_value(&answer).unwrap())
}

/// The API Gateway response `dispatch` answers `event` with.
async fn respond(gateway: &Arc<Gateway>, event: &Value) -> ApiGwResponse {
    let answer = invoke(gateway, event)
        .await
        .unwrap_or_else(|e| panic!("an invocation error: {e}"));
    assert!(
        answer.get("statusCode").is_some(),
        "not an API Gateway response: {answer}"
    );
    ApiGwResponse::from_value(&answer).unwrap()
}

/// The platform's verdict on the answer to `event`, which carries `request`.
async fn answer(
    gateway: &Arc<Gateway>,
    sim: &PlatformSim,
    request: &SignedRequest,
    event: &Value,
) -> Answer {
    let response = respond(gateway, event).await;
    sim.check(request, response.status, &response.text())
        .unwrap_or_else(|e| panic!("the platform refuses the answer: {e}"))
}

/// The official sample app, answering with echo.
fn sample() -> (Arc<Gateway>, PlatformSim) {
    let config = sample_config("");
    let gateway = Gateway::builder(&config).build().unwrap();
    (Arc::new(gateway), sim_of(&config, "demo"))
}

#[tokio::test]
async fn every_sample_event_gets_its_expected_answer() {
    let config = events::config();
    let gateway = Arc::new(Gateway::builder(&config).build().unwrap());
    let samples = events::samples();
    assert!(
        samples.iter().any(|s| s.event["version"] == "2.0")
            && samples.iter().any(|s| s.event.get("httpMethod").is_some()),
        "the samples hold both payload versions"
    );
    for sample in &samples {
        let response = respond(&gateway, &sample.event).await;
        let sim = sim_of(&config, &sample.app);
        events::check(&sim, sample, response.status, &response.text());
    }
}

#[tokio::test]
async fn a_message_is_answered_in_both_payload_versions_and_both_body_encodings() {
    let (gateway, sim) = sample();
    for (msg_id, version, base64) in [(21, 2, false), (22, 2, true), (11, 1, false), (12, 1, true)]
    {
        // Each its own message: the same one again would be answered as a retry.
        let text = format!("v{version}, base64 {base64}");
        let request = text_request(&sim, &text, msg_id, "n");
        let body = Some(request.body.as_str());
        let event = if version == 2 {
            apigw_v2_event("POST", &request.path, &request.query, body, base64)
        } else {
            apigw_v1_event("POST", &request.path, &request.query, body, base64)
        };
        let reply = answer(&gateway, &sim, &request, &event).await;
        assert_eq!(text_of(reply), text);
    }
}

/// REST API v1 events carry only decoded parameters, and API Gateway may have made a `+`
/// of the echostr a space; HTTP API v2 events carry the raw query, `+` and `/` unescaped
/// as some clients send them.
#[tokio::test]
async fn url_verification_survives_what_api_gateway_does_to_the_query() {
    let (gateway, sim) = sample();
    // Until the echostr has a `+`, `/` or `=` to lose.
    let verify = (0..)
        .map(|i| {
            sim.verify_url("31415926535", unix_now(), &format!("n{i}"))
                .unwrap()
        })
        .find(|v| v.query.contains("%2B") && v.query.contains("%2F"))
        .unwrap();
    let raw = verify
        .query
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    let spaced = verify.query.replace("%2B", "%20");
    for event in [
        apigw_v2_event("GET", &verify.path, &verify.query, None, false),
        apigw_v2_event("GET", &verify.path, &raw, None, false),
        apigw_v1_event("GET", &verify.path, &verify.query, None, false),
        apigw_v1_event("GET", &verify.path, &spaced, None, false),
    ] {
        let answer = answer(&gateway, &sim, &verify, &event).await;
        assert_eq!(answer, Answer::Verified("31415926535".into()), "{event}");
    }
}

#[tokio::test]
async fn refusals_keep_their_status_and_headers() {
    let (gateway, sim) = sample();
    let good = text_request(&sim, "hi", 7, "8675309");
    let forged = good.query.replace("nonce=8675309", "nonce=8675308");
    for (name, event, status) in [
        (
            "unknown route",
            apigw_v2_event("GET", "/.env", "", None, false),
            404,
        ),
        (
            "missing parameters",
            apigw_v1_event("POST", &good.path, "", Some(&good.body), false),
            400,
        ),
        (
            "wrong signature",
            apigw_v2_event("POST", &good.path, &forged, Some(&good.body), false),
            401,
        ),
    ] {
        let response = respond(&gateway, &event).await;
        assert_eq!(response.status, status, "{name}: {}", response.text());
        assert!(!response.body.is_empty(), "{name}: a reason is given");
    }
    for event in [
        apigw_v2_event("DELETE", &good.path, &good.query, None, false),
        apigw_v1_event("DELETE", &good.path, &good.query, None, false),
    ] {
        let response = respond(&gateway, &event).await;
        assert_eq!(response.status, 405, "{}", response.text());
        let allow = response.header("allow").expect("405 says what is allowed");
        assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    }
}

/// A reply job whose record is not in this gateway's (embedded) store: the worker finds
/// nothing to take and nothing to retry.
#[tokio::test]
async fn a_stream_batch_is_answered_with_its_failed_items() {
    let (gateway, _) = sample();
    let batch = events::read_json("dynamodb-stream-job.json");
    let answer = invoke(&gateway, &batch).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
}

#[tokio::test]
async fn an_event_of_neither_kind_is_an_invocation_error() {
    let (gateway, sim) = sample();
    for event in [
        json!({"detail-type": "Scheduled Event", "source": "aws.events"}),
        json!({"Records": [{"eventSource": "aws:sqs", "body": "hello"}]}),
        json!({"Records": "not a list"}),
        json!({"version": "2.0", "rawPath": 42}),
        json!([1, 2, 3]),
        json!("a string"),
    ] {
        let result = invoke(&gateway, &event).await;
        assert!(result.is_err(), "{event} was answered: {result:?}");
    }
    // The gateway is none the worse for them.
    let request = text_request(&sim, "still here", 9, "n");
    let reply = answer(
        &gateway,
        &sim,
        &request,
        &support::calls::v2_event(&request),
    )
    .await;
    assert_eq!(text_of(reply), "still here");
}
