//! `[api]`: where the platforms' APIs are called (access tokens, and later active messages).

use serde::Deserialize;

use super::ConfigError;

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

/// The platform API settings.
#[derive(Debug, Clone, Deserialize)]
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
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            wecom_base_url: WECOM_API.into(),
            mp_base_url: MP_API.into(),
            timeout_ms: 3000,
            component_login_page: COMPONENT_LOGIN_PAGE.into(),
            component_bind_page: COMPONENT_BIND_PAGE.into(),
        }
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
        Ok(())
    }
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
}
