//! The AWS Lambda adapter: API Gateway events (HTTP API payload v2, REST API v1) in,
//! API Gateway responses out, through `lambda_http`.
//!
//! lambda_http keeps API Gateway v2's `rawQueryString` as the URI's query, so the gateway
//! percent-decodes the query itself and `+` in `echostr` survives. For REST v1 events, which
//! only carry decoded parameters, lambda_http re-encodes them; a `+` that API Gateway turned
//! into a space is mapped back by the gateway.

use std::sync::Arc;

use http::header::{ALLOW, CONTENT_TYPE};
use lambda_http::{Body, Request, RequestExt, Response, service_fn};

use crate::bot::Bot;
use crate::gateway::{CallbackRequest, CallbackResponse, Gateway};

/// Runs the Lambda runtime loop until the runtime stops it.
///
/// # Errors
/// The runtime API is unreachable or answered something unexpected.
pub async fn run<B: Bot>(gateway: Arc<Gateway<B>>) -> Result<(), lambda_http::Error> {
    lambda_http::run(service_fn(move |request: Request| {
        let gateway = Arc::clone(&gateway);
        async move { Ok::<_, std::convert::Infallible>(handle(&gateway, request).await) }
    }))
    .await
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
