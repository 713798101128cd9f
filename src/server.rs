//! The local HTTP server behind `wxgate serve`: the same [`Gateway`] as in Lambda, over
//! hyper on a TCP port.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::bot::Bot;
use crate::gateway::{CallbackRequest, CallbackResponse, Gateway, Rejection};

/// How long shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `gateway` on `listener` until `shutdown` completes; requests in flight are
/// finished (for up to 5 s), not cut.
///
/// # Errors
/// Accepting connections failed.
pub async fn serve<B: Bot>(
    gateway: Arc<Gateway<B>>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: keep serving the others.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let gateway = Arc::clone(&gateway);
        let service = service_fn(move |request| {
            let gateway = Arc::clone(&gateway);
            async move { Ok::<_, std::convert::Infallible>(handle(&gateway, request).await) }
        });
        let connection =
            graceful.watch(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
    Ok(())
}

async fn handle<B: Bot>(gateway: &Gateway<B>, request: Request<Incoming>) -> Response<Full<Bytes>> {
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
    let body = match Limited::new(body, max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(max + 1, max),
        Err(e) => {
            tracing::debug!(error = %e, "request body could not be read");
            return to_http(
                Rejection::BadRequest("the request body could not be read".into()).response(),
            );
        }
    };
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

fn too_large(len: usize, max: usize) -> Response<Full<Bytes>> {
    let rejection = Rejection::PayloadTooLarge { len, max };
    rejection.log(None);
    to_http(rejection.response())
}

fn to_http(response: CallbackResponse) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(response.status)
        .header(CONTENT_TYPE, response.content_type);
    if let Some(allow) = response.allow {
        builder = builder.header(ALLOW, allow);
    }
    builder
        .body(Full::new(response.body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
