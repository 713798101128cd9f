//! The three platforms wxgate speaks, and what differs between them.

use serde::{Deserialize, Serialize};

/// A callback platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// WeChat Work (企业微信) app callbacks; receive id = corp id.
    Wecom,
    /// Official Account (公众号); receive id = AppID.
    Mp,
    /// Open Platform third-party platform (开放平台); receive id = component AppID, and
    /// authorized accounts' messages are MP messages.
    Open,
}

impl Platform {
    /// Whether replies follow WeCom's rules (otherwise the Official Account's).
    pub fn is_wecom(self) -> bool {
        self == Self::Wecom
    }

    /// The name used in routes and config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wecom => "wecom",
            Self::Mp => "mp",
            Self::Open => "open",
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
