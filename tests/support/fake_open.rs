//! A fake WeChat Open Platform (开放平台) third-party platform ("component") API on
//! `127.0.0.1:{random port}`: the component's tokens, the authorization of Official Accounts
//! by their administrators (the browser pages included), the authorizers' tokens, and one
//! API call to spend an authorizer's token on, with knobs for expiry, revocation, failures
//! and latency.
//!
//! It runs on its own thread with its own tokio runtime, so it outlives the runtimes of the
//! tests that use it (`#[tokio::test]` makes one per test); dropping it stops it.
//!
//! Like WeChat, every error answers HTTP 200 with `{"errcode":N,"errmsg":"…"}`. Every
//! component endpoint takes a JSON body (one that is not JSON answers 47001) naming the
//! component in `component_appid` (another AppID answers 61011). Those that take
//! `?component_access_token=T` check it first: missing answers 41001; a token not issued,
//! expired ([`FakeOpen::expire_component_tokens`]) or otherwise invalid answers 40001 and
//! counts as a refusal ([`FakeOpen::credential_refusals`]).
//!
//! * `POST /cgi-bin/component/api_component_token`
//!   `{"component_appid","component_appsecret","component_verify_ticket"}`: a wrong AppID
//!   answers 61011, a wrong secret 40125, a caller not on the IP whitelist
//!   ([`FakeOpen::set_whitelisted`]) 61004. The ticket must be one issued with
//!   [`FakeOpen::issue_ticket`] (`ticket@@@N`, valid 12 hours): an expired one
//!   ([`FakeOpen::expire_tickets`]) answers 61005, any other 61006. Every success issues a
//!   new token, `{"component_access_token":"component-token-N","expires_in":7200}`
//!   ([`FakeOpen::set_component_expires_in`]); earlier ones stay valid until their own
//!   expiry.
//! * `POST /cgi-bin/component/api_start_push_ticket` `{"component_appid","component_secret"}`
//!   (no token): checks the AppID (61011) and the secret (40125), records the request
//!   ([`FakeOpen::push_ticket_requests`]) and answers `{"errcode":0,"errmsg":"ok"}`; it
//!   pushes nothing (tests call [`FakeOpen::issue_ticket`]).
//! * `POST /cgi-bin/component/api_create_preauthcode?component_access_token=T`
//!   `{"component_appid"}`: `{"pre_auth_code":"preauthcode@@@N","expires_in":600}`.
//! * `GET /cgi-bin/componentloginpage?component_appid&pre_auth_code&redirect_uri&auth_type`
//!   `[&biz_appid]` (the PC page) and `GET /wxaopen/safe/bindcomponent?action=bindcomponent`
//!   `&no_scan=1&component_appid&pre_auth_code&redirect_uri&auth_type[&biz_appid]` (the
//!   mobile one) check the component and the pre-auth code (issued, unexpired, not used by
//!   an authorization yet); a failed check answers an HTML page saying `pre_auth_code
//!   invalid` and why. A good visit is recorded ([`FakeOpen::login_visits`]); then, if a test
//!   named the administrator's account with [`FakeOpen::set_next_authorizer`], the account
//!   is authorized ([`FakeOpen::authorize`]), the pre-auth code is used up, and the page
//!   answers 302 to `redirect_uri?auth_code=queryauthcode@@@N&expires_in=600` (`&` if
//!   `redirect_uri` has a query already); otherwise it answers an HTML page "waiting for the
//!   administrator". `biz_appid` and `auth_type` are recorded, not enforced.
//! * [`FakeOpen::authorize`] stands for an administrator's authorization: it answers a new
//!   authorization code (`queryauthcode@@@N`, valid 600 s) and makes a new refresh token
//!   (`refreshtoken@@@<appid>@@@N`) the authorizer's current one; the previous one stops
//!   working, as a re-authorization does on WeChat.
//! * `POST /cgi-bin/component/api_query_auth?component_access_token=T`
//!   `{"component_appid","authorization_code"}`: a code not issued answers 61009, an expired
//!   one ([`FakeOpen::expire_auth_codes`]) 61010, one already exchanged 61009 when codes are
//!   single use ([`FakeOpen::set_auth_codes_single_use`], off by default), one whose
//!   authorizer was revoked since 61009. Success issues a new authorizer token:
//!   `{"authorization_info":{"authorizer_appid","authorizer_access_token":`
//!   `"authorizer-token-<appid>-N","expires_in":7200,"authorizer_refresh_token":<current>,`
//!   `"func_info":[{"funcscope_category":{"id":1}},…]}}`.
//! * `POST /cgi-bin/component/api_authorizer_token?component_access_token=T`
//!   `{"component_appid","authorizer_appid","authorizer_refresh_token"}`: anything but the
//!   authorizer's current refresh token (or an authorizer revoked, or never authorized)
//!   answers 61023. Success issues a new authorizer token (earlier ones stay valid until
//!   their own expiry): `{"authorizer_access_token","expires_in":7200,`
//!   `"authorizer_refresh_token":R}` ([`FakeOpen::set_authorizer_expires_in`]); `R` is the
//!   same current refresh token, or, with [`FakeOpen::set_rotate_refresh_tokens`], a new
//!   one that replaces the one just used.
//! * `POST /cgi-bin/component/api_get_authorizer_list?component_access_token=T`
//!   `{"component_appid","offset","count"}`: a missing `count` answers 47001, one over 500
//!   40170. Answers `{"total_count":N,"list":[{"authorizer_appid","refresh_token",`
//!   `"auth_time"}…]}` for the current (not revoked) authorizations, by AppID, paged.
//! * `POST /cgi-bin/component/api_get_authorizer_info?component_access_token=T`
//!   `{"component_appid","authorizer_appid"}`: an account not (or no longer) authorized
//!   answers 61003. Answers `{"authorizer_info":{"nick_name","head_img":"",`
//!   `"service_type_info":{"id":2},"verify_type_info":{"id":0},"user_name",`
//!   `"principal_name":"Fake Co","alias":"","qrcode_url":""},"authorization_info":`
//!   `{"authorizer_appid","authorizer_refresh_token","func_info":[…]}}` (names from
//!   [`FakeOpen::set_account`], by default `Fake <appid>` and `gh_` + 12 characters of the
//!   AppID after `wx`).
//! * `POST /cgi-bin/message/custom/send?access_token=T` (Official Account customer message,
//!   sent on an authorizer's behalf): `T` must be a valid authorizer token (issued,
//!   unexpired, its authorizer not revoked; a component token is not one), else 41001
//!   (missing) or 40001 (counted as a refusal). The body needs `touser` (40003) and a `text`
//!   message's `text.content` or a `news` message's single article (`news.articles[0].title`;
//!   more than one article is 45008), other types 40008, empty content 44004. Delivered
//!   messages are recorded ([`FakeOpen::sent`]); answers `{"errcode":0,"errmsg":"ok"}`.
//!
//! Counters count every request to their endpoint, whatever it answered (refusals and
//! injected failures included); those named `…_issued` count what was issued.
//! [`FakeOpen::fail_next`] injects errcodes on the endpoints whose path ends with a given
//! suffix, [`FakeOpen::set_delay`] slows every request, [`FakeOpen::revoke`] and
//! [`FakeOpen::invalidate_refresh_token_only`] take an authorization away, wholly or only the
//! refresh token a client holds.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::loopback::{LoopbackServer, lock};

/// The component (third-party platform) AppID the fake accepts.
pub const COMPONENT_APP_ID: &str = "wxfakecomponent01";
/// The component AppSecret the fake accepts.
pub const COMPONENT_SECRET: &str = "fake-component-secret-0123456789ab";
/// How long an issued `component_verify_ticket` is valid.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The lifetime of a pre-auth code, seconds.
pub const PRE_AUTH_CODE_EXPIRES_IN: u64 = 600;
/// The lifetime of an authorization code, seconds.
pub const AUTH_CODE_EXPIRES_IN: u64 = 600;

/// A customer message the fake delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The authorizer whose access token it was sent with.
    pub authorizer_appid: String,
    /// `touser` as sent.
    pub touser: String,
    /// `msgtype`: `text` or `news`.
    pub msgtype: String,
    /// `text.content`, or the news article's title.
    pub content: String,
    /// The access token it was sent with.
    pub token: String,
}

/// A good visit of an authorization page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginVisit {
    /// `"pc"` (`/cgi-bin/componentloginpage`) or `"mobile"` (`/wxaopen/safe/bindcomponent`).
    pub page: &'static str,
    /// `auth_type` as given (empty when missing).
    pub auth_type: String,
    /// `biz_appid`, if given.
    pub biz_appid: Option<String>,
    /// `redirect_uri`, decoded.
    pub redirect_uri: String,
    /// The `Referer` header, if any (WeChat requires one from the registered domain).
    pub referer: Option<String>,
}

#[derive(Debug, Clone)]
struct Issued {
    value: String,
    expires_at: Instant,
    revoked: bool,
}

impl Issued {
    fn new(value: String, lifetime: Duration) -> Self {
        Self {
            value,
            expires_at: Instant::now() + lifetime,
            revoked: false,
        }
    }

    fn valid(&self, now: Instant) -> bool {
        !self.revoked && self.expires_at > now
    }

    fn expire(&mut self) {
        self.expires_at = self.expires_at.min(Instant::now());
    }
}

#[derive(Debug)]
struct Code {
    expires_at: Instant,
    used: bool,
}

#[derive(Debug)]
struct AuthCode {
    appid: String,
    expires_at: Instant,
    used: bool,
}

#[derive(Debug)]
struct Authorizer {
    funcs: Vec<u32>,
    refresh_token: String,
    auth_time: u64,
    revoked: bool,
    access_tokens: Vec<Issued>,
}

#[derive(Debug)]
struct Fault {
    path_suffix: String,
    errcode: i64,
    left: usize,
}

#[derive(Debug)]
struct State {
    delay: Duration,
    whitelisted: bool,
    component_expires_in: u64,
    authorizer_expires_in: u64,
    rotate_refresh_tokens: bool,
    auth_codes_single_use: bool,
    faults: Vec<Fault>,

    tickets: Vec<Issued>,
    component_tokens: Vec<Issued>,
    pre_auth_codes: HashMap<String, Code>,
    auth_codes: HashMap<String, AuthCode>,
    authorizers: BTreeMap<String, Authorizer>,
    accounts: HashMap<String, (String, String)>,
    next_authorizer: Option<(String, Vec<u32>)>,
    auth_codes_issued: u64,
    refresh_tokens_issued: u64,
    authorizer_tokens_issued: u64,

    component_token_fetches: usize,
    push_ticket_requests: usize,
    pre_auth_code_requests: usize,
    query_auths: usize,
    authorizer_refreshes: HashMap<String, usize>,
    authorizer_list_calls: usize,
    authorizer_info_calls: usize,
    send_requests: usize,
    credential_refusals: usize,
    sent: Vec<SentMessage>,
    login_visits: Vec<LoginVisit>,
}

impl State {
    fn new() -> Self {
        Self {
            delay: Duration::ZERO,
            whitelisted: true,
            component_expires_in: 7200,
            authorizer_expires_in: 7200,
            rotate_refresh_tokens: false,
            auth_codes_single_use: false,
            faults: Vec::new(),
            tickets: Vec::new(),
            component_tokens: Vec::new(),
            pre_auth_codes: HashMap::new(),
            auth_codes: HashMap::new(),
            authorizers: BTreeMap::new(),
            accounts: HashMap::new(),
            next_authorizer: None,
            auth_codes_issued: 0,
            refresh_tokens_issued: 0,
            authorizer_tokens_issued: 0,
            component_token_fetches: 0,
            push_ticket_requests: 0,
            pre_auth_code_requests: 0,
            query_auths: 0,
            authorizer_refreshes: HashMap::new(),
            authorizer_list_calls: 0,
            authorizer_info_calls: 0,
            send_requests: 0,
            credential_refusals: 0,
            sent: Vec::new(),
            login_visits: Vec::new(),
        }
    }

    /// The errcode injected for a request to `path`, if any is pending.
    fn take_fault(&mut self, path: &str) -> Option<i64> {
        let fault = self
            .faults
            .iter_mut()
            .find(|f| f.left > 0 && path.ends_with(f.path_suffix.as_str()))?;
        fault.left -= 1;
        let errcode = fault.errcode;
        self.faults.retain(|f| f.left > 0);
        Some(errcode)
    }

    fn new_refresh_token(&mut self, appid: &str) -> String {
        self.refresh_tokens_issued += 1;
        format!("refreshtoken@@@{appid}@@@{}", self.refresh_tokens_issued)
    }

    /// An administrator authorizes `appid`: a new current refresh token, and a new
    /// authorization code for it.
    fn authorize(&mut self, appid: &str, funcs: &[u32]) -> String {
        let refresh_token = self.new_refresh_token(appid);
        let auth_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let authorizer = self
            .authorizers
            .entry(appid.to_owned())
            .or_insert_with(|| Authorizer {
                funcs: Vec::new(),
                refresh_token: String::new(),
                auth_time,
                revoked: false,
                access_tokens: Vec::new(),
            });
        authorizer.funcs = funcs.to_vec();
        authorizer.refresh_token = refresh_token;
        authorizer.auth_time = auth_time;
        authorizer.revoked = false;
        self.auth_codes_issued += 1;
        let code = format!("queryauthcode@@@{}", self.auth_codes_issued);
        self.auth_codes.insert(
            code.clone(),
            AuthCode {
                appid: appid.to_owned(),
                expires_at: Instant::now() + Duration::from_secs(AUTH_CODE_EXPIRES_IN),
                used: false,
            },
        );
        code
    }

    /// A new access token for the (authorized) `appid`, and its lifetime.
    fn issue_authorizer_token(&mut self, appid: &str) -> (String, u64) {
        self.authorizer_tokens_issued += 1;
        let value = format!("authorizer-token-{appid}-{}", self.authorizer_tokens_issued);
        let expires_in = self.authorizer_expires_in;
        if let Some(authorizer) = self.authorizers.get_mut(appid) {
            authorizer
                .access_tokens
                .push(Issued::new(value.clone(), Duration::from_secs(expires_in)));
        }
        (value, expires_in)
    }

    /// Checks a `component_access_token`: the errcode and errmsg of a refusal.
    fn check_component_token(&mut self, token: &str) -> Result<(), (i64, &'static str)> {
        let now = Instant::now();
        if token.is_empty() {
            Err((41001, "access_token missing"))
        } else if self
            .component_tokens
            .iter()
            .any(|t| t.value == token && t.valid(now))
        {
            Ok(())
        } else {
            self.credential_refusals += 1;
            Err((40001, INVALID_CREDENTIAL))
        }
    }

    /// The authorizer a valid authorizer access token belongs to.
    fn authorizer_of(&self, token: &str) -> Option<String> {
        let now = Instant::now();
        self.authorizers
            .iter()
            .find(|(_, a)| {
                !a.revoked
                    && a.access_tokens
                        .iter()
                        .any(|t| t.value == token && t.valid(now))
            })
            .map(|(appid, _)| appid.clone())
    }

    /// `nick_name` and `user_name` of `appid`.
    fn account(&self, appid: &str) -> (String, String) {
        self.accounts.get(appid).cloned().unwrap_or_else(|| {
            let tail: String = appid
                .strip_prefix("wx")
                .unwrap_or(appid)
                .chars()
                .take(12)
                .collect();
            (format!("Fake {appid}"), format!("gh_{tail}"))
        })
    }
}

/// The running fake; stopped on drop.
pub struct FakeOpen {
    server: LoopbackServer,
    state: Arc<Mutex<State>>,
}

impl FakeOpen {
    /// Starts the fake on a free loopback port.
    pub fn start() -> FakeOpen {
        let state = Arc::new(Mutex::new(State::new()));
        let served = Arc::clone(&state);
        let server =
            LoopbackServer::start_http("127.0.0.1:0".parse().unwrap(), "fake-open", served, handle);
        FakeOpen { server, state }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    // --------------------------------------------------------------------------------------
    // What WeChat does on its own
    // --------------------------------------------------------------------------------------

    /// Issues a new `component_verify_ticket` (`ticket@@@N`, valid 12 hours), as WeChat pushes
    /// one every 10 minutes; earlier ones stay valid until their own expiry.
    pub fn issue_ticket(&self) -> String {
        let mut state = self.state();
        let value = format!("ticket@@@{}", state.tickets.len() + 1);
        state
            .tickets
            .push(Issued::new(value.clone(), TICKET_LIFETIME));
        value
    }

    /// An administrator authorizes `authorizer_appid` with the permission sets `funcs`: a new
    /// authorization code (`queryauthcode@@@N`, valid 600 s), and a new current refresh token
    /// for the account that replaces its previous one.
    pub fn authorize(&self, authorizer_appid: &str, funcs: &[u32]) -> String {
        self.state().authorize(authorizer_appid, funcs)
    }

    /// The account the next good visit of an authorization page authorizes (once).
    pub fn set_next_authorizer(&self, authorizer_appid: &str, funcs: &[u32]) {
        self.state().next_authorizer = Some((authorizer_appid.to_owned(), funcs.to_vec()));
    }

    /// The `nick_name` and `user_name` (`gh_…`) `api_get_authorizer_info` answers for
    /// `authorizer_appid`.
    pub fn set_account(&self, authorizer_appid: &str, nick_name: &str, user_name: &str) {
        self.state().accounts.insert(
            authorizer_appid.to_owned(),
            (nick_name.to_owned(), user_name.to_owned()),
        );
    }

    /// The administrator cancels the authorization of `authorizer_appid`: its refresh token,
    /// access tokens and pending authorization codes stop working, and it leaves the list.
    pub fn revoke(&self, authorizer_appid: &str) {
        let mut state = self.state();
        state.auth_codes.retain(|_, c| c.appid != authorizer_appid);
        if let Some(authorizer) = state.authorizers.get_mut(authorizer_appid) {
            authorizer.revoked = true;
            for token in &mut authorizer.access_tokens {
                token.revoked = true;
            }
        }
    }

    /// Silently replaces the current refresh token of `authorizer_appid`: the one a client
    /// holds answers 61023, while `api_get_authorizer_list` lists the new one. Its access
    /// tokens stay valid.
    pub fn invalidate_refresh_token_only(&self, authorizer_appid: &str) {
        let mut state = self.state();
        if state.authorizers.contains_key(authorizer_appid) {
            let refresh_token = state.new_refresh_token(authorizer_appid);
            if let Some(authorizer) = state.authorizers.get_mut(authorizer_appid) {
                authorizer.refresh_token = refresh_token;
            }
        }
    }

    // --------------------------------------------------------------------------------------
    // Knobs
    // --------------------------------------------------------------------------------------

    /// Whether the caller is on the component's IP whitelist (true by default); off,
    /// `api_component_token` answers 61004.
    pub fn set_whitelisted(&self, whitelisted: bool) {
        self.state().whitelisted = whitelisted;
    }

    /// The lifetime of component tokens issued from now on (7200 s by default).
    pub fn set_component_expires_in(&self, secs: u64) {
        self.state().component_expires_in = secs;
    }

    /// The lifetime of authorizer tokens issued from now on (7200 s by default).
    pub fn set_authorizer_expires_in(&self, secs: u64) {
        self.state().authorizer_expires_in = secs;
    }

    /// Whether every `api_authorizer_token` issues a new refresh token that replaces the one
    /// used (false by default: the current one is answered again).
    pub fn set_rotate_refresh_tokens(&self, rotate: bool) {
        self.state().rotate_refresh_tokens = rotate;
    }

    /// Whether an authorization code can be exchanged only once (false by default); a
    /// second exchange then answers 61009.
    pub fn set_auth_codes_single_use(&self, single_use: bool) {
        self.state().auth_codes_single_use = single_use;
    }

    /// Makes every ticket issued so far expired (61005).
    pub fn expire_tickets(&self) {
        self.state().tickets.iter_mut().for_each(Issued::expire);
    }

    /// Makes every component token issued so far expired (40001).
    pub fn expire_component_tokens(&self) {
        self.state()
            .component_tokens
            .iter_mut()
            .for_each(Issued::expire);
    }

    /// Makes every access token issued so far for `authorizer_appid` expired (40001).
    pub fn expire_authorizer_tokens(&self, authorizer_appid: &str) {
        if let Some(authorizer) = self.state().authorizers.get_mut(authorizer_appid) {
            authorizer.access_tokens.iter_mut().for_each(Issued::expire);
        }
    }

    /// Makes every authorization code issued so far expired (61010).
    pub fn expire_auth_codes(&self) {
        let now = Instant::now();
        for code in self.state().auth_codes.values_mut() {
            code.expires_at = code.expires_at.min(now);
        }
    }

    /// The next `n` requests to a path ending with `path_suffix` (e.g.
    /// `"api_authorizer_token"`) answer `errcode` (after any failures injected earlier for
    /// the same requests), before any check.
    pub fn fail_next(&self, path_suffix: &str, errcode: i64, n: usize) {
        if n > 0 {
            self.state().faults.push(Fault {
                path_suffix: path_suffix.to_owned(),
                errcode,
                left: n,
            });
        }
    }

    /// How long every request waits before it is handled (0 by default).
    pub fn set_delay(&self, delay: Duration) {
        self.state().delay = delay;
    }

    // --------------------------------------------------------------------------------------
    // What happened
    // --------------------------------------------------------------------------------------

    /// Requests to `api_component_token`.
    pub fn component_token_fetches(&self) -> usize {
        self.state().component_token_fetches
    }

    /// Component tokens issued so far.
    pub fn component_tokens_issued(&self) -> usize {
        self.state().component_tokens.len()
    }

    /// Requests to `api_start_push_ticket`.
    pub fn push_ticket_requests(&self) -> usize {
        self.state().push_ticket_requests
    }

    /// Requests to `api_create_preauthcode`.
    pub fn pre_auth_code_requests(&self) -> usize {
        self.state().pre_auth_code_requests
    }

    /// Pre-auth codes issued so far.
    pub fn pre_auth_codes_issued(&self) -> usize {
        self.state().pre_auth_codes.len()
    }

    /// Requests to `api_query_auth`.
    pub fn query_auths(&self) -> usize {
        self.state().query_auths
    }

    /// Requests to `api_authorizer_token` naming `authorizer_appid`.
    pub fn authorizer_refreshes(&self, authorizer_appid: &str) -> usize {
        self.state()
            .authorizer_refreshes
            .get(authorizer_appid)
            .copied()
            .unwrap_or(0)
    }

    /// Requests to `api_authorizer_token`, all authorizers together.
    pub fn authorizer_refreshes_total(&self) -> usize {
        self.state().authorizer_refreshes.values().sum()
    }

    /// Requests to `api_get_authorizer_list`.
    pub fn authorizer_list_calls(&self) -> usize {
        self.state().authorizer_list_calls
    }

    /// Requests to `api_get_authorizer_info`.
    pub fn authorizer_info_calls(&self) -> usize {
        self.state().authorizer_info_calls
    }

    /// Requests to `message/custom/send`.
    pub fn send_requests(&self) -> usize {
        self.state().send_requests
    }

    /// Requests refused with 40001 because of their `component_access_token` or
    /// `access_token`.
    pub fn credential_refusals(&self) -> usize {
        self.state().credential_refusals
    }

    /// The current refresh token of `authorizer_appid`, `None` if it was never authorized or
    /// was revoked.
    pub fn current_refresh_token(&self, authorizer_appid: &str) -> Option<String> {
        self.state()
            .authorizers
            .get(authorizer_appid)
            .filter(|a| !a.revoked)
            .map(|a| a.refresh_token.clone())
    }

    /// Every customer message delivered so far, in order.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.state().sent.clone()
    }

    /// Every good visit of an authorization page so far, in order.
    pub fn login_visits(&self) -> Vec<LoginVisit> {
        self.state().login_visits.clone()
    }
}

type Answer = Response<Full<Bytes>>;

fn answer(status: StatusCode, content_type: &'static str, body: String) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

fn ok(body: Value) -> Answer {
    answer(
        StatusCode::OK,
        "application/json; charset=utf-8",
        body.to_string(),
    )
}

fn error(errcode: i64, errmsg: &str) -> Answer {
    ok(json!({"errcode": errcode, "errmsg": errmsg}))
}

const INVALID_CREDENTIAL: &str = "invalid credential, access_token is invalid or not latest";

fn html(text: &str) -> Answer {
    answer(
        StatusCode::OK,
        "text/html; charset=utf-8",
        format!("<!DOCTYPE html><html><body><p>{text}</p></body></html>"),
    )
}

fn injected(errcode: i64) -> Answer {
    let errmsg = match errcode {
        -1 => "system error",
        45009 => "reach max api daily quota limit",
        61023 => "refresh_token is invalid",
        _ => "injected failure",
    };
    error(errcode, errmsg)
}

/// One request, read.
struct Call {
    query: HashMap<String, String>,
    /// The body, if it is JSON.
    json: Option<Value>,
    referer: Option<String>,
}

impl Call {
    fn param(&self, name: &str) -> &str {
        self.query.get(name).map(String::as_str).unwrap_or_default()
    }

    fn field(&self, name: &str) -> &str {
        self.json
            .as_ref()
            .and_then(|j| j.get(name))
            .and_then(Value::as_str)
            .unwrap_or_default()
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
    let referer = request
        .headers()
        .get(hyper::header::REFERER)
        .and_then(|r| r.to_str().ok())
        .map(str::to_owned);
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(answer(
                StatusCode::BAD_REQUEST,
                "application/json; charset=utf-8",
                "{}".into(),
            ));
        }
    };
    let call = Call {
        query,
        json: serde_json::from_slice::<Value>(&body).ok(),
        referer,
    };
    let mut state = lock(&state);
    Ok(route(&mut state, &method, &path, &call))
}

fn route(state: &mut State, method: &Method, path: &str, call: &Call) -> Answer {
    let counter = match (method, path) {
        (&Method::POST, "/cgi-bin/component/api_component_token") => {
            &mut state.component_token_fetches
        }
        (&Method::POST, "/cgi-bin/component/api_start_push_ticket") => {
            &mut state.push_ticket_requests
        }
        (&Method::POST, "/cgi-bin/component/api_create_preauthcode") => {
            &mut state.pre_auth_code_requests
        }
        (&Method::POST, "/cgi-bin/component/api_query_auth") => &mut state.query_auths,
        (&Method::POST, "/cgi-bin/component/api_authorizer_token") => state
            .authorizer_refreshes
            .entry(call.field("authorizer_appid").to_owned())
            .or_default(),
        (&Method::POST, "/cgi-bin/component/api_get_authorizer_list") => {
            &mut state.authorizer_list_calls
        }
        (&Method::POST, "/cgi-bin/component/api_get_authorizer_info") => {
            &mut state.authorizer_info_calls
        }
        (&Method::POST, "/cgi-bin/message/custom/send") => &mut state.send_requests,
        (&Method::GET, "/cgi-bin/componentloginpage" | "/wxaopen/safe/bindcomponent") => {
            return match state.take_fault(path) {
                Some(errcode) => injected(errcode),
                None => login_page(state, path, call),
            };
        }
        _ => {
            return answer(
                StatusCode::NOT_FOUND,
                "application/json; charset=utf-8",
                json!({"errcode": 404, "errmsg": "not found"}).to_string(),
            );
        }
    };
    *counter += 1;
    if let Some(errcode) = state.take_fault(path) {
        return injected(errcode);
    }
    match path {
        "/cgi-bin/component/api_component_token" => component_token(state, call),
        "/cgi-bin/component/api_start_push_ticket" => start_push_ticket(call),
        "/cgi-bin/message/custom/send" => custom_send(state, call),
        _ => {
            let token = call.param("component_access_token");
            if let Err((errcode, errmsg)) = state.check_component_token(token) {
                return error(errcode, errmsg);
            }
            if call.json.is_none() {
                return error(47001, "data format error");
            }
            if call.field("component_appid") != COMPONENT_APP_ID {
                return error(61011, "invalid component");
            }
            match path {
                "/cgi-bin/component/api_create_preauthcode" => create_preauthcode(state),
                "/cgi-bin/component/api_query_auth" => query_auth(state, call),
                "/cgi-bin/component/api_authorizer_token" => authorizer_token(state, call),
                "/cgi-bin/component/api_get_authorizer_list" => authorizer_list(state, call),
                _ => authorizer_info(state, call),
            }
        }
    }
}

/// The AppID and secret checks of the endpoints that take the secret: the refusal, if any.
fn check_component(call: &Call, secret_field: &str) -> Option<Answer> {
    if call.json.is_none() {
        Some(error(47001, "data format error"))
    } else if call.field("component_appid") != COMPONENT_APP_ID {
        Some(error(61011, "invalid component"))
    } else if call.field(secret_field) != COMPONENT_SECRET {
        Some(error(40125, "invalid appsecret"))
    } else {
        None
    }
}

fn component_token(state: &mut State, call: &Call) -> Answer {
    if let Some(refused) = check_component(call, "component_appsecret") {
        return refused;
    }
    if !state.whitelisted {
        return error(61004, "api forbidden for ip");
    }
    let now = Instant::now();
    let ticket = call.field("component_verify_ticket");
    match state.tickets.iter().find(|t| t.value == ticket) {
        None => return error(61006, "component_verify_ticket is invalid"),
        Some(t) if !t.valid(now) => return error(61005, "component_verify_ticket is expired"),
        Some(_) => {}
    }
    let value = format!("component-token-{}", state.component_tokens.len() + 1);
    let expires_in = state.component_expires_in;
    state
        .component_tokens
        .push(Issued::new(value.clone(), Duration::from_secs(expires_in)));
    ok(json!({"component_access_token": value, "expires_in": expires_in}))
}

fn start_push_ticket(call: &Call) -> Answer {
    check_component(call, "component_secret")
        .unwrap_or_else(|| ok(json!({"errcode": 0, "errmsg": "ok"})))
}

fn create_preauthcode(state: &mut State) -> Answer {
    let code = format!("preauthcode@@@{}", state.pre_auth_codes.len() + 1);
    state.pre_auth_codes.insert(
        code.clone(),
        Code {
            expires_at: Instant::now() + Duration::from_secs(PRE_AUTH_CODE_EXPIRES_IN),
            used: false,
        },
    );
    ok(json!({"pre_auth_code": code, "expires_in": PRE_AUTH_CODE_EXPIRES_IN}))
}

fn func_info(funcs: &[u32]) -> Value {
    funcs
        .iter()
        .map(|id| json!({"funcscope_category": {"id": id}}))
        .collect()
}

fn query_auth(state: &mut State, call: &Call) -> Answer {
    let now = Instant::now();
    let single_use = state.auth_codes_single_use;
    let Some(code) = state.auth_codes.get_mut(call.field("authorization_code")) else {
        return error(61009, "code is invalid");
    };
    if code.expires_at <= now {
        return error(61010, "code is expired");
    }
    if code.used && single_use {
        return error(61009, "code is invalid");
    }
    code.used = true;
    let appid = code.appid.clone();
    let (token, expires_in) = state.issue_authorizer_token(&appid);
    let Some(authorizer) = state.authorizers.get(&appid) else {
        return error(61009, "code is invalid");
    };
    ok(json!({"authorization_info": {
        "authorizer_appid": appid,
        "authorizer_access_token": token,
        "expires_in": expires_in,
        "authorizer_refresh_token": authorizer.refresh_token,
        "func_info": func_info(&authorizer.funcs),
    }}))
}

fn authorizer_token(state: &mut State, call: &Call) -> Answer {
    let appid = call.field("authorizer_appid").to_owned();
    let refresh_token = call.field("authorizer_refresh_token");
    let current = state.authorizers.get(&appid).is_some_and(|a| {
        !a.revoked && !refresh_token.is_empty() && a.refresh_token == refresh_token
    });
    if !current {
        return error(61023, "refresh_token is invalid");
    }
    if state.rotate_refresh_tokens {
        let rotated = state.new_refresh_token(&appid);
        if let Some(authorizer) = state.authorizers.get_mut(&appid) {
            authorizer.refresh_token = rotated;
        }
    }
    let (token, expires_in) = state.issue_authorizer_token(&appid);
    let refresh_token = state
        .authorizers
        .get(&appid)
        .map(|a| a.refresh_token.clone())
        .unwrap_or_default();
    ok(json!({
        "authorizer_access_token": token,
        "expires_in": expires_in,
        "authorizer_refresh_token": refresh_token,
    }))
}

fn authorizer_list(state: &State, call: &Call) -> Answer {
    let number = |name: &str| {
        call.json
            .as_ref()
            .and_then(|j| j.get(name))
            .and_then(Value::as_u64)
    };
    let Some(count) = number("count") else {
        return error(47001, "data format error");
    };
    if count > 500 {
        return error(40170, "invalid count");
    }
    let offset = number("offset").unwrap_or(0);
    let current = state.authorizers.iter().filter(|(_, a)| !a.revoked);
    let list: Vec<Value> = current
        .clone()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(count).unwrap_or(usize::MAX))
        .map(|(appid, a)| {
            json!({
                "authorizer_appid": appid,
                "refresh_token": a.refresh_token,
                "auth_time": a.auth_time,
            })
        })
        .collect();
    ok(json!({"total_count": current.count(), "list": list}))
}

fn authorizer_info(state: &State, call: &Call) -> Answer {
    let appid = call.field("authorizer_appid");
    let Some(authorizer) = state.authorizers.get(appid).filter(|a| !a.revoked) else {
        return error(61003, "component is not authorized by this account");
    };
    let (nick_name, user_name) = state.account(appid);
    ok(json!({
        "authorizer_info": {
            "nick_name": nick_name,
            "head_img": "",
            "service_type_info": {"id": 2},
            "verify_type_info": {"id": 0},
            "user_name": user_name,
            "principal_name": "Fake Co",
            "alias": "",
            "qrcode_url": "",
        },
        "authorization_info": {
            "authorizer_appid": appid,
            "authorizer_refresh_token": authorizer.refresh_token,
            "func_info": func_info(&authorizer.funcs),
        },
    }))
}

fn custom_send(state: &mut State, call: &Call) -> Answer {
    let token = call.param("access_token");
    if token.is_empty() {
        return error(41001, "access_token missing");
    }
    let Some(appid) = state.authorizer_of(token) else {
        state.credential_refusals += 1;
        return error(40001, INVALID_CREDENTIAL);
    };
    let Some(body) = &call.json else {
        return error(47001, "data format error");
    };
    let (touser, msgtype) = (call.field("touser"), call.field("msgtype"));
    if touser.trim().is_empty() {
        return error(40003, "invalid openid");
    }
    let payload = &body[msgtype];
    let content = match msgtype {
        "text" => payload["content"].as_str(),
        "news" => {
            if payload["articles"].as_array().map_or(0, Vec::len) > 1 {
                return error(45008, "article size out of limit");
            }
            payload.pointer("/articles/0/title").and_then(Value::as_str)
        }
        _ => return error(40008, "invalid message type"),
    };
    let Some(content) = content.filter(|c| !c.is_empty()) else {
        return error(44004, "empty content");
    };
    state.sent.push(SentMessage {
        authorizer_appid: appid,
        touser: touser.to_owned(),
        msgtype: msgtype.to_owned(),
        content: content.to_owned(),
        token: token.to_owned(),
    });
    ok(json!({"errcode": 0, "errmsg": "ok"}))
}

fn login_page(state: &mut State, path: &str, call: &Call) -> Answer {
    let page = if path == "/cgi-bin/componentloginpage" {
        "pc"
    } else {
        "mobile"
    };
    if page == "mobile" && call.param("action") != "bindcomponent" {
        return html("invalid action");
    }
    let pre_auth_code = call.param("pre_auth_code");
    let problem = if call.param("component_appid") != COMPONENT_APP_ID {
        Some("component_appid does not match")
    } else {
        match state.pre_auth_codes.get(pre_auth_code) {
            None => Some("not issued"),
            Some(code) if code.used => Some("already used"),
            Some(code) if code.expires_at <= Instant::now() => Some("expired"),
            Some(_) => None,
        }
    };
    if let Some(problem) = problem {
        return html(&format!("pre_auth_code invalid ({problem})"));
    }
    let redirect_uri = call.param("redirect_uri").to_owned();
    if redirect_uri.is_empty() {
        return html("redirect_uri invalid");
    }
    state.login_visits.push(LoginVisit {
        page,
        auth_type: call.param("auth_type").to_owned(),
        biz_appid: call.query.get("biz_appid").cloned(),
        redirect_uri: redirect_uri.clone(),
        referer: call.referer.clone(),
    });
    let Some((appid, funcs)) = state.next_authorizer.take() else {
        return html("waiting for the administrator");
    };
    if let Some(code) = state.pre_auth_codes.get_mut(pre_auth_code) {
        code.used = true;
    }
    let auth_code = state.authorize(&appid, &funcs);
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let location =
        format!("{redirect_uri}{separator}auth_code={auth_code}&expires_in={AUTH_CODE_EXPIRES_IN}");
    let Ok(location) = hyper::header::HeaderValue::from_str(&location) else {
        return html("redirect_uri invalid");
    };
    let mut response = answer(StatusCode::FOUND, "text/html; charset=utf-8", String::new());
    response
        .headers_mut()
        .insert(hyper::header::LOCATION, location);
    response
}
