//! A fake upstream bot on `127.0.0.1:{random port}`, for the `forward` rule.
//!
//! It speaks just enough HTTP/1.1 by hand (one request per connection, `Connection: close`)
//! to misbehave in ways a real server framework would not let it: it checks every request's
//! `X-Wxgate-Signature` with the shared secret (a bad one is answered 401), records the
//! request, and then does what it was told ([`Behavior`]): answer some JSON, a status, garbage
//! or an oversized body, after a delay, or hang. While it waits it watches the connection,
//! so a client that gives up is seen hanging up ([`Request::hung_up`]).
//!
//! It runs on its own thread with its own tokio runtime, so it outlives the runtimes of the
//! tests that use it; dropping it stops it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::loopback::{LoopbackServer, lock};

/// The largest request head read.
const MAX_HEAD: usize = 16 * 1024;

/// What the fake does with the next requests.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// After `delay`, answer `status` with `body`; `declare_length: false` sends the body
    /// without a `Content-Length` (ended by closing the connection).
    Answer {
        delay: Duration,
        status: u16,
        body: Vec<u8>,
        declare_length: bool,
    },
    /// Never answer; wait for the client to hang up.
    Hang,
    /// A streamed answer: 200 with this `Content-Type`, then each piece with `pause`
    /// before it, ended by closing the connection.
    Stream {
        content_type: &'static str,
        pieces: Vec<Vec<u8>>,
        pause: Duration,
    },
}

impl Behavior {
    /// 200 with this JSON.
    pub fn json(value: Value) -> Self {
        Self::Answer {
            delay: Duration::ZERO,
            status: 200,
            body: value.to_string().into_bytes(),
            declare_length: true,
        }
    }

    /// A text reply.
    pub fn text(content: &str) -> Self {
        Self::json(json!({"type": "text", "content": content}))
    }

    /// A one-article news reply.
    pub fn news(title: &str, url: &str) -> Self {
        Self::json(json!({
            "type": "news",
            "articles": [{"title": title, "description": "d", "url": url, "pic_url": "https://e.x/p.png"}],
        }))
    }

    /// No reply, `{}`.
    pub fn none() -> Self {
        Self::json(json!({}))
    }

    /// 204 No Content: no reply.
    pub fn no_content() -> Self {
        Self::Answer {
            delay: Duration::ZERO,
            status: 204,
            body: Vec::new(),
            declare_length: false,
        }
    }

    /// `status` with a short non-JSON body.
    pub fn status(status: u16) -> Self {
        Self::Answer {
            delay: Duration::ZERO,
            status,
            body: b"upstream error".to_vec(),
            declare_length: true,
        }
    }

    /// 200 with a body that is not JSON.
    pub fn garbage() -> Self {
        Self::Answer {
            delay: Duration::ZERO,
            status: 200,
            body: b"<html>not json</html>".to_vec(),
            declare_length: true,
        }
    }

    /// 200 with a valid text reply of `len` bytes (over the gateway's cap when large).
    pub fn oversized(len: usize, declare_length: bool) -> Self {
        let padding = "x".repeat(len.saturating_sub(40));
        Self::Answer {
            delay: Duration::ZERO,
            status: 200,
            body: json!({"type": "text", "content": padding})
                .to_string()
                .into_bytes(),
            declare_length,
        }
    }

    /// NDJSON: one line per object, `pause` before each.
    pub fn ndjson(objects: &[Value], pause: Duration) -> Self {
        Self::Stream {
            content_type: "application/x-ndjson",
            pieces: objects
                .iter()
                .map(|o| format!("{o}\n").into_bytes())
                .collect(),
            pause,
        }
    }

    /// SSE: one event per object (with a comment and an `event:` line to skip), `pause`
    /// before each.
    pub fn sse(objects: &[Value], pause: Duration) -> Self {
        Self::Stream {
            content_type: "text/event-stream",
            pieces: objects
                .iter()
                .map(|o| format!(": keep-alive\nevent: message\ndata: {o}\n\n").into_bytes())
                .collect(),
            pause,
        }
    }

    /// The same answer, `delay` later.
    pub fn after(self, delay: Duration) -> Self {
        match self {
            Self::Answer {
                status,
                body,
                declare_length,
                ..
            } => Self::Answer {
                delay,
                status,
                body,
                declare_length,
            },
            other => other,
        }
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// When its body was read.
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    pub timestamp: Option<String>,
    pub signature: Option<String>,
    /// Whether the signature verified with the fake's secret.
    pub signature_ok: bool,
    pub body: Vec<u8>,
    /// When the client closed the connection before the fake answered.
    pub hung_up: Option<Instant>,
}

impl Request {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }
}

struct State {
    secret: String,
    behavior: Behavior,
    requests: Vec<Request>,
}

/// The running fake; stopped on drop.
pub struct FakeUpstream {
    server: LoopbackServer,
    state: Arc<Mutex<State>>,
}

impl FakeUpstream {
    /// Starts the fake on a free loopback port, checking signatures with `secret`, answering
    /// `behavior`.
    pub fn start(secret: &str, behavior: Behavior) -> FakeUpstream {
        let state = Arc::new(Mutex::new(State {
            secret: secret.to_owned(),
            behavior,
            requests: Vec::new(),
        }));
        let served = Arc::clone(&state);
        let server = LoopbackServer::start("fake-upstream", move |stream| {
            connection(stream, Arc::clone(&served))
        });
        FakeUpstream { server, state }
    }

    /// `http://127.0.0.1:port/bot`.
    pub fn url(&self) -> String {
        format!("http://{}/bot", self.server.addr())
    }

    /// Changes what the next requests get.
    pub fn set_behavior(&self, behavior: Behavior) {
        lock(&self.state).behavior = behavior;
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state).requests.clone()
    }

    /// Waits up to `timeout` for request `index` to be hung up on; when it was. Async, so
    /// that a client on the caller's runtime gets to close its connection meanwhile.
    pub async fn wait_hung_up(&self, index: usize, timeout: Duration) -> Option<Instant> {
        let until = Instant::now() + timeout;
        loop {
            let hung_up = lock(&self.state)
                .requests
                .get(index)
                .and_then(|r| r.hung_up);
            if hung_up.is_some() || Instant::now() >= until {
                return hung_up;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Reads one request (request line, lower-cased headers, body); `None` when the client sent
/// no complete one. The fake LLM server reads its requests with it too.
pub async fn read_request(
    stream: &mut TcpStream,
) -> Option<(String, Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((request_line, headers, body))
}

/// Resolves when the client closes the connection (it sends nothing after its request).
async fn hang_up(stream: &mut TcpStream) {
    let mut chunk = [0u8; 1024];
    while let Ok(n) = stream.read(&mut chunk).await {
        if n == 0 {
            return;
        }
    }
}

async fn connection(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let Some((request_line, headers, body)) = read_request(&mut stream).await else {
        return;
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let timestamp = header("x-wxgate-timestamp");
    let signature = header("x-wxgate-signature");
    let (index, behavior) = {
        let mut state = lock(&state);
        let signature_ok = match (&timestamp, &signature) {
            (Some(ts), Some(sig)) => wxgate::bot::verify_signature(&state.secret, ts, &body, sig),
            _ => false,
        };
        state.requests.push(Request {
            at: Instant::now(),
            method,
            path,
            content_type: header("content-type"),
            accept: header("accept"),
            timestamp,
            signature,
            signature_ok,
            body,
            hung_up: None,
        });
        let behavior = if signature_ok {
            state.behavior.clone()
        } else {
            Behavior::status(401)
        };
        (state.requests.len() - 1, behavior)
    };
    let (delay, status, body, declare_length) = match behavior {
        Behavior::Hang => (Duration::MAX, 0, Vec::new(), false),
        Behavior::Stream {
            content_type,
            pieces,
            pause,
        } => {
            let head = format!(
                "HTTP/1.1 200 Fake\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes()).await;
            for piece in pieces {
                tokio::select! {
                    () = hang_up(&mut stream) => {
                        lock(&state).requests[index].hung_up = Some(Instant::now());
                        return;
                    }
                    () = tokio::time::sleep(pause) => {}
                }
                if stream.write_all(&piece).await.is_err() {
                    return;
                }
            }
            let _ = stream.shutdown().await;
            return;
        }
        Behavior::Answer {
            delay,
            status,
            body,
            declare_length,
        } => (delay, status, body, declare_length),
    };
    let delay = tokio::time::sleep(delay.min(Duration::from_secs(3600)));
    tokio::select! {
        () = hang_up(&mut stream) => {
            lock(&state).requests[index].hung_up = Some(Instant::now());
            return;
        }
        () = delay => {}
    }
    let mut head = format!(
        "HTTP/1.1 {status} Fake\r\nContent-Type: application/json\r\nConnection: close\r\n"
    );
    if declare_length {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}
