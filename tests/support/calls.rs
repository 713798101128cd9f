//! Delivering a signed request the way the platform does and judging the answer the way it
//! would: through a gateway in process, or as the API Gateway event a Lambda function gets.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use wxgate::bot::Bot;
use wxgate::clock::now_ms;
use wxgate::gateway::Gateway;
use wxgate::message::{Callback, Content};
use wxgate::simulate::{Answer, PlatformSim, SignedRequest};
use wxgate::store::JobStore;

use super::runtime_api::{ApiGwResponse, FunctionProcess, apigw_v2_event};

/// `request` through `gateway` in process: the status and the body.
pub async fn handle<B: Bot>(gateway: &Gateway<B>, request: &SignedRequest) -> (u16, String) {
    let response = gateway.handle(request.to_callback()).await;
    (
        response.status.as_u16(),
        String::from_utf8(response.body.to_vec()).unwrap(),
    )
}

/// `request` through `gateway`: the platform's verdict on the answer, and how long it took
/// (on tokio's clock, so exact when time is paused). Panics unless the platform would take
/// the answer.
pub async fn timed_answer<B: Bot>(
    gateway: &Gateway<B>,
    sim: &PlatformSim,
    request: &SignedRequest,
) -> (Answer, Duration) {
    let started = Instant::now();
    let (status, body) = handle(gateway, request).await;
    let took = started.elapsed();
    let answer = sim
        .check(request, status, &body)
        .unwrap_or_else(|e| panic!("the platform refuses the answer: {e}"));
    (answer, took)
}

/// As [`timed_answer`], in a task of its own (the callback may wait for a worker the test
/// runs meanwhile).
pub fn spawn_answer(
    gateway: &Arc<Gateway>,
    sim: &Arc<PlatformSim>,
    request: SignedRequest,
) -> tokio::task::JoinHandle<(Answer, Duration)> {
    let gateway = Arc::clone(gateway);
    let sim = Arc::clone(sim);
    tokio::spawn(async move { timed_answer(&gateway, &sim, &request).await })
}

/// Waits (at most 3 s) until `key` is claimed with its reply job in `store`: when the stream
/// would hand the job to a worker.
pub async fn pending_job(store: &impl JobStore, key: &str) {
    let until = Instant::now() + Duration::from_secs(3);
    while store.job(key, now_ms()).await.unwrap().is_none() {
        assert!(Instant::now() < until, "no job was claimed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The reply to a POST: the decrypted XML, or `None` for the empty answer.
pub fn reply_of(answer: Answer) -> Option<String> {
    match answer {
        Answer::Reply(xml) => Some(xml),
        Answer::Empty => None,
        Answer::Verified(_) => panic!("a POST answered like a URL verification"),
    }
}

/// The content of a passive text reply.
pub fn text_of(answer: Answer) -> String {
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

/// The API Gateway HTTP API (v2) event that carries `request`, its body (if any) as text.
pub fn v2_event(request: &SignedRequest) -> Value {
    let body = (!request.body.is_empty()).then_some(request.body.as_str());
    apigw_v2_event(
        request.method.as_str(),
        &request.path,
        &request.query,
        body,
        false,
    )
}

/// `request` through a Lambda function, as an HTTP API event: its response. Panics unless
/// the function answers the event.
pub async fn lambda_response(
    function: &mut FunctionProcess,
    request: &SignedRequest,
) -> ApiGwResponse {
    let invocation = function.invoke(v2_event(request)).await.unwrap();
    invocation.response().unwrap()
}

/// `request` through a Lambda function: the platform's verdict on its answer. Panics,
/// with the function's last log lines, unless the platform would take it.
pub async fn lambda_answer(
    function: &mut FunctionProcess,
    sim: &PlatformSim,
    request: &SignedRequest,
) -> Answer {
    let response = lambda_response(function, request).await;
    let body = response.text();
    sim.check(request, response.status, &body)
        .unwrap_or_else(|e| panic!("{e}: {body}\n{}", function.log_tail(4000)))
}
