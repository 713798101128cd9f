//! A fake AWS Lambda Runtime API on loopback, for driving a Lambda function binary the way
//! `provided.al2023` does: the process long-polls `GET /2018-06-01/runtime/invocation/next`,
//! answers on `POST .../invocation/{id}/response` or `.../invocation/{id}/error`.
//!
//! Include it with `mod support;` (tests/support/mod.rs) or, from a bench,
//! `#[path = "../tests/support/runtime_api.rs"] mod runtime_api;`.
//!
//! * [`RuntimeApi`] is the server: [`RuntimeApi::invoke`] queues an event and waits for the
//!   function's answer. It never panics on what the function sends; surprises come back to the
//!   waiting `invoke` as [`HarnessError`].
//! * [`FunctionProcess`] spawns a function binary against its own `RuntimeApi` with a clean
//!   Lambda-like environment, logs to a file, notices if the process dies, reads its peak RSS,
//!   and kills it on drop (printing its log if the test is panicking).
//! * [`apigw_v2_event`] / [`apigw_v1_event`] build API Gateway events, and
//!   [`ApiGwResponse::from_value`] decodes what `lambda_http` answers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

/// How long [`RuntimeApi::invoke`] waits for an answer unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const FUNCTION_NAME: &str = "wxgate-test";
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:wxgate-test";
pub const MEMORY_MB: u32 = 128;

// ------------------------------------------------------------------------------------------
// Errors and results
// ------------------------------------------------------------------------------------------

/// Everything that can go wrong while driving a function. `Debug` prints like `Display`, so
/// `.unwrap()` in a test shows a readable message (with the function's log tail if it died).
pub enum HarnessError {
    /// No answer in time. `handed_out` tells whether the function ever took the event from
    /// `/next`; `surprises` lists unexpected requests the server saw meanwhile.
    Timeout {
        request_id: String,
        waited: Duration,
        handed_out: bool,
        surprises: Vec<String>,
    },
    /// The function process exited (or could not be waited on) while an invoke was pending.
    ProcessExited { status: String, log_tail: String },
    /// The function posted to `/runtime/init/error`.
    InitError(Value),
    /// The function broke the Runtime API protocol (bad body, unknown request id, ...).
    Protocol(String),
    /// The function answered on `/error` where a response was expected ([`Invocation::response`]).
    FunctionError {
        error_type: Option<String>,
        body: Value,
    },
    /// An API Gateway response object that could not be decoded.
    BadResponse(String),
    /// Spawning or talking to the process failed.
    Io(String),
    /// The server task is gone (the `RuntimeApi` was dropped or its runtime shut down).
    ServerGone,
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::Timeout {
                request_id,
                waited,
                handed_out,
                surprises,
            } => {
                let stage = if *handed_out {
                    "the function took the event from /next but posted no /response or /error"
                } else {
                    "the function never took the event from /next"
                };
                write!(
                    f,
                    "invocation {request_id} timed out after {waited:?}: {stage}"
                )?;
                if !surprises.is_empty() {
                    write!(f, "; protocol surprises: {surprises:?}")?;
                }
                Ok(())
            }
            HarnessError::ProcessExited { status, log_tail } => {
                write!(
                    f,
                    "function process exited ({status}); log tail:\n{log_tail}"
                )
            }
            HarnessError::InitError(v) => write!(f, "function posted /runtime/init/error: {v}"),
            HarnessError::Protocol(m) => write!(f, "runtime API protocol error: {m}"),
            HarnessError::FunctionError { error_type, body } => {
                write!(f, "function posted /error (type {error_type:?}): {body}")
            }
            HarnessError::BadResponse(m) => write!(f, "bad API Gateway response: {m}"),
            HarnessError::Io(m) => write!(f, "I/O: {m}"),
            HarnessError::ServerGone => write!(f, "the fake runtime API server is gone"),
        }
    }
}

impl fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for HarnessError {}

/// What the function answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `POST /invocation/{id}/response`, body parsed as JSON. A streamed response
    /// (`Lambda-Runtime-Function-Response-Mode: streaming`) is folded into the same shape as a
    /// buffered API Gateway v2 response, with the body base64-encoded and `"streamed": true`.
    Response(Value),
    /// `POST /invocation/{id}/error`: the `Lambda-Runtime-Function-Error-Type` header and the
    /// body (`{"errorType", "errorMessage"}` from lambda_runtime; a JSON string if not JSON).
    Error {
        error_type: Option<String>,
        body: Value,
    },
}

/// One completed invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub outcome: Outcome,
    /// From the event being handed out on `/next` to the answer arriving: the function's
    /// handling time plus loopback HTTP (what Lambda bills as duration).
    pub elapsed: Duration,
    /// When the event was queued by `invoke`/`submit`.
    pub queued_at: Instant,
    /// When `/next` handed the event out.
    pub handed_out_at: Instant,
    /// When `/response` or `/error` arrived.
    pub completed_at: Instant,
}

impl Invocation {
    /// Decode the outcome as an API Gateway proxy response; an `/error` outcome is an error.
    pub fn response(&self) -> Result<ApiGwResponse, HarnessError> {
        match &self.outcome {
            Outcome::Response(v) => ApiGwResponse::from_value(v),
            Outcome::Error { error_type, body } => Err(HarnessError::FunctionError {
                error_type: error_type.clone(),
                body: body.clone(),
            }),
        }
    }
}

// ------------------------------------------------------------------------------------------
// The server
// ------------------------------------------------------------------------------------------

struct Queued {
    request_id: String,
    event: Value,
}

struct Waiter {
    tx: oneshot::Sender<Result<Invocation, HarnessError>>,
    queued_at: Instant,
    handed_out_at: Option<Instant>,
}

struct Shared {
    timeout: Duration,
    waiters: Mutex<HashMap<String, Waiter>>,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    first_next_at: OnceLock<Instant>,
    first_answer_at: OnceLock<Instant>,
    next_polls: AtomicU64,
    surprises: Mutex<Vec<String>>,
    init_errors: Mutex<Vec<Value>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn surprise(&self, what: String) {
        lock(&self.surprises).push(what);
    }

    /// Fail every pending invocation (used when the protocol state is no longer trustworthy).
    fn fail_all(&self, make: impl Fn() -> HarnessError) {
        for (_, w) in lock(&self.waiters).drain() {
            let _ = w.tx.send(Err(make()));
        }
    }

    fn complete(&self, request_id: &str, outcome: Result<Outcome, HarnessError>) -> bool {
        let now = Instant::now();
        let Some(w) = lock(&self.waiters).remove(request_id) else {
            return false;
        };
        let _ = self.first_answer_at.set(now);
        let result = outcome.and_then(|outcome| match w.handed_out_at {
            Some(handed_out_at) => Ok(Invocation {
                request_id: request_id.to_owned(),
                outcome,
                elapsed: now - handed_out_at,
                queued_at: w.queued_at,
                handed_out_at,
                completed_at: now,
            }),
            None => Err(HarnessError::Protocol(format!(
                "answer for {request_id} arrived before /next handed it out"
            ))),
        });
        let _ = w.tx.send(result);
        true
    }
}

/// The fake Runtime API: an HTTP/1.1 server on `127.0.0.1:0` running on a tokio task of the
/// current runtime. Dropping it stops the server and closes every connection.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    queue_tx: mpsc::UnboundedSender<Queued>,
    server: JoinHandle<()>,
    counter: AtomicU64,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Start with [`DEFAULT_TIMEOUT`] per invocation. Panics if loopback cannot be bound.
    pub async fn start() -> RuntimeApi {
        Self::start_with_timeout(DEFAULT_TIMEOUT).await
    }

    /// `timeout` bounds each `invoke` (from queueing to answer) and sets the deadline header.
    pub async fn start_with_timeout(timeout: Duration) -> RuntimeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            timeout,
            waiters: Mutex::new(HashMap::new()),
            queue: tokio::sync::Mutex::new(queue_rx),
            first_next_at: OnceLock::new(),
            first_answer_at: OnceLock::new(),
            next_polls: AtomicU64::new(0),
            surprises: Mutex::new(Vec::new()),
            init_errors: Mutex::new(Vec::new()),
        });
        let server = tokio::spawn(serve(listener, shared.clone()));
        RuntimeApi {
            addr,
            shared,
            queue_tx,
            server,
            counter: AtomicU64::new(0),
        }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every environment variable a function process needs (and a few more Lambda sets).
    /// lambda_runtime 1.5 panics at start without `AWS_LAMBDA_RUNTIME_API`,
    /// `AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (must parse as i32) and
    /// `AWS_LAMBDA_FUNCTION_VERSION`; the log group/stream names default to "" if missing.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.addr.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME.into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", MEMORY_MB.to_string()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{FUNCTION_NAME}"),
            ),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2025/01/01/[$LATEST]0123456789abcdef0123456789abcdef".into(),
            ),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("LAMBDA_TASK_ROOT", "/var/task".into()),
            ("LAMBDA_RUNTIME_DIR", "/var/runtime".into()),
            ("_HANDLER", "bootstrap".into()),
            ("TZ", ":UTC".into()),
            ("LANG", "en_US.UTF-8".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Queue `event` and wait for the function's answer (bounded by the timeout).
    pub async fn invoke(&self, event: Value) -> Result<Invocation, HarnessError> {
        self.submit(event).wait().await
    }

    /// Queue `event` without waiting. Queue the first event right after spawning a process
    /// (before it polls) to measure a true cold start.
    pub fn submit(&self, event: Value) -> PendingInvocation {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("{:08x}-0000-4000-8000-{:012x}", self.addr.port(), n);
        let (tx, rx) = oneshot::channel();
        let queued_at = Instant::now();
        lock(&self.shared.waiters).insert(
            request_id.clone(),
            Waiter {
                tx,
                queued_at,
                handed_out_at: None,
            },
        );
        // The receiver lives in `shared`, which we hold, so this cannot fail.
        let _ = self.queue_tx.send(Queued {
            request_id: request_id.clone(),
            event,
        });
        PendingInvocation {
            request_id,
            rx,
            shared: self.shared.clone(),
            queued_at,
        }
    }

    /// When the first `GET /next` arrived (the function finished initialising).
    pub fn first_next_at(&self) -> Option<Instant> {
        self.shared.first_next_at.get().copied()
    }

    /// When the first `/response` or `/error` arrived.
    pub fn first_answer_at(&self) -> Option<Instant> {
        self.shared.first_answer_at.get().copied()
    }

    /// How many `GET /next` requests have arrived (including one now long-polling).
    pub fn next_polls(&self) -> u64 {
        self.shared.next_polls.load(Ordering::Relaxed)
    }

    /// Unexpected requests seen so far (unknown paths, unknown request ids, ...).
    pub fn surprises(&self) -> Vec<String> {
        lock(&self.shared.surprises).clone()
    }

    /// Bodies posted to `/runtime/init/error`.
    pub fn init_errors(&self) -> Vec<Value> {
        lock(&self.shared.init_errors).clone()
    }
}

/// An event that has been queued; `wait` for its answer.
pub struct PendingInvocation {
    pub request_id: String,
    rx: oneshot::Receiver<Result<Invocation, HarnessError>>,
    shared: Arc<Shared>,
    queued_at: Instant,
}

impl PendingInvocation {
    pub async fn wait(mut self) -> Result<Invocation, HarnessError> {
        let remaining = self.shared.timeout.saturating_sub(self.queued_at.elapsed());
        match tokio::time::timeout(remaining, &mut self.rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(HarnessError::ServerGone),
            Err(_) => {
                // Withdraw the event: if /next has not handed it out yet, it will be skipped.
                let waiter = lock(&self.shared.waiters).remove(&self.request_id);
                match waiter {
                    Some(w) => Err(HarnessError::Timeout {
                        request_id: self.request_id.clone(),
                        waited: self.queued_at.elapsed(),
                        handed_out: w.handed_out_at.is_some(),
                        surprises: lock(&self.shared.surprises).clone(),
                    }),
                    // Completed in the race between the timeout and the lock.
                    None => match self.rx.try_recv() {
                        Ok(result) => result,
                        Err(_) => Err(HarnessError::ServerGone),
                    },
                }
            }
        }
    }
}

async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    // Connection tasks live in this set, so aborting the server task closes them all.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    conns.spawn(async move {
                        let svc = hyper::service::service_fn(move |req| {
                            let shared = shared.clone();
                            async move { Ok::<_, Infallible>(route(&shared, req).await) }
                        });
                        // Errors here are the client going away; the function notices on its side.
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
                Err(e) => {
                    shared.surprise(format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(Bytes::from(body.to_string())));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    rsp
}

fn accepted() -> Response<Full<Bytes>> {
    reply(StatusCode::ACCEPTED, json!({"status": "OK"}))
}

async fn route(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let segments: Vec<&str> = match path.strip_prefix("/2018-06-01/runtime/") {
        Some(rest) => rest.split('/').collect(),
        None => Vec::new(),
    };
    match (&method, segments.as_slice()) {
        (&Method::GET, ["invocation", "next"]) => next(shared).await,
        (&Method::POST, ["invocation", id, kind @ ("response" | "error")]) => {
            let id = (*id).to_owned();
            let is_error = *kind == "error";
            let headers = req.headers().clone();
            let (body, trailers) = match req.into_body().collect().await {
                Ok(c) => {
                    let trailers = c.trailers().cloned();
                    (c.to_bytes(), trailers)
                }
                Err(e) => {
                    shared.complete(
                        &id,
                        Err(HarnessError::Protocol(format!(
                            "reading body of {path}: {e}"
                        ))),
                    );
                    return reply(
                        StatusCode::BAD_REQUEST,
                        json!({"errorMessage": "unreadable body"}),
                    );
                }
            };
            let outcome = if is_error {
                Ok(error_outcome(&headers, &body))
            } else {
                response_outcome(&headers, &body, trailers.as_ref())
            };
            if shared.complete(&id, outcome) {
                accepted()
            } else {
                shared.surprise(format!(
                    "{method} {path}: unknown or already answered request id"
                ));
                reply(
                    StatusCode::BAD_REQUEST,
                    json!({"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}),
                )
            }
        }
        (&Method::POST, ["init", "error"]) => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let v = serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
            lock(&shared.init_errors).push(v.clone());
            shared.fail_all(|| HarnessError::InitError(v.clone()));
            accepted()
        }
        _ => {
            shared.surprise(format!("unexpected request {method} {path}"));
            reply(
                StatusCode::NOT_FOUND,
                json!({"errorMessage": "no such runtime API route"}),
            )
        }
    }
}

/// Long-poll: wait for the next queued event whose invoke is still waiting, hand it out.
/// Never answers non-200 while the server lives: lambda_runtime panics on a /next response
/// without `lambda-runtime-aws-request-id` / `lambda-runtime-deadline-ms`.
async fn next(shared: &Arc<Shared>) -> Response<Full<Bytes>> {
    let _ = shared.first_next_at.set(Instant::now());
    shared.next_polls.fetch_add(1, Ordering::Relaxed);
    let mut queue = shared.queue.lock().await;
    loop {
        let Some(q) = queue.recv().await else {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"errorMessage": "shutting down"}),
            );
        };
        {
            let mut waiters = lock(&shared.waiters);
            match waiters.get_mut(&q.request_id) {
                Some(w) => w.handed_out_at = Some(Instant::now()),
                None => continue, // the invoke gave up before the function asked
            }
        }
        let deadline = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(shared.timeout)
            .as_millis();
        let epoch_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let tail = q.request_id.rsplit('-').next().unwrap_or("000000000000"); // 12 hex digits
        let trace = format!("Root=1-{epoch_s:08x}-000000000000{tail};Parent=0000{tail};Sampled=0");
        let body = serde_json::to_vec(&q.event).unwrap_or_default();
        let built = Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", q.request_id.as_str())
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header("lambda-runtime-invoked-function-arn", FUNCTION_ARN)
            .header("lambda-runtime-trace-id", trace)
            .body(Full::new(Bytes::from(body)));
        return match built {
            Ok(rsp) => rsp,
            Err(e) => {
                shared.complete(
                    &q.request_id,
                    Err(HarnessError::Protocol(format!("building /next reply: {e}"))),
                );
                continue;
            }
        };
    }
}

fn error_outcome(headers: &HeaderMap, body: &[u8]) -> Outcome {
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    Outcome::Error { error_type, body }
}

fn response_outcome(
    headers: &HeaderMap,
    body: &[u8],
    trailers: Option<&HeaderMap>,
) -> Result<Outcome, HarnessError> {
    let streaming = headers
        .get("lambda-runtime-function-response-mode")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"streaming"));
    if !streaming {
        return serde_json::from_slice(body)
            .map(Outcome::Response)
            .map_err(|e| {
                HarnessError::Protocol(format!(
                    "/response body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ))
            });
    }
    // Streaming: metadata prelude JSON, 8 NUL bytes, then the raw body; errors in trailers.
    if let Some(t) = trailers.and_then(|t| t.get("lambda-runtime-function-error-type")) {
        let error_type = Some(String::from_utf8_lossy(t.as_bytes()).into_owned());
        let msg = trailers
            .and_then(|t| t.get("lambda-runtime-function-error-body"))
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        return Ok(Outcome::Error {
            error_type,
            body: Value::String(msg),
        });
    }
    let split = body.windows(8).position(|w| w == [0u8; 8]).ok_or_else(|| {
        HarnessError::Protocol("streamed /response without the 8-NUL prelude delimiter".into())
    })?;
    let prelude: Value = serde_json::from_slice(&body[..split]).map_err(|e| {
        HarnessError::Protocol(format!("streamed /response prelude is not JSON: {e}"))
    })?;
    let mut v = match prelude {
        Value::Object(m) => m,
        other => {
            return Err(HarnessError::Protocol(format!(
                "streamed prelude is not an object: {other}"
            )));
        }
    };
    v.insert(
        "body".into(),
        Value::String(base64_encode(&body[split + 8..])),
    );
    v.insert("isBase64Encoded".into(), Value::Bool(true));
    v.insert("streamed".into(), Value::Bool(true));
    Ok(Outcome::Response(Value::Object(v)))
}

// ------------------------------------------------------------------------------------------
// A function process
// ------------------------------------------------------------------------------------------

/// Cold-start timings of a [`FunctionProcess`], measured from just before `spawn`.
#[derive(Debug, Clone, Copy)]
pub struct ColdStart {
    /// Process start → first `GET /next` (init done, ready for events).
    pub to_first_next: Option<Duration>,
    /// Process start → first `/response` or `/error`. This is the client-visible cold start
    /// only if an event was already queued when the process first polled.
    pub to_first_answer: Option<Duration>,
}

/// What [`FunctionProcess::stop`] found.
#[derive(Debug)]
pub struct Stopped {
    /// `VmHWM` from /proc/<pid>/status just before the kill, in KiB.
    pub peak_rss_kib: Option<u64>,
    /// `Some` if the process had already exited on its own.
    pub exit_status: Option<ExitStatus>,
    pub logs: String,
}

/// A function binary running against its own [`RuntimeApi`]. Killed (SIGKILL) on drop; if the
/// current thread is panicking, its log is printed to stderr first.
pub struct FunctionProcess {
    api: RuntimeApi,
    child: Child,
    spawned_at: Instant,
    log_path: PathBuf,
    exited: Option<ExitStatus>,
}

/// Variables passed through from the test's environment to the function; all others are
/// cleared so the function sees a Lambda-like environment. `RUST_BACKTRACE` and `RUST_LOG` are
/// deliberately not passed (Lambda does not set them, and a panic symbolised under
/// `RUST_BACKTRACE=1` lifts `VmHWM` of a 4 MB function to ~40 MB): add them to `extra_env`.
pub const PASS_THROUGH_ENV: &[&str] = &["PATH", "LLVM_PROFILE_FILE"];

static LOG_COUNTER: AtomicU64 = AtomicU64::new(0);

impl FunctionProcess {
    /// Start a fresh [`RuntimeApi`] (default timeout) and spawn `bin args...` against it with
    /// [`RuntimeApi::env`] plus `extra_env` (e.g. `("WXGATE_CONFIG", toml)`).
    pub async fn spawn(
        bin: impl AsRef<Path>,
        args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Result<Self, HarnessError> {
        Self::spawn_with(RuntimeApi::start().await, bin, args, extra_env)
    }

    /// Spawn against an already started `api` (e.g. one with a custom timeout, or with the
    /// first event already submitted for a cold-start measurement).
    pub fn spawn_with(
        api: RuntimeApi,
        bin: impl AsRef<Path>,
        args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Result<Self, HarnessError> {
        let dir = option_env!("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let n = LOG_COUNTER.fetch_add(1, Ordering::Relaxed);
        let log_path = dir.join(format!("lambda-fn-{}-{n}.log", std::process::id()));
        let io = |e: std::io::Error| HarnessError::Io(format!("{}: {e}", log_path.display()));
        let log = File::create(&log_path).map_err(io)?;
        let log2 = log.try_clone().map_err(io)?;

        let mut cmd = Command::new(bin.as_ref());
        cmd.args(args).env_clear();
        for k in PASS_THROUGH_ENV {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        cmd.envs(api.env()).envs(extra_env.iter().copied());
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        let spawned_at = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| HarnessError::Io(format!("spawning {}: {e}", bin.as_ref().display())))?;
        Ok(FunctionProcess {
            api,
            child,
            spawned_at,
            log_path,
            exited: None,
        })
    }

    pub fn api(&self) -> &RuntimeApi {
        &self.api
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `max` bytes of the log (on a char boundary).
    pub fn log_tail(&self, max: usize) -> String {
        let logs = self.logs();
        let mut start = logs.len().saturating_sub(max);
        while !logs.is_char_boundary(start) {
            start += 1;
        }
        logs[start..].to_owned()
    }

    /// Like [`RuntimeApi::invoke`], but fails fast with [`HarnessError::ProcessExited`] if the
    /// process dies before answering.
    pub async fn invoke(&mut self, event: Value) -> Result<Invocation, HarnessError> {
        let pending = self.api.submit(event);
        self.wait(pending).await
    }

    /// Wait for a [`PendingInvocation`] from `self.api().submit(..)`, watching the process.
    pub async fn wait(&mut self, pending: PendingInvocation) -> Result<Invocation, HarnessError> {
        let answer = pending.wait();
        tokio::pin!(answer);
        loop {
            tokio::select! {
                biased;
                result = &mut answer => return result,
                _ = tokio::time::sleep(Duration::from_millis(20)) => {
                    if let Some(status) = self.try_exit_status()? {
                        // One last look: the answer may have landed just before the exit.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        if let Some(result) = futures_now(&mut answer) {
                            return result;
                        }
                        return Err(HarnessError::ProcessExited {
                            status: status.to_string(),
                            log_tail: self.log_tail(4000),
                        });
                    }
                }
            }
        }
    }

    fn try_exit_status(&mut self) -> Result<Option<ExitStatus>, HarnessError> {
        if self.exited.is_none() {
            self.exited = self
                .child
                .try_wait()
                .map_err(|e| HarnessError::Io(format!("waitpid: {e}")))?;
        }
        Ok(self.exited)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_exit_status(), Ok(None))
    }

    /// Cold-start timestamps relative to the spawn.
    pub fn cold_start(&self) -> ColdStart {
        ColdStart {
            to_first_next: self.api.first_next_at().map(|t| t - self.spawned_at),
            to_first_answer: self.api.first_answer_at().map(|t| t - self.spawned_at),
        }
    }

    /// Peak resident set (`VmHWM`) in KiB, while the process is alive (not yet reaped).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.child.id(), "VmHWM:")
    }

    /// Current resident set (`VmRSS`) in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.child.id(), "VmRSS:")
    }

    /// Read the peak RSS, kill the process, and return what it logged.
    pub fn stop(mut self) -> Stopped {
        let exit_status = self.try_exit_status().ok().flatten();
        let peak_rss_kib = if exit_status.is_none() {
            self.peak_rss_kib()
        } else {
            None
        };
        self.kill();
        Stopped {
            peak_rss_kib,
            exit_status,
            logs: self.logs(),
        }
    }

    fn kill(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- function log ({}, pid {}) ----\n{}\n---- end of function log ----",
                self.log_path.display(),
                self.child.id(),
                self.logs()
            );
        } else {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}

/// Poll a future once without blocking.
fn futures_now<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match std::pin::Pin::new(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

// ------------------------------------------------------------------------------------------
// API Gateway events and responses
// ------------------------------------------------------------------------------------------

pub const API_ID: &str = "abc123defg";
pub const API_HOST: &str = "abc123defg.execute-api.us-east-1.amazonaws.com";
/// The stage [`apigw_v1_event`] uses. REST APIs have no `$default` stage, and lambda_http
/// prefixes the request path with a non-`$default` stage (`/prod/nope/x`) unless
/// `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` is set. Overwrite `requestContext.stage` to change.
pub const V1_STAGE: &str = "prod";
pub const SOURCE_IP: &str = "203.0.113.7";
pub const USER_AGENT: &str = "Mozilla/4.0 (compatible; MSIE 5.0; Windows NT)";

static EVENT_COUNTER: AtomicU64 = AtomicU64::new(0);

fn gateway_request_id() -> String {
    format!("Kx{:010}=", EVENT_COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn now_epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Split a raw query string into pairs decoded the way API Gateway fills
/// `queryStringParameters`: `%XX` decoded and `+` turned into a space (REST APIs do this:
/// `?sort=-+createdAt` arrives as `"- createdAt"`).
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let hex = |c: Option<&u8>| c.and_then(|&c| (c as char).to_digit(16));
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], hex(b.get(i + 1)), hex(b.get(i + 2))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(if c == b'+' { b' ' } else { c });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The body as the event carries it: base64 of the bytes if `base64`, else the text.
fn event_body(body: Option<&str>, base64: bool) -> Value {
    match body {
        None => Value::Null,
        Some(b) if base64 => Value::String(base64_encode(b.as_bytes())),
        Some(b) => Value::String(b.to_owned()),
    }
}

fn common_headers(body: Option<&str>) -> Map<String, Value> {
    let mut h = Map::new();
    h.insert("accept".into(), json!("*/*"));
    h.insert("host".into(), json!(API_HOST));
    h.insert("user-agent".into(), json!(USER_AGENT));
    h.insert(
        "x-amzn-trace-id".into(),
        json!("Root=1-65a1b2c3-0123456789abcdef01234567"),
    );
    h.insert("x-forwarded-for".into(), json!(SOURCE_IP));
    h.insert("x-forwarded-port".into(), json!("443"));
    h.insert("x-forwarded-proto".into(), json!("https"));
    if let Some(b) = body {
        h.insert("content-length".into(), json!(b.len().to_string()));
    }
    h
}

/// An API Gateway HTTP API (payload format 2.0) event, as lambda_http 1.3 deserializes it.
/// `raw_query` is the query string without `?`, as sent (percent-encoded). `body` is the
/// request body text; with `base64` it is carried base64-encoded and `isBase64Encoded` is true
/// (API Gateway does this for binary media types), so both forms mean the same request.
/// Add headers with [`set_header`].
pub fn apigw_v2_event(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    body: Option<&str>,
    base64: bool,
) -> Value {
    // HTTP APIs join repeated query keys with commas in queryStringParameters.
    let mut qsp = Map::new();
    for (k, v) in parse_query(raw_query) {
        match qsp.get_mut(&k) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(&v);
            }
            _ => {
                qsp.insert(k, Value::String(v));
            }
        }
    }
    let mut ev = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": common_headers(body),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": API_ID,
            "domainName": API_HOST,
            "domainPrefix": API_ID,
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": SOURCE_IP,
                "userAgent": USER_AGENT,
            },
            "requestId": gateway_request_id(),
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000",
            "timeEpoch": now_epoch_ms(),
        },
        "isBase64Encoded": base64,
    });
    if !qsp.is_empty() {
        ev["queryStringParameters"] = Value::Object(qsp);
    }
    if body.is_some() {
        ev["body"] = event_body(body, base64);
    }
    ev
}

/// An API Gateway REST API (payload format 1.0, proxy integration on `/{proxy+}`) event for
/// stage [`V1_STAGE`]. Arguments as for [`apigw_v2_event`].
pub fn apigw_v1_event(
    method: &str,
    path: &str,
    raw_query: &str,
    body: Option<&str>,
    base64: bool,
) -> Value {
    let pairs = parse_query(raw_query);
    let (single, multi) = if pairs.is_empty() {
        (Value::Null, Value::Null)
    } else {
        let mut single = Map::new();
        let mut multi: Map<String, Value> = Map::new();
        for (k, v) in pairs {
            single.insert(k.clone(), Value::String(v.clone())); // last value wins
            if let Value::Array(a) = multi.entry(k).or_insert_with(|| Value::Array(Vec::new())) {
                a.push(Value::String(v));
            }
        }
        (Value::Object(single), Value::Object(multi))
    };
    let headers = common_headers(body);
    let multi_headers: Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.clone(), json!([v])))
        .collect();
    let now = now_epoch_ms();
    json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single,
        "multiValueQueryStringParameters": multi,
        "pathParameters": { "proxy": path.trim_start_matches('/') },
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": API_ID,
            "domainName": API_HOST,
            "domainPrefix": API_ID,
            "extendedRequestId": gateway_request_id(),
            "httpMethod": method,
            "identity": { "sourceIp": SOURCE_IP, "userAgent": USER_AGENT },
            "path": format!("/{V1_STAGE}{path}"),
            "protocol": "HTTP/1.1",
            "requestId": format!("c6af9ac6-7b61-11e6-9a41-{:012x}", now),
            "requestTime": "01/Jan/2025:00:00:00 +0000",
            "requestTimeEpoch": now,
            "resourceId": "123456",
            "resourcePath": "/{proxy+}",
            "stage": V1_STAGE,
        },
        "body": event_body(body, base64),
        "isBase64Encoded": base64,
    })
}

/// Set (replace) a request header in a v1 or v2 event; `name` is lowercased.
pub fn set_header(event: &mut Value, name: &str, value: &str) {
    let name = name.to_ascii_lowercase();
    if let Some(h) = event.get_mut("headers").and_then(Value::as_object_mut) {
        h.insert(name.clone(), json!(value));
    }
    if let Some(h) = event
        .get_mut("multiValueHeaders")
        .and_then(Value::as_object_mut)
    {
        h.insert(name, json!([value]));
    }
}

/// A decoded API Gateway proxy response (v1 or v2, as lambda_http writes them).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiGwResponse {
    pub status: u16,
    /// Lowercased names in order: `multiValueHeaders` entries replace same-named `headers`
    /// (as API Gateway merges them); v2 `cookies` are appended as `set-cookie`.
    pub headers: Vec<(String, String)>,
    /// v2 `cookies`.
    pub cookies: Vec<String>,
    /// Decoded body bytes.
    pub body: Vec<u8>,
    pub is_base64_encoded: bool,
}

impl ApiGwResponse {
    /// Decode a response object. A value without `statusCode` is what an HTTP API turns into
    /// `200` with the JSON itself as the body.
    pub fn from_value(v: &Value) -> Result<Self, HarnessError> {
        let bad = |m: String| HarnessError::BadResponse(format!("{m} in {v}"));
        let Some(obj) = v.as_object().filter(|o| o.contains_key("statusCode")) else {
            return Ok(ApiGwResponse {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                cookies: Vec::new(),
                body: v.to_string().into_bytes(),
                is_base64_encoded: false,
            });
        };
        let status = match &obj["statusCode"] {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| bad("statusCode is not a status".into()))?;

        let as_str = |x: &Value| match x {
            Value::String(s) => Some(s.clone()),
            Value::Number(_) | Value::Bool(_) => Some(x.to_string()),
            _ => None,
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        let multi = obj.get("multiValueHeaders").and_then(Value::as_object);
        if let Some(h) = obj.get("headers").and_then(Value::as_object) {
            for (k, val) in h {
                if multi.is_some_and(|m| m.keys().any(|mk| mk.eq_ignore_ascii_case(k))) {
                    continue;
                }
                let s = as_str(val).ok_or_else(|| bad(format!("header {k} is not a string")))?;
                headers.push((k.to_ascii_lowercase(), s));
            }
        }
        if let Some(m) = multi {
            for (k, vals) in m {
                let vals = vals
                    .as_array()
                    .ok_or_else(|| bad(format!("multiValueHeaders.{k} is not an array")))?;
                for val in vals {
                    let s = as_str(val)
                        .ok_or_else(|| bad(format!("header {k} value is not a string")))?;
                    headers.push((k.to_ascii_lowercase(), s));
                }
            }
        }
        let mut cookies = Vec::new();
        if let Some(c) = obj.get("cookies").and_then(Value::as_array) {
            for c in c {
                let s = c
                    .as_str()
                    .ok_or_else(|| bad("cookie is not a string".into()))?;
                cookies.push(s.to_owned());
                headers.push(("set-cookie".into(), s.to_owned()));
            }
        }
        let is_base64_encoded = obj
            .get("isBase64Encoded")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let body = match obj.get("body") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) if is_base64_encoded => {
                base64_decode(s).ok_or_else(|| bad("body is not valid base64".into()))?
            }
            Some(Value::String(s)) => s.clone().into_bytes(),
            Some(other) => return Err(bad(format!("body is not a string: {other}"))),
        };
        Ok(ApiGwResponse {
            status,
            headers,
            cookies,
            body,
            is_base64_encoded,
        })
    }

    /// First value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of a header (case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value, HarnessError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| HarnessError::BadResponse(format!("body is not JSON: {e}")))
    }
}

// ------------------------------------------------------------------------------------------
// Base64 (standard alphabet, padded), small enough not to need a dependency
// ------------------------------------------------------------------------------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decode padded or unpadded standard base64; `None` on any other character.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() % 4 == 1 {
        return None;
    }
    let val = |c: u8| B64.iter().position(|&b| b == c).map(|p| p as u32);
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Some(out)
}
