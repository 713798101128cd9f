//! The Open Platform authorization flow, as pages a person sees:
//!
//! 1. `GET /open/{app}/authorize?expires=…&auth_type=…[&biz_appid=…]&sig=…` — a link the
//!    operator made with `wxgate open link` (HMAC-signed with a key derived from the
//!    component secret, with an expiry), so strangers cannot make the gateway burn
//!    pre-auth codes. It creates a pre-auth code and sends the browser to WeChat's
//!    authorization page by script: WeChat accepts only a visit whose referrer is on the
//!    component's authorization page domain (授权发起页域名), so a bare link would fail. The
//!    computer page (`componentloginpage`) or, inside WeChat on a phone, the mobile one
//!    (`bindcomponent`); `mode=pc|mobile` forces one.
//! 2. `GET /open/{app}/authorized?state=…&auth_code=…&expires_in=600` — where WeChat sends
//!    the administrator back. `state` (signed, 30 minutes) was put in the redirect URI by
//!    step 1, so only a flow this gateway started reaches `api_query_auth`. The code is
//!    exchanged, the authorization stored (re-authorizing without changes sends no event,
//!    so this is the only place that sees it), and the result shown.
//!
//! Both answer HTML; every value shown is escaped, and none is a token.

use std::fmt::Write as _;

use hmac::{Hmac, KeyInit, Mac};
use http::StatusCode;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::response::CallbackResponse;
use super::{App, Gateway, Route};
use crate::bot::Bot;
use crate::clock::unix_now;
use crate::wechat::open::exchange_code;

/// How long the `state` of a started flow is accepted: the pre-auth code lives 10 minutes,
/// an administrator may take a while to find the phone.
const STATE_LIFETIME_SECS: u64 = 30 * 60;
/// The longest a signed link may be valid.
pub const MAX_LINK_LIFETIME_SECS: u64 = 30 * 86_400;

/// Which accounts the authorization page offers (`auth_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// 1: Official Accounts only.
    OfficialAccount,
    /// 2: Mini Programs only.
    MiniProgram,
    /// 3: both.
    Both,
}

impl AuthType {
    /// The number WeChat takes.
    pub fn code(self) -> u8 {
        match self {
            Self::OfficialAccount => 1,
            Self::MiniProgram => 2,
            Self::Both => 3,
        }
    }

    /// The type of a number.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "1" => Some(Self::OfficialAccount),
            "2" => Some(Self::MiniProgram),
            "3" => Some(Self::Both),
            _ => None,
        }
    }
}

/// Why an authorization link cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// No such app, or not an Open Platform app.
    #[error("no open app named `{0}`")]
    NoApp(String),
    /// The app lacks a setting the flow needs.
    #[error("app `{app}` needs {what}")]
    Missing {
        /// The app.
        app: String,
        /// What to set.
        what: &'static str,
    },
}

type HmacSha256 = Hmac<Sha256>;

/// The key signing an app's links and states: derived from the component secret, so only
/// whoever holds the secret makes links, and resetting the secret revokes them all.
fn link_key(app: &App) -> Option<[u8; 32]> {
    let secret = app.token_source.as_ref()?.secret().expose_secret();
    let mut digest = Sha256::new();
    digest.update(b"wxgate authorization link v1\0");
    digest.update(secret.as_bytes());
    Some(digest.finalize().into())
}

fn mac(key: &[u8; 32], parts: &[&str]) -> HmacSha256 {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("any key length");
    for part in parts {
        mac.update(part.as_bytes());
        mac.update(b"\n");
    }
    mac
}

fn sign(key: &[u8; 32], parts: &[&str]) -> String {
    hex::encode(mac(key, parts).finalize().into_bytes())
}

/// Constant-time check of a hex tag.
fn verify(key: &[u8; 32], parts: &[&str], tag: &str) -> bool {
    hex::decode(tag).is_ok_and(|tag| mac(key, parts).verify_slice(&tag).is_ok())
}

/// The query of a page, decoded (a browser's: `+` is a space in forms, but no value here
/// has one, so `+` is kept).
fn params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .take(32)
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(value).decode_utf8().ok()?;
            Some((name.to_owned(), value.into_owned()))
        })
        .collect()
}

fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn encode(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

/// `&`, `<`, `>`, `"` and `'` as entities.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JavaScript string literal that cannot end the script element.
fn js_string(text: &str) -> String {
    serde_json::Value::from(text)
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
}

fn page(status: StatusCode, title: &str, body: &str) -> CallbackResponse {
    CallbackResponse::html(
        status,
        format!(
            "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"referrer\" content=\"origin\">\
             <title>{}</title></head><body>\n<h1>{}</h1>\n{body}\n</body></html>\n",
            escape(title),
            escape(title)
        ),
    )
}

fn failure(status: StatusCode, what: &str) -> CallbackResponse {
    page(
        status,
        "授权未完成 / Authorization not completed",
        &format!("<p id=\"error\">{}</p>", escape(what)),
    )
}

impl<B: Bot> Gateway<B> {
    /// A signed link to `app`'s authorization page, valid until `expires` (unix seconds).
    ///
    /// # Errors
    /// [`LinkError`]: no such open app, or it lacks `secret` or `public_url`.
    pub fn authorize_link(
        &self,
        app: &str,
        auth_type: AuthType,
        biz_appid: Option<&str>,
        expires: u64,
    ) -> Result<String, LinkError> {
        let found = self
            .apps
            .get(app)
            .filter(|a| a.platform == crate::platform::Platform::Open)
            .ok_or_else(|| LinkError::NoApp(app.to_owned()))?;
        let missing = |what| LinkError::Missing {
            app: app.to_owned(),
            what,
        };
        let key = link_key(found).ok_or_else(|| missing("secret (the component AppSecret)"))?;
        let base = found
            .public_url
            .as_deref()
            .ok_or_else(|| missing("public_url (the authorization page domain)"))?;
        let expires = expires.to_string();
        let auth_type = auth_type.code().to_string();
        let biz = biz_appid.unwrap_or_default();
        let sig = sign(&key, &["authorize", app, &expires, &auth_type, biz]);
        let mut link =
            format!("{base}/open/{app}/authorize?expires={expires}&auth_type={auth_type}");
        if !biz.is_empty() {
            let _ = write!(link, "&biz_appid={}", encode(biz));
        }
        let _ = write!(link, "&sig={sig}");
        Ok(link)
    }

    /// Serves the two pages.
    pub(super) async fn page(
        &self,
        route: Route<'_>,
        app: &App,
        query: Option<&str>,
        deadline: Instant,
    ) -> CallbackResponse {
        let params = params(query);
        let response = match route {
            Route::OpenAuthorizePage { .. } => self.authorize_page(app, &params, deadline).await,
            _ => self.authorized_page(app, &params, deadline).await,
        };
        tracing::info!(app = %app.name, status = response.status.as_u16(), page = if matches!(route, Route::OpenAuthorizePage { .. }) { "authorize" } else { "authorized" }, "authorization page served");
        response
    }

    async fn authorize_page(
        &self,
        app: &App,
        params: &[(String, String)],
        deadline: Instant,
    ) -> CallbackResponse {
        let (Some(key), Some(base), Some(component)) = (
            link_key(app),
            app.public_url.as_deref(),
            app.token_source.as_ref(),
        ) else {
            return failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "This component is not set up for authorization: it needs secret and public_url.",
            );
        };
        let expires = param(params, "expires").unwrap_or_default();
        let auth_type = param(params, "auth_type").unwrap_or("3");
        let biz = param(params, "biz_appid").unwrap_or_default();
        let sig = param(params, "sig").unwrap_or_default();
        let signed = verify(
            &key,
            &["authorize", &app.name, expires, auth_type, biz],
            sig,
        );
        let fresh = expires
            .parse::<u64>()
            .is_ok_and(|e| e > unix_now() && e <= unix_now() + MAX_LINK_LIFETIME_SECS);
        if !signed || !fresh {
            return failure(
                StatusCode::FORBIDDEN,
                "This authorization link is not valid or has expired. Ask the platform's operator for a new one (wxgate open link).",
            );
        }
        if AuthType::from_code(auth_type).is_none()
            || !biz.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return failure(StatusCode::BAD_REQUEST, "auth_type must be 1, 2 or 3.");
        }
        let Ok(tokens) = self.tokens() else {
            return failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "The platform API client is not available.",
            );
        };
        let component_id = component.id();
        let client = tokens.client();
        let code = tokio::time::timeout_at(
            deadline,
            tokens.call(component, |token| async move {
                client.create_pre_auth_code(component_id, &token).await
            }),
        )
        .await;
        let code = match code {
            Ok(Ok(code)) => code,
            Ok(Err(e)) => {
                tracing::warn!(app = %app.name, error = %e, "no pre-auth code for the authorization page");
                return failure(
                    StatusCode::BAD_GATEWAY,
                    &format!("WeChat did not give a pre-auth code: {e}"),
                );
            }
            Err(_) => {
                return failure(
                    StatusCode::GATEWAY_TIMEOUT,
                    "WeChat did not answer in time. Reload the page.",
                );
            }
        };
        let state_expires = (unix_now() + STATE_LIFETIME_SECS).to_string();
        let state_sig = sign(&key, &["authorized", &app.name, &state_expires]);
        let redirect = format!(
            "{base}/open/{}/authorized?state={state_expires}.{state_sig}",
            app.name
        );
        let mut common = format!(
            "component_appid={}&pre_auth_code={}&redirect_uri={}&auth_type={auth_type}",
            encode(component_id),
            encode(&code.code),
            encode(&redirect)
        );
        if !biz.is_empty() {
            let _ = write!(common, "&biz_appid={}", encode(biz));
        }
        let pc = format!("{}?{common}", self.api.component_login_page);
        let mobile = format!(
            "{}?action=bindcomponent&no_scan=1&{common}#wechat_redirect",
            self.api.component_bind_page
        );
        let forced = match param(params, "mode") {
            Some("pc") => "pc",
            Some("mobile") => "mobile",
            _ => "",
        };
        let body = format!(
            "<p>正在前往微信授权页面… / Taking you to WeChat to authorize…</p>\n\
             <p><a id=\"pc\" href=\"{pc_attr}\">在电脑上授权 / Authorize on a computer</a></p>\n\
             <p><a id=\"mobile\" href=\"{mobile_attr}\">在微信中授权 / Authorize in WeChat</a></p>\n\
             <script>\n\
             (function () {{\n\
             var forced = {forced};\n\
             var inWeChat = /MicroMessenger|Mobile|Android|iPhone/i.test(navigator.userAgent);\n\
             var mobile = forced ? forced === \"mobile\" : inWeChat;\n\
             location.replace(mobile ? {mobile_js} : {pc_js});\n\
             }})();\n\
             </script>",
            pc_attr = escape(&pc),
            mobile_attr = escape(&mobile),
            forced = js_string(forced),
            mobile_js = js_string(&mobile),
            pc_js = js_string(&pc),
        );
        page(StatusCode::OK, "授权 / Authorize", &body)
    }

    async fn authorized_page(
        &self,
        app: &App,
        params: &[(String, String)],
        deadline: Instant,
    ) -> CallbackResponse {
        let (Some(key), Some(component)) = (link_key(app), app.token_source.as_ref()) else {
            return failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "This component is not set up for authorization: it needs secret.",
            );
        };
        let state = param(params, "state").unwrap_or_default();
        let (expires, sig) = state.split_once('.').unwrap_or_default();
        let signed = verify(&key, &["authorized", &app.name, expires], sig);
        let fresh = expires.parse::<u64>().is_ok_and(|e| e > unix_now());
        if !signed || !fresh {
            return failure(
                StatusCode::FORBIDDEN,
                "This page can only be reached from the authorization page, within 30 minutes. Start again from the authorization link.",
            );
        }
        let Some(code) = param(params, "auth_code").filter(|c| !c.is_empty() && c.len() <= 512)
        else {
            return failure(
                StatusCode::BAD_REQUEST,
                "WeChat sent no authorization code: the authorization was cancelled.",
            );
        };
        let Ok(tokens) = self.tokens() else {
            return failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "The platform API client is not available.",
            );
        };
        let exchanged =
            tokio::time::timeout_at(deadline, exchange_code(tokens, component, code, unix_now()))
                .await;
        let exchanged = match exchanged {
            Ok(Ok(exchanged)) => exchanged,
            Ok(Err(e)) => {
                tracing::warn!(app = %app.name, error = %e, "the authorization code from the redirect was not exchanged");
                return failure(
                    StatusCode::BAD_GATEWAY,
                    &format!("The authorization could not be completed: {e}"),
                );
            }
            Err(_) => {
                return failure(
                    StatusCode::GATEWAY_TIMEOUT,
                    "WeChat did not answer in time; the authorization event will complete it. Reload to check.",
                );
            }
        };
        let authorizer = &exchanged.query.authorizer_app_id;
        let (nick, gh) = exchanged
            .account
            .as_ref()
            .map(|a| (a.nick_name.as_str(), a.user_name.as_str()))
            .unwrap_or_default();
        let permissions = exchanged
            .query
            .func_info
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let body = format!(
            "<p id=\"result\">已授权 / Authorized</p>\n<dl>\n\
             <dt>账号 / Account</dt><dd id=\"nick\">{}</dd>\n\
             <dt>原始ID / Original id</dt><dd id=\"gh\">{}</dd>\n\
             <dt>AppID</dt><dd id=\"appid\">{}</dd>\n\
             <dt>权限集 / Permission sets</dt><dd id=\"funcs\">{}</dd>\n</dl>\n\
             <p>可以关闭此页面。/ You may close this page.</p>",
            escape(nick),
            escape(gh),
            escape(authorizer),
            escape(&permissions),
        );
        page(StatusCode::OK, "授权成功 / Authorization complete", &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_and_script_values_cannot_break_out() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let js = js_string("</script><script>alert(1)</script>\"");
        assert!(!js.contains('<') && !js.contains('>'), "{js}");
        assert!(js.starts_with('"') && js.ends_with('"'));
    }

    #[test]
    fn signatures_bind_every_part() {
        let key = [7u8; 32];
        let tag = sign(&key, &["authorize", "comp", "100", "3", ""]);
        assert!(verify(&key, &["authorize", "comp", "100", "3", ""], &tag));
        assert!(!verify(&key, &["authorize", "comp", "101", "3", ""], &tag));
        assert!(!verify(&key, &["authorize", "comp", "100", "1", ""], &tag));
        assert!(!verify(
            &[8u8; 32],
            &["authorize", "comp", "100", "3", ""],
            &tag
        ));
        // Parts are separated: shifting a boundary changes the tag.
        assert!(!verify(&key, &["authorize", "comp1", "00", "3", ""], &tag));
        assert!(!verify(&key, &["authorize", "comp", "100", "3", ""], "zz"));
        assert!(!verify(&key, &["authorize", "comp", "100", "3", ""], ""));
    }

    #[test]
    fn page_queries_decode_once() {
        let p = params(Some("state=1.ab&auth_code=queryauthcode%40%40%40X%2BY&&x"));
        assert_eq!(param(&p, "auth_code"), Some("queryauthcode@@@X+Y"));
        assert_eq!(param(&p, "x"), Some(""));
        assert_eq!(param(&p, "missing"), None);
    }
}
