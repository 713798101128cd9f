//! `InfoType` pushes: Open Platform authorization events and WeCom suite events.
//!
//! These arrive on the authorization URL rather than as messages, carry `AppId` (Open
//! Platform) or `SuiteId` (WeCom), and must be answered with the literal `success`.

use serde::Serialize;

use super::take::{optional, optional_num, required, text};
use crate::error::ProtocolError;
use crate::xml::Fields;

/// The authorization details of `authorized` / `updateauthorized`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authorization {
    /// The authorizing account's AppID.
    pub authorizer_appid: String,
    /// Exchange it with `api_query_auth` for the authorizer tokens.
    pub authorization_code: String,
    /// When the code expires (unix seconds).
    pub authorization_code_expired_time: Option<u64>,
    /// The pre-auth code used.
    pub pre_auth_code: String,
}

/// What an `InfoType` push says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "info_type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Info {
    /// Open Platform `component_verify_ticket`, every 10 minutes, valid 12 h.
    ComponentVerifyTicket {
        /// The ticket.
        ticket: String,
    },
    /// Open Platform `authorized`.
    Authorized(Authorization),
    /// Open Platform `updateauthorized`.
    UpdateAuthorized(Authorization),
    /// Open Platform `unauthorized`.
    Unauthorized {
        /// The account that withdrew.
        authorizer_appid: String,
    },
    /// WeCom suite `suite_ticket`.
    SuiteTicket {
        /// The ticket.
        ticket: String,
    },
    /// WeCom suite `create_auth`.
    CreateAuth {
        /// Temporary auth code.
        auth_code: String,
        /// State passed through the install link.
        state: Option<String>,
    },
    /// WeCom suite `change_auth`.
    ChangeAuth {
        /// The corp.
        auth_corp_id: String,
    },
    /// WeCom suite `cancel_auth`.
    CancelAuth {
        /// The corp.
        auth_corp_id: String,
    },
    /// Any other InfoType; its fields stay in the extras.
    Unknown {
        /// The InfoType as sent.
        #[serde(rename = "unknown_info_type")]
        info_type: String,
    },
}

/// An `InfoType` push.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InfoEvent {
    /// `AppId` (the component) or `SuiteId`.
    pub app_id: String,
    /// `CreateTime` or, for WeCom suites, `TimeStamp`.
    pub create_time: u64,
    /// What happened.
    #[serde(flatten)]
    pub info: Info,
    /// Fields not read into the typed form, as `(dotted path, value)`.
    pub extra: Vec<(String, String)>,
}

impl InfoEvent {
    pub(crate) fn from_fields(mut f: Fields<'_>) -> Result<Self, ProtocolError> {
        let app_id = match optional(&mut f, "AppId") {
            Some(id) => id,
            None => required(&mut f, "SuiteId")?,
        };
        let create_time = match optional_num(&mut f, "CreateTime")? {
            Some(t) => t,
            None => optional_num(&mut f, "TimeStamp")?
                .ok_or(ProtocolError::XmlMissingField("CreateTime"))?,
        };
        let info_type = required(&mut f, "InfoType")?;
        let info = match info_type.as_str() {
            "component_verify_ticket" => Info::ComponentVerifyTicket {
                ticket: required(&mut f, "ComponentVerifyTicket")?,
            },
            "authorized" => Info::Authorized(authorization(&mut f)?),
            "updateauthorized" => Info::UpdateAuthorized(authorization(&mut f)?),
            "unauthorized" => Info::Unauthorized {
                authorizer_appid: required(&mut f, "AuthorizerAppid")?,
            },
            "suite_ticket" => Info::SuiteTicket {
                ticket: required(&mut f, "SuiteTicket")?,
            },
            "create_auth" => Info::CreateAuth {
                auth_code: required(&mut f, "AuthCode")?,
                state: optional(&mut f, "State"),
            },
            "change_auth" => Info::ChangeAuth {
                auth_corp_id: text(&mut f, "AuthCorpId"),
            },
            "cancel_auth" => Info::CancelAuth {
                auth_corp_id: text(&mut f, "AuthCorpId"),
            },
            _ => Info::Unknown { info_type },
        };
        Ok(Self {
            app_id,
            create_time,
            info,
            extra: f.into_owned_pairs(),
        })
    }

    /// The InfoType name.
    pub fn info_type(&self) -> &str {
        match &self.info {
            Info::ComponentVerifyTicket { .. } => "component_verify_ticket",
            Info::Authorized(_) => "authorized",
            Info::UpdateAuthorized(_) => "updateauthorized",
            Info::Unauthorized { .. } => "unauthorized",
            Info::SuiteTicket { .. } => "suite_ticket",
            Info::CreateAuth { .. } => "create_auth",
            Info::ChangeAuth { .. } => "change_auth",
            Info::CancelAuth { .. } => "cancel_auth",
            Info::Unknown { info_type } => info_type,
        }
    }

    /// The account or corp the push is about, where there is one.
    pub fn subject(&self) -> Option<&str> {
        match &self.info {
            Info::Authorized(a) | Info::UpdateAuthorized(a) => Some(&a.authorizer_appid),
            Info::Unauthorized { authorizer_appid } => Some(authorizer_appid),
            Info::ChangeAuth { auth_corp_id } | Info::CancelAuth { auth_corp_id } => {
                Some(auth_corp_id)
            }
            _ => None,
        }
    }
}

fn authorization(f: &mut Fields<'_>) -> Result<Authorization, ProtocolError> {
    Ok(Authorization {
        authorizer_appid: required(f, "AuthorizerAppid")?,
        authorization_code: required(f, "AuthorizationCode")?,
        authorization_code_expired_time: optional_num(f, "AuthorizationCodeExpiredTime")?,
        pre_auth_code: text(f, "PreAuthCode"),
    })
}
