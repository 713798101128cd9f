//! An HTTP proxy in front of a DynamoDB-compatible server that answers chosen requests late:
//! the request reaches the server and takes effect, and only its answer is held back past
//! the client's attempt timeout. That is the fault the AWS SDK turns into a retry of a write
//! that already landed, which then fails its own condition.
//!
//! Every other request passes untouched. A rule names the operation (`x-amz-target`'s
//! `PutItem`, `UpdateItem`, …) and, optionally, text its JSON body must contain (an
//! attribute value such as `"sending"`); it fires for the next `times` matching requests.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::loopback::{LoopbackServer, lock};

/// Which requests to answer late, and by how much.
#[derive(Debug, Clone)]
pub struct LateRule {
    /// The operation, e.g. `PutItem`.
    pub operation: &'static str,
    /// Text the request body must contain, if any.
    pub body_contains: Option<String>,
    /// How long the answer is held back.
    pub delay: Duration,
    /// How many matching requests it applies to.
    pub times: usize,
}

impl LateRule {
    /// The next request of `operation`, answered `delay` late.
    pub fn next(operation: &'static str, delay: Duration) -> Self {
        Self {
            operation,
            body_contains: None,
            delay,
            times: 1,
        }
    }

    /// Only requests whose body contains `text`.
    pub fn containing(mut self, text: &str) -> Self {
        self.body_contains = Some(text.to_owned());
        self
    }
}

/// One request seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The operation.
    pub operation: String,
    /// Whether its answer was held back.
    pub late: bool,
}

#[derive(Default)]
struct State {
    rules: Vec<LateRule>,
    seen: Vec<Seen>,
}

/// The running proxy; stopped on drop.
pub struct LateAnswerProxy {
    server: LoopbackServer,
    state: Arc<Mutex<State>>,
}

impl LateAnswerProxy {
    /// Proxies to the server at `upstream` (`127.0.0.1:port`).
    pub fn start(upstream: SocketAddr) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("proxy client");
        let target = format!("http://{upstream}");
        let shared = Arc::clone(&state);
        let server = LoopbackServer::start("late-answer-proxy", move |stream| {
            let state = Arc::clone(&shared);
            let client = client.clone();
            let target = target.clone();
            async move {
                let service = service_fn(move |request| {
                    let state = Arc::clone(&state);
                    let client = client.clone();
                    let target = target.clone();
                    async move { Ok::<_, Infallible>(relay(&state, &client, &target, request).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        });
        Self { server, state }
    }

    /// `http://127.0.0.1:port`, for the SDK's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Adds a rule.
    pub fn answer_late(&self, rule: LateRule) {
        lock(&self.state).rules.push(rule);
    }

    /// Every request seen, in order.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }

    /// How many answers were held back.
    pub fn late_answers(&self) -> usize {
        lock(&self.state).seen.iter().filter(|s| s.late).count()
    }

    /// How many requests of `operation` were seen.
    pub fn count(&self, operation: &str) -> usize {
        lock(&self.state)
            .seen
            .iter()
            .filter(|s| s.operation == operation)
            .count()
    }

    /// Rules not used up yet.
    pub fn armed(&self) -> usize {
        lock(&self.state).rules.iter().map(|r| r.times).sum()
    }
}

async fn relay(
    state: &Mutex<State>,
    client: &reqwest::Client,
    target: &str,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or_default()
        .to_owned();
    let delay = {
        let mut state = lock(state);
        let text = String::from_utf8_lossy(&body);
        let rule = state.rules.iter_mut().find(|r| {
            r.times > 0
                && r.operation == operation
                && r.body_contains.as_deref().is_none_or(|t| text.contains(t))
        });
        let delay = rule.map(|r| {
            r.times -= 1;
            r.delay
        });
        state.seen.push(Seen {
            operation,
            late: delay.is_some(),
        });
        delay
    };
    let mut forward = client.request(parts.method.clone(), format!("{target}{}", parts.uri));
    for (name, value) in &parts.headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            forward = forward.header(name, value);
        }
    }
    let answer = match forward.body(body).send().await {
        Ok(answer) => answer,
        Err(_) => {
            return Response::builder()
                .status(502)
                .body(Full::new(Bytes::new()))
                .unwrap();
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    if let Some(delay) = delay {
        // The write has taken effect on the server; only its answer is late.
        tokio::time::sleep(delay).await;
    }
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if !matches!(
            name.as_str(),
            "content-length" | "connection" | "transfer-encoding"
        ) {
            response = response.header(name, value);
        }
    }
    response.body(Full::new(bytes)).unwrap()
}
