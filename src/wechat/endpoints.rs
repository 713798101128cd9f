//! Where the platforms' APIs live. Configurable so tests (and proxies) can stand in.

use crate::platform::Platform;

/// The base URLs of the two API hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiEndpoints {
    /// WeCom's API, `https://qyapi.weixin.qq.com` by default.
    pub wecom: String,
    /// The Official Account (and Open Platform) API, `https://api.weixin.qq.com` by default.
    pub mp: String,
}

impl Default for ApiEndpoints {
    fn default() -> Self {
        Self {
            wecom: crate::config::WECOM_API.into(),
            mp: crate::config::MP_API.into(),
        }
    }
}

impl ApiEndpoints {
    /// The base URLs of `[api]`.
    pub fn from_settings(settings: &crate::config::ApiSettings) -> Self {
        Self {
            wecom: settings.wecom_base_url.clone(),
            mp: settings.mp_base_url.clone(),
        }
    }

    /// Both platforms on one base URL (a fake platform in tests, or a proxy).
    pub fn both(base: impl Into<String>) -> Self {
        let base = base.into();
        Self {
            wecom: base.clone(),
            mp: base,
        }
    }

    /// The base URL serving `platform`, without a trailing slash. Open Platform accounts
    /// are called on the Official Account host.
    pub fn base(&self, platform: Platform) -> &str {
        let base = match platform {
            // The AI bot's only API is the response_url each message carries: WeCom's host.
            Platform::Wecom | Platform::Aibot => &self.wecom,
            Platform::Mp | Platform::Open => &self.mp,
        };
        base.trim_end_matches('/')
    }

    /// `base + path`, with exactly one slash between them.
    pub fn url(&self, platform: Platform, path: &str) -> String {
        format!("{}/{}", self.base(platform), path.trim_start_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_official_hosts() {
        let e = ApiEndpoints::default();
        assert_eq!(
            e.url(Platform::Wecom, "/cgi-bin/gettoken"),
            "https://qyapi.weixin.qq.com/cgi-bin/gettoken"
        );
        assert_eq!(
            e.url(Platform::Mp, "cgi-bin/stable_token"),
            "https://api.weixin.qq.com/cgi-bin/stable_token"
        );
        assert_eq!(e.base(Platform::Open), "https://api.weixin.qq.com");
    }

    #[test]
    fn trailing_slashes_are_tolerated() {
        let e = ApiEndpoints::both("http://127.0.0.1:9/");
        assert_eq!(e.url(Platform::Wecom, "/x"), "http://127.0.0.1:9/x");
        let e = ApiEndpoints::both("http://127.0.0.1:9/prefix//");
        assert_eq!(e.url(Platform::Mp, "x"), "http://127.0.0.1:9/prefix/x");
    }
}
