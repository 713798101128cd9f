//! Fixed egress through a proxy (`[api] proxy`, `WXGATE_API_PROXY`; docs/fixed-egress.md):
//! the platform API client really sends through it. A small HTTP proxy on loopback records
//! what it is asked: a request for a plain-`http://` API (the fake platform) comes to it in
//! absolute form and is forwarded, one for an `https://` API only as a `CONNECT host:443`,
//! which it refuses (nothing here reaches the internet).

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, PROXY_AUTHORIZATION};
use hyper::{Method, Request, Response, StatusCode};
use support::cli::{ConfigFile, Run, run, wxgate};
use support::fake_platform::{CORP_ID, CORP_SECRET, FakePlatform};
use support::loopback::{LoopbackServer, lock};
use support::sample::KEY;
use wxgate::config::{ApiProxy, ApiSettings, Config, PROXY_ENV};
use wxgate::gateway::Gateway;
use wxgate::wechat::{ApiEndpoints, ClientTimeouts, PlatformClient, TokenSource};

/// `Proxy-Authorization` for the user `wx` and the password `pa@ss`.
const WX_PA_SS: &str = "Basic d3g6cGFAc3M=";

/// One request as the proxy received it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    /// The request target: absolute form (`http://host:port/path?query`) for a forwarded
    /// request, authority form (`host:port`) for a CONNECT.
    target: String,
    /// Its `Proxy-Authorization` header.
    auth: Option<String>,
}

/// A forwarding HTTP proxy on `127.0.0.1`, stopped on drop.
struct TestProxy {
    server: LoopbackServer,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestProxy {
    fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let server =
            LoopbackServer::start_http("127.0.0.1:0".parse().unwrap(), "api-proxy", log, proxy);
        Self { server, seen }
    }

    /// `http://{userinfo@}127.0.0.1:port`.
    fn url(&self, userinfo: &str) -> String {
        format!("http://{userinfo}{}", self.server.addr())
    }

    /// The proxy as the gateway reads it from `[api] proxy`.
    fn configured(&self, userinfo: &str) -> ApiProxy {
        let settings = ApiSettings {
            proxy: Some(self.url(userinfo)),
            ..ApiSettings::default()
        };
        settings
            .proxy_with(|_| None)
            .expect("a usable proxy URL")
            .expect("a proxy")
    }

    fn seen(&self) -> Vec<Seen> {
        lock(&self.seen).clone()
    }
}

fn answer(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}

/// Records the request, then forwards one in absolute form (as a plain HTTP proxy does) and
/// refuses a tunnel.
async fn proxy(
    log: Arc<Mutex<Vec<Seen>>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: hyper::header::HeaderName| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    lock(&log).push(Seen {
        method: request.method().to_string(),
        target: request.uri().to_string(),
        auth: header(PROXY_AUTHORIZATION),
    });
    if request.method() == Method::CONNECT || request.uri().scheme().is_none() {
        return Ok(answer(StatusCode::FORBIDDEN, Bytes::new()));
    }
    let content_type = header(CONTENT_TYPE);
    let (method, url) = (request.method().clone(), request.uri().to_string());
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(answer(StatusCode::BAD_REQUEST, Bytes::new())),
    };
    // Straight to the target: this client must not itself use a proxy from the environment.
    let Ok(client) = reqwest::Client::builder().no_proxy().build() else {
        return Ok(answer(StatusCode::BAD_GATEWAY, Bytes::new()));
    };
    let mut forward = client.request(method, url).body(body);
    if let Some(content_type) = content_type {
        forward = forward.header(CONTENT_TYPE, content_type);
    }
    Ok(match forward.send().await {
        Ok(response) => {
            let status = response.status();
            answer(status, response.bytes().await.unwrap_or_default())
        }
        Err(_) => answer(StatusCode::BAD_GATEWAY, Bytes::new()),
    })
}

fn timeouts() -> ClientTimeouts {
    ClientTimeouts {
        connect: Duration::from_secs(1),
        request: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn tokens_are_fetched_through_the_proxy() {
    let fake = FakePlatform::start();
    let proxy = TestProxy::start();
    // A password with a character the URL must percent-encode; the proxy gets it decoded.
    let client = PlatformClient::with_proxy(
        fake.endpoints(),
        timeouts(),
        &proxy.configured("wx:pa%40ss@"),
    )
    .unwrap();
    assert!(client.is_proxied());
    let wecom = client
        .fetch_token(&FakePlatform::wecom_source())
        .await
        .unwrap();
    let mp = client
        .fetch_token(&FakePlatform::mp_source())
        .await
        .unwrap();
    assert!(wecom.value.starts_with("fake-token") && mp.value.starts_with("fake-token"));
    assert_eq!(fake.fetches(), 2);

    // Both through the proxy, loopback though the target is (no NO_PROXY exception), with
    // the credentials of the proxy URL.
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].method, "GET");
    assert!(
        seen[0].target.starts_with(&format!(
            "{}/cgi-bin/gettoken?corpid={CORP_ID}&",
            fake.url()
        )),
        "{seen:?}"
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].target.as_str()),
        (
            "POST",
            format!("{}/cgi-bin/stable_token", fake.url()).as_str()
        )
    );
    assert!(seen.iter().all(|s| s.auth.as_deref() == Some(WX_PA_SS)));

    // A client without one does not go near it.
    let direct = PlatformClient::new(fake.endpoints(), timeouts()).unwrap();
    assert!(!direct.is_proxied());
    direct
        .fetch_token(&FakePlatform::wecom_source())
        .await
        .unwrap();
    assert_eq!(proxy.seen().len(), 2);
    assert_eq!(fake.fetches(), 3);
}

#[tokio::test]
async fn an_https_api_is_reached_through_a_tunnel_the_proxy_cannot_read() {
    let proxy = TestProxy::start();
    let client = PlatformClient::with_proxy(
        ApiEndpoints::default(),
        timeouts(),
        &proxy.configured("wxgate:proxy-pass-4711@"),
    )
    .unwrap();
    let source = TokenSource::wecom("wwcorp", "TOP-SECRET-VALUE");
    // The proxy refuses the tunnel, so the call fails; it saw the host and port only.
    let err = client.fetch_token(&source).await.unwrap_err();
    assert_eq!(
        proxy.seen(),
        [Seen {
            method: "CONNECT".into(),
            target: "qyapi.weixin.qq.com:443".into(),
            auth: Some("Basic d3hnYXRlOnByb3h5LXBhc3MtNDcxMQ==".into()),
        }]
    );
    let shown = format!("{err} {err:?} {client:?}");
    for secret in ["TOP-SECRET-VALUE", "proxy-pass-4711", "d3hnYXRl"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    // The Official Account host the same way.
    let _ = client.fetch_token(&TokenSource::mp("wxapp", "S")).await;
    assert_eq!(
        proxy.seen().last().map(|s| s.target.clone()).as_deref(),
        Some("api.weixin.qq.com:443")
    );
}

/// A WeCom app `ops` whose API is the fake at `fake_url`, with `api_extra` in `[api]`.
fn config_text(fake_url: &str, api_extra: &str) -> String {
    format!(
        r#"[api]
wecom_base_url = "{fake_url}"
mp_base_url = "{fake_url}"
{api_extra}

[[apps]]
name = "ops"
platform = "wecom"
corp_id = "{CORP_ID}"
agent_id = 1000002
token = "opstoken"
encoding_aes_key = "{KEY}"
secret = "{CORP_SECRET}"
"#
    )
}

#[tokio::test]
async fn the_gateway_calls_through_the_configured_proxy() {
    let fake = FakePlatform::start();
    let proxy = TestProxy::start();
    let text = config_text(&fake.url(), &format!("proxy = \"{}\"", proxy.url("")));
    let config = Config::parse(&text).unwrap();
    let gateway = Gateway::builder(&config).build().unwrap();
    assert_eq!(gateway.api_proxy().map(ApiProxy::origin), Some("api.proxy"));
    gateway.access_token("ops").await.unwrap();
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].target.contains("/cgi-bin/gettoken?"), "{seen:?}");
    assert_eq!(fake.fetches(), 1);
}

/// `wxgate {command} --config FILE {args}` on a config file holding `text`, with
/// `WXGATE_API_PROXY` set to `env_proxy` if given.
fn wxgate_on(text: &str, env_proxy: Option<&str>, command: &str, args: &[&str]) -> Run {
    let file = ConfigFile::new("api-proxy", text);
    let mut cmd = wxgate(&[command, "--config", file.arg()]);
    cmd.args(args).env_remove("RUST_LOG");
    if let Some(value) = env_proxy {
        cmd.env(PROXY_ENV, value);
    }
    run(&mut cmd)
}

#[test]
fn the_deployed_variable_gives_the_proxy_unless_the_config_says_otherwise() {
    let fake = FakePlatform::start();
    let proxy = TestProxy::start();
    let through = proxy.url("wx:pa%40ss@");
    let plain = config_text(&fake.url(), "");

    // What the template sets from ApiProxy: `wxgate notify` sends through the proxy.
    let sent = wxgate_on(
        &plain,
        Some(&through),
        "notify",
        &["--app", "ops", "--to", "zhangsan", "部署完成"],
    );
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    let seen = proxy.seen();
    let paths: Vec<&str> = seen
        .iter()
        .map(|s| s.target.split('?').next().unwrap_or_default())
        .collect();
    let base = fake.url();
    assert_eq!(
        paths,
        [
            format!("{base}/cgi-bin/gettoken"),
            format!("{base}/cgi-bin/message/send")
        ]
    );
    assert!(seen.iter().all(|s| s.auth.as_deref() == Some(WX_PA_SS)));
    assert_eq!(fake.delivered(), 1);

    // `check` says so, naming where the proxy came from and never its URL.
    let checked = wxgate_on(&plain, Some(&through), "check", &[]);
    assert_eq!(checked.code, 0, "{}", checked.stderr);
    assert!(
        checked
            .stdout
            .contains("platform API calls go through a proxy (WXGATE_API_PROXY)"),
        "{}",
        checked.stdout
    );
    // The template's default: the variable is set, and empty.
    for env in [None, Some("")] {
        let direct = wxgate_on(&plain, env, "check", &[]);
        assert_eq!(direct.code, 0, "{}", direct.stderr);
        assert!(!direct.stdout.contains("proxy"), "{}", direct.stdout);
    }
    // `proxy = ""` in the config: direct, whatever the variable says.
    let off = config_text(&fake.url(), "proxy = \"\"");
    let direct = wxgate_on(&off, Some(&through), "check", &[]);
    assert!(!direct.stdout.contains("proxy"), "{}", direct.stdout);
    // The key wins over the variable.
    let own = config_text(&fake.url(), &format!("proxy = \"{}\"", proxy.url("")));
    let checked = wxgate_on(&own, Some("http://10.0.0.5:3128"), "check", &[]);
    assert!(
        checked
            .stdout
            .contains("platform API calls go through a proxy (api.proxy)"),
        "{}",
        checked.stdout
    );

    // An unusable variable stops the start, named but not quoted.
    let refused = wxgate_on(
        &plain,
        Some("socks5://wx:hunter2@proxy.example:1080"),
        "check",
        &[],
    );
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(PROXY_ENV) && refused.stderr.contains("scheme"),
        "{}",
        refused.stderr
    );
    let shown = format!("{}{}", refused.stdout, refused.stderr);
    assert!(
        !shown.contains("hunter2") && !shown.contains("proxy.example"),
        "{shown}"
    );
    for done in [&sent, &checked] {
        assert!(!done.stderr.contains("pa%40ss") && !done.stdout.contains("pa%40ss"));
    }
}
