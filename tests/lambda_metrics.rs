//! The built `wxgate` binary as a Lambda function (runtime API on loopback, embedded store):
//! after each invocation its stdout has one CloudWatch EMF line with what that invocation
//! changed, valid by the specification's rules, and none when nothing changed; no secret,
//! sender or message text is in it.

mod support;

use serde_json::Value;
use support::calls::lambda_response;
use support::runtime_api::{FunctionProcess, Outcome};
use support::sample::{AGENT_ID, KEY, OFFICIAL_SAMPLE_APP, TOKEN, header, sample_sim};
use wxgate::clock::unix_now;
use wxgate::simulate::{SignedRequest, text_xml};

/// The EMF lines among what the function printed: JSON objects with `_aws`.
fn emf_lines(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .collect()
}

/// Checks `doc` against the EMF specification's rules that apply to it.
fn assert_valid_emf(doc: &Value) {
    let aws = &doc["_aws"];
    let timestamp = aws["Timestamp"].as_u64().expect("_aws.Timestamp in ms");
    let now_ms = unix_now() * 1000;
    assert!(
        timestamp + 60_000 > now_ms && timestamp < now_ms + 60_000,
        "{timestamp}"
    );
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics");
    assert!(!directives.is_empty());
    for directive in directives {
        assert_eq!(directive["Namespace"], "wxgate");
        let sets = directive["Dimensions"].as_array().expect("Dimensions");
        for set in sets {
            let set = set.as_array().expect("a DimensionSet");
            assert!(set.len() <= 30, "{set:?}");
            for name in set {
                let name = name.as_str().expect("a dimension name");
                assert!(doc[name].is_string(), "{name} is no string member: {doc}");
            }
        }
        let metrics = directive["Metrics"].as_array().expect("Metrics");
        assert!(!metrics.is_empty() && metrics.len() <= 100);
        for metric in metrics {
            let name = metric["Name"].as_str().expect("Name");
            let unit = metric["Unit"].as_str().expect("Unit");
            assert!(unit == "Count" || unit == "Milliseconds", "{unit}");
            let value = &doc[name];
            let values = value
                .as_array()
                .cloned()
                .unwrap_or_else(|| vec![value.clone()]);
            assert!(!values.is_empty() && values.len() <= 100, "{name}: {value}");
            assert!(values.iter().all(Value::is_number), "{name}: {value}");
        }
    }
}

/// Invokes `request` and returns the EMF lines it printed.
async fn invoke(function: &mut FunctionProcess, request: &SignedRequest) -> (u16, Vec<Value>) {
    let before = emf_lines(&function.logs()).len();
    let status = lambda_response(function, request).await.status;
    (status, emf_lines(&function.logs()).split_off(before))
}

#[tokio::test]
async fn each_invocation_prints_one_valid_emf_line_with_its_counts() {
    const USER: &str = "user-emf-5521";
    const TEXT: &str = "content-emf-8830";
    let mut function = FunctionProcess::spawn(
        env!("CARGO_BIN_EXE_wxgate"),
        &[],
        &[("WXGATE_CONFIG", OFFICIAL_SAMPLE_APP)],
    )
    .await
    .unwrap();
    let sim = sample_sim();
    let message = text_xml(&header(sim.receive_id(), USER, Some(AGENT_ID)), TEXT, 8080);
    let valid = sim.post(&message, unix_now(), "nonce-emf-1").unwrap();

    let (status, lines) = invoke(&mut function, &valid).await;
    assert_eq!(status, 200);
    assert_eq!(lines.len(), 1, "{lines:?}\n{}", function.log_tail(4000));
    let line = &lines[0];
    assert_valid_emf(line);
    assert_eq!(line["Service"], "wxgate");
    assert_eq!(line["app"], "demo");
    assert_eq!(line["platform"], "wecom");
    assert_eq!(line["kind"], "message");
    assert_eq!(line["outcome"], "answered");
    assert_eq!(line["Callbacks"], 1);
    // The echo rule decides it before the claim: no bot is asked, and the one store
    // request is the claim that carries the reply.
    assert!(line.get("BotLatency").is_none(), "{line}");
    assert_eq!(line["StoreLatency"].as_array().map(Vec::len), Some(1));
    assert!(line.get("Refusals").is_none() && line.get("DedupReplays").is_none());

    // The platform's retry: answered from the first delivery.
    let (status, lines) = invoke(&mut function, &valid).await;
    assert_eq!(status, 200);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_valid_emf(&lines[0]);
    assert_eq!(lines[0]["outcome"], "replayed");
    assert_eq!(lines[0]["Callbacks"], 1);
    assert_eq!(lines[0]["DedupReplays"], 1);
    assert!(
        lines[0].get("BotLatency").is_none(),
        "the bot was not asked"
    );

    // A forged signature: a refusal under its official code.
    let mut forged = valid.clone();
    forged.query = forged
        .query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some(("msg_signature", _)) => format!("msg_signature={}", "0".repeat(40)),
            _ => p.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    let (status, lines) = invoke(&mut function, &forged).await;
    assert_eq!(status, 401);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_valid_emf(&lines[0]);
    assert_eq!(lines[0]["code"], "-40001");
    assert_eq!(lines[0]["Refusals"], 1);
    assert_eq!(lines[0]["outcome"], "refused");

    // An event of neither kind changes no metric: no line.
    let before = emf_lines(&function.logs()).len();
    let odd = function
        .invoke(serde_json::json!({"detail-type": "Scheduled Event"}))
        .await
        .unwrap();
    assert!(matches!(odd.outcome, Outcome::Error { .. }));
    assert_eq!(emf_lines(&function.logs()).len(), before);

    // Nothing secret or personal in any metrics line.
    let signature = valid
        .query
        .split('&')
        .find_map(|p| p.strip_prefix("msg_signature="))
        .unwrap();
    let all: String = emf_lines(&function.logs())
        .iter()
        .map(Value::to_string)
        .collect();
    for secret in [TOKEN, KEY, USER, TEXT, "nonce-emf-1", signature] {
        assert!(!all.contains(secret), "{secret} in the EMF lines");
    }
    assert!(function.is_running());
}
