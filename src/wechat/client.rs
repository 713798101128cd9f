//! HTTP to the platform: the two token endpoints and a generic JSON call for every other API.

use std::time::Duration;

use reqwest::Url;
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::Value;

use super::answer::{self, FetchedToken, scrub};
use super::endpoints::ApiEndpoints;
use super::error::ApiError;
use super::source::TokenSource;
use super::token::AccessToken;
use crate::config::ApiProxy;
use crate::platform::Platform;

/// How long the client waits. The platform answers in tens of milliseconds; a request that
/// takes seconds is better failed so the caller can fall back or retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTimeouts {
    /// Establishing the connection (TCP and TLS), 1 s by default.
    pub connect: Duration,
    /// The whole request, connection included, 3 s by default.
    pub request: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(3),
        }
    }
}

impl ClientTimeouts {
    /// The timeouts of `[api]`: connecting gets a third of the request's time, at most 1 s.
    pub fn from_settings(settings: &crate::config::ApiSettings) -> Self {
        let request = Duration::from_millis(settings.timeout_ms);
        Self {
            connect: (request / 3).min(Duration::from_secs(1)),
            request,
        }
    }
}

/// A client for both platforms' APIs. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct PlatformClient {
    http: reqwest::Client,
    endpoints: ApiEndpoints,
    proxied: bool,
}

// By hand: reqwest's client prints its proxy's address.
impl std::fmt::Debug for PlatformClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformClient")
            .field("endpoints", &self.endpoints)
            .field("proxied", &self.proxied)
            .finish_non_exhaustive()
    }
}

impl PlatformClient {
    /// A client for `endpoints` with `timeouts`, connecting directly (or through the
    /// standard `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` variables, minus `NO_PROXY`, as every
    /// reqwest client does).
    ///
    /// # Errors
    /// [`ApiError::Transport`] when the HTTP client cannot be built (no TLS backend).
    pub fn new(endpoints: ApiEndpoints, timeouts: ClientTimeouts) -> Result<Self, ApiError> {
        Self::build(endpoints, timeouts, None)
    }

    /// A client for `endpoints` whose every request goes through `proxy`, for a fixed egress
    /// IP. An `https://` API is reached through a CONNECT tunnel, so the proxy sees its host
    /// and port, not the request (which carries the secret or the token); a plain `http://`
    /// one (a loopback test server) is sent to the proxy as it is. The standard proxy
    /// variables are ignored then, `NO_PROXY` and loopback hosts included.
    ///
    /// # Errors
    /// As [`new`](Self::new), or the proxy URL is unusable (never quoted).
    pub fn with_proxy(
        endpoints: ApiEndpoints,
        timeouts: ClientTimeouts,
        proxy: &ApiProxy,
    ) -> Result<Self, ApiError> {
        Self::build(endpoints, timeouts, Some(proxy))
    }

    /// A client for the `[api]` settings, through `proxy` when there is one (what
    /// [`ApiSettings::proxy`](crate::config::ApiSettings::proxy) read).
    ///
    /// # Errors
    /// As [`with_proxy`](Self::with_proxy).
    pub fn from_settings(
        settings: &crate::config::ApiSettings,
        proxy: Option<&ApiProxy>,
    ) -> Result<Self, ApiError> {
        Self::build(
            ApiEndpoints::from_settings(settings),
            ClientTimeouts::from_settings(settings),
            proxy,
        )
    }

    fn build(
        endpoints: ApiEndpoints,
        timeouts: ClientTimeouts,
        proxy: Option<&ApiProxy>,
    ) -> Result<Self, ApiError> {
        let mut builder = crate::http::client_builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request);
        if let Some(proxy) = proxy {
            // Proxy::all with no exceptions: every host, loopback included. reqwest's error
            // is not shown: its source may quote the URL.
            let all = reqwest::Proxy::all(proxy.expose_url()).map_err(|_| {
                ApiError::Transport(format!("unusable proxy URL ({})", proxy.origin()))
            })?;
            builder = builder.proxy(all);
        }
        let http = builder.build().map_err(|e| transport_error(e, ""))?;
        Ok(Self {
            http,
            endpoints,
            proxied: proxy.is_some(),
        })
    }

    /// Whether the calls go through a proxy ([`with_proxy`](Self::with_proxy)).
    pub fn is_proxied(&self) -> bool {
        self.proxied
    }

    /// The base URLs this client calls.
    pub fn endpoints(&self) -> &ApiEndpoints {
        &self.endpoints
    }

    /// Fetches a new access token: WeCom `GET /cgi-bin/gettoken?corpid=…&corpsecret=…`, or
    /// Official Account `POST /cgi-bin/stable_token` (normal mode, `force_refresh: false`:
    /// repeated calls return the current token, so instances never invalidate each other's).
    ///
    /// # Errors
    /// [`ApiError`]; none of them mentions the secret.
    pub async fn fetch_token(&self, source: &TokenSource) -> Result<FetchedToken, ApiError> {
        let secret = source.secret().expose_secret();
        let request = match source {
            TokenSource::Wecom { corp_id, .. } => {
                let url = self.url(
                    Platform::Wecom,
                    "/cgi-bin/gettoken",
                    &[("corpid", corp_id), ("corpsecret", secret)],
                )?;
                self.http.get(url)
            }
            TokenSource::Mp { app_id, .. } => {
                let url = self.url(Platform::Mp, "/cgi-bin/stable_token", &[])?;
                self.http.post(url).json(&serde_json::json!({
                    "grant_type": "client_credential",
                    "appid": app_id,
                    "secret": secret,
                    "force_refresh": false,
                }))
            }
            // These need the store (the ticket, the refresh token): `wechat::open` fetches
            // them through the token provider.
            TokenSource::Component { .. } | TokenSource::Authorizer { .. } => {
                return Err(ApiError::Precondition(format!(
                    "a {} token is fetched through the Open Platform chain",
                    source.kind()
                )));
            }
        };
        let answer = self.send(request, secret).await?;
        answer::token_answer(&answer).map_err(|e| scrub_error(e, secret))
    }

    /// `GET {base}{path}?access_token=…&{query}` on `platform`'s API; the answer's JSON
    /// once its `errcode` is 0 or absent.
    ///
    /// # Errors
    /// [`ApiError`]; [`ApiError::is_token_invalid`] tells when a new token may help.
    pub async fn get_json(
        &self,
        platform: Platform,
        path: &str,
        token: &AccessToken,
        query: &[(&str, &str)],
    ) -> Result<Value, ApiError> {
        let url = self.api_url(platform, path, token, query)?;
        self.call(self.http.get(url), token).await
    }

    /// `POST {base}{path}?access_token=…&{query}` with `body` as JSON on `platform`'s API;
    /// the answer's JSON once its `errcode` is 0 or absent.
    ///
    /// # Errors
    /// [`ApiError`]; [`ApiError::is_token_invalid`] tells when a new token may help.
    pub async fn post_json<B: Serialize + ?Sized>(
        &self,
        platform: Platform,
        path: &str,
        token: &AccessToken,
        query: &[(&str, &str)],
        body: &B,
    ) -> Result<Value, ApiError> {
        let url = self.api_url(platform, path, token, query)?;
        self.call(self.http.post(url).json(body), token).await
    }

    fn api_url(
        &self,
        platform: Platform,
        path: &str,
        token: &AccessToken,
        query: &[(&str, &str)],
    ) -> Result<Url, ApiError> {
        let mut pairs = Vec::with_capacity(query.len() + 1);
        pairs.push(("access_token", token.expose()));
        pairs.extend_from_slice(query);
        self.url(platform, path, &pairs)
    }

    /// `POST {base}{path}?component_access_token=…` with `body` as JSON on the Open
    /// Platform's API; the answer once its `errcode` is 0 or absent.
    pub(super) async fn post_component<B: Serialize + ?Sized>(
        &self,
        path: &str,
        token: &AccessToken,
        body: &B,
    ) -> Result<Value, ApiError> {
        let url = self.url(
            Platform::Open,
            path,
            &[("component_access_token", token.expose())],
        )?;
        self.call(self.http.post(url).json(body), token).await
    }

    /// `POST {base}{path}` with `body` as JSON and no token on the Open Platform's API
    /// (`api_component_token`, `api_start_push_ticket`); `secret` (the component secret in
    /// the body) is scrubbed from every error. The answer, `errcode` checked.
    pub(super) async fn post_open<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
        secret: &str,
    ) -> Result<Value, ApiError> {
        let url = self.url(Platform::Open, path, &[])?;
        let answer = self.send(self.http.post(url).json(body), secret).await?;
        answer::check_errcode(&answer).map_err(|e| scrub_error(e, secret))?;
        Ok(answer)
    }

    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        token: &AccessToken,
    ) -> Result<Value, ApiError> {
        let answer = self.send(request, token.expose()).await?;
        answer::check_errcode(&answer).map_err(|e| scrub_error(e, token.expose()))?;
        Ok(answer)
    }

    /// The URL of `path` on `platform` with `query` appended (percent-encoded). The base URL
    /// is parsed before the query is added, so a parse error cannot quote a secret.
    fn url(&self, platform: Platform, path: &str, query: &[(&str, &str)]) -> Result<Url, ApiError> {
        let mut url = Url::parse(&self.endpoints.url(platform, path))
            .map_err(|e| ApiError::Transport(format!("invalid API base URL: {e}")))?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
        }
        Ok(url)
    }

    /// Sends, checks the status, and parses the body as a JSON object. `secret` (a secret
    /// or a token in the request) is scrubbed from every error.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        secret: &str,
    ) -> Result<Value, ApiError> {
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(e, secret))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ApiError::Http {
                status: status.as_u16(),
            });
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(e, secret))?;
        answer::parse_body(&body)
    }
}

/// Maps a reqwest error without its URL (the query may hold a secret or a token), with its
/// source chain so "connection refused" and the like survive.
fn transport_error(err: reqwest::Error, secret: &str) -> ApiError {
    let err = err.without_url();
    // A connect failure (a connect timeout included) means the request was never sent.
    let connect = err.is_connect();
    if err.is_timeout() && !connect {
        return ApiError::Timeout;
    }
    let text = scrub(crate::http::error_chain(&err), secret);
    if connect {
        ApiError::Connect(text)
    } else if err.is_decode() {
        ApiError::Decode(text)
    } else {
        ApiError::Transport(text)
    }
}

/// `err` with every occurrence of `secret` (a secret or token the request carried) removed.
pub(super) fn scrub_error(err: ApiError, secret: &str) -> ApiError {
    match err {
        ApiError::Platform { errcode, errmsg } => ApiError::Platform {
            errcode,
            errmsg: scrub(errmsg, secret),
        },
        ApiError::Transport(text) => ApiError::Transport(scrub(text, secret)),
        ApiError::Connect(text) => ApiError::Connect(scrub(text, secret)),
        ApiError::Decode(text) => ApiError::Decode(scrub(text, secret)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn transport_errors_never_carry_the_url_or_secret() {
        // Nothing listens on port 9 of loopback (discard); the connection is refused.
        let client = PlatformClient::new(
            ApiEndpoints::both("http://127.0.0.1:9"),
            ClientTimeouts {
                connect: Duration::from_millis(500),
                request: Duration::from_millis(500),
            },
        )
        .unwrap();
        let source = TokenSource::wecom("wwcorp", "TOP-SECRET-VALUE");
        let err = client.fetch_token(&source).await.unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("TOP-SECRET-VALUE"), "{shown}");
        assert!(!shown.contains("corpsecret"), "{shown}");
        assert!(
            matches!(err, ApiError::Connect(_) | ApiError::Timeout),
            "{err:?}"
        );
    }

    #[test]
    fn query_values_are_percent_encoded() {
        let client =
            PlatformClient::new(ApiEndpoints::both("http://x/"), ClientTimeouts::default())
                .unwrap();
        let url = client
            .url(
                Platform::Wecom,
                "/cgi-bin/gettoken",
                &[("corpid", "a&b"), ("corpsecret", "c d=")],
            )
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://x/cgi-bin/gettoken?corpid=a%26b&corpsecret=c+d%3D"
        );
    }

    #[test]
    fn a_bad_base_url_is_an_error_not_a_panic() {
        let client =
            PlatformClient::new(ApiEndpoints::both("not a url"), ClientTimeouts::default())
                .unwrap();
        assert!(matches!(
            client.url(Platform::Mp, "/x", &[("secret", "S3CRET")]),
            Err(ApiError::Transport(msg)) if !msg.contains("S3CRET")
        ));
    }
}
