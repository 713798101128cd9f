//! The built `wxgate` binary as a Lambda function, driven through a Lambda runtime API on
//! loopback: every sample event in `events/` with its decrypted answer checked, query and
//! body encodings API Gateway produces, refusals, start-up errors, and what is logged.

mod support;

use serde_json::Value;
use support::calls::{lambda_response, text_of};
use support::events;
use support::runtime_api::{FunctionProcess, HarnessError, apigw_v1_event, apigw_v2_event};
use support::sample::{
    KEY, OFFICIAL_SAMPLE_APP, TOKEN, sample_config_text, sample_sim, sim_of, text_request,
    wecom_header,
};
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::simulate::{PlatformSim, SignedRequest, text_xml};

async fn start(config: &str) -> FunctionProcess {
    FunctionProcess::spawn(
        env!("CARGO_BIN_EXE_wxgate"),
        &[],
        &[("WXGATE_CONFIG", config)],
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn every_sample_event_gets_its_expected_answer() {
    // WXGATE_CONFIG as a path here; the other tests pass it inline.
    let config = events::config();
    let mut function = start(events::config_path().to_str().unwrap()).await;
    for sample in events::samples() {
        let sim = sim_of(&config, &sample.app);
        let invocation = function.invoke(sample.event.clone()).await.unwrap();
        let response = invocation.response().unwrap();
        events::check(&sim, &sample, response.status, &response.text());
    }
    assert!(function.is_running());
}

#[tokio::test]
async fn the_sample_stream_batch_is_a_worker_event_and_other_events_are_errors() {
    let mut function = start(OFFICIAL_SAMPLE_APP).await;
    // A reply job whose record is not in this function's (embedded) store: the worker
    // finds nothing to take, and nothing to retry.
    let batch = function
        .invoke(events::read_json("dynamodb-stream-job.json"))
        .await
        .unwrap();
    assert_eq!(
        batch.outcome,
        support::runtime_api::Outcome::Response(serde_json::json!({"batchItemFailures": []}))
    );
    assert!(function.logs().contains("nothing to do"));
    // Neither API Gateway nor a stream: an invocation error, and the function goes on.
    let odd = function
        .invoke(serde_json::json!({"detail-type": "Scheduled Event"}))
        .await
        .unwrap();
    assert!(
        matches!(odd.outcome, support::runtime_api::Outcome::Error { .. }),
        "{:?}",
        odd.outcome
    );
    let request = text_request(&sample_sim(), "still serving", 77, "n");
    let response = lambda_response(&mut function, &request).await;
    assert_eq!(response.status, 200);
}

/// The official sample app with a small body limit.
fn live_config() -> String {
    sample_config_text("max_body_bytes = 4096")
}

fn live_sim() -> PlatformSim {
    sim_of(&Config::parse(&live_config()).unwrap(), "demo")
}

fn live_text(sim: &PlatformSim, text: &str) -> SignedRequest {
    let header = wecom_header(sim, "wangwu");
    sim.post(&text_xml(&header, text, 77), unix_now(), "8675309")
        .unwrap()
}

#[tokio::test]
async fn query_and_body_encodings_of_both_payload_versions_work() {
    let mut function = start(&live_config()).await;
    let sim = live_sim();

    // Verification with `+`, `/`, `=` raw in rawQueryString, as some clients send them.
    let verify = sim
        .verify_url("31415926535", unix_now(), "27182818")
        .unwrap();
    let raw = verify
        .query
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    for query in [verify.query.clone(), raw] {
        let event = apigw_v2_event("GET", &verify.path, &query, None, false);
        let response = function.invoke(event).await.unwrap().response().unwrap();
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "31415926535"),
            "{query}"
        );
    }

    // REST API v1: parameters arrive decoded, and API Gateway may have turned `+` into a space.
    let v1_spaced = verify.query.replace("%2B", "%20");
    let event = apigw_v1_event("GET", &verify.path, &v1_spaced, None, false);
    let response = function.invoke(event).await.unwrap().response().unwrap();
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "31415926535")
    );

    // A text message with a base64-encoded body, in both payload versions.
    for v1 in [false, true] {
        let request = live_text(&sim, "base64 body");
        let event = if v1 {
            apigw_v1_event(
                "POST",
                &request.path,
                &request.query,
                Some(&request.body),
                true,
            )
        } else {
            apigw_v2_event(
                "POST",
                &request.path,
                &request.query,
                Some(&request.body),
                true,
            )
        };
        let response = function.invoke(event).await.unwrap().response().unwrap();
        let answer = sim
            .check(&request, response.status, &response.text())
            .unwrap();
        assert_eq!(text_of(answer), "base64 body", "v1={v1}");
    }
}

#[tokio::test]
async fn refusals_have_their_status_and_the_function_keeps_serving() {
    let mut function = start(&live_config()).await;
    let sim = live_sim();
    let good = live_text(&sim, "still here");
    let forged_query = good.query.replace("nonce=8675309", "nonce=8675308");
    let cases = [
        (
            "unknown route",
            apigw_v2_event("GET", "/.env", "", None, false),
            404,
        ),
        (
            "wrong method",
            apigw_v2_event("DELETE", "/wecom/demo", &good.query, None, false),
            405,
        ),
        (
            "missing parameters",
            apigw_v2_event("POST", "/wecom/demo", "", Some(&good.body), false),
            400,
        ),
        (
            "wrong signature",
            apigw_v2_event(
                "POST",
                "/wecom/demo",
                &forged_query,
                Some(&good.body),
                false,
            ),
            401,
        ),
        (
            "body over the limit",
            apigw_v2_event(
                "POST",
                "/wecom/demo",
                &good.query,
                Some(&"x".repeat(5000)),
                false,
            ),
            413,
        ),
        (
            "not XML",
            apigw_v2_event(
                "POST",
                "/wecom/demo",
                &good.query,
                Some("\u{0}\u{1}junk"),
                false,
            ),
            400,
        ),
    ];
    for (name, event, status) in cases {
        let response = function.invoke(event).await.unwrap().response().unwrap();
        assert_eq!(response.status, status, "{name}: {}", response.text());
        let event = apigw_v2_event("POST", &good.path, &good.query, Some(&good.body), false);
        let response = function.invoke(event).await.unwrap().response().unwrap();
        let answer = sim.check(&good, response.status, &response.text()).unwrap();
        assert_eq!(text_of(answer), "still here", "after {name}");
    }
    let logs = function.logs();
    assert!(
        logs.contains("\"code\":-40001"),
        "the refusal names its code: {logs}"
    );
}

#[tokio::test]
async fn logs_are_json_and_carry_no_secrets_or_message_contents() {
    let mut function = start(&live_config()).await;
    let sim = live_sim();
    let request = live_text(&sim, "a private message");
    lambda_response(&mut function, &request).await;
    let stopped = function.stop();
    let lines: Vec<&str> = stopped
        .logs
        .lines()
        .filter(|l| l.starts_with('{'))
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("callback answered")),
        "{}",
        stopped.logs
    );
    for line in &lines {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    for secret in [TOKEN, KEY, "a private message"] {
        assert!(
            !stopped.logs.contains(secret),
            "{secret} leaked: {}",
            stopped.logs
        );
    }
}

#[tokio::test]
async fn a_bad_config_stops_the_function_at_start_with_the_reason() {
    let bad = live_config().replace(KEY, "short");
    let mut function = start(&bad).await;
    let event = apigw_v2_event("GET", "/wecom/demo", "", None, false);
    match function.invoke(event).await {
        Err(HarnessError::ProcessExited { log_tail, .. }) => {
            assert!(log_tail.contains("-40004"), "{log_tail}");
            assert!(!log_tail.contains(TOKEN), "{log_tail}");
        }
        other => panic!("expected the process to exit: {other:?}"),
    }
}

#[tokio::test]
async fn a_reply_jobs_setting_that_cannot_work_is_said_at_start_and_callbacks_still_answered() {
    for (value, said) in [
        ("sometimes", "WXGATE_REPLY_JOBS is `stream` or `off`"),
        (
            "stream",
            "WXGATE_REPLY_JOBS=stream needs the DynamoDB store",
        ),
    ] {
        let mut function = FunctionProcess::spawn(
            env!("CARGO_BIN_EXE_wxgate"),
            &[],
            &[
                ("WXGATE_CONFIG", OFFICIAL_SAMPLE_APP),
                ("WXGATE_REPLY_JOBS", value),
            ],
        )
        .await
        .unwrap();
        // It still answers callbacks.
        let request = text_request(&sample_sim(), "hello", 78, "n");
        let response = lambda_response(&mut function, &request).await;
        assert_eq!(response.status, 200);
        let logs = function.logs();
        assert!(logs.contains(said), "{value}: {logs}");
    }
}
