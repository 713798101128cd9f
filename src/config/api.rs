//! `[api]`: where the platforms' APIs are called (access tokens, active messages), and
//! through which proxy.

use std::fmt;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::ConfigError;
use super::reference::{Fetched, RemoteRef, fetched_value};
use super::secret::ENV_PREFIX;

/// WeCom's API host.
pub const WECOM_API: &str = "https://qyapi.weixin.qq.com";
/// The Official Account (and Open Platform) API host.
pub const MP_API: &str = "https://api.weixin.qq.com";
/// Where an administrator authorizes a component on a computer.
pub const COMPONENT_LOGIN_PAGE: &str = "https://mp.weixin.qq.com/cgi-bin/componentloginpage";
/// Where an administrator authorizes a component inside WeChat on a phone. (Older copies of
/// the documentation name `mp.weixin.qq.com/safe/bindcomponent`; this is the current host,
/// and the key below changes it.)
pub const COMPONENT_BIND_PAGE: &str = "https://open.weixin.qq.com/wxaopen/safe/bindcomponent";

/// The environment variable naming the proxy of the platform API calls when `[api]` has no
/// `proxy` key; the SAM template sets it from its `ApiProxy` parameter (empty: no proxy).
pub const PROXY_ENV: &str = "WXGATE_API_PROXY";

/// The platform API settings.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// WeCom's API host.
    pub wecom_base_url: String,
    /// The Official Account (and Open Platform) API host.
    pub mp_base_url: String,
    /// How long one API request may take, in milliseconds.
    pub timeout_ms: u64,
    /// The Open Platform's authorization page for computers.
    pub component_login_page: String,
    /// The Open Platform's authorization page inside WeChat (phones).
    pub component_bind_page: String,
    /// The proxy the platform API calls go through, for a fixed egress IP (the platforms
    /// refuse calls from IPs outside an app's whitelist): `http://host:port` or
    /// `https://user:password@host:port`, `env:NAME`, `ssm:NAME` or `secretsmanager:ID#key`.
    /// Unset: `$WXGATE_API_PROXY` when it is set and not empty, else none; `""`: none,
    /// whatever the variable says. Read with [`proxy`](Self::proxy).
    pub proxy: Option<String>,
    /// The values of the references to AWS, once fetched.
    #[serde(skip)]
    pub fetched: Fetched,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            wecom_base_url: WECOM_API.into(),
            mp_base_url: MP_API.into(),
            timeout_ms: 3000,
            component_login_page: COMPONENT_LOGIN_PAGE.into(),
            component_bind_page: COMPONENT_BIND_PAGE.into(),
            proxy: None,
            fetched: Fetched::default(),
        }
    }
}

// By hand: the proxy URL may carry a password.
impl fmt::Debug for ApiSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiSettings")
            .field("wecom_base_url", &self.wecom_base_url)
            .field("mp_base_url", &self.mp_base_url)
            .field("timeout_ms", &self.timeout_ms)
            .field("proxy", &self.proxy.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// The proxy of the platform API calls, read and checked ([`ApiSettings::proxy`]). Its URL
/// may carry a user name and password, so it is never printed: `Debug` and
/// [`origin`](Self::origin) say only where it was configured.
#[derive(Clone)]
pub struct ApiProxy {
    url: SecretString,
    origin: String,
}

impl ApiProxy {
    /// The URL, for the HTTP client only.
    pub fn expose_url(&self) -> &str {
        self.url.expose_secret()
    }

    /// Where it was configured: `api.proxy`, `api.proxy (env:NAME)` or `WXGATE_API_PROXY`.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl fmt::Debug for ApiProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiProxy")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl ApiSettings {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        for (name, url) in [
            ("wecom_base_url", &self.wecom_base_url),
            ("mp_base_url", &self.mp_base_url),
            ("component_login_page", &self.component_login_page),
            ("component_bind_page", &self.component_bind_page),
        ] {
            // `gettoken` carries the app secret in its query string, and every call a token.
            crate::url_policy::check(url)
                .map_err(|why| ConfigError::Setting(format!("api.{name}: {why}")))?;
        }
        if !(100..=30_000).contains(&self.timeout_ms) {
            return Err(ConfigError::Setting(format!(
                "api.timeout_ms must be 100..=30000, not {}",
                self.timeout_ms
            )));
        }
        // A URL written here is checked with the file; an `env:NAME` reference and
        // $WXGATE_API_PROXY are read, and checked, when the gateway is built (`proxy`).
        // A reference to AWS is checked with the others (`Config::references`).
        if let Some(raw) = self
            .proxy
            .as_deref()
            .map(str::trim)
            .filter(|raw| RemoteRef::parse(raw).is_none())
        {
            match raw.strip_prefix(ENV_PREFIX) {
                Some(name) if name.trim().is_empty() => {
                    return Err(ConfigError::Setting(
                        "api.proxy = \"env:\" names no variable".into(),
                    ));
                }
                Some(_) => {}
                None if raw.is_empty() => {}
                None => {
                    proxy_url(raw)
                        .map_err(|why| ConfigError::Setting(format!("api.proxy: {why}")))?;
                }
            }
        }
        Ok(())
    }

    /// The proxy of the platform API calls: `proxy` when the key is written (`""`: none;
    /// `env:NAME`: the variable, which must be set and not empty; a reference to AWS: its
    /// fetched value), else `$WXGATE_API_PROXY`
    /// when set and not empty, else none.
    ///
    /// # Errors
    /// A referenced variable is unset or empty, or the URL is not one the HTTP client can
    /// use as a proxy; the message never quotes the value.
    pub fn proxy(&self) -> Result<Option<ApiProxy>, ConfigError> {
        self.proxy_with(|name| std::env::var(name).ok())
    }

    /// [`proxy`](Self::proxy) with the environment lookup injected, so the rule is tested
    /// without touching the process environment.
    ///
    /// # Errors
    /// As [`proxy`](Self::proxy).
    pub fn proxy_with(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<ApiProxy>, ConfigError> {
        let set = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        let (value, origin) = match self.proxy.as_deref().map(str::trim) {
            // Written empty: no proxy, even where the template sets the variable.
            Some("") => return Ok(None),
            Some(raw) => match (RemoteRef::parse(raw), raw.strip_prefix(ENV_PREFIX)) {
                (Some(reference), _) => {
                    let reference = reference
                        .map_err(|why| ConfigError::Setting(format!("api.proxy: {why}")))?;
                    let origin = format!("api.proxy ({reference})");
                    let value = fetched_value("api.proxy".into(), reference, &self.fetched)?;
                    (value, origin)
                }
                (None, Some(name)) => {
                    let name = name.trim();
                    let value = set(lookup(name)).ok_or_else(|| {
                        ConfigError::Setting(format!(
                            "api.proxy = \"env:{name}\", but ${name} is not set or empty"
                        ))
                    })?;
                    (value, format!("api.proxy (env:{name})"))
                }
                (None, None) => (raw.to_owned(), "api.proxy".to_owned()),
            },
            None => match set(lookup(PROXY_ENV)) {
                Some(value) => (value, PROXY_ENV.to_owned()),
                None => return Ok(None),
            },
        };
        let url =
            proxy_url(&value).map_err(|why| ConfigError::Setting(format!("{origin}: {why}")))?;
        Ok(Some(ApiProxy {
            url: SecretString::from(String::from(url)),
            origin,
        }))
    }
}

/// How a proxy URL is written, for the error messages.
const PROXY_FORM: &str = "write it http://host:port or https://user:password@host:port";

/// Checks a proxy URL: `http://` or `https://` (to the proxy: the API calls themselves are
/// HTTPS through a CONNECT tunnel either way), a host, and at most a port and credentials.
///
/// # Errors
/// What is wrong, never the value or a part of it: it may carry a password.
fn proxy_url(raw: &str) -> Result<Url, String> {
    // url's parse errors are fixed texts ("invalid port number", "empty host"), never the
    // input.
    let url = Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e}); {PROXY_FORM}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        // The scheme is not quoted: `user:password@host:3128`, written without one, parses
        // with the scheme `user`.
        return Err(format!(
            "the scheme must be http:// or https:// (SOCKS is not supported); {PROXY_FORM}"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("the URL has no host; {PROXY_FORM}"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "a proxy URL has no path, query or #fragment; {PROXY_FORM}"
        ));
    }
    // The HTTP client reads the URL again through hyper-util's proxy matcher, and a URL that
    // one cannot read leaves the client without a proxy: calls would then go out directly,
    // from an IP the platforms refuse. So the last check is the client's own reading.
    let matcher = hyper_util::client::proxy::matcher::Matcher::builder()
        .all(url.as_str())
        .build();
    if matcher
        .intercept(&http::Uri::from_static("https://api.weixin.qq.com/"))
        .is_none()
    {
        return Err(format!(
            "the HTTP client cannot use this proxy URL; {PROXY_FORM}"
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_official_hosts_and_urls_are_checked() {
        let s = ApiSettings::default();
        assert!(s.check().is_ok());
        assert_eq!(
            (s.wecom_base_url.as_str(), s.mp_base_url.as_str()),
            (WECOM_API, MP_API)
        );
        for (url, why) in [
            ("api.weixin.qq.com", "not a URL"),
            ("http://api.weixin.qq.com", "loopback"),
        ] {
            let bad = ApiSettings {
                mp_base_url: url.into(),
                ..ApiSettings::default()
            };
            let e = bad.check().unwrap_err().to_string();
            assert!(e.contains("api.mp_base_url") && e.contains(why), "{e}");
        }
        let local = ApiSettings {
            wecom_base_url: "http://127.0.0.1:9".into(),
            ..ApiSettings::default()
        };
        assert!(local.check().is_ok());
        let bad = ApiSettings {
            timeout_ms: 5,
            ..ApiSettings::default()
        };
        assert!(bad.check().unwrap_err().to_string().contains("timeout_ms"));
    }

    /// The environment of the SAM template with `ApiProxy` set, and a variable named by
    /// `env:` in a config.
    fn env(name: &str) -> Option<String> {
        match name {
            PROXY_ENV => Some("http://10.0.0.5:3128".into()),
            "CORP_PROXY" => Some(" https://wx:hunter2@proxy.example:443\n".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn with_proxy(proxy: Option<&str>) -> ApiSettings {
        ApiSettings {
            proxy: proxy.map(str::to_owned),
            ..ApiSettings::default()
        }
    }

    #[test]
    fn no_proxy_unless_the_key_or_the_variable_names_one() {
        let direct = ApiSettings::default();
        assert!(direct.proxy_with(no_env).unwrap().is_none());
        // The template's default: ApiProxy = "" exports an empty variable.
        let empty = |name: &str| (name == PROXY_ENV).then(String::new);
        assert!(direct.proxy_with(empty).unwrap().is_none());
        let from_env = direct.proxy_with(env).unwrap().unwrap();
        assert_eq!(
            (from_env.expose_url(), from_env.origin()),
            ("http://10.0.0.5:3128/", PROXY_ENV)
        );
    }

    #[test]
    fn the_key_overrides_the_variable() {
        let written = with_proxy(Some("https://proxy.example:8443"));
        let proxy = written.proxy_with(env).unwrap().unwrap();
        assert_eq!(
            (proxy.expose_url(), proxy.origin()),
            ("https://proxy.example:8443/", "api.proxy")
        );
        // Written empty: direct, whatever the variable says.
        assert!(with_proxy(Some("")).proxy_with(env).unwrap().is_none());
        let referenced = with_proxy(Some("env:CORP_PROXY"));
        let proxy = referenced.proxy_with(env).unwrap().unwrap();
        assert_eq!(
            (proxy.expose_url(), proxy.origin()),
            (
                "https://wx:hunter2@proxy.example/",
                "api.proxy (env:CORP_PROXY)"
            )
        );
        for name in ["UNSET", "EMPTY"] {
            let e = with_proxy(Some(&format!("env:{name}")))
                .proxy_with(env)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("api.proxy") && e.contains(&format!("${name}")),
                "{e}"
            );
        }
    }

    #[test]
    fn proxy_urls_are_checked_without_quoting_them() {
        for ok in [
            "http://10.0.0.5:3128",
            "https://user:pass@proxy.example:443",
            "http://proxy.example",
            "http://[fd00::5]:3128/",
            // A password with characters a URL must percent-encode.
            "https://wx:p%40ss%3Aw0rd@proxy.example:8443",
            "https://wx:p@ss@proxy.example:8443",
        ] {
            let settings = with_proxy(Some(ok));
            assert!(settings.check().is_ok(), "{ok}");
            assert!(settings.proxy_with(no_env).unwrap().is_some(), "{ok}");
        }
        for (bad, why) in [
            ("socks5://wx:hunter2@proxy.example:1080", "scheme"),
            ("ftp://wx:hunter2@proxy.example", "scheme"),
            // No scheme: it parses with the scheme "wx", which must not be quoted either.
            ("wx:hunter2@proxy.example:3128", "scheme"),
            ("proxy.example:3128", "scheme"),
            ("hunter2", "not a URL"),
            ("http://wx:hunter2@:3128", "not a URL"),
            ("http://wx:hunter2@proxy.example:99999", "not a URL"),
            ("https://wx:hunter2@proxy.example/hunter2", "no path"),
            ("http://proxy.example:3128/?key=hunter2", "no path"),
            ("http://proxy.example:3128/#hunter2", "no path"),
        ] {
            let e = with_proxy(Some(bad)).check().unwrap_err().to_string();
            assert!(e.contains("api.proxy") && e.contains(why), "{bad}: {e}");
            assert!(!e.contains("hunter2") && !e.contains("wx"), "{e}");
            assert!(!e.contains("proxy.example"), "{e}");
            // The same value from the variable: named by the variable, not quoted either.
            let from_env = |name: &str| (name == PROXY_ENV).then(|| bad.to_owned());
            let e = ApiSettings::default()
                .proxy_with(from_env)
                .unwrap_err()
                .to_string();
            assert!(e.contains(PROXY_ENV) && e.contains(why), "{bad}: {e}");
            assert!(
                !e.contains("hunter2") && !e.contains("proxy.example"),
                "{e}"
            );
        }
        let e = with_proxy(Some("env:")).check().unwrap_err().to_string();
        assert!(e.contains("names no variable"), "{e}");
        // A reference is read when the gateway is built, not with the file.
        assert!(with_proxy(Some("env:UNSET")).check().is_ok());
    }

    #[test]
    fn the_proxy_url_is_never_printed() {
        let settings = with_proxy(Some("https://wx:hunter2@proxy.example:443"));
        let proxy = settings.proxy_with(no_env).unwrap().unwrap();
        for shown in [format!("{settings:?}"), format!("{proxy:?}")] {
            assert!(
                !shown.contains("hunter2") && !shown.contains("proxy.example"),
                "{shown}"
            );
        }
    }
}
