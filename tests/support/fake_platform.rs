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
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use wxgate::wechat::{ApiEndpoints, TokenSource};

/// The WeCom corp id the fake accepts.
pub const CORP_ID: &str = "wwfakecorp0000001";
/// The WeCom app secret the fake accepts.
pub const CORP_SECRET: &str = "fake-corp-secret-0123456789abcdef";
/// The Official Account AppID the fake accepts.
pub const APP_ID: &str = "wxfakeapp00000001";
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
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakePlatform {
    /// Starts the fake on a free loopback port.
    pub fn start() -> FakePlatform {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::new()));
        let (shutdown, stop) = tokio::sync::oneshot::channel();
        let served = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("fake-platform".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("fake platform runtime");
                runtime.block_on(serve(listener, served, stop));
                // Dropping the runtime here cancels connections still open or delayed.
            })
            .expect("spawn fake platform thread");
        FakePlatform {
            addr,
            state,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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
}

impl Drop for FakePlatform {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<Mutex<State>>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    let service = service_fn(move |request| handle(Arc::clone(&state), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
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
        _ => answer(
            StatusCode::NOT_FOUND,
            json!({"errcode": 404, "errmsg": "not found"}),
        ),
    })
}
