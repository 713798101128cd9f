//! The AWS Lambda adapter. One function takes two kinds of event, told apart by shape:
//!
//! * API Gateway events (HTTP API payload v2, REST API v1): a callback, answered with an API
//!   Gateway response through `lambda_http`'s own conversions;
//! * DynamoDB stream batches from the gateway's table: reply jobs, run by the worker
//!   ([`stream`]), answered with the batch's failed items.
//!
//! lambda_http keeps API Gateway v2's `rawQueryString` as the URI's query, so the gateway
//! percent-decodes the query itself and `+` in `echostr` survives. For REST v1 events, which
//! only carry decoded parameters, lambda_http re-encodes them; a `+` that API Gateway turned
//! into a space is mapped back by the gateway.

pub mod stream;

use std::sync::Arc;

use http::header::{ALLOW, CONTENT_TYPE};
use lambda_http::request::LambdaRequest;
use lambda_http::tower::Service;
use lambda_http::{Body, LambdaEvent, Request, RequestExt, Response, service_fn};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::bot::Bot;
use crate::gateway::{CallbackRequest, CallbackResponse, Gateway};

/// Runs the Lambda runtime loop until the runtime stops it. After each event, what it
/// changed in the metrics is printed as CloudWatch EMF lines (docs/metrics.md).
///
/// # Errors
/// The runtime API is unreachable or answered something unexpected.
pub async fn run<B: Bot>(gateway: Arc<Gateway<B>>) -> Result<(), lambda_http::Error> {
    crate::metrics::global().track_changes();
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let gateway = Arc::clone(&gateway);
        async move {
            let answer = dispatch(gateway, event).await;
            print_metrics();
            answer
        }
    }))
    .await
}

/// Prints the EMF lines of what changed since the last call to stdout, beside the JSON log
/// lines: CloudWatch Logs extracts the metrics from them, with no API call. Nothing when
/// nothing changed; a write error (stdout gone) loses the figures, never the answer.
pub fn print_metrics() {
    use std::io::Write as _;
    let lines = crate::metrics::emf::take_lines();
    if lines.is_empty() {
        return;
    }
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

/// What the function answers: an API Gateway response (lambda_http's type, whatever it is
/// named) or a stream batch's failed items.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Answer<H> {
    /// To an API Gateway event.
    Http(H),
    /// To a DynamoDB stream batch.
    Batch(stream::BatchResponse),
}

/// Just enough of an event to tell a stream batch: only those have `Records`. Skipping the
/// rest costs a scan of the JSON and no allocation, where building a `serde_json::Value`
/// of every callback would allocate the whole event (docs/benchmarks.md has the cost).
#[derive(Deserialize)]
struct Shape {
    #[serde(rename = "Records")]
    records: Option<IgnoredAny>,
}

/// Whether an event's JSON has `Records`, as stream batches do and API Gateway events
/// never do.
///
/// # Errors
/// The text is not a JSON object.
pub fn is_stream_batch(json: &str) -> Result<bool, serde_json::Error> {
    Ok(serde_json::from_str::<Shape>(json)?.records.is_some())
}

/// Answers one event of either kind. An event of neither kind is an invocation error.
///
/// # Errors
/// The event is neither a DynamoDB stream batch nor an API Gateway request.
pub async fn dispatch<B: Bot>(
    gateway: Arc<Gateway<B>>,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Answer<impl Serialize>, lambda_http::Error> {
    let LambdaEvent { payload, context } = event;
    let json = payload.get();
    if is_stream_batch(json)? {
        let value: Value = serde_json::from_str(json)?;
        let Some(batch) = stream::Batch::from_event(&value) else {
            tracing::error!("an event with Records that are not from DynamoDB");
            return Err("an event with Records that are not from DynamoDB".into());
        };
        let deadline = (context.deadline > 0).then_some(context.deadline);
        return Ok(Answer::Batch(
            stream::run_batch(&gateway, batch, deadline).await,
        ));
    }
    let request: LambdaRequest = serde_json::from_str(json).map_err(|e| {
        tracing::error!(cause = %e, "an event that is neither an API Gateway request nor a DynamoDB stream batch");
        e
    })?;
    // lambda_http's adapter, the one its `run` uses: the same request and response
    // conversions (v1/v2, base64 bodies, stage paths) as before this function took streams.
    let mut adapter = lambda_http::Adapter::from(service_fn(|request: Request| {
        let gateway = &gateway;
        async move { Ok::<_, std::convert::Infallible>(handle(gateway, request).await) }
    }));
    let response = adapter
        .call(LambdaEvent::new(request, context))
        .await
        .map_err(|e| match e {})?;
    Ok(Answer::Http(response))
}

/// Answers one API Gateway request.
pub async fn handle<B: Bot>(gateway: &Gateway<B>, request: Request) -> Response<Body> {
    // The path without the stage prefix that REST APIs add to the URI.
    let raw_path = request.raw_http_path().to_owned();
    let path = if raw_path.is_empty() {
        request.uri().path()
    } else {
        &raw_path
    };
    let body: &[u8] = match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    let response = gateway
        .handle(CallbackRequest {
            method: request.method(),
            path,
            query: request.uri().query(),
            body,
        })
        .await;
    to_lambda(response)
}

fn to_lambda(response: CallbackResponse) -> Response<Body> {
    let mut builder = Response::builder()
        .status(response.status)
        .header(CONTENT_TYPE, response.content_type);
    if let Some(allow) = response.allow {
        builder = builder.header(ALLOW, allow);
    }
    // Every answer is text (XML, echostr, `success`, a reason); Text keeps it out of base64.
    let body = match String::from_utf8(response.body.to_vec()) {
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    };
    builder
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::Empty))
}
