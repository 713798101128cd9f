//! A TCP server on 127.0.0.1 for the fakes the tests talk to (the WeChat API, an upstream
//! bot). It runs on its own thread with its own tokio runtime, so it outlives the runtimes of
//! the `#[tokio::test]`s that use it, and it is stopped and joined on drop.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The running server.
pub struct LoopbackServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    /// Listens on a free port and runs `connection` as a task for every connection accepted.
    pub fn start<F, Fut>(name: &str, connection: F) -> LoopbackServer
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::start_on("127.0.0.1:0".parse().unwrap(), name, connection)
    }

    /// As [`start`](Self::start), on `addr`: a server that comes up late on an address a
    /// client was already refused at.
    pub fn start_on<F, Fut>(addr: SocketAddr, name: &str, connection: F) -> LoopbackServer
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = std::net::TcpListener::bind(addr).expect("bind the loopback address");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local addr");
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("loopback server runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    loop {
                        tokio::select! {
                            _ = &mut stop => return,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                tokio::spawn(connection(stream));
                            }
                        }
                    }
                });
                // Dropping the runtime here cancels connections still open or delayed.
            })
            .expect("spawn loopback server thread");
        LoopbackServer {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Listens on `addr` (port 0: a free one) and serves HTTP/1.1, every request answered
    /// by `handle` with the server's `state`.
    pub fn start_http<S, H, Fut>(
        addr: SocketAddr,
        name: &str,
        state: Arc<S>,
        handle: H,
    ) -> LoopbackServer
    where
        S: Send + Sync + 'static,
        H: Fn(Arc<S>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
        Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
    {
        Self::start_on(addr, name, move |stream| {
            let state = Arc::clone(&state);
            async move {
                let service = service_fn(move |request| handle(Arc::clone(&state), request));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        })
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Locks a mutex; a test that panicked while holding it leaves data that is still readable.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
