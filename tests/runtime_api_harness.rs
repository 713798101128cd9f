//! Self-test of the fake Lambda Runtime API in tests/support/runtime_api.rs: the event builders
//! against lambda_http's own deserializer, the response decoder, the server protocol driven by
//! a raw HTTP client, and finally the real `wxgate` binary as a Lambda function.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use lambda_http::request::LambdaRequest;
use serde_json::{Value, json};
use support::runtime_api::*;
use support::sample::{AGENT_ID, CORP_ID, KEY, TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Arguments the `wxgate` binary is started with as a Lambda function (a `provided.al2023`
/// bootstrap is run without arguments).
const WXGATE_ARGS: &[&str] = &[];

/// The sample app on one line, as `WXGATE_CONFIG` is in the template.
fn wxgate_config() -> String {
    format!(
        r#"apps = [{{ name = "demo", platform = "wecom", corp_id = "{CORP_ID}", agent_id = {AGENT_ID}, token = "{TOKEN}", encoding_aes_key = "{KEY}", reply = {{ echo = true }} }}]"#
    )
}

fn to_http(event: &Value) -> (LambdaRequest, http::Request<lambda_http::Body>) {
    let parsed: LambdaRequest =
        serde_json::from_value(event.clone()).expect("lambda_http accepts the event");
    let again: LambdaRequest = serde_json::from_value(event.clone()).unwrap();
    (parsed, again.into())
}

#[test]
fn v2_event_is_what_lambda_http_reads_as_http_api() {
    let ev = apigw_v2_event(
        "POST",
        "/wecom/demo",
        "msg_signature=ab%2Bc&timestamp=1409659813&x=1&x=2",
        Some("<xml>hi</xml>"),
        false,
    );
    let (parsed, req) = to_http(&ev);
    assert!(
        matches!(parsed, LambdaRequest::ApiGatewayV2(_)),
        "{parsed:?}"
    );
    assert_eq!(req.method(), "POST");
    assert_eq!(req.uri().path(), "/wecom/demo");
    // lambda_http rebuilds the URI from rawQueryString verbatim.
    assert_eq!(
        req.uri().query(),
        Some("msg_signature=ab%2Bc&timestamp=1409659813&x=1&x=2")
    );
    assert_eq!(req.uri().host(), Some(API_HOST));
    assert_eq!(req.body().as_ref(), b"<xml>hi</xml>");
    assert_eq!(ev["queryStringParameters"]["x"], "1,2");
    assert_eq!(ev["queryStringParameters"]["msg_signature"], "ab+c");

    let ev64 = apigw_v2_event("POST", "/wecom/demo", "", Some("<xml>hi</xml>"), true);
    assert_eq!(ev64["isBase64Encoded"], true);
    assert_ne!(ev64["body"], "<xml>hi</xml>");
    let (_, req64) = to_http(&ev64);
    assert_eq!(req64.body().as_ref(), b"<xml>hi</xml>");
    assert_eq!(req64.uri().query(), None);

    let (_, get) = to_http(&apigw_v2_event("GET", "/nope/x", "", None, false));
    assert_eq!(get.method(), "GET");
    assert_eq!(get.uri().path(), "/nope/x");
    assert!(get.body().is_empty());
}

#[test]
fn v1_event_is_what_lambda_http_reads_as_rest_api() {
    let mut ev = apigw_v1_event(
        "POST",
        "/wecom/demo",
        "msg_signature=abc&echostr=a%2Bb%3D",
        Some("<xml/>"),
        true,
    );
    set_header(&mut ev, "Content-Type", "text/xml");
    let (parsed, req) = to_http(&ev);
    assert!(
        matches!(parsed, LambdaRequest::ApiGatewayV1(_)),
        "{parsed:?}"
    );
    assert_eq!(req.method(), "POST");
    // lambda_http puts a non-$default stage in front of the path.
    assert_eq!(req.uri().path(), format!("/{V1_STAGE}/wecom/demo"));
    assert_eq!(req.body().as_ref(), b"<xml/>");
    assert_eq!(req.headers()["content-type"], "text/xml");
    let q = req.uri().query().unwrap();
    assert!(q.contains("msg_signature=abc"), "{q}");
    assert!(q.contains("echostr="), "{q}");
    use lambda_http::RequestExt;
    assert_eq!(req.query_string_parameters().first("echostr"), Some("a+b="));

    // API Gateway REST turns a literal `+` in the query into a space.
    let plus = apigw_v1_event("GET", "/wecom/demo", "echostr=a+b%2Bc", None, false);
    assert_eq!(plus["queryStringParameters"]["echostr"], "a b+c");
    assert_eq!(
        plus["multiValueQueryStringParameters"]["echostr"],
        json!(["a b+c"])
    );
}

#[test]
fn decodes_api_gateway_responses() {
    let v2 = json!({
        "statusCode": 201, "headers": {"Content-Type": "text/plain", "x-a": "1"},
        "multiValueHeaders": {}, "cookies": ["a=1", "b=2"],
        "body": base64_encode(&[0, 159, 255]), "isBase64Encoded": true
    });
    let r = ApiGwResponse::from_value(&v2).unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header_all("set-cookie"), ["a=1", "b=2"]);
    assert_eq!(r.cookies, ["a=1", "b=2"]);
    assert_eq!(r.body, [0, 159, 255]);

    let v1 = json!({"statusCode": 404, "headers": {"x-a": "ignored"},
        "multiValueHeaders": {"x-a": ["1", "2"], "content-type": ["text/plain"]}, "body": "not found", "isBase64Encoded": false});
    let r = ApiGwResponse::from_value(&v1).unwrap();
    assert_eq!((r.status, r.text().as_str()), (404, "not found"));
    assert_eq!(r.header_all("x-a"), ["1", "2"]);

    let empty = ApiGwResponse::from_value(
        &json!({"statusCode": 204, "headers": {}, "isBase64Encoded": false}),
    )
    .unwrap();
    assert!(empty.body.is_empty());

    let bare = ApiGwResponse::from_value(&json!({"ok": true})).unwrap();
    assert_eq!(
        (bare.status, bare.json().unwrap()),
        (200, json!({"ok": true}))
    );

    assert!(ApiGwResponse::from_value(&json!({"statusCode": "x"})).is_err());
    assert!(
        ApiGwResponse::from_value(
            &json!({"statusCode": 200, "body": "@@", "isBase64Encoded": true})
        )
        .is_err()
    );
}

#[test]
fn base64_round_trips() {
    for len in 0..40usize {
        let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        let enc = base64_encode(&data);
        assert_eq!(enc.len() % 4, 0);
        assert_eq!(base64_decode(&enc).unwrap(), data);
        assert_eq!(base64_decode(enc.trim_end_matches('=')).unwrap(), data);
    }
    assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64_encode(b"fo"), "Zm8=");
    assert!(base64_decode("Zm9v!").is_none());
}

/// One HTTP/1.1 request on its own connection; returns status, lowercased headers, body.
/// Gives up (panics) after 10 s, so a long-poll that never returns fails instead of hanging.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let exchange = http_exchange(addr, method, path, headers, body);
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer in 10 s"))
}

async fn http_exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

fn get<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header"))
}

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

#[tokio::test]
async fn serves_the_runtime_api_protocol() {
    let api = RuntimeApi::start_with_timeout(Duration::from_secs(5)).await;
    let addr = api.addr();
    let env = api.env();
    for k in [
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_LOG_GROUP_NAME",
    ] {
        assert!(env.iter().any(|(n, _)| n == k), "{k} missing from env()");
    }

    // The /next long-poll is waiting before the event is queued.
    let poll = tokio::spawn(async move { http(addr, "GET", NEXT, &[], b"").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!poll.is_finished());
    let pending = api.submit(json!({"n": 1}));
    let (status, headers, body) = poll.await.unwrap();
    assert_eq!(status, 200);
    let id = get(&headers, "lambda-runtime-aws-request-id").to_owned();
    assert_eq!(id, pending.request_id);
    let deadline: u128 = get(&headers, "lambda-runtime-deadline-ms").parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(
        deadline > now && deadline <= now + 5_000,
        "{deadline} vs {now}"
    );
    assert_eq!(
        get(&headers, "lambda-runtime-invoked-function-arn"),
        FUNCTION_ARN
    );
    assert!(get(&headers, "lambda-runtime-trace-id").starts_with("Root=1-"));
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"n": 1})
    );
    let (status, _, _) = http(
        addr,
        "POST",
        &format!("/2018-06-01/runtime/invocation/{id}/response"),
        &[],
        br#"{"statusCode":200,"body":"ok"}"#,
    )
    .await;
    assert_eq!(status, 202);
    let inv = pending.wait().await.unwrap();
    assert_eq!(inv.request_id, id);
    assert_eq!(
        inv.outcome,
        Outcome::Response(json!({"statusCode": 200, "body": "ok"}))
    );
    assert_eq!(inv.response().unwrap().text(), "ok");
    assert!(api.first_next_at().is_some() && api.first_answer_at().is_some());

    // An /error answer, queued before the poll this time; events go out in order.
    let p1 = api.submit(json!({"n": 2}));
    let p2 = api.submit(json!({"n": 3}));
    let (_, h1, b1) = http(addr, "GET", NEXT, &[], b"").await;
    assert_eq!(
        serde_json::from_slice::<Value>(&b1).unwrap(),
        json!({"n": 2})
    );
    let id1 = get(&h1, "lambda-runtime-aws-request-id").to_owned();
    let (status, _, _) = http(
        addr,
        "POST",
        &format!("/2018-06-01/runtime/invocation/{id1}/error"),
        &[("lambda-runtime-function-error-type", "unhandled")],
        br#"{"errorType":"&str","errorMessage":"boom"}"#,
    )
    .await;
    assert_eq!(status, 202);
    let inv = p1.wait().await.unwrap();
    assert_eq!(
        inv.outcome,
        Outcome::Error {
            error_type: Some("unhandled".into()),
            body: json!({"errorType": "&str", "errorMessage": "boom"})
        }
    );
    assert!(matches!(
        inv.response(),
        Err(HarnessError::FunctionError { .. })
    ));

    // A body that is not JSON is a protocol error for that invoke.
    let (_, h2, _) = http(addr, "GET", NEXT, &[], b"").await;
    let id2 = get(&h2, "lambda-runtime-aws-request-id").to_owned();
    http(
        addr,
        "POST",
        &format!("/2018-06-01/runtime/invocation/{id2}/response"),
        &[],
        b"not json",
    )
    .await;
    assert!(matches!(p2.wait().await, Err(HarnessError::Protocol(_))));

    // Unknown request ids and routes are refused and recorded, never a panic.
    let (status, _, _) = http(
        addr,
        "POST",
        "/2018-06-01/runtime/invocation/nope/response",
        &[],
        b"{}",
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, _) = http(addr, "GET", "/2018-06-01/runtime/restore/next", &[], b"").await;
    assert_eq!(status, 404);
    assert_eq!(api.surprises().len(), 2, "{:?}", api.surprises());
    assert_eq!(api.next_polls(), 3);

    // A streamed response is folded into a buffered-looking one.
    let p3 = api.submit(json!({"n": 4}));
    let (_, h3, _) = http(addr, "GET", NEXT, &[], b"").await;
    let id3 = get(&h3, "lambda-runtime-aws-request-id").to_owned();
    let mut streamed =
        br#"{"statusCode":418,"headers":{"content-type":"text/plain"},"cookies":[]}"#.to_vec();
    streamed.extend_from_slice(&[0; 8]);
    streamed.extend_from_slice(b"teapot");
    http(
        addr,
        "POST",
        &format!("/2018-06-01/runtime/invocation/{id3}/response"),
        &[("lambda-runtime-function-response-mode", "streaming")],
        &streamed,
    )
    .await;
    let r = p3.wait().await.unwrap().response().unwrap();
    assert_eq!(
        (r.status, r.text().as_str(), r.header("content-type")),
        (418, "teapot", Some("text/plain"))
    );

    // /init/error fails what is pending.
    let p4 = api.submit(json!({"n": 5}));
    http(
        addr,
        "POST",
        "/2018-06-01/runtime/init/error",
        &[("lambda-runtime-function-error-type", "Runtime.InitError")],
        br#"{"errorMessage":"no config"}"#,
    )
    .await;
    assert!(matches!(p4.wait().await, Err(HarnessError::InitError(_))));
}

#[tokio::test]
async fn times_out_and_says_where() {
    let api = RuntimeApi::start_with_timeout(Duration::from_millis(500)).await;
    match api.invoke(json!({})).await {
        Err(HarnessError::Timeout {
            handed_out: false, ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // The withdrawn event is skipped: the next poll gets the next live one.
    let addr = api.addr();
    let pending = api.submit(json!({"live": true}));
    let (_, _, body) = http(addr, "GET", NEXT, &[], b"").await;
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"live": true})
    );
    match pending.wait().await {
        Err(
            e @ HarnessError::Timeout {
                handed_out: true, ..
            },
        ) => assert!(e.to_string().contains("posted no /response")),
        other => panic!("{other:?}"),
    }
}

/// The real binary as a Lambda function: an unknown route is a 404, cold and warm.
/// Needs the Lambda adapter in src/main.rs.
#[tokio::test]
async fn wxgate_lambda_answers_unknown_route_with_404() {
    let mut f = FunctionProcess::spawn(
        env!("CARGO_BIN_EXE_wxgate"),
        WXGATE_ARGS,
        &[("WXGATE_CONFIG", &wxgate_config())],
    )
    .await
    .unwrap();
    let pid = f.pid();
    for round in 0..3 {
        let inv = f
            .invoke(apigw_v2_event("GET", "/nope/x", "", None, false))
            .await
            .unwrap();
        let r = inv.response().unwrap();
        assert_eq!(r.status, 404, "round {round}: {r:?}");
        eprintln!("invoke {round}: {:?} inside the function", inv.elapsed);
    }
    assert!(f.is_running(), "the process must stay up between invokes");
    assert_eq!(f.pid(), pid);
    // The fourth long-poll follows the third answer; give it a moment to arrive.
    for _ in 0..200 {
        if f.api().next_polls() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        f.api().next_polls(),
        4,
        "three events, then a fourth long-poll"
    );
    assert!(f.api().surprises().is_empty(), "{:?}", f.api().surprises());
    let cold = f.cold_start();
    let stopped = f.stop();
    eprintln!(
        "cold start: {cold:?}; peak RSS {:?} KiB",
        stopped.peak_rss_kib
    );
}
