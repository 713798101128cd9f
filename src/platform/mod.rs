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
    /// WeCom intelligent robot (智能机器人) in API mode: JSON envelopes, receive id "",
    /// replies streamed through the platform's refresh callbacks.
    Aibot,
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
            Self::Aibot => "aibot",
        }
    }
}

/// How an app's callbacks and passive replies are written: the Mini Program's message push
/// (消息推送) can be set to JSON (数据格式: JSON); everything else speaks XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    /// XML documents (and the XML envelope in safe mode).
    #[default]
    Xml,
    /// JSON objects with the XML's field names, in `{"ToUserName","Encrypt"}` in safe mode
    /// (`platform = "mp"` only).
    Json,
}

impl DataFormat {
    /// The name used in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Xml => "xml",
            Self::Json => "json",
        }
    }
}

impl std::fmt::Display for DataFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
