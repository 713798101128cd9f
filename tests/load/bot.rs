//! The upstream bot of the load runs: it checks each request's signature, counts the runs of
//! every message (by app and `MsgId`) and answers deterministically, `bot <app> <MsgId>`, so
//! a reply can be traced to its message. A message whose text starts with `slow` is answered
//! after [`CountingBot::set_slow_delay`] (past the budget: a late reply). While flapping, it
//! fails every other second, alternately with a 500 and by hanging until the gateway gives
//! up.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::support::loopback::{LoopbackServer, lock};

/// The HMAC key the gateway signs its requests with (`forward_secret`).
pub const BOT_SECRET: &str = "load-test-bot-secret-0123456789ab";

/// The reply the bot gives to message `msg_id` of `app`.
pub fn bot_reply(app: &str, msg_id: u64) -> String {
    format!("bot {app} {msg_id}")
}

#[derive(Default)]
struct State {
    /// Requests per (app, MsgId), failed ones included: each is one run of the bot.
    runs: HashMap<(String, u64), u32>,
    bad_signatures: u64,
    failed: u64,
    hung: u64,
    slow_delay: Duration,
    /// Since when the bot flaps, if it does.
    flapping_since: Option<Instant>,
}

/// The running bot; stopped on drop.
pub struct CountingBot {
    server: LoopbackServer,
    state: Arc<Mutex<State>>,
}

impl CountingBot {
    pub fn start() -> CountingBot {
        let state = Arc::new(Mutex::new(State::default()));
        let served = Arc::clone(&state);
        let server =
            LoopbackServer::start_http("127.0.0.1:0".parse().unwrap(), "load-bot", served, handle);
        CountingBot { server, state }
    }

    /// `http://127.0.0.1:port/bot`.
    pub fn url(&self) -> String {
        format!("http://{}/bot", self.server.addr())
    }

    /// How long a `slow…` message waits for its answer.
    pub fn set_slow_delay(&self, delay: Duration) {
        lock(&self.state).slow_delay = delay;
    }

    /// From now on, every odd second fails (500 and hang alternately); `false` stops it.
    pub fn set_flapping(&self, on: bool) {
        lock(&self.state).flapping_since = on.then(Instant::now);
    }

    /// How often the bot ran for message `msg_id` of `app`.
    pub fn runs(&self, app: &str, msg_id: u64) -> u32 {
        lock(&self.state)
            .runs
            .get(&(app.to_owned(), msg_id))
            .copied()
            .unwrap_or(0)
    }

    /// Requests whose signature did not verify (answered 401).
    pub fn bad_signatures(&self) -> u64 {
        lock(&self.state).bad_signatures
    }

    /// Requests answered 500, and requests left hanging, while flapping.
    pub fn failures(&self) -> (u64, u64) {
        let state = lock(&self.state);
        (state.failed, state.hung)
    }
}

/// What one request gets.
enum Plan {
    Answer(Duration, String),
    Fail,
    Hang,
    Refuse,
}

async fn handle(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (timestamp, signature) = (header("x-wxgate-timestamp"), header("x-wxgate-signature"));
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(answer(StatusCode::BAD_REQUEST, Bytes::new())),
    };
    let plan = plan(&state, timestamp, signature, &body);
    match plan {
        Plan::Refuse => Ok(answer(StatusCode::UNAUTHORIZED, Bytes::new())),
        Plan::Fail => Ok(answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            Bytes::from_static(b"flapping"),
        )),
        // Far past any forward_timeout_ms; the gateway hangs up first, which ends this task.
        Plan::Hang => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            Ok(answer(StatusCode::GATEWAY_TIMEOUT, Bytes::new()))
        }
        Plan::Answer(delay, content) => {
            tokio::time::sleep(delay).await;
            let reply = json!({"type": "text", "content": content}).to_string();
            Ok(answer(StatusCode::OK, Bytes::from(reply)))
        }
    }
}

fn plan(
    state: &Mutex<State>,
    timestamp: Option<String>,
    signature: Option<String>,
    body: &[u8],
) -> Plan {
    let mut state = lock(state);
    let signed = match (&timestamp, &signature) {
        (Some(ts), Some(sig)) => wxgate::bot::verify_signature(BOT_SECRET, ts, body, sig),
        _ => false,
    };
    let request: Option<Value> = serde_json::from_slice(body).ok();
    let identified = request.as_ref().and_then(|r| {
        let app = r["app"].as_str()?.to_owned();
        let msg_id = r["message"]["msg_id"].as_u64()?;
        let content = r["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Some((app, msg_id, content))
    });
    let (true, Some((app, msg_id, content))) = (signed, identified) else {
        state.bad_signatures += 1;
        return Plan::Refuse;
    };
    *state.runs.entry((app.clone(), msg_id)).or_default() += 1;
    if let Some(since) = state.flapping_since {
        let second = since.elapsed().as_secs();
        if second % 2 == 1 {
            return if (second / 2) % 2 == 0 {
                state.failed += 1;
                Plan::Fail
            } else {
                state.hung += 1;
                Plan::Hang
            };
        }
    }
    let delay = if content.starts_with("slow") {
        state.slow_delay
    } else {
        Duration::ZERO
    };
    Plan::Answer(delay, bot_reply(&app, msg_id))
}

fn answer(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
