//! A fake WeChat server API on `127.0.0.1:{random port}`: both token endpoints and one API
//! call to spend tokens on, with knobs for expiry, latency, failures and revocation.
//!
//! It runs on its own thread with its own tokio runtime, so it outlives the runtimes of the
//! tests that use it (`#[tokio::test]` makes one per test); dropping it stops it.
//!
//! * `GET /cgi-bin/gettoken?corpid=…&corpsecret=…` (WeCom) and `POST /cgi-bin/stable_token`
//!   `{"grant_type":"client_credential","appid":…,"secret":…}` (Official Account) check the
//!   credentials against [`CORP_ID`]/[`CORP_SECRET`] and [`APP_ID`]/[`APP_SECRET`]: a wrong
//!   corp id or AppID answers 40013, a wrong secret 40001 (WeCom) or 40125 (MP).
//! * Like the real platforms, a fetch while the current token is valid returns that same
//!   token with its remaining lifetime; a new one (`fake-token-1`, `fake-token-2`, …) is
//!   issued once it expired or was revoked, or, like `stable_token`, within the last
//!   [`FakePlatform::set_renew_ahead`] of its life (default 0: WeCom's "same until expiry").
//!   The token it replaces stays valid until its own expiry, as the platform promises.
//! * `GET /cgi-bin/get_api_domain_ip?access_token=T` answers 40001 unless `T` is valid
//!   (issued, not expired, not revoked), else `{"errcode":0,"errmsg":"ok","ip_list":[]}`.
//! * `POST /cgi-bin/message/send?access_token=T` (WeCom app message) and
//!   `POST /cgi-bin/message/custom/send?access_token=T` (Official Account customer message)
//!   answer 40014 unless `T` is valid, check the body (`touser`, `msgtype`, WeCom's
//!   `agentid`, the type's content; an MP news message with more than one article is 45008)
//!   and record what they deliver ([`FakePlatform::sent`]). WeCom answers
//!   `{"errcode":0,"errmsg":"ok","invaliduser":"","msgid":"fake-msgid-N"}`; members named
//!   with [`FakePlatform::set_unknown_users`] come back in `invaliduser`, and when every
//!   member is unknown the send is refused with 81013. [`FakePlatform::fail_next_sends`]
//!   injects errcodes (-1, 45009, 45015…), HTTP statuses or hangs, which deliver nothing,
//!   or a late answer to a message that was delivered;
//!   [`FakePlatform::set_send_delay`] slows the send endpoints alone. A WeCom request with
//!   `"enable_duplicate_check": 1` whose JSON equals one delivered within its
//!   `duplicate_check_interval` (default 1800 s) is not delivered again, as WeCom documents;
//!   it answers ok with the first one's msgid ([`FakePlatform::duplicates_dropped`]).
//! * `GET /cgi-bin/agent/get?access_token=T&agentid=N` (WeCom) answers the app's visible
//!   range, set with [`FakePlatform::set_visible_range`] (by default the root department).
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use wxgate::wechat::{ApiEndpoints, TokenSource};

use super::loopback::{LoopbackServer, lock};
use super::sample::{AGENT_ID, KEY, TOKEN};

/// The WeCom corp id the fake accepts.
pub const CORP_ID: &str = "ww0fa4e000c0de0001";
/// The WeCom app secret the fake accepts.
pub const CORP_SECRET: &str = "fake-corp-secret-0123456789abcdef";
/// The Official Account AppID the fake accepts.
pub const APP_ID: &str = "wx0fa4e000a9900001";
/// The Official Account AppSecret the fake accepts.
pub const APP_SECRET: &str = "fake-app-secret-0123456789abcdef";

/// Which token endpoint a fetch went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// WeCom `GET /cgi-bin/gettoken`.
    Gettoken,
    /// Official Account `POST /cgi-bin/stable_token`.
    StableToken,
}

/// One request to a token endpoint, as the fake saw it.
#[derive(Debug, Clone)]
pub struct Fetch {
    /// When it arrived (after the configured delay).
    pub at: Instant,
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// The token answered, `None` for an error answer.
    pub token: Option<String>,
    /// Whether the token was issued by this fetch (rather than the current one repeated).
    pub issued: bool,
}

/// Which send endpoint a message went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendApi {
    /// WeCom `POST /cgi-bin/message/send`.
    Wecom,
    /// Official Account `POST /cgi-bin/message/custom/send`.
    Mp,
    /// An AI bot message's `response_url`, `POST /cgi-bin/aibot/response?response_code=C`
    /// (`touser` is the response code).
    AibotResponse,
}

/// A message the fake delivered.
#[derive(Debug, Clone)]
pub struct SentMessage {
    /// When it was delivered.
    pub at: Instant,
    /// Which endpoint.
    pub api: SendApi,
    /// The token it was sent with.
    pub token: String,
    /// `touser` as sent.
    pub touser: String,
    /// `msgtype`.
    pub msgtype: String,
    /// WeCom's `agentid`.
    pub agentid: Option<u64>,
    /// `text.content` / `markdown.content`, a text card's description, or the first news
    /// article's title.
    pub content: String,
    /// The WeCom `msgid` answered.
    pub msgid: Option<String>,
    /// The whole request body.
    pub body: Value,
}

/// What an injected send failure answers. None of them delivers the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFault {
    /// HTTP 200 with this errcode.
    Errcode(i64),
    /// This HTTP status with an empty JSON object.
    Status(u16),
    /// Waits this long, then answers HTTP 504 (for clients that give up first).
    Hang(Duration),
    /// Delivers the message, then waits this long before answering: the platform took it
    /// and only its answer is late (a client that gives up first cannot know it went out).
    AcceptThenAnswerLate(Duration),
}

#[derive(Debug, Clone)]
struct Issued {
    value: String,
    expires_at: Instant,
    revoked: bool,
}

impl Issued {
    fn valid(&self, now: Instant) -> bool {
        !self.revoked && self.expires_at > now
    }
}

#[derive(Debug, Default)]
struct Account {
    current: Option<Issued>,
    previous: Option<Issued>,
}

#[derive(Debug)]
struct State {
    expires_in: u64,
    renew_ahead: Duration,
    delay: Duration,
    fail_next: u32,
    fail_errcode: i64,
    accounts: HashMap<Endpoint, Account>,
    issued: u64,
    fetches: Vec<Fetch>,
    api_calls: u64,
    api_refused: u64,
    send_faults: std::collections::VecDeque<SendFault>,
    send_delay: Duration,
    send_requests: u64,
    sends_refused: u64,
    unknown_users: std::collections::HashSet<String>,
    msgids: u64,
    sent: Vec<SentMessage>,
    duplicates_dropped: u64,
    visible_users: Vec<String>,
    visible_parties: Vec<u64>,
}

impl State {
    fn new() -> Self {
        Self {
            expires_in: 7200,
            renew_ahead: Duration::ZERO,
            delay: Duration::ZERO,
            fail_next: 0,
            fail_errcode: 0,
            accounts: HashMap::new(),
            issued: 0,
            fetches: Vec::new(),
            api_calls: 0,
            api_refused: 0,
            send_faults: std::collections::VecDeque::new(),
            send_delay: Duration::ZERO,
            send_requests: 0,
            sends_refused: 0,
            unknown_users: std::collections::HashSet::new(),
            msgids: 0,
            sent: Vec::new(),
            duplicates_dropped: 0,
            visible_users: Vec::new(),
            visible_parties: vec![1],
        }
    }

    /// A token fetch with valid credentials: the token and its remaining seconds, or an
    /// injected error.
    fn fetch(&mut self, endpoint: Endpoint, force: bool) -> Result<(String, u64), Value> {
        let now = Instant::now();
        if self.fail_next > 0 {
            self.fail_next -= 1;
            self.fetches.push(Fetch {
                at: now,
                endpoint,
                token: None,
                issued: false,
            });
            return Err(json!({"errcode": self.fail_errcode, "errmsg": "injected failure"}));
        }
        let renew_ahead = self.renew_ahead;
        let account = self.accounts.entry(endpoint).or_default();
        if let Some(current) = account
            .current
            .as_ref()
            .filter(|c| !force && c.valid(now) && c.expires_at.duration_since(now) > renew_ahead)
        {
            let value = current.value.clone();
            let left = current.expires_at.duration_since(now).as_secs();
            self.fetches.push(Fetch {
                at: now,
                endpoint,
                token: Some(value.clone()),
                issued: false,
            });
            return Ok((value, left));
        }
        self.issued += 1;
        let value = format!("fake-token-{}", self.issued);
        let account = self.accounts.entry(endpoint).or_default();
        let mut replaced = account.current.take();
        if let Some(old) = replaced.as_mut().filter(|_| force) {
            old.revoked = true;
        }
        account.previous = replaced;
        account.current = Some(Issued {
            value: value.clone(),
            expires_at: now + Duration::from_secs(self.expires_in),
            revoked: false,
        });
        self.fetches.push(Fetch {
            at: now,
            endpoint,
            token: Some(value.clone()),
            issued: true,
        });
        Ok((value, self.expires_in))
    }

    fn token_valid(&self, token: &str) -> bool {
        let now = Instant::now();
        self.accounts.values().any(|a| {
            [&a.current, &a.previous]
                .into_iter()
                .flatten()
                .any(|t| t.value == token && t.valid(now))
        })
    }
}

/// The running fake; stopped on drop.
pub struct FakePlatform {
    server: LoopbackServer,
    state: Arc<Mutex<State>>,
}

impl FakePlatform {
    /// Starts the fake on a free loopback port.
    pub fn start() -> FakePlatform {
        Self::start_on("127.0.0.1:0".parse().unwrap())
    }

    /// Starts the fake on `addr` (a platform that comes up after a client was refused).
    pub fn start_on(addr: std::net::SocketAddr) -> FakePlatform {
        let state = Arc::new(Mutex::new(State::new()));
        let served = Arc::clone(&state);
        let server = LoopbackServer::start_http(addr, "fake-platform", served, handle);
        FakePlatform { server, state }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Both platforms' API on this fake.
    pub fn endpoints(&self) -> ApiEndpoints {
        ApiEndpoints::both(self.url())
    }

    /// The WeCom credentials the fake accepts.
    pub fn wecom_source() -> TokenSource {
        TokenSource::wecom(CORP_ID, CORP_SECRET)
    }

    /// The Official Account credentials the fake accepts.
    pub fn mp_source() -> TokenSource {
        TokenSource::mp(APP_ID, APP_SECRET)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The lifetime of tokens issued from now on (7200 s by default).
    pub fn set_expires_in(&self, secs: u64) {
        self.state().expires_in = secs;
    }

    /// Within how long of its expiry a fetch replaces the current token with a new one
    /// (like `stable_token`'s 5 minutes) instead of repeating it. 0 by default.
    pub fn set_renew_ahead(&self, renew_ahead: Duration) {
        self.state().renew_ahead = renew_ahead;
    }

    /// How long every request waits before it is answered (0 by default).
    pub fn set_delay(&self, delay: Duration) {
        self.state().delay = delay;
    }

    /// The next `n` token fetches (with valid credentials) answer `errcode`.
    pub fn fail_next_fetches(&self, n: u32, errcode: i64) {
        let mut state = self.state();
        state.fail_next = n;
        state.fail_errcode = errcode;
    }

    /// Makes every token issued so far invalid for API calls; the next fetch issues a new one.
    pub fn revoke_current(&self) {
        for account in self.state().accounts.values_mut() {
            for token in [&mut account.current, &mut account.previous]
                .into_iter()
                .flatten()
            {
                token.revoked = true;
            }
        }
    }

    /// Requests to both token endpoints (error answers included).
    pub fn fetches(&self) -> usize {
        self.state().fetches.len()
    }

    /// Requests to one token endpoint.
    pub fn fetches_of(&self, endpoint: Endpoint) -> usize {
        self.state()
            .fetches
            .iter()
            .filter(|f| f.endpoint == endpoint)
            .count()
    }

    /// Every token fetch so far, in order.
    pub fn fetch_log(&self) -> Vec<Fetch> {
        self.state().fetches.clone()
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> u64 {
        self.state().issued
    }

    /// Requests to `get_api_domain_ip`.
    pub fn api_calls(&self) -> u64 {
        self.state().api_calls
    }

    /// Requests to `get_api_domain_ip` refused with 40001.
    pub fn api_refused(&self) -> u64 {
        self.state().api_refused
    }

    /// The next `n` requests to the send endpoints answer `fault` (after any earlier
    /// injected faults still pending) instead of delivering.
    pub fn fail_next_sends(&self, n: usize, fault: SendFault) {
        self.state()
            .send_faults
            .extend(std::iter::repeat_n(fault, n));
    }

    /// How long each request to a send endpoint waits before it is handled (0 by default).
    pub fn set_send_delay(&self, delay: Duration) {
        self.state().send_delay = delay;
    }

    /// WeCom members that do not exist: reported in `invaliduser`, or the send refused
    /// with 81013 when no member of `touser` is left.
    pub fn set_unknown_users(&self, users: &[&str]) {
        self.state().unknown_users = users.iter().map(|u| u.to_lowercase()).collect();
    }

    /// The members and departments `agent/get` names as the app's visible range.
    pub fn set_visible_range(&self, users: &[&str], parties: &[u64]) {
        let mut state = self.state();
        state.visible_users = users.iter().map(|u| (*u).to_owned()).collect();
        state.visible_parties = parties.to_vec();
    }

    /// Requests to both send endpoints (faults and refusals included).
    pub fn send_requests(&self) -> u64 {
        self.state().send_requests
    }

    /// Send requests refused because of their access token (40014).
    pub fn sends_refused(&self) -> u64 {
        self.state().sends_refused
    }

    /// Every message delivered so far, in order.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.state().sent.clone()
    }

    /// Messages delivered so far.
    pub fn delivered(&self) -> usize {
        self.state().sent.len()
    }

    /// WeCom requests not delivered because their duplicate check found the same JSON.
    pub fn duplicates_dropped(&self) -> u64 {
        self.state().duplicates_dropped
    }
}

type Answer = Response<Full<Bytes>>;

fn answer(status: StatusCode, body: Value) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn ok(body: Value) -> Answer {
    answer(StatusCode::OK, body)
}

fn error(errcode: i64, errmsg: &str) -> Answer {
    ok(json!({"errcode": errcode, "errmsg": errmsg}))
}

fn platform_error(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system busy",
        45009 => "reach max api daily quota limit",
        45015 => "response out of time limit or subscription is canceled",
        _ => "injected failure",
    }
}

/// A send request with the token `token` and JSON `body`, after any injected fault and the
/// send delay.
/// An AI bot's response_url: one use per response code, a markdown or template card body.
fn aibot_response(state: &Mutex<State>, code: &str, body: &[u8]) -> Answer {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return error(40_058, "invalid json");
    };
    let msgtype = value["msgtype"].as_str().unwrap_or_default().to_owned();
    let content = value[msgtype.as_str()]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if code.is_empty() || content.is_empty() && msgtype != "template_card" {
        return error(40_058, "missing response_code or content");
    }
    let mut state = lock(state);
    if state
        .sent
        .iter()
        .any(|m| m.api == SendApi::AibotResponse && m.touser == code)
    {
        return error(-1, "response_code already used");
    }
    state.sent.push(SentMessage {
        at: Instant::now(),
        api: SendApi::AibotResponse,
        token: String::new(),
        touser: code.to_owned(),
        msgtype,
        agentid: None,
        content,
        msgid: None,
        body: value,
    });
    ok(json!({"errcode": 0, "errmsg": "ok"}))
}

async fn send(state: &Mutex<State>, api: SendApi, token: &str, body: &[u8]) -> Answer {
    let (fault, delay) = {
        let mut state = lock(state);
        state.send_requests += 1;
        (state.send_faults.pop_front(), state.send_delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut answer_late = None;
    match fault {
        Some(SendFault::AcceptThenAnswerLate(late)) => answer_late = Some(late),
        Some(SendFault::Errcode(errcode)) => return error(errcode, platform_error(errcode)),
        Some(SendFault::Status(status)) => {
            return answer(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                json!({}),
            );
        }
        Some(SendFault::Hang(hang)) => {
            tokio::time::sleep(hang).await;
            return answer(StatusCode::GATEWAY_TIMEOUT, json!({}));
        }
        None => {}
    }
    let answer = deliver(state, api, token, body);
    if let Some(late) = answer_late {
        tokio::time::sleep(late).await;
    }
    answer
}

/// Checks and records one send; the answer.
fn deliver(state: &Mutex<State>, api: SendApi, token: &str, body: &[u8]) -> Answer {
    let mut state = lock(state);
    if token.is_empty() {
        return error(41001, "access_token missing");
    }
    if !state.token_valid(token) {
        state.sends_refused += 1;
        return error(40014, "invalid access_token");
    }
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return error(47001, "data format error");
    };
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
    let (touser, msgtype) = (field("touser").to_owned(), field("msgtype").to_owned());
    let agentid = body.get("agentid").and_then(Value::as_u64);
    if touser.trim().is_empty() {
        return error(40003, "invalid openid or userid");
    }
    if api == SendApi::Wecom && agentid.is_none() {
        return error(41011, "missing agentid");
    }
    let payload = &body[msgtype.as_str()];
    let str_at = |pointer: &str| payload.pointer(pointer).and_then(Value::as_str);
    let content = match (api, msgtype.as_str()) {
        (_, "text") | (SendApi::Wecom, "markdown") => str_at("/content"),
        (SendApi::Wecom, "textcard") => str_at("/description").filter(|_| {
            str_at("/title").is_some_and(|t| !t.is_empty())
                && str_at("/url").is_some_and(|u| !u.is_empty())
        }),
        (_, "news") => {
            let articles = payload["articles"].as_array().map_or(0, Vec::len);
            let max = if api == SendApi::Mp { 1 } else { 8 };
            if articles > max {
                return error(45008, "article size out of limit");
            }
            str_at("/articles/0/title")
        }
        _ => return error(40008, "invalid message type"),
    };
    let Some(content) = content.filter(|c| !c.is_empty()).map(str::to_owned) else {
        return error(44004, "empty content");
    };
    if api == SendApi::Wecom
        && body.get("enable_duplicate_check").and_then(Value::as_u64) == Some(1)
    {
        let interval = body
            .get("duplicate_check_interval")
            .and_then(Value::as_u64)
            .unwrap_or(1800);
        let now = Instant::now();
        let first = state.sent.iter().find(|m| {
            m.api == SendApi::Wecom
                && m.body == body
                && now.duration_since(m.at) < Duration::from_secs(interval)
        });
        if let Some(first) = first {
            let msgid = first.msgid.clone();
            state.duplicates_dropped += 1;
            return ok(json!({"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": msgid}));
        }
    }
    let (msgid, invalid) = match api {
        SendApi::Mp | SendApi::AibotResponse => (None, String::new()),
        SendApi::Wecom => {
            let members: Vec<String> = touser
                .split('|')
                .map(|u| u.trim().to_lowercase())
                .filter(|u| !u.is_empty())
                .collect();
            let invalid: Vec<&str> = members
                .iter()
                .filter(|u| state.unknown_users.contains(u.as_str()))
                .map(String::as_str)
                .collect();
            if invalid.len() == members.len() {
                return error(81013, "user & party & tag all invalid");
            }
            let invalid = invalid.join("|");
            state.msgids += 1;
            (Some(format!("fake-msgid-{}", state.msgids)), invalid)
        }
    };
    state.sent.push(SentMessage {
        at: Instant::now(),
        api,
        token: token.to_owned(),
        touser,
        msgtype,
        agentid,
        content,
        msgid: msgid.clone(),
        body,
    });
    match msgid {
        Some(msgid) => ok(json!({
            "errcode": 0, "errmsg": "ok", "invaliduser": invalid, "msgid": msgid
        })),
        None => ok(json!({"errcode": 0, "errmsg": "ok"})),
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Answer, Infallible> {
    let delay = lock(&state).delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let query: HashMap<String, String> = request
        .uri()
        .query()
        .map(|q| {
            reqwest::Url::parse(&format!("http://fake/?{q}"))
                .map(|u| u.query_pairs().into_owned().collect())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(answer(StatusCode::BAD_REQUEST, json!({}))),
    };
    let param = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();

    Ok(match (method, path.as_str()) {
        (Method::GET, "/cgi-bin/gettoken") => {
            let (corp_id, secret) = (param("corpid"), param("corpsecret"));
            if corp_id.is_empty() {
                error(41002, "corpid missing")
            } else if corp_id != CORP_ID {
                error(40013, "invalid corpid")
            } else if secret != CORP_SECRET {
                error(40001, "invalid secret")
            } else {
                match lock(&state).fetch(Endpoint::Gettoken, false) {
                    Ok((token, expires_in)) => ok(json!({
                        "errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": expires_in
                    })),
                    Err(body) => ok(body),
                }
            }
        }
        (Method::POST, "/cgi-bin/stable_token") => {
            let Ok(request) = serde_json::from_slice::<Value>(&body) else {
                return Ok(error(47001, "data format error"));
            };
            let field = |name: &str| {
                request
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            if field("grant_type") != "client_credential" {
                error(40002, "invalid grant_type")
            } else if field("appid") != APP_ID {
                error(40013, "invalid appid")
            } else if field("secret") != APP_SECRET {
                error(40125, "invalid appsecret")
            } else {
                let force = request.get("force_refresh").and_then(Value::as_bool) == Some(true);
                match lock(&state).fetch(Endpoint::StableToken, force) {
                    Ok((token, expires_in)) => {
                        ok(json!({"access_token": token, "expires_in": expires_in}))
                    }
                    Err(body) => ok(body),
                }
            }
        }
        (Method::GET, "/cgi-bin/get_api_domain_ip") => {
            let token = param("access_token");
            let mut state = lock(&state);
            state.api_calls += 1;
            if token.is_empty() {
                error(41001, "access_token missing")
            } else if state.token_valid(token) {
                ok(json!({"errcode": 0, "errmsg": "ok", "ip_list": []}))
            } else {
                state.api_refused += 1;
                error(
                    40001,
                    "invalid credential, access_token is invalid or not latest",
                )
            }
        }
        (Method::GET, "/cgi-bin/agent/get") => {
            let state = lock(&state);
            if !state.token_valid(param("access_token")) {
                error(40014, "invalid access_token")
            } else {
                let users: Vec<Value> = state
                    .visible_users
                    .iter()
                    .map(|u| json!({"userid": u}))
                    .collect();
                ok(json!({
                    "errcode": 0, "errmsg": "ok", "agentid": param("agentid").parse::<u64>().unwrap_or(0),
                    "allow_userinfos": {"user": users},
                    "allow_partys": {"partyid": state.visible_parties},
                    "allow_tags": {"tagid": []}
                }))
            }
        }
        (Method::POST, "/cgi-bin/message/send") => {
            send(&state, SendApi::Wecom, param("access_token"), &body).await
        }
        (Method::POST, "/cgi-bin/message/custom/send") => {
            send(&state, SendApi::Mp, param("access_token"), &body).await
        }
        (Method::POST, "/cgi-bin/aibot/response") => {
            aibot_response(&state, param("response_code"), &body)
        }
        _ => answer(
            StatusCode::NOT_FOUND,
            json!({"errcode": 404, "errmsg": "not found"}),
        ),
    })
}

/// An Official Account `shop` in plaintext mode whose AppID and AppSecret the fake accepts:
/// an `[[apps]]` table for sending customer messages.
pub fn shop_app() -> String {
    format!(
        "[[apps]]\nname = \"shop\"\nplatform = \"mp\"\napp_id = \"{APP_ID}\"\ntoken = \"shoptoken\"\nsecret = \"{APP_SECRET}\"\n"
    )
}

/// The config of a WeCom app that answers through the upstream at `upstream_url` and can send late replies
/// actively (the fake platform's credentials, `agent_id` 218), with `[api]` pointed at
/// `platform_url`. `reply_extra` goes into `[apps.reply]` (local rules); `gateway` is the
/// `[gateway]` section's body.
pub fn forward_app_config(
    gateway: &str,
    platform_url: &str,
    upstream_url: &str,
    secret: &str,
    forward_timeout_ms: u64,
    reply_extra: &str,
) -> String {
    format!(
        r#"
[gateway]
{gateway}
[api]
wecom_base_url = "{platform_url}"
mp_base_url = "{platform_url}"
[[apps]]
name = "demo"
platform = "wecom"
corp_id = "{CORP_ID}"
agent_id = {AGENT_ID}
token = "{TOKEN}"
encoding_aes_key = "{KEY}"
secret = "{CORP_SECRET}"
[apps.reply]
{reply_extra}
forward = "{upstream_url}"
forward_secret = "{secret}"
forward_timeout_ms = {forward_timeout_ms}
"#,
    )
}

/// An Official Account app `name` answered by an upstream bot at `upstream_url`, its API on
/// the fake at `platform_url`, able to send customer messages (AppID and AppSecret the fake
/// accepts). `app_extra` goes into its `[[apps]]` table: `encoding_aes_key = …` for safe
/// mode (plaintext mode without it), `plaintext_late_replies = true`, …
pub fn mp_forward_app_config(
    gateway: &str,
    platform_url: &str,
    upstream_url: &str,
    secret: &str,
    name: &str,
    app_extra: &str,
) -> String {
    format!(
        r#"
[gateway]
{gateway}
[api]
mp_base_url = "{platform_url}"
[[apps]]
name = "{name}"
platform = "mp"
app_id = "{APP_ID}"
secret = "{APP_SECRET}"
token = "{TOKEN}"
{app_extra}
[apps.reply]
forward = "{upstream_url}"
forward_secret = "{secret}"
forward_timeout_ms = 5000
"#,
    )
}

/// The official sample's EncodingAESKey as an `app_extra` line, for an app in safe mode.
pub fn safe_mode() -> String {
    format!("encoding_aes_key = \"{KEY}\"")
}
