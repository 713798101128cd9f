//! The Open Platform's component API (`/cgi-bin/component/…`), and reading its answers.
//!
//! The readers are pure functions over the answer's JSON, unit tested with the shapes the
//! platform sends. As everywhere in `wechat`, fields are read by hand: serde's messages
//! would quote values, and these hold tokens.

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::super::answer::{FetchedToken, token_in, unsigned};
use super::super::client::{PlatformClient, scrub_error};
use super::super::error::ApiError;
use super::super::source::TokenSource;
use super::super::token::AccessToken;

/// The most authorizations `api_get_authorizer_list` returns per page.
pub const AUTHORIZER_PAGE: u64 = 500;

/// What `api_query_auth` answers: the authorization an admin just gave.
#[derive(Clone, PartialEq, Eq)]
pub struct QueryAuth {
    /// The account's AppID.
    pub authorizer_app_id: String,
    /// Its access token, valid `expires_in`.
    pub access_token: FetchedToken,
    /// Its refresh token: the only way to its later access tokens.
    pub refresh_token: String,
    /// The permission sets granted (`funcscope_category` ids).
    pub func_info: Vec<u32>,
}

impl std::fmt::Debug for QueryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryAuth")
            .field("authorizer_app_id", &self.authorizer_app_id)
            .field("access_token", &self.access_token)
            .field("refresh_token", &"[redacted]")
            .field("func_info", &self.func_info)
            .finish()
    }
}

/// What `api_authorizer_token` answers.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshedToken {
    /// The new access token.
    pub access_token: FetchedToken,
    /// The refresh token to use next time, when the answer carries one.
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for RefreshedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshedToken")
            .field("access_token", &self.access_token)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// One entry of `api_get_authorizer_list`.
#[derive(Clone, PartialEq, Eq)]
pub struct ListedAuthorizer {
    /// The account's AppID.
    pub authorizer_app_id: String,
    /// Its current refresh token.
    pub refresh_token: String,
    /// When it authorized (unix seconds), when given.
    pub auth_time: Option<u64>,
}

impl std::fmt::Debug for ListedAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListedAuthorizer")
            .field("authorizer_app_id", &self.authorizer_app_id)
            .field("refresh_token", &"[redacted]")
            .field("auth_time", &self.auth_time)
            .finish()
    }
}

/// One page of `api_get_authorizer_list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerPage {
    /// How many authorizations there are in all.
    pub total_count: u64,
    /// This page's.
    pub list: Vec<ListedAuthorizer>,
}

/// What `api_get_authorizer_info` says of the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerInfo {
    /// The account's name.
    pub nick_name: String,
    /// Its original id (`gh_…`): the `ToUserName` of its messages.
    pub user_name: String,
    /// `service_type_info.id` (Official Account: 0 subscription, 1 upgraded, 2 service;
    /// Mini Program: 0).
    pub service_type: Option<i64>,
    /// `verify_type_info.id` (-1 not verified).
    pub verify_type: Option<i64>,
    /// The company behind it.
    pub principal_name: Option<String>,
}

/// A pre-auth code for one authorization page view.
#[derive(Clone, PartialEq, Eq)]
pub struct PreAuthCode {
    /// The code.
    pub code: String,
    /// How long it is valid (600 s).
    pub expires_in_secs: u64,
}

impl std::fmt::Debug for PreAuthCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreAuthCode")
            .field("code", &"[redacted]")
            .field("expires_in_secs", &self.expires_in_secs)
            .finish()
    }
}

fn component_parts(component: &TokenSource) -> Result<(&str, &str), ApiError> {
    match component {
        TokenSource::Component { app_id, secret } => Ok((app_id, secret.expose_secret())),
        other => Err(ApiError::Precondition(format!(
            "a {} source is not a component",
            other.kind()
        ))),
    }
}

impl PlatformClient {
    /// `api_component_token` with the component's credentials and `ticket`.
    ///
    /// # Errors
    /// [`ApiError`]; 61005/61006 mean the ticket is expired or not valid.
    pub async fn component_token(
        &self,
        component: &TokenSource,
        ticket: &str,
    ) -> Result<FetchedToken, ApiError> {
        let (app_id, secret) = component_parts(component)?;
        let body = json!({
            "component_appid": app_id,
            "component_appsecret": secret,
            "component_verify_ticket": ticket,
        });
        let answer = self
            .post_open("/cgi-bin/component/api_component_token", &body, secret)
            .await?;
        token_in(&answer, "component_access_token")
    }

    /// `api_start_push_ticket`: asks WeChat to push a `component_verify_ticket` now. It
    /// takes no access token (there is none before a ticket).
    ///
    /// # Errors
    /// [`ApiError`].
    pub async fn start_push_ticket(&self, component: &TokenSource) -> Result<(), ApiError> {
        let (app_id, secret) = component_parts(component)?;
        let body = json!({ "component_appid": app_id, "component_secret": secret });
        self.post_open("/cgi-bin/component/api_start_push_ticket", &body, secret)
            .await
            .map(drop)
    }

    /// `api_create_preauthcode`.
    ///
    /// # Errors
    /// [`ApiError`].
    pub async fn create_pre_auth_code(
        &self,
        component_app_id: &str,
        token: &AccessToken,
    ) -> Result<PreAuthCode, ApiError> {
        let body = json!({ "component_appid": component_app_id });
        let answer = self
            .post_component("/cgi-bin/component/api_create_preauthcode", token, &body)
            .await?;
        pre_auth_code(&answer)
    }

    /// `api_query_auth`: exchanges an authorization code.
    ///
    /// # Errors
    /// [`ApiError`]; 61009/61010 for a code that is invalid or expired.
    pub async fn query_auth(
        &self,
        component_app_id: &str,
        token: &AccessToken,
        code: &str,
    ) -> Result<QueryAuth, ApiError> {
        let body = json!({ "component_appid": component_app_id, "authorization_code": code });
        let answer = self
            .post_component("/cgi-bin/component/api_query_auth", token, &body)
            .await?;
        query_auth(&answer)
    }

    /// `api_authorizer_token`: a new access token for an authorizer.
    ///
    /// # Errors
    /// [`ApiError`]; 61023 when the refresh token is not valid.
    pub async fn authorizer_token(
        &self,
        component_app_id: &str,
        token: &AccessToken,
        authorizer_app_id: &str,
        refresh_token: &str,
    ) -> Result<RefreshedToken, ApiError> {
        let body = json!({
            "component_appid": component_app_id,
            "authorizer_appid": authorizer_app_id,
            "authorizer_refresh_token": refresh_token,
        });
        let answer = self
            .post_component("/cgi-bin/component/api_authorizer_token", token, &body)
            .await
            .map_err(|e| scrub_error(e, refresh_token))?;
        refreshed_token(&answer)
    }

    /// One page of `api_get_authorizer_list`, `count` at most [`AUTHORIZER_PAGE`].
    ///
    /// # Errors
    /// [`ApiError`].
    pub async fn authorizer_list(
        &self,
        component_app_id: &str,
        token: &AccessToken,
        offset: u64,
        count: u64,
    ) -> Result<AuthorizerPage, ApiError> {
        let body = json!({
            "component_appid": component_app_id,
            "offset": offset,
            "count": count.min(AUTHORIZER_PAGE),
        });
        let answer = self
            .post_component("/cgi-bin/component/api_get_authorizer_list", token, &body)
            .await?;
        authorizer_page(&answer)
    }

    /// `api_get_authorizer_info`.
    ///
    /// # Errors
    /// [`ApiError`].
    pub async fn authorizer_info(
        &self,
        component_app_id: &str,
        token: &AccessToken,
        authorizer_app_id: &str,
    ) -> Result<AuthorizerInfo, ApiError> {
        let body = json!({
            "component_appid": component_app_id,
            "authorizer_appid": authorizer_app_id,
        });
        let answer = self
            .post_component("/cgi-bin/component/api_get_authorizer_info", token, &body)
            .await?;
        authorizer_info(&answer)
    }
}

fn text(v: &Value, name: &str) -> Result<String, ApiError> {
    match v.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ApiError::Decode(format!("no {name} in the answer"))),
    }
}

/// The `funcscope_category` ids of a `func_info` array; entries of another shape are
/// skipped (the platform adds fields over time).
fn func_info(v: Option<&Value>) -> Vec<u32> {
    let Some(Value::Array(entries)) = v else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|e| unsigned(e.get("funcscope_category")?.get("id")?))
        .filter_map(|id| u32::try_from(id).ok())
        .collect()
}

pub(crate) fn pre_auth_code(answer: &Value) -> Result<PreAuthCode, ApiError> {
    Ok(PreAuthCode {
        code: text(answer, "pre_auth_code")?,
        expires_in_secs: answer.get("expires_in").and_then(unsigned).unwrap_or(600),
    })
}

pub(crate) fn query_auth(answer: &Value) -> Result<QueryAuth, ApiError> {
    let info = answer
        .get("authorization_info")
        .ok_or_else(|| ApiError::Decode("no authorization_info in the answer".into()))?;
    Ok(QueryAuth {
        authorizer_app_id: text(info, "authorizer_appid")?,
        access_token: token_in(info, "authorizer_access_token")?,
        refresh_token: text(info, "authorizer_refresh_token")?,
        func_info: func_info(info.get("func_info")),
    })
}

pub(crate) fn refreshed_token(answer: &Value) -> Result<RefreshedToken, ApiError> {
    Ok(RefreshedToken {
        access_token: token_in(answer, "authorizer_access_token")?,
        refresh_token: text(answer, "authorizer_refresh_token").ok(),
    })
}

pub(crate) fn authorizer_page(answer: &Value) -> Result<AuthorizerPage, ApiError> {
    let list = match answer.get("list") {
        Some(Value::Array(entries)) => entries
            .iter()
            .filter_map(|e| {
                Some(ListedAuthorizer {
                    authorizer_app_id: text(e, "authorizer_appid").ok()?,
                    refresh_token: text(e, "refresh_token").ok()?,
                    auth_time: e.get("auth_time").and_then(unsigned),
                })
            })
            .collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(ApiError::Decode("list is not an array".into())),
    };
    Ok(AuthorizerPage {
        total_count: answer
            .get("total_count")
            .and_then(unsigned)
            .unwrap_or(list.len() as u64),
        list,
    })
}

pub(crate) fn authorizer_info(answer: &Value) -> Result<AuthorizerInfo, ApiError> {
    let info = answer
        .get("authorizer_info")
        .ok_or_else(|| ApiError::Decode("no authorizer_info in the answer".into()))?;
    let id_of = |name: &str| {
        info.get(name)
            .and_then(|t| t.get("id"))
            .and_then(Value::as_i64)
    };
    Ok(AuthorizerInfo {
        nick_name: info
            .get("nick_name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        user_name: text(info, "user_name")?,
        service_type: id_of("service_type_info"),
        verify_type: id_of("verify_type_info"),
        principal_name: info
            .get("principal_name")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Any JSON value, a few levels deep.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-z_@0-9]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::hash_map(
                    prop_oneof![
                        Just("authorization_info".to_owned()),
                        Just("authorizer_info".to_owned()),
                        Just("authorizer_appid".to_owned()),
                        Just("authorizer_access_token".to_owned()),
                        Just("authorizer_refresh_token".to_owned()),
                        Just("expires_in".to_owned()),
                        Just("func_info".to_owned()),
                        Just("funcscope_category".to_owned()),
                        Just("id".to_owned()),
                        Just("list".to_owned()),
                        Just("total_count".to_owned()),
                        Just("user_name".to_owned()),
                        "[a-z_]{1,8}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever the component API (or something in front of it) answers, reading it is
        /// a value or a typed error, never a panic.
        #[test]
        fn any_answer_is_read_without_panic(answer in any_json()) {
            let _ = query_auth(&answer);
            let _ = refreshed_token(&answer);
            let _ = authorizer_page(&answer);
            let _ = authorizer_info(&answer);
            let _ = pre_auth_code(&answer);
        }
    }

    #[test]
    fn query_auth_reads_the_documented_shape() {
        let a = query_auth(&json!({"authorization_info": {
            "authorizer_appid": "wxf8b4f85f3a794e77",
            "authorizer_access_token": "QXjUqNqfYVH0yBE1iI_7vuN_9gQbpjfK7hYwJ3P7xOa88a89-Aga5x1NMYJyB8G2yKt1KCl0nPC3W9GJzw0Zzq_dBxc8pxIGUNi_bFes0qM",
            "expires_in": 7200,
            "authorizer_refresh_token": "dTo-YCXPL4llX-u1W1pPpnp8Hgm4wpJtlR6iV0doKdY",
            "func_info": [
                {"funcscope_category": {"id": 1}},
                {"funcscope_category": {"id": 2}},
                {"funcscope_category": {"id": 3}, "confirm_info": {"need_confirm": 0}}
            ]
        }}))
        .unwrap();
        assert_eq!(a.authorizer_app_id, "wxf8b4f85f3a794e77");
        assert_eq!(a.access_token.expires_in_secs, 7200);
        assert_eq!(a.func_info, [1, 2, 3]);
        let shown = format!("{a:?}");
        assert!(
            !shown.contains("dTo-YCXPL4") && !shown.contains("QXjUqN"),
            "{shown}"
        );
    }

    #[test]
    fn refreshed_tokens_may_come_without_a_new_refresh_token() {
        let r =
            refreshed_token(&json!({"authorizer_access_token": "T", "expires_in": 7200})).unwrap();
        assert_eq!(r.refresh_token, None);
        let r = refreshed_token(&json!({
            "authorizer_access_token": "T", "expires_in": "7200",
            "authorizer_refresh_token": "R2"
        }))
        .unwrap();
        assert_eq!(r.refresh_token.as_deref(), Some("R2"));
        assert!(refreshed_token(&json!({"expires_in": 7200})).is_err());
    }

    #[test]
    fn authorizer_lists_and_info() {
        let page = authorizer_page(&json!({"total_count": 2, "list": [
            {"authorizer_appid": "wxa", "refresh_token": "ra", "auth_time": 1_522_000_000},
            {"authorizer_appid": "wxb", "refresh_token": "rb"},
            {"oops": true}
        ]}))
        .unwrap();
        assert_eq!(page.total_count, 2);
        assert_eq!(page.list.len(), 2);
        assert_eq!(page.list[0].auth_time, Some(1_522_000_000));
        assert!(authorizer_page(&json!({"list": 5})).is_err());
        let info = authorizer_info(&json!({"authorizer_info": {
            "nick_name": "微信SDK Demo Special", "user_name": "gh_eb5e3a772040",
            "service_type_info": {"id": 2}, "verify_type_info": {"id": -1},
            "principal_name": "腾讯计算机系统有限公司"
        }}))
        .unwrap();
        assert_eq!(info.user_name, "gh_eb5e3a772040");
        assert_eq!((info.service_type, info.verify_type), (Some(2), Some(-1)));
        assert!(authorizer_info(&json!({})).is_err());
        let code =
            pre_auth_code(&json!({"pre_auth_code": "preauthcode@@@x", "expires_in": 600})).unwrap();
        assert_eq!(code.expires_in_secs, 600);
        assert!(!format!("{code:?}").contains("preauthcode@@@"));
    }

    #[test]
    fn errors_never_quote_the_answer() {
        let e = query_auth(&json!({"authorization_info": {"authorizer_appid": "wxa",
            "authorizer_access_token": "SECRET-TOKEN", "expires_in": "never"}}))
        .unwrap_err();
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }
}
