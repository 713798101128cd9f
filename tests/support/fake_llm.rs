//! A fake OpenAI-compatible chat-completions server on `127.0.0.1:{random port}`, for the
//! `llm` rule.
//!
//! Like `fake_upstream.rs` it speaks HTTP/1.1 by hand (one request per connection,
//! `Connection: close`): it checks the bearer key when it has one (a wrong or missing key is
//! answered 401 with OpenAI's error body, whose message quotes part of the key, as OpenAI's
//! does), records the request, and then does what it was told ([`LlmBehavior`]): stream SSE
//! chunks with pauses, answer a status, or send raw pieces. It runs on its own thread with
//! its own runtime; dropping it stops it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::fake_upstream::read_request;
use super::loopback::{LoopbackServer, lock};

/// What the fake answers.
#[derive(Debug, Clone)]
pub enum LlmBehavior {
    /// 200 `text/event-stream`: one chunk per piece of text, `pause` before each, then
    /// `data: [DONE]` when `done`.
    Stream {
        pieces: Vec<String>,
        pause: Duration,
        done: bool,
    },
    /// `status` with this body.
    Status { status: u16, body: String },
    /// 200 `text/event-stream` with these raw bytes, `pause` before each piece.
    Raw {
        pieces: Vec<Vec<u8>>,
        pause: Duration,
    },
}

impl LlmBehavior {
    /// A whole answer streamed in these pieces.
    pub fn stream(pieces: &[&str], pause: Duration) -> Self {
        Self::Stream {
            pieces: pieces.iter().map(|p| (*p).to_owned()).collect(),
            pause,
            done: true,
        }
    }

    /// An answer that breaks off after these pieces: no `[DONE]`, no `finish_reason`.
    pub fn truncated(pieces: &[&str], pause: Duration) -> Self {
        Self::Stream {
            pieces: pieces.iter().map(|p| (*p).to_owned()).collect(),
            pause,
            done: false,
        }
    }

    /// `status` with an OpenAI-shaped error body.
    pub fn status(status: u16, code: &str) -> Self {
        Self::Status {
            status,
            body: json!({"error": {"message": "something failed", "type": "server_error", "code": code}})
                .to_string(),
        }
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct LlmRequest {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

struct State {
    api_key: Option<String>,
    behavior: LlmBehavior,
    requests: Vec<LlmRequest>,
}

/// The running fake; stopped on drop.
pub struct FakeLlm {
    server: LoopbackServer,
    state: Arc<Mutex<State>>,
}

impl FakeLlm {
    /// Starts the fake, requiring `Authorization: Bearer {api_key}` when there is a key.
    pub fn start(api_key: Option<&str>, behavior: LlmBehavior) -> FakeLlm {
        let state = Arc::new(Mutex::new(State {
            api_key: api_key.map(str::to_owned),
            behavior,
            requests: Vec::new(),
        }));
        let served = Arc::clone(&state);
        let server = LoopbackServer::start("fake-llm", move |stream| {
            connection(stream, Arc::clone(&served))
        });
        FakeLlm { server, state }
    }

    /// The base URL, `http://127.0.0.1:port/v1`.
    pub fn base(&self) -> String {
        format!("http://{}/v1", self.server.addr())
    }

    /// Changes what the next requests get.
    pub fn set_behavior(&self, behavior: LlmBehavior) {
        lock(&self.state).behavior = behavior;
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<LlmRequest> {
        lock(&self.state).requests.clone()
    }
}

/// One SSE chunk of a streamed completion carrying `content`.
pub fn chunk(content: &str) -> String {
    let chunk = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "fake",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}],
    });
    format!("data: {chunk}\n\n")
}

async fn connection(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let Some((request_line, headers, body)) = read_request(&mut stream).await else {
        return;
    };
    let authorization = headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .map(|(_, v)| v.clone());
    let behavior = {
        let mut state = lock(&state);
        state.requests.push(LlmRequest {
            path: request_line
                .split(' ')
                .nth(1)
                .unwrap_or_default()
                .to_owned(),
            authorization: authorization.clone(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        match &state.api_key {
            Some(key) if authorization.as_deref() != Some(&format!("Bearer {key}")) => {
                let shown = authorization.unwrap_or_default();
                let tail = &shown[shown.len().saturating_sub(4)..];
                LlmBehavior::Status {
                    status: 401,
                    body: json!({"error": {
                        "message": format!("Incorrect API key provided: sk-***{tail}"),
                        "type": "invalid_request_error", "code": "invalid_api_key",
                    }})
                    .to_string(),
                }
            }
            _ => state.behavior.clone(),
        }
    };
    let (status, content_type, pieces, pause) = match behavior {
        LlmBehavior::Stream {
            pieces,
            pause,
            done,
        } => {
            let mut pieces: Vec<Vec<u8>> = pieces.iter().map(|p| chunk(p).into_bytes()).collect();
            if done {
                let stop = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
                pieces.push(format!("data: {stop}\n\ndata: [DONE]\n\n").into_bytes());
            }
            (200, "text/event-stream", pieces, pause)
        }
        LlmBehavior::Status { status, body } => (
            status,
            "application/json",
            vec![body.into_bytes()],
            Duration::ZERO,
        ),
        LlmBehavior::Raw { pieces, pause } => (200, "text/event-stream", pieces, pause),
    };
    let head = format!(
        "HTTP/1.1 {status} Fake\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    for piece in pieces {
        tokio::time::sleep(pause).await;
        if stream.write_all(&piece).await.is_err() {
            return;
        }
    }
    let _ = stream.shutdown().await;
}
