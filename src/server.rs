//! The local HTTP server behind `wxgate serve`: the same [`Gateway`] as in Lambda, over
//! hyper on a TCP port.
//!
//! The callback URL is public, so the server assumes hostile clients:
//!
//! * a client has [`HEADER_TIMEOUT`] to send its request head and, once a request is
//!   answered, to start the next one (hyper's header read timeout also closes idle
//!   keep-alive connections), and [`BODY_TIMEOUT`] to send its body (else 408);
//! * request heads are capped at [`MAX_HEAD_BYTES`];
//! * open connections are capped below the process's file-descriptor limit
//!   ([`connection_cap`]). When the cap is reached, the connection that has waited longest
//!   without a request in the gateway is closed to make room, so clients that hold
//!   connections open cannot lock real callbacks out; only when every connection is busy in
//!   the gateway is a new one answered 503 at once;
//! * when accepting fails (out of file descriptors), the loop backs off and says so at most
//!   once a second.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::bot::Bot;
use crate::gateway::{CallbackRequest, CallbackResponse, Gateway, Rejection};

/// How long shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to send a request head, and to start its next request on a
/// kept-alive connection. The platforms send a callback in one go.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to send a request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head accepted (request line and headers); real ones are under 1 KB.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Connections accepted at most, whatever the descriptor limit allows.
const MAX_CONNECTIONS: usize = 1024;
/// Descriptors kept for everything but client connections: the listener, the store's and
/// the platform APIs' connections, the runtime.
const RESERVED_DESCRIPTORS: usize = 64;
/// How often a failing accept is logged at most.
const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// The most client connections to hold: below `RLIMIT_NOFILE` (read from
/// `/proc/self/limits`; 1024 assumed where it cannot be read) by the 64 descriptors kept
/// for the listener, the store and the platform APIs, and at most 1024.
pub fn connection_cap() -> usize {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| open_files_limit(&text))
        .unwrap_or(1024);
    limit
        .saturating_sub(RESERVED_DESCRIPTORS)
        .clamp(8, MAX_CONNECTIONS)
}

/// The soft "Max open files" of a `/proc/self/limits` text.
fn open_files_limit(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(usize::MAX),
        n => n.parse().ok(),
    }
}

/// Serves `gateway` on `listener` until `shutdown` completes; requests in flight are
/// finished (for up to 5 s), not cut, and late replies still running get their time
/// ([`Gateway::finish_late_replies`]).
///
/// # Errors
/// Accepting connections failed.
pub async fn serve<B: Bot>(
    gateway: Arc<Gateway<B>>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with_cap(gateway, listener, shutdown, connection_cap()).await
}

/// [`serve`] holding at most `cap` client connections.
///
/// # Errors
/// Accepting connections failed.
pub async fn serve_with_cap<B: Bot>(
    gateway: Arc<Gateway<B>>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
    cap: usize,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Connections::new(cap));
    let mut accept_errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    accept_errors.reset();
                    accepted
                }
                // Out of file descriptors and the like: keep serving the others.
                Err(e) => {
                    let pause = accept_errors.failed(&e);
                    tokio::time::sleep(pause).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = connections.admit() else {
            refuse_busy(&stream);
            continue;
        };
        let gateway = Arc::clone(&gateway);
        let busy = Arc::clone(&slot.busy);
        let service = service_fn(move |request| {
            let gateway = Arc::clone(&gateway);
            let busy = Arc::clone(&busy);
            async move { Ok::<_, std::convert::Infallible>(handle(&gateway, request, &busy).await) }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(MAX_HEAD_BYTES);
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        let connections = Arc::clone(&connections);
        tokio::spawn(async move {
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                () = slot.evicted.notified() => {
                    tracing::debug!(%peer, "connection closed to make room for a new one");
                }
            }
            connections.release(slot.id);
        });
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
    gateway.finish_late_replies().await;
    Ok(())
}

/// The open client connections, and which of them may be closed to make room.
struct Connections {
    cap: usize,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Entry>>,
}

/// What the list holds of one connection, shared with its [`Slot`].
struct Entry {
    busy: Arc<BusyFlag>,
    evicted: Arc<Notify>,
}

/// One admitted connection's handles.
struct Slot {
    id: u64,
    busy: Arc<BusyFlag>,
    evicted: Arc<Notify>,
}

/// Whether a connection has a request in the gateway, and since when it has not.
struct BusyFlag {
    busy: AtomicBool,
    /// Since when it has not been in the gateway: accepted, or its last request answered.
    idle_since: Mutex<Instant>,
}

impl BusyFlag {
    fn enter(&self) -> BusyGuard<'_> {
        self.busy.store(true, Ordering::Release);
        BusyGuard(self)
    }
}

struct BusyGuard<'a>(&'a BusyFlag);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        *self
            .0
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.0.busy.store(false, Ordering::Release);
    }
}

impl Connections {
    fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a new connection: a free one, or the one of the connection that has been
    /// idle longest (it is closed); `None` when every connection is in the gateway.
    fn admit(&self) -> Option<Slot> {
        let mut open = self.lock();
        if open.len() >= self.cap {
            let idlest = open
                .iter()
                .filter(|(_, e)| !e.busy.busy.load(Ordering::Acquire))
                .min_by_key(|(_, e)| {
                    *e.busy
                        .idle_since
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                })
                .map(|(id, _)| *id)?;
            if let Some(entry) = open.remove(&idlest) {
                entry.evicted.notify_one();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            busy: Arc::new(BusyFlag {
                busy: AtomicBool::new(false),
                idle_since: Mutex::new(Instant::now()),
            }),
            evicted: Arc::new(Notify::new()),
        };
        let slot = Slot {
            id,
            busy: Arc::clone(&entry.busy),
            evicted: Arc::clone(&entry.evicted),
        };
        open.insert(id, entry);
        Some(slot)
    }

    fn release(&self, id: u64) {
        self.lock().remove(&id);
    }
}

/// Answers 503 at once and closes, without reading the request: every slot is busy.
fn refuse_busy(stream: &TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nretry-after: 1\r\nconnection: close\r\n\r\n";
    // One non-blocking write into an empty socket buffer; the stream is dropped (closed)
    // right after.
    let _ = stream.try_write(BUSY);
    tracing::warn!("connection limit reached with every connection busy; answered 503");
}

/// Failed accepts: the pause before the next one (doubling, at most 1 s) and a log line at
/// most once a second, with the count since the last.
#[derive(Default)]
struct AcceptErrors {
    pause: Duration,
    unlogged: u64,
    logged_at: Option<Instant>,
}

impl AcceptErrors {
    fn failed(&mut self, error: &std::io::Error) -> Duration {
        self.pause = (self.pause * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
        self.unlogged += 1;
        let due = self
            .logged_at
            .is_none_or(|at| at.elapsed() >= ACCEPT_LOG_INTERVAL);
        if due {
            tracing::warn!(error = %error, failures = self.unlogged, "accept failed; backing off");
            self.unlogged = 0;
            self.logged_at = Some(Instant::now());
        }
        self.pause
    }

    fn reset(&mut self) {
        self.pause = Duration::ZERO;
    }
}

async fn handle<B: Bot>(
    gateway: &Gateway<B>,
    request: Request<Incoming>,
    busy: &BusyFlag,
) -> Response<Full<Bytes>> {
    let max = gateway.settings().max_body_bytes;
    let (parts, body) = request.into_parts();
    // Refuse a declared oversize body before reading any of it.
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(len) = declared.filter(|&len| len > max) {
        return too_large(len, max);
    }
    let body = match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, max).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(max + 1, max),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "request body could not be read");
            return to_http(
                Rejection::BadRequest("the request body could not be read".into()).response(),
            );
        }
        Err(_) => return too_slow(),
    };
    let _in_gateway = busy.enter();
    let response = gateway
        .handle(CallbackRequest {
            method: &parts.method,
            path: parts.uri.path(),
            query: parts.uri.query(),
            body: &body,
        })
        .await;
    to_http(response)
}

/// Serves the metrics in the Prometheus text format at `GET /metrics` on `listener`, a
/// listener of their own (never the callback port), until the process ends. Other paths
/// are 404, other methods 405; a client has [`HEADER_TIMEOUT`] to send its request.
pub async fn serve_metrics(listener: TcpListener) {
    let mut accept_errors = AcceptErrors::default();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                accept_errors.reset();
                stream
            }
            Err(e) => {
                tokio::time::sleep(accept_errors.failed(&e)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let service = service_fn(|request: Request<Incoming>| async move {
                Ok::<_, std::convert::Infallible>(metrics_response(&request))
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn metrics_response<T>(request: &Request<T>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&http::Method::GET, "/metrics") => (
            http::StatusCode::OK,
            crate::metrics::prometheus::CONTENT_TYPE,
            crate::metrics::prometheus::render_global(),
        ),
        (_, "/metrics") => (
            http::StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "Method Not Allowed: GET /metrics only\n".to_owned(),
        ),
        _ => (
            http::StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "Not Found: metrics are at /metrics\n".to_owned(),
        ),
    };
    let mut builder = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type);
    if status == http::StatusCode::METHOD_NOT_ALLOWED {
        builder = builder.header(ALLOW, "GET");
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn too_large(len: usize, max: usize) -> Response<Full<Bytes>> {
    let rejection = Rejection::PayloadTooLarge { len, max };
    rejection.log(None);
    to_http(rejection.response())
}

/// 408, and the connection is closed: the body did not arrive within [`BODY_TIMEOUT`].
fn too_slow() -> Response<Full<Bytes>> {
    tracing::info!(
        status = 408,
        "callback refused: the body was not sent within {BODY_TIMEOUT:?}"
    );
    let mut response = Response::new(Full::new(Bytes::from_static(
        b"Request Timeout: the body was not sent in time\n",
    )));
    *response.status_mut() = http::StatusCode::REQUEST_TIMEOUT;
    response
        .headers_mut()
        .insert(CONNECTION, http::HeaderValue::from_static("close"));
    response
}

fn to_http(response: CallbackResponse) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(response.status)
        .header(CONTENT_TYPE, response.content_type)
        // Echoed text (an echostr) is never to be sniffed as markup.
        .header("x-content-type-options", "nosniff");
    if let Some(allow) = response.allow {
        builder = builder.header(ALLOW, allow);
    }
    builder
        .body(Full::new(response.body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_files_limit_is_read_from_proc() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            256                  524288               files     \n";
        assert_eq!(open_files_limit(limits), Some(256));
        assert_eq!(
            open_files_limit("Max open files  unlimited unlimited files"),
            Some(usize::MAX)
        );
        assert_eq!(open_files_limit("nothing here"), None);
    }

    #[test]
    fn a_full_house_makes_room_by_closing_the_idlest_connection() {
        let connections = Connections::new(2);
        let a = connections.admit().unwrap();
        let b = connections.admit().unwrap();
        let _a_in_gateway = a.busy.enter();
        // b is the only one not in the gateway: it makes room.
        let c = connections.admit().unwrap();
        assert!(connections.lock().contains_key(&c.id));
        assert!(!connections.lock().contains_key(&b.id));
        // a and c both busy: nothing to close.
        let _c_in_gateway = c.busy.enter();
        assert!(connections.admit().is_none());
    }

    #[test]
    fn failed_accepts_back_off_up_to_a_second() {
        let mut errors = AcceptErrors::default();
        let e = std::io::Error::other("EMFILE");
        let pauses: Vec<_> = (0..9).map(|_| errors.failed(&e)).collect();
        assert_eq!(pauses[0], Duration::from_millis(10));
        assert_eq!(pauses[1], Duration::from_millis(20));
        assert_eq!(pauses[8], Duration::from_secs(1));
        errors.reset();
        assert_eq!(errors.failed(&e), Duration::from_millis(10));
    }
}
