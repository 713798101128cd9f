//! The built `wxgate` binary as a Lambda function, driven through a Lambda runtime API on
//! loopback: every sample event in `events/` with its decrypted answer checked, query and
//! body encodings API Gateway produces, refusals, start-up errors, and what is logged.

mod support;

use std::path::Path;

use http::Method;
use serde_json::Value;
use support::runtime_api::{
    ApiGwResponse, FunctionProcess, HarnessError, apigw_v1_event, apigw_v2_event,
};
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::message::{Callback, Content};
use wxgate::simulate::{Answer, Header, OFFICIAL_SAMPLE_APP, PlatformSim, SignedRequest, text_xml};

fn events_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/events"))
}

fn read_json(name: &str) -> Value {
    let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn start(config: &str) -> FunctionProcess {
    FunctionProcess::spawn(
        env!("CARGO_BIN_EXE_wxgate"),
        &[],
        &[("WXGATE_CONFIG", config)],
    )
    .await
    .unwrap()
}

/// What the platform would need to check an answer to `event`: its mode and, for URL
/// verification, the echo expected.
fn request_of(event: &Value, expected_echo: Option<String>) -> SignedRequest {
    let query = match event["rawQueryString"].as_str() {
        Some(raw) => raw.to_owned(),
        None => event["queryStringParameters"]
            .as_object()
            .map(|m| {
                m.keys()
                    .map(|k| format!("{k}="))
                    .collect::<Vec<_>>()
                    .join("&")
            })
            .unwrap_or_default(),
    };
    SignedRequest {
        method: Method::POST,
        path: String::new(),
        query,
        body: String::new(),
        expected_echo,
    }
}

fn text_of(answer: Answer) -> String {
    let Answer::Reply(xml) = answer else {
        panic!("expected a reply, got {answer:?}")
    };
    match Callback::parse(&xml).unwrap() {
        Callback::Message(m) => match m.content {
            Content::Text { content } => content,
            other => panic!("not text: {other:?}"),
        },
        Callback::Info(i) => panic!("not a message: {i:?}"),
        _ => unreachable!("a variant this test does not make"),
    }
}

fn check(sim: &PlatformSim, event: &Value, expect: &str, response: &ApiGwResponse) {
    let body = response.text();
    let echo = expect.strip_prefix("echo:").map(str::to_owned);
    let answer = sim
        .check(&request_of(event, echo), response.status, &body)
        .unwrap_or_else(|e| panic!("{expect}: {e}"));
    match expect.split_once(':') {
        Some(("echo", text)) => assert_eq!(answer, Answer::Verified(text.into())),
        Some(("text", text)) => assert_eq!(text_of(answer), text),
        _ if expect == "empty" => assert_eq!(answer, Answer::Empty),
        _ => panic!("unknown expectation {expect}"),
    }
}

#[tokio::test]
async fn every_sample_event_gets_its_expected_answer() {
    // WXGATE_CONFIG as a path here; the other tests pass it inline.
    let config_path = events_dir().join("wxgate.toml");
    let config = Config::load(&config_path).unwrap();
    let mut function = start(config_path.to_str().unwrap()).await;
    let manifest = read_json("expected.json");
    let samples = manifest.as_array().unwrap();
    assert!(samples.len() >= 8, "the manifest lists the samples");
    for sample in samples {
        let file = sample["file"].as_str().unwrap();
        let event = read_json(file);
        let sim = PlatformSim::new(config.app(sample["app"].as_str().unwrap()).unwrap()).unwrap();
        let invocation = function.invoke(event.clone()).await.unwrap();
        let response = invocation.response().unwrap();
        check(&sim, &event, sample["expect"].as_str().unwrap(), &response);
    }
    assert!(function.is_running());
}

#[tokio::test]
async fn the_sample_stream_batch_is_a_worker_event_and_other_events_are_errors() {
    let mut function = start(OFFICIAL_SAMPLE_APP).await;
    // A reply job whose record is not in this function's (embedded) store: the worker
    // finds nothing to take, and nothing to retry.
    let batch = function
        .invoke(read_json("dynamodb-stream-job.json"))
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
    let sim = PlatformSim::new(
        Config::parse(OFFICIAL_SAMPLE_APP)
            .unwrap()
            .app("demo")
            .unwrap(),
    )
    .unwrap();
    let header = Header {
        to: sim.receive_id(),
        from: "lisi",
        create_time: unix_now(),
        agent_id: Some(218),
    };
    let request = sim
        .post(&text_xml(&header, "still serving", 77), unix_now(), "n")
        .unwrap();
    let event = apigw_v2_event(
        "POST",
        &request.path,
        &request.query,
        Some(&request.body),
        false,
    );
    let response = function.invoke(event).await.unwrap().response().unwrap();
    assert_eq!(response.status, 200);
}

/// The official sample app with a small body limit.
fn live_config() -> String {
    format!("[gateway]\nmax_body_bytes = 4096\n{OFFICIAL_SAMPLE_APP}")
}

fn live_sim() -> PlatformSim {
    PlatformSim::new(Config::parse(&live_config()).unwrap().app("demo").unwrap()).unwrap()
}

fn live_text(sim: &PlatformSim, text: &str) -> SignedRequest {
    let header = Header {
        to: sim.receive_id(),
        from: "wangwu",
        create_time: unix_now(),
        agent_id: Some(218),
    };
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
    let event = apigw_v2_event(
        "POST",
        &request.path,
        &request.query,
        Some(&request.body),
        false,
    );
    function.invoke(event).await.unwrap().response().unwrap();
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
    for secret in [
        "QDG6eK",
        "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        "a private message",
    ] {
        assert!(
            !stopped.logs.contains(secret),
            "{secret} leaked: {}",
            stopped.logs
        );
    }
}

#[tokio::test]
async fn a_bad_config_stops_the_function_at_start_with_the_reason() {
    let bad = live_config().replace("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "short");
    let mut function = start(&bad).await;
    let event = apigw_v2_event("GET", "/wecom/demo", "", None, false);
    match function.invoke(event).await {
        Err(HarnessError::ProcessExited { log_tail, .. }) => {
            assert!(log_tail.contains("-40004"), "{log_tail}");
            assert!(!log_tail.contains("QDG6eK"), "{log_tail}");
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
        let sim = PlatformSim::new(
            Config::parse(OFFICIAL_SAMPLE_APP)
                .unwrap()
                .app("demo")
                .unwrap(),
        )
        .unwrap();
        let header = Header {
            to: sim.receive_id(),
            from: "lisi",
            create_time: unix_now(),
            agent_id: Some(218),
        };
        let request = sim
            .post(&text_xml(&header, "hello", 78), unix_now(), "n")
            .unwrap();
        let event = apigw_v2_event(
            "POST",
            &request.path,
            &request.query,
            Some(&request.body),
            false,
        );
        let response = function.invoke(event).await.unwrap().response().unwrap();
        assert_eq!(response.status, 200);
        let logs = function.logs();
        assert!(logs.contains(said), "{value}: {logs}");
    }
}
